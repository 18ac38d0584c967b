"""Tests for rewriter/rules.py: every substitution scheme of MIRRORS.md, on real images.

Images come from the corpus of upstream manifests in fixtures/corpus:
`corpus_ref` checks that the image really occurs in the named file before using it.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rewriter.config import parse_config, preset_names
from rewriter.reference import ImageRef, ReferenceError, is_reference, parse
from rewriter.rules import DigestError, Prefix, Rule, RuleError, RuleSet, make_rule, parse_prefix

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "corpus"

_IMAGE_LINE = re.compile(r"""^\s*(?:-\s+)?image:\s+["']?([^\s"'#{}]+)["']?\s*(?:#.*)?$""", re.MULTILINE)


@lru_cache(maxsize=None)
def _corpus_text(file: str) -> str:
    return (CORPUS / file).read_text(encoding="utf-8")


def corpus_ref(file: str, image: str) -> ImageRef:
    """The image `image`, after checking that the corpus file `file` holds it."""
    assert image in _corpus_text(file), f"{image!r} does not occur in {CORPUS / file}"
    return parse(image)


def corpus_images() -> list[str]:
    """Every reference written after an `image:` key anywhere in the corpus."""
    found: set[str] = set()
    for path in sorted(CORPUS.glob("*.yaml")):
        found.update(m.group(1) for m in _IMAGE_LINE.finditer(path.read_text(encoding="utf-8")))
    return sorted(image for image in found if is_reference(image))


def ruleset(*rules: tuple[str, str | None] | tuple[str, str | None, bool], aliases: dict[str, str] | None = None) -> RuleSet:
    """A RuleSet from `(from, to[, flatten])` tuples, in order."""
    built = tuple(make_rule(*r) for r in rules)
    alias_pairs = tuple((parse_prefix(k), parse_prefix(v)) for k, v in (aliases or {}).items())
    return RuleSet(rules=built, aliases=alias_pairs, blocked=frozenset(r.registry for r in built if r.to is not None))


def rewrite(rules: RuleSet, ref: ImageRef) -> str:
    return str(rules.decide(ref).final)


KUBE_EXAMPLES = "kubernetes-examples.yaml"
KUBE_PROM = "kube-prometheus-manifests.yaml"

# (id, rules, aliases, corpus file, image, expected)
SCHEMES: list[tuple[str, list[tuple[str, str] | tuple[str, str, bool]], dict[str, str], str, str, str]] = [
    # host swap: replace the registry host, keep the path.
    ("host-swap-quay", [("quay.io", "quay-mirror.qiniu.com")], {}, KUBE_PROM,
     "quay.io/prometheus/node-exporter:v1.11.1", "quay-mirror.qiniu.com/prometheus/node-exporter:v1.11.1"),
    ("host-swap-gcr", [("gcr.io", "gcr.mirrors.ustc.edu.cn")], {}, "tekton-examples.yaml",
     "gcr.io/kaniko-project/executor:v1.8.1", "gcr.mirrors.ustc.edu.cn/kaniko-project/executor:v1.8.1"),
    ("host-swap-k8s-gcr", [("k8s.gcr.io", "lank8s.cn")], {}, KUBE_EXAMPLES,
     "k8s.gcr.io/nginx-slim:0.8", "lank8s.cn/nginx-slim:0.8"),
    ("host-swap-registry-k8s", [("registry.k8s.io", "registry.lank8s.cn")], {}, "metrics-server-chart.yaml",
     "registry.k8s.io/metrics-server/metrics-server:v0.8.1", "registry.lank8s.cn/metrics-server/metrics-server:v0.8.1"),
    ("host-swap-port-target", [("ghcr.io", "mirror.internal:5000")], {}, "flannel-kube-flannel.yaml",
     "ghcr.io/flannel-io/flannel:v0.28.9", "mirror.internal:5000/flannel-io/flannel:v0.28.9"),
    # prefix swap: replace a host+path prefix.
    ("prefix-swap", [("gcr.io/google_samples", "registry.aliyuncs.com/google_samples_mirror")], {}, KUBE_EXAMPLES,
     "gcr.io/google_samples/gb-redisslave:v1", "registry.aliyuncs.com/google_samples_mirror/gb-redisslave:v1"),
    ("prefix-swap-deep", [("gcr.io/tekton-releases/github.com/tektoncd", "harbor.example.com/tekton")], {}, "tekton-pipeline-release.yaml",
     "gcr.io/tekton-releases/github.com/tektoncd/pipeline/cmd/nop:v0.53.2@sha256:1793eb2b13d86e084d603ec174904176e5e68b7161be9ed66786deda8f728f30",
     "harbor.example.com/tekton/pipeline/cmd/nop:v0.53.2@sha256:1793eb2b13d86e084d603ec174904176e5e68b7161be9ed66786deda8f728f30"),
    # flatten: drop intermediate path, keep the last component.
    ("flatten-registry-k8s", [("registry.k8s.io", "registry.aliyuncs.com/google_containers", True)], {}, KUBE_PROM,
     "registry.k8s.io/kube-state-metrics/kube-state-metrics:v2.19.0", "registry.aliyuncs.com/google_containers/kube-state-metrics:v2.19.0"),
    ("flatten-tag-and-digest", [("registry.k8s.io", "registry.aliyuncs.com/google_containers", True)], {}, "ingress-nginx-deploy-cloud.yaml",
     "registry.k8s.io/ingress-nginx/controller:v1.15.1@sha256:594ceea76b01c592858f803f9ff4d2cb40542cae2060410b2c95f75907d659e1",
     "registry.aliyuncs.com/google_containers/controller:v1.15.1@sha256:594ceea76b01c592858f803f9ff4d2cb40542cae2060410b2c95f75907d659e1"),
    ("flatten-k8s-gcr", [("k8s.gcr.io", "registry.aliyuncs.com/google_containers", True)], {}, KUBE_EXAMPLES,
     "k8s.gcr.io/redis:e2e", "registry.aliyuncs.com/google_containers/redis:e2e"),
    # alias then swap: normalise k8s.gcr.io to gcr.io/google-containers, then host swap.
    ("alias-then-host-swap", [("gcr.io", "gcr.azk8s.cn")], {"k8s.gcr.io": "gcr.io/google-containers"}, KUBE_EXAMPLES,
     "k8s.gcr.io/redis:v1", "gcr.azk8s.cn/google-containers/redis:v1"),
    ("alias-then-prefix-swap", [("gcr.io/google-containers", "registry.aliyuncs.com/google_containers")],
     {"k8s.gcr.io": "gcr.io/google-containers"}, KUBE_EXAMPLES,
     "k8s.gcr.io/nginx-slim:0.8", "registry.aliyuncs.com/google_containers/nginx-slim:0.8"),
    # Docker Hub namespace: move into a Docker Hub user namespace.
    ("hub-namespace", [("k8s.gcr.io", "googlecontainersmirror", True)], {}, KUBE_EXAMPLES,
     "k8s.gcr.io/nginx-slim:0.8", "googlecontainersmirror/nginx-slim:0.8"),
    # dot-joined name: path components joined with "." under one namespace.
    ("dot-joined-gcr", [("gcr.io", "anjia0532/{path_dotted}")], {}, KUBE_EXAMPLES,
     "gcr.io/google-samples/cassandra:v14", "anjia0532/google-samples.cassandra:v14"),
    ("dot-joined-gcr-kaniko", [("gcr.io", "anjia0532/{path_dotted}")], {}, "tekton-examples.yaml",
     "gcr.io/kaniko-project/executor:v1.8.1", "anjia0532/kaniko-project.executor:v1.8.1"),
    ("dot-joined-k8s-gcr", [("k8s.gcr.io", "anjia0532/google-containers.{path_dotted}")], {}, KUBE_EXAMPLES,
     "k8s.gcr.io/redis:e2e", "anjia0532/google-containers.redis:e2e"),
    # Docker Hub with library/: official images get the explicit segment.
    ("hub-library-official", [("docker.io", "docker.mirrors.ustc.edu.cn")], {}, KUBE_EXAMPLES,
     "mysql:5.6", "docker.mirrors.ustc.edu.cn/library/mysql:5.6"),
    ("hub-library-bare", [("docker.io", "docker.mirrors.ustc.edu.cn")], {}, KUBE_EXAMPLES,
     "busybox", "docker.mirrors.ustc.edu.cn/library/busybox"),
    ("hub-library-user", [("docker.io", "docker.mirrors.ustc.edu.cn")], {}, "kubernetes-dashboard-recommended.yaml",
     "kubernetesui/dashboard:v2.7.0", "docker.mirrors.ustc.edu.cn/kubernetesui/dashboard:v2.7.0"),
    ("hub-library-explicit", [("docker.io", "docker.mirrors.ustc.edu.cn")], {}, "local-path-provisioner-local-path-storage.yaml",
     "docker.io/library/busybox", "docker.mirrors.ustc.edu.cn/library/busybox"),
    # full-reference prefix: a host in front of the whole normalised reference.
    ("full-reference-prefix", [("docker.io", "m.daocloud.io/docker.io")], {}, KUBE_EXAMPLES,
     "wordpress:4.8-apache", "m.daocloud.io/docker.io/library/wordpress:4.8-apache"),
    ("full-reference-prefix-org", [("docker.io", "m.daocloud.io/docker.io")], {}, "istio-samples.yaml",
     "docker.io/grafana/loki:3.6.5", "m.daocloud.io/docker.io/grafana/loki:3.6.5"),
    ("full-reference-template", [("quay.io", "m.daocloud.io/{registry}/{repository}")], {}, "calico-calico.yaml",
     "quay.io/calico/node:v3.32.1", "m.daocloud.io/quay.io/calico/node:v3.32.1"),
    ("template-name", [("ghcr.io", "harbor.example.com/ghcr/{name}")], {}, "argo-cd-install.yaml",
     "ghcr.io/dexidp/dex:v2.45.0", "harbor.example.com/ghcr/dex:v2.45.0"),
    ("template-path", [("quay.io/jetstack", "harbor.example.com/jetstack-mirror/{path}")], {}, "cert-manager-chart.yaml",
     "quay.io/jetstack/cert-manager-webhook:v1.21.1", "harbor.example.com/jetstack-mirror/cert-manager-webhook:v1.21.1"),
]


@pytest.mark.parametrize(
    ("rules", "aliases", "file", "image", "expected"),
    [pytest.param(*case[1:], id=case[0]) for case in SCHEMES],
)
def test_scheme(
    rules: list[tuple[str, str] | tuple[str, str, bool]], aliases: dict[str, str], file: str, image: str, expected: str
) -> None:
    ref = corpus_ref(file, image)
    decision = ruleset(*rules, aliases=aliases).decide(ref)
    assert decision.mirrored is not None
    assert str(decision.final) == expected
    assert decision.rule is not None and decision.rule.source == rules[0][0]
    # Tags and digests always travel unchanged.
    assert (decision.final.tag, decision.final.digest) == (ref.tag, ref.digest)


def test_hub_namespace_target_is_on_docker_hub() -> None:
    ref = corpus_ref(KUBE_EXAMPLES, "k8s.gcr.io/nginx-slim:0.8")
    final = ruleset(("k8s.gcr.io", "googlecontainersmirror", True)).decide(ref).final
    assert final.normalized == "docker.io/googlecontainersmirror/nginx-slim:0.8"


def test_mirrors_md_examples() -> None:
    """The examples of MIRRORS.md's scheme table, literally."""
    cases = [
        (ruleset(("quay.io", "quay-mirror.qiniu.com")), "quay.io/prometheus/node-exporter:v0.18.1", "quay-mirror.qiniu.com/prometheus/node-exporter:v0.18.1"),
        (ruleset(("gcr.io", "gcr.mirrors.ustc.edu.cn")), "gcr.io/kubernetes-helm/tiller:v2.16.1", "gcr.mirrors.ustc.edu.cn/kubernetes-helm/tiller:v2.16.1"),
        (ruleset(("registry.k8s.io", "registry.lank8s.cn")), "registry.k8s.io/coredns/coredns", "registry.lank8s.cn/coredns/coredns"),
        (ruleset(("gcr.io/google-containers", "registry.aliyuncs.com/google_containers")), "gcr.io/google-containers/kube-proxy:v1.18.0", "registry.aliyuncs.com/google_containers/kube-proxy:v1.18.0"),
        (ruleset(("k8s.gcr.io", "registry.aliyuncs.com/google_containers", True)), "k8s.gcr.io/sig-storage/csi-node-driver-registrar:v2.3.0", "registry.aliyuncs.com/google_containers/csi-node-driver-registrar:v2.3.0"),
        (ruleset(("gcr.io", "gcr.azk8s.cn"), aliases={"k8s.gcr.io": "gcr.io/google-containers"}), "k8s.gcr.io/kube-proxy:v1.15.5", "gcr.azk8s.cn/google-containers/kube-proxy:v1.15.5"),
        (ruleset(("k8s.gcr.io", "googlecontainersmirror", True)), "k8s.gcr.io/kube-proxy:v1.18.0", "googlecontainersmirror/kube-proxy:v1.18.0"),
        (ruleset(("k8s.gcr.io", "anjia0532/google-containers.{path_dotted}")), "k8s.gcr.io/kube-proxy:v1.18.0", "anjia0532/google-containers.kube-proxy:v1.18.0"),
        (ruleset(("docker.io", "docker.mirrors.ustc.edu.cn")), "nginx:1.16-alpine", "docker.mirrors.ustc.edu.cn/library/nginx:1.16-alpine"),
        (ruleset(("docker.io", "docker.mirrors.ustc.edu.cn")), "wanghkkk/busyboxplus", "docker.mirrors.ustc.edu.cn/wanghkkk/busyboxplus"),
        (ruleset(("docker.io", "m.daocloud.io/docker.io")), "docker.io/library/nginx:1.25", "m.daocloud.io/docker.io/library/nginx:1.25"),
    ]
    for rules, source, expected in cases:
        assert rewrite(rules, parse(source)) == expected, source


# --- per-image exact override -----------------------------------------------------------------

EXACT_PATCHED = ("docker.io/library/nginx:1.16", "harbor.example.com/base/nginx:1.16-patched")
EXACT_NO_TAG = ("docker.io/library/nginx:1.16", "harbor.example.com/base/nginx")


@pytest.mark.parametrize(
    ("rule", "image", "expected"),
    [
        pytest.param(EXACT_PATCHED, "nginx:1.16", "harbor.example.com/base/nginx:1.16-patched", id="short-form-matches"),
        pytest.param(EXACT_PATCHED, "docker.io/library/nginx:1.16", "harbor.example.com/base/nginx:1.16-patched", id="long-form-matches"),
        pytest.param(EXACT_PATCHED, "index.docker.io/nginx:1.16", "harbor.example.com/base/nginx:1.16-patched", id="alias-host-matches"),
        pytest.param(EXACT_NO_TAG, "nginx:1.16", "harbor.example.com/base/nginx:1.16", id="to-without-tag-keeps-tag"),
        pytest.param(
            EXACT_NO_TAG,
            "nginx:1.16@sha256:594ceea76b01c592858f803f9ff4d2cb40542cae2060410b2c95f75907d659e1",
            "harbor.example.com/base/nginx:1.16@sha256:594ceea76b01c592858f803f9ff4d2cb40542cae2060410b2c95f75907d659e1",
            id="to-without-tag-keeps-digest",
        ),
        pytest.param(EXACT_PATCHED, "nginx:1.13", "nginx:1.13", id="other-tag-unchanged"),
        pytest.param(EXACT_PATCHED, "nginx", "nginx", id="no-tag-unchanged"),
        pytest.param(EXACT_PATCHED, "nginx-unprivileged:1.16", "nginx-unprivileged:1.16", id="other-name-unchanged"),
    ],
)
def test_exact_override(rule: tuple[str, str], image: str, expected: str) -> None:
    assert rewrite(ruleset(rule), parse(image)) == expected


def test_exact_override_before_broader_rule_on_corpus_image() -> None:
    rules = ruleset(("docker.io/library/nginx:1.13", "harbor.example.com/base/nginx:1.13-patched"), ("docker.io", "m.daocloud.io/docker.io"))
    nginx = corpus_ref("argo-workflows-examples.yaml", "nginx:1.13")
    alpine = corpus_ref("argo-workflows-examples.yaml", "alpine:3.23")
    assert rewrite(rules, nginx) == "harbor.example.com/base/nginx:1.13-patched"
    assert rewrite(rules, alpine) == "m.daocloud.io/docker.io/library/alpine:3.23"


def test_exact_rule_with_digest_matches_only_that_digest() -> None:
    pinned = "mirror.gcr.io/ubuntu@sha256:0d39fcc8335d6d74d5502f6df2d30119ff4790ebbb60b364818d5112d9e3e932"
    rules = ruleset((pinned, "harbor.example.com/ubuntu"))
    assert rewrite(rules, corpus_ref("tekton-examples.yaml", pinned)) == (
        "harbor.example.com/ubuntu@sha256:0d39fcc8335d6d74d5502f6df2d30119ff4790ebbb60b364818d5112d9e3e932"
    )
    assert rewrite(rules, corpus_ref("tekton-examples.yaml", "mirror.gcr.io/ubuntu")) == "mirror.gcr.io/ubuntu"


DIGEST = "sha256:" + "ab" * 32
OTHER_DIGEST = "sha256:" + "cd" * 32


@pytest.mark.parametrize(
    ("rule", "image"),
    [
        pytest.param(EXACT_PATCHED, f"nginx:1.16@{DIGEST}", id="exact-rule-to-with-tag"),
        pytest.param(("docker.io/library/nginx:1.16", f"harbor.example.com/base/nginx@{OTHER_DIGEST}"), f"nginx:1.16@{DIGEST}", id="exact-rule-to-with-other-digest"),
        pytest.param(("quay.io", "mirror.example.com/{name}:fixed"), f"quay.io/x/y:v1@{DIGEST}", id="template-with-tag"),
    ],
)
def test_a_rule_never_drops_a_digest(rule: tuple[str, str], image: str) -> None:
    with pytest.raises(DigestError, match="pinned by digest"):
        ruleset(rule).decide(parse(image))


@pytest.mark.parametrize(
    ("rule", "image", "expected"),
    [
        pytest.param(EXACT_NO_TAG, f"nginx:1.16@{DIGEST}", f"harbor.example.com/base/nginx:1.16@{DIGEST}", id="to-without-tag"),
        pytest.param(("quay.io", "mirror.example.com/quay"), f"quay.io/x:v1@{DIGEST}", f"mirror.example.com/quay/x:v1@{DIGEST}", id="prefix-rule"),
        pytest.param(
            (f"docker.io/library/nginx@{DIGEST}", f"harbor.example.com/nginx:patched@{OTHER_DIGEST}"),
            f"nginx:1.16@{DIGEST}", f"harbor.example.com/nginx:patched@{OTHER_DIGEST}", id="digest-named-in-from-replaced-by-to",
        ),
    ],
)
def test_digests_travel(rule: tuple[str, str], image: str, expected: str) -> None:
    assert rewrite(ruleset(rule), parse(image)) == expected


def test_default_port_and_case_are_the_same_registry_for_rules_blocked_and_allow() -> None:
    rules = ruleset(("quay.io", "mirror.example.com/quay"))
    assert rewrite(rules, parse("Quay.IO:443/x/y:v1")) == "mirror.example.com/quay/x/y:v1"
    blocked = RuleSet(blocked=frozenset({"quay.io", "docker.io"}), allow=(make_rule("quay.io:443/team", None),))
    assert blocked.decide(parse("quay.io:443/x:v1")).blocked
    assert blocked.decide(parse("registry-1.docker.io:443/library/nginx")).blocked
    assert not blocked.decide(parse("QUAY.io/team/x:v1")).blocked
    assert not blocked.decide(parse("quay.io:8443/x:v1")).blocked


# --- order, keep, single application ----------------------------------------------------------


def test_keep_before_broader_rule() -> None:
    rules = ruleset(("quay.io/prometheus", None), ("quay.io", "quay-mirror.qiniu.com"))
    kept = rules.decide(corpus_ref(KUBE_PROM, "quay.io/prometheus/alertmanager:v0.33.0"))
    assert kept.mirrored is None
    assert kept.rule is not None and kept.rule.to is None
    assert str(kept.final) == "quay.io/prometheus/alertmanager:v0.33.0"
    other = rules.decide(corpus_ref(KUBE_PROM, "quay.io/brancz/kube-rbac-proxy:v0.22.0"))
    assert str(other.final) == "quay-mirror.qiniu.com/brancz/kube-rbac-proxy:v0.22.0"


def test_keep_after_broader_rule_never_applies() -> None:
    rules = ruleset(("quay.io", "quay-mirror.qiniu.com"), ("quay.io/prometheus", None))
    ref = corpus_ref(KUBE_PROM, "quay.io/prometheus/alertmanager:v0.33.0")
    assert rewrite(rules, ref) == "quay-mirror.qiniu.com/prometheus/alertmanager:v0.33.0"


def test_first_match_wins() -> None:
    ref = corpus_ref(KUBE_EXAMPLES, "gcr.io/google-samples/gb-frontend:v4")
    narrow_first = ruleset(("gcr.io/google-samples", "samples.example.com"), ("gcr.io", "gcr.lank8s.cn"))
    broad_first = ruleset(("gcr.io", "gcr.lank8s.cn"), ("gcr.io/google-samples", "samples.example.com"))
    assert rewrite(narrow_first, ref) == "samples.example.com/gb-frontend:v4"
    assert rewrite(broad_first, ref) == "gcr.lank8s.cn/google-samples/gb-frontend:v4"
    assert broad_first.decide(ref).rule == broad_first.rules[0]


def test_rewritten_reference_is_never_matched_again() -> None:
    # The first rule's result lands on quay.io, which the second rule would rewrite again.
    rules = ruleset(("docker.io", "quay.io/dockerhub"), ("quay.io", "quay-mirror.qiniu.com"))
    ref = corpus_ref(KUBE_EXAMPLES, "busybox")
    decision = rules.decide(ref)
    assert str(decision.final) == "quay.io/dockerhub/library/busybox"
    assert decision.rule == rules.rules[0]


def test_rule_mapping_onto_itself_is_applied_once() -> None:
    rules = ruleset(("quay.io", "quay.io/mirror"))
    ref = corpus_ref("calico-calico.yaml", "quay.io/calico/cni:v3.32.1")
    once = rules.decide(ref).final
    assert str(once) == "quay.io/mirror/calico/cni:v3.32.1"


def test_alias_applies_before_rules_and_result_is_not_aliased_again() -> None:
    rules = ruleset(("gcr.io/google-containers", "k8s.gcr.io/mirror"), aliases={"k8s.gcr.io": "gcr.io/google-containers"})
    ref = corpus_ref(KUBE_EXAMPLES, "k8s.gcr.io/redis:v1")
    assert rewrite(rules, ref) == "k8s.gcr.io/mirror/redis:v1"


def test_google_containers_spellings_both_alias() -> None:
    aliases = {"k8s.gcr.io": "gcr.io/google-containers", "gcr.io/google_containers": "gcr.io/google-containers"}
    rules = ruleset(("gcr.io/google-containers", "registry.aliyuncs.com/google_containers"), aliases=aliases)
    assert rewrite(rules, parse("gcr.io/google_containers/pause:3.1")) == "registry.aliyuncs.com/google_containers/pause:3.1"
    assert rewrite(rules, parse("k8s.gcr.io/pause:3.1")) == "registry.aliyuncs.com/google_containers/pause:3.1"


# --- matching on component boundaries, hosts -------------------------------------------------


@pytest.mark.parametrize(
    ("source", "image", "matches"),
    [
        pytest.param("gcr.io/google-containers", "gcr.io/google-containers/pause:3.1", True, id="path-prefix"),
        pytest.param("gcr.io/google-containers", "gcr.io/google-containers", True, id="path-prefix-is-whole-name"),
        pytest.param("gcr.io/google-containers", "gcr.io/google-containers-extra/x", False, id="path-not-component-prefix"),
        pytest.param("gcr.io/google-containers", "gcr.io/google/containers", False, id="path-different-split"),
        pytest.param("gcr.io/google-samples", "gcr.io/google_samples/gb-redisslave:v1", False, id="dash-is-not-underscore"),
        pytest.param("quay.io", "quay.io.evil.com/x", False, id="host-not-string-prefix"),
        pytest.param("quay.io", "evilquay.io/x", False, id="host-not-suffix"),
        pytest.param("gcr.io", "mirror.gcr.io/alpine", False, id="subdomain-is-another-host"),
        pytest.param("gcr.io", "k8s.gcr.io/redis:v1", False, id="k8s-gcr-is-not-gcr"),
        pytest.param("docker.io/library/nginx", "nginx-unprivileged", False, id="hub-name-boundary"),
        pytest.param("docker.io/library/nginx", "nginx:1.13", True, id="hub-short-name"),
        pytest.param("docker.io/library", "busybox", True, id="hub-library-namespace"),
        pytest.param("docker.io/library", "grafana/grafana:13.0.2", False, id="hub-org-not-library"),
        pytest.param("index.docker.io", "nginx", True, id="hub-alias-in-rule"),
        pytest.param("docker.io", "registry-1.docker.io/bitnami/redis", True, id="hub-alias-in-reference"),
        pytest.param("localhost:5000", "localhost:5000/foo", True, id="port-same"),
        pytest.param("localhost:5000", "localhost:5001/foo", False, id="port-differs"),
        pytest.param("localhost:5000", "localhost/foo", False, id="port-missing-in-reference"),
        pytest.param("localhost", "localhost:5000/foo", False, id="port-missing-in-rule"),
        pytest.param("registry:5000", "registry:5000/kubevirt/cirros-container-disk-demo:devel", True, id="port-host-without-dot"),
        pytest.param("Registry:5000", "REGISTRY:5000/kubevirt/x", True, id="host-case-insensitive"),
        pytest.param("QUAY.IO/calico", "quay.io/calico/node:v3.32.1", True, id="rule-host-upper-case"),
        pytest.param("quay.io", "Quay.Io/calico/node", True, id="reference-host-mixed-case"),
    ],
)
def test_match_boundaries(source: str, image: str, matches: bool) -> None:
    rule = make_rule(source, "mirror.example.com")
    assert (rule.apply(parse(image)) is not None) is matches


def test_corpus_host_port_without_dot() -> None:
    ref = corpus_ref("kubevirt-examples.yaml", "registry:5000/kubevirt/cirros-container-disk-demo:devel")
    rules = ruleset(("registry:5000", "harbor.example.com/kubevirt-ci"))
    assert rewrite(rules, ref) == "harbor.example.com/kubevirt-ci/kubevirt/cirros-container-disk-demo:devel"
    assert rewrite(ruleset(("registry:5001", "x.example.com")), ref) == str(ref)


# --- tags, digests and unmatched text ---------------------------------------------------------

ALL_CORPUS = corpus_images()

SWAP_RULES = ruleset(
    ("docker.io", "m.daocloud.io/docker.io"),
    ("registry.k8s.io", "registry.aliyuncs.com/google_containers", True),
    ("gcr.io", "anjia0532/{path_dotted}"),
    ("quay.io", "quay-mirror.qiniu.com"),
    ("ghcr.io", "ghcr.m.daocloud.io"),
    aliases={"k8s.gcr.io": "gcr.io/google-containers"},
)


def test_corpus_scan_found_images() -> None:
    assert len(ALL_CORPUS) > 50
    assert "quay.io/argoproj/argocd:v3.5.1" in ALL_CORPUS


@pytest.mark.parametrize("image", ALL_CORPUS)
def test_tag_and_digest_travel_unchanged(image: str) -> None:
    ref = parse(image)
    final = SWAP_RULES.decide(ref).final
    assert (final.tag, final.digest) == (ref.tag, ref.digest)
    assert final.suffix == ref.suffix


@pytest.mark.parametrize("image", ALL_CORPUS)
def test_no_rules_changes_nothing(image: str) -> None:
    decision = RuleSet().decide(parse(image))
    assert decision.mirrored is None and decision.rule is None
    assert str(decision.final) == image


@pytest.mark.parametrize(
    ("file", "image"),
    [
        pytest.param(KUBE_EXAMPLES, "busybox", id="bare-hub-name-not-normalised"),
        pytest.param("local-path-provisioner-local-path-storage.yaml", "docker.io/library/busybox", id="explicit-hub-kept"),
        pytest.param("kubevirt-examples.yaml", "registry:5000/kubevirt/alpine-container-disk-demo:devel", id="host-port"),
        pytest.param(KUBE_EXAMPLES, "k8s.gcr.io/redis:v1", id="aliased-but-unmatched"),
        pytest.param("tekton-pipeline-release.yaml", "cgr.dev/chainguard/busybox@sha256:19f02276bf8dbdd62f069b922f10c65262cc34b710eea26ff928129a736be791", id="digest"),
    ],
)
def test_unmatched_reference_keeps_its_exact_text(file: str, image: str) -> None:
    rules = ruleset(("mcr.microsoft.com", "mcr.example.com"), aliases={"k8s.gcr.io": "gcr.io/google-containers"})
    decision = rules.decide(corpus_ref(file, image))
    assert decision.mirrored is None and decision.rule is None
    assert str(decision.final) == image


def test_identity_rewrite_is_not_a_mirror() -> None:
    rules = ruleset(("quay.io", "quay.io"))
    decision = rules.decide(corpus_ref("calico-calico.yaml", "quay.io/calico/node:v3.32.1"))
    assert decision.mirrored is None
    assert decision.rule is not None


# --- blocked and allowed ----------------------------------------------------------------------


def test_blocked_reports_references_still_on_a_blocked_registry() -> None:
    rules = RuleSet(
        rules=(make_rule("quay.io", "quay-mirror.qiniu.com"), make_rule("quay.io/prometheus", None)),
        blocked=frozenset({"quay.io", "docker.io"}),
    )
    assert not rules.decide(parse("quay.io/calico/node:v3.32.1")).blocked
    assert rules.decide(parse("busybox")).blocked
    assert not rules.decide(parse("ghcr.io/dexidp/dex:v2.45.0")).blocked


def test_keep_rule_leaves_reference_blocked() -> None:
    rules = RuleSet(rules=(make_rule("quay.io/prometheus", None),), blocked=frozenset({"quay.io"}))
    assert rules.decide(parse("quay.io/prometheus/prometheus:v3.12.0")).blocked


def test_allow_overrides_blocked() -> None:
    rules = RuleSet(blocked=frozenset({"quay.io"}), allow=(make_rule("quay.io/strimzi", None),))
    decision = rules.decide(corpus_ref("strimzi-cluster-operator.yaml", "quay.io/strimzi/operator:1.2.0"))
    assert decision.allowed and not decision.blocked
    other = rules.decide(corpus_ref("calico-calico.yaml", "quay.io/calico/cni:v3.32.1"))
    assert other.blocked and not other.allowed


def test_blocked_host_is_case_insensitive_and_includes_port() -> None:
    rules = RuleSet(blocked=frozenset({"localhost:5000"}))
    assert rules.decide(parse("LocalHost:5000/x")).blocked
    assert not rules.decide(parse("localhost:5001/x")).blocked


# --- rule construction, errors, describe ------------------------------------------------------


def test_make_rule_kinds() -> None:
    prefix = make_rule("gcr.io/google-containers", "registry.aliyuncs.com/google_containers", flatten=True)
    assert prefix.prefix == Prefix("gcr.io", ("google-containers",)) and prefix.exact is None
    exact = make_rule("docker.io/library/nginx:1.16", "harbor.example.com/base/nginx:1.16-patched")
    assert exact.exact == parse("docker.io/library/nginx:1.16") and exact.prefix is None
    assert make_rule("index.docker.io", "x.example.com").registry == "docker.io"
    assert exact.registry == "docker.io"


@pytest.mark.parametrize(
    ("rule", "text"),
    [
        pytest.param(make_rule("k8s.gcr.io", "registry.aliyuncs.com/google_containers", True), "k8s.gcr.io -> registry.aliyuncs.com/google_containers (flatten)", id="flatten"),
        pytest.param(make_rule("gcr.io", "gcr.lank8s.cn"), "gcr.io -> gcr.lank8s.cn", id="swap"),
        pytest.param(make_rule("quay.io/prometheus", None), "quay.io/prometheus (keep)", id="keep"),
    ],
)
def test_describe(rule: Rule, text: str) -> None:
    assert rule.describe() == text


@pytest.mark.parametrize(
    ("source", "to", "flatten", "fragment"),
    [
        pytest.param("nginx", "x.example.com", False, "does not start with a registry host", id="from-without-host"),
        pytest.param("gcr.io//x", "x.example.com", False, "empty path component", id="from-empty-component"),
        pytest.param("gcr.io/Google", "x.example.com", False, "invalid repository path 'Google'", id="from-upper-case-path"),
        pytest.param("gcr.io/a__-b", "x.example.com", False, "invalid repository path", id="from-bad-separator"),
        pytest.param("gcr_io.com", "x.example.com", False, "invalid registry host 'gcr_io.com'", id="from-bad-host"),
        pytest.param("gcr.io:x", "x.example.com", False, "invalid registry host", id="from-bad-port"),
        pytest.param("docker.io/library/nginx:.x", "x.example.com", False, "is not a valid image reference", id="from-exact-bad-tag"),
        pytest.param("gcr.io", "x.example.com/{nam}", False, "unknown placeholder {nam}", id="unknown-placeholder"),
        pytest.param("gcr.io", "x.example.com/{name}", True, "flatten cannot be combined with a template", id="flatten-and-template"),
        pytest.param("gcr.io", "x.example.com/{name", False, "unbalanced brace", id="unbalanced-brace"),
        pytest.param("gcr.io", "X_Y.example.com", False, "does not give a valid image reference", id="to-bad-host"),
        pytest.param("gcr.io", "x.example.com/Upper", False, "must be lowercase", id="to-upper-case"),
        pytest.param("gcr.io", "x.example.com/a:tag", False, "does not give a valid image reference", id="prefix-to-with-tag"),
        pytest.param("gcr.io", "x.example.com/a b", False, "white space", id="to-with-space"),
    ],
)
def test_make_rule_errors(source: str, to: str, flatten: bool, fragment: str) -> None:
    with pytest.raises(RuleError) as info:
        make_rule(source, to, flatten)
    assert fragment in str(info.value)


@pytest.mark.parametrize(
    ("text", "registry", "components"),
    [
        pytest.param("gcr.io", "gcr.io", (), id="host"),
        pytest.param("gcr.io/google-containers/", "gcr.io", ("google-containers",), id="trailing-slash"),
        pytest.param("Index.Docker.IO/library", "docker.io", ("library",), id="hub-alias"),
        pytest.param("registry-1.docker.io", "docker.io", (), id="hub-registry-1"),
        pytest.param("quay.io:443/team", "quay.io", ("team",), id="default-port"),
        pytest.param("Index.Docker.IO:443", "docker.io", (), id="hub-alias-default-port"),
        pytest.param("localhost", "localhost", (), id="localhost"),
        pytest.param("[::1]:5000/a", "[::1]:5000", ("a",), id="ipv6-port"),
    ],
)
def test_parse_prefix(text: str, registry: str, components: tuple[str, ...]) -> None:
    prefix = parse_prefix(text)
    assert (prefix.registry, prefix.components) == (registry, components)
    assert str(prefix) == "/".join((registry, *components))


# -- idempotence: a second run changes nothing (issue 19) ------------------------------------

_HOSTS = ("docker.io", "gcr.io", "quay.io", "k8s.gcr.io", "mirror.example.com", "registry.k8s.io")
_COMPONENTS = ("library", "nginx", "kaniko-project", "executor", "google-containers", "mirror", "a.b", "x")
_references = st.builds(
    lambda host, path, tag: f"{host}/{'/'.join(path)}{tag}",
    st.sampled_from(_HOSTS),
    st.lists(st.sampled_from(_COMPONENTS), min_size=1, max_size=3),
    st.sampled_from(("", ":v1", "@sha256:" + "a" * 64)),
)
_targets = st.one_of(
    st.builds(lambda host, path: "/".join((host, *path)), st.sampled_from(_HOSTS), st.lists(st.sampled_from(_COMPONENTS), max_size=2)),
    st.sampled_from(("anjia0532", "anjia0532/{path_dotted}", "mirror.example.com/{registry}/{repository}", "m.example.com/{name}", "{registry}.m.example.com/{path}", "hub.example.com/x/{path_dotted}-mirror")),
)
_rules = st.lists(
    st.tuples(st.builds(lambda host, path: "/".join((host, *path)), st.sampled_from(_HOSTS), st.lists(st.sampled_from(_COMPONENTS), max_size=1)), _targets, st.booleans()),
    min_size=1,
    max_size=5,
)


def _applied_twice_is_applied_once(rules: RuleSet, text: str) -> None:
    once = rules.decide(parse(text))
    twice = rules.decide(once.final)
    assert twice.final == once.final, (text, once.rule, twice.rule)
    assert not (once.mirrored is not None and twice.blocked), (text, twice)


@given(rules=_rules, refs=st.lists(_references, min_size=1, max_size=8))
def test_generated_rule_sets_are_idempotent(rules: list[tuple[str, str, bool]], refs: list[str]) -> None:
    built = []
    for source, to, flatten in rules:
        try:
            built.append(make_rule(source, to, flatten and "{" not in to))
        except RuleError:
            continue
    ruleset = RuleSet(tuple(built), blocked=frozenset(r.registry for r in built))
    for text in refs:
        try:
            _applied_twice_is_applied_once(ruleset, text)
        except ReferenceError:  # a rule that gives no valid reference for this image (KM003)
            continue


@pytest.mark.parametrize("name", preset_names())
@given(text=_references)
def test_every_preset_is_idempotent(name: str, text: str) -> None:
    _applied_twice_is_applied_once(parse_config(f"preset: {name}\n", name).rules, text)


def test_readme_rule_sets_are_idempotent() -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    blocks = [b for b in re.findall(r"```yaml\n(.*?)```", readme, re.S) if "mirrors:" in b]
    sources = [m.group(1) for block in blocks for m in re.finditer(r"#.*?(\S+) -> \S+\s*$", block, re.M)]
    assert len(blocks) >= 4 and len(sources) >= 8
    for block in blocks:
        for text in sources:
            _applied_twice_is_applied_once(parse_config(block, "README.md").rules, text)


def test_a_rules_result_is_left_alone_and_not_blocked() -> None:
    # The README's per-scheme examples in one file: a gcr.io result lands on docker.io.
    rules = ruleset(("gcr.io", "anjia0532/{path_dotted}"), ("docker.io", "docker.mirrors.example"))
    first = rules.decide(parse("gcr.io/kaniko-project/executor:v1.8.1"))
    assert str(first.final) == "anjia0532/kaniko-project.executor:v1.8.1" and not first.blocked
    again = rules.decide(first.final)
    assert again.mirrored is None and again.rule == first.rule and not again.blocked
    assert str(rules.decide(parse("nginx:1")).final) == "docker.mirrors.example/library/nginx:1"
