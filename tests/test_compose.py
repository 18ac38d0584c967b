"""Images composed from sibling fields (rewriter/compose.py), through the whole pipeline.

Golden cases of every shape are in fixtures/rewrite/split-*/ (run by test_golden.py); here:
which shapes are recognised, what `check` reports, and the property that a bare name field
next to a registry-bearing field is never edited or reported on its own.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rewriter import compose
from rewriter.config import parse_config
from rewriter.pipeline import process

ROOT = Path(__file__).resolve().parents[1]
KMIRROR = ROOT / ".venv" / "bin" / "kmirror"
CASES = ROOT / "fixtures" / "rewrite"


@pytest.mark.parametrize(
    ("values", "image_parent", "expected"),
    [
        ({"registry": "docker.io", "repository": "bitnami/nginx", "tag": "1"}, True, ("registry", "repository", "tag", None, True)),
        ({"registry": "registry.k8s.io", "image": "ingress-nginx/controller", "tag": "v1", "digest": ""}, True, ("registry", "image", "tag", "digest", True)),
        ({"hub": "", "image": "pilot", "tag": ""}, False, ("hub", "image", "tag", None, False)),
        ({"repository": "nvcr.io/nvidia", "image": "driver", "version": "550"}, False, ("repository", "image", "version", None, True)),
        ({"repository": "quay.io/org/app", "tag": "v1"}, True, (None, "repository", "tag", None, True)),
        ({"repository": "quay.io/org/app", "pullPolicy": "Always"}, False, (None, "repository", None, None, True)),
        ({"name": "quay.io/org/app", "version": "v1"}, True, (None, "name", "version", None, True)),
        ({"image": "ingress-nginx/controller", "tag": "v1"}, True, (None, "image", "tag", None, False)),
        ({"hub": "docker.io/istio", "tag": "1.22"}, False, ("hub", None, None, None, True)),
        ({"registry": "registry.k8s.io"}, True, ("registry", None, None, None, True)),
        ({"imageRegistry": "quay.io"}, False, ("imageRegistry", None, None, None, True)),
        # IstioOperator spec.hub with no tag (cert-manager/istio-csr make/config/istio/istio-config-1.15.5.yaml)
        ({"profile": "demo", "hub": "gcr.io/istio-release"}, False, ("hub", None, None, None, True)),
        # an IstioOperator gateway: its own hub beside its name
        ({"name": "istio-ingressgateway", "hub": "docker.io/istio", "tag": "1.24.0"}, False, ("hub", None, None, None, True)),
        # Calico's Installation: `registry` (a trailing `/` or not) beside imagePath/imagePrefix
        ({"registry": "quay.io/", "imagePath": "calico", "kubernetesProvider": "EKS"}, False, ("registry", None, None, None, True)),
        ({"registry": "docker.io", "imagePrefix": "x-"}, False, ("registry", None, None, None, True)),
        # ECK's operator configuration (eck.yaml, Helm config.containerRegistry)
        ({"container-registry": "docker.elastic.co", "log-verbosity": "0"}, False, ("container-registry", None, None, None, True)),
        ({"containerRegistry": "docker.elastic.co"}, False, ("containerRegistry", None, None, None, True)),
        # kyverno charts/kyverno values.yaml: `registry` when set, else `defaultRegistry`
        ({"registry": "", "defaultRegistry": "reg.kyverno.io", "repository": "kyverno/kyverno", "tag": ""}, True, ("defaultRegistry", "repository", "tag", None, True)),
        ({"registry": "ghcr.io", "defaultRegistry": "reg.kyverno.io", "repository": "kyverno/kyverno", "tag": ""}, True, ("registry", "repository", "tag", None, True)),
        # strimzi-kafka-operator 1.2.0 values.yaml: every image is defaultImageRegistry/defaultImageRepository/NAME
        ({"defaultImageRegistry": "quay.io", "defaultImageRepository": "strimzi", "defaultImageTag": "1.2.0"}, False, ("defaultImageRegistry", None, None, None, True)),
        # podinfo 6.14.1 values.yaml: `redis: {repository: docker.io/redis, tag: 8.8.0}`, under a key naming no image
        ({"repository": "docker.io/redis", "tag": "8.8.0"}, False, (None, "repository", "tag", None, True)),
    ],
)
def test_shapes(values: dict[str, str], image_parent: bool, expected: tuple[object, ...]) -> None:
    found = compose.shape(values, image_parent, under_hub=False)
    assert found is not None
    assert (found.prefix, found.name, found.tag, found.digest, found.composable) == expected


@pytest.mark.parametrize(
    ("values", "image_parent"),
    [
        ({"name": "web", "image": "nginx:1.25"}, False),  # a container
        ({"name": "web", "image": "nginx"}, False),
        ({"repository": "https://github.com/org/repo", "revision": "main"}, False),  # not under an image key
        ({"repository": "https://charts.example.com", "version": "1.2.3"}, False),  # a chart dependency
        ({"repository": "bitnami/redis", "tag": "7"}, False),  # no host: a name only under an image key
        ({"name": "app", "namespace": "x"}, False),
        ({"registry": "registry.k8s.io"}, False),  # a registry field not under an image key
        ({"imageRegistry": ""}, False),
        ({"defaultImageRegistry": ""}, False),
        ({"defaultImageRegistry": "strimzi"}, False),  # no registry host: not a registry
        ({"chartRegistry": "ghcr.io"}, False),  # a registry of something else than images
        ({"hub": "my-hub", "profile": "x"}, False),  # a hub that names no host and has no tag beside it
        ({"image": "quay.io/prometheus/prometheus:v2.45.0", "version": "v2.45.0"}, False),  # a whole reference
    ],
)
def test_not_composed(values: dict[str, str], image_parent: bool) -> None:
    assert compose.shape(values, image_parent, under_hub=False) is None


def test_triggered_by_the_keys_a_shape_needs() -> None:
    assert compose.triggered({"defaultImageRegistry", "replicas"}) and compose.triggered({"hub"}) and compose.triggered({"container-registry"})
    assert not compose.triggered({"replicas", "chartRegistry", "tag"})


def test_gpu_operator_image_alone_is_whole() -> None:
    """gpu-operator pulls `image` as written when repository and version are empty (vgpuManager's default)."""
    assert compose.shape({"repository": "", "image": "vgpu-manager", "version": ""}, False, False) is None
    found = compose.shape({"repository": "", "image": "vgpu-manager", "version": "550"}, False, False)
    assert found is not None and not found.composable


def test_bare_image_below_a_hub_is_a_part() -> None:
    found = compose.shape({"image": "proxyv2"}, image_parent=False, under_hub=True)
    assert found is not None and not found.composable and found.consumed == frozenset({"image"})


def test_check_judges_the_composed_reference() -> None:
    """A blocked registry in a registry/repository/hub field is a finding; the bare name alone never is."""
    case = CASES / "split-registry-image"
    done = subprocess.run([str(KMIRROR), "check", "-c", "rules.yaml", "input.yaml"], cwd=case, capture_output=True, timeout=60)
    lines = done.stdout.decode().splitlines()
    assert done.returncode == 1
    assert lines[:2] == [
        "input.yaml:7:15: KM001 registry.k8s.io/* is on blocked registry registry.k8s.io (mirror: harbor.example.com/k8s/*)",
        "input.yaml:21:19: KM001 registry.k8s.io/ingress-nginx/kube-webhook-certgen:v1.6.9@sha256:01038e7de14b78d702d2849c3aad72fd25903c4765af63cf16aa3398f5d5f2dd "
        "is on blocked registry registry.k8s.io (mirror: harbor.example.com/k8s/ingress-nginx/kube-webhook-certgen:v1.6.9@sha256:01038e7de14b78d702d2849c3aad72fd25903c4765af63cf16aa3398f5d5f2dd)",
    ]
    assert "docker.io" not in done.stdout.decode()
    after = subprocess.run([str(KMIRROR), "check", "-c", "rules.yaml", "expected.yaml"], cwd=case, capture_output=True, timeout=60)
    assert after.returncode == 0, after.stdout


def test_gpu_operator_digest_version() -> None:
    text = (CASES / "split-repository-image-version" / "input.yaml").read_bytes()
    outcome = process(text, "in.yaml", parse_config("mirrors: []\n", "r"))
    refs = [image.location.text for image in outcome.images]
    assert "nvcr.io/nvidia/k8s/container-toolkit@sha256:" + "1b1e6d6a5bbf3e3a7cf3a6c4a6c4a4b7a1a8c5f5e6e7d3d2c1b0a9f8e7d6c5b4" in refs
    assert "nvcr.io/nvidia/driver:595.91.07" in refs


RULES = parse_config(
    """
mirrors:
  - {from: registry.k8s.io, to: mirror.example.com/k8s}
  - {from: quay.io, to: mirror.example.com/quay, flatten: true}
  - {from: docker.io, to: mirror.example.com/hub}
  - {from: nvcr.io, to: "mirror.example.com/{path_dotted}"}
blocked: [registry.k8s.io, quay.io, docker.io, nvcr.io]
""",
    "rules.yaml",
)
NAMES = ("driver", "pilot", "controller", "ingress-nginx/controller", "bitnami/nginx", "kube-state-metrics/kube-state-metrics")
# Not docker.io alone: `docker.io` + `driver` is docker.io/library/driver, rightly.
PREFIXES = ("registry.k8s.io", "quay.io", "nvcr.io/nvidia", "docker.io/istio", "")


@st.composite
def _mapping(draw: st.DrawFn) -> tuple[str, str, str]:
    """A values mapping with a registry-bearing field, a bare name field and a tag: (text, name key, name)."""
    prefix_key, name_key = draw(st.sampled_from((("registry", "image"), ("registry", "repository"), ("hub", "image"), ("repository", "image"))))
    name = draw(st.sampled_from(NAMES))
    prefix = draw(st.sampled_from(PREFIXES))
    if not prefix and (name_key == "repository" or prefix_key == "repository"):
        # An empty registry leaves the repository whole (pushgateway), an empty repository and
        # version leave the image whole (gpu-operator): both are read as the chart or operator reads them.
        prefix = "quay.io"
    tag_key = "version" if prefix_key == "repository" else "tag"
    tag = draw(st.sampled_from(("v1.2.3", "", '""')))
    quote = draw(st.sampled_from(("", '"', "'")))
    fields = [f"{prefix_key}: {quote}{prefix}{quote}" if prefix or quote else f"{prefix_key}: ''", f"{name_key}: {quote}{name}{quote}", f"{tag_key}: {tag}"]
    order = draw(st.permutations(fields))
    parent = draw(st.sampled_from(("image", "driver", "pilot", "initImage")))
    text = f"top:\n  {parent}:\n" + "".join(f"    {line}\n" for line in order) + "    pullPolicy: IfNotPresent\n"
    return text, name_key, name


@settings(max_examples=300, deadline=None)
@given(_mapping())
def test_bare_name_never_edited_or_reported_alone(case: tuple[str, str, str]) -> None:
    """No location is the bare name alone, and the name field changes only where a rule changes names."""
    text, name_key, name = case
    outcome = process(text.encode(), "values.yaml", RULES)
    for image in outcome.images:
        assert image.location.text != name and str(image.ref) != name
        assert image.ref.normalized != f"docker.io/library/{name}"
    for finding in outcome.findings(after_rewrite=False) + outcome.findings(after_rewrite=True):
        assert finding.ref != name and f"docker.io/library/{name} " not in finding.message
    name_line = next(line for line in text.splitlines() if line.strip().startswith(f"{name_key}:"))
    names_changed = any(image.decision.rule is not None and (image.decision.rule.flatten or "{" in (image.decision.rule.to or "")) for image in outcome.images)
    if not names_changed:
        assert name_line in outcome.output.decode().splitlines()


def _rewrite_chart_values(tmp_path: Path, values: str, template: str) -> tuple[subprocess.CompletedProcess[bytes], list[str]]:
    """`kmirror rewrite -w` of the values file of a chart with one template (rules: quay.io mirrored); the warnings."""
    chart = tmp_path / "demo"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: demo\nversion: 0.1.0\n")
    (chart / "values.yaml").write_text(values)
    (chart / "templates" / "deploy.yaml").write_text(template)
    rules = tmp_path / "rules.yaml"
    rules.write_text("mirrors:\n  - {from: quay.io, to: harbor.example.com/quay}\n")
    done = subprocess.run([str(KMIRROR), "rewrite", "-c", str(rules), "-w", "demo/values.yaml"], cwd=tmp_path, capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done, [line for line in done.stderr.decode().splitlines() if line.startswith("kmirror: warning:")]


def test_template_notes_name_hard_coded_images(tmp_path: Path) -> None:
    """rewrite of a chart's values file says which images its templates write literally (file and line)."""
    done, notes = _rewrite_chart_values(
        tmp_path,
        "image:\n  registry: quay.io\n  repository: org/app\n  tag: v1\n",
        "spec:\n  initContainers:\n  - name: init\n    image: busybox:1.36\n"
        '  containers:\n  - name: app\n    image: "{{ .Values.image.registry }}/{{ .Values.image.repository }}:{{ .Values.image.tag }}"\n'
        "    args:\n    - --helper-image=quay.io/org/helper:v2\n",
    )
    assert (tmp_path / "demo" / "values.yaml").read_text().startswith("image:\n  registry: harbor.example.com/quay\n")
    assert len(notes) == 1, done.stderr
    assert notes[0].startswith("kmirror: warning: demo/templates/deploy.yaml:9: quay.io/org/helper:v2 is written in the template")
    assert "busybox" not in done.stderr.decode()  # no rule for docker.io: nothing to say


def test_template_notes_name_a_registry_written_before_values(tmp_path: Path) -> None:
    """A template that writes the registry and reads the rest from values: rewriting values cannot mirror it."""
    _, notes = _rewrite_chart_values(
        tmp_path,
        "image:\n  repository: org/app\n  tag: v1\n",
        'spec:\n  containers:\n  - name: app\n    image: "quay.io/{{ .Values.image.repository }}:{{ .Values.image.tag }}"\n'
        '  - name: other\n    image: "ghcr.io/{{ .Values.image.repository }}"\n',
    )
    assert notes == [  # ghcr.io has no rule: nothing to say of it
        "kmirror: warning: demo/templates/deploy.yaml:4: the registry quay.io/ is written in the template before what values fill in: "
        "rewriting demo/values.yaml cannot mirror it (mirror: harbor.example.com/quay/); render the chart through kmirror, or change the template"
    ]


def test_template_notes_name_subchart_values_left_out(tmp_path: Path) -> None:
    """A subchart's own values.yaml holding mirrored images is named when it is not rewritten too."""
    chart = tmp_path / "demo"
    (chart / "charts" / "sub").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: demo\nversion: 0.1.0\n")
    (chart / "values.yaml").write_text("replicas: 1\n")
    (chart / "charts" / "sub" / "values.yaml").write_text("image:\n  repository: quay.io/org/agent\n  tag: v1\n")
    rules = tmp_path / "rules.yaml"
    rules.write_text("mirrors:\n  - {from: quay.io, to: harbor.example.com/quay}\n")
    alone = subprocess.run([str(KMIRROR), "rewrite", "-c", str(rules), "-w", "demo/values.yaml"], cwd=tmp_path, capture_output=True, timeout=60)
    assert "kmirror: warning: demo/charts/sub/values.yaml: this subchart's values hold images the rules mirror" in alone.stderr.decode()
    both = subprocess.run(
        [str(KMIRROR), "rewrite", "-c", str(rules), "-w", "demo/values.yaml", "demo/charts/sub/values.yaml"], cwd=tmp_path, capture_output=True, timeout=60
    )
    assert "warning" not in both.stderr.decode()


def test_strict_judges_the_composed_reference_after_rewriting(tmp_path: Path) -> None:
    """--strict passes when the registry fields are mirrored, and fails on a field it could not write."""
    rules = tmp_path / "rules.yaml"
    rules.write_text((CASES / "split-registry-image" / "rules.yaml").read_text())
    mirrored = subprocess.run([str(KMIRROR), "rewrite", "--strict", "-c", str(rules), str(CASES / "split-registry-image" / "input.yaml")], capture_output=True, timeout=60)
    assert mirrored.returncode == 0, mirrored.stderr
    assert mirrored.stdout == (CASES / "split-registry-image" / "expected.yaml").read_bytes()
    rules.write_text((CASES / "split-not-expressible" / "rules.yaml").read_text() + "blocked: [registry.k8s.io, quay.io]\n")
    left = subprocess.run([str(KMIRROR), "rewrite", "--strict", "-c", str(rules), str(CASES / "split-not-expressible" / "input.yaml")], capture_output=True, timeout=60)
    assert left.returncode == 1 and left.stdout == b""
    assert "KM002 registry.k8s.io/* is a registry field shared by several images" in left.stderr.decode()
    assert "KM001 registry.k8s.io/* is on blocked registry registry.k8s.io (the rules differ by image under it: see KM002)" in left.stderr.decode()


def test_an_empty_registry_that_cannot_be_filled_is_reported_with_what_to_set() -> None:
    # `registry:` (null) cannot be filled in place the way `registry: ""` is: the chart may put a default
    # registry there, so editing the repository could render `DEFAULT/MIRROR/...`; KM002 says what to set.
    outcome = process(b"image:\n  registry:\n  repository: longhornio/longhorn-manager\n  tag: v1\n", "values.yaml", RULES)
    assert outcome.output == b"image:\n  registry:\n  repository: longhornio/longhorn-manager\n  tag: v1\n"
    (problem,) = outcome.problems
    assert problem.code == "KM002" and problem.message.endswith("set registry: mirror.example.com/hub by hand")


def test_a_prefix_field_keeps_its_trailing_slash() -> None:
    # Calico joins `registry` and `imagePath` with path.Join: `quay.io/` is decided as quay.io/* and keeps its `/`.
    text = b"kind: Installation\nspec:\n  registry: quay.io/\n  imagePath: calico\n"
    outcome = process(text, "installation.yaml", parse_config("mirrors:\n  - {from: quay.io, to: mirror.example.com/quay}\n", "rules.yaml"))
    assert outcome.output == b"kind: Installation\nspec:\n  registry: mirror.example.com/quay/\n  imagePath: calico\n"
    assert [str(image.ref) for image in outcome.images] == ["quay.io/kmirror-probe/any-image"]
