"""kmirror with kustomize: `kmirror kustomize`, the legacy exec plugin, `images --format kustomize`.

End to end with the real, pinned `kubectl kustomize` (tools.py) on the overlays in
fixtures/kustomize/. Each subprocess gets a PATH holding only the tools the test names
(symbolic links in a temporary folder), so that another kubectl or kustomize on the
machine cannot stand in for the pinned one. Expected outputs are in fixtures/kustomize/expected/.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from tools import tool

from rewriter.config import parse_config
from rewriter.errors import KmirrorError
from rewriter.kustomize import Entry, Placed, apply_entries, build_command, images_list, split
from rewriter.pipeline import process
from rewriter.plugin import PLUGIN_PATH, plugin_root, plugin_script, transform

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "fixtures" / "kustomize"
EXPECTED = FIXTURES / "expected"
KMIRROR = str(Path(sys.executable).parent / "kmirror")
RULES = (FIXTURES / "rules.yaml").read_text(encoding="utf-8")


@pytest.fixture
def work(tmp_path: Path) -> Path:
    """A private copy of fixtures/kustomize (kustomize leaks temporary files on plugin failures)."""
    copy = tmp_path / "kustomize"
    shutil.copytree(FIXTURES, copy)
    return copy


def _env(tmp_path: Path, *tools: str, **extra: str) -> dict[str, str]:
    """An environment whose PATH holds only `tools` (the pinned ones) and kmirror's folder."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for name in tools:
        link = bin_dir / name
        if not link.exists():
            link.symlink_to(tool(name))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KUSTOMIZE_", "XDG_", "KMIRROR_"))}
    env.update(PATH=f"{bin_dir}{os.pathsep}{Path(KMIRROR).parent}", TMPDIR=str(tmp_path), HOME=str(tmp_path / "home"))
    env.update(extra)
    return env


def _run(argv: list[str], env: dict[str, str], cwd: Path | None = None, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(argv, input=stdin, capture_output=True, env=env, cwd=cwd, timeout=120, check=False)


def _ok(result: subprocess.CompletedProcess[bytes]) -> bytes:
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout


def _install_plugin(env: dict[str, str]) -> Path:
    _ok(_run([KMIRROR, "install-kustomize-plugin"], env))
    return plugin_root(env) / PLUGIN_PATH


# --- the build command -------------------------------------------------------------------------


def _which(found: dict[str, str]):  # type: ignore[no-untyped-def]
    return lambda name: found.get(name)


def test_build_prefers_a_standalone_kustomize() -> None:
    which = _which({"kustomize": "/opt/kustomize", "kubectl": "/usr/bin/kubectl"})
    assert build_command("app", False, None, [], which) == ["/opt/kustomize", "build", "app"]


def test_build_falls_back_to_kubectl() -> None:
    which = _which({"kubectl": "/usr/bin/kubectl"})
    assert build_command("app", False, None, [], which) == ["/usr/bin/kubectl", "kustomize", "app"]


def test_build_with_kustomize_option_helm_and_extra_arguments_in_order() -> None:
    which = _which({"kustomize": "/opt/kustomize"})
    command = build_command("app", True, "/x/kustomize-5.4", ["--load-restrictor", "LoadRestrictionsNone"], which)
    assert command == ["/x/kustomize-5.4", "build", "app", "--enable-helm", "--load-restrictor", "LoadRestrictionsNone"]


def test_build_without_any_kustomize_is_an_error() -> None:
    with pytest.raises(KmirrorError, match=r"cannot render: app: neither kustomize nor kubectl is on PATH"):
        build_command("app", False, None, [], _which({}))


# --- kmirror kustomize, end to end with kubectl --------------------------------------------------


def test_kustomize_command_builds_with_kubectl_and_rewrites(work: Path, tmp_path: Path) -> None:
    env = _env(tmp_path, "kubectl")
    out = _ok(_run([KMIRROR, "kustomize", "overlays/prod", "--config", "rules.yaml"], env, cwd=work))
    assert out == (EXPECTED / "prod.yaml").read_bytes()


def test_kustomize_command_equals_the_pipe_filter(work: Path, tmp_path: Path) -> None:
    env = _env(tmp_path, "kubectl")
    rendered = _ok(_run(["kubectl", "kustomize", "overlays/prod"], env, cwd=work))
    piped = _ok(_run([KMIRROR, "--config", "rules.yaml"], env, cwd=work, stdin=rendered))
    assert piped == (EXPECTED / "prod.yaml").read_bytes()


def test_kustomize_command_enable_helm_and_extra_arguments(work: Path, tmp_path: Path) -> None:
    # kustomize v5.7.1 runs `helm version -c`, which Helm 4 rejects: name Helm 3 after --.
    env = _env(tmp_path, "kubectl", "helm3")
    argv = [KMIRROR, "kustomize", "helm", "--enable-helm", "-c", "rules.yaml", "--", "--helm-command", "helm3"]
    assert _ok(_run(argv, env, cwd=work)) == (EXPECTED / "helm.yaml").read_bytes()


def test_kustomize_command_uses_kustomize_on_path_then_kustomize_option(work: Path, tmp_path: Path) -> None:
    # A stand-in for a standalone kustomize (none is installable here): it logs its argv and
    # forwards `build DIR ARGS...` to the pinned `kubectl kustomize DIR ARGS...`.
    log = tmp_path / "argv.log"
    shim = tmp_path / "shim" / "kustomize"
    shim.parent.mkdir()
    shim.write_text(f'#!/bin/sh\necho "$0 $*" >> {log}\n[ "$1" = build ] || exit 64\nshift\nexec {tool("kubectl")} kustomize "$@"\n')
    shim.chmod(0o755)
    env = _env(tmp_path, "kubectl")
    env["PATH"] = f"{shim.parent}{os.pathsep}{env['PATH']}"
    assert _ok(_run([KMIRROR, "kustomize", "overlays/prod", "-c", "rules.yaml"], env, cwd=work)) == (EXPECTED / "prod.yaml").read_bytes()
    renamed = shim.rename(tmp_path / "kustomize-v5")
    env = _env(tmp_path, "kubectl")
    argv = [KMIRROR, "kustomize", "overlays/prod", "-c", "rules.yaml", "--kustomize", str(renamed)]
    assert _ok(_run(argv, env, cwd=work)) == (EXPECTED / "prod.yaml").read_bytes()
    assert log.read_text().splitlines() == [f"{shim} build overlays/prod", f"{renamed} build overlays/prod"]


def test_failed_build_shows_command_exit_code_and_indented_stderr(work: Path, tmp_path: Path) -> None:
    env = _env(tmp_path, "kubectl")
    result = _run([KMIRROR, "kustomize", "missing", "-c", "rules.yaml"], env, cwd=work)
    assert result.returncode == 2
    assert result.stdout == b""
    lines = result.stderr.decode().splitlines()
    kubectl = str(tmp_path / "bin" / "kubectl")
    assert lines[0] == f"kmirror: error: kustomize failed: {kubectl} kustomize missing: exit code 1:"
    assert lines[1].startswith("    error: ") and "missing" in lines[1]


def test_build_warnings_are_passed_on_with_control_characters_escaped(work: Path, tmp_path: Path) -> None:
    fake = tmp_path / "warning-kustomize"
    fake.write_text("#!/bin/sh\nprintf 'image: nginx:1.25\\n'\nprintf 'Warning: \\033[2Kredone\\rx\\n  second line\\n' >&2\n")
    fake.chmod(0o755)
    result = _run([KMIRROR, "kustomize", "base", "-c", "rules.yaml", "--kustomize", str(fake)], _env(tmp_path), cwd=work)
    assert result.returncode == 0, result.stderr
    assert result.stderr.decode() == "Warning: \\x1b[2Kredone\\rx\n  second line\n"


def test_missing_kustomize_executable(work: Path, tmp_path: Path) -> None:
    env = _env(tmp_path, "kubectl")
    result = _run([KMIRROR, "kustomize", "base", "-c", "rules.yaml", "--kustomize", str(tmp_path / "nope")], env, cwd=work)
    assert (result.returncode, result.stdout) == (2, b"")
    assert result.stderr.decode() == f"kmirror: error: cannot run kustomize: {tmp_path / 'nope'}: not found (install kustomize or kubectl, or fix --kustomize)\n"


def test_kustomize_executable_that_may_not_be_run(work: Path, tmp_path: Path) -> None:
    env = _env(tmp_path, "kubectl")
    plain = tmp_path / "kustomize-download"
    plain.write_text("#!/bin/sh\n")
    plain.chmod(0o644)
    result = _run([KMIRROR, "kustomize", "base", "-c", "rules.yaml", "--kustomize", str(plain)], env, cwd=work)
    assert (result.returncode, result.stdout) == (2, b"")
    assert result.stderr.decode() == f"kmirror: error: cannot run kustomize: {plain}: not executable (chmod +x it, or install kustomize or kubectl, or fix --kustomize)\n"


def test_kustomize_command_strict_writes_nothing_when_blocked_references_remain(work: Path, tmp_path: Path) -> None:
    (work / "strict.yaml").write_text(RULES + "blocked: [k8s.gcr.io, registry.k8s.io, docker.io, quay.io, ghcr.io]\n")
    env = _env(tmp_path, "kubectl")
    result = _run([KMIRROR, "kustomize", "base", "-c", "strict.yaml", "--strict"], env, cwd=work)
    assert (result.returncode, result.stdout) == (1, b"")
    stderr = result.stderr.decode()
    assert "KM001 ghcr.io/example/app:1.0 is on blocked registry ghcr.io (no rule)" in stderr
    assert "nothing written (--strict)" in stderr


# --- the legacy exec transformer plugin ----------------------------------------------------------


def test_plugin_root_follows_kustomizes_search_order(tmp_path: Path) -> None:
    assert plugin_root({"KUSTOMIZE_PLUGIN_HOME": f"/a{os.pathsep}/b", "XDG_CONFIG_HOME": "/x", "HOME": "/h"}) == Path("/a")
    assert plugin_root({"XDG_CONFIG_HOME": "/x", "HOME": "/h"}) == Path("/x/kustomize/plugin")
    assert plugin_root({"HOME": "/h"}) == Path("/h/.config/kustomize/plugin")
    with pytest.raises(KmirrorError, match="cannot install"):
        plugin_root({})


def test_install_writes_an_executable_at_the_plugin_path(tmp_path: Path) -> None:
    env = _env(tmp_path, "kubectl", XDG_CONFIG_HOME=str(tmp_path / "xdg"))
    result = _run([KMIRROR, "install-kustomize-plugin"], env)
    target = tmp_path / "xdg" / "kustomize" / "plugin" / "kmirror.dev" / "v1" / "imagemirror" / "ImageMirror"
    assert (result.returncode, result.stdout, result.stderr.decode()) == (0, b"", f"installed {target}\n")
    assert os.access(target, os.X_OK)
    interpreter = Path(KMIRROR).read_text().splitlines()[0].removeprefix("#!")  # the one kmirror runs on
    assert target.read_text() == plugin_script(interpreter)
    assert _run([KMIRROR, "install-kustomize-plugin"], env).returncode == 0  # again: replaced in place


def test_plugin_with_inline_rules_under_kubectl_kustomize(work: Path, tmp_path: Path) -> None:
    env = _env(tmp_path, "kubectl", XDG_CONFIG_HOME=str(tmp_path / "xdg"))
    _install_plugin(env)
    out = _ok(_run(["kubectl", "kustomize", "--enable-alpha-plugins", "plugin-inline"], env, cwd=work))
    assert out == (EXPECTED / "base.yaml").read_bytes()


def test_plugin_with_rules_file_under_kubectl_kustomize(work: Path, tmp_path: Path) -> None:
    env = _env(tmp_path, "kubectl", KUSTOMIZE_PLUGIN_HOME=str(tmp_path / "plugins"))
    assert _install_plugin(env).is_relative_to(tmp_path / "plugins")
    out = _ok(_run(["kubectl", "kustomize", "--enable-alpha-plugins", "plugin-file"], env, cwd=work))
    assert out == (EXPECTED / "prod.yaml").read_bytes()


def test_plugin_under_kmirror_kustomize_with_alpha_plugins_after_dashes(work: Path, tmp_path: Path) -> None:
    env = _env(tmp_path, "kubectl", XDG_CONFIG_HOME=str(tmp_path / "xdg"))
    _install_plugin(env)
    argv = [KMIRROR, "kustomize", "plugin-file", "--config", "rules.yaml", "--strict", "--", "--enable-alpha-plugins"]
    assert _ok(_run(argv, env, cwd=work)) == (EXPECTED / "prod.yaml").read_bytes()


def test_plugin_failure_reaches_the_kustomize_user(work: Path, tmp_path: Path) -> None:
    env = _env(tmp_path, "kubectl", XDG_CONFIG_HOME=str(tmp_path / "xdg"))
    _install_plugin(env)
    (work / "plugin-inline" / "mirror.yaml").write_text(
        "apiVersion: kmirror.dev/v1\nkind: ImageMirror\nmetadata: {name: mirror}\nspec:\n  blocked: [quay.io]\n"
    )
    result = _run(["kubectl", "kustomize", "--enable-alpha-plugins", "plugin-inline"], env, cwd=work)
    assert (result.returncode, result.stdout) == (1, b"")
    stderr = result.stderr.decode()
    assert "ImageMirror: Deployment/web: spec.template.spec.containers[1].image: KM001 quay.io/prometheus/node-exporter:v1.7.0 is on blocked registry quay.io (no rule)" in stderr
    assert "kmirror: 2 image references cannot be mirrored; see above" in stderr


def test_plugin_config_error_reaches_the_kustomize_user(work: Path, tmp_path: Path) -> None:
    env = _env(tmp_path, "kubectl", XDG_CONFIG_HOME=str(tmp_path / "xdg"))
    _install_plugin(env)
    (work / "plugin-inline" / "mirror.yaml").write_text(
        "apiVersion: kmirror.dev/v1\nkind: ImageMirror\nmetadata: {name: mirror}\nspec:\n  mirrors:\n    - from: quay.io\n"
    )
    result = _run(["kubectl", "kustomize", "--enable-alpha-plugins", "plugin-inline"], env, cwd=work)
    assert result.returncode == 1
    assert "kmirror: error: invalid config: mirrors[0]: missing key 'to' (or 'keep: true')" in result.stderr.decode()


def test_kubectl_needs_enable_alpha_plugins_for_the_plugin(work: Path, tmp_path: Path) -> None:
    env = _env(tmp_path, "kubectl", XDG_CONFIG_HOME=str(tmp_path / "xdg"))
    _install_plugin(env)
    result = _run(["kubectl", "kustomize", "plugin-inline"], env, cwd=work)
    assert result.returncode == 1
    assert "external plugins disabled; unable to load external plugin 'ImageMirror'" in result.stderr.decode()


KUSTOMIZE_INPUT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  annotations:
    config.kubernetes.io/index: '0'
    config.kubernetes.io/path: deploy.yaml
    internal.config.kubernetes.io/id: '1'
    kustomize.config.k8s.io/id: |
      group: apps
      kind: Deployment
      name: web
      version: v1
  name: web
spec:
  template:
    spec:
      containers:
      - image: k8s.gcr.io/pause:3.9
        name: a
"""

INLINE_CONFIG = """\
apiVersion: kmirror.dev/v1
kind: ImageMirror
metadata:
  name: mirror
spec:
  mirrors:
  - from: k8s.gcr.io
    to: mirror.example.com/k8s
"""


def test_plugin_keeps_kustomize_annotations_byte_for_byte() -> None:
    outcome = transform(INLINE_CONFIG, "config", KUSTOMIZE_INPUT.encode())
    assert outcome.output == KUSTOMIZE_INPUT.replace("k8s.gcr.io/pause", "mirror.example.com/k8s/pause").encode()


def test_plugin_reads_a_rules_file_relative_to_the_working_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "rules.yaml").write_text(RULES)
    monkeypatch.chdir(tmp_path)
    config = INLINE_CONFIG.split("spec:")[0] + "spec:\n  configFile: rules.yaml\n"
    outcome = transform(config, "config", KUSTOMIZE_INPUT.encode())
    assert b"image: mirror.example.com/k8s/pause:3.9" in outcome.output



@pytest.mark.parametrize(
    ("config", "message"),
    [
        ("apiVersion: v1\nkind: ConfigMap\n", "invalid config: transformer config: expected apiVersion kmirror.dev/v1, kind ImageMirror; got apiVersion v1, kind ConfigMap"),
        ("apiVersion: kmirror.dev/v1\nkind: ImageMirror\n", "invalid config: spec: missing: give the rules inline"),
        ("apiVersion: kmirror.dev/v1\nkind: ImageMirror\nspec: [a]\n", "invalid config: spec: expected a mapping (in transformer config ImageMirror/(unnamed), line 3)"),
        ("apiVersion: kmirror.dev/v1\nkind: ImageMirror\nspecs: {}\n", "invalid config: specs: unknown key (known: apiVersion, kind, metadata, spec)"),
        ("apiVersion: kmirror.dev/v1\nkind: ImageMirror\nspec:\n  configFile: r.yaml\n  preset: ustc\n", "spec.configFile: cannot be combined with inline rules (preset)"),
        ("apiVersion: kmirror.dev/v1\nkind: ImageMirror\nspec:\n  configFile: does-not-exist.yaml\n", "cannot read config: does-not-exist.yaml: no such file"),
        # The line is the config's own: the spec is validated in place.
        ("apiVersion: kmirror.dev/v1\nkind: ImageMirror\nmetadata:\n  name: m\nspec:\n  mirrors:\n  - from: quay.io\n", "(in transformer config ImageMirror/m spec, line 7)"),
    ],
)
def test_plugin_config_errors(config: str, message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(KmirrorError) as caught:
        transform(config, "transformer config", KUSTOMIZE_INPUT.encode())
    assert message in str(caught.value)


def test_plugin_main_contract(tmp_path: Path) -> None:
    config = tmp_path / "kust-plugin-config-1"
    config.write_text(INLINE_CONFIG)
    env = _env(tmp_path)
    result = _run([sys.executable, "-P", "-m", "rewriter.plugin", str(config)], env, stdin=KUSTOMIZE_INPUT.encode())
    assert (result.returncode, result.stderr) == (0, b"")
    assert result.stdout.decode() == KUSTOMIZE_INPUT.replace("k8s.gcr.io/pause", "mirror.example.com/k8s/pause")
    result = _run([sys.executable, "-P", "-m", "rewriter.plugin"], env)
    assert (result.returncode, result.stdout) == (2, b"")
    assert result.stderr.decode() == "kmirror: error: usage: ImageMirror CONFIG_FILE: kustomize runs this plugin with one argument, got 0\n"


# --- the images: list ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "parts"),
    [
        ("nginx", ("nginx", "", "")),
        ("nginx:1.25", ("nginx", "1.25", "")),
        ("nginx@sha256:abc", ("nginx", "", "sha256:abc")),
        ("nginx:1.25@sha256:abc", ("nginx", "1.25", "sha256:abc")),
        ("localhost:5000/a/b", ("localhost:5000/a/b", "", "")),
        ("localhost:5000/a/b:v1", ("localhost:5000/a/b", "v1", "")),
        ("quay.io/a/b@sha256:abc", ("quay.io/a/b", "", "sha256:abc")),
    ],
)
def test_split_like_kustomize(value: str, parts: tuple[str, str, str]) -> None:
    assert split(value) == parts


@pytest.mark.parametrize(
    ("value", "entry", "result"),
    [
        ("nginx:1.25", Entry("nginx", "m/nginx"), "m/nginx:1.25"),
        ("nginx", Entry("nginx", "m/nginx"), "m/nginx"),
        ("nginx:1.25@sha256:abc", Entry("nginx", "m/nginx"), "m/nginx:1.25@sha256:abc"),
        ("nginx:1.25@sha256:abc", Entry("nginx", "m/nginx", new_tag="1.26"), "m/nginx:1.26"),
        ("nginx:1.25", Entry("nginx", "m/nginx", digest="sha256:def"), "m/nginx@sha256:def"),
        ("nginx:1.25", Entry("nginx", "m/nginx", "1.26", "sha256:def"), "m/nginx:1.26@sha256:def"),
        ("nginx-extra:1.25", Entry("nginx", "m/nginx"), "nginx-extra:1.25"),  # names match whole
        ("docker.io/library/nginx:1", Entry("nginx", "m/nginx"), "docker.io/library/nginx:1"),  # as written
    ],
)
def test_apply_entries_like_kustomize(value: str, entry: Entry, result: str) -> None:
    assert apply_entries(value, [entry]) == result


def _listed(text: str, rules: str = RULES):  # type: ignore[no-untyped-def]
    outcome = process(text.encode(), "in.yaml", parse_config(rules, "rules.yaml"))
    return images_list(Placed("in.yaml", image) for image in outcome.images)


POD = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n{}"


def _pod(*images: str) -> str:
    return POD.replace("{}", "".join(f"  - {{name: c{i}, image: {image}}}\n" for i, image in enumerate(images)))


def test_images_list_entries_are_per_written_name_and_sorted() -> None:
    listed = _listed(_pod("nginx:1.25", "nginx:1.24", "docker.io/library/nginx:1.25", "ghcr.io/x/y:1"))
    assert listed.to_yaml() == (
        'images:\n'
        '- name: "docker.io/library/nginx"\n  newName: "mirror.example.com/hub/library/nginx"\n'
        '- name: "nginx"\n  newName: "mirror.example.com/hub/library/nginx"\n'
    )


def test_images_list_sets_tag_or_digest_only_when_the_rule_changes_them() -> None:
    rules = "mirrors:\n  - from: docker.io/library/nginx:1.16\n    to: mirror.example.com/nginx:1.16-patched\n"
    assert _listed(_pod("nginx:1.16"), rules).entries == (Entry("nginx", "mirror.example.com/nginx", "1.16-patched"),)


def test_images_list_refuses_rules_that_depend_on_the_tag() -> None:
    rules = "mirrors:\n  - from: docker.io/library/nginx:1.16\n    to: mirror.example.com/nginx\n"
    with pytest.raises(KmirrorError) as caught:
        _listed(_pod("nginx:1.16", "nginx:1.17"), rules)
    assert "cannot express the rules as a kustomize images list" in str(caught.value)
    assert "in.yaml:7:23: nginx:1.17: kustomize would give mirror.example.com/nginx:1.17, the rules give nginx:1.17" in str(caught.value)


def test_images_list_empty() -> None:
    assert _listed(_pod("ghcr.io/x/y:1")).to_yaml() == "images: []\n"


def test_images_list_leaves_out_and_reports_what_kustomize_cannot_reach() -> None:
    text = "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\nspec:\n  image: quay.io/a/b:1\n"
    listed = _listed(text)
    assert listed.entries == ()
    assert [(p.image.location.text, p.image.location.path) for p in listed.unreached] == [("quay.io/a/b:1", "spec.image")]


def test_images_list_applied_by_kustomize_gives_kmirrors_own_rewrite(work: Path, tmp_path: Path) -> None:
    env = _env(tmp_path, "kubectl")
    rendered = _ok(_run(["kubectl", "kustomize", "base"], env, cwd=work))
    listed = _ok(_run([KMIRROR, "images", "--format", "kustomize", "-c", "rules.yaml", "-"], env, cwd=work, stdin=rendered))
    (work / "listed").mkdir()
    (work / "listed" / "kustomization.yaml").write_bytes(b"resources:\n- ../base\n" + listed)
    with_list = _ok(_run(["kubectl", "kustomize", "listed"], env, cwd=work))
    assert with_list == (EXPECTED / "base.yaml").read_bytes()


def test_images_list_notes_what_kustomize_leaves_alone(work: Path, tmp_path: Path) -> None:
    env = _env(tmp_path, "kubectl")
    rendered = _ok(_run(["kubectl", "kustomize", "overlays/prod"], env, cwd=work))
    result = _run([KMIRROR, "images", "--format", "kustomize", "-c", "rules.yaml", "-"], env, cwd=work, stdin=rendered)
    assert result.returncode == 0
    assert result.stderr.decode().splitlines() == [
        "kmirror: note: -:118:10: quay.io/example/widget:2.0 (Widget/prod-gadget spec.image) is not in containers/initContainers: kustomize's images transformer leaves it unchanged",
        "kmirror: note: -:121:22: registry.k8s.io/e2e-test-images/agnhost:2.47 (Widget/prod-gadget spec.runner.args[0]) is not in containers/initContainers: kustomize's images transformer leaves it unchanged",
    ]
    (work / "listed").mkdir()
    (work / "listed" / "kustomization.yaml").write_bytes(b"resources:\n- ../overlays/prod\n" + result.stdout)
    with_list = _ok(_run(["kubectl", "kustomize", "listed"], env, cwd=work)).decode()
    expected = (EXPECTED / "prod.yaml").read_text()
    # Identical but for the custom resource, which kustomize's transformer never visits.
    assert with_list == expected.replace("mirror.example.com/quay/example/widget:2.0", "quay.io/example/widget:2.0").replace(
        "mirror.example.com/k8s/e2e-test-images/agnhost:2.47", "registry.k8s.io/e2e-test-images/agnhost:2.47"
    )


# --- docs/kustomize.md -----------------------------------------------------------------------------

DOCS = (ROOT / "docs" / "kustomize.md").read_text(encoding="utf-8")
DOC_COMMANDS = [line.strip() for block in re.findall(r"```sh\n(.*?)```", DOCS, re.S) for line in block.splitlines() if line.strip()]
# What each documented command prints, when it is checked byte for byte.
DOC_OUTPUTS = {
    "kmirror kustomize fixtures/kustomize/overlays/prod --config fixtures/kustomize/rules.yaml": "prod.yaml",
    "kmirror kustomize fixtures/kustomize/helm --enable-helm --config fixtures/kustomize/rules.yaml -- --helm-command helm3": "helm.yaml",
    "kubectl kustomize --enable-alpha-plugins fixtures/kustomize/plugin-file": "prod.yaml",
    "kmirror kustomize fixtures/kustomize/plugin-file --config fixtures/kustomize/rules.yaml -- --enable-alpha-plugins": "prod.yaml",
}
# Run elsewhere: a standalone kustomize (tests/test_krm.py), a ResourceList file (tests/test_krm.py).
DOC_NOT_RUN_HERE = {
    "kustomize build --enable-alpha-plugins fixtures/kustomize/plugin-file",
    "kustomize build --enable-alpha-plugins --enable-exec fixtures/kustomize/function",
    "kmirror < resource-list.yaml",
}


def test_docs_commands_run_as_documented(tmp_path: Path) -> None:
    assert set(DOC_OUTPUTS) | DOC_NOT_RUN_HERE <= set(DOC_COMMANDS)
    shutil.copytree(FIXTURES, tmp_path / "fixtures" / "kustomize")
    env = _env(tmp_path, "kubectl", "helm3", XDG_CONFIG_HOME=str(tmp_path / "xdg"))
    outputs = {}
    for command in DOC_COMMANDS:
        if command in DOC_NOT_RUN_HERE:
            continue
        data = b""
        for stage in command.split(" | "):  # a pipeline, run stage by stage, without a shell
            data = _ok(_run(shlex.split(stage), env, cwd=tmp_path, stdin=data))
        outputs[command] = data
    for command, expected in DOC_OUTPUTS.items():
        assert outputs[command] == (EXPECTED / expected).read_bytes(), command
    listed = next(v for k, v in outputs.items() if "images --format kustomize" in k).decode()
    shown = re.search(r"```yaml\n(images:\n.*?)\.\.\.\n```", DOCS, re.S)
    assert shown is not None and listed.startswith(shown.group(1))


def test_docs_fixture_listings_are_the_fixtures() -> None:
    listings = re.findall(r"```yaml\n# (fixtures/\S+)[^\n]*\n(.*?)```", DOCS, re.S)
    assert len(listings) == 4
    for path, shown in listings:
        lines = (ROOT / path).read_text(encoding="utf-8").splitlines(keepends=True)
        while lines[0].startswith("#"):  # the fixture's own heading comment
            lines.pop(0)
        assert shown == "".join(lines), path
