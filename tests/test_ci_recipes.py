"""The CI recipes (examples/ci/) and the Argo CD plugin (examples/argocd-cmp/), run as far as this machine allows.

Each recipe is parsed, and the kmirror commands in it run in a copy of fixtures/precommit/repo
(with the .kmirror.yaml `kmirror init --registry harbor.example.com` writes), the way the CI
system or Argo CD runs them, with the real helm 3 and helm 4. What cannot run here: the
`pip install` steps (they install a commit from the public repository), GitHub's and GitLab's own actions and
uploads, the sidecar image build. There is no standalone kustomize here either, so
`kustomize build DIR` is a shim that runs `kubectl kustomize DIR` (kustomize v5.7.1).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from test_report import validate_sarif
from tools import tool

from rewriter.report import INFORMATION_URI

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "fixtures" / "precommit"
CI = ROOT / "examples" / "ci"
CMP = ROOT / "examples" / "argocd-cmp"
VENV_BIN = Path(sys.executable).parent
KMIRROR = str(VENV_BIN / "kmirror")
# kmirror has no release tags yet (docs/releasing.md): the recipes install a commit, by its full SHA.
INSTALL = re.compile(rf'pip install "kmirror @ git\+{re.escape(INFORMATION_URI)}@[0-9a-f]{{40}}"')

BLOCKED = {  # (line, column, reference) of each blocked reference in deploy/web.yaml
    (16, 19, "registry.k8s.io/busybox:1.28"),
    (19, 18, "nginx:1.25"),
    (36, 22, "ghcr.io/example/report:2.1.0"),
}
CHART_IMAGES = {
    "harbor.example.com/docker.io/library/nginx:1.25",
    "harbor.example.com/quay.io/prometheus/nginx-exporter:1.1.0",
}
DEPLOY_IMAGES = {
    "harbor.example.com/registry.k8s.io/busybox:1.28",
    "harbor.example.com/docker.io/library/nginx:1.25",
    "harbor.example.com/ghcr.io/example/report:2.1.0",
    "harbor.example.com/docker.io/library/busybox:1.36",
}

# GitLab Code Quality report (docs.gitlab.com, "Code Quality" report format): an array of
# issues; these fields are the ones GitLab requires, with their allowed values.
GITLAB_CODE_QUALITY: dict[str, Any] = {
    "type": "array",
    "items": {
        "type": "object",
        "required": ["description", "check_name", "fingerprint", "severity", "location"],
        "properties": {
            "description": {"type": "string", "minLength": 1},
            "check_name": {"type": "string", "minLength": 1},
            "fingerprint": {"type": "string", "minLength": 1},
            "severity": {"enum": ["info", "minor", "major", "critical", "blocker"]},
            "location": {
                "type": "object",
                "required": ["path", "lines"],
                "properties": {
                    "path": {"type": "string", "pattern": r"^[^/]"},  # relative to the repository root
                    "lines": {"type": "object", "required": ["begin"], "properties": {"begin": {"type": "integer", "minimum": 1}}},
                },
            },
        },
    },
}
# A GitHub Actions `error` workflow command with the properties annotations use.
GITHUB_ERROR = re.compile(r"::error file=(?P<file>[^,]+),line=(?P<line>\d+),col=(?P<col>\d+),title=(?P<title>[^:]+)::(?P<message>.+)")


@pytest.fixture
def app(tmp_path: Path) -> Path:
    """The application repository, with the rules file from `kmirror init --registry harbor.example.com`."""
    repo = tmp_path / "app"
    shutil.copytree(FIXTURE / "repo", repo)
    subprocess.run([KMIRROR, "init", "--registry", "harbor.example.com"], cwd=repo, check=True, capture_output=True)
    return repo


@pytest.fixture(params=["helm3", "helm4"])
def tools_bin(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    """A folder with `helm` (Helm 3 or 4) and a `kustomize build` shim over `kubectl kustomize`."""
    folder = tmp_path / "bin"
    folder.mkdir()
    (folder / "helm").symlink_to(tool(request.param))
    shim = folder / "kustomize"
    shim.write_text(f'#!/bin/sh\n[ "$1" = build ] || exit 2\nshift\nexec {tool("kubectl")} kustomize "$@"\n')
    shim.chmod(0o755)
    return folder


def environment(tools_bin: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("GITHUB_ACTIONS", "GITLAB_CI", "KMIRROR_CONFIG")}
    env["PATH"] = os.pathsep.join((str(tools_bin), str(VENV_BIN), env.get("PATH", "")))
    env.update(extra)
    return env


def images(stream: str) -> set[str]:
    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "image" and isinstance(value, str):
                    found.add(value)
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    for document in yaml.safe_load_all(stream):
        walk(document)
    return found


def no_blocked_left(path: Path, env: dict[str, str]) -> bool:
    return subprocess.run([KMIRROR, "check", str(path)], cwd=path.parent, env=env, capture_output=True).returncode == 0


def break_chart(app: Path) -> None:
    (app / "charts" / "web" / "templates" / "broken.yaml").write_text("kind: ConfigMap\ndata: {{ .Values.nope.missing }}\n")


def limit_rules(app: Path) -> None:
    """Rules that block quay.io without a rule for it: the chart's exporter image cannot be mirrored."""
    (app / ".kmirror.yaml").write_text("mirrors:\n  - {from: docker.io, to: harbor.example.com/docker.io}\nblocked: [docker.io, quay.io]\n")


# --- GitHub Actions ---------------------------------------------------------------------------

def github_workflow() -> dict[str, Any]:
    return yaml.safe_load((CI / "github-actions.yml").read_text())


def github_steps() -> list[dict[str, Any]]:
    return github_workflow()["jobs"]["images"]["steps"]


def run_github_step(step: dict[str, Any], app: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    # `shell: bash` runs `bash --noprofile --norc -eo pipefail {0}` (GitHub's workflow syntax docs).
    script = app.parent / "step.sh"
    script.write_text(step["run"])
    return subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)], cwd=app, env=env, capture_output=True, text=True, timeout=120)


def test_github_workflow_installs_a_commit_and_uploads_the_sarif_it_writes() -> None:
    workflow = github_workflow()
    job = workflow["jobs"]["images"]
    assert workflow["permissions"]["security-events"] == "write"
    assert job["env"] == {"KMIRROR_CONFIG": ".kmirror.yaml"}  # the rules named, not discovered
    assert job["defaults"]["run"]["shell"] == "bash"
    steps = {step.get("name", step.get("uses")): step for step in job["steps"]}
    assert INSTALL.fullmatch(steps["Install kmirror"]["run"])
    upload = next(step for step in job["steps"] if step.get("uses", "").startswith("github/codeql-action/upload-sarif@"))
    assert upload["with"]["sarif_file"] == "kmirror.sarif"
    assert "> kmirror.sarif" in steps["Findings as SARIF"]["run"]


def test_github_steps_annotate_upload_and_render(app: Path, tools_bin: Path) -> None:
    env = environment(tools_bin, GITHUB_ACTIONS="true", **github_workflow()["jobs"]["images"]["env"])
    results = {step["name"]: run_github_step(step, app, env) for step in github_steps() if "run" in step and step["name"] != "Install kmirror"}
    assert list(results) == ["Findings as SARIF", "Check deploy/ (annotations)", "Render the chart through kmirror"]

    sarif = results["Findings as SARIF"]
    assert sarif.returncode == 0, sarif.stderr  # findings: exit 1, accepted by the step
    log = json.loads((app / "kmirror.sarif").read_text())
    validate_sarif(log)
    found = {
        (r["locations"][0]["physicalLocation"]["region"]["startLine"], r["locations"][0]["physicalLocation"]["region"]["startColumn"])
        for r in log["runs"][0]["results"]
    }
    assert found == {(line, col) for line, col, _ in BLOCKED}
    assert {r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in log["runs"][0]["results"]} == {"deploy/web.yaml"}

    check = results["Check deploy/ (annotations)"]
    assert check.returncode == 1
    annotations = [GITHUB_ERROR.fullmatch(line) for line in check.stdout.splitlines() if line.startswith("::")]
    assert all(annotations) and len(annotations) == len(BLOCKED)
    assert {(m["file"], int(m["line"]), int(m["col"]), m["title"]) for m in annotations if m} == {("deploy/web.yaml", line, col, "KM001") for line, col, _ in BLOCKED}

    render = results["Render the chart through kmirror"]
    assert render.returncode == 0, render.stderr
    assert images((app / "rendered.yaml").read_text()) == CHART_IMAGES
    assert no_blocked_left(app / "rendered.yaml", env)

    subprocess.run([KMIRROR, "rewrite", "-w", "deploy/"], cwd=app, env=env, check=True, capture_output=True)
    fixed = run_github_step(next(s for s in github_steps() if s.get("name") == "Check deploy/ (annotations)"), app, env)
    assert (fixed.returncode, fixed.stdout) == (0, "no problems (3 files checked against .kmirror.yaml)\n")


# --- GitLab CI --------------------------------------------------------------------------------

def gitlab_jobs() -> dict[str, Any]:
    return yaml.safe_load((CI / "gitlab-ci.yml").read_text())


def run_gitlab_script(job: dict[str, Any], app: Path, env: dict[str, str], drop: str = "") -> subprocess.CompletedProcess[str]:
    # The runner stops at the first script line that fails; plain `bash -e` does the same, and
    # adds no pipefail of its own, so the recipe's `set -o pipefail` is what is tested.
    script = "\n".join(line.replace(drop, "") if drop else line for line in job["script"])
    return subprocess.run(["bash", "-e", "-c", script], cwd=app, env=env, capture_output=True, text=True, timeout=120)


def test_gitlab_jobs_install_a_commit_and_report_what_they_write() -> None:
    jobs = gitlab_jobs()
    assert set(jobs) == {"kmirror-check", "kmirror-render"}
    for job in jobs.values():
        assert INSTALL.fullmatch(job["before_script"][0])
        assert job["variables"] == {"KMIRROR_CONFIG": ".kmirror.yaml"}  # the rules named, not discovered
    check = jobs["kmirror-check"]
    assert check["artifacts"]["when"] == "always"
    report = check["artifacts"]["reports"]["codequality"]
    assert check["script"][0].startswith(f"kmirror check --format gitlab deploy/ > {report} ")


def test_gitlab_check_job_writes_a_code_quality_report_and_fails(app: Path, tools_bin: Path) -> None:
    job = gitlab_jobs()["kmirror-check"]
    env = environment(tools_bin, GITLAB_CI="true", **job["variables"])
    result = run_gitlab_script(job, app, env)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    for line, col, ref in BLOCKED:  # the second command prints the findings in the job log
        assert any(text.startswith(f"deploy/web.yaml:{line}:{col}: KM001 {ref} is on blocked registry") for text in lines)
    issues = json.loads((app / job["artifacts"]["reports"]["codequality"]).read_text())
    jsonschema.validate(issues, GITLAB_CODE_QUALITY)
    assert {(i["location"]["path"], i["location"]["lines"]["begin"], i["check_name"]) for i in issues} == {
        ("deploy/web.yaml", line, "KM001") for line, _, _ in BLOCKED
    }
    assert len({i["fingerprint"] for i in issues}) == len(issues)

    subprocess.run([KMIRROR, "rewrite", "-w", "deploy/"], cwd=app, env=env, check=True, capture_output=True)
    fixed = run_gitlab_script(job, app, env)
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert json.loads((app / "gl-code-quality-report.json").read_text()) == []


def test_gitlab_render_job_renders_the_chart_through_kmirror(app: Path, tools_bin: Path) -> None:
    result = run_gitlab_script(gitlab_jobs()["kmirror-render"], app, environment(tools_bin))
    assert result.returncode == 0, result.stderr
    assert images((app / "rendered.yaml").read_text()) == CHART_IMAGES


def test_render_step_fails_when_helm_fails_and_only_thanks_to_pipefail(app: Path, tools_bin: Path) -> None:
    break_chart(app)
    job = gitlab_jobs()["kmirror-render"]
    failed = run_gitlab_script(job, app, environment(tools_bin))
    assert failed.returncode != 0
    assert "nope" in failed.stderr  # helm's own error
    # The pitfall the recipe avoids: without pipefail the pipeline's status is kmirror's.
    unsafe = run_gitlab_script(job, app, environment(tools_bin), drop="set -o pipefail")
    assert unsafe.returncode == 0 and (app / "rendered.yaml").read_text() == ""


def test_render_step_fails_closed_when_a_blocked_image_cannot_be_mirrored(app: Path, tools_bin: Path) -> None:
    limit_rules(app)
    result = run_gitlab_script(gitlab_jobs()["kmirror-render"], app, environment(tools_bin))
    assert result.returncode == 1
    assert "quay.io/prometheus/nginx-exporter:1.1.0 is on blocked registry quay.io (no rule)" in result.stderr
    assert (app / "rendered.yaml").read_text() == ""


# --- Argo CD Config Management Plugin ---------------------------------------------------------

CMP_KEYS = {"version", "init", "generate", "discover", "parameters", "preserveFileMode", "provideGitCreds", "allowConcurrency", "lockRepo"}


def plugin() -> dict[str, Any]:
    return yaml.safe_load((CMP / "plugin.yaml").read_text())


def run_cmp_command(command: dict[str, Any], app_dir: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    # What argocd-cmp-server does (cmpserver/plugin/plugin.go, runCommand): exec command[0] with
    # command[1:] + args, no shell and no variable substitution of its own, in the source folder.
    argv = [*command["command"], *command.get("args", [])]
    return subprocess.run(argv, cwd=app_dir, env=env, capture_output=True, text=True, timeout=120)


def cmp_env(tools_bin: Path, app_path: str, rules: Path | None) -> dict[str, str]:
    build = {"ARGOCD_APP_NAME": "web", "ARGOCD_APP_NAMESPACE": "shop", "ARGOCD_APP_SOURCE_PATH": app_path, "ARGOCD_APP_REVISION": "0" * 40}
    return environment(tools_bin, **build, **({"KMIRROR_CONFIG": str(rules)} if rules else {}))


def generate(app: Path, app_path: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    spec = plugin()["spec"]
    init = run_cmp_command(spec["init"], app / app_path, env)
    assert init.returncode == 0, init.stderr
    assert init.stdout == ""
    return run_cmp_command(spec["generate"], app / app_path, env)


def test_plugin_manifest_is_a_config_management_plugin() -> None:
    manifest = plugin()
    assert (manifest["apiVersion"], manifest["kind"], manifest["metadata"]) == ("argoproj.io/v1alpha1", "ConfigManagementPlugin", {"name": "kmirror"})
    assert set(manifest["spec"]) <= CMP_KEYS
    for phase in ("init", "generate"):
        assert manifest["spec"][phase]["command"] == ["bash", "-c"]
        assert manifest["spec"][phase]["args"][0].startswith("set -euo pipefail\n")
    assert "kmirror --strict" in manifest["spec"]["generate"]["args"][0]


@pytest.mark.parametrize("rules", ["sidecar", "repository"])
@pytest.mark.parametrize(("app_path", "expected"), [("charts/web", CHART_IMAGES), ("deploy", DEPLOY_IMAGES)])
def test_generate_renders_helm_and_kustomize_sources_through_kmirror(app: Path, tools_bin: Path, rules: str, app_path: str, expected: set[str]) -> None:
    env = cmp_env(tools_bin, app_path, CMP / "kmirror.yaml" if rules == "sidecar" else None)
    result = generate(app, app_path, env)
    assert result.returncode == 0, result.stderr
    documents = [d for d in yaml.safe_load_all(result.stdout) if d is not None]
    assert documents and all(isinstance(d, dict) and d.get("kind") and d.get("apiVersion") for d in documents)
    assert images(result.stdout) == expected
    (app / "out.yaml").write_text(result.stdout)
    assert no_blocked_left(app / "out.yaml", env)


def test_generate_fails_and_prints_nothing_when_the_render_fails(app: Path, tools_bin: Path) -> None:
    break_chart(app)
    result = generate(app, "charts/web", cmp_env(tools_bin, "charts/web", CMP / "kmirror.yaml"))
    assert result.returncode != 0
    assert result.stdout == ""
    assert "nope" in result.stderr


def test_generate_fails_and_prints_nothing_when_a_blocked_image_cannot_be_mirrored(app: Path, tools_bin: Path) -> None:
    limit_rules(app)
    result = generate(app, "charts/web", cmp_env(tools_bin, "charts/web", None))
    assert result.returncode == 1
    assert result.stdout == ""
    assert "quay.io/prometheus/nginx-exporter:1.1.0 is on blocked registry quay.io (no rule)" in result.stderr


# A stand-in for Argo CD's install.yaml (fetched from the network in the example): the repo
# server Deployment with the two volumes its sidecars share.
ARGOCD_STUB = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: argocd-repo-server
spec:
  selector:
    matchLabels: {app.kubernetes.io/name: argocd-repo-server}
  template:
    metadata:
      labels: {app.kubernetes.io/name: argocd-repo-server}
    spec:
      containers:
        - name: argocd-repo-server
          image: quay.io/argoproj/argocd:v3.0.0
      volumes:
        - {name: var-files, emptyDir: {}}
        - {name: plugins, emptyDir: {}}
"""


def test_kustomization_adds_the_sidecar_and_its_config_maps(tmp_path: Path) -> None:
    overlay = tmp_path / "argocd-cmp"
    shutil.copytree(CMP, overlay)
    kustomization = yaml.safe_load((overlay / "kustomization.yaml").read_text())
    [remote] = kustomization["resources"]
    assert re.fullmatch(r"https://raw\.githubusercontent\.com/argoproj/argo-cd/v[0-9.]+/manifests/install\.yaml", remote)
    (overlay / "argocd-stub.yaml").write_text(ARGOCD_STUB)
    kustomization["resources"] = ["argocd-stub.yaml"]
    (overlay / "kustomization.yaml").write_text(yaml.safe_dump(kustomization))

    built = subprocess.run([tool("kubectl"), "kustomize", str(overlay)], capture_output=True, text=True, check=True, timeout=60)
    objects = {(o["kind"], o["metadata"]["name"].rsplit("-", 1)[0] if o["kind"] == "ConfigMap" else o["metadata"]["name"]): o for o in yaml.safe_load_all(built.stdout)}
    assert set(objects) == {("Deployment", "argocd-repo-server"), ("ConfigMap", "kmirror-plugin"), ("ConfigMap", "kmirror-rules")}
    assert objects[("ConfigMap", "kmirror-plugin")]["data"] == {"plugin.yaml": (CMP / "plugin.yaml").read_text()}
    assert objects[("ConfigMap", "kmirror-rules")]["data"] == {"kmirror.yaml": (CMP / "kmirror.yaml").read_text()}

    pod = objects[("Deployment", "argocd-repo-server")]["spec"]["template"]["spec"]
    assert [c["name"] for c in pod["containers"]] == ["kmirror", "argocd-repo-server"]
    sidecar = pod["containers"][0]
    assert sidecar["command"] == ["/var/run/argocd/argocd-cmp-server"]
    assert sidecar["securityContext"]["runAsUser"] == 999
    mounts = {m["mountPath"]: m for m in sidecar["volumeMounts"]}
    assert mounts["/home/argocd/cmp-server/config/plugin.yaml"]["subPath"] == "plugin.yaml"
    rules_dir = next(path for path, m in mounts.items() if m["name"] == "kmirror-rules")
    assert {"name": "KMIRROR_CONFIG", "value": f"{rules_dir}/kmirror.yaml"} in sidecar["env"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert {m["name"] for m in sidecar["volumeMounts"]} <= set(volumes)
    assert volumes["kmirror-plugin"]["configMap"]["name"] == objects[("ConfigMap", "kmirror-plugin")]["metadata"]["name"]
    assert volumes["kmirror-rules"]["configMap"]["name"] == objects[("ConfigMap", "kmirror-rules")]["metadata"]["name"]


def test_application_names_the_plugin() -> None:
    application = yaml.safe_load((CMP / "application.yaml").read_text())
    assert application["kind"] == "Application"
    assert application["spec"]["source"]["plugin"] == {"name": plugin()["metadata"]["name"]}


# --- The documentation shows these very files ---------------------------------------------------

@pytest.mark.parametrize("example", [CI / "github-actions.yml", CI / "gitlab-ci.yml", CMP / "plugin.yaml"])
def test_docs_include_the_tested_files_verbatim(example: Path) -> None:
    assert example.read_text() in (ROOT / "docs" / "ci.md").read_text()


def test_sidecar_dockerfile_builds_from_mirrors_and_the_offline_bundle() -> None:
    # docker is not available here: the Dockerfile's structure is what can be checked.
    text = (CMP / "Dockerfile").read_text()
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    args = dict(line[4:].split("=", 1) for line in lines if line.startswith("ARG "))
    # The base image is a build argument (declared before FROM), with a documented mirror example.
    assert lines[0].startswith("ARG BASE_IMAGE=") and lines[1] == "FROM ${BASE_IMAGE}"
    assert [line for line in lines if line.startswith("FROM ")] == ["FROM ${BASE_IMAGE}"]
    assert "--build-arg BASE_IMAGE=harbor.example.com/docker.io/library/python:3.11-slim" in text
    # helm and kubectl: downloads named by build arguments, verified against the pins install-tools holds.
    install_tools = (ROOT / "scripts" / "install-tools").read_text()
    assert f"HELM3_SHA={args['HELM_SHA256']}" in install_tools and f"KUBECTL_SHA={args['KUBECTL_SHA256']}" in install_tools
    assert 'echo "${HELM_SHA256}  /usr/local/bin/helm" | sha256sum -c -' in text
    assert 'echo "${KUBECTL_SHA256}  /usr/local/bin/kubectl" | sha256sum -c -' in text
    assert "ADD ${HELM_URL} " in text and "ADD ${KUBECTL_URL} " in text
    # kmirror from the offline bundle that scripts/bundle writes, never from an index.
    assert "COPY dist/kmirror-*-offline.tar.gz /tmp/" in text and "/install.sh /opt/kmirror" in text
    assert "pip install" not in text.replace("pip install --no-index", "")
