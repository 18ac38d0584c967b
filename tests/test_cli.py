"""The command line as a user meets it: real `kmirror` processes, exit codes, stdout, stderr, files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

KMIRROR = str(Path(sys.executable).parent / "kmirror")
CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "corpus"

POD = b"""\
apiVersion: v1
kind: Pod
metadata:
  name: web  # the front end
spec:
  containers:
    - name: web
      image: nginx:1.16
    - name: proxy
      image: "k8s.gcr.io/kube-proxy:v1.18.0"
"""

RULES = """\
mirrors:
  - from: k8s.gcr.io
    to: registry.aliyuncs.com/google_containers
    flatten: true
  - from: docker.io
    to: hub.mirror.example
blocked: [k8s.gcr.io, docker.io]
"""

REWRITTEN = POD.replace(b"nginx:1.16", b"hub.mirror.example/library/nginx:1.16").replace(
    b"k8s.gcr.io/kube-proxy", b"registry.aliyuncs.com/google_containers/kube-proxy"
)


def run(*args: str, stdin: bytes = b"", cwd: Path | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[bytes]:
    """Run the installed kmirror; the environment never carries a rules file unless given."""
    environment = {k: v for k, v in os.environ.items() if k not in ("KMIRROR_CONFIG", "GITHUB_ACTIONS")}
    environment.update(env or {})
    return subprocess.run([KMIRROR, *args], input=stdin, capture_output=True, cwd=cwd, env=environment, timeout=60)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A folder with a rules file and one manifest."""
    (tmp_path / ".kmirror.yaml").write_text(RULES)
    (tmp_path / "pod.yaml").write_bytes(POD)
    return tmp_path


def test_filter_rewrites_stdin_to_stdout(project: Path) -> None:
    result = run(stdin=POD, cwd=project)
    assert result.returncode == 0, result.stderr
    assert result.stdout == REWRITTEN


def test_filter_without_rules_file_uses_default_preset_with_notice(tmp_path: Path) -> None:
    result = run(stdin=POD, cwd=tmp_path)
    assert result.returncode == 0
    assert b"m.daocloud.io/docker.io/library/nginx:1.16" in result.stdout
    assert b"using the built-in preset 'daocloud'" in result.stderr


def test_strict_fails_closed_with_nothing_on_stdout(tmp_path: Path) -> None:
    (tmp_path / "rules.yaml").write_text("mirrors: [{from: docker.io, to: hub.example.com}]\nblocked: [docker.io, k8s.gcr.io]\n")
    result = run("--config", "rules.yaml", "--strict", stdin=POD, cwd=tmp_path)
    assert result.returncode == 1
    assert result.stdout == b""
    assert b"-:10:15: KM001 k8s.gcr.io/kube-proxy:v1.18.0 is on blocked registry k8s.gcr.io (no rule)" in result.stderr


def test_strict_passes_when_everything_is_mirrored(project: Path) -> None:
    result = run("--strict", stdin=POD, cwd=project)
    assert (result.returncode, result.stdout) == (0, REWRITTEN)


def test_rewrite_prints_without_write(project: Path) -> None:
    result = run("rewrite", "pod.yaml", cwd=project)
    assert (result.returncode, result.stdout) == (0, REWRITTEN)
    assert (project / "pod.yaml").read_bytes() == POD


def test_rewrite_in_place_is_atomic_keeps_mode_and_skips_unchanged(project: Path) -> None:
    (project / "pod.yaml").chmod(0o640)
    (project / "sub").mkdir()
    unchanged = project / "sub" / "cm.yml"
    unchanged.write_bytes(b"apiVersion: v1\nkind: ConfigMap\ndata: {a: b}\n")
    os.utime(unchanged, (1_000_000, 1_000_000))
    result = run("rewrite", "-w", ".", cwd=project)
    assert result.returncode == 0, result.stderr
    assert result.stdout == b""
    assert b"rewrote 1 file" in result.stderr
    assert (project / "pod.yaml").read_bytes() == REWRITTEN
    assert (project / "pod.yaml").stat().st_mode & 0o777 == 0o640
    assert unchanged.stat().st_mtime == 1_000_000
    assert not [p for p in project.iterdir() if p.name.endswith(".kmirror")]


def test_rewrite_check_exits_1_when_files_would_change(project: Path) -> None:
    result = run("rewrite", "--check", "pod.yaml", cwd=project)
    assert result.returncode == 1
    assert b"would rewrite pod.yaml" in result.stderr
    assert (project / "pod.yaml").read_bytes() == POD
    (project / "pod.yaml").write_bytes(REWRITTEN)
    assert run("rewrite", "--check", "pod.yaml", cwd=project).returncode == 0


def test_rewrite_diff_prints_unified_diff(project: Path) -> None:
    result = run("rewrite", "--diff", "pod.yaml", cwd=project)
    assert result.returncode == 0
    assert b"--- a/pod.yaml\n+++ b/pod.yaml\n" in result.stdout
    assert b"-      image: nginx:1.16\n+      image: hub.mirror.example/library/nginx:1.16\n" in result.stdout


def test_check_text_lists_blocked_references_and_exits_1(project: Path) -> None:
    result = run("check", "pod.yaml", cwd=project)
    assert result.returncode == 1
    lines = result.stdout.decode().splitlines()
    assert lines[0] == "pod.yaml:8:14: KM001 nginx:1.16 is on blocked registry docker.io (mirror: hub.mirror.example/library/nginx:1.16)"
    assert lines[1].startswith("pod.yaml:10:15: KM001 k8s.gcr.io/kube-proxy:v1.18.0 is on blocked registry k8s.gcr.io")
    assert lines[2] == f"2 problems in 1 file (1 file checked against {project / '.kmirror.yaml'})"


def test_check_passes_after_rewrite(project: Path) -> None:
    assert run("rewrite", "-w", "pod.yaml", cwd=project).returncode == 0
    result = run("check", "pod.yaml", cwd=project)
    assert result.returncode == 0, result.stdout


def test_check_allow_exempts_references(project: Path) -> None:
    result = run("check", "--allow", "docker.io/library/nginx", "--allow", "k8s.gcr.io", "pod.yaml", cwd=project)
    assert result.returncode == 0, result.stdout


def test_check_json_format(project: Path) -> None:
    result = run("check", "--format", "json", "pod.yaml", cwd=project)
    findings = json.loads(result.stdout)
    assert result.returncode == 1
    assert {k: findings[0][k] for k in ("file", "line", "column", "ref", "registry", "suggested", "code")} == {
        "file": "pod.yaml", "line": 8, "column": 14, "ref": "nginx:1.16", "registry": "docker.io",
        "suggested": "hub.mirror.example/library/nginx:1.16", "code": "KM001",
    }


def test_check_chooses_github_annotations_in_github_actions(project: Path) -> None:
    result = run("check", "pod.yaml", cwd=project, env={"GITHUB_ACTIONS": "true"})
    assert result.returncode == 1
    assert result.stdout.startswith(b"::error file=pod.yaml,line=8,col=14,title=KM001::")


@pytest.mark.parametrize("fmt", ["text", "json", "sarif", "github", "gitlab", "junit"])
def test_check_every_format_runs(project: Path, fmt: str) -> None:
    result = run("check", "--format", fmt, "pod.yaml", cwd=project)
    assert result.returncode == 1
    assert result.stdout


def test_images_json_contract(project: Path) -> None:
    result = run("images", "--format", "json", "-", stdin=POD, cwd=project)
    assert result.returncode == 0
    rows = json.loads(result.stdout)
    assert rows[1] == {
        "file": "-", "document": 0, "path": "spec.containers[1].image", "line": 10, "column": 15,
        "ref": "k8s.gcr.io/kube-proxy:v1.18.0", "normalized": "k8s.gcr.io/kube-proxy:v1.18.0",
        "registry": "k8s.gcr.io", "mirrored": "registry.aliyuncs.com/google_containers/kube-proxy:v1.18.0",
        "blocked": False,
    }


def test_explain_json_contract(tmp_path: Path) -> None:
    (tmp_path / "rules.yaml").write_text(RULES)
    result = run("explain", "--config", "rules.yaml", "--format", "json", "nginx:1.16", "quay.io/x/y", "Not_A_Ref", cwd=tmp_path)
    assert result.returncode == 0
    rows = json.loads(result.stdout)
    assert rows[0] == {
        "input": "nginx:1.16", "valid": True, "error": None, "registry": "docker.io", "repository": "library/nginx",
        "tag": "1.16", "digest": None, "normalized": "docker.io/library/nginx:1.16",
        "normalization": ["no registry host: Docker Hub (docker.io)", "nginx is an official Docker Hub image: library/nginx"],
        "mirrored": "hub.mirror.example/library/nginx:1.16", "rule": "docker.io -> hub.mirror.example", "blocked": False,
    }
    assert rows[1]["mirrored"] is None and rows[1]["rule"] is None and rows[1]["blocked"] is False
    assert rows[2]["valid"] is False and "lowercase" in rows[2]["error"]
    assert list(rows[2]) == list(rows[0])


def test_explain_shows_how_a_host_is_normalised(tmp_path: Path) -> None:
    (tmp_path / "rules.yaml").write_text(RULES)
    shown = run("explain", "--config", "rules.yaml", "Docker.IO:443/library/nginx:1.16", cwd=tmp_path).stdout.decode()
    assert "    (host Docker.IO:443 lower-cased)\n    (default port :443 removed from docker.io:443)\n" in shown
    assert "mirrored:   hub.mirror.example/library/nginx:1.16" in shown


def test_a_rule_that_would_drop_a_digest_is_km002_for_check_and_strict(tmp_path: Path) -> None:
    (tmp_path / "rules.yaml").write_text('mirrors:\n  - {from: "docker.io/library/nginx:1.16", to: "harbor.example.com/nginx:1.16-patched"}\n')
    pod = POD.replace(b"nginx:1.16", b"nginx:1.16@sha256:" + b"ab" * 32)
    (tmp_path / "pod.yaml").write_bytes(pod)
    check = run("check", "--config", "rules.yaml", "pod.yaml", cwd=tmp_path)
    assert check.returncode == 1
    assert "pod.yaml:8:14: KM002 nginx:1.16@sha256:" in check.stdout.decode() and "would drop the digest" in check.stdout.decode()
    strict = run("--config", "rules.yaml", "--strict", stdin=pod, cwd=tmp_path)
    assert (strict.returncode, strict.stdout) == (1, b"")
    assert run("--config", "rules.yaml", stdin=pod, cwd=tmp_path).stdout == pod


def test_explain_blocked_when_no_rule_rewrites(tmp_path: Path) -> None:
    (tmp_path / "rules.yaml").write_text("mirrors: []\nblocked: [quay.io]\n")
    rows = json.loads(run("explain", "-c", "rules.yaml", "-f", "json", "quay.io/a/b:1", cwd=tmp_path).stdout)
    assert rows[0]["blocked"] is True


def test_presets_lists_working_and_all_lists_dead() -> None:
    listed = run("presets").stdout.decode()
    assert "daocloud " in listed and "aliyun-google-containers" in listed and "azk8s" not in listed
    every = run("presets", "--all").stdout.decode()
    assert "azk8s" in every and "dead" in every


def test_version() -> None:
    result = run("--version")
    assert result.returncode == 0 and result.stdout.startswith(b"kmirror ")


COMMANDS = [
    "rewrite", "check", "images", "explain", "presets", "verify", "sync", "helm", "chart",
    "kustomize", "install-kustomize-plugin", "init", "runtime-config",
]


def test_every_command_is_listed_in_help() -> None:
    listed = run("--help").stdout.decode()
    assert all(f"  {name} " in listed for name in COMMANDS)


@pytest.mark.parametrize("command", [[], *([name] for name in COMMANDS)])
def test_help_has_summary_and_example(command: list[str]) -> None:
    result = run(*command, "--help")
    assert result.returncode == 0
    text = result.stdout.decode()
    assert "Usage: kmirror" in text
    assert "Example" in text


# Bad input: exit 2, `kmirror: error: ` on stderr, nothing on stdout, no file changed.


def _assert_clean_failure(result: subprocess.CompletedProcess[bytes], fragment: str) -> None:
    assert result.returncode == 2, result.stderr
    assert result.stdout == b""
    assert result.stderr.decode().splitlines()[-1].startswith("kmirror: error: ")
    assert fragment in result.stderr.decode()


BAD_INPUTS = {
    "yaml-syntax": (b"apiVersion: v1\nkind: Pod\nspec: [\n", "bad.yaml:4:1: invalid YAML"),
    "invalid-utf8": (b"image: nginx\n\xff\xfe\xfd\n", "bad.yaml: cannot read: invalid UTF-8 at byte 13"),
    "binary": (b"\x7fELF\x02\x01\x01\x00\x00\x00", "bad.yaml: cannot read: binary data"),
    "utf16": ("image: nginx\n".encode("utf-16"), "bad.yaml: cannot read: UTF-16 is not supported"),
    "deep-nesting": (b"image: nginx\nx: " + b"[" * 500 + b"]" * 500 + b"\n", "bad.yaml:2:203: invalid YAML: collections nested deeper than 200 levels"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_fails_cleanly_and_changes_no_file(project: Path, case: str) -> None:
    data, fragment = BAD_INPUTS[case]
    (project / "bad.yaml").write_bytes(data)
    result = run("rewrite", "-w", "pod.yaml", "bad.yaml", cwd=project)
    _assert_clean_failure(result, fragment)
    assert (project / "pod.yaml").read_bytes() == POD
    assert (project / "bad.yaml").read_bytes() == data
    _assert_clean_failure(run(stdin=data, cwd=project), fragment.replace("bad.yaml", "-"))


def test_missing_file(project: Path) -> None:
    _assert_clean_failure(run("check", "nope.yaml", cwd=project), "cannot read: nope.yaml: no such file")


def test_unreadable_file(project: Path) -> None:
    # /proc/self/mem exists but fails on read (EIO) whoever runs the test, root included.
    _assert_clean_failure(run("rewrite", "/proc/self/mem", cwd=project), "cannot read: /proc/self/mem:")


def test_read_only_file_is_refused_and_untouched(project: Path) -> None:
    (project / "pod.yaml").chmod(0o444)
    _assert_clean_failure(run("rewrite", "-w", "pod.yaml", cwd=project), "cannot write: pod.yaml: permission denied")
    assert (project / "pod.yaml").read_bytes() == POD


def test_missing_rules_file(project: Path) -> None:
    _assert_clean_failure(run("--config", "missing.yaml", stdin=POD, cwd=project), "cannot read config: missing.yaml: no such file")


@pytest.mark.parametrize(
    ("rules", "fragment"),
    [
        ("mirrors:\n  - from: docker.io\n    too: x\n", "invalid config: mirrors[0]: unknown key 'too'"),
        ("mirrors:\n  - from: docker.io\n    to: x.example.com\n    flatten: yes please\n", "invalid config: mirrors[0].flatten: expected true or false"),
        ("mirrors: {from: docker.io}\n", "invalid config: mirrors: expected a list"),
        ("colour: blue\n", "invalid config: (top level): unknown key 'colour'"),
        ("mirrors: [\n", "invalid YAML"),
    ],
)
def test_invalid_rules_file(project: Path, rules: str, fragment: str) -> None:
    (project / ".kmirror.yaml").write_text(rules)
    _assert_clean_failure(run("rewrite", "-w", "pod.yaml", cwd=project), fragment)
    assert (project / "pod.yaml").read_bytes() == POD


def test_unknown_preset(project: Path) -> None:
    _assert_clean_failure(run("--preset", "nope", stdin=POD, cwd=project), "unknown preset: 'nope': known presets are aliyun-google-containers")


def test_usage_error_exits_2() -> None:
    result = run("--no-such-option")
    assert result.returncode == 2 and result.stdout == b""


def test_config_from_environment(project: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    elsewhere = tmp_path_factory.mktemp("rules") / "rules.yaml"
    elsewhere.write_text("mirrors: [{from: docker.io, to: env.example.com}]\n")
    result = run(stdin=POD, cwd=project, env={"KMIRROR_CONFIG": str(elsewhere)})
    assert b"env.example.com/library/nginx:1.16" in result.stdout


def test_closed_stdout_ends_quietly() -> None:
    stream = (CORPUS / "strimzi-cluster-operator.yaml").read_bytes()
    pipeline = f"{KMIRROR} --preset daocloud | head -c 10 >/dev/null; echo ${{PIPESTATUS[0]}}"
    result = subprocess.run(["bash", "-c", pipeline], input=stream, capture_output=True, timeout=60)
    assert result.stdout.strip() == b"0"
    assert result.stderr == b""


def test_corpus_rewrite_then_check_with_same_rules(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text("mirrors:\n  - {from: quay.io, to: quay.example.com}\n  - {from: docker.io, to: hub.example.com}\n")
    original = CORPUS / "kube-prometheus-manifests.yaml"
    before = run("check", "-c", str(rules), "--format", "json", str(original))
    assert before.returncode == 1
    expected = json.loads((CORPUS / "kube-prometheus-manifests.expected.json").read_text())
    wanted = [(e["line"], e["col"]) for e in expected if e["registry"] in ("quay.io", "docker.io")]
    assert [(f["line"], f["column"]) for f in json.loads(before.stdout)] == wanted
    copy = tmp_path / "kp.yaml"
    copy.write_bytes(original.read_bytes())
    assert run("rewrite", "-w", "-c", str(rules), str(copy)).returncode == 0
    assert run("check", "-c", str(rules), str(copy)).returncode == 0


def test_strict_reports_an_unrewritable_reference_once(tmp_path: Path) -> None:
    (tmp_path / "rules.yaml").write_text("mirrors: [{from: quay.io, to: quay.example.com}]\n")
    escaped = b'apiVersion: v1\nkind: Pod\nspec:\n  containers:\n    - name: a\n      image: "quay.io/x/y:1\\u002e0"\n'
    result = run("--config", "rules.yaml", "--strict", stdin=escaped, cwd=tmp_path)
    assert (result.returncode, result.stdout) == (1, b"")
    lines = result.stderr.decode().splitlines()
    assert [line for line in lines if "KM002" in line] == [lines[0]]
    assert lines[-1] == "kmirror: 1 reference left on blocked registries or not rewritable; nothing written (--strict)"


def test_internal_error_exits_3_with_a_short_message(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    # The one error boundary: an exception kmirror did not expect (a bug) becomes exit 3.
    from rewriter import cli
    from rewriter.rules import RuleSet

    def broken(*_args: object) -> None:
        raise RuntimeError("simulated bug")

    monkeypatch.setattr(RuleSet, "decide", broken)  # what explain asks for each reference
    assert cli.main(["explain", "--preset", "daocloud", "nginx"]) == 3
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.strip() == "kmirror: internal error: RuntimeError: simulated bug (run with --debug for a traceback)"
    with pytest.raises(RuntimeError, match="simulated bug"):
        cli.main(["--debug", "explain", "--preset", "daocloud", "nginx"])


def test_folders_skip_hidden_files_like_the_rules_file_and_ci_files(project: Path) -> None:
    (project / ".gitlab-ci.yml").write_text("build:\n  image: docker:24\n")
    result = run("check", ".", cwd=project)
    *findings, summary = result.stdout.splitlines()
    assert not any(b".gitlab-ci.yml" in line or b".kmirror.yaml" in line for line in findings)
    assert summary.endswith(b"(1 file checked against " + bytes(project / ".kmirror.yaml") + b")")
