"""Tests for rewriter/config.py and the built-in presets: load, validate, discover."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from rewriter import config as config_module
from rewriter.config import (
    CONFIG_NAME,
    DEFAULT_PRESET,
    Config,
    FieldPath,
    discover,
    load_config,
    load_preset,
    parse_config,
    preset_names,
)
from rewriter.errors import KmirrorError
from rewriter.reference import parse

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "corpus"
PRESET_DIR = Path(config_module.__file__).resolve().parent / "presets"

MINIMUM = """\
preset: daocloud
mirrors:
  - from: k8s.gcr.io
    to: registry.aliyuncs.com/google_containers
    flatten: true
blocked: [docker.io, gcr.io, k8s.gcr.io, registry.k8s.io, quay.io]
"""


def corpus_image(file: str, image: str) -> str:
    """`image`, after checking that the corpus file `file` holds it."""
    assert image in (CORPUS / file).read_text(encoding="utf-8"), f"{image!r} not in {file}"
    return image


def mirror(cfg: Config, image: str) -> str:
    return str(cfg.rules.decide(parse(image)).final)


def config_error(text: str, name: str = "kmirror.yaml") -> str:
    with pytest.raises(KmirrorError) as info:
        parse_config(text, name)
    return str(info.value)


# --- the minimum form ------------------------------------------------------------------------


def test_minimum_form_works() -> None:
    cfg = parse_config(MINIMUM, ".kmirror.yaml")
    assert cfg.origin == ".kmirror.yaml"
    assert cfg.notices == ()
    # The user's rule first, then the preset's.
    assert cfg.rules.rules[0].describe() == "k8s.gcr.io -> registry.aliyuncs.com/google_containers (flatten)"
    k8s = corpus_image("kubernetes-examples.yaml", "k8s.gcr.io/nginx-slim:0.8")
    assert mirror(cfg, k8s) == "registry.aliyuncs.com/google_containers/nginx-slim:0.8"
    assert mirror(cfg, corpus_image("kubernetes-examples.yaml", "mysql:5.6")) == "m.daocloud.io/docker.io/library/mysql:5.6"
    assert cfg.rules.blocked == frozenset({"docker.io", "gcr.io", "k8s.gcr.io", "registry.k8s.io", "quay.io"})
    decision = cfg.rules.decide(parse(k8s))
    assert not decision.blocked


def test_full_schema() -> None:
    text = """\
mirrors:
  - from: quay.io/internal
    keep: true
  - from: gcr.io
    to: "anjia0532/{path_dotted}"
aliases: {k8s.gcr.io: gcr.io/google-containers}
blocked: [gcr.io]
allow: [quay.io/myorg]
fields:
  - {path: spec/runner/image, kind: MyRunner}
  - path: /spec/containers[]/image/
"""
    cfg = parse_config(text, "f")
    assert [r.source for r in cfg.rules.rules] == ["quay.io/internal", "gcr.io"]
    assert cfg.fields == (FieldPath(("spec", "runner", "image"), "MyRunner"), FieldPath(("spec", "containers[]", "image"), None))
    assert mirror(cfg, "k8s.gcr.io/pause:3.1") == "anjia0532/google-containers.pause:3.1"
    assert cfg.rules.decide(parse("quay.io/myorg/app")).allowed


@pytest.mark.parametrize("text", ["", "# only a comment\n", "{}\n"], ids=["empty", "comment", "empty-mapping"])
def test_empty_file_has_no_rules(text: str) -> None:
    cfg = parse_config(text, "f")
    assert cfg.rules.rules == () and cfg.rules.blocked == frozenset() and cfg.fields == ()


@pytest.mark.parametrize(
    ("value", "expected"),
    [("true", True), ("false", False), ("True", True), ("FALSE", False)],
)
def test_flatten_booleans(value: str, expected: bool) -> None:
    cfg = parse_config(f"mirrors:\n  - {{from: k8s.gcr.io, to: x.example.com, flatten: {value}}}\n", "f")
    assert cfg.rules.rules[0].flatten is expected


# --- precise errors ---------------------------------------------------------------------------

ERRORS: list[tuple[str, str, str]] = [
    ("unknown-rule-key", "mirrors:\n  - from: gcr.io\n    too: x.example.com\n", "invalid config: mirrors[0]: unknown key 'too'"),
    ("unknown-rule-key-second", "mirrors:\n  - {from: gcr.io, to: a.io}\n  - {from: quay.io, flaten: true, to: b.io}\n", "invalid config: mirrors[1]: unknown key 'flaten'"),
    ("unknown-top-key", "mirror:\n  - {from: gcr.io, to: a.io}\n", "invalid config: (top level): unknown key 'mirror'"),
    ("unknown-field-key", "fields:\n  - {path: a/b, knd: X}\n", "invalid config: fields[0]: unknown key 'knd'"),
    ("duplicate-key", "mirrors:\n  - {from: gcr.io, to: a.io, to: b.io}\n", "invalid config: mirrors[0]: duplicate key 'to'"),
    ("flatten-quoted-yes", 'mirrors:\n  - {from: gcr.io, to: a.io, flatten: "yes"}\n', "invalid config: mirrors[0].flatten: expected true or false"),
    ("flatten-yes-is-a-string", "mirrors:\n  - {from: gcr.io, to: a.io, flatten: yes}\n", "invalid config: mirrors[0].flatten: expected true or false"),
    ("flatten-quoted-true", 'mirrors:\n  - {from: gcr.io, to: a.io, flatten: "true"}\n', "invalid config: mirrors[0].flatten: expected true or false"),
    ("flatten-number", "mirrors:\n  - {from: gcr.io, to: a.io, flatten: 1}\n", "invalid config: mirrors[0].flatten: expected true or false"),
    ("keep-string", "mirrors:\n  - {from: gcr.io, keep: always}\n", "invalid config: mirrors[0].keep: expected true or false"),
    ("mirrors-mapping", "mirrors: {}\n", "invalid config: mirrors: expected a list"),
    ("mirrors-string", "mirrors: gcr.io\n", "invalid config: mirrors: expected a list"),
    ("rule-not-mapping", "mirrors:\n  - gcr.io\n", "invalid config: mirrors[0]: expected a mapping"),
    ("top-level-list", "- preset: daocloud\n", "invalid config: (top level): expected a mapping"),
    ("missing-from", "mirrors:\n  - to: a.io\n", "invalid config: mirrors[0]: missing key 'from'"),
    ("missing-to", "mirrors:\n  - from: gcr.io\n", "invalid config: mirrors[0]: missing key 'to' (or 'keep: true')"),
    ("missing-to-flatten-only", "mirrors:\n  - {from: gcr.io, flatten: true}\n", "invalid config: mirrors[0]: missing key 'to'"),
    ("keep-with-to", "mirrors:\n  - {from: gcr.io, keep: true, to: a.io}\n", "invalid config: mirrors[0]: 'keep' leaves the reference unchanged: drop 'to' and 'flatten'"),
    ("keep-with-flatten", "mirrors:\n  - {from: gcr.io, keep: true, flatten: true}\n", "'keep' leaves the reference unchanged"),
    ("from-number", "mirrors:\n  - {from: 5000, to: a.io}\n", "invalid config: mirrors[0].from: expected a non-empty string"),
    ("to-empty", 'mirrors:\n  - {from: gcr.io, to: ""}\n', "invalid config: mirrors[0].to: expected a non-empty string"),
    ("to-list", "mirrors:\n  - {from: gcr.io, to: [a.io]}\n", "invalid config: mirrors[0].to: expected a non-empty string"),
    ("unknown-placeholder", 'mirrors:\n  - {from: gcr.io, to: "anjia0532/{path_doted}"}\n', "invalid config: mirrors[0]: unknown placeholder {path_doted}"),
    ("template-with-flatten", 'mirrors:\n  - {from: gcr.io, to: "a/{name}", flatten: true}\n', "flatten cannot be combined with a template"),
    ("invalid-to", "mirrors:\n  - {from: gcr.io, to: mirror_host.example.com}\n", "invalid config: mirrors[0]: 'mirror_host.example.com' does not give a valid image reference"),
    ("invalid-to-upper-case", "mirrors:\n  - {from: gcr.io, to: a.io/Mirror}\n", "must be lowercase"),
    ("from-without-host", "mirrors:\n  - {from: nginx, to: a.io}\n", "invalid config: mirrors[0]: 'nginx' does not start with a registry host"),
    ("from-invalid-exact", "mirrors:\n  - {from: 'gcr.io/a:-bad', to: a.io}\n", "is not a valid image reference"),
    ("from-upper-case-path", "mirrors:\n  - {from: gcr.io/Google, to: a.io}\n", "invalid repository path 'Google'"),
    ("blocked-not-list", "blocked: docker.io\n", "invalid config: blocked: expected a list"),
    ("blocked-no-host", "blocked: [nginx]\n", "invalid config: blocked[0]: 'nginx' does not start with a registry host"),
    ("blocked-with-path", "blocked: [docker.io, gcr.io/google-containers]\n", "invalid config: blocked[1]: 'gcr.io/google-containers': list registry hosts only (e.g. gcr.io)"),
    ("allow-no-host", "allow: [myorg]\n", "invalid config: allow[0]: 'myorg' does not start with a registry host"),
    ("aliases-list", "aliases: [k8s.gcr.io]\n", "invalid config: aliases: expected a mapping"),
    ("aliases-bad-target", "aliases: {k8s.gcr.io: google-containers}\n", "invalid config: aliases.k8s.gcr.io: 'google-containers' does not start with a registry host"),
    ("field-missing-path", "fields:\n  - {kind: X}\n", "invalid config: fields[0]: missing key 'path'"),
    ("field-empty-segment", "fields:\n  - {path: spec//image}\n", "invalid config: fields[0].path: 'spec//image': empty segment"),
    ("preset-not-string", "preset: [daocloud]\n", "invalid config: preset: expected a non-empty string"),
]


@pytest.mark.parametrize(("text", "fragment"), [pytest.param(*case[1:], id=case[0]) for case in ERRORS])
def test_config_error(text: str, fragment: str) -> None:
    message = config_error(text)
    assert fragment in message
    assert "(in kmirror.yaml, line " in message


def test_error_points_at_the_line() -> None:
    text = "preset: lank8s\nmirrors:\n  - from: gcr.io\n    to: a.io\n  - from: quay.io\n    too: b.io\n"
    assert config_error(text).endswith("(in kmirror.yaml, line 6)")


def test_unknown_key_lists_known_keys() -> None:
    assert "(known: from, to, flatten, keep)" in config_error("mirrors:\n  - {from: gcr.io, too: a.io}\n")


def test_unknown_preset_lists_known_ones() -> None:
    message = config_error("preset: daocloud-mirror\n")
    assert "unknown preset: 'daocloud-mirror'" in message
    for name in preset_names():
        assert name in message


@pytest.mark.parametrize(
    ("text", "where"),
    [
        pytest.param("mirrors: [\n", "kmirror.yaml:2:1: invalid YAML", id="unclosed-flow"),
        pytest.param("mirrors:\n- from: gcr.io\n  to: a\n  - b\n", "kmirror.yaml:4:3: invalid YAML", id="bad-indent"),
        pytest.param("preset: daocloud\n\tmirrors: []\n", "kmirror.yaml:2:1: invalid YAML", id="tab"),
        pytest.param("preset: a\n---\npreset: b\n", "kmirror.yaml:2:1: invalid YAML", id="two-documents"),
    ],
)
def test_invalid_yaml_has_line_and_column(text: str, where: str) -> None:
    message = config_error(text)
    assert message.startswith(where), message


# --- blocked ----------------------------------------------------------------------------------


def test_default_blocked_is_the_from_registries_including_the_presets() -> None:
    text = "preset: lank8s\nmirrors:\n  - {from: quay.io/prometheus, to: quay-mirror.qiniu.com/prometheus}\n  - {from: ghcr.io/internal, keep: true}\n"
    cfg = parse_config(text, "f")
    # lank8s: k8s.gcr.io, gcr.io, registry.k8s.io; the keep rule adds nothing.
    assert cfg.rules.blocked == frozenset({"quay.io", "k8s.gcr.io", "gcr.io", "registry.k8s.io"})


def test_default_blocked_without_preset() -> None:
    cfg = parse_config("mirrors:\n  - {from: index.docker.io, to: harbor.example.com/hub}\n", "f")
    assert cfg.rules.blocked == frozenset({"docker.io"})


def test_explicit_blocked_replaces_the_default() -> None:
    cfg = parse_config("preset: daocloud\nblocked: [Docker.IO, localhost:5000]\n", "f")
    assert cfg.rules.blocked == frozenset({"docker.io", "localhost:5000"})
    assert parse_config("preset: daocloud\nblocked: []\n", "f").rules.blocked == frozenset()


def test_blocked_decision_from_config() -> None:
    cfg = parse_config("mirrors:\n  - {from: quay.io/calico, to: harbor.example.com/calico}\nblocked: [quay.io]\nallow: [quay.io/strimzi]\n", "f")
    calico = corpus_image("calico-calico.yaml", "quay.io/calico/node:v3.32.1")
    strimzi = corpus_image("strimzi-cluster-operator.yaml", "quay.io/strimzi/operator:1.2.0")
    jetstack = corpus_image("cert-manager-chart.yaml", "quay.io/jetstack/cert-manager-controller:v1.21.1")
    assert not cfg.rules.decide(parse(calico)).blocked
    assert not cfg.rules.decide(parse(strimzi)).blocked
    assert cfg.rules.decide(parse(jetstack)).blocked


# --- presets ----------------------------------------------------------------------------------


def test_preset_names() -> None:
    assert preset_names() == sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))
    assert {"daocloud", "daocloud-hosts", "aliyun-google-containers", "lank8s", "azk8s", "ustc"} <= set(preset_names())
    assert DEFAULT_PRESET in preset_names()


@pytest.mark.parametrize("name", preset_names())
def test_preset_file_has_metadata(name: str) -> None:
    data = YAML(typ="safe", pure=True).load((PRESET_DIR / f"{name}.yaml").read_text(encoding="utf-8"))
    for key in ("description", "source", "scheme", "status", "status_date"):
        assert isinstance(data.get(key), str) and data[key].strip(), f"{name}: {key}"
    assert data["status"] in ("working", "dead")
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", data["status_date"])
    preset = load_preset(name)
    assert preset.name == name and preset.mirrors
    assert all(rule.to is not None for rule in preset.mirrors)


def preset_config(name: str) -> Config:
    return parse_config(f"preset: {name}\n", f"preset {name}")


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        pytest.param("docker.io/library/nginx:1.25", "m.daocloud.io/docker.io/library/nginx:1.25", id="hub-long"),
        pytest.param("nginx", "m.daocloud.io/docker.io/library/nginx", id="hub-bare"),
        pytest.param(corpus_image("kube-prometheus-manifests.yaml", "grafana/grafana:13.0.2"), "m.daocloud.io/docker.io/grafana/grafana:13.0.2", id="hub-org"),
        pytest.param(corpus_image("kubernetes-examples.yaml", "gcr.io/google-samples/gb-frontend:v4"), "m.daocloud.io/gcr.io/google-samples/gb-frontend:v4", id="gcr"),
        pytest.param(corpus_image("kubernetes-examples.yaml", "k8s.gcr.io/redis:v1"), "m.daocloud.io/k8s.gcr.io/redis:v1", id="k8s-gcr"),
        pytest.param(corpus_image("metrics-server-chart.yaml", "registry.k8s.io/autoscaling/addon-resizer:1.8.23"), "m.daocloud.io/registry.k8s.io/autoscaling/addon-resizer:1.8.23", id="registry-k8s"),
        pytest.param(corpus_image("calico-calico.yaml", "quay.io/calico/cni:v3.32.1"), "m.daocloud.io/quay.io/calico/cni:v3.32.1", id="quay"),
        pytest.param(corpus_image("argo-cd-install.yaml", "ghcr.io/dexidp/dex:v2.45.0"), "m.daocloud.io/ghcr.io/dexidp/dex:v2.45.0", id="ghcr"),
        pytest.param(corpus_image("argo-workflows-examples.yaml", "mcr.microsoft.com/windows/nanoserver:1809"), "m.daocloud.io/mcr.microsoft.com/windows/nanoserver:1809", id="mcr"),
        pytest.param(corpus_image("argo-cd-install.yaml", "public.ecr.aws/docker/library/redis:8.2.3-alpine"), "public.ecr.aws/docker/library/redis:8.2.3-alpine", id="unlisted-registry-unchanged"),
        pytest.param(corpus_image("tekton-examples.yaml", "mirror.gcr.io/alpine"), "mirror.gcr.io/alpine", id="gcr-subdomain-unchanged"),
    ],
)
def test_preset_daocloud(image: str, expected: str) -> None:
    assert mirror(preset_config("daocloud"), image) == expected


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        pytest.param("nginx:1.25", "docker.m.daocloud.io/library/nginx:1.25", id="docker.io"),
        pytest.param("gcr.io/google-samples/cassandra:v14", "gcr.m.daocloud.io/google-samples/cassandra:v14", id="gcr.io"),
        pytest.param("ghcr.io/flannel-io/flannel:v0.28.9", "ghcr.m.daocloud.io/flannel-io/flannel:v0.28.9", id="ghcr.io"),
        pytest.param("k8s.gcr.io/nginx-slim:0.8", "k8s-gcr.m.daocloud.io/nginx-slim:0.8", id="k8s.gcr.io"),
        pytest.param("registry.k8s.io/kubectl:v1.36.2", "k8s.m.daocloud.io/kubectl:v1.36.2", id="registry.k8s.io"),
        pytest.param("quay.io/kiali/kiali:v2.26", "quay.m.daocloud.io/kiali/kiali:v2.26", id="quay.io"),
        pytest.param("mcr.microsoft.com/windows/nanoserver:1809", "mcr.m.daocloud.io/windows/nanoserver:1809", id="mcr.microsoft.com"),
        pytest.param("docker.elastic.co/elasticsearch/elasticsearch:8.11.0", "elastic.m.daocloud.io/elasticsearch/elasticsearch:8.11.0", id="docker.elastic.co"),
        pytest.param("nvcr.io/nvidia/cuda:12.2.0-base-ubuntu22.04", "nvcr.m.daocloud.io/nvidia/cuda:12.2.0-base-ubuntu22.04", id="nvcr.io"),
    ],
)
def test_preset_daocloud_hosts(image: str, expected: str) -> None:
    cfg = preset_config("daocloud-hosts")
    assert mirror(cfg, image) == expected
    hosts = {r.source: r.to for r in cfg.rules.rules}
    assert hosts[cfg.rules.decide(parse(image)).rule.source] == parse(expected).registry  # type: ignore[union-attr]


def test_preset_daocloud_hosts_covers_the_same_registries_as_daocloud() -> None:
    assert {r.source for r in load_preset("daocloud-hosts").mirrors} == {r.source for r in load_preset("daocloud").mirrors}


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        pytest.param("registry.k8s.io/coredns/coredns:v1.11.1", "registry.aliyuncs.com/google_containers/coredns:v1.11.1", id="registry-k8s-nested"),
        pytest.param("k8s.gcr.io/kube-proxy:v1.18.0", "registry.aliyuncs.com/google_containers/kube-proxy:v1.18.0", id="k8s-gcr"),
        pytest.param("k8s.gcr.io/sig-storage/csi-node-driver-registrar:v2.3.0", "registry.aliyuncs.com/google_containers/csi-node-driver-registrar:v2.3.0", id="k8s-gcr-nested"),
        pytest.param("gcr.io/google-containers/kube-proxy:v1.18.0", "registry.aliyuncs.com/google_containers/kube-proxy:v1.18.0", id="gcr-google-containers"),
        pytest.param("gcr.io/google_containers/pause:3.1", "registry.aliyuncs.com/google_containers/pause:3.1", id="gcr-google_containers"),
        pytest.param(corpus_image("kubernetes-examples.yaml", "k8s.gcr.io/redis:e2e"), "registry.aliyuncs.com/google_containers/redis:e2e", id="corpus-k8s-gcr"),
        pytest.param(corpus_image("argo-workflows-chart.yaml", "registry.k8s.io/kubectl:v1.36.2"), "registry.aliyuncs.com/google_containers/kubectl:v1.36.2", id="corpus-registry-k8s"),
        pytest.param(corpus_image("kubernetes-examples.yaml", "gcr.io/google-samples/gb-frontend:v4"), "gcr.io/google-samples/gb-frontend:v4", id="other-gcr-namespace-unchanged"),
        pytest.param(corpus_image("kubernetes-examples.yaml", "mysql:5.6"), "mysql:5.6", id="docker-hub-unchanged"),
    ],
)
def test_preset_aliyun_google_containers(image: str, expected: str) -> None:
    assert mirror(preset_config("aliyun-google-containers"), image) == expected


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        pytest.param(corpus_image("kubernetes-examples.yaml", "k8s.gcr.io/nginx-slim:0.8"), "lank8s.cn/nginx-slim:0.8", id="k8s-gcr"),
        pytest.param(corpus_image("kubernetes-examples.yaml", "gcr.io/google-samples/cassandra:v14"), "gcr.lank8s.cn/google-samples/cassandra:v14", id="gcr"),
        pytest.param("registry.k8s.io/coredns/coredns:v1.11.1", "registry.lank8s.cn/coredns/coredns:v1.11.1", id="registry-k8s"),
        pytest.param(
            corpus_image("ingress-nginx-chart.yaml", "registry.k8s.io/ingress-nginx/kube-webhook-certgen:v1.6.9@sha256:01038e7de14b78d702d2849c3aad72fd25903c4765af63cf16aa3398f5d5f2dd"),
            "registry.lank8s.cn/ingress-nginx/kube-webhook-certgen:v1.6.9@sha256:01038e7de14b78d702d2849c3aad72fd25903c4765af63cf16aa3398f5d5f2dd",
            id="registry-k8s-tag-digest",
        ),
        pytest.param("quay.io/calico/cni:v3.32.1", "quay.io/calico/cni:v3.32.1", id="quay-unchanged"),
    ],
)
def test_preset_lank8s(image: str, expected: str) -> None:
    assert mirror(preset_config("lank8s"), image) == expected


def test_preset_azk8s_alias_then_swap() -> None:
    cfg = preset_config("azk8s")
    assert mirror(cfg, "k8s.gcr.io/kube-proxy:v1.15.5") == "gcr.azk8s.cn/google-containers/kube-proxy:v1.15.5"
    assert mirror(cfg, "nginx") == "dockerhub.azk8s.cn/library/nginx"


def test_preset_ustc_docker_hub_library() -> None:
    cfg = preset_config("ustc")
    assert mirror(cfg, "nginx:1.16-alpine") == "docker.mirrors.ustc.edu.cn/library/nginx:1.16-alpine"
    assert mirror(cfg, "wanghkkk/busyboxplus") == "docker.mirrors.ustc.edu.cn/wanghkkk/busyboxplus"


@pytest.mark.parametrize("name", ["azk8s", "ustc"])
def test_dead_preset_warns(name: str) -> None:
    preset = load_preset(name)
    assert preset.status == "dead"
    cfg = preset_config(name)
    assert len(cfg.notices) == 1
    notice = cfg.notices[0]
    assert notice.startswith(f"warning: preset '{name}' is reported dead since {preset.status_date}")
    assert preset.status_note in notice and "--preset" in notice


@pytest.mark.parametrize("name", [n for n in preset_names() if load_preset(n).status != "dead"])
def test_working_preset_is_silent(name: str) -> None:
    assert preset_config(name).notices == ()


def test_user_rules_come_before_the_presets() -> None:
    cfg = parse_config("preset: daocloud\nmirrors:\n  - {from: docker.io, to: harbor.example.com/hub}\n", "f")
    assert mirror(cfg, "nginx:1.25") == "harbor.example.com/hub/library/nginx:1.25"
    assert mirror(cfg, "quay.io/calico/cni:v3.32.1") == "m.daocloud.io/quay.io/calico/cni:v3.32.1"


def test_preset_override_replaces_the_files_preset() -> None:
    cfg = parse_config(MINIMUM.replace("blocked: [docker.io, gcr.io, k8s.gcr.io, registry.k8s.io, quay.io]\n", ""), "f", preset_override="lank8s")
    assert mirror(cfg, "nginx:1.25") == "nginx:1.25"
    assert mirror(cfg, "registry.k8s.io/coredns/coredns:v1.11.1") == "registry.lank8s.cn/coredns/coredns:v1.11.1"
    # The user's rule still comes first.
    assert mirror(cfg, "k8s.gcr.io/redis:v1") == "registry.aliyuncs.com/google_containers/redis:v1"
    assert cfg.rules.blocked == frozenset({"k8s.gcr.io", "gcr.io", "registry.k8s.io"})


def test_preset_override_without_preset_in_file() -> None:
    cfg = parse_config("mirrors: []\n", "f", preset_override="ustc")
    assert mirror(cfg, "nginx") == "docker.mirrors.ustc.edu.cn/library/nginx"
    assert cfg.notices and cfg.notices[0].startswith("warning: preset 'ustc'")


def test_unknown_preset_override() -> None:
    with pytest.raises(KmirrorError, match="unknown preset: 'nope': known presets are .*daocloud"):
        parse_config("preset: daocloud\n", "f", preset_override="nope")


# --- discovery: --config > KMIRROR_CONFIG > nearest .kmirror.yaml > default preset ------------


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    monkeypatch.delenv("KMIRROR_CONFIG", raising=False)
    return monkeypatch


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_discover_nearest_upward(tmp_path: Path) -> None:
    top = write(tmp_path / CONFIG_NAME, "preset: lank8s\n")
    near = write(tmp_path / "a" / CONFIG_NAME, "preset: ustc\n")
    deep = tmp_path / "a" / "b" / "c"
    deep.mkdir(parents=True)
    assert discover(deep) == near
    assert discover(tmp_path / "a") == near
    assert discover(tmp_path) == top


@pytest.mark.parametrize("marker", [".git/", ".git", ".hg/"], ids=["git", "git-worktree", "mercurial"])
def test_discover_stops_at_the_top_of_the_repository(tmp_path: Path, marker: str) -> None:
    write(tmp_path / CONFIG_NAME, "blocked: []\n")  # two folders above the repository: not its rules
    repository = tmp_path / "work" / "repo"
    deep = repository / "deploy" / "prod"
    deep.mkdir(parents=True)
    if marker.endswith("/"):
        (repository / marker).mkdir()
    else:
        write(repository / marker, "gitdir: /elsewhere/.git/worktrees/repo\n")
    assert discover(deep) is None
    assert discover(repository) is None
    at_top = write(repository / CONFIG_NAME, "preset: ustc\n")
    assert discover(deep) == at_top
    assert discover(tmp_path / "work") == tmp_path / CONFIG_NAME  # outside the repository: up to /


def test_discover_ignores_a_directory_named_like_the_file(tmp_path: Path) -> None:
    (tmp_path / "a" / CONFIG_NAME).mkdir(parents=True)
    found = discover(tmp_path / "a")
    assert found is None or found.is_file()
    assert found != tmp_path / "a" / CONFIG_NAME


def test_load_config_option_beats_env_and_discovery(tmp_path: Path, clean_env: pytest.MonkeyPatch) -> None:
    option = write(tmp_path / "option.yaml", "preset: lank8s\n")
    env = write(tmp_path / "env.yaml", "preset: aliyun-google-containers\n")
    write(tmp_path / "work" / CONFIG_NAME, "preset: daocloud-hosts\n")
    clean_env.setenv("KMIRROR_CONFIG", str(env))
    cfg = load_config(str(option), None, tmp_path / "work")
    assert cfg.origin == str(option)
    assert mirror(cfg, "k8s.gcr.io/redis:v1") == "lank8s.cn/redis:v1"


def test_load_config_env_beats_discovery(tmp_path: Path, clean_env: pytest.MonkeyPatch) -> None:
    env = write(tmp_path / "env.yaml", "preset: aliyun-google-containers\n")
    write(tmp_path / "work" / CONFIG_NAME, "preset: daocloud-hosts\n")
    clean_env.setenv("KMIRROR_CONFIG", str(env))
    cfg = load_config(None, None, tmp_path / "work")
    assert cfg.origin == str(env)
    assert mirror(cfg, "k8s.gcr.io/redis:v1") == "registry.aliyuncs.com/google_containers/redis:v1"


def test_load_config_empty_env_is_ignored(tmp_path: Path, clean_env: pytest.MonkeyPatch) -> None:
    found = write(tmp_path / CONFIG_NAME, "preset: lank8s\n")
    clean_env.setenv("KMIRROR_CONFIG", "")
    assert load_config(None, None, tmp_path).origin == str(found)


def test_load_config_discovers_upward(tmp_path: Path, clean_env: pytest.MonkeyPatch) -> None:
    found = write(tmp_path / CONFIG_NAME, "preset: daocloud-hosts\n")
    deep = tmp_path / "charts" / "app"
    deep.mkdir(parents=True)
    cfg = load_config(None, None, deep)
    assert cfg.origin == str(found)
    assert cfg.notices == ()
    assert mirror(cfg, "nginx") == "docker.m.daocloud.io/library/nginx"


def test_load_config_default_preset_with_notice(tmp_path: Path, clean_env: pytest.MonkeyPatch) -> None:
    cfg = load_config(None, None, tmp_path)
    assert DEFAULT_PRESET == "daocloud"
    assert cfg.origin == "preset daocloud"
    assert len(cfg.notices) == 1
    assert cfg.notices[0].startswith(f"note: no {CONFIG_NAME} found; using the built-in preset 'daocloud'")
    assert mirror(cfg, "nginx") == "m.daocloud.io/docker.io/library/nginx"


def test_load_config_preset_option_without_file(tmp_path: Path, clean_env: pytest.MonkeyPatch) -> None:
    cfg = load_config(None, "lank8s", tmp_path)
    assert cfg.origin == "preset lank8s"
    assert cfg.notices == ()
    assert mirror(cfg, "gcr.io/google-samples/cassandra:v14") == "gcr.lank8s.cn/google-samples/cassandra:v14"


def test_load_config_dead_preset_option_warns(tmp_path: Path, clean_env: pytest.MonkeyPatch) -> None:
    cfg = load_config(None, "azk8s", tmp_path)
    assert [n.split(":")[0] for n in cfg.notices] == ["warning"]


def test_load_config_preset_option_overrides_file(tmp_path: Path, clean_env: pytest.MonkeyPatch) -> None:
    write(tmp_path / CONFIG_NAME, "preset: daocloud\n")
    cfg = load_config(None, "lank8s", tmp_path)
    assert mirror(cfg, "nginx") == "nginx"
    assert mirror(cfg, "k8s.gcr.io/redis:v1") == "lank8s.cn/redis:v1"


def test_load_config_missing_file(tmp_path: Path, clean_env: pytest.MonkeyPatch) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(KmirrorError, match=re.escape(f"cannot read config: {missing}: no such file")):
        load_config(str(missing), None, tmp_path)


def test_load_config_missing_env_file(tmp_path: Path, clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("KMIRROR_CONFIG", str(tmp_path / "gone.yaml"))
    with pytest.raises(KmirrorError, match="cannot read config: .*gone.yaml: no such file"):
        load_config(None, None, tmp_path)


def test_load_config_not_utf8(tmp_path: Path, clean_env: pytest.MonkeyPatch) -> None:
    bad = tmp_path / "latin1.yaml"
    bad.write_bytes(b"preset: daocloud # caf\xe9\n")
    with pytest.raises(KmirrorError, match="cannot read config: "):
        load_config(str(bad), None, tmp_path)


def test_load_config_error_names_the_file(tmp_path: Path, clean_env: pytest.MonkeyPatch) -> None:
    bad = write(tmp_path / CONFIG_NAME, "mirrors:\n  - {from: gcr.io, too: a.io}\n")
    with pytest.raises(KmirrorError) as info:
        load_config(None, None, tmp_path)
    assert str(info.value).startswith("invalid config: mirrors[0]: unknown key 'too'")
    assert f"(in {bad}, line 2)" in str(info.value)


# --- registries: (issue 21) ---------------------------------------------------------------------


def test_registries_section(tmp_path: Path) -> None:
    from rewriter.config import RegistrySettings

    text = (
        "registries:\n"
        "  Harbor.Local:5000: {plain_http: true}\n"
        "  reg.example:\n"
        "    ca_file: certs/ca.pem\n"
        "    token_hosts: [auth.example.net]\n"
        "  index.docker.io: {skip_verify: true}\n"
    )
    loaded = parse_config(text, str(tmp_path / ".kmirror.yaml"))
    assert loaded.registries == (
        RegistrySettings("harbor.local:5000", plain_http=True),
        RegistrySettings("reg.example", ca_file=str(tmp_path / "certs" / "ca.pem"), token_hosts=("auth.example.net",)),
        RegistrySettings("docker.io", skip_verify=True),
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("registries: [a.example]\n", "invalid config: registries: expected a mapping of registry host: settings (in r.yaml, line 1)"),
        ("registries:\n  a.example/x: {}\n", "invalid config: registries: 'a.example/x': give a registry host, with its port if any (e.g. harbor.local:5000) (in r.yaml, line 2)"),
        ("registries:\n  a.example:\n    plain: true\n", "invalid config: registries.a.example: unknown key 'plain' (known: plain_http, ca_file, skip_verify, token_hosts) (in r.yaml, line 3)"),
        ("registries:\n  a.example:\n    plain_http: 'yes'\n", "invalid config: registries.a.example.plain_http: expected true or false (in r.yaml, line 3)"),
        ("registries:\n  a.example: {plain_http: true, ca_file: ca.pem}\n", "invalid config: registries.a.example: plain_http talks no TLS: drop ca_file and skip_verify (in r.yaml, line 2)"),
        ("registries:\n  a.example: {}\n  A.example: {}\n", "invalid config: registries: 'a.example' is given twice (in r.yaml, line 3)"),
    ],
)
def test_registries_errors_name_key_and_line(text: str, message: str) -> None:
    with pytest.raises(KmirrorError) as caught:
        parse_config(text, "r.yaml")
    assert str(caught.value) == message

def test_check_ignores_rules_above_the_repository_and_names_what_it_used(tmp_path: Path) -> None:
    # The attack of issue 22: `blocked: []` two folders up made `check` pass silently.
    write(tmp_path / CONFIG_NAME, "blocked: []\n")
    repository = tmp_path / "ci" / "checkout"
    (repository / ".git").mkdir(parents=True)
    write(repository / "deploy" / "pod.yaml", "image: k8s.gcr.io/pause:3.9\n")
    env = {k: v for k, v in os.environ.items() if k not in ("KMIRROR_CONFIG", "GITHUB_ACTIONS")}
    kmirror = str(Path(sys.executable).parent / "kmirror")
    done = subprocess.run([kmirror, "check", "deploy"], cwd=repository, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert done.stdout.splitlines()[-1] == "1 problem in 1 file (1 file checked against preset daocloud)"
    assert done.stderr.startswith("kmirror: note: no .kmirror.yaml found; using the built-in preset 'daocloud'.")
    named = subprocess.run([kmirror, "check", "deploy"], cwd=repository, env={**env, "KMIRROR_CONFIG": str(tmp_path / CONFIG_NAME)}, capture_output=True, text=True, timeout=60)
    assert (named.returncode, named.stdout) == (0, f"no problems (1 file checked against {tmp_path / CONFIG_NAME})\n")
