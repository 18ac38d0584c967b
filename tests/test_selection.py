"""Which named files kmirror reads (rewriter/selection.py): manifests, kustomize files, values files; never rules files."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from rewriter.selection import NOT_OURS, RULES, skip_reason

KMIRROR = str(Path(sys.executable).parent / "kmirror")
RULES_TEXT = "mirrors:\n  - {from: docker.io, to: hub.example.com}\n  - {from: 'docker.io/library/nginx:1.16', to: hub.example.com/nginx:1.16-patched}\n"


@pytest.mark.parametrize(
    ("name", "text", "reason"),
    [
        ("deploy.yaml", "apiVersion: v1\nkind: Pod\nspec:\n  containers: [{image: nginx}]\n", None),
        ("bom.yaml", "\ufeffkind: Pod\n", None),
        ("list.json.yaml", '{"kind": "Pod", "spec": {}}\n', None),
        ("second.yaml", "a: 1\n---\nkind: Pod\n", None),
        ("kustomization.yaml", "images:\n- name: nginx\n  newTag: '1'\n", None),
        ("Kustomization", "resources: [deploy.yaml]\n", None),
        ("patch.yaml", "- op: replace\n  path: /spec/template/spec/containers/0/image\n  value: nginx:1.25\n", None),
        ("values.yaml", "image:\n  repository: nginx\n", None),
        ("values-prod.yaml", "image: nginx:1.25\n", None),
        ("prod.values.yml", "image: nginx:1.25\n", None),
        ("empty.yaml", "# nothing yet\n", None),
        (".kmirror.yaml", "kind: Pod\n", RULES),  # by name, whatever it holds
        (".kmirror.yml", RULES_TEXT, RULES),
        ("mirror-rules.yaml", RULES_TEXT, RULES),
        ("preset.yaml", "preset: daocloud\n", RULES),
        ("mirror.yaml", "apiVersion: kmirror.dev/v1\nkind: ImageMirror\nspec:\n  mirrors: [{from: docker.io, to: x.example}]\n", RULES),
        ("docker-compose.yml", "services:\n  web:\n    image: nginx:1.25\n", NOT_OURS),
        ("charts/web/Chart.yaml", "apiVersion: v2\nname: web\nversion: 0.1.0\n", NOT_OURS),
        ("mkdocs.yml", "site_name: docs\n", NOT_OURS),
        ("compose.prod.yaml", "services:\n  web: {image: nginx}\n", NOT_OURS),
        ("stack.yml", "services:\n  web:\n    image: nginx:1.25\n  db: {build: ./db}\n", NOT_OURS),  # a compose file by its shape
        ("deploy.yml", "on: push\njobs:\n  build: {runs-on: ubuntu-latest}\n", NOT_OURS),
        (".github/dependabot.yml", "version: 2\n", NOT_OURS),
        ("ci.yml", "stages: [build]\nbuild:\n  image: docker:24\n", NOT_OURS),
        ("list.yaml", "- nginx:1.25\n- redis:7\n", NOT_OURS),
        ("scalar.yaml", "nginx:1.25\n", NOT_OURS),
        ("prod/web.yaml", "image:\n  registry: docker.io\n  repository: bitnami/nginx\n", None),  # values, freely named
        ("input.yaml", "services:\n  enabled: true\n", None),  # a chart's `services:` values are not compose services
        ("values-like.yaml", "mirrors: [{from: docker.io, to: x.example}]\nother: 1\n", None),  # a values file with a `mirrors` key
    ],
)
def test_what_is_read(name: str, text: str, reason: str | None) -> None:
    assert skip_reason(text.encode("utf-8"), name, "preset daocloud") == reason


def test_the_rules_file_in_use_whatever_its_name(tmp_path: Path) -> None:
    rules = tmp_path / "deploy.yaml"
    rules.write_text("kind: Pod\n")  # looks like a manifest
    assert skip_reason(rules.read_bytes(), str(rules), str(rules)) == RULES
    assert skip_reason(rules.read_bytes(), str(rules), str(tmp_path / "other.yaml")) is None


def test_rewrite_leaves_other_files_alone_and_says_so(tmp_path: Path) -> None:
    (tmp_path / ".kmirror.yaml").write_text(RULES_TEXT)
    (tmp_path / "rules-copy.yaml").write_text(RULES_TEXT)
    (tmp_path / "docker-compose.yml").write_text("services:\n  web:\n    image: nginx:1.25\n")
    (tmp_path / "pod.yaml").write_text("kind: Pod\nspec:\n  containers: [{image: 'nginx:1.25'}]\n")
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    names = sorted(before)
    done = subprocess.run([KMIRROR, "rewrite", "-w", *names], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines() == [
        f"kmirror: note: skipped .kmirror.yaml: {RULES}",
        f"kmirror: note: skipped docker-compose.yml: {NOT_OURS}",
        f"kmirror: note: skipped rules-copy.yaml: {RULES}",
        "rewrote 1 file",
    ]
    after = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert {k for k in after if after[k] != before[k]} == {"pod.yaml"}
    check = subprocess.run([KMIRROR, "check", *names], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert check.returncode == 0 and "(1 file checked against " in check.stdout


def test_invalid_yaml_is_an_error_whatever_the_file(tmp_path: Path) -> None:
    (tmp_path / "docker-compose.yml").write_text("services: [unclosed\n")
    done = subprocess.run([KMIRROR, "rewrite", "docker-compose.yml"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "invalid YAML" in done.stderr and done.stdout == ""
