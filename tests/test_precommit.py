"""The pre-commit hooks (.pre-commit-hooks.yaml), run by the real pre-commit in a throw-away repository.

`pre-commit try-repo` installs the hooks' Python environment from a git repository: the
`hook_repo` fixture commits this checkout's working tree (tracked and untracked files, not
ignored ones) into a fresh repository, so the tests see uncommitted changes too. try-repo
builds a new environment on every call (it keeps its store in a temporary folder); the
commit test goes through `.pre-commit-config.yaml`, whose environment lives in the
module's PRE_COMMIT_HOME.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import re
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from tools import tool

from rewriter.report import INFORMATION_URI

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "fixtures" / "precommit"
EXAMPLES = ROOT / "examples" / "ci"
KMIRROR = str(Path(sys.executable).parent / "kmirror")
GUIDE = ROOT / "docs" / "adopting.md"
TEMPLATE = "charts/web/templates/deployment.yaml"
TEMPLATE_NOTE = f"kmirror: note: skipped {TEMPLATE}: a Helm chart template, not YAML"
BLOCKED_LINES = (
    # The chart's values compose docker.io/library/nginx (repository + tag): a finding since issue 17.
    "charts/web/values.yaml:2:15: KM001 nginx is on blocked registry docker.io "
    "(mirror: harbor.example.com/docker.io/library/nginx)",
    "deploy/web.yaml:16:19: KM001 registry.k8s.io/busybox:1.28 is on blocked registry registry.k8s.io "
    "(mirror: harbor.example.com/registry.k8s.io/busybox:1.28)",
    "deploy/web.yaml:19:18: KM001 nginx:1.25 is on blocked registry docker.io "
    "(mirror: harbor.example.com/docker.io/library/nginx:1.25)",
    "deploy/web.yaml:36:22: KM001 ghcr.io/example/report:2.1.0 is on blocked registry ghcr.io "
    "(mirror: harbor.example.com/ghcr.io/example/report:2.1.0)",
)


def _git(*args: str, cwd: Path, env: dict[str, str]) -> str:
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The environment of a developer's shell: a git identity, one PRE_COMMIT_HOME, no CI or rules settings."""
    drop = ("GITHUB_ACTIONS", "KMIRROR_CONFIG", "PRE_COMMIT_HOME", "GIT_DIR", "GIT_INDEX_FILE", "GIT_WORK_TREE")
    environment = {k: v for k, v in os.environ.items() if k not in drop}
    identity = {f"GIT_{who}_{what}": value for who in ("AUTHOR", "COMMITTER") for what, value in (("NAME", "Test"), ("EMAIL", "test@example.com"))}
    environment.update(identity, PRE_COMMIT_HOME=str(tmp_path_factory.mktemp("pre-commit-home")), PIP_DISABLE_PIP_VERSION_CHECK="1")
    return environment


@pytest.fixture(scope="module")
def hook_repo(tmp_path_factory: pytest.TempPathFactory, env: dict[str, str]) -> Path:
    """This checkout's working tree, committed in a fresh git repository."""
    repo = tmp_path_factory.mktemp("hook-repo")
    listed = _git("ls-files", "--cached", "--others", "--exclude-standard", "-z", cwd=ROOT, env=env)
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():  # a tracked file deleted in the working tree is left out
            (repo / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, repo / name)
    _git("init", "-q", cwd=repo, env=env)
    _git("add", "-A", cwd=repo, env=env)
    _git("commit", "-q", "-m", "working tree", cwd=repo, env=env)
    return repo


@pytest.fixture
def target(tmp_path: Path, env: dict[str, str]) -> Path:
    """An application repository: the fixture's files, a .kmirror.yaml from `kmirror init`, the CI recipes, all staged."""
    repo = tmp_path / "app"
    shutil.copytree(FIXTURE / "repo", repo)
    (repo / ".github" / "workflows").mkdir(parents=True)
    shutil.copy(EXAMPLES / "github-actions.yml", repo / ".github" / "workflows" / "kmirror.yml")
    shutil.copy(EXAMPLES / "gitlab-ci.yml", repo / ".gitlab-ci.yml")
    subprocess.run([KMIRROR, "init", "--registry", "harbor.example.com"], cwd=repo, env=env, check=True, capture_output=True)
    _git("init", "-q", cwd=repo, env=env)
    _git("add", "-A", cwd=repo, env=env)
    return repo


def pre_commit(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [tool("pre-commit"), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )


def try_repo(hook_repo: Path, hook: str, *args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`pre-commit try-repo` with one hook, or with every hook when `hook` is empty."""
    return pre_commit("try-repo", str(hook_repo), *([hook] if hook else []), *args, cwd=cwd, env=env)


def guide_config() -> dict[str, Any]:
    """The `.pre-commit-config.yaml` that docs/adopting.md tells users to write."""
    [block] = [b for b in re.findall(r"```yaml\n(.*?)```", GUIDE.read_text(), re.S) if b.startswith("repos:")]
    config: dict[str, Any] = yaml.safe_load(block)
    return config


def _snapshot(repo: Path) -> dict[str, bytes]:
    return {str(p.relative_to(repo)): p.read_bytes() for p in sorted(repo.rglob("*")) if p.is_file() and ".git" not in p.parts}


def test_hooks_file_declares_the_two_hooks() -> None:
    hooks = {hook["id"]: hook for hook in yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())}
    assert set(hooks) == {"kmirror", "kmirror-check"}
    assert hooks["kmirror"]["entry"] == "kmirror rewrite --write"
    assert hooks["kmirror-check"]["entry"] == "kmirror check"
    for hook in hooks.values():
        assert hook["language"] == "python" and hook["types"] == ["yaml"]


def test_check_hook_fails_on_blocked_images_with_their_location(hook_repo: Path, target: Path, env: dict[str, str]) -> None:
    before = _snapshot(target)
    result = try_repo(hook_repo, "kmirror-check", "--all-files", cwd=target, env=env)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "- hook id: kmirror-check" in result.stdout and "- exit code: 1" in result.stdout
    lines = result.stdout.splitlines()
    for expected in BLOCKED_LINES:
        assert expected in lines
    assert f"4 problems in 2 files (4 files checked against {target / '.kmirror.yaml'})" in lines, result.stdout
    # The chart template and Chart.yaml are skipped with a note; the CI recipes (image: keys of
    # CI jobs) and the rules file are excluded by the hook.
    assert any(line.startswith(TEMPLATE_NOTE) for line in lines)
    assert any(line.startswith("kmirror: note: skipped charts/web/Chart.yaml: not a Kubernetes manifest") for line in lines)
    assert not any(".kmirror.yaml" in line for line in lines if "files checked against" not in line)
    assert ".gitlab-ci.yml" not in result.stdout and ".github/" not in result.stdout
    assert "error" not in result.stdout.lower().replace("::error", "")
    assert _snapshot(target) == before


def test_rewrite_hook_rewrites_reports_modified_files_then_both_hooks_pass(hook_repo: Path, target: Path, env: dict[str, str]) -> None:
    before = _snapshot(target)
    result = try_repo(hook_repo, "kmirror", "--all-files", cwd=target, env=env)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "- files were modified by this hook" in result.stdout
    assert "rewrote 2 files" in result.stdout.splitlines()
    after = _snapshot(target)
    assert after["deploy/web.yaml"] == (FIXTURE / "web.rewritten.yaml").read_bytes()
    assert after["charts/web/values.yaml"] == before["charts/web/values.yaml"].replace(
        b"repository: nginx", b"repository: harbor.example.com/docker.io/library/nginx"
    )
    assert {k for k in after if after[k] != before[k]} == {"deploy/web.yaml", "charts/web/values.yaml"}

    _git("add", "-A", cwd=target, env=env)
    again = try_repo(hook_repo, "", "--all-files", cwd=target, env=env)  # no hook id: both hooks
    assert again.returncode == 0, again.stdout + again.stderr
    assert [line.rsplit(".", 1)[-1] for line in again.stdout.splitlines() if line.startswith("kmirror")] == ["Passed", "Passed"]
    assert _snapshot(target) == after


def test_chart_templates_alone_pass_both_hooks_with_a_note(hook_repo: Path, target: Path, env: dict[str, str]) -> None:
    result = try_repo(hook_repo, "", "--verbose", "--files", TEMPLATE, cwd=target, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("Passed") == 2
    assert result.stdout.count(TEMPLATE_NOTE) == 2
    assert (target / TEMPLATE).read_bytes() == (FIXTURE / "repo" / TEMPLATE).read_bytes()


def test_guide_config_names_a_commit_and_both_hooks() -> None:
    # kmirror has no release tags yet (docs/releasing.md): `rev` is a commit, by its full SHA.
    [repo] = guide_config()["repos"]
    assert repo["repo"] == INFORMATION_URI and re.fullmatch(r"[0-9a-f]{40}", repo["rev"])
    assert [hook["id"] for hook in repo["hooks"]] == ["kmirror", "kmirror-check"]


def test_guide_first_steps(target: Path, env: dict[str, str]) -> None:
    def kmirror(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([KMIRROR, *args], cwd=target, env=env, capture_output=True, text=True, timeout=60)

    explain = kmirror("explain", "nginx:1.25")
    assert explain.returncode == 0 and "mirrored:   harbor.example.com/docker.io/library/nginx:1.25" in explain.stdout
    check = kmirror("check", "deploy/")
    assert check.returncode == 1 and "3 problems in 1 file (3 files checked against " in check.stdout
    diff = kmirror("rewrite", "--diff", "deploy/")
    assert diff.returncode == 0 and "+          image: harbor.example.com/docker.io/library/nginx:1.25" in diff.stdout


def test_commit_is_stopped_until_the_rewritten_files_are_added(hook_repo: Path, target: Path, env: dict[str, str]) -> None:
    config = guide_config()
    rev = _git("rev-parse", "HEAD", cwd=hook_repo, env=env).strip()
    config["repos"][0].update(repo=str(hook_repo), rev=rev)  # this checkout instead of the published release
    (target / ".pre-commit-config.yaml").write_text(yaml.safe_dump(config))
    _git("add", "-A", cwd=target, env=env)
    installed = pre_commit("install", cwd=target, env=env)
    assert installed.returncode == 0, installed.stdout + installed.stderr

    first = subprocess.run(["git", "commit", "-m", "add the app"], cwd=target, env=env, capture_output=True, text=True, timeout=600)
    assert first.returncode == 1, first.stdout + first.stderr
    assert "files were modified by this hook" in first.stderr  # git hooks write to stderr
    assert _git("status", "--porcelain", "deploy/web.yaml", cwd=target, env=env) == "AM deploy/web.yaml\n"
    assert (target / "deploy" / "web.yaml").read_bytes() == (FIXTURE / "web.rewritten.yaml").read_bytes()

    _git("add", "-A", cwd=target, env=env)
    second = subprocess.run(["git", "commit", "-m", "add the app"], cwd=target, env=env, capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stdout + second.stderr
    assert _git("show", "HEAD:deploy/web.yaml", cwd=target, env=env).encode() == (FIXTURE / "web.rewritten.yaml").read_bytes()


GITOPS = FIXTURE / "gitops"
GITOPS_REWRITTEN = FIXTURE / "gitops.rewritten"


def _render(repo: Path, env: dict[str, str]) -> dict[str, bytes]:
    """What the repository deploys: the prod overlay built by kubectl, the chart rendered with the prod values by helm 3 and 4."""
    commands = {
        "kustomize": [tool("kubectl"), "kustomize", "apps/overlays/prod"],
        **{helm: [tool(helm), "template", "api", "charts/api", "-f", "environments/prod/values-prod.yaml"] for helm in ("helm3", "helm4")},
    }
    rendered = {}
    for name, command in commands.items():
        done = subprocess.run(command, cwd=repo, env=env, capture_output=True, timeout=120)
        assert done.returncode == 0, done.stderr.decode()
        rendered[name] = done.stdout
    return rendered


def test_gitops_repository_rewritten_by_the_hook_renders_as_its_render_rewritten(hook_repo: Path, tmp_path: Path, env: dict[str, str]) -> None:
    """Issue 17's acceptance: a chart, values files, overlays, an Argo CD Application and .kmirror.yaml."""
    repo = tmp_path / "gitops"
    shutil.copytree(GITOPS, repo)
    _git("init", "-q", cwd=repo, env=env)
    _git("add", "-A", cwd=repo, env=env)
    before = _snapshot(repo)
    mirrored = {}
    for name, output in _render(repo, env).items():
        done = subprocess.run([KMIRROR], cwd=repo, env=env, input=output, capture_output=True, timeout=60)
        assert done.returncode == 0, done.stderr.decode()
        mirrored[name] = done.stdout

    result = try_repo(hook_repo, "kmirror", "--all-files", cwd=repo, env=env)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "- files were modified by this hook" in result.stdout
    after = _snapshot(repo)
    expected = {str(p.relative_to(GITOPS_REWRITTEN)): p.read_bytes() for p in GITOPS_REWRITTEN.rglob("*") if p.is_file()}
    assert {k for k in after if after[k] != before[k]} == set(expected)  # .kmirror.yaml, Chart.yaml, docker-compose.yml: untouched
    for name, content in expected.items():
        assert after[name] == content, name
    assert _render(repo, env) == mirrored

    _git("add", "-A", cwd=repo, env=env)
    again = try_repo(hook_repo, "", "--all-files", cwd=repo, env=env)  # both hooks
    assert again.returncode == 0, again.stdout + again.stderr
    assert [line.rsplit(".", 1)[-1] for line in again.stdout.splitlines() if line.startswith("kmirror")] == ["Passed", "Passed"]
    assert _snapshot(repo) == after
