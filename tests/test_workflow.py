"""kmirror across a repository and in CI (issue 19), end to end through the installed `kmirror`."""

from __future__ import annotations

import json
import os
import pty
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from ruamel.yaml import YAML
from test_report import validate_sarif
from tools import tool

KMIRROR = str(Path(sys.executable).parent / "kmirror")
RULES = "mirrors:\n  - {from: docker.io, to: hub.example.com}\n"


def run(*args: str, cwd: Path, stdin: bytes = b"", env: dict[str, str] | None = None) -> subprocess.CompletedProcess[bytes]:
    """The installed kmirror, with no rules file or CI variables from the environment unless given."""
    environment = {k: v for k, v in os.environ.items() if k not in ("KMIRROR_CONFIG", "GITHUB_ACTIONS", "NO_COLOR")}
    environment.update(env or {})
    return subprocess.run([KMIRROR, *args], input=stdin, capture_output=True, cwd=cwd, env=environment, timeout=120)


def documents(data: bytes) -> list[object]:
    return list(YAML(typ="safe").load_all(data))


# -- 1. several files on standard output form one stream ------------------------------------


def test_several_files_print_as_one_valid_stream(tmp_path: Path) -> None:
    (tmp_path / ".kmirror.yaml").write_text(RULES)
    files = {
        "a.yaml": b"kind: Pod\nimage: nginx:1",  # no final newline
        "b.yaml": b"\xef\xbb\xbfkind: Pod\nimage: redis:7\n",  # a byte-order mark
        "c.yaml": b"---\nkind: Pod\n",  # opens with its own marker
        "d.yaml": b"%YAML 1.2\n---\nkind: Pod\n",  # directives
    }
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    result = run("rewrite", *files, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == (
        b"kind: Pod\nimage: hub.example.com/library/nginx:1\n---\n"
        b"kind: Pod\nimage: hub.example.com/library/redis:7\n"
        b"---\nkind: Pod\n...\n%YAML 1.2\n---\nkind: Pod\n"
    )
    assert documents(result.stdout) == [{"kind": "Pod", "image": "hub.example.com/library/nginx:1"}, {"kind": "Pod", "image": "hub.example.com/library/redis:7"}, {"kind": "Pod"}, {"kind": "Pod"}]


def test_in_place_files_stay_byte_exact(tmp_path: Path) -> None:
    (tmp_path / ".kmirror.yaml").write_text(RULES)
    (tmp_path / "a.yaml").write_bytes(b"image: nginx:1")
    (tmp_path / "b.yaml").write_bytes(b"\xef\xbb\xbfimage: redis:7\n")
    result = run("rewrite", "-w", "a.yaml", "b.yaml", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "a.yaml").read_bytes() == b"image: hub.example.com/library/nginx:1"
    assert (tmp_path / "b.yaml").read_bytes() == b"\xef\xbb\xbfimage: hub.example.com/library/redis:7\n"


# -- 2. rule sets are idempotent --------------------------------------------------------------

SCHEMES = "mirrors:\n  - {from: gcr.io, to: \"anjia0532/{path_dotted}\"}\n  - {from: docker.io, to: docker.mirrors.example}\n"


def test_a_second_run_changes_nothing_and_strict_passes_the_first(tmp_path: Path) -> None:
    (tmp_path / ".kmirror.yaml").write_text(SCHEMES)
    pod = b"kind: Pod\nspec:\n  containers:\n  - image: gcr.io/kaniko-project/executor:v1.8.1\n  - image: nginx:1\n"
    first = run("--strict", cwd=tmp_path, stdin=pod)
    assert first.returncode == 0, first.stderr
    assert first.stdout == pod.replace(b"gcr.io/kaniko-project/executor", b"anjia0532/kaniko-project.executor").replace(b"nginx", b"docker.mirrors.example/library/nginx")
    second = run("--strict", cwd=tmp_path, stdin=first.stdout)
    assert (second.returncode, second.stdout) == (0, first.stdout)
    (tmp_path / "pod.yaml").write_bytes(first.stdout)
    assert run("check", "pod.yaml", cwd=tmp_path).returncode == 0
    explained = run("explain", "anjia0532/kaniko-project.executor:v1.8.1", cwd=tmp_path)
    assert b"rule:       gcr.io -> anjia0532/{path_dotted} (already its result: left alone)" in explained.stdout


# -- 4. an empty target is an error; a chart's templates/ folder is noted ---------------------


def test_a_folder_without_yaml_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "deploy").mkdir()
    (tmp_path / "deploy" / "README.md").write_text("nothing here\n")
    for command in ("check", "rewrite", "images"):
        result = run(command, "deploy", cwd=tmp_path)
        assert (result.returncode, result.stdout) == (2, b""), command
        assert result.stderr.decode().splitlines()[-1] == "kmirror: error: no YAML files in deploy"


def test_a_charts_templates_folder_gets_the_note_its_files_get(tmp_path: Path) -> None:
    (tmp_path / "chart" / "templates").mkdir(parents=True)
    (tmp_path / "chart" / "Chart.yaml").write_text("apiVersion: v2\nname: c\nversion: 1.0.0\n")
    (tmp_path / "chart" / "templates" / "pod.yaml").write_text("image: {{ .Values.image }}\n")
    folder = run("--preset", "daocloud", "check", "chart/templates", cwd=tmp_path)
    assert folder.returncode == 0, folder.stderr
    assert b"kmirror: note: skipped chart/templates: Helm chart templates, not YAML" in folder.stderr
    assert b"0 files checked" in folder.stdout
    single = run("--preset", "daocloud", "check", "chart/templates/pod.yaml", cwd=tmp_path)
    assert b"kmirror: note: skipped chart/templates/pod.yaml: a Helm chart template, not YAML" in single.stderr


# -- 5. ignores -------------------------------------------------------------------------------

IGNORED = b"""\
apiVersion: v1
kind: Pod
metadata:
  name: legacy
  annotations:
    kmirror.dev/ignore: "true"
spec:
  containers:
  - image: nginx:1
---
apiVersion: v1
kind: Pod
metadata: {name: web}
spec:
  containers:
  - image: redis:7
"""


def test_an_annotated_resource_is_neither_rewritten_nor_checked(tmp_path: Path) -> None:
    (tmp_path / ".kmirror.yaml").write_text(RULES)
    (tmp_path / "pods.yaml").write_bytes(IGNORED)
    rewritten = run("rewrite", "pods.yaml", cwd=tmp_path)
    assert rewritten.stdout == IGNORED.replace(b"redis:7", b"hub.example.com/library/redis:7")
    checked = run("check", "pods.yaml", cwd=tmp_path)
    assert checked.returncode == 1
    assert checked.stdout.decode().splitlines()[0].startswith("pods.yaml:16:12: KM001 redis:7 ")
    assert b"nginx" not in checked.stdout


def test_exclude_globs_from_the_rules_file_and_the_command_line(tmp_path: Path) -> None:
    (tmp_path / ".kmirror.yaml").write_text(RULES + 'exclude: [vendor, "*.generated.yaml"]\n')
    for name in ("deploy/web.yaml", "vendor/x/lib.yaml", "deploy/api.generated.yaml", "deploy/old/pod.yaml"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("image: nginx:1\n")
    (tmp_path / "deploy" / "sub").mkdir()
    listed = run("images", ".", cwd=tmp_path)
    assert listed.stdout.decode().splitlines() == [
        "deploy/web.yaml:1:8: nginx:1 -> hub.example.com/library/nginx:1",
        "deploy/old/pod.yaml:1:8: nginx:1 -> hub.example.com/library/nginx:1",
    ]
    # From a subfolder, the rules file's globs still start at the rules file's folder;
    # --exclude starts at the working folder, and applies to files named on the command line too.
    narrowed = run("images", "--exclude", "old", ".", "../vendor/x/lib.yaml", cwd=tmp_path / "deploy")
    assert narrowed.stdout.decode().splitlines() == ["web.yaml:1:8: nginx:1 -> hub.example.com/library/nginx:1"]
    checked = run("check", "--exclude", "deploy", ".", cwd=tmp_path)
    assert (checked.returncode, checked.stderr) == (2, b"kmirror: error: no YAML files in . (all excluded)\n")


# -- 7. --preset ------------------------------------------------------------------------------


def test_preset_alone_ignores_the_rules_file_and_combines_with_config(tmp_path: Path) -> None:
    (tmp_path / ".kmirror.yaml").write_text(RULES)
    (tmp_path / "other.yaml").write_text("mirrors:\n  - {from: docker.io/library/redis, to: redis.example.com/redis}\n")
    pod = b"image: nginx:1\n---\nimage: redis:7\n"
    alone = run("--preset", "aliyun-google-containers", cwd=tmp_path, stdin=b"image: registry.k8s.io/pause:3\n---\n" + pod)
    assert alone.stdout == b"image: registry.aliyuncs.com/google_containers/pause:3\n---\n" + pod
    both = run("--config", "other.yaml", "--preset", "daocloud", cwd=tmp_path, stdin=pod)
    assert both.stdout == b"image: m.daocloud.io/docker.io/library/nginx:1\n---\nimage: redis.example.com/redis:7\n"
    env = run("--preset", "daocloud", cwd=tmp_path, stdin=pod, env={"KMIRROR_CONFIG": "other.yaml"})
    assert env.stdout == both.stdout


# -- 6. reports to a file, --exit-zero, one meaning of -f --------------------------------------


def test_output_file_and_exit_zero(tmp_path: Path) -> None:
    (tmp_path / ".kmirror.yaml").write_text(RULES)
    (tmp_path / "pod.yaml").write_text("image: nginx:1\n")
    checked = run("check", "-f", "json", "--output-file", "report.json", "pod.yaml", cwd=tmp_path)
    assert (checked.returncode, checked.stdout) == (1, b"")
    assert b'"code": "KM001"' in (tmp_path / "report.json").read_bytes()
    zero = run("check", "--exit-zero", "--output-file", "report.txt", "pod.yaml", cwd=tmp_path)
    assert (zero.returncode, zero.stdout) == (0, b"")
    assert "1 problem in 1 file (1 file checked against " in (tmp_path / "report.txt").read_text()
    listed = run("images", "-f", "skopeo", "--output-file", "copy.yaml", "pod.yaml", cwd=tmp_path)
    assert (listed.returncode, listed.stdout) == (0, b"")
    assert "library/nginx" in (tmp_path / "copy.yaml").read_text()
    unwritable = run("check", "--output-file", "no/such/folder/r.txt", "pod.yaml", cwd=tmp_path)
    assert (unwritable.returncode, unwritable.stdout) == (2, b"")
    assert unwritable.stderr.startswith(b"kmirror: error: cannot write: no/such/folder/r.txt: ")


def test_f_is_format_everywhere_and_helm_users_are_told(tmp_path: Path) -> None:
    for command in (["check", "pod.yaml"], ["images", "pod.yaml"], ["explain", "nginx"]):
        (tmp_path / "pod.yaml").write_text("image: nginx:1\n")
        assert run(*command, "-f", "json", "--preset", "daocloud", cwd=tmp_path).stdout.startswith(b"[")
    for command in ("helm", "chart"):
        result = run(command, "chart", "-f", "prod.yaml", cwd=tmp_path)
        assert (result.returncode, result.stdout) == (2, b"")
        assert result.stderr == (
            b"kmirror: error: invalid option: -f: in kmirror, -f means --format; give values files as "
            b"--values prod.yaml, or pass helm's own options after --: -- -f prod.yaml\n"
        )


# -- 8. helm's render options ------------------------------------------------------------------

CAPS_TEMPLATE = """\
apiVersion: v1
kind: Pod
metadata:
  name: caps
  annotations:
    kube: "{{ .Capabilities.KubeVersion.Version }}"
    api: "{{ .Capabilities.APIVersions.Has "example.com/v1" }}"
    note: {{ .Values.note | quote }}
    num: {{ .Values.num | quote }}
    extra: {{ .Values.extra | quote }}
spec:
  containers:
  - image: {{ .Values.image }}
  - image: {{ .Values.sidecarImage }}
"""


def caps_chart(tmp_path: Path) -> Path:
    chart = tmp_path / "caps"
    (chart / "templates").mkdir(parents=True)
    (chart / "crds").mkdir()
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: caps\nversion: 0.1.0\n")
    (chart / "values.yaml").write_text('image: nginx:1\nsidecarImage: "redis:7"\nnote: ""\nnum: 0\nextra: ""\n')
    (chart / "templates" / "pod.yaml").write_text(CAPS_TEMPLATE)
    (chart / "crds" / "crd.yaml").write_text("apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata: {name: things.example.com}\n")
    (tmp_path / "a.yaml").write_text("image: quay.io/a/b:1\n")
    (tmp_path / "b.yaml").write_text("sidecarImage: busybox:1\n")
    (tmp_path / "note.txt").write_text("from a file")
    (tmp_path / ".kmirror.yaml").write_text(RULES)
    return chart


@pytest.mark.parametrize("helm", ["helm3", "helm4"])
def test_helm_takes_helms_render_options_and_passes_the_rest(helm: str, tmp_path: Path) -> None:
    caps_chart(tmp_path)
    options = ["--values", "a.yaml", "--values", "b.yaml", "--set-string", "num=0123", "--set-file", "note=note.txt",
               "--kube-version", "v1.29.3", "--api-versions", "example.com/v1", "--include-crds"]
    result = run("helm", "caps", *options, "--helm", tool(helm), "--", "--set", "extra=after-dashes", "--show-only", "templates/pod.yaml", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    raw = subprocess.run([tool(helm), "template", "release-name", "caps", *options, "--set", "extra=after-dashes", "--show-only", "templates/pod.yaml"],
                         cwd=tmp_path, capture_output=True, check=True, timeout=120).stdout
    assert result.stdout == raw.replace(b"image: busybox:1", b"image: hub.example.com/library/busybox:1")
    for line in (b'kube: "v1.29.3"', b'api: "true"', b'note: "from a file"', b'num: "0123"', b'extra: "after-dashes"', b"image: quay.io/a/b:1"):
        assert line in result.stdout


@pytest.mark.parametrize("helm", ["helm3", "helm4"])
def test_chart_judges_reachability_with_the_given_values(helm: str, tmp_path: Path) -> None:
    caps_chart(tmp_path)
    reached = run("chart", "caps", "--values", "a.yaml", "--helm", tool(helm), cwd=tmp_path)
    assert reached.returncode == 0, reached.stderr
    assert b"verified: all 2 rendered images are mirrored" in reached.stderr
    # A --set beats every values file, the override too: the image it sets stays unmirrored.
    for given in (["--set", "sidecarImage=busybox:1"], ["--", "--set", "sidecarImage=busybox:1"]):
        left = run("chart", "caps", "--helm", tool(helm), *given, cwd=tmp_path)
        assert left.returncode == 1, left.stderr
        assert b"caps/templates/pod.yaml: busybox:1 is not mirrored (mirror: hub.example.com/library/busybox:1)" in left.stderr


# -- 3. reports name files from the repository's root -----------------------------------------

def report_paths(fmt: str, output: bytes) -> list[str]:
    """The file names a CI report gives, in order."""
    if fmt == "sarif":
        log = json.loads(output)
        validate_sarif(log)  # the official SARIF 2.1.0 schema
        return [r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in log["runs"][0]["results"]]
    if fmt == "gitlab":
        return [issue["location"]["path"] for issue in json.loads(output)]
    if fmt == "github":
        return re.findall(r"^::error file=([^,]+),", output.decode(), re.M)
    return [case.get("classname", "") for case in ET.fromstring(output).iter("testcase")]


@pytest.mark.parametrize("fmt", ["sarif", "gitlab", "github", "junit"])
def test_ci_reports_name_files_from_the_git_top_level(fmt: str, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / "deploy" / "prod").mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(repo)], check=True, timeout=60)
    (repo / ".kmirror.yaml").write_text(RULES)
    (repo / "deploy" / "prod" / "web.yaml").write_text("image: nginx:1\n")
    (repo / "deploy" / "api.yaml").write_text("image: redis:7\n")
    here = repo / "deploy" / "prod"
    # The same files named three ways, from a subfolder: as given, through ../, and absolute.
    result = run("check", "-f", fmt, "web.yaml", "../api.yaml", str(repo / "deploy" / "api.yaml"), cwd=here)
    assert result.returncode == 1, result.stderr
    assert report_paths(fmt, result.stdout) == ["deploy/prod/web.yaml", "deploy/api.yaml", "deploy/api.yaml"]
    if fmt == "sarif":
        run_ = json.loads(result.stdout)["runs"][0]
        assert run_["originalUriBaseIds"] == {"SRCROOT": {"uri": repo.resolve().as_uri() + "/"}}
        assert {r["locations"][0]["physicalLocation"]["artifactLocation"]["uriBaseId"] for r in run_["results"]} == {"SRCROOT"}
    # Outside git, the working folder is the root.
    outside = tmp_path / "plain"
    (outside / "sub").mkdir(parents=True)
    (outside / ".kmirror.yaml").write_text(RULES)
    (outside / "sub" / "pod.yaml").write_text("image: nginx:1\n")
    plain = run("check", "-f", fmt, str(outside / "sub" / "pod.yaml"), cwd=outside, env={"GIT_CEILING_DIRECTORIES": str(tmp_path)})
    assert report_paths(fmt, plain.stdout) == ["sub/pod.yaml"]


# -- 9. terminal manners -----------------------------------------------------------------------


def on_terminal(args: list[str], cwd: Path, stdin_terminal: bool = False, env: dict[str, str] | None = None, stdin: bytes = b"") -> tuple[int, bytes, bytes]:
    """Run kmirror with standard output (and, if asked, standard input) on a pseudo-terminal: (exit code, terminal output, stderr)."""
    main, child = pty.openpty()
    environment = {k: v for k, v in os.environ.items() if k not in ("KMIRROR_CONFIG", "GITHUB_ACTIONS", "NO_COLOR")}
    environment.update({"TERM": "xterm", **(env or {})})
    process = subprocess.Popen([KMIRROR, *args], stdin=child if stdin_terminal else subprocess.PIPE, stdout=child, stderr=subprocess.PIPE, cwd=cwd, env=environment)
    os.close(child)
    if stdin_terminal:
        os.write(main, stdin + b"\x04")  # Ctrl-D ends the input, as a user would
    else:
        assert process.stdin is not None
        process.stdin.close()
    output = b""
    while True:
        try:
            chunk = os.read(main, 65536)
        except OSError:  # the terminal closed: the process is gone
            break
        if not chunk:
            break
        output += chunk
    os.close(main)
    assert process.stderr is not None
    stderr = process.stderr.read()
    return process.wait(timeout=60), output, stderr


def test_colour_on_a_terminal_only(tmp_path: Path) -> None:
    (tmp_path / ".kmirror.yaml").write_text(RULES)
    (tmp_path / "pod.yaml").write_text("image: nginx:1\n")
    code, shown, _ = on_terminal(["rewrite", "--diff", "pod.yaml"], tmp_path)
    assert code == 0 and b"\033[32m+image: hub.example.com/library/nginx:1\033[0m" in shown and b"\033[31m-image: nginx:1\033[0m" in shown
    code, shown, _ = on_terminal(["check", "pod.yaml"], tmp_path)
    assert code == 1 and b"\033[1mpod.yaml:1:8:\033[0m \033[31mKM001\033[0m nginx:1" in shown
    for env in ({"NO_COLOR": "1"}, {"TERM": "dumb"}):
        assert b"\033[" not in on_terminal(["check", "pod.yaml"], tmp_path, env=env)[1]
    piped = run("rewrite", "--diff", "pod.yaml", cwd=tmp_path)
    assert b"\033[" not in piped.stdout and piped.stdout.startswith(b"--- a/pod.yaml")


def test_the_bare_filter_says_it_reads_a_terminal(tmp_path: Path) -> None:
    (tmp_path / ".kmirror.yaml").write_text(RULES)
    code, shown, stderr = on_terminal([], tmp_path, stdin_terminal=True, stdin=b"image: nginx:1\n")
    assert code == 0 and b"image: hub.example.com/library/nginx:1" in shown
    assert stderr == b"kmirror: reading a YAML stream from standard input (end it with Ctrl-D; 'kmirror --help' lists the commands)\n"
    assert run(cwd=tmp_path, stdin=b"image: nginx:1\n").stderr == b""  # not when piped


def test_shell_completion(tmp_path: Path) -> None:
    script = subprocess.run(["bash", "-c", f"{KMIRROR} --show-completion; true"], capture_output=True, timeout=60, cwd=tmp_path)
    assert b"complete -o default -F _kmirror_completion kmirror" in script.stdout, script.stderr
    # What the installed script asks kmirror for when the user presses Tab.
    asked = run(cwd=tmp_path, env={"_KMIRROR_COMPLETE": "complete_bash", "COMP_WORDS": "kmirror check --ex", "COMP_CWORD": "2"})
    assert asked.stdout.split() == [b"--exit-zero", b"--exclude"]
    commands = run(cwd=tmp_path, env={"_KMIRROR_COMPLETE": "complete_bash", "COMP_WORDS": "kmirror ch", "COMP_CWORD": "1"})
    assert commands.stdout.split() == [b"check", b"chart"]


def test_help_reads_as_written(tmp_path: Path) -> None:
    for command in ("rewrite", "check", "images", "explain", "verify", "sync", "helm", "chart", "kustomize", "init", "runtime-config", "presets", "install-kustomize-plugin"):
        shown = run(command, "--help", cwd=tmp_path, env={"COLUMNS": "80"}).stdout.decode()
        assert "{" not in shown.split("\n\n")[0] and "<list[" not in shown and "<str>" not in shown, shown
        example = [line for line in shown.splitlines() if line.strip().startswith("Example: kmirror")]
        assert len(example) == 1, shown  # one line: never wrapped mid-command
    assert "Usage: kmirror check [OPTIONS] PATH..." in run("check", "--help", cwd=tmp_path).stdout.decode()


def test_counts_read_as_english(tmp_path: Path) -> None:
    (tmp_path / ".kmirror.yaml").write_text(RULES)
    (tmp_path / "pod.yaml").write_text("image: nginx:1\n")
    assert run("check", "pod.yaml", cwd=tmp_path).stdout.endswith(b"1 problem in 1 file (1 file checked against " + str(tmp_path / ".kmirror.yaml").encode() + b")\n")
    assert run("rewrite", "-w", "pod.yaml", cwd=tmp_path).stderr == b"rewrote 1 file\n"
    written = run("runtime-config", "-f", "containerd-hosts", "--output-dir", "certs.d", cwd=tmp_path)
    assert written.stderr == b"wrote 1 file under certs.d\n"
