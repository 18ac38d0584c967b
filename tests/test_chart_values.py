"""Rewriting a chart's values commutes with rendering it (issue 17), over real upstream charts.

For each chart vendored in fixtures/charts/ (README there cites source, version and
licence), with the real helm 3 and helm 4:

    helm template rel CHART -f values.yaml | kmirror            (before)
    kmirror rewrite -w <every values.yaml of the chart>; helm template rel CHART -f values.yaml   (after)

are the same bytes. Every values.yaml is rewritten, as pre-commit passes each file by name
(gpu-operator's node-feature-discovery subchart keeps its image in its own values.yaml).
Optional components that bring more images are switched on with `--set`. The render must
change (the rules do mirror something) and leave no blocked registry behind. The same holds
for a GitOps repository's `values-prod.yaml` passed with a second `-f`.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tools import tool

ROOT = Path(__file__).resolve().parents[1]
CHARTS = ROOT / "fixtures" / "charts"
KMIRROR = ROOT / ".venv" / "bin" / "kmirror"
RULES = """\
mirrors:
  - {from: registry.k8s.io, to: harbor.example.com/k8s}
  - {from: quay.io, to: harbor.example.com/quay}
  - {from: nvcr.io, to: harbor.example.com/nvcr}
  - {from: docker.io, to: harbor.example.com/hub}
  - {from: registry.istio.io, to: harbor.example.com/istio}
"""
BLOCKED = "blocked: [registry.k8s.io, quay.io, nvcr.io, docker.io, registry.istio.io]\n"
# chart folder -> the --set flags that switch on its optional images
SETS: dict[str, tuple[str, ...]] = {
    "alertmanager": ("configmapReload.enabled=true",),
    "gpu-operator": (),
    "ingress-nginx": ("defaultBackend.enabled=true",),
    "istiod": (),
    "kube-state-metrics": ("kubeRBACProxy.enabled=true",),
    "metrics-server": ("addonResizer.enabled=true",),
    "prometheus-blackbox-exporter": ("configReloader.enabled=true",),
    "prometheus-node-exporter": ("kubeRBACProxy.enabled=true",),
    "prometheus-pushgateway": (),
    "strimzi-kafka-operator": (),
    "longhorn": (),
}
# chart folder -> other arguments its render needs
HELM_ARGS: dict[str, tuple[str, ...]] = {"longhorn": ("--kube-version", "1.34.0")}  # its kubeVersion: >=1.34.0-0


def test_every_vendored_chart_is_tested() -> None:
    assert sorted(p.name for p in CHARTS.iterdir() if (p / "Chart.yaml").is_file()) == sorted(SETS)
    assert len(SETS) >= 8


def _render(helm: str, chart: Path) -> bytes:
    flags = [*(arg for value in SETS[chart.name] for arg in ("--set", value)), *HELM_ARGS.get(chart.name, ())]
    done = subprocess.run([helm, "template", "rel", str(chart), "-f", str(chart / "values.yaml"), *flags], capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout


def _kmirror(args: list[str], rules: Path, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([str(KMIRROR), *args, "-c", str(rules)], input=stdin, capture_output=True, timeout=120)


@pytest.mark.parametrize("helm", ["helm3", "helm4"])
@pytest.mark.parametrize("name", sorted(SETS))
def test_rewrite_then_render_is_render_then_filter(name: str, helm: str, tmp_path: Path) -> None:
    chart = tmp_path / name
    shutil.copytree(CHARTS / name, chart)
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES, encoding="utf-8")
    rendered = _render(tool(helm), chart)
    filtered = _kmirror([], rules, rendered)
    assert filtered.returncode == 0, filtered.stderr.decode()
    assert filtered.stdout != rendered

    values = sorted(str(p) for p in chart.rglob("values.yaml"))
    rewritten = _kmirror(["rewrite", "-w", *values], rules)
    assert rewritten.returncode == 0, rewritten.stderr.decode()
    assert "warning" not in rewritten.stderr.decode()  # no image is hard-coded in these charts' templates
    after = _render(tool(helm), chart)
    assert after == filtered.stdout

    rules.write_text(RULES + BLOCKED, encoding="utf-8")
    checked = _kmirror(["check", "-"], rules, after)
    assert checked.returncode == 0, checked.stdout.decode()


# A GitOps repository's own values file beside the chart's, in the shapes the charts read.
PROD_VALUES = {
    "ingress-nginx": "controller:\n  image:\n    registry: registry.k8s.io  # pinned per image\n    image: ingress-nginx/controller\n    tag: \"v1.15.0\"\n    digest: \"\"\n",
    "kube-state-metrics": "image:\n  registry: quay.io\n  repository: example-org/kube-state-metrics\n  tag: v2.20.0\n",
    "gpu-operator": "driver:\n  repository: nvcr.io/nvidia\n  image: driver\n  version: \"580.65.06\"\n",
}


@pytest.mark.parametrize("helm", ["helm3", "helm4"])
@pytest.mark.parametrize("name", sorted(PROD_VALUES))
def test_gitops_values_file_rewrite_commutes(name: str, helm: str, tmp_path: Path) -> None:
    """The same property for a values-prod.yaml kept beside the chart and passed with a second -f."""
    chart = tmp_path / name
    shutil.copytree(CHARTS / name, chart)
    prod = tmp_path / "values-prod.yaml"
    prod.write_text(PROD_VALUES[name], encoding="utf-8")
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES, encoding="utf-8")

    def render() -> bytes:
        argv = [tool(helm), "template", "rel", str(chart), "-f", str(chart / "values.yaml"), "-f", str(prod)]
        done = subprocess.run(argv, capture_output=True, timeout=120)
        assert done.returncode == 0, done.stderr.decode()
        return done.stdout

    filtered = _kmirror([], rules, render())
    assert filtered.returncode == 0, filtered.stderr.decode()
    rewritten = _kmirror(["rewrite", "-w", str(prod), *sorted(str(p) for p in chart.rglob("values.yaml"))], rules)
    assert rewritten.returncode == 0, rewritten.stderr.decode()
    assert prod.read_text(encoding="utf-8") != PROD_VALUES[name]
    assert render() == filtered.stdout
