"""The offline bundle (scripts/bundle): built here, then installed with no package index reachable.

Building it needs the package index (PyPI); installing it must not. Each install runs with pip's
own configuration and find-links cleared, PIP_NO_INDEX=1, and every proxy variable pointing at a
port nothing listens on, so any attempt to reach an index fails.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]
BUNDLE = ROOT / "dist" / f"kmirror-{VERSION}-offline.tar.gz"
BASE_PYTHON = getattr(sys, "_base_executable", sys.executable)
UNREACHABLE = "http://127.0.0.1:9"  # the discard port: nothing answers
TARGETS = [(python, arch) for python in ("3.11.4", "3.12", "3.13") for arch in ("x86_64", "aarch64")]


def offline_env(**extra: str) -> dict[str, str]:
    """This environment without pip's settings or a virtual environment, with no index reachable."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_") and k != "VIRTUAL_ENV" and "proxy" not in k.lower()}
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1",
               HTTP_PROXY=UNREACHABLE, HTTPS_PROXY=UNREACHABLE, ALL_PROXY=UNREACHABLE,
               http_proxy=UNREACHABLE, https_proxy=UNREACHABLE, PIP_PROXY=UNREACHABLE, PIP_RETRIES="0", PIP_TIMEOUT="5")
    env.update(extra)
    return env


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The unpacked bundle, built afresh by ./scripts/bundle."""
    BUNDLE.unlink(missing_ok=True)
    done = subprocess.run([str(ROOT / "scripts" / "bundle")], capture_output=True, text=True, timeout=1200, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"bundle: wrote {BUNDLE}" in done.stderr
    out = tmp_path_factory.mktemp("bundle")
    with tarfile.open(BUNDLE) as tar:
        assert {m.name.split("/")[0] for m in tar.getmembers()} == {f"kmirror-{VERSION}-offline"}
        tar.extractall(out, filter="data")
    return out / f"kmirror-{VERSION}-offline"


def run_demo(kmirror: Path, cwd: Path) -> None:
    """The README's quick-start demo, run with the installed kmirror where no rules file is found."""
    demo = (ROOT / "examples" / "demo.yaml").read_bytes()
    done = subprocess.run([str(kmirror)], input=demo, cwd=cwd, capture_output=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout == (ROOT / "examples" / "demo.expected.yaml").read_bytes()


def test_install_into_a_venv_it_creates_with_no_index(bundle: Path, tmp_path: Path) -> None:
    venv = tmp_path / "kmirror-venv"
    done = subprocess.run([str(bundle / "install.sh"), str(venv)], env=offline_env(PYTHON=BASE_PYTHON),
                          capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"install.sh: installed kmirror {VERSION} as {venv}/bin/kmirror" in done.stdout
    run_demo(venv / "bin" / "kmirror", tmp_path)


def test_install_into_the_active_venv_with_no_index(bundle: Path, tmp_path: Path) -> None:
    venv = tmp_path / "active"
    subprocess.run([BASE_PYTHON, "-m", "venv", str(venv)], check=True, timeout=300)
    env = offline_env(VIRTUAL_ENV=str(venv))
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env['PATH']}"
    done = subprocess.run([str(bundle / "install.sh")], env=env, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    run_demo(venv / "bin" / "kmirror", tmp_path)


def test_install_without_a_venv_says_what_to_do(bundle: Path) -> None:
    done = subprocess.run([str(bundle / "install.sh")], env=offline_env(), capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2
    assert "no virtual environment is active" in done.stderr


@pytest.mark.parametrize(("python", "arch"), TARGETS)
def test_the_wheels_cover_every_target(bundle: Path, tmp_path: Path, python: str, arch: str) -> None:
    # pip resolves kmirror and all its dependencies for that interpreter and platform from the bundle alone.
    argv = [sys.executable, "-m", "pip", "download", "--no-index", "--find-links", str(bundle / "wheels"),
            "--only-binary=:all:", "--implementation", "cp", "--python-version", python,
            "--platform", f"manylinux_2_17_{arch}", "--platform", f"manylinux2014_{arch}", "--dest", str(tmp_path), "kmirror"]
    done = subprocess.run(argv, env=offline_env(), capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
