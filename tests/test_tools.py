"""The real tools the tests rely on are installed and are the pinned versions."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from tools import tool

REPO = Path(__file__).resolve().parent.parent


def run(*argv: str, cwd: Path | None = None) -> str:
    """Run *argv*, fail on a non-zero exit, and return stdout plus stderr."""
    proc = subprocess.run(
        argv, cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"{argv} exited {proc.returncode}:\n{out}"
    return out


def test_helm3_version() -> None:
    assert run(tool("helm3"), "version", "--short").startswith("v3.17.")


def test_helm4_version() -> None:
    assert run(tool("helm4"), "version", "--short").startswith("v4.1.")


def test_kubectl_version() -> None:
    # The pinned v1.35 build, not some other kubectl on PATH (e.g. a cloud SDK's).
    assert "Client Version: v1.35." in run(tool("kubectl"), "version", "--client")


def test_kubectl_kustomize(tmp_path: Path) -> None:
    (tmp_path / "kustomization.yaml").write_text(
        "resources: [pod.yaml]\n"
        "images:\n"
        "- name: nginx\n"
        "  newName: mirror.example/library/nginx\n"
        "  newTag: '1.27'\n"
    )
    (tmp_path / "pod.yaml").write_text(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: web}\n"
        "spec:\n  containers:\n  - name: web\n    image: nginx:1.25\n"
    )
    out = run(tool("kubectl"), "kustomize", str(tmp_path))
    assert "image: mirror.example/library/nginx:1.27" in out


def test_skopeo_version() -> None:
    assert re.match(r"skopeo version 1\.\d+\.\d+", run(tool("skopeo"), "--version"))


def test_docker_registry_version() -> None:
    out = run(tool("docker-registry"), "--version")
    assert re.search(r"\bv?2\.\d+\.\d+", out), out


def test_pre_commit_version() -> None:
    pins = (REPO / "requirements" / "test.txt").read_text()
    pinned = re.search(r"^pre[-_]commit==(\S+)$", pins, re.M)
    assert pinned, "pre-commit is not pinned in requirements/test.txt"
    assert run(tool("pre-commit"), "--version").strip() == f"pre-commit {pinned[1]}"
