"""`kmirror chart`: image values found and mirrored (override or in place), verified by real renders.

End-to-end tests run real Helm 3 and Helm 4 on copies of fixtures/helm/demo (every values
shape, a subchart, hooks, CRDs, hard-coded images) and fixtures/helm/global
(global.imageRegistry, and an aliased subchart that ignores it).
"""

from __future__ import annotations

import functools
import http.server
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_helm import DIGEST, HELM_FIXTURES, HELMS, RULES, helm_env, images_of, ok, run
from tools import tool

from rewriter.chart import Change, ValuesFile, find_images, merge, override_text, plan_changes, splice_values
from rewriter.config import parse_config
from rewriter.errors import KmirrorError

DEMO_OVERRIDE = """\
# kmirror values override for chart {chart} (rules: {rules})
# use it with: helm install|upgrade|template ... -f THIS_FILE
image:
  registry: "mirror.example"  # was "docker.io" in values.yaml
  repository: "docker.io/library/nginx"  # was "library/nginx" in values.yaml
migrate:
  image:
    registry: "mirror.example"  # was "registry.k8s.io" in values.yaml
    repository: "registry.k8s.io/e2e-test-images/busybox"  # was "e2e-test-images/busybox" in values.yaml
sidecar:
  image: "mirror.example/quay.io/prometheus/node-exporter:v1.6.0"  # was "quay.io/prometheus/node-exporter:v1.6.0" in values.yaml
sub:
  image:
    repository: "mirror.example/registry.k8s.io/sub/agent"  # was "registry.k8s.io/sub/agent" in charts/sub/values.yaml
tests:
  image: "mirror.example/docker.io/library/busybox:1.36"  # was "busybox:1.36" in values.yaml
worker:
  image:
    repository: "mirror.example/gcr.io/google-containers/pause"  # was "gcr.io/google-containers/pause" in values.yaml
"""

# What the values cannot reach in the demo chart: hard-coded in a template, a subchart, crds/.
DEMO_LEFTOVERS = """\
demo/crds/widget.yaml: registry.k8s.io/pause:3.9 is not mirrored (mirror: mirror.example/registry.k8s.io/pause:3.9)
demo/charts/sub/templates/pod.yaml: k8s.gcr.io/pause:3.9 is not mirrored (mirror: mirror.example/k8s.gcr.io/pause:3.9)
demo/templates/deployment.yaml: docker.io/library/alpine:3.19 is not mirrored (mirror: mirror.example/docker.io/library/alpine:3.19)
kmirror: 3 of 9 rendered images cannot be reached through values (hard-coded in templates); use the post-renderer: see docs/helm.md
"""

VALUES_REACHED = [
    "mirror.example/docker.io/library/nginx:1.25.3",
    "mirror.example/quay.io/prometheus/node-exporter:v1.6.0",
    "mirror.example/gcr.io/google-containers/pause:3.2",
    "mirror.example/registry.k8s.io/sub/agent:v2.1",
    f"mirror.example/registry.k8s.io/e2e-test-images/busybox@{DIGEST}",
    "mirror.example/docker.io/library/busybox:1.36",
]
HARD_CODED = ["docker.io/library/alpine:3.19", "k8s.gcr.io/pause:3.9", "registry.k8s.io/pause:3.9"]


def copy_chart(name: str, tmp_path: Path) -> Path:
    target = tmp_path / name
    shutil.copytree(HELM_FIXTURES / name, target)
    return target


@pytest.mark.parametrize("helm", HELMS)
def test_override_file_is_written_and_verified(helm: str, tmp_path: Path) -> None:
    env = helm_env(tmp_path)
    chart = copy_chart("demo", tmp_path)
    override = tmp_path / "mirror-values.yaml"
    proc = run(["kmirror", "chart", "demo", "-o", str(override), "--config", str(RULES), "--helm", tool(helm)], env, cwd=tmp_path)
    assert proc.returncode == 1  # hard-coded images remain
    assert proc.stdout == ""
    assert override.read_text() == DEMO_OVERRIDE.format(chart="demo", rules=RULES)
    assert proc.stderr == f"wrote {override} (8 values)\n" + DEMO_LEFTOVERS
    # The chart's own files are untouched, and helm itself renders the override as promised.
    assert (chart / "values.yaml").read_text() == (HELM_FIXTURES / "demo" / "values.yaml").read_text()
    rendered = ok([tool(helm), "template", "rel", "demo", "--include-crds", "-f", str(override)], env, cwd=tmp_path)
    assert images_of(rendered) == sorted(VALUES_REACHED + HARD_CODED)


@pytest.mark.parametrize("helm", HELMS)
def test_override_on_standard_output(helm: str, tmp_path: Path) -> None:
    proc = run(["kmirror", "chart", "demo", "--config", str(RULES), "--helm", tool(helm)], helm_env(tmp_path))
    assert proc.returncode == 1
    assert proc.stdout == DEMO_OVERRIDE.format(chart="demo", rules=RULES)
    assert proc.stderr == DEMO_LEFTOVERS


@pytest.mark.parametrize("helm", HELMS)
def test_values_rewritten_in_place(helm: str, tmp_path: Path) -> None:
    env = helm_env(tmp_path)
    chart = copy_chart("demo", tmp_path)
    before = (chart / "values.yaml").read_text()
    argv = ["kmirror", "chart", str(chart), "-w", "--config", str(RULES), "--helm", tool(helm)]
    proc = run(argv, env)
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert proc.stderr.startswith("rewrote values.yaml, charts/sub/values.yaml (8 values changed)\n")
    # Only the values change: comments, quotes and layout stay as they were.
    expected = (
        before.replace("  registry: docker.io\n  repository: library/nginx\n", "  registry: mirror.example\n  repository: docker.io/library/nginx\n")
        .replace('"quay.io/prometheus/node-exporter:v1.6.0"', '"mirror.example/quay.io/prometheus/node-exporter:v1.6.0"')
        .replace("repository: gcr.io/google-containers/pause", "repository: mirror.example/gcr.io/google-containers/pause")
        .replace("    registry: registry.k8s.io\n    repository: e2e-test-images/busybox\n", "    registry: mirror.example\n    repository: registry.k8s.io/e2e-test-images/busybox\n")
        .replace("  image: busybox:1.36\n", "  image: mirror.example/docker.io/library/busybox:1.36\n")
    )
    assert (chart / "values.yaml").read_text() == expected
    assert (chart / "charts" / "sub" / "values.yaml").read_text() == "image:\n  repository: mirror.example/registry.k8s.io/sub/agent\n  tag: v2.0\n"
    rendered = ok([tool(helm), "template", "rel", str(chart), "--include-crds"], env)
    assert images_of(rendered) == sorted(VALUES_REACHED + HARD_CODED)
    # A second run finds nothing more to change.
    again = run(argv, env)
    assert again.returncode == 1
    assert again.stderr.startswith("rewrote nothing (0 values changed)\n")
    assert (chart / "values.yaml").read_text() == expected


@pytest.mark.parametrize("helm", HELMS)
def test_global_image_registry_one_mirror(helm: str, tmp_path: Path) -> None:
    env = helm_env(tmp_path)
    proc = run(["kmirror", "chart", "global", "--config", str(RULES), "--helm", tool(helm)], env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == "verified: all 3 rendered images are mirrored\n"
    # The aliased subchart ignores global.imageRegistry: its own registry is mirrored, under its alias.
    assert 'agent:\n  image:\n    registry: "mirror.example"  # was "quay.io" in charts/lib/values.yaml\n' in proc.stdout
    assert 'global:\n  imageRegistry: "mirror.example"  # was "docker.io" in values.yaml\n' in proc.stdout
    override = tmp_path / "o.yaml"
    override.write_text(proc.stdout)
    rendered = ok([tool(helm), "template", "rel", "global", "-f", str(override)], env)
    assert images_of(rendered) == [
        "mirror.example/docker.io/bitnami/redis:7.2",
        "mirror.example/docker.io/library/nginx:1.25",
        "mirror.example/quay.io/prometheus/pushgateway:v1.6.0",
    ]


@pytest.mark.parametrize("helm", HELMS)
def test_global_image_registry_several_mirrors(helm: str, tmp_path: Path) -> None:
    env = helm_env(tmp_path)
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "mirrors:\n"
        "  - {from: docker.io/library, to: a.example/lib}\n"
        "  - {from: docker.io, to: b.example/hub}\n"
        "  - {from: quay.io, to: c.example}\n"
    )
    override = tmp_path / "o.yaml"
    proc = run(["kmirror", "chart", "global", "-o", str(override), "--config", str(rules), "--helm", tool(helm)], env)
    assert proc.returncode == 0, proc.stderr
    # No single registry serves both: global is emptied and each image names its own.
    assert 'global:\n  imageRegistry: ""  # was "docker.io" in values.yaml\n' in override.read_text()
    rendered = ok([tool(helm), "template", "rel", "global", "-f", str(override)], env)
    assert images_of(rendered) == ["a.example/lib/nginx:1.25", "b.example/hub/bitnami/redis:7.2", "c.example/prometheus/pushgateway:v1.6.0"]


@pytest.mark.parametrize("helm", HELMS)
def test_packaged_subchart(helm: str, tmp_path: Path) -> None:
    env = helm_env(tmp_path)
    chart = copy_chart("demo", tmp_path)
    ok([tool(helm), "package", str(chart / "charts" / "sub"), "-d", str(chart / "charts")], env)
    shutil.rmtree(chart / "charts" / "sub")
    proc = run(["kmirror", "chart", str(chart), "--config", str(RULES), "--helm", tool(helm)], env)
    assert proc.returncode == 1
    assert '    repository: "mirror.example/registry.k8s.io/sub/agent"  # was "registry.k8s.io/sub/agent" in charts/sub-0.1.0.tgz:sub/values.yaml\n' in proc.stdout
    # In place cannot reach into the archive: nothing is written, and the error says why.
    before = (chart / "values.yaml").read_text()
    proc = run(["kmirror", "chart", str(chart), "-w", "--config", str(RULES), "--helm", tool(helm)], env)
    assert proc.returncode == 2
    assert proc.stderr == (
        "kmirror: error: cannot rewrite in place: values.yaml: nothing written; use -o FILE for an override instead:\n"
        "    sub.image.repository: in packaged subchart charts/sub-0.1.0.tgz:sub/values.yaml\n"
    )
    assert (chart / "values.yaml").read_text() == before


def test_a_packaged_subchart_beyond_the_input_limit_is_refused_unextracted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The size is the archive's word for it: a values.yaml of 3 MB, compressed to a few kB, is not extracted.
    import io
    import tarfile

    from rewriter.chart import read_chart

    chart = copy_chart("demo", tmp_path)
    shutil.rmtree(chart / "charts" / "sub")
    with tarfile.open(chart / "charts" / "sub-0.1.0.tgz", "w:gz") as tar:
        for name, data in (("sub/Chart.yaml", b"apiVersion: v2\nname: sub\nversion: 0.1.0\n"), ("sub/values.yaml", b"#" * 3_000_000 + b"\n")):
            member = tarfile.TarInfo(name)
            member.size = len(data)
            tar.addfile(member, io.BytesIO(data))
    monkeypatch.setenv("KMIRROR_MAX_INPUT_MB", "2")
    with pytest.raises(KmirrorError, match=r"^cannot read chart: charts/sub-0.1.0.tgz:sub/values.yaml: larger than 2 MB \(set KMIRROR_MAX_INPUT_MB to raise the limit\)$"):
        read_chart(chart)
    monkeypatch.setenv("KMIRROR_MAX_INPUT_MB", "4")
    assert [f.name for f in read_chart(chart)][-1] == "charts/sub-0.1.0.tgz:sub/values.yaml"


@pytest.mark.parametrize("helm", HELMS)
def test_packaged_chart(helm: str, tmp_path: Path) -> None:
    env = helm_env(tmp_path)
    ok([tool(helm), "package", str(HELM_FIXTURES / "demo"), "-d", str(tmp_path)], env)
    proc = run(["kmirror", "chart", "demo-0.1.0.tgz", "--config", str(RULES), "--helm", tool(helm)], env, cwd=tmp_path)
    assert proc.returncode == 1
    assert proc.stdout == DEMO_OVERRIDE.format(chart="demo-0.1.0.tgz", rules=RULES)
    assert proc.stderr == DEMO_LEFTOVERS


@pytest.fixture
def chart_repository(tmp_path: Path) -> Iterator[str]:
    """The demo chart packaged in a chart repository served over HTTP on 127.0.0.1."""
    served = tmp_path / "repo"
    served.mkdir()
    env = helm_env(tmp_path)
    ok([tool("helm4"), "package", str(HELM_FIXTURES / "demo"), "-d", str(served)], env)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    handler.log_message = lambda *args: None  # type: ignore[attr-defined]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    url = f"http://127.0.0.1:{server.server_port}"
    ok([tool("helm4"), "repo", "index", str(served), "--url", url], env)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield url
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("helm", HELMS)
def test_chart_from_a_repository(helm: str, tmp_path: Path, chart_repository: str) -> None:
    env = helm_env(tmp_path)
    argv = ["kmirror", "chart", "demo", "--repo", chart_repository, "--version", "0.1.0", "--config", str(RULES), "--helm", tool(helm)]
    proc = run(argv, env, cwd=tmp_path)
    assert proc.returncode == 1
    assert proc.stdout == DEMO_OVERRIDE.format(chart="demo", rules=RULES)
    proc = run([*argv, "-w"], env, cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr == "kmirror: error: cannot rewrite in place: demo: not a chart folder (use -o FILE for an override)\n"


@pytest.mark.parametrize("helm", HELMS)
def test_failed_render(helm: str, tmp_path: Path) -> None:
    chart = copy_chart("demo", tmp_path)
    (chart / "templates" / "broken.yaml").write_text('{{ fail "no such luck" }}\n')
    before = (chart / "values.yaml").read_text()
    proc = run(["kmirror", "chart", str(chart), "-w", "--config", str(RULES), "--helm", tool(helm)], helm_env(tmp_path))
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.startswith(f"kmirror: error: helm failed: {tool(helm)} template release-name {chart} --include-crds: exit code 1:\n    ")
    assert "no such luck" in proc.stderr
    assert (chart / "values.yaml").read_text() == before


def test_output_and_write_exclude_each_other(tmp_path: Path) -> None:
    proc = run(["kmirror", "chart", "demo", "-w", "-o", "x.yaml", "--config", str(RULES)], helm_env(tmp_path))
    assert proc.returncode == 2
    assert proc.stderr == "kmirror: error: invalid option: -o and -w: choose one (an override file, or values.yaml rewritten in place)\n"



def test_credentials_in_a_chart_url_are_not_shown(tmp_path: Path) -> None:
    chart = "https://robot:s3cr3t-t0ken@charts.example.invalid/app-1.0.0.tgz"
    proc = run(["kmirror", "chart", chart, "-w", "--config", str(RULES)], helm_env(tmp_path))
    assert (proc.returncode, proc.stdout) == (2, "")
    assert proc.stderr == "kmirror: error: cannot rewrite in place: https://***@charts.example.invalid/app-1.0.0.tgz: not a chart folder (use -o FILE for an override)\n"


# -- the pure parts ----------------------------------------------------------------------


def values(text: str, scope: tuple[str, ...] = (), name: str = "values.yaml") -> ValuesFile:
    return ValuesFile(name, text, scope, Path(name))


RULES_TEXT = "mirrors:\n  - {from: docker.io, to: m.example/hub}\n  - {from: quay.io, to: m.example/quay}\n"


def changes_for(*files: ValuesFile, rendered: frozenset[str] = frozenset()) -> list[Change]:
    merged = merge(list(files))
    return plan_changes(find_images(merged, rendered), merged, parse_config(RULES_TEXT, "rules").rules)


def test_shapes_and_what_is_not_an_image() -> None:
    top = values(
        "a:\n  image: nginx:1.25\n"
        "b:\n  image: {registry: docker.io, repository: bitnami/redis, tag: '7'}\n"
        "c:\n  initImage: {repository: quay.io/x/y}\n"
        "d:\n  useImage: 'yes'\n  image: '{{ .Values.x }}'\n"
        "e:\n  images:\n    - image: nginx\n"
        "f:\n  repository: https://charts.example\n"
    )
    found = {".".join(c.keys): c.new for c in changes_for(top)}
    assert found == {
        "a.image": "m.example/hub/library/nginx:1.25",
        "b.image.registry": "m.example",
        "b.image.repository": "hub/bitnami/redis",
        "c.initImage.repository": "m.example/quay/x/y",
    }


def test_parent_values_beat_the_subchart_and_global_is_shared() -> None:
    parent = values("sub:\n  image:\n    repository: quay.io/a/b\n")
    sub = values("global:\n  imageRegistry: ''\nimage:\n  repository: quay.io/old/one\n  tag: v1\n", ("sub",), "charts/sub/values.yaml")
    [change] = changes_for(parent, sub)
    assert change.keys == ("sub", "image", "repository")
    assert change.new == "m.example/quay/a/b"
    assert change.old is not None and change.old.file.name == "values.yaml"


def test_splice_keeps_quotes_comments_and_fills_empty_quotes() -> None:
    text = "global:\n  imageRegistry: ''  # set me\nimage:\n  registry: \"docker.io\"   # hub\n  repository: library/nginx\n"
    top = values(text)
    changes = changes_for(top, rendered=frozenset())
    new_text = splice_values([*changes, Change(("global", "imageRegistry"), merge([top])[("global", "imageRegistry")], "m.example")])[top]
    assert new_text == "global:\n  imageRegistry: 'm.example'  # set me\nimage:\n  registry: \"m.example\"   # hub\n  repository: hub/library/nginx\n"


def test_splice_refuses_what_it_cannot_place() -> None:
    top = values('image: "quay.io/x/y:1\\u0030"\n')
    with pytest.raises(KmirrorError, match=r"image: values.yaml: the value cannot be located exactly"):
        splice_values(changes_for(top))


def test_override_text_quotes_keys_that_yaml_would_read_otherwise() -> None:
    text = override_text([Change(("on", "a b", "image"), None, "m.example/x:1")], "header")
    assert text == '# header\n"on":\n  "a b":\n    image: "m.example/x:1"  # was not set\n'
    assert override_text([], "header") == "# header\n{}\n"



def test_a_rule_that_would_drop_a_digest_is_refused_not_applied() -> None:
    merged = merge([values(f"web:\n  image: nginx:1.16@sha256:{'ab' * 32}\n")])
    rules = parse_config('mirrors:\n  - {from: "docker.io/library/nginx:1.16", to: "m.example/nginx:1.16-patched"}\n', "rules").rules
    with pytest.raises(KmirrorError, match=r"^cannot mirror chart values: web\.image: nginx:1\.16@sha256:(ab)+: pinned by digest"):
        plan_changes(find_images(merged, frozenset()), merged, rules)


UPSTREAM = Path(__file__).resolve().parents[1] / "fixtures" / "charts"
SPLIT_RULES = """\
mirrors:
  - {from: registry.k8s.io, to: harbor.example.com/k8s}
  - {from: nvcr.io, to: harbor.example.com/nvcr}
  - {from: registry.istio.io, to: harbor.example.com/istio}
"""


@pytest.mark.parametrize(
    ("name", "helm", "expected"),
    [
        ("ingress-nginx", "helm3", 'global:\n  image:\n    registry: "harbor.example.com/k8s"  # was "registry.k8s.io" in values.yaml\n'),
        ("ingress-nginx", "helm4", 'global:\n  image:\n    registry: "harbor.example.com/k8s"  # was "registry.k8s.io" in values.yaml\n'),
        ("istiod", "helm4", '  global:\n    hub: "harbor.example.com/istio/testing"  # was "registry.istio.io/testing" in values.yaml\n'),
        ("gpu-operator", "helm4", 'driver:\n  repository: "harbor.example.com/nvcr/nvidia"  # was "nvcr.io/nvidia" in values.yaml\n'),
    ],
)
def test_split_image_values_of_upstream_charts(name: str, helm: str, expected: str, tmp_path: Path) -> None:
    """The compose shapes: the registry-bearing field is overridden, never a bare name part, and the render verifies it."""
    shutil.copytree(UPSTREAM / name, tmp_path / name)
    rules = tmp_path / "rules.yaml"
    rules.write_text(SPLIT_RULES)
    proc = run(["kmirror", "chart", name, "--config", str(rules), "--helm", tool(helm)], helm_env(tmp_path), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert expected in proc.stdout
    for part in ("image: \"harbor.example.com/k8s/ingress-nginx", "image: \"harbor.example.com/nvcr/driver", "image: \"harbor.example.com/istio/pilot"):
        assert part not in proc.stdout
    assert proc.stderr.startswith("verified: all ")


@pytest.mark.parametrize("helm", HELMS)
def test_split_image_values_rewritten_in_place_as_rewrite_does(helm: str, tmp_path: Path) -> None:
    """`kmirror chart -w` edits the same fields as `kmirror rewrite -w` of the values file."""
    for where in ("chart", "rewrite"):
        shutil.copytree(UPSTREAM / "ingress-nginx", tmp_path / where)
    rules = tmp_path / "rules.yaml"
    rules.write_text(SPLIT_RULES)
    env = helm_env(tmp_path)
    proc = run(["kmirror", "chart", "chart", "-w", "--config", str(rules), "--helm", tool(helm)], env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    ok(["kmirror", "rewrite", "-w", "rewrite/values.yaml", "--config", str(rules)], env, cwd=tmp_path)
    assert (tmp_path / "chart" / "values.yaml").read_text() == (tmp_path / "rewrite" / "values.yaml").read_text()
    assert (tmp_path / "chart" / "values.yaml").read_text() != (UPSTREAM / "ingress-nginx" / "values.yaml").read_text()
