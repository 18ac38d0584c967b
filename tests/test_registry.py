"""The registry client against hostile servers on 127.0.0.1 (rewriter/registry.py, rewriter/transport.py).

Each server is a real HTTP (or HTTPS, with a certificate made by openssl) server in this
process that answers as a test tells it to: a token realm on plain HTTP or on another site,
an HTTPS -> HTTP redirect, endless or trickling bodies and headers. The bounds tested are
the ones docs/guarantees.md lists under "Registries".
"""

from __future__ import annotations

import json
import os
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from tools import tool

from rewriter.auth import Credentials
from rewriter.config import RegistrySettings
from rewriter.errors import KmirrorError
from rewriter.reference import parse
from rewriter.registry import DENIED, FAILED, MAX_BODY, PRESENT, Client, Options, same_site

SECRET = "hunter2-registry-secret"
CREDENTIALS = Credentials("alice", SECRET)
DIGEST = "sha256:" + "a" * 64
Handler = Callable[[BaseHTTPRequestHandler], None]


@dataclass
class Server:
    """An HTTP(S) server on 127.0.0.1 whose every request goes to `handle`; it records what it got."""

    handle: Handler
    tls: ssl.SSLContext | None = None
    requests: list[tuple[str, str, str | None]] = field(default_factory=list)  # method, path, Authorization
    sent: int = 0

    def __post_init__(self) -> None:
        server = self

        class Answer(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _any(self) -> None:
                server.requests.append((self.command, self.path, self.headers.get("Authorization")))
                try:
                    server.handle(self)
                except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError):
                    pass

            do_GET = do_HEAD = do_POST = _any

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Answer)
        self.httpd.daemon_threads = True
        if self.tls is not None:
            self.httpd.socket = self.tls.wrap_socket(self.httpd.socket, server_side=True)
        self.host = f"127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def reply(status: int, headers: dict[str, str] | None = None, body: bytes = b"") -> Handler:
    def handle(h: BaseHTTPRequestHandler) -> None:
        h.send_response(status)
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        if h.command != "HEAD":
            h.wfile.write(body)

    return handle


def registry(challenge: str | None) -> Handler:
    """A registry: /v2/ answers 401 with `challenge` (200 without), manifests 200 to a Bearer token, else 401."""

    def handle(h: BaseHTTPRequestHandler) -> None:
        authorized = (h.headers.get("Authorization") or "").startswith("Bearer ")
        if challenge is None or (h.path != "/v2/" and authorized):
            reply(200, {"Docker-Content-Digest": DIGEST})(h)
        else:
            reply(401, {"WWW-Authenticate": challenge})(h)

    return handle


def token_service(h: BaseHTTPRequestHandler) -> None:
    reply(200, {"Content-Type": "application/json"}, json.dumps({"token": "issued"}).encode())(h)


@pytest.fixture
def servers() -> Iterator[Callable[..., Server]]:
    started: list[Server] = []

    def start(handle: Handler, tls: ssl.SSLContext | None = None) -> Server:
        started.append(Server(handle, tls))
        return started[-1]

    yield start
    for server in started:
        server.stop()


@dataclass
class Cert:
    ca_file: Path
    context: ssl.SSLContext


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> Cert:
    """A self-signed certificate for 127.0.0.1: the server side, and the file clients trust it with."""
    folder = tmp_path_factory.mktemp("tls")
    key, crt = folder / "key.pem", folder / "cert.pem"
    subprocess.run(
        [tool("openssl"), "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(crt),
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-days", "2"],
        check=True, capture_output=True,
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(crt, key)
    return Cert(crt, context)


def options(**kwargs: object) -> Options:
    settings: dict[str, object] = {"retries": 0, "credentials": lambda host: CREDENTIALS}
    settings.update(kwargs)
    return Options(**settings)  # type: ignore[arg-type]


def ask(host: str, opts: Options) -> tuple[str, str]:
    with Client(opts) as client:
        answer = client.exists(parse(f"{host}/app:v1"))
    assert SECRET not in answer.detail
    return answer.state, answer.detail


def finishes(run: Callable[[], object], guard: float = 120) -> object:
    """`run()`'s result or exception, from a thread; fails the test if the thread never ends (a hang)."""
    box: list[object] = []

    def target() -> None:
        try:
            box.append(run())
        except Exception as exc:  # the outcome under test
            box.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(guard)
    assert not thread.is_alive(), "the request never ended"
    return box[0]


# --- credentials go only where they may (issue 22, item 6) -------------------------------------


def test_no_credentials_to_a_plain_http_realm_of_an_https_registry(servers: Callable[..., Server], cert: Cert) -> None:
    realm = servers(token_service)
    https = servers(registry(f'Bearer realm="http://{realm.host}/token",service="s"'), cert.context)
    trusted = (RegistrySettings(https.host, ca_file=str(cert.ca_file)),)
    state, detail = ask(https.host, options(registries=trusted))
    assert state == DENIED
    assert f"its token server {realm.host} is plain HTTP" in detail
    assert realm.requests == []  # not even asked anonymously with the credentials left out
    # Allowed plain HTTP explicitly, the realm gets them.
    allowed = (*trusted, RegistrySettings(realm.host, plain_http=True))
    assert ask(https.host, options(registries=allowed))[0] == PRESENT
    assert realm.requests[0][2] is not None and realm.requests[0][2].startswith("Basic ")


def test_anonymous_token_from_a_plain_http_realm_is_fine(servers: Callable[..., Server], cert: Cert) -> None:
    realm = servers(token_service)
    https = servers(registry(f'Bearer realm="http://{realm.host}/token"'), cert.context)
    state, _ = ask(https.host, options(registries=(RegistrySettings(https.host, ca_file=str(cert.ca_file)),), credentials=lambda h: None))
    assert state == PRESENT
    assert [auth for _, _, auth in realm.requests] == [None]


def test_no_credentials_to_a_realm_on_another_site(servers: Callable[..., Server]) -> None:
    realm = servers(token_service)
    port = realm.host.split(":")[1]
    plain = servers(registry(f'Bearer realm="http://localhost:{port}/token"'))
    state, detail = ask(plain.host, options(plain_http=True))
    assert state == DENIED
    assert f"its token server localhost:{port} is outside the registry's site" in detail
    assert f"token_hosts: [localhost]" in detail
    assert realm.requests == []
    named = (RegistrySettings(plain.host, token_hosts=("localhost",)),)
    assert ask(plain.host, options(plain_http=True, registries=named))[0] == PRESENT
    assert realm.requests and realm.requests[0][2] is not None


@pytest.mark.parametrize(
    ("registry_host", "server", "same"),
    [
        ("registry-1.docker.io", "auth.docker.io", True),
        ("registry.gitlab.com", "gitlab.com", True),
        ("ghcr.io", "ghcr.io", True),
        ("harbor.local:5000", "harbor.local:443", True),
        ("harbor.local", "evil.local", False),
        ("ghcr.io", "ghcr.io.evil.com", False),
        ("quay.io", "auth.quay.io", True),
        ("quay.io", "quay.io.example", False),
        ("127.0.0.1:5000", "127.0.0.1:6000", True),
        ("127.0.0.1:5000", "127.0.0.2", False),
        ("10.0.0.1", "0.0.1", False),
    ],
)
def test_same_site(registry_host: str, server: str, same: bool) -> None:
    assert same_site(registry_host, server) is same


# --- bounded bodies and an overall deadline (issue 22, item 7) ---------------------------------


def endless(status: int, headers: dict[str, str] | None = None, claimed: int = 3 * 1024**3) -> Callable[[Server], Handler]:
    """A handler that answers `status` with a body of `claimed` bytes, sent as fast as the client takes them."""

    def make(server: Server) -> Handler:
        def handle(h: BaseHTTPRequestHandler) -> None:
            h.send_response(status)
            for k, v in (headers or {}).items():
                h.send_header(k, v)
            h.send_header("Content-Length", str(claimed))
            h.end_headers()
            chunk = b"0" * 65536
            while server.sent < claimed:
                h.wfile.write(chunk)
                server.sent += len(chunk)

        return handle

    return make


def lazy_server(servers: Callable[..., Server], make: Callable[[Server], Handler]) -> Server:
    holder: list[Server] = []
    server = servers(lambda h: make(holder[0])(h))
    holder.append(server)
    return server


def test_a_huge_v2_body_is_not_read(servers: Callable[..., Server]) -> None:
    server = lazy_server(servers, endless(200))
    with Client(options(plain_http=True)) as client:
        client.ping(server.host)
    time.sleep(0.5)  # let the server notice the closed connection
    assert server.sent < 64 * 1024**2  # of 3 GB: only what socket buffers took before kmirror hung up


def test_a_huge_token_answer_is_refused(servers: Callable[..., Server]) -> None:
    realm = lazy_server(servers, endless(200, {"Content-Type": "application/json"}))
    plain = servers(registry(f'Bearer realm="http://{realm.host}/token"'))
    state, detail = ask(plain.host, options(plain_http=True))
    assert state == FAILED
    assert detail == f"cannot reach token server: {realm.host} (for registry {plain.host}): an answer larger than 4 MiB from 127.0.0.1 (not read further)"
    time.sleep(0.5)
    assert MAX_BODY < realm.sent < MAX_BODY + 64 * 1024**2


def trickle(h: BaseHTTPRequestHandler, stop: threading.Event) -> None:
    """One byte at a time, forever: a status line, then header bytes that never end."""
    h.wfile.write(b"HTTP/1.1 200 OK\r\nX-Slow: ")
    h.wfile.flush()
    while not stop.wait(0.2):
        h.wfile.write(b"a")
        h.wfile.flush()


@pytest.fixture
def stop() -> Iterator[threading.Event]:
    event = threading.Event()
    yield event
    event.set()


def test_a_trickling_v2_ends_at_the_deadline(servers: Callable[..., Server], stop: threading.Event) -> None:
    slow = servers(lambda h: trickle(h, stop))

    def ping() -> None:
        with Client(options(plain_http=True, deadline=2.0)) as client:
            client.ping(slow.host)

    outcome = finishes(ping)
    assert isinstance(outcome, KmirrorError)
    assert str(outcome) == f"cannot reach registry: {slow.host}: no complete answer within 2 s"


def test_a_trickling_token_body_ends_at_the_deadline(servers: Callable[..., Server], stop: threading.Event) -> None:
    def slow_body(h: BaseHTTPRequestHandler) -> None:
        h.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000000\r\n\r\n")
        while not stop.wait(0.2):
            h.wfile.write(b" ")
            h.wfile.flush()

    realm = servers(slow_body)
    plain = servers(registry(f'Bearer realm="http://{realm.host}/token"'))
    outcome = finishes(lambda: ask(plain.host, options(plain_http=True, deadline=2.0)))
    assert outcome == (FAILED, f"cannot reach token server: {realm.host} (for registry {plain.host}): no complete answer within 2 s")


# --- no downgrade (issue 22, item 8) -----------------------------------------------------------


def test_an_https_to_http_redirect_is_refused(servers: Callable[..., Server], cert: Cert) -> None:
    downgraded = servers(reply(200, {"Docker-Content-Digest": DIGEST}))

    def redirect(h: BaseHTTPRequestHandler) -> None:
        if h.path == "/v2/":
            reply(200)(h)
        else:
            reply(307, {"Location": f"http://{downgraded.host}{h.path}"})(h)

    https = servers(redirect, cert.context)
    state, detail = ask(https.host, options(registries=(RegistrySettings(https.host, ca_file=str(cert.ca_file)),)))
    assert (state, detail) == (FAILED, f"cannot reach registry: {https.host}: refused a redirect from HTTPS to http://127.0.0.1 (a downgrade)")
    assert downgraded.requests == []


def test_a_redirect_to_another_host_drops_the_credentials(servers: Callable[..., Server]) -> None:
    elsewhere = servers(reply(200, {"Docker-Content-Digest": DIGEST}))
    port = elsewhere.host.split(":")[1]

    def redirect(h: BaseHTTPRequestHandler) -> None:
        if h.headers.get("Authorization") is None and h.path != "/v2/":
            reply(401, {"WWW-Authenticate": 'Basic realm="r"'})(h)
        else:
            reply(307, {"Location": f"http://localhost:{port}{h.path}"})(h) if h.path != "/v2/" else reply(200)(h)

    plain = servers(redirect)
    assert ask(plain.host, options(plain_http=True)) == (PRESENT, "")
    assert [auth for method, _, auth in elsewhere.requests] == [None]


# --- messages that name the right server (issue 22, item 12) -----------------------------------


def test_an_unreachable_token_server_is_named(servers: Callable[..., Server]) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        down = f"127.0.0.1:{s.getsockname()[1]}"
    plain = servers(registry(f'Bearer realm="http://{down}/token"'))
    state, detail = ask(plain.host, options(plain_http=True))
    assert state == FAILED
    assert detail.startswith(f"cannot reach token server: {down} (for registry {plain.host}): ")
    assert "Connection refused" in detail


# --- end to end: the rules file's registries: section and the command line ------------------


def test_verify_trusts_the_ca_file_of_the_rules_file(servers: Callable[..., Server], cert: Cert, tmp_path: Path) -> None:
    https = servers(registry(None), cert.context)
    (tmp_path / "certs").mkdir()
    (tmp_path / "certs" / "ca.pem").write_bytes(cert.ca_file.read_bytes())
    rules = f"mirrors:\n  - {{from: docker.io, to: {https.host}/hub}}\nregistries:\n  {https.host}: {{ca_file: certs/ca.pem}}\n"
    (tmp_path / ".kmirror.yaml").write_text(rules)
    (tmp_path / "pod.yaml").write_text("kind: Pod\nspec:\n  containers:\n  - {name: a, image: nginx:1.25}\n")
    env = {k: v for k, v in os.environ.items() if k not in ("KMIRROR_CONFIG", "REGISTRY_AUTH_FILE", "DOCKER_CONFIG")}
    env.update(HOME=str(tmp_path), XDG_RUNTIME_DIR=str(tmp_path / "run"))
    run = [sys.executable, "-c", "import sys; from rewriter.cli import main; sys.exit(main())", "verify", "pod.yaml"]
    done = subprocess.run(run, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert (done.returncode, done.stdout) == (0, "1 mirrored image: 1 present\n"), done.stderr
    (tmp_path / ".kmirror.yaml").write_text(rules.replace("ca_file: certs/ca.pem", "skip_verify: false"))
    untrusted = subprocess.run(run, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert untrusted.returncode == 2
    assert "CERTIFICATE_VERIFY_FAILED" in untrusted.stderr and "set ca_file for it under registries:" in untrusted.stderr


def test_what_a_registry_says_reaches_the_report_escaped(servers: Callable[..., Server], tmp_path: Path) -> None:
    # A registry's words (here the digest it sends) are shown with control characters escaped:
    # a hostile mirror cannot rewrite the terminal of whoever runs `verify`.
    hostile = servers(reply(200, {"Docker-Content-Digest": "sha256:\x1b[2J\x1b[31mfine"}))
    (tmp_path / ".kmirror.yaml").write_text(f"mirrors:\n  - {{from: docker.io, to: {hostile.host}/hub}}\nregistries:\n  {hostile.host}: {{plain_http: true}}\n")
    (tmp_path / "pod.yaml").write_text(f"kind: Pod\nspec:\n  containers:\n  - {{name: a, image: 'nginx@{DIGEST}'}}\n")
    env = {k: v for k, v in os.environ.items() if k not in ("KMIRROR_CONFIG", "REGISTRY_AUTH_FILE", "DOCKER_CONFIG")}
    env.update(HOME=str(tmp_path), XDG_RUNTIME_DIR=str(tmp_path / "run"))
    run = [sys.executable, "-c", "import sys; from rewriter.cli import main; sys.exit(main())", "verify", "pod.yaml"]
    done = subprocess.run(run, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 1, done.stderr
    assert "\x1b" not in done.stdout
    assert f"{hostile.host}/hub/library/nginx@{DIGEST}: missing: the registry answered digest sha256:\\x1b[2J\\x1b[31mfine (source nginx@{DIGEST})\n" in done.stdout
