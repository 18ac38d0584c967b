"""Packaging: one version (pyproject.toml) everywhere it shows, the metadata, and an sdist its tests can run from."""

from __future__ import annotations

import fnmatch
import os
import subprocess
import sys
import tarfile
import tomllib
from email.parser import HeaderParser
from pathlib import Path

import pytest
import yaml

import rewriter

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
VERSION = PYPROJECT["project"]["version"]
KMIRROR = str(Path(sys.executable).parent / "kmirror")
PLUGIN_FILES = sorted((ROOT / "helm-plugins").rglob("plugin.yaml"))


def test_the_version_is_written_only_in_pyproject() -> None:
    assert VERSION not in (ROOT / "rewriter" / "__init__.py").read_text(encoding="utf-8")
    assert rewriter.__version__ == VERSION
    done = subprocess.run([KMIRROR, "--version"], capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout == f"kmirror {VERSION}\n"


def test_there_are_helm_plugins_to_check() -> None:
    assert len(PLUGIN_FILES) >= 3


@pytest.mark.parametrize("plugin", PLUGIN_FILES, ids=lambda p: str(p.relative_to(ROOT / "helm-plugins").parent))
def test_helm_plugin_versions_are_the_package_version(plugin: Path) -> None:
    assert yaml.safe_load(plugin.read_text(encoding="utf-8"))["version"] == VERSION


def test_metadata() -> None:
    project = PYPROJECT["project"]
    assert PYPROJECT["build-system"]["requires"] == ["setuptools>=77"]
    assert project["requires-python"] == ">=3.11.4"  # tarfile's filter="data" (rewriter/chart.py)
    assert project["license"] == "Apache-2.0" and "LICENSE" in project["license-files"]
    assert {"Homepage", "Source", "Issues"} <= set(project["urls"])
    assert "Programming Language :: Python :: 3.11" in project["classifiers"]


def project_files() -> set[str]:
    """Every file of the project as a clone holds it: what .gitignore ignores (and .git) left out."""
    ignored = [line.strip().rstrip("/") for line in (ROOT / ".gitignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")]

    def kept(name: str) -> bool:
        return name != ".git" and not any(fnmatch.fnmatch(name, pattern) for pattern in ignored)

    files: set[str] = set()
    for folder, dirs, names in os.walk(ROOT):
        dirs[:] = [d for d in dirs if kept(d) and kept(os.path.relpath(os.path.join(folder, d), ROOT))]
        files.update(os.path.relpath(os.path.join(folder, n), ROOT) for n in names if kept(n))
    return files


def test_the_sdist_holds_the_whole_project(tmp_path: Path) -> None:
    # Build isolation fetches setuptools>=77 from the package index.
    subprocess.run([sys.executable, "-m", "build", "--sdist", "--outdir", str(tmp_path), str(ROOT)],
                   capture_output=True, text=True, timeout=600, check=True)
    (sdist,) = tmp_path.glob("kmirror-*.tar.gz")
    assert sdist.name == f"kmirror-{VERSION}.tar.gz"
    prefix = f"kmirror-{VERSION}/"
    with tarfile.open(sdist) as tar:
        members = {m.name.removeprefix(prefix) for m in tar.getmembers() if m.isfile()}
        info = HeaderParser().parsestr(tar.extractfile(prefix + "PKG-INFO").read().decode())  # type: ignore[union-attr]
    generated = {m for m in members if m == "PKG-INFO" or m == "setup.cfg" or ".egg-info/" in m}
    assert members - generated == project_files()
    assert info["License-Expression"] == "Apache-2.0"
    assert sorted(info.get_all("License-File")) == ["LICENSE", "NOTICE"]
    assert info["Requires-Python"] == ">=3.11.4"
    assert any(url.startswith("Source, ") for url in info.get_all("Project-URL"))
