"""`registries:` and `--no-fallback` in `kmirror runtime-config` (rewriter/runtime.py).

Every format, with and without `--no-fallback`, for a plain-HTTP mirror, one with a CA
file and one without certificate checks, parsed by its real parser (tomllib, YAML, JSON,
and containerd's own `config dump`). Then real pulls with containerd's `ctr` through the
generated hosts.toml files, as written by the command line and not edited: from an HTTP
registry, from an HTTPS one trusted through `ca_file`, and without falling back to the
upstream registry.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from test_runtime import Registry, _free_port, _oci_layout, _stop, containerd, registry  # noqa: F401  (fixtures)
from tools import tool

from rewriter.config import parse_config
from rewriter.runtime import FORMATS, runtime_config

PEM = "-----BEGIN CERTIFICATE-----\nMIIBkmirrortest\n-----END CERTIFICATE-----\n"
RULES = (
    "mirrors:\n"
    "  - {from: docker.io, to: '127.0.0.1:5000'}\n"
    "  - {from: quay.io, to: harbor.corp.example/quay}\n"
    "  - {from: ghcr.io, to: 'lab.example:8443'}\n"
    "registries:\n"
    "  '127.0.0.1:5000': {plain_http: true}\n"
    "  harbor.corp.example: {ca_file: ca.pem}\n"
    "  'lab.example:8443': {skip_verify: true}\n"
)


@pytest.fixture
def outputs(tmp_path: Path) -> dict[bool, tuple[dict[str, dict[str, str]], dict[str, list[str]], str]]:
    """For no_fallback False and True: each format's files and warnings; and the CA's path."""
    (tmp_path / "ca.pem").write_text(PEM)
    config = parse_config(RULES, str(tmp_path / ".kmirror.yaml"))
    ca = str(tmp_path / "ca.pem")
    result = {}
    for no_fallback in (False, True):
        made = {fmt: runtime_config(config, fmt, no_fallback) for fmt in FORMATS}
        result[no_fallback] = ({f: m.files for f, m in made.items()}, {f: m.warnings for f, m in made.items()}, ca)
    return result


@pytest.mark.parametrize("no_fallback", [False, True])
def test_containerd_hosts(outputs: dict[bool, tuple[dict[str, dict[str, str]], dict[str, list[str]], str]], no_fallback: bool) -> None:
    files, _, ca = outputs[no_fallback]
    hosts = {name: tomllib.loads(text) for name, text in files["containerd-hosts"].items()}
    docker, quay, ghcr = hosts["docker.io/hosts.toml"], hosts["quay.io/hosts.toml"], hosts["ghcr.io/hosts.toml"]
    assert docker["host"] == {"http://127.0.0.1:5000": {"capabilities": ["pull", "resolve"]}}
    assert quay["host"] == {"https://harbor.corp.example/v2/quay": {"capabilities": ["pull", "resolve"], "override_path": True, "ca": ca}}
    assert ghcr["host"] == {"https://lab.example:8443": {"capabilities": ["pull", "resolve"], "skip_verify": True}}
    if no_fallback:  # the server, tried last, is the mirror itself
        assert [docker["server"], quay["server"], ghcr["server"]] == ["http://127.0.0.1:5000", "https://harbor.corp.example/v2/quay", "https://lab.example:8443"]
        assert quay["override_path"] is True and quay["ca"] == ca and ghcr["skip_verify"] is True
    else:
        assert [docker["server"], quay["server"], ghcr["server"]] == ["https://registry-1.docker.io", "https://quay.io", "https://ghcr.io"]
        assert "ca" not in quay and "skip_verify" not in ghcr
    # kind mounts the same files, and the CA at the path they name.
    kind = files["kind"]
    assert {k.removeprefix("certs.d/"): v for k, v in kind.items() if k.startswith("certs.d/")} == files["containerd-hosts"]
    mounts = yaml.safe_load(kind["kind-config.yaml"])["nodes"][0]["extraMounts"]
    assert {"hostPath": ca, "containerPath": ca, "readOnly": True} in mounts


@pytest.mark.parametrize("no_fallback", [False, True])
def test_containerd_config(outputs: dict[bool, tuple[dict[str, dict[str, str]], dict[str, list[str]], str]], no_fallback: bool, tmp_path: Path) -> None:
    files, warnings, ca = outputs[no_fallback]
    (tmp_path / "config.toml").write_text(files["containerd-config"]["config.toml"])
    dump = subprocess.run([tool("containerd"), "--config", str(tmp_path / "config.toml"), "config", "dump"], capture_output=True, text=True, timeout=60)
    assert dump.returncode == 0, dump.stderr
    registry_config = tomllib.loads(dump.stdout)["plugins"]["io.containerd.grpc.v1.cri"]["registry"]
    assert registry_config["mirrors"]["docker.io"]["endpoint"] == ["http://127.0.0.1:5000"]
    assert registry_config["configs"]["harbor.corp.example"]["tls"]["ca_file"] == ca
    assert registry_config["configs"]["lab.example:8443"]["tls"]["insecure_skip_verify"] is True
    assert any("--no-fallback" in w for w in warnings["containerd-config"]) is no_fallback


@pytest.mark.parametrize("no_fallback", [False, True])
def test_k3s(outputs: dict[bool, tuple[dict[str, dict[str, str]], dict[str, list[str]], str]], no_fallback: bool) -> None:
    files, warnings, ca = outputs[no_fallback]
    conf = yaml.safe_load(files["k3s"]["registries.yaml"])
    assert conf["mirrors"]["docker.io"]["endpoint"] == ["http://127.0.0.1:5000"]
    assert conf["mirrors"]["quay.io"]["endpoint"] == ["https://harbor.corp.example"]
    assert conf["configs"] == {"harbor.corp.example": {"tls": {"ca_file": ca}}, "lab.example:8443": {"tls": {"insecure_skip_verify": True}}}
    assert any("--disable-default-registry-endpoint" in w for w in warnings["k3s"]) is no_fallback


@pytest.mark.parametrize("no_fallback", [False, True])
def test_crio(outputs: dict[bool, tuple[dict[str, dict[str, str]], dict[str, list[str]], str]], no_fallback: bool) -> None:
    files, warnings, _ = outputs[no_fallback]
    registries = {r["prefix"]: r for r in tomllib.loads(files["crio"]["registries.conf"])["registry"]}
    docker, quay, ghcr = registries["docker.io"], registries["quay.io"], registries["ghcr.io"]
    if no_fallback:  # the mirror is the location: the source is never asked
        assert (docker["location"], docker["insecure"], "mirror" in docker) == ("127.0.0.1:5000", True, False)
        assert (quay["location"], ghcr["location"], ghcr["insecure"]) == ("harbor.corp.example/quay", "lab.example:8443", True)
    else:
        assert (docker["location"], docker["mirror"]) == ("docker.io", [{"location": "127.0.0.1:5000", "insecure": True}])
        assert ghcr["mirror"] == [{"location": "lab.example:8443", "insecure": True}]
        assert quay["mirror"] == [{"location": "harbor.corp.example/quay"}]
    assert any("/etc/containers/certs.d/harbor.corp.example/ca.crt" in w for w in warnings["crio"])


@pytest.mark.parametrize("no_fallback", [False, True])
def test_docker(outputs: dict[bool, tuple[dict[str, dict[str, str]], dict[str, list[str]], str]], no_fallback: bool) -> None:
    files, warnings, _ = outputs[no_fallback]
    assert json.loads(files["docker"]["daemon.json"]) == {"registry-mirrors": ["http://127.0.0.1:5000"], "insecure-registries": ["127.0.0.1:5000"]}
    assert any("Docker always falls back to Docker Hub" in w for w in warnings["docker"]) is no_fallback


@pytest.mark.parametrize("no_fallback", [False, True])
def test_talos(outputs: dict[bool, tuple[dict[str, dict[str, str]], dict[str, list[str]], str]], no_fallback: bool) -> None:
    files, _, _ = outputs[no_fallback]
    registries = yaml.safe_load(files["talos"]["talos-registries.yaml"])["machine"]["registries"]
    assert registries["mirrors"]["docker.io"]["endpoints"] == ["http://127.0.0.1:5000"]
    assert all(m.get("skipFallback", False) is no_fallback for m in registries["mirrors"].values())
    assert base64.b64decode(registries["config"]["harbor.corp.example"]["tls"]["ca"]).decode() == PEM
    assert registries["config"]["lab.example:8443"]["tls"] == {"insecureSkipVerify": True}


def test_kubeadm_is_not_affected(outputs: dict[bool, tuple[dict[str, dict[str, str]], dict[str, list[str]], str]]) -> None:
    assert outputs[True][0]["kubeadm"] == outputs[False][0]["kubeadm"]
    assert yaml.safe_load(outputs[True][0]["kubeadm"]["kubeadm-config.yaml"])["kind"] == "ClusterConfiguration"


# --- real pulls through the generated hosts.toml -------------------------------------------------


@dataclass
class HttpRegistry:
    """A distribution registry on 127.0.0.1 over plain HTTP, with its access log."""

    host: str
    process: subprocess.Popen[bytes]
    log: Path

    def requests(self, agent: str) -> list[str]:
        return re.findall(rf'"((?:GET|HEAD) /v2/\S+) HTTP/[\d.]+" \d+ \d+ "[^"]*" "{re.escape(agent)}', self.log.read_text())


def http_registry(folder: Path) -> HttpRegistry:
    folder.mkdir(parents=True)
    host = f"127.0.0.1:{_free_port()}"
    (folder / "config.yml").write_text(json.dumps({
        "version": 0.1, "storage": {"filesystem": {"rootdirectory": str(folder / "data")}}, "http": {"addr": host},
    }))
    log = folder / "registry.log"
    with log.open("wb") as out:
        process = subprocess.Popen([tool("docker-registry"), "serve", str(folder / "config.yml")], stdout=out, stderr=out)
    deadline = time.monotonic() + 20
    while "listening on" not in log.read_text():
        assert process.poll() is None and time.monotonic() < deadline, log.read_text()
        time.sleep(0.1)
    return HttpRegistry(host, process, log)


@pytest.fixture
def http_registries(tmp_path: Path) -> Iterator[tuple[HttpRegistry, HttpRegistry]]:
    """A source registry holding app:1.0 and an empty mirror registry, both plain HTTP."""
    source, mirror = http_registry(tmp_path / "source"), http_registry(tmp_path / "mirror")
    _oci_layout(tmp_path / "layout")
    subprocess.run([tool("skopeo"), "copy", "--quiet", "--dest-tls-verify=false", f"oci:{tmp_path / 'layout'}:1.0", f"docker://{source.host}/app:1.0"],
                   check=True, capture_output=True, timeout=120)
    yield source, mirror
    _stop(source.process)
    _stop(mirror.process)


def generate(folder: Path, rules: str, *options: str) -> Path:
    """Run `kmirror runtime-config --format containerd-hosts -o hosts.d` in `folder` with `rules`."""
    folder.mkdir(exist_ok=True)
    (folder / ".kmirror.yaml").write_text(rules)
    env = {k: v for k, v in os.environ.items() if k != "KMIRROR_CONFIG"}
    done = subprocess.run(
        [sys.executable, "-c", "import sys; from rewriter.console import main; sys.exit(main())",
         "runtime-config", "--format", "containerd-hosts", "--output-dir", "hosts.d", *options],
        cwd=folder, env=env, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return folder / "hosts.d"


def pull(socket: str, hosts: Path, image: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [tool("ctr"), "--address", socket, "--namespace", f"kmirror-{time.monotonic_ns()}", "images", "pull", "--hosts-dir", str(hosts), image],
        capture_output=True, text=True, timeout=120, env=env,
    )


def test_containerd_pulls_from_an_http_mirror(http_registries: tuple[HttpRegistry, HttpRegistry], containerd: str, tmp_path: Path) -> None:
    source, _ = http_registries
    unreachable = f"localhost:{_free_port()}"
    rules = f"mirrors:\n  - {{from: '{unreachable}', to: '{source.host}'}}\nregistries:\n  '{source.host}': {{plain_http: true}}\n"
    hosts = generate(tmp_path, rules)
    done = pull(containerd, hosts, f"{unreachable}/app:1.0")
    assert done.returncode == 0, done.stdout + done.stderr
    assert any(r.startswith("GET /v2/app/manifests/") for r in source.requests("containerd/"))


def test_no_fallback_keeps_pulls_off_the_upstream(http_registries: tuple[HttpRegistry, HttpRegistry], containerd: str, tmp_path: Path) -> None:
    source, mirror = http_registries  # the mirror lacks the image; the source has it
    rules = (f"mirrors:\n  - {{from: '{source.host}', to: '{mirror.host}/mirror'}}\n"
             f"registries:\n  '{source.host}': {{plain_http: true}}\n  '{mirror.host}': {{plain_http: true}}\n")
    hosts = generate(tmp_path / "fallback", rules)
    allowed = pull(containerd, hosts, f"{source.host}/app:1.0")
    assert allowed.returncode == 0, allowed.stdout + allowed.stderr  # from the source, after the mirror's 404
    assert source.requests("containerd/")
    asked = len(source.requests("containerd/"))
    closed = pull(containerd, generate(tmp_path / "closed", rules, "--no-fallback"), f"{source.host}/app:1.0")
    assert closed.returncode != 0
    assert "not found" in closed.stdout + closed.stderr
    assert len(source.requests("containerd/")) == asked  # not asked again
    assert any("/v2/mirror/app/manifests/1.0" in r for r in mirror.requests("containerd/"))


def test_containerd_trusts_the_ca_file(registry: Registry, containerd: str, tmp_path: Path) -> None:
    unreachable = f"localhost:{_free_port()}"
    (tmp_path / "certs").mkdir()
    (tmp_path / "certs" / "ca.pem").write_bytes(registry.ca.read_bytes())
    host = f"127.0.0.1:{registry.port}"
    env = {k: v for k, v in os.environ.items() if k != "SSL_CERT_FILE"}  # trust comes from hosts.toml only
    untrusted = generate(tmp_path, f"mirrors:\n  - {{from: '{unreachable}', to: '{host}'}}\n")
    refused = pull(containerd, untrusted, f"{unreachable}/app:1.0", env)
    assert refused.returncode != 0 and "certificate" in refused.stdout + refused.stderr
    trusted = generate(tmp_path, f"mirrors:\n  - {{from: '{unreachable}', to: '{host}'}}\nregistries:\n  '{host}': {{ca_file: certs/ca.pem}}\n")
    done = pull(containerd, trusted, f"{unreachable}/app:1.0", env)
    assert done.returncode == 0, done.stdout + done.stderr
