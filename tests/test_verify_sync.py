"""`kmirror verify` and `kmirror sync` against real registries on 127.0.0.1.

Each test runs Debian's `docker-registry` (distribution) with filesystem storage: a source
registry holding a small image the tests build themselves (an OCI layout written by hand,
pushed with skopeo), and a mirror registry that needs credentials, either htpasswd (Basic)
or bearer tokens from a small token service below, whose JWTs distribution verifies
against the test's own certificate. kmirror runs as a separate process, as a user runs it.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import os
import pty
import secrets
import socket
import subprocess
import sys
import tarfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import bcrypt
import httpx
import pytest
from tools import tool

from rewriter.errors import KmirrorError
from rewriter.auth import Credentials, file_lookup
from rewriter.registry import parse_challenge

USER = "alice"
PASSWORD = "wonderland-" + secrets.token_hex(8)
IDENTITY_TOKEN = "refresh-" + secrets.token_hex(8)
SECRETS = (PASSWORD, base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode(), IDENTITY_TOKEN)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Registry:
    """A running distribution registry; `host` is `127.0.0.1:PORT`."""

    host: str
    process: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


def start_registry(folder: Path, auth: dict[str, object] | None = None) -> Registry:
    folder.mkdir(parents=True)
    host = f"127.0.0.1:{free_port()}"
    config: dict[str, object] = {
        "version": 0.1,
        "log": {"level": "warn"},
        "storage": {"filesystem": {"rootdirectory": str(folder / "data")}},
        "http": {"addr": host},
    }
    if auth is not None:
        config["auth"] = auth
    (folder / "config.yml").write_text(json.dumps(config))  # JSON is YAML
    log = folder / "registry.log"
    with log.open("wb") as out:
        process = subprocess.Popen([tool("docker-registry"), "serve", str(folder / "config.yml")], stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 20
    while True:
        try:
            httpx.get(f"http://{host}/v2/", timeout=1)
            return Registry(host, process, log)
        except httpx.TransportError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                pytest.fail(f"docker-registry did not start:\n{log.read_text()}")
            time.sleep(0.1)


def write_image(folder: Path, text: str) -> None:
    """An OCI image layout with one tiny gzip layer holding hello.txt, tagged v1."""
    blobs = folder / "blobs" / "sha256"
    blobs.mkdir(parents=True)

    def blob(data: bytes) -> dict[str, object]:
        digest = hashlib.sha256(data).hexdigest()
        (blobs / digest).write_bytes(data)
        return {"digest": f"sha256:{digest}", "size": len(data)}

    tar = io.BytesIO()
    with tarfile.open(fileobj=tar, mode="w") as archive:
        info = tarfile.TarInfo("hello.txt")
        payload = text.encode()
        info.size = len(payload)
        archive.addfile(info, io.BytesIO(payload))
    layer = gzip.compress(tar.getvalue(), mtime=0)
    config = {"architecture": "amd64", "os": "linux", "config": {},
              "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(tar.getvalue()).hexdigest()]}}
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **blob(json.dumps(config).encode())},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", **blob(layer)}],
    }
    entry = {"mediaType": "application/vnd.oci.image.manifest.v1+json", **blob(json.dumps(manifest).encode()),
             "annotations": {"org.opencontainers.image.ref.name": "v1"}}
    (folder / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [entry]}))
    (folder / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')


@dataclass
class Source:
    registry: Registry
    digest: str


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Source]:
    """The source registry with 127.0.0.1:PORT/app:v1 (no credentials needed)."""
    folder = tmp_path_factory.mktemp("source")
    registry = start_registry(folder / "registry")
    write_image(folder / "layout", "hello from kmirror's tests\n")
    digestfile = folder / "digest"
    subprocess.run(
        [tool("skopeo"), "copy", "--dest-tls-verify=false", "--digestfile", str(digestfile),
         f"oci:{folder / 'layout'}:v1", f"docker://{registry.host}/app:v1"],
        check=True, capture_output=True,
    )
    yield Source(registry, digestfile.read_text().strip())
    registry.stop()


@pytest.fixture
def basic_mirror(tmp_path: Path) -> Iterator[Registry]:
    """A mirror registry with htpasswd (Basic) authentication."""
    htpasswd = tmp_path / "htpasswd"
    htpasswd.write_text(f"{USER}:{bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()}\n")
    registry = start_registry(tmp_path / "mirror", {"htpasswd": {"realm": "kmirror-test", "path": str(htpasswd)}})
    yield registry
    registry.stop()


class TokenService:
    """Issues RS256 JWTs the registry trusts: the scope asked for with the right password, nothing otherwise."""

    def __init__(self, folder: Path) -> None:
        self.key, self.cert = folder / "token.key", folder / "token.crt"
        subprocess.run(
            [tool("openssl"), "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(self.key),
             "-out", str(self.cert), "-subj", "/CN=kmirror-test-token", "-days", "2"],
            check=True, capture_output=True,
        )
        self.chain = "".join(line for line in self.cert.read_text().splitlines() if "-----" not in line)
        self.requests: list[tuple[dict[str, list[str]], bool]] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.realm = f"http://127.0.0.1:{self.server.server_address[1]}/token"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        service = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                query = parse_qs(urlparse(self.path).query)
                known = self.headers.get("Authorization") == "Basic " + SECRETS[1]
                service.requests.append((query, known))
                body = json.dumps({"token": service.token(query, known)}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:
                # An identity token (OAuth2 refresh token) exchanged for an access token.
                form = parse_qs(self._body().decode())
                known = form.get("grant_type") == ["refresh_token"] and form.get("refresh_token") == [IDENTITY_TOKEN]
                service.requests.append((form, known))
                body = json.dumps({"access_token": service.token(form, known)}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _body(self) -> bytes:
                if self.headers.get("Transfer-Encoding") != "chunked":  # skopeo sends its form chunked
                    return self.rfile.read(int(self.headers.get("Content-Length", "0")))
                data = b""
                while size := int(self.rfile.readline().split(b";")[0], 16):
                    data += self.rfile.read(size)
                    self.rfile.readline()
                self.rfile.readline()
                return data

            def log_message(self, *args: object) -> None:
                pass

        return Handler

    def token(self, query: dict[str, list[str]], known: bool) -> str:
        access = []
        for scope in query.get("scope", []) if known else []:
            kind, name, actions = scope.split(":")
            access.append({"type": kind, "name": name, "actions": actions.split(",")})
        now = int(time.time())
        header = {"typ": "JWT", "alg": "RS256", "x5c": [self.chain]}
        claims = {"iss": "kmirror-test-issuer", "sub": USER if known else "", "aud": query["service"][0],
                  "exp": now + 300, "nbf": now - 10, "iat": now, "jti": secrets.token_hex(8), "access": access}
        signing = ".".join(_b64url(json.dumps(part).encode()) for part in (header, claims))
        signature = subprocess.run([tool("openssl"), "dgst", "-sha256", "-sign", str(self.key)],
                                   input=signing.encode(), capture_output=True, check=True).stdout
        return f"{signing}.{_b64url(signature)}"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@pytest.fixture
def token_mirror(tmp_path: Path) -> Iterator[tuple[Registry, TokenService]]:
    """A mirror registry with token authentication, and its token service."""
    service = TokenService(tmp_path)
    auth = {"token": {"realm": service.realm, "service": "kmirror-test-registry", "issuer": "kmirror-test-issuer",
                      "rootcertbundle": str(service.cert)}}
    registry = start_registry(tmp_path / "mirror", auth)
    yield registry, service
    registry.stop()
    service.server.shutdown()


@dataclass
class Project:
    """A folder with rules mapping the source registry to `<mirror>/mirror`, and a clean environment."""

    folder: Path
    env: dict[str, str]
    outputs: list[str]

    def manifest(self, *images: str) -> str:
        containers = "".join(f"    - {{name: c{i}, image: \"{image}\"}}\n" for i, image in enumerate(images))
        (self.folder / "pod.yaml").write_text(f"apiVersion: v1\nkind: Pod\nmetadata: {{name: p}}\nspec:\n  containers:\n{containers}")
        return "pod.yaml"

    def login(self, host: str) -> None:
        """Store the credentials in the Docker config file, as `docker login` does."""
        (self.folder / "docker" / "config.json").write_text(json.dumps({"auths": {host: {"auth": SECRETS[1]}}}))

    def auth_file(self, entries: dict[str, dict[str, str]]) -> None:
        """Credentials only in a containers auth.json named by REGISTRY_AUTH_FILE (as `podman login --authfile`)."""
        path = self.folder / "elsewhere" / "auth.json"
        path.parent.mkdir(exist_ok=True)
        path.write_text(json.dumps({"auths": entries}))
        self.env["REGISTRY_AUTH_FILE"] = str(path)

    def registries(self, *hosts: str) -> None:
        """Add `registries: {HOST: {plain_http: true}}` for each host to the rules file."""
        entries = "".join(f"  '{host}': {{plain_http: true}}\n" for host in hosts)
        with (self.folder / ".kmirror.yaml").open("a") as rules:
            rules.write(f"registries:\n{entries}")

    def run(self, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [sys.executable, "-c", "import sys; from rewriter.console import main; sys.exit(main())", *args],
            cwd=self.folder, env=self.env, input=stdin, capture_output=True, text=True, timeout=300, check=False,
        )
        self.outputs += [done.stdout, done.stderr]
        return done

    def run_on_terminal(self, *args: str) -> tuple[int, bytes]:
        """Run kmirror with standard error on a pseudo-terminal (standard output piped): the exit code and what the terminal showed."""
        main, terminal = pty.openpty()
        try:
            done = subprocess.run(
                [sys.executable, "-c", "import sys; from rewriter.console import main; sys.exit(main())", *args],
                cwd=self.folder, env=self.env, stdout=subprocess.PIPE, stderr=terminal, text=True, timeout=120, check=False,
            )
            os.close(terminal)
            shown = b""
            while True:
                try:
                    chunk = os.read(main, 4096)
                except OSError:  # the terminal's other end is closed: all was read
                    break
                if not chunk:
                    break
                shown += chunk
        finally:
            os.close(main)
        return done.returncode, shown


@pytest.fixture
def make_project(tmp_path: Path) -> Iterator[Callable[[str, str], Project]]:
    made: list[Project] = []

    def make(source_host: str, mirror_host: str) -> Project:
        folder = tmp_path / "project"
        for sub in ("docker", "home", "run"):
            (folder / sub).mkdir(parents=True)
        (folder / ".kmirror.yaml").write_text(f"mirrors:\n  - {{from: '{source_host}', to: '{mirror_host}/mirror'}}\n")
        env = {k: v for k, v in os.environ.items() if k not in ("REGISTRY_AUTH_FILE", "KMIRROR_CONFIG")}
        env.update(DOCKER_CONFIG=str(folder / "docker"), HOME=str(folder / "home"), XDG_RUNTIME_DIR=str(folder / "run"))
        project = Project(folder, env, [])
        made.append(project)
        return project

    yield make
    for project in made:  # whatever a test ran, no credential may have been printed
        for text in project.outputs:
            for secret in SECRETS:
                assert secret not in text


@pytest.fixture
def project(source: Source, basic_mirror: Registry, make_project: Callable[[str, str], Project]) -> Project:
    """A project whose rules say both registries speak plain HTTP, with the mirror's credentials in an auth.json."""
    made = make_project(source.registry.host, basic_mirror.host)
    made.registries(source.registry.host, basic_mirror.host)
    made.auth_file({basic_mirror.host: {"auth": SECRETS[1]}})
    return made


def test_missing_then_sync_then_present(source: Source, basic_mirror: Registry, make_project: Callable[[str, str], Project]) -> None:
    project = make_project(source.registry.host, basic_mirror.host)
    pod = project.manifest(f"{source.registry.host}/app:v1", f"{source.registry.host}/app@{source.digest}")
    mirrored = f"{basic_mirror.host}/mirror/app"

    missing = project.run("verify", "--plain-http", "--username", USER, "--password-stdin", pod, stdin=PASSWORD + "\n")
    assert missing.returncode == 1, missing.stderr
    assert missing.stdout == (
        f"{mirrored}:v1: missing: manifest unknown (source {source.registry.host}/app:v1)\n"
        f"{mirrored}@{source.digest}: missing: manifest unknown (source {source.registry.host}/app@{source.digest})\n"
        "2 mirrored images: 0 present, 2 missing\n"
    )

    project.login(basic_mirror.host)  # sync takes the credentials from the Docker config file
    synced = project.run("sync", "--plain-http", pod)
    assert synced.returncode == 0, synced.stderr
    assert synced.stdout == (
        f"copied: {source.registry.host}/app:v1 -> {mirrored}:v1\n"
        f"copied: {source.registry.host}/app@{source.digest} -> {mirrored}@{source.digest}\n"
        "2 mirrored images: 0 present, 2 copied, 0 failed\n"
    )
    assert f"kmirror: copying [1/2] {source.registry.host}/app:v1 -> {mirrored}:v1" in synced.stderr

    present = project.run("verify", "--plain-http", pod)
    assert (present.returncode, present.stdout) == (0, "2 mirrored images: 2 present\n")

    again = project.run("sync", "--plain-http", pod)  # nothing left to copy
    assert again.returncode == 0
    assert again.stdout.endswith("2 mirrored images: 2 present, 0 copied, 0 failed\n")
    assert "copying" not in again.stderr


def test_registries_section_and_auth_json_without_flags(source: Source, basic_mirror: Registry, make_project: Callable[[str, str], Project]) -> None:
    project = make_project(source.registry.host, basic_mirror.host)
    project.registries(source.registry.host, basic_mirror.host)
    project.auth_file({basic_mirror.host: {"auth": SECRETS[1]}})
    pod = project.manifest(f"{source.registry.host}/app:v1")
    mirrored = f"{basic_mirror.host}/mirror/app:v1"
    assert project.run("verify", pod).stdout == f"{mirrored}: missing: manifest unknown (source {source.registry.host}/app:v1)\n1 mirrored image: 0 present, 1 missing\n"
    synced = project.run("sync", pod)
    assert (synced.returncode, synced.stdout) == (0, f"copied: {source.registry.host}/app:v1 -> {mirrored}\n1 mirrored image: 0 present, 1 copied, 0 failed\n"), synced.stderr
    assert (project.run("verify", pod).stdout) == "1 mirrored image: 1 present\n"
    # Without the section, HTTPS is tried, and the message says how to allow HTTP.
    (project.folder / ".kmirror.yaml").write_text(f"mirrors:\n  - {{from: '{source.registry.host}', to: '{basic_mirror.host}/mirror'}}\n")
    refused = project.run("verify", pod)
    assert refused.returncode == 2 and "set plain_http for it under registries:" in refused.stderr


def test_identity_token_for_verify_and_sync(source: Source, token_mirror: tuple[Registry, TokenService], make_project: Callable[[str, str], Project]) -> None:
    mirror, service = token_mirror
    project = make_project(source.registry.host, mirror.host)
    project.registries(source.registry.host, mirror.host)
    project.auth_file({mirror.host: {"identitytoken": IDENTITY_TOKEN}})
    pod = project.manifest(f"{source.registry.host}/app:v1")
    assert project.run("verify", pod).stdout.endswith("0 present, 1 missing\n")
    assert any(known for query, known in service.requests if query.get("grant_type") == ["refresh_token"])
    # skopeo gets the identity token as such (not an empty password), and pushes with it.
    synced = project.run("sync", pod)
    assert synced.returncode == 0, synced.stderr
    assert project.run("verify", pod).stdout == "1 mirrored image: 1 present\n"


def test_a_digest_the_mirror_lacks_fails(source: Source, basic_mirror: Registry, make_project: Callable[[str, str], Project]) -> None:
    project = make_project(source.registry.host, basic_mirror.host)
    project.login(basic_mirror.host)
    assert project.run("sync", "--plain-http", project.manifest(f"{source.registry.host}/app:v1")).returncode == 0
    wrong = "sha256:" + "f" * 64
    # The tag exists on the mirror, but a runtime pulls by the digest, which does not.
    done = project.run("verify", "--plain-http", project.manifest(f"{source.registry.host}/app:v1@{wrong}"))
    assert done.returncode == 1
    assert done.stdout.startswith(f"{basic_mirror.host}/mirror/app:v1@{wrong}: missing: manifest unknown")
    assert done.stdout.endswith("1 mirrored image: 0 present, 1 missing\n")


def test_wrong_or_no_credentials_are_denied(source: Source, basic_mirror: Registry, make_project: Callable[[str, str], Project]) -> None:
    project = make_project(source.registry.host, basic_mirror.host)
    pod = project.manifest(f"{source.registry.host}/app:v1")
    anonymous = project.run("verify", "--plain-http", pod)
    assert anonymous.returncode == 1
    assert f"denied: HTTP 401: no credentials for {basic_mirror.host}" in anonymous.stdout
    refused = project.run("verify", "--plain-http", "-u", USER, "--password-stdin", pod, stdin="not-" + PASSWORD + "\n")
    assert refused.returncode == 1
    assert "denied: HTTP 401: credentials refused" in refused.stdout


def test_token_authentication(source: Source, token_mirror: tuple[Registry, TokenService], make_project: Callable[[str, str], Project]) -> None:
    mirror, service = token_mirror
    project = make_project(source.registry.host, mirror.host)
    pod = project.manifest(f"{source.registry.host}/app:v1")

    anonymous = project.run("verify", "--plain-http", pod)
    assert anonymous.returncode == 1
    assert f"denied: HTTP 401: no credentials for {mirror.host}" in anonymous.stdout

    project.login(mirror.host)
    assert project.run("verify", "--plain-http", pod).stdout.endswith("0 present, 1 missing\n")
    synced = project.run("sync", "--plain-http", pod)  # skopeo pushes through the same token service
    assert synced.returncode == 0, synced.stderr
    done = project.run("verify", "--plain-http", pod)
    assert (done.returncode, done.stdout) == (0, "1 mirrored image: 1 present\n")
    # kmirror asked the realm for a pull token on the repository, with the registry's service name.
    asked = [(query, known) for query, known in service.requests if query.get("scope") == ["repository:mirror/app:pull"]]
    assert asked and all(query["service"] == ["kmirror-test-registry"] for query, _ in asked)
    assert any(known for _, known in asked)


def test_registry_down_is_exit_2(source: Source, make_project: Callable[[str, str], Project]) -> None:
    down = f"127.0.0.1:{free_port()}"  # nothing listens there
    project = make_project(source.registry.host, down)
    pod = project.manifest(f"{source.registry.host}/app:v1")
    for command in ("verify", "sync"):
        done = project.run(command, "--plain-http", pod)
        assert done.returncode == 2
        assert done.stdout == ""
        assert done.stderr.startswith(f"kmirror: error: cannot reach registry: {down}: ")
        assert "Connection refused" in done.stderr


def test_sync_dry_run_copies_nothing(source: Source, basic_mirror: Registry, make_project: Callable[[str, str], Project]) -> None:
    project = make_project(source.registry.host, basic_mirror.host)
    project.login(basic_mirror.host)
    pod = project.manifest(f"{source.registry.host}/app:v1")
    done = project.run("sync", "--dry-run", "--plain-http", pod)
    assert (done.returncode, done.stdout) == (0, (
        f"would copy: {source.registry.host}/app:v1 -> {basic_mirror.host}/mirror/app:v1\n"
        "1 mirrored image: 0 present, 1 to copy, 0 failed\n"
    ))
    assert project.run("verify", "--plain-http", pod).returncode == 1


def test_sync_failure_shows_skopeo_error(source: Source, basic_mirror: Registry, make_project: Callable[[str, str], Project]) -> None:
    project = make_project(source.registry.host, basic_mirror.host)
    project.login(basic_mirror.host)
    done = project.run("sync", "--plain-http", project.manifest(f"{source.registry.host}/app:no-such-tag"))
    assert done.returncode == 1
    assert done.stdout.endswith("1 mirrored image: 0 present, 0 copied, 1 failed\n")
    assert "kmirror: skopeo failed (exit 1): " in done.stderr
    assert "manifest unknown" in done.stderr
    assert "--dest-authfile" in done.stderr  # the credentials travel in a file, never on the command line


def test_allowlist_reports_without_asking(source: Source, make_project: Callable[[str, str], Project]) -> None:
    down = f"127.0.0.1:{free_port()}"  # would be exit 2 if kmirror asked it anything
    project = make_project(source.registry.host, down)
    (project.folder / "allows.txt").write_text(f"{source.registry.host}/other/*\n")
    done = project.run("verify", "--allowlist", "allows.txt", project.manifest(f"{source.registry.host}/app:v1"))
    assert done.returncode == 1
    assert done.stdout == (
        f"{down}/mirror/app:v1: not allowed: not on the mirror's allow-list (source {source.registry.host}/app:v1)\n"
        "1 mirrored image: 0 present, 1 not allowed\n"
    )


def test_progress_bar_on_a_terminal(source: Source, basic_mirror: Registry, make_project: Callable[[str, str], Project]) -> None:
    project = make_project(source.registry.host, basic_mirror.host)
    project.login(basic_mirror.host)
    pod = project.manifest(f"{source.registry.host}/app:v1")
    returncode, shown = project.run_on_terminal("verify", "--plain-http", pod)
    assert returncode == 1
    assert b"kmirror: verify [" in shown and b"] 1/1" in shown


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (["--username", USER], "", "invalid option: --username: give both --username and --password-stdin"),
        (["--password-stdin"], PASSWORD, "invalid option: --username: give both --username and --password-stdin"),
        (["-u", USER, "--password-stdin", "-"], PASSWORD, "invalid option: --password-stdin: standard input cannot hold both"),
        (["-u", USER, "--password-stdin"], "", "invalid option: --password-stdin: standard input held no password"),
    ],
)
def test_password_options(args: list[str], stdin: str, message: str, make_project: Callable[[str, str], Project]) -> None:
    project = make_project("127.0.0.1:1", "127.0.0.1:2")
    done = project.run("verify", *args, *([] if "-" in args else [project.manifest("127.0.0.1:1/app:v1")]), stdin=stdin)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr.startswith(f"kmirror: error: {message}")


# The client's pieces -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/nginx:pull"',
         ("bearer", {"realm": "https://auth.docker.io/token", "service": "registry.docker.io", "scope": "repository:library/nginx:pull"})),
        ('Bearer realm="https://r.example/t", scope="repository:a/b:pull,push"',
         ("bearer", {"realm": "https://r.example/t", "scope": "repository:a/b:pull,push"})),
        ('Basic realm="kmirror-test"', ("basic", {"realm": "kmirror-test"})),
        ("", ("", {})),
    ],
)
def test_parse_challenge(header: str, expected: tuple[str, dict[str, str]]) -> None:
    assert parse_challenge(header) == expected


def test_docker_config_entries(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    helper = tmp_path / "bin" / "docker-credential-kmtest"
    helper.parent.mkdir()
    # A real credential helper, speaking the protocol: server URL on stdin, JSON on stdout.
    helper.write_text('#!/bin/sh\nread server\n[ "$server" = "helped.example" ] || { echo "credentials not found"; exit 1; }\n'
                      'printf \'{"ServerURL":"%s","Username":"bob","Secret":"s3"}\' "$server"\n')
    helper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{helper.parent}{os.pathsep}{os.environ['PATH']}")
    config = tmp_path / "config.json"
    config.write_text(json.dumps({
        "auths": {
            "https://index.docker.io/v1/": {"auth": base64.b64encode(b"hub:pw:with:colons").decode()},
            "r.example:5000": {"username": "u", "password": "p"},
            "https://other.example/v2/": {"auth": base64.b64encode(b"o:p").decode()},
        },
        "credHelpers": {"helped.example": "kmtest"},
    }))
    lookup = file_lookup(config)
    assert lookup("docker.io") == Credentials("hub", "pw:with:colons")
    assert lookup("r.example:5000") == Credentials("u", "p")
    assert lookup("other.example") == Credentials("o", "p")
    assert lookup("helped.example") == Credentials("bob", "s3")
    assert lookup("unknown.example") is None
    assert "pw:with" not in repr(lookup("docker.io"))
    assert file_lookup(tmp_path / "absent.json")("docker.io") is None


def test_bad_docker_config_is_an_error(tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text('{"auths": {"r.example": {"auth": "bm90LWEtcGFpcg=="}}}')  # "not-a-pair"
    with pytest.raises(KmirrorError, match=r"auths entry for r\.example: 'auth' is not base64 of user:password"):
        file_lookup(config)("r.example")


def test_docs_registries_examples_load() -> None:
    """Every rules example in docs/supply-chain.md with a registries: section is a valid rules file."""
    import re

    from rewriter.config import parse_config

    docs = (Path(__file__).resolve().parents[1] / "docs" / "supply-chain.md").read_text()
    blocks = [b for b in re.findall(r"```(?:yaml|sh)\n(.*?)```", docs, re.S) if "registries:" in b]
    assert len(blocks) == 2
    for block in blocks:
        heredocs = [h for h in re.findall(r"<<'EOF'\n(.*?)^EOF$", block, re.S | re.M) if "registries:" in h]
        text = heredocs[0] if heredocs else block
        loaded = parse_config(text, "docs/.kmirror.yaml")
        assert loaded.registries
