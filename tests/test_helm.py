"""kmirror with real Helm 3 and Helm 4: `kmirror helm`, the exec post-renderer, the plugins.

Every test runs the real helm binaries (`tools.tool`) against the chart in
fixtures/helm/demo (a subchart, a hook, a test hook, CRDs, a hard-coded image, each
values shape), with all of helm's folders in tmp_path and `kmirror` from the venv.
`install`/`upgrade --dry-run=client` need an API server to ask for versions and
resource kinds: `fake_cluster` answers those reads (it stores nothing).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from http.server import BaseHTTPRequestHandler, SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml
from tools import tool

REPO = Path(__file__).resolve().parent.parent
HELM_FIXTURES = REPO / "fixtures" / "helm"
DEMO = HELM_FIXTURES / "demo"
RULES = HELM_FIXTURES / ".kmirror.yaml"
PLUGINS = REPO / "helm-plugins"
HELMS = ("helm3", "helm4")
PLUGIN_VERSION = yaml.safe_load((PLUGINS / "kmirror" / "plugin.yaml").read_text())["version"]

# The demo chart's images as `helm template rel` renders them, and their mirrors under RULES.
TEMPLATES = {
    "docker.io/library/nginx:1.25.3": "mirror.example/docker.io/library/nginx:1.25.3",
    "docker.io/library/alpine:3.19": "mirror.example/docker.io/library/alpine:3.19",
    "quay.io/prometheus/node-exporter:v1.6.0": "mirror.example/quay.io/prometheus/node-exporter:v1.6.0",
    "gcr.io/google-containers/pause:3.2": "mirror.example/gcr.io/google-containers/pause:3.2",
    "registry.k8s.io/sub/agent:v2.1": "mirror.example/registry.k8s.io/sub/agent:v2.1",
    "k8s.gcr.io/pause:3.9": "mirror.example/k8s.gcr.io/pause:3.9",
}
DIGEST = "sha256:39e1e963e5310e9c313bad51523be012ede7b35bb9316517d19089a010356592"
HOOKS = {
    f"registry.k8s.io/e2e-test-images/busybox@{DIGEST}": f"mirror.example/registry.k8s.io/e2e-test-images/busybox@{DIGEST}",
    "image: busybox:1.36": "image: mirror.example/docker.io/library/busybox:1.36",
}
CRDS = {"default: registry.k8s.io/pause:3.9": "default: mirror.example/registry.k8s.io/pause:3.9"}


def helm_env(tmp_path: Path) -> dict[str, str]:
    """The caller's environment with every helm folder in tmp_path and the venv's kmirror first on PATH."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HELM_", "KMIRROR_"))}
    home = tmp_path / "helm-home"
    env.update(
        HELM_CACHE_HOME=str(home / "cache"),
        HELM_CONFIG_HOME=str(home / "config"),
        HELM_DATA_HOME=str(home / "data"),
        HELM_PLUGINS=str(home / "data" / "plugins"),
        XDG_STATE_HOME=str(tmp_path / "state"),
        KUBECONFIG=str(tmp_path / "no-kubeconfig"),
        PATH=os.pathsep.join([str(Path(sys.executable).parent), str(Path(tool("helm4")).parent), env.get("PATH", "")]),
    )
    return env


def run(argv: list[str], env: dict[str, str], cwd: Path = HELM_FIXTURES) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=120, check=False)


def ok(argv: list[str], env: dict[str, str], cwd: Path = HELM_FIXTURES) -> str:
    proc = run(argv, env, cwd)
    assert proc.returncode == 0, f"{argv} exited {proc.returncode}:\n{proc.stderr}"
    return proc.stdout


def mirrored(text: str, *pairs: dict[str, str]) -> str:
    for pair in pairs:
        for old, new in pair.items():
            assert old in text, old
            text = text.replace(old, new)
    return text


def install_plugin(helm: str, name: str, env: dict[str, str]) -> None:
    ok([tool(helm), "plugin", "install", str(PLUGINS / name)], env)


def plugin_list(helm: str, env: dict[str, str]) -> dict[str, list[str]]:
    """`helm plugin list` (which must succeed) as {name: [version, type or description, ...]}."""
    rows = [[cell.strip() for cell in line.split("\t")] for line in ok([tool(helm), "plugin", "list"], env).splitlines()[1:]]
    return {row[0]: row[1:] for row in rows}


def post_renderers(env: dict[str, str]) -> dict[str, str]:
    """`env` with the installed kmirror plugin's postrender/ folder on HELM_PLUGINS, as docs/helm.md says for Helm 4."""
    plugins = env["HELM_PLUGINS"]
    return {**env, "HELM_PLUGINS": f"{plugins}{os.pathsep}{plugins}/kmirror/postrender"}


# -- kmirror helm ------------------------------------------------------------------------


@pytest.mark.parametrize("helm", HELMS)
def test_kmirror_helm_rewrites_the_render_byte_exactly(helm: str, tmp_path: Path) -> None:
    env = helm_env(tmp_path)
    raw = ok([tool(helm), "template", "rel", "demo", "--include-crds"], env)
    out = ok(["kmirror", "helm", "demo", "--release", "rel", "--include-crds", "--config", str(RULES), "--helm", tool(helm)], env)
    # Everything, hooks and CRDs included; comments and `# Source:` lines unchanged.
    assert out == mirrored(raw, TEMPLATES, HOOKS, CRDS)
    assert "# Source: demo/templates/hook-job.yaml" in out


@pytest.mark.parametrize("helm", HELMS)
def test_kmirror_helm_passes_values_sets_and_namespace(helm: str, tmp_path: Path) -> None:
    env = helm_env(tmp_path)
    extra = tmp_path / "extra.yaml"
    extra.write_text("tests:\n  image: ghcr.io/example/probe:1.0\n")
    argv = ["kmirror", "helm", "demo", "-n", "team-a", "--values", str(extra), "--set", "sidecar.image=quay.io/example/side:2"]
    out = ok([*argv, "--config", str(RULES), "--helm", tool(helm)], env)
    assert "image: mirror.example/quay.io/example/side:2" in out
    assert "image: ghcr.io/example/probe:1.0" in out  # no rule for ghcr.io in RULES
    assert "name: release-name-web" in out
    raw = ok([tool(helm), "template", "release-name", "demo", "-n", "team-a", "-f", str(extra), "--set", "sidecar.image=quay.io/example/side:2"], env)
    assert out.count("\n") == raw.count("\n")


@pytest.mark.parametrize("helm", HELMS)
def test_kmirror_helm_strict_fails_on_blocked_leftovers(helm: str, tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text("mirrors:\n  - {from: docker.io, to: mirror.example/docker.io}\nblocked: [docker.io, quay.io]\n")
    proc = run(["kmirror", "helm", "demo", "--strict", "--config", str(rules), "--helm", tool(helm)], helm_env(tmp_path))
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert "quay.io/prometheus/node-exporter:v1.6.0 is on blocked registry quay.io" in proc.stderr


@pytest.mark.parametrize("helm", HELMS)
def test_kmirror_helm_shows_a_failed_render(helm: str, tmp_path: Path) -> None:
    chart = broken_chart(tmp_path)
    proc = run(["kmirror", "helm", str(chart), "--release", "rel", "--config", str(RULES), "--helm", tool(helm)], helm_env(tmp_path))
    assert proc.returncode == 2
    assert proc.stdout == ""
    first, *rest = proc.stderr.splitlines()
    assert first == f"kmirror: error: helm failed: {tool(helm)} template rel {chart}: exit code 1:"
    assert any(line.startswith("    ") and "the chart says no" in line for line in rest)


def test_kmirror_helm_without_helm(tmp_path: Path) -> None:
    proc = run(["kmirror", "helm", "demo", "--config", str(RULES), "--helm", str(tmp_path / "no-helm")], helm_env(tmp_path))
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr == f"kmirror: error: cannot run helm: {tmp_path / 'no-helm'}: not found (install helm, or name it with --helm PATH)\n"


@pytest.mark.parametrize("where", ["path", "on-PATH"])
def test_kmirror_helm_with_a_helm_that_may_not_be_run(tmp_path: Path, where: str) -> None:
    plain = tmp_path / "bin" / "helm"
    plain.parent.mkdir()
    shutil.copy(tool("helm4"), plain)
    plain.chmod(0o644)  # a download not yet made executable
    env = helm_env(tmp_path)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), str(plain.parent), "/usr/bin", "/bin"])
    given = str(plain) if where == "path" else "helm"
    proc = run(["kmirror", "helm", "demo", "--config", str(RULES), "--helm", given], env)
    assert (proc.returncode, proc.stdout) == (2, "")
    assert proc.stderr == f"kmirror: error: cannot run helm: {plain}: not executable (chmod +x it, or install helm, or name it with --helm PATH)\n"


@pytest.mark.parametrize("helm", HELMS)
def test_kmirror_helm_hides_every_set_value_in_helms_error_output(helm: str, tmp_path: Path) -> None:
    chart = tmp_path / "pinned"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: pinned\nversion: 0.1.0\n")
    (chart / "templates" / "cm.yaml").write_text('{{ fail (printf "pin %v, user %v, token %v are wrong" .Values.pin .Values.user .Values.token) }}\n')
    sets = ["--set", "pin=123", "--set", "user=al,token=s3cr3t-token"]
    proc = run(["kmirror", "helm", str(chart), *sets, "--config", str(RULES), "--helm", tool(helm)], helm_env(tmp_path))
    assert (proc.returncode, proc.stdout) == (2, "")
    first, *rest = proc.stderr.splitlines()
    assert first == f"kmirror: error: helm failed: {tool(helm)} template release-name {chart} --set 'pin=***' --set 'user=***': exit code 1:"
    shown = "\n".join(rest)
    assert "pin ***, user ***, token *** are wrong" in shown
    assert "templates/cm.yaml:1:" in shown  # helm's position survives: short values are hidden where they stand alone
    assert "s3cr3t" not in proc.stderr
    assert not re.search(r"\b(123|al)\b", proc.stderr.replace(str(tmp_path), "")), proc.stderr


# -- Helm 3: kmirror as the exec post-renderer ------------------------------------------


def test_helm3_exec_post_renderer(tmp_path: Path) -> None:
    env = helm_env(tmp_path)
    helm3 = tool("helm3")
    raw = ok([helm3, "template", "rel", "demo", "--include-crds"], env)
    out = ok([helm3, "template", "rel", "demo", "--include-crds", "--post-renderer", "kmirror",
              "--post-renderer-args=--config", f"--post-renderer-args={RULES}"], env)
    # Templates and CRDs are post-rendered; Helm 3 appends hooks untouched (helm/helm#7891).
    assert out == mirrored(raw, TEMPLATES, CRDS)
    for hook_image in HOOKS:
        assert hook_image in out


def test_helm3_exec_post_renderer_failure(tmp_path: Path) -> None:
    proc = run([tool("helm3"), "template", "rel", "demo", "--post-renderer", "kmirror",
                "--post-renderer-args=--config", "--post-renderer-args=missing.yaml"], helm_env(tmp_path))
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert "error while running post render" in proc.stderr
    assert "kmirror: error: cannot read config: missing.yaml: no such file" in proc.stderr


# -- Helm 4: the postrenderer/v1 plugin --------------------------------------------------


def images_of(text: str) -> list[str]:
    return sorted(line.split(":", 1)[1].strip().strip("'\"").split(" ")[0] for line in text.splitlines() if line.strip().startswith(("image:", "default:")))


def test_helm4_post_renderer_plugin(tmp_path: Path) -> None:
    env = helm_env(tmp_path)
    helm4 = tool("helm4")
    install_plugin("helm4", "kmirror", env)
    env = post_renderers(env)
    assert plugin_list("helm4", env)["kmirror-postrenderer"][:2] == [PLUGIN_VERSION, "postrenderer/v1"]
    raw = ok([helm4, "template", "rel", "demo", "--include-crds"], env)
    argv = [helm4, "template", "rel", "demo", "--include-crds", "--post-renderer", "kmirror-postrenderer"]
    out = ok([*argv, "--post-renderer-args=--config", f"--post-renderer-args={RULES}"], env)
    # Hooks are post-rendered on Helm 4; CRDs from crds/ are not.
    assert images_of(out) == images_of(mirrored(raw, TEMPLATES, HOOKS))
    # kmirror kept Helm's filename annotations: every document keeps its template's name.
    assert "generated-by-postrender" not in out
    assert "# Source: demo/templates/tests/test-connection.yaml" in out
    # Configured through the environment instead of arguments.
    assert ok(argv, {**env, "KMIRROR_CONFIG": str(RULES)}) == out


def test_helm4_post_renderer_failure_is_logged(tmp_path: Path) -> None:
    env = helm_env(tmp_path)
    install_plugin("helm4", "kmirror", env)
    env = post_renderers(env)
    argv = [tool("helm4"), "template", "rel", "demo", "--post-renderer", "kmirror-postrenderer"]
    proc = run([*argv, "--post-renderer-args=--config", "--post-renderer-args=missing.yaml"], env)
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert 'failed to invoke post-renderer plugin "kmirror-postrenderer"' in proc.stderr
    message = "kmirror: error: cannot read config: missing.yaml: no such file"
    # Helm 4 hides the plugin's stderr: the message reaches helm's stderr (a pipe here) and the log.
    assert message in proc.stderr
    log = tmp_path / "state" / "kmirror" / "post-renderer.log"
    assert message in log.read_text()
    # --strict with blocked references left: the log named by KMIRROR_ERROR_LOG.
    rules = tmp_path / "rules.yaml"
    rules.write_text("mirrors: []\nblocked: [quay.io]\n")
    chosen = tmp_path / "errors.log"
    proc = run([*argv, "--post-renderer-args=--strict", "--post-renderer-args=--config", f"--post-renderer-args={rules}"],
               {**env, "KMIRROR_ERROR_LOG": str(chosen)})
    assert proc.returncode == 1
    assert "KM001 quay.io/prometheus/node-exporter:v1.6.0 is on blocked registry quay.io" in chosen.read_text()


# -- the CLI plugin: helm kmirror template|install|upgrade -------------------------------


class _FakeCluster(BaseHTTPRequestHandler):
    """Read-only answers for helm's discovery calls: versions, resource kinds, no objects."""

    groups = {
        "apps/v1": [("deployments", "Deployment")],
        "batch/v1": [("jobs", "Job"), ("cronjobs", "CronJob")],
        "apiextensions.k8s.io/v1": [("customresourcedefinitions", "CustomResourceDefinition")],
    }

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        path = self.path.split("?")[0]
        body: dict[str, object]
        if path == "/version":
            body = {"major": "1", "minor": "31", "gitVersion": "v1.31.0", "platform": "linux/amd64"}
        elif path == "/api":
            body = {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []}
        elif path == "/api/v1":
            body = self._resources("v1", [("pods", "Pod"), ("configmaps", "ConfigMap"), ("secrets", "Secret")])
        elif path == "/apis":
            body = {"kind": "APIGroupList", "apiVersion": "v1", "groups": [
                {"name": gv.split("/")[0], "versions": [{"groupVersion": gv, "version": gv.split("/")[1]}],
                 "preferredVersion": {"groupVersion": gv, "version": gv.split("/")[1]}} for gv in self.groups]}
        elif path.startswith("/apis/") and path[6:] in self.groups:
            body = self._resources(path[6:], self.groups[path[6:]])
        elif path.endswith("/secrets"):
            body = {"kind": "SecretList", "apiVersion": "v1", "metadata": {}, "items": []}
        else:
            body = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404}
        data = json.dumps(body).encode()
        self.send_response(404 if body.get("code") == 404 else 200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    @staticmethod
    def _resources(group_version: str, kinds: list[tuple[str, str]]) -> dict[str, object]:
        verbs = ["create", "delete", "get", "list", "patch", "update", "watch"]
        resources = [{"name": n, "singularName": "", "namespaced": True, "kind": k, "verbs": verbs} for n, k in kinds]
        return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": resources}

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def fake_cluster(tmp_path: Path) -> Iterator[Path]:
    """A kubeconfig pointing at a local read-only API server (for --dry-run=client)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FakeCluster)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    config = tmp_path / "kubeconfig"
    config.write_text(
        "apiVersion: v1\nkind: Config\n"
        f"clusters: [{{name: fake, cluster: {{server: 'http://127.0.0.1:{server.server_port}'}}}}]\n"
        "users: [{name: fake, user: {}}]\n"
        "contexts: [{name: fake, context: {cluster: fake, user: fake}}]\ncurrent-context: fake\n"
    )
    yield config
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("helm", HELMS)
def test_cli_plugin_template(helm: str, tmp_path: Path) -> None:
    env = helm_env(tmp_path)
    install_plugin(helm, "kmirror", env)
    raw = ok([tool(helm), "template", "rel", "demo", "-n", "team-a"], env)
    out = ok([tool(helm), "kmirror", "--config", str(RULES), "template", "rel", "demo", "-n", "team-a"], env)
    # The whole output, hooks included, on both versions; helm kept -n for itself and
    # passed it on through HELM_NAMESPACE.
    assert out == mirrored(raw, TEMPLATES, HOOKS)
    assert "namespace: team-a" in out


@pytest.mark.parametrize("helm", HELMS)
def test_cli_plugin_failures(helm: str, tmp_path: Path) -> None:
    env = helm_env(tmp_path)
    install_plugin(helm, "kmirror", env)
    proc = run([tool(helm), "kmirror", "template", "rel", "no-such-chart"], env)
    assert proc.returncode != 0
    assert proc.stdout == ""
    assert "no-such-chart" in proc.stderr
    proc = run([tool(helm), "kmirror", "--config", "missing.yaml", "template", "rel", "demo"], env)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert "kmirror: error: cannot read config: missing.yaml: no such file" in proc.stderr


@pytest.mark.parametrize("helm", HELMS)
@pytest.mark.parametrize("action", [["install"], ["upgrade", "--install"]])
def test_cli_plugin_install_and_upgrade(helm: str, action: list[str], tmp_path: Path, fake_cluster: Path) -> None:
    env = {**helm_env(tmp_path), "KUBECONFIG": str(fake_cluster)}
    install_plugin(helm, "kmirror", env)
    argv = [tool(helm), "kmirror", "--config", str(RULES), *action, "rel", "demo", "--dry-run=client", "--disable-openapi-validation"]
    proc = run(argv, env)
    assert proc.returncode == 0, proc.stderr
    hooks = [f"registry.k8s.io/e2e-test-images/busybox@{DIGEST}", "busybox:1.36"]
    if helm == "helm4":
        hooks = [f"mirror.example/registry.k8s.io/e2e-test-images/busybox@{DIGEST}", "mirror.example/docker.io/library/busybox:1.36"]
    # Helm 3 never passes hooks to a post-renderer; Helm 4 does.
    assert images_of(proc.stdout) == sorted([*TEMPLATES.values(), *hooks])
    if helm == "helm3":
        assert "Helm 3 does not pass hooks to post-renderers" in proc.stderr
    # A failing post-render fails the command, with kmirror's own message.
    failing = [a if a != str(RULES) else "missing.yaml" for a in argv]
    proc = run(failing, env)
    assert proc.returncode != 0
    assert "kmirror: error: cannot read config: missing.yaml: no such file" in proc.stderr


# -- one plugin for both Helms: installed from a path or a package, listed by both ---------


def package(helm: str, tmp_path: Path, env: dict[str, str]) -> Path:
    """The kmirror plugin packaged for `helm`, as docs/helm.md says: Helm 4's own package, a flat tarball for Helm 3."""
    out = tmp_path / "dist"
    out.mkdir()
    if helm == "helm4":
        ok([tool("helm4"), "plugin", "package", str(PLUGINS / "kmirror"), "--sign=false", "-d", str(out)], env)
    else:
        subprocess.run(["tar", "-czf", str(out / f"kmirror-{PLUGIN_VERSION}.tgz"), "-C", str(PLUGINS / "kmirror"),
                        "plugin.yaml", "kmirror-plugin.sh", "postrender"], check=True)
    (made,) = out.iterdir()
    assert made.name == f"kmirror-{PLUGIN_VERSION}.tgz"
    return made


@contextmanager
def served(file: Path) -> Iterator[str]:
    """An http:// URL serving `file` as application/gzip (Helm 3 installs packages only from such URLs)."""
    handler = partial(_GzipFiles, directory=str(file.parent))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/{file.name}"
    finally:
        server.shutdown()
        server.server_close()


class _GzipFiles(SimpleHTTPRequestHandler):
    extensions_map = {".tgz": "application/gzip"}

    def log_message(self, *args: object) -> None:
        pass


@pytest.mark.parametrize("source", ["path", "package"])
@pytest.mark.parametrize("installer", HELMS)
def test_the_plugin_installed_by_either_helm_works_with_both(installer: str, source: str, tmp_path: Path) -> None:
    env = helm_env(tmp_path)
    installed = Path(env["HELM_PLUGINS"]) / "kmirror"
    if source == "path":
        install_plugin(installer, "kmirror", env)
        # A path install is a link into the clone (docs/helm.md says so).
        assert installed.is_symlink() and installed.resolve() == (PLUGINS / "kmirror").resolve()
    elif installer == "helm4":
        ok([tool("helm4"), "plugin", "install", str(package("helm4", tmp_path, env)), "--verify=false"], env)
        assert installed.is_dir() and not installed.is_symlink()
    else:
        with served(package("helm3", tmp_path, env)) as url:
            ok([tool("helm3"), "plugin", "install", url], env)
        assert installed.is_dir() and not installed.is_symlink()
    helm3_list, helm4_list = plugin_list("helm3", env), plugin_list("helm4", env)
    assert list(helm3_list) == list(helm4_list) == ["kmirror"]
    assert helm3_list["kmirror"][0] == PLUGIN_VERSION and helm4_list["kmirror"][:2] == [PLUGIN_VERSION, "cli/v1"]
    listed = plugin_list("helm4", post_renderers(env))
    assert listed["kmirror-postrenderer"][:2] == [PLUGIN_VERSION, "postrenderer/v1"]
    # Every way in: helm kmirror on both, and Helm 4's post-renderer by name; the same images.
    outputs = [ok([tool(helm), "kmirror", "--config", str(RULES), "template", "rel", "demo"], env) for helm in HELMS]
    outputs.append(ok([tool("helm4"), "template", "rel", "demo", "--post-renderer", "kmirror-postrenderer",
                       "--post-renderer-args=--config", f"--post-renderer-args={RULES}"], post_renderers(env)))
    assert images_of(outputs[0]) == images_of(outputs[1]) == images_of(outputs[2])
    assert "mirror.example/docker.io/library/busybox:1.36" in outputs[2]


def test_helm3_refuses_every_plugin_when_a_helm4_post_renderer_is_in_its_folders(tmp_path: Path) -> None:
    # Why the post-renderers stay inside the plugin's postrender/ folder, off Helm 3's HELM_PLUGINS.
    env = helm_env(tmp_path)
    install_plugin("helm3", "kmirror", env)
    proc = run([tool("helm3"), "plugin", "list"], post_renderers(env))
    assert proc.returncode == 1
    assert 'unknown field "apiVersion"' in proc.stderr


def test_plugin_scripts_are_executable() -> None:
    for script in (PLUGINS / "kmirror" / "kmirror-plugin.sh", PLUGINS / "kmirror" / "postrender" / "kmirror-postrenderer" / "postrender.sh"):
        assert os.access(script, os.X_OK), script


def broken_chart(tmp_path: Path) -> Path:
    chart = tmp_path / "broken"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: broken\nversion: 0.1.0\n")
    (chart / "templates" / "cm.yaml").write_text('{{ fail "the chart says no" }}\n')
    return chart


@pytest.mark.parametrize(
    ("helm", "mode"),
    [("helm3", "post-renderer"), ("helm4", "post-renderer"), ("helm3", "cli-template"), ("helm4", "cli-template"),
     ("helm3", "cli-install"), ("helm4", "cli-install")],
)
def test_a_failed_render_fails_every_mode(helm: str, mode: str, tmp_path: Path, fake_cluster: Path) -> None:
    env = {**helm_env(tmp_path), "KUBECONFIG": str(fake_cluster)}
    chart = str(broken_chart(tmp_path))
    if mode == "post-renderer":
        plugin = "kmirror" if helm == "helm3" else "kmirror-postrenderer"
        if helm == "helm4":
            install_plugin(helm, "kmirror", env)
            env = post_renderers(env)
        argv = [tool(helm), "template", "rel", chart, "--post-renderer", plugin]
    else:
        install_plugin(helm, "kmirror", env)
        action = ["template"] if mode == "cli-template" else ["install", "--dry-run=client", "--disable-openapi-validation"]
        argv = [tool(helm), "kmirror", "--config", str(RULES), *action, "rel", chart]
    proc = run(argv, {**env, "KMIRROR_CONFIG": str(RULES)})
    assert proc.returncode != 0
    assert "the chart says no" in proc.stderr
    assert "image" not in proc.stdout


# -- docs/helm.md: its commands work as written ------------------------------------------

DOCS = REPO / "docs" / "helm.md"
# Commands that need the network, a cluster, or a second copy of an installed plugin.
_NOT_HERE = ("https://", "oci://", "git clone", " install web", " upgrade web", "upgrade --install", "--verify=false", "tail -n")


def doc_commands(helm: str) -> list[str]:
    """The shell lines of docs/helm.md that can run here with `helm` being Helm 3 or 4."""
    commands: list[str] = []
    section, block = "", False
    for line in DOCS.read_text().splitlines():
        if line.startswith("## "):
            section = line
        elif line.startswith("```"):
            block = line == "```sh"
        elif block and line and not any(skip in line for skip in _NOT_HERE):
            if ("Helm 3" in section and helm != "helm3") or ("Helm 4" in section and helm != "helm4"):
                continue
            commands.append(line.replace("| kubectl apply -f -", "> /dev/null"))
    return commands


@pytest.mark.parametrize("helm", HELMS)
def test_docs_commands_run(helm: str, tmp_path: Path) -> None:
    env = helm_env(tmp_path)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "helm").symlink_to(tool(helm))
    env["PATH"] = f"{bin_dir}{os.pathsep}{env['PATH']}"
    sandbox = tmp_path / "work"
    sandbox.mkdir()
    shutil.copytree(DEMO, sandbox / "chart")
    shutil.copytree(DEMO, sandbox / "vendor" / "chart")
    (sandbox / "kmirror").symlink_to(REPO)
    (sandbox / "prod-values.yaml").write_text("sidecar:\n  image: quay.io/example/side:1\n")
    for name in ("mirrors.yaml", ".kmirror.yaml"):
        shutil.copy(RULES, sandbox / name)
    commands = doc_commands(helm)
    assert len(commands) >= 7
    for command in commands:
        proc = run(["bash", "-c", f"set -o pipefail; {command}"], env, cwd=sandbox)
        allowed = (0, 1) if command.startswith("kmirror chart") else (0,)  # 1: hard-coded images left
        assert proc.returncode in allowed, f"{command}\n{proc.stderr}"
    assert "mirror.example/quay.io/example/side:1" in (sandbox / "web.yaml").read_text()
    assert "mirror.example" in (sandbox / "mirror-values.yaml").read_text()
