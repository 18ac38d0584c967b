"""Runtime mirror configuration (rewriter/runtime.py, `kmirror runtime-config`).

Golden cases live in fixtures/runtime/<case>/: `rules.yaml`, and per format a folder
`<format>/` with the expected files and `<format>.warnings` with the expected warnings.
Every output is parsed with its format's parser, then read the way the runtime reads it to
check that each image is pulled from where `RuleSet.decide` sends it, or that a warning says
why not. Real containerd and skopeo pull through the generated files from a local registry.

Regenerate the golden files after a deliberate change: python tests/test_runtime.py
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml
from tools import tool

from rewriter.cli import main
from rewriter.config import Config, parse_config
from rewriter.reference import ImageRef, parse
from rewriter.runtime import FORMATS, KUBEADM_IMAGES, KUBEADM_REGISTRY, MULTI_FILE, RECORD, exact_rules, runtime_config

REPO = Path(__file__).resolve().parent.parent
CASES = REPO / "fixtures" / "runtime"
DOCS = REPO / "docs" / "runtime-config.md"

# Images that nodes pull, on every registry the presets and the custom cases mention.
SAMPLES = (
    "nginx:1.25",
    "docker.io/library/nginx:1.16",
    "docker.io/bitnami/redis:7.2",
    "quay.io/prometheus/node-exporter:v1.8.0",
    "quay.io/internal/tool:1",
    "quay.io/example-internal/tool:1",
    "gcr.io/google-containers/pause:3.2",
    "gcr.io/google_containers/kube-proxy:v1.18.0",
    "gcr.io/kubebuilder/kube-rbac-proxy:v0.8.0",
    "gcr.io/other/app:1",
    "k8s.gcr.io/pause:3.2",
    "k8s.gcr.io/sig-storage/csi-node-driver-registrar:v2.3.0",
    "registry.k8s.io/kube-proxy:v1.31.0",
    "registry.k8s.io/pause:3.10",
    "registry.k8s.io/coredns/coredns:v1.11.3",
    "ghcr.io/fluxcd/source-controller:v1.3.0",
    "mcr.microsoft.com/dotnet/runtime:8.0",
    "docker.elastic.co/elasticsearch/elasticsearch:8.14.0",
    "nvcr.io/nvidia/cuda:12.4.0-base-ubuntu22.04",
    "harbor.example.com/team/app:1",
)


def cases() -> list[str]:
    return sorted(p.name for p in CASES.iterdir() if (p / "rules.yaml").is_file())


def load(case: str) -> Config:
    return parse_config((CASES / case / "rules.yaml").read_text(encoding="utf-8"), "rules.yaml")


def expected_files(case: str, fmt: str) -> dict[str, str]:
    folder = CASES / case / fmt
    return {
        p.relative_to(folder).as_posix(): p.read_text(encoding="utf-8")
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def expected_warnings(case: str, fmt: str) -> list[str]:
    return (CASES / case / f"{fmt}.warnings").read_text(encoding="utf-8").splitlines()


def regenerate() -> None:
    """Rewrite every case's golden files from the current code."""
    for case in cases():
        for fmt in FORMATS:
            result = runtime_config(load(case), fmt)
            folder = CASES / case / fmt
            shutil.rmtree(folder, ignore_errors=True)
            for name, text in result.files.items():
                (folder / name).parent.mkdir(parents=True, exist_ok=True)
                (folder / name).write_text(text, encoding="utf-8")
            (CASES / case / f"{fmt}.warnings").write_text("".join(w + "\n" for w in result.warnings), encoding="utf-8")


# --- golden files and parsers ----------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("case", cases())
def test_golden(case: str, fmt: str) -> None:
    result = runtime_config(load(case), fmt)
    assert result.files == expected_files(case, fmt)
    assert result.warnings == expected_warnings(case, fmt)


def test_cases_cover_presets_and_custom_rules() -> None:
    from rewriter.config import preset_names

    names = cases()
    assert {f"preset-{p}" for p in preset_names()} <= set(names)
    assert any(not n.startswith("preset-") for n in names)


def parsed(fmt: str, files: dict[str, str]) -> dict[str, object]:
    """Each file parsed by its format's parser (TOML, JSON or YAML)."""
    result: dict[str, object] = {}
    for name, text in files.items():
        if name.endswith((".toml", ".conf")):
            result[name] = tomllib.loads(text)
        elif name.endswith(".json"):
            result[name] = json.loads(text)
        else:
            assert name.endswith(".yaml"), name
            result[name] = yaml.safe_load(text)
    return result


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("case", cases())
def test_output_parses(case: str, fmt: str) -> None:
    files = runtime_config(load(case), fmt).files
    documents = parsed(fmt, files)
    if fmt == "kind":
        cluster = documents["kind-config.yaml"]
        assert isinstance(cluster, dict) and cluster["kind"] == "Cluster"
        patch = tomllib.loads(cluster["containerdConfigPatches"][0])
        assert patch["plugins"]["io.containerd.grpc.v1.cri"]["registry"]["config_path"] == "/etc/containerd/certs.d"
        mounts = [m for node in cluster["nodes"] for m in node.get("extraMounts", [])]
        hosts = sorted(n.split("/")[1] for n in files if n.startswith("certs.d/"))
        assert sorted(m["hostPath"].split("/")[-1] for m in mounts) == hosts
        assert all(m["containerPath"] == "/etc/containerd/certs.d/" + m["hostPath"].split("/")[-1] for m in mounts)
        # kind's hosts.toml files are containerd's.
        plain = runtime_config(load(case), "containerd-hosts").files
        assert {n.removeprefix("certs.d/"): t for n, t in files.items() if n.startswith("certs.d/")} == plain
    if fmt == "kubeadm":
        document = documents["kubeadm-config.yaml"]
        assert isinstance(document, dict)
        assert (document["apiVersion"], document["kind"]) == ("kubeadm.k8s.io/v1beta4", "ClusterConfiguration")


def test_toml_strings_are_escaped() -> None:
    from rewriter.runtime import _toml

    for text in ('a"b', "a\\b", "tab\there", "line\nbreak", "ü"):
        assert tomllib.loads(f"x = {_toml(text)}")["x"] == text


# --- what a runtime pulls, read from the parsed output -------------------------------------


def _as_ref(host: str, path: str, ref: ImageRef) -> str:
    host = "docker.io" if host == "registry-1.docker.io" else host
    return f"{host}/{path.strip('/')}{ref.suffix}"


def _url_pull(url: str, override: bool, ref: ImageRef) -> str:
    """The reference a containerd-style endpoint URL serves `ref` as."""
    parts = urlsplit(url)
    path = parts.path if parts.path and override else (parts.path.rstrip("/") or "") + "/v2"
    assert path.startswith("/v2"), url  # a registry API path
    return _as_ref(parts.netloc, f"{path[3:]}/{ref.repository}", ref)


def pulled(fmt: str, files: dict[str, str], ref: ImageRef) -> str | None:
    """What the runtime configured by `files` pulls first for `ref`; None: the registry itself."""
    docs = parsed(fmt, files)
    if fmt in ("containerd-hosts", "kind"):
        name = f"{'certs.d/' if fmt == 'kind' else ''}{ref.registry}/hosts.toml"
        if name not in docs:
            return None
        hosts = docs[name]["host"]  # type: ignore[index]
        url, settings = next(iter(hosts.items()))
        return _url_pull(url, settings.get("override_path", False), ref)
    if fmt == "containerd-config":
        mirrors = docs["config.toml"].get("plugins", {}).get("io.containerd.grpc.v1.cri", {}).get("registry", {}).get("mirrors", {})  # type: ignore[union-attr]
        if ref.registry not in mirrors:
            return None
        url = mirrors[ref.registry]["endpoint"][0]
        return _url_pull(url, True, ref)  # the CRI plugin keeps a given path as it is
    if fmt == "talos":
        mirrors = docs["talos-registries.yaml"]["machine"]["registries"]["mirrors"]  # type: ignore[index]
        if ref.registry not in mirrors:
            return None
        entry = mirrors[ref.registry]
        return _url_pull(entry["endpoints"][0], entry.get("overridePath", False), ref)
    if fmt == "docker":
        urls = docs["daemon.json"]["registry-mirrors"]  # type: ignore[index]
        return _url_pull(urls[0], False, ref) if urls and ref.registry == "docker.io" else None
    if fmt == "k3s":
        mirrors = docs["registries.yaml"]["mirrors"]  # type: ignore[index]
        if ref.registry not in mirrors:
            return None
        entry = mirrors[ref.registry]
        repository = ref.repository
        matching = [(p, r) for p, r in entry.get("rewrite", {}).items() if re.search(p, repository)]
        assert len(matching) <= 1, f"k3s applies overlapping rewrites in no fixed order: {matching}"
        for pattern, replacement in matching:
            repository = re.sub(pattern, re.sub(r"\$\{(\d+)\}", r"\\g<\1>", replacement), repository)
        endpoint = urlsplit(entry["endpoint"][0])
        assert endpoint.path == "", endpoint  # k3s endpoints are registry roots; rewrites carry paths
        return _as_ref(endpoint.netloc, repository, ref)
    if fmt == "crio":
        text = f"{ref.registry}/{ref.repository}"
        best = None
        for registry in docs["registries.conf"].get("registry", []):  # type: ignore[union-attr]
            prefix = registry["prefix"]
            if (text == prefix or text.startswith(prefix + "/")) and (best is None or len(prefix) > len(best["prefix"])):
                best = registry
        if best is None or not best.get("mirror"):
            return None
        location = best["mirror"][0]["location"]
        host, _, path = location.partition("/")
        rest = text[len(best["prefix"]) :].lstrip("/")
        return _as_ref(host, "/".join(p for p in (path, rest) if p), ref)
    raise AssertionError(fmt)


@pytest.mark.parametrize("fmt", [f for f in FORMATS if f != "kubeadm"])
@pytest.mark.parametrize("case", cases())
def test_runtime_pulls_what_the_rules_say_or_warns(case: str, fmt: str) -> None:
    config = load(case)
    result = runtime_config(config, fmt)
    for text in SAMPLES:
        ref = parse(text)
        decision = config.rules.decide(ref)
        want = decision.final.normalized if decision.mirrored is not None else None
        got = pulled(fmt, result.files, ref)
        if got == want:
            continue
        # A difference must be announced: by the rule that decides, or for the registry as a whole.
        named = decision.rule.describe() if decision.rule is not None else None
        announced = [w for w in result.warnings if (named and f"'{named}'" in w) or w.startswith(f"{fmt}: {ref.registry}: ")]
        assert announced, f"{text}: the {fmt} runtime pulls {got}, the rules say {want}, and no warning says why"


def test_path_prefix_is_expressed_exactly() -> None:
    config = parse_config("preset: daocloud\n", "preset daocloud")
    ref = parse("registry.k8s.io/coredns/coredns:v1.11.3")
    want = "m.daocloud.io/registry.k8s.io/coredns/coredns:v1.11.3"
    assert config.rules.decide(ref).final.normalized == want
    for fmt in ("containerd-hosts", "containerd-config", "kind", "k3s", "crio", "talos"):
        result = runtime_config(config, fmt)
        assert pulled(fmt, result.files, ref) == want, fmt
        assert result.warnings == [], fmt


@pytest.mark.parametrize(
    "to,rewrite",
    [
        ("registry.example.com/mcr/{name}", {"^((?:.*/)?([^/]+))$": "mcr/${2}"}),
        ("registry.example.com/{registry}/{path}", {"^(.*)$": "mcr.microsoft.com/${1}"}),
        ("registry.example.com/x/{path_dotted}", None),
        ("registry.example.com/x/{name}:latest", None),
    ],
)
def test_k3s_templates(to: str, rewrite: dict[str, str] | None) -> None:
    result = runtime_config(parse_config(f"mirrors:\n  - {{from: mcr.microsoft.com, to: '{to}'}}\n", "r"), "k3s")
    mirrors = yaml.safe_load(result.files["registries.yaml"])["mirrors"]
    if rewrite is None:
        assert mirrors == {}
        assert result.warnings == [f"k3s: rule 'mcr.microsoft.com -> {to}': a k3s rewrite cannot join path components with '.' or set a tag; not expressed"]
    else:
        assert mirrors == {"mcr.microsoft.com": {"endpoint": ["https://registry.example.com"], "rewrite": rewrite}}
        assert result.warnings == []


# --- kubeadm ---------------------------------------------------------------------------------


def kubeadm_pulls(document: dict[str, object]) -> list[str]:
    """The images kubeadm pulls for this ClusterConfiguration (GetGenericImage, GetDNSImage)."""
    repository = str(document.get("imageRepository") or KUBEADM_REGISTRY)
    dns = document.get("dns") or {}
    dns_repository = str(dns.get("imageRepository") or repository)  # type: ignore[union-attr]
    if dns_repository == KUBEADM_REGISTRY:  # kubeadm's own coredns path, only on the default registry
        dns_repository += "/coredns"
    return [f"{repository}/{name}" for name in KUBEADM_IMAGES] + [f"{dns_repository}/coredns"]


@pytest.mark.parametrize("case", cases())
def test_kubeadm_pulls_what_the_rules_say(case: str) -> None:
    config = load(case)
    result = runtime_config(config, "kubeadm")
    document = yaml.safe_load(result.files["kubeadm-config.yaml"])
    upstream = [f"{KUBEADM_REGISTRY}/{name}" for name in KUBEADM_IMAGES] + [f"{KUBEADM_REGISTRY}/coredns/coredns"]
    for source, pull in zip(upstream, kubeadm_pulls(document), strict=True):
        tag = ":v1.31.0"
        want = str(config.rules.decide(parse(source + tag)).final)
        if parse(pull + tag).normalized != parse(want).normalized:
            assert result.warnings, f"kubeadm pulls {pull}, the rules say {want}, and no warning says why"


def test_kubeadm_aliyun_flattens_coredns() -> None:
    result = runtime_config(parse_config("preset: aliyun-google-containers\n", "p"), "kubeadm")
    document = yaml.safe_load(result.files["kubeadm-config.yaml"])
    assert document["imageRepository"] == "registry.aliyuncs.com/google_containers"
    assert document["dns"] == {"imageRepository": "registry.aliyuncs.com/google_containers"}
    assert result.warnings == []


def test_kubeadm_host_swap_keeps_coredns_path() -> None:
    document = yaml.safe_load(runtime_config(parse_config("preset: lank8s\n", "p"), "kubeadm").files["kubeadm-config.yaml"])
    assert document["imageRepository"] == "registry.lank8s.cn"
    assert document["dns"] == {"imageRepository": "registry.lank8s.cn/coredns"}


def test_kubeadm_warns_when_registry_k8s_io_is_not_mapped() -> None:
    result = runtime_config(parse_config("preset: azk8s\n", "p"), "kubeadm")
    assert result.warnings == ["kubeadm: no rule maps registry.k8s.io: kubeadm keeps pulling from it"]


def test_kubeadm_template_that_renames_images_is_not_set() -> None:
    rules = "mirrors:\n  - {from: registry.k8s.io, to: 'anjia0532/google-containers.{name}'}\n"
    result = runtime_config(parse_config(rules, "r"), "kubeadm")
    document = yaml.safe_load(result.files["kubeadm-config.yaml"])
    assert "imageRepository" not in document and "dns" not in document
    assert len(result.warnings) == 2


# --- command line ----------------------------------------------------------------------------


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_prints_a_single_file_format(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "runtime-config", "--format", "docker", "--preset", "daocloud-hosts")
    assert code == 0
    assert json.loads(out) == {"registry-mirrors": ["https://docker.m.daocloud.io"]}
    assert err.splitlines() == [f"kmirror: warning: {w}" for w in expected_warnings("preset-daocloud-hosts", "docker")]


def test_cli_writes_files_under_output_dir(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    target = tmp_path / "certs.d"
    code, out, err = run(capsys, "runtime-config", "-f", "containerd-hosts", "--preset", "daocloud", "-o", str(target))
    assert (code, out) == (0, "")
    written = {p.relative_to(target).as_posix(): p.read_text() for p in target.rglob("*") if p.is_file() and p.name != RECORD}
    assert written == expected_files("preset-daocloud", "containerd-hosts")
    assert err == f"wrote 9 files under {target}\n"
    # A second run replaces the files in place.
    assert run(capsys, "runtime-config", "-f", "containerd-hosts", "--preset", "daocloud", "-o", str(target))[0] == 0


def test_output_dir_removes_only_stale_files_it_wrote(capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("KMIRROR_CONFIG", raising=False)
    rules = tmp_path / ".kmirror.yaml"
    rules.write_text("mirrors:\n  - {from: quay.io, to: q.example}\n  - {from: ghcr.io, to: g.example}\n  - {from: gcr.io, to: c.example}\n")
    out = tmp_path / "certs.d"
    (out / "mine.example").mkdir(parents=True)
    (out / "mine.example" / "hosts.toml").write_text("# written by hand\n")
    assert run(capsys, "runtime-config", "-f", "containerd-hosts", "-o", "certs.d")[0] == 0
    assert json.loads((out / RECORD).read_text())["files"].keys() == {"quay.io/hosts.toml", "ghcr.io/hosts.toml", "gcr.io/hosts.toml"}
    (out / "gcr.io" / "hosts.toml").write_text((out / "gcr.io" / "hosts.toml").read_text() + "# edited by hand\n")
    rules.write_text("mirrors:\n  - {from: quay.io, to: q.example}\n")
    code, _, err = run(capsys, "runtime-config", "-f", "containerd-hosts", "-o", "certs.d")
    assert code == 0
    assert err == f"removed certs.d/ghcr.io/hosts.toml (written by an earlier run, no longer configured)\nwrote 1 file under certs.d\n"
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*")) == [
        RECORD, "gcr.io", "gcr.io/hosts.toml", "mine.example", "mine.example/hosts.toml", "quay.io", "quay.io/hosts.toml",
    ]  # ghcr.io's folder went with its file; the edited file and the hand-written one stay


def test_cli_uses_the_rules_file(capsys: pytest.CaptureFixture[str]) -> None:
    rules = CASES / "custom-private-registry" / "rules.yaml"
    code, out, err = run(capsys, "runtime-config", "--format", "k3s", "--config", str(rules))
    assert code == 0
    assert out == expected_files("custom-private-registry", "k3s")["registries.yaml"]
    assert err.splitlines() == [f"kmirror: warning: {w}" for w in expected_warnings("custom-private-registry", "k3s")]


@pytest.mark.parametrize("fmt", sorted(MULTI_FILE))
def test_cli_multi_file_format_needs_output_dir(capsys: pytest.CaptureFixture[str], fmt: str) -> None:
    code, out, err = run(capsys, "runtime-config", "--format", fmt, "--preset", "lank8s")
    assert (code, out) == (2, "")
    assert err == f"kmirror: error: invalid option: --format: '{fmt}' writes several files: give --output-dir DIR\n"


def test_cli_unknown_format(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "runtime-config", "--format", "podman", "--preset", "lank8s")
    assert (code, out) == (2, "")
    assert err.startswith("kmirror: error: invalid option: --format: 'podman': choose one of containerd-hosts, ")


# --- the documentation's examples --------------------------------------------------------------


def doc_examples() -> list[tuple[str, str]]:
    """(command, shown output) for each ```console block of docs/runtime-config.md starting with `$ kmirror`."""
    text = DOCS.read_text(encoding="utf-8")
    found = []
    for block in re.findall(r"```console\n(.*?)```", text, re.S):
        first, _, rest = block.partition("\n")
        assert first.startswith("$ kmirror "), first
        found.append((first[2:], rest))
    return found


@pytest.mark.parametrize("command,shown", doc_examples())
def test_doc_example(capsys: pytest.CaptureFixture[str], command: str, shown: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("KMIRROR_CONFIG", raising=False)
    argv = command.split()[1:]
    if "--preset" not in argv:
        (tmp_path / ".kmirror.yaml").write_text((CASES / "custom-private-registry" / "rules.yaml").read_text())
    for block in re.findall(r"```yaml\n(# ([\w.-]+\.yaml)\b.*?)```", DOCS.read_text(encoding="utf-8"), re.S):
        (tmp_path / block[1]).write_text(block[0])  # the rules files the page shows, for --config
    code, out, err = run(capsys, *argv)
    assert code == 0, err
    if "--output-dir" in argv:
        folder = tmp_path / argv[argv.index("--output-dir") + 1]
        out = "".join(f"$ cat {p.relative_to(tmp_path).as_posix()}\n{p.read_text()}" for p in sorted(folder.rglob("*")) if p.is_file() and p.name != RECORD)
    assert out + "".join(f"{line}\n" for line in err.splitlines() if line.startswith("kmirror: warning:")) == shown


# --- real tools --------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for(check: object, what: str, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _oci_layout(folder: Path) -> None:
    """A one-layer OCI image layout, tag 1.0, built here so no image is downloaded."""
    import gzip
    import hashlib
    import io
    import tarfile

    (folder / "blobs" / "sha256").mkdir(parents=True)

    def blob(data: bytes, media_type: str) -> dict[str, object]:
        digest = hashlib.sha256(data).hexdigest()
        (folder / "blobs" / "sha256" / digest).write_bytes(data)
        return {"mediaType": media_type, "digest": f"sha256:{digest}", "size": len(data)}

    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as archive:
        payload = b"kmirror runtime-config test\n"
        info = tarfile.TarInfo("hello.txt")
        info.size = len(payload)
        archive.addfile(info, io.BytesIO(payload))
    diff_id = "sha256:" + hashlib.sha256(raw.getvalue()).hexdigest()
    layer = blob(gzip.compress(raw.getvalue(), mtime=0), "application/vnd.oci.image.layer.v1.tar+gzip")
    image_config = {"architecture": "amd64", "os": "linux", "config": {}, "rootfs": {"type": "layers", "diff_ids": [diff_id]}}
    config = blob(json.dumps(image_config).encode(), "application/vnd.oci.image.config.v1+json")
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "config": config, "layers": [layer]}
    entry = blob(json.dumps(manifest).encode(), "application/vnd.oci.image.manifest.v1+json")
    entry["annotations"] = {"org.opencontainers.image.ref.name": "1.0"}
    (folder / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [entry]}))
    (folder / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))


class Registry:
    """A distribution registry on 127.0.0.1 with TLS (a certificate made here), and its request log."""

    def __init__(self, folder: Path) -> None:
        self.port = _free_port()
        self.ca = folder / "cert.pem"
        self.log = folder / "registry.log"
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
             "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(folder / "key.pem"), "-out", str(self.ca)],
            check=True, capture_output=True, timeout=60,
        )  # fmt: skip
        (folder / "registry.yml").write_text(
            "version: 0.1\n"
            f"storage: {{filesystem: {{rootdirectory: {folder / 'storage'}}}}}\n"
            f"http: {{addr: 127.0.0.1:{self.port}, tls: {{certificate: {self.ca}, key: {folder / 'key.pem'}}}}}\n"
        )
        self.env = {**os.environ, "SSL_CERT_FILE": str(self.ca)}
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen([tool("docker-registry"), "serve", str(folder / "registry.yml")], stdout=log, stderr=log)
        _wait_for(lambda: "listening on" in self.log.read_text(), "the registry to listen")

    def push(self, layout: Path, name: str) -> None:
        subprocess.run(
            [tool("skopeo"), "copy", "--quiet", f"oci:{layout}:1.0", f"docker://127.0.0.1:{self.port}/{name}:1.0"],
            check=True, capture_output=True, env=self.env, timeout=120,
        )  # fmt: skip

    def requests(self, agent: str) -> list[str]:
        """Request lines (`GET /v2/...`) made by a client whose user agent starts with `agent`."""
        return re.findall(rf'"((?:GET|HEAD) /v2/\S+) HTTP/[\d.]+" \d+ \d+ "[^"]*" "{re.escape(agent)}', self.log.read_text())


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    folder = tmp_path_factory.mktemp("registry")
    server = Registry(folder)
    try:
        _oci_layout(folder / "layout")
        server.push(folder / "layout", "mirror/localhost/app")  # behind a path prefix
        server.push(folder / "layout", "app")  # at the registry root, for a host swap
        yield server
    finally:
        _stop(server.process)


def loopback_rules(registry: Registry) -> Config:
    """Rules from two unreachable loopback registries to the test registry: a path prefix and a host swap."""
    text = (
        "mirrors:\n"
        "  - {from: localhost:5999/kept, keep: true}\n"
        f"  - {{from: localhost:5999, to: 127.0.0.1:{registry.port}/mirror/localhost}}\n"
        f"  - {{from: localhost:5998, to: 127.0.0.1:{registry.port}}}\n"
    )
    return parse_config(text, "rules.yaml")


@pytest.fixture(scope="module")
def containerd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A containerd daemon of its own (state, root and socket in a temporary folder)."""
    folder = tmp_path_factory.mktemp("containerd")
    socket_path = folder / "containerd.sock"
    (folder / "config.toml").write_text(
        "version = 2\n"
        f'root = "{folder / "root"}"\n'
        f'state = "{folder / "state"}"\n'
        'disabled_plugins = ["io.containerd.grpc.v1.cri"]\n'
        f'[grpc]\n  address = "{socket_path}"\n'
    )
    log = folder / "containerd.log"
    with open(log, "wb") as out:
        process = subprocess.Popen([tool("containerd"), "--config", str(folder / "config.toml")], stdout=out, stderr=out)
    try:
        _wait_for(lambda: socket_path.exists() or process.poll() is not None, "containerd's socket")
        assert process.poll() is None, log.read_text()
        yield str(socket_path)
    finally:
        _stop(process)


def write_files(folder: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)


def test_containerd_pulls_through_generated_hosts_toml(registry: Registry, containerd: str, tmp_path: Path) -> None:
    result = runtime_config(loopback_rules(registry), "containerd-hosts")
    assert sorted(result.files) == ["localhost:5998/hosts.toml", "localhost:5999/hosts.toml"]
    write_files(tmp_path, result.files)
    for image, path in (("localhost:5999/app:1.0", "mirror/localhost/app"), ("localhost:5998/app:1.0", "app")):
        pull = subprocess.run(
            [tool("ctr"), "--address", containerd, "--namespace", "kmirror-test", "images", "pull", "--hosts-dir", str(tmp_path), image],
            capture_output=True, text=True, env=registry.env, timeout=120,
        )  # fmt: skip
        assert pull.returncode == 0, pull.stdout + pull.stderr
        # containerd resolves the tag on the mirror, under the mirror's path (and names the source in ?ns=).
        resolved = {r.split(" ")[1] for r in registry.requests("containerd/")}
        assert f"/v2/{path}/manifests/1.0?ns={image.split('/')[0].replace(':', '%3A')}" in resolved, image


def test_skopeo_pulls_through_generated_registries_conf(registry: Registry, tmp_path: Path) -> None:
    result = runtime_config(loopback_rules(registry), "crio")
    conf = tmp_path / "registries.conf"
    conf.write_text(result.files["registries.conf"])

    def inspect(image: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [tool("skopeo"), "--registries-conf", str(conf), "inspect", "--raw", f"docker://{image}"],
            capture_output=True, text=True, env=registry.env, timeout=120,
        )  # fmt: skip

    for image, path in (("localhost:5999/app:1.0", "mirror/localhost/app"), ("localhost:5998/app:1.0", "app")):
        found = inspect(image)
        assert found.returncode == 0, found.stderr
        assert json.loads(found.stdout)["schemaVersion"] == 2
        assert f"GET /v2/{path}/manifests/1.0" in registry.requests("skopeo/")
    # The keep rule: the longest prefix wins, so the mirror is not asked, and the source is unreachable.
    kept = inspect("localhost:5999/kept/app:1.0")
    assert kept.returncode != 0
    assert not [r for r in registry.requests("skopeo/") if "kept" in r]


@pytest.mark.parametrize("case", cases())
def test_containerd_accepts_generated_config_toml(case: str, tmp_path: Path) -> None:
    text = runtime_config(load(case), "containerd-config").files["config.toml"]
    (tmp_path / "config.toml").write_text(text)
    dump = subprocess.run(
        [tool("containerd"), "--config", str(tmp_path / "config.toml"), "config", "dump"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert dump.returncode == 0, dump.stderr
    effective = tomllib.loads(dump.stdout)["plugins"]["io.containerd.grpc.v1.cri"]["registry"]["mirrors"]
    written = tomllib.loads(text).get("plugins", {}).get("io.containerd.grpc.v1.cri", {}).get("registry", {}).get("mirrors", {})
    assert effective == written


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    regenerate()


def test_an_exact_rule_refused_on_its_own_digest_rewrites_nothing() -> None:
    pinned = f"docker.io/library/nginx@sha256:{'ab' * 32}"
    config = parse_config(f'mirrors:\n  - {{from: "{pinned}", to: "harbor.example.com/nginx:patched"}}\n  - {{from: "{pinned}", to: "harbor.example.com/nginx"}}\n', "rules")
    assert [r.to for r in exact_rules(config.rules)] == []  # the second is shadowed by the first, which is refused
