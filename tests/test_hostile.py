"""Hostile input: real `kmirror` processes, each bounded in time and in peak memory.

Every case either rewrites correctly or fails with one `kmirror: error: ` line and exit 2,
within its bound: alias bombs, deep nesting, a 100 MB scalar, a million documents,
byte sequences that are not UTF-8, duplicate keys, custom tags, YAML 1.1 scalars and
mixed line endings. (Invalid UTF-8, NUL bytes and UTF-16 LE are also in test_cli.py.)
"""

from __future__ import annotations

import base64
import http.server
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

KMIRROR = str(Path(sys.executable).parent / "kmirror")
RULES = "mirrors:\n  - {from: docker.io, to: hub.example.com}\n  - {from: quay.io, to: quay.example.com}\n"
NGINX = b"hub.example.com/library/nginx"


@dataclass(frozen=True)
class Run:
    """A finished kmirror process: exit code, output, wall time, peak resident memory and CPU time."""

    returncode: int
    stdout: bytes
    stderr: bytes
    seconds: float
    peak_mb: float
    cpu_seconds: float = 0.0  # user + system, kmirror's children included


TIME = "/usr/bin/time"  # GNU time, installed by scripts/install-tools
_PEAK = "kmirror-peak-kb"


def kmirror(*args: str, stdin: bytes | Path = b"", cwd: Path, seconds: float, megabytes: int) -> Run:
    """Run kmirror and fail the test if it runs longer than `seconds` or peaks above `megabytes`.

    The peak is the child's own maximum resident set (wait4's rusage); an address-space
    limit well above the bound keeps a runaway process from taking the machine down.
    """
    env = {k: v for k, v in os.environ.items() if k not in ("KMIRROR_CONFIG", "GITHUB_ACTIONS")}
    limit_kb = (2 * megabytes + 1024) * 1024
    # GNU time measures kmirror's own peak: a child of this (large, long-running) test process
    # would count this process's size as its own. A shell under time sets the limit, then execs.
    command = [TIME, "-q", "-f", f"{_PEAK} %M", "/bin/sh", "-c", f'ulimit -v {limit_kb} && exec "$@"', "kmirror", KMIRROR, *args]

    with tempfile.TemporaryFile() as source, tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        if isinstance(stdin, Path):
            stdin_file = stdin.open("rb")
        else:
            source.write(stdin)
            source.seek(0)
            stdin_file = source
        with stdin_file:
            started = time.monotonic()
            process = subprocess.Popen(command, stdin=stdin_file, stdout=out, stderr=err, cwd=cwd, env=env)
            while True:
                pid, status, usage = os.wait4(process.pid, os.WNOHANG)
                elapsed = time.monotonic() - started
                if pid:
                    break
                if elapsed > seconds:
                    process.kill()
                    os.wait4(process.pid, 0)
                    process.returncode = -9
                    pytest.fail(f"kmirror {' '.join(args)} ran longer than {seconds} s")
                time.sleep(0.02)
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stderr, _, peak = err.read().rpartition(_PEAK.encode() + b" ")
        run = Run(process.returncode, out.read(), stderr, elapsed, int(peak) / 1024, usage.ru_utime + usage.ru_stime)
    assert run.peak_mb <= megabytes, f"kmirror peaked at {run.peak_mb:.0f} MB, more than {megabytes} MB"
    assert b"Traceback" not in run.stderr, run.stderr.decode(errors="replace")
    return run


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A working folder with the rules file."""
    (tmp_path / ".kmirror.yaml").write_text(RULES)
    return tmp_path


def assert_clean_error(run: Run, fragment: str) -> None:
    """Exit 2, nothing on stdout, one `kmirror: error: ` line naming the problem."""
    assert run.returncode == 2, run.stderr
    assert run.stdout == b""
    lines = run.stderr.decode().splitlines()
    assert len(lines) == 1 and lines[0].startswith("kmirror: error: "), lines
    assert fragment in lines[0]


# Alias bombs: anchors are composed once and every collection is walked once.


def _laughs(levels: int, width: int) -> bytes:
    lines = ["l0: &l0 [{name: a, image: nginx}, lol]"]
    for level in range(1, levels + 1):
        lines.append(f"l{level}: &l{level} [" + ", ".join([f"*l{level - 1}"] * width) + "]")
    lines.append(f"spec:\n  containers: *l{levels}")
    return ("\n".join(lines) + "\n").encode()


def test_billion_laughs_is_walked_once(folder: Path) -> None:
    bomb = _laughs(levels=9, width=10)  # 10**9 containers once expanded
    run = kmirror(stdin=bomb, cwd=folder, seconds=20, megabytes=300)
    assert run.returncode == 0, run.stderr
    assert run.stdout == bomb.replace(b"image: nginx", b"image: " + NGINX)
    check = kmirror("check", "--format", "json", "-", stdin=bomb, cwd=folder, seconds=20, megabytes=300)
    assert check.returncode == 1
    assert check.stdout.count(b'"code"') == 1


def test_self_referencing_alias_ends(folder: Path) -> None:
    stream = b"a: &a [*a, {image: nginx}]\nb: &b {self: *b, image: quay.io/x/y:1}\n"
    run = kmirror(stdin=stream, cwd=folder, seconds=10, megabytes=200)
    assert run.returncode == 0, run.stderr
    assert run.stdout == stream.replace(b"nginx", NGINX).replace(b"quay.io/", b"quay.example.com/")


# Deep nesting: refused with a position, never a RecursionError.

DEPTH = 10_000
DEEP = {
    "flow-sequence": b"x: " + b"[" * DEPTH + b"]" * DEPTH + b"\n",
    "flow-mapping": b"x: " + b"{a: " * DEPTH + b"b" + b"}" * DEPTH + b"\n",
    "block-sequence": b"x:\n" + b"- " * DEPTH + b"b\n",
    "block-mapping": b"x:\n" + b"".join(b"  " * i + b"a:\n" for i in range(DEPTH)) + b"  " * DEPTH + b"b\n",
    "anchored": b"x: " + b"".join(b"&a%d [" % i for i in range(DEPTH)) + b"]" * DEPTH + b"\n",
}


@pytest.mark.parametrize("style", sorted(DEEP))
def test_deep_nesting_is_refused_cleanly(folder: Path, style: str) -> None:
    stream = b"image: nginx\n" + DEEP[style]
    run = kmirror(stdin=stream, cwd=folder, seconds=60, megabytes=1000)
    assert_clean_error(run, "invalid YAML")
    assert "nest" in run.stderr.decode()


def test_deep_nesting_inside_an_embedded_document_is_refused_cleanly(folder: Path) -> None:
    stream = b"data:\n  pod.yaml: |\n    image: nginx\n    x: " + b"[" * DEPTH + b"]" * DEPTH + b"\n"
    run = kmirror(stdin=stream, cwd=folder, seconds=60, megabytes=1000)
    assert_clean_error(run, "-:2:")


def test_deep_document_without_images_passes_or_fails_cleanly(folder: Path) -> None:
    stream = b"x: " + b"[" * DEPTH + b"]" * DEPTH + b"\n"
    run = kmirror(stdin=stream, cwd=folder, seconds=60, megabytes=1000)
    if run.returncode == 0:  # a document that cannot hold a reference may be left unread
        assert run.stdout == stream
    else:
        assert_clean_error(run, "nested deeper than")


# Size: a 100 MB scalar, a million documents.


def test_100_mb_scalar(folder: Path) -> None:
    stream = folder / "big.yaml"
    with stream.open("wb") as out:
        out.write(b"kind: Pod\nspec:\n  containers:\n  - image: nginx\n    args:\n    - \"")
        out.write(b"x" * (100 * 1024 * 1024))
        out.write(b"\"\n  - image: quay.io/a/b:1\n")
    # Measured: about 1.6 s and 580 MB (the input, its piece, the decoded piece, the node value, the output).
    run = kmirror(stdin=stream, cwd=folder, seconds=60, megabytes=1500)
    assert run.returncode == 0, run.stderr
    grown = len("hub.example.com/library/") + len("quay.example.com") - len("quay.io")
    assert len(run.stdout) == stream.stat().st_size + grown
    assert run.stdout.startswith(b"kind: Pod\nspec:\n  containers:\n  - image: " + NGINX + b"\n")
    assert run.stdout.endswith(b"\"\n  - image: quay.example.com/a/b:1\n")


def test_a_million_tiny_documents(folder: Path) -> None:
    stream = folder / "many.yaml"
    stream.write_bytes(b"---\na: b\n" * 999_999 + b"---\nimage: nginx\n")
    # Measured: about 1.5 s and 90 MB; the bound is generous on purpose (a slow, shared CI machine).
    run = kmirror(stdin=stream, cwd=folder, seconds=120, megabytes=3000)
    assert run.returncode == 0, run.stderr
    assert run.stdout == b"---\na: b\n" * 999_999 + b"---\nimage: " + NGINX + b"\n"


def test_a_hundred_thousand_documents_each_with_an_image(folder: Path) -> None:
    stream = folder / "images.yaml"
    stream.write_bytes(b"".join(b"---\nimage: nginx:1.%d\n" % (i % 50) for i in range(100_000)))
    # Measured: about 3 s and 155 MB (each reference found costs about 30 us and 1 kB).
    run = kmirror(stdin=stream, cwd=folder, seconds=60, megabytes=600)
    assert run.returncode == 0, run.stderr
    assert run.stdout == b"".join(b"---\nimage: " + NGINX + b":1.%d\n" % (i % 50) for i in range(100_000))


# Bytes that are not a UTF-8 stream.

NOT_UTF8 = {
    "utf-16-be-bom": (b"\xfe\xff" + "image: nginx\n".encode("utf-16-be"), "UTF-16 is not supported"),
    "utf-16-le-bom": (b"\xff\xfe" + "image: nginx\n".encode("utf-16-le"), "UTF-16 is not supported"),
    "utf-16-no-bom": ("image: nginx\n".encode("utf-16-le"), "binary data (NUL byte at offset 1)"),
    "nul-in-a-value": (b"image: nginx\x00\n", "binary data (NUL byte at offset 12)"),
    "lone-continuation-byte": (b"image: nginx\nx: \x80\n", "invalid UTF-8 at byte 16"),
    "overlong-slash": (b"image: nginx\nx: \xc0\xaf\n", "invalid UTF-8 at byte 16"),
    "encoded-surrogate": (b"image: nginx\nx: \xed\xa0\x80\n", "invalid UTF-8 at byte 16"),
    "beyond-unicode": (b"image: nginx\nx: \xf4\x90\x80\x80\n", "invalid UTF-8 at byte 16"),
    "truncated-at-end": (b"image: nginx\nx: \xe2\x82", "invalid UTF-8 at byte 16"),
    "latin-1": ("image: nginx\nx: caf\xe9\n".encode("latin-1"), "invalid UTF-8 at byte 19"),
}


@pytest.mark.parametrize("case", sorted(NOT_UTF8))
def test_input_that_is_not_utf8_is_refused_clearly(folder: Path, case: str) -> None:
    data, fragment = NOT_UTF8[case]
    run = kmirror(stdin=data, cwd=folder, seconds=10, megabytes=200)
    assert_clean_error(run, f"-: cannot read: {fragment}")


def test_byte_order_marks_at_document_starts_are_kept(folder: Path) -> None:
    # `cat a.yaml b.yaml` of two files saved with a BOM: YAML allows one before each document.
    stream = b"\xef\xbb\xbfimage: nginx\n---\n\xef\xbb\xbfimage: quay.io/a/b:1\n"
    run = kmirror(stdin=stream, cwd=folder, seconds=10, megabytes=200)
    assert run.returncode == 0, run.stderr
    assert run.stdout == stream.replace(b"nginx", NGINX).replace(b"quay.io/", b"quay.example.com/")


# What YAML allows and kmirror must leave exactly as written.


def test_duplicate_keys_every_image_value_is_rewritten(folder: Path) -> None:
    # Which duplicate wins depends on the reader (kubectl takes the last): rewrite both.
    stream = b"spec:\n  containers:\n  - name: a\n    image: nginx:1\n    image: 'quay.io/a/b:2'\n    name: b\n"
    run = kmirror(stdin=stream, cwd=folder, seconds=10, megabytes=200)
    assert run.returncode == 0, run.stderr
    assert run.stdout == stream.replace(b"nginx", NGINX).replace(b"quay.io/", b"quay.example.com/")


def test_custom_tags_are_preserved(folder: Path) -> None:
    stream = (
        b"%TAG !cf! tag:aws.example,2010:\n---\n"
        b"a: !Ref ImageParam\n"
        b"image: !Ref ImageParam  # a CloudFormation parameter, not a reference\n"
        b"b: !!binary aW1hZ2U6IG5naW54\n"
        b"c: !Sub 'quay.io/a/b:${Tag}'\n"
        b"d: !GetAtt [Repo, Uri]\n"
        b"e: !cf!Join ['', [quay.io/a/b, ':1']]\n"
        b"f: !<tag:example.com,2000:image> nginx\n"
        b"image2: !!str nginx:1\n"
        b"g: !custom {name: x, image: 'quay.io/a/b:1'}\n"
    )
    run = kmirror(stdin=stream, cwd=folder, seconds=10, megabytes=200)
    assert run.returncode == 0, run.stderr
    # Only the two !!str/plain references change; every tag and tagged value stays as written.
    assert run.stdout == stream.replace(b"!!str nginx:1", b"!!str " + NGINX + b":1").replace(
        b"image: 'quay.io/a/b:1'", b"image: 'quay.example.com/a/b:1'"
    )


YAML_11 = b"""\
%YAML 1.1
---
a: on
b: yes
c: No
d: OFF
e: y
f: 0755
g: 1:20
h: 1_000
i: .inf
j: ~
k: 2001-12-14
l: =
m: &m {image: nginx}
n: {<<: *m, name: x}
"""


def test_yaml_11_scalars_are_untouched(folder: Path) -> None:
    run = kmirror(stdin=YAML_11, cwd=folder, seconds=10, megabytes=200)
    assert run.returncode == 0, run.stderr
    assert run.stdout == YAML_11.replace(b"nginx", NGINX)
    unchanged = YAML_11.replace(b"%YAML 1.1\n---\n", b"")
    assert kmirror(stdin=unchanged, cwd=folder, seconds=10, megabytes=200).stdout == unchanged.replace(b"nginx", NGINX)


def test_mixed_line_endings_survive_and_positions_count_lines(folder: Path) -> None:
    stream = b"kind: Pod\r\nspec:\n  containers:\r\n  - image: nginx\n    args: [--x,\r\n      quay.io/a/b:1]\r\n"
    run = kmirror(stdin=stream, cwd=folder, seconds=10, megabytes=200)
    assert run.returncode == 0, run.stderr
    assert run.stdout == stream.replace(b"nginx", NGINX).replace(b"quay.io/", b"quay.example.com/")
    (folder / "blocked.yaml").write_text("blocked: [docker.io, quay.io]\n")
    check = kmirror("check", "-c", "blocked.yaml", "-", stdin=stream, cwd=folder, seconds=10, megabytes=200)
    assert check.returncode == 1
    assert check.stdout.decode().splitlines()[:2] == [
        "-:4:12: KM001 nginx is on blocked registry docker.io (no rule)",
        "-:6:7: KM001 quay.io/a/b:1 is on blocked registry quay.io (no rule)",
    ]


# The rules file: composed with a safe loader into nodes, never constructed into objects.

PYTHON_TAGS = {
    "apply-on-mirrors": "mirrors: !!python/object/apply:os.system ['touch {marker}']\n",
    "apply-on-a-value": "mirrors:\n  - from: !!python/object/apply:os.system ['touch {marker}']\n    to: x.example.com\n",
    "name-on-a-value": "mirrors:\n  - {{from: docker.io, to: !!python/name:os.system }}\n",
    "object-at-the-top": "!!python/object/new:os.system ['touch {marker}']\n",
}


@pytest.mark.parametrize("case", sorted(PYTHON_TAGS))
def test_python_tags_in_the_rules_file_run_nothing(folder: Path, case: str) -> None:
    marker = folder / "ran"
    (folder / "evil.yaml").write_text(PYTHON_TAGS[case].format(marker=marker))
    run = kmirror("-c", "evil.yaml", stdin=b"image: nginx\n", cwd=folder, seconds=10, megabytes=200)
    assert not marker.exists()
    if run.returncode == 0:  # a tag on a mapping is ignored: it is read as the plain mapping
        assert run.stdout == b"image: nginx\n"
    else:
        assert_clean_error(run, "invalid config")


@pytest.mark.parametrize(
    "rules",
    [
        "a: &a [x]\n" + "".join(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}" if i else "*a"] * 10) + "]\n" for i in range(9)) + "mirrors: *a8\n",
        "mirrors:\n  - {from: docker.io, to: x.example.com}\n" + "# padding\n" * 1_000_000,
        "mirrors: [{from: \"docker.io\xff\", to: x.example.com}]\n",
    ],
    ids=["alias-bomb", "ten-megabytes", "invalid-utf8"],
)
def test_hostile_rules_file_is_bounded(folder: Path, rules: str) -> None:
    (folder / "hostile.yaml").write_bytes(rules.encode("utf-8", "surrogateescape").replace("\xff".encode(), b"\xff"))
    run = kmirror("-c", "hostile.yaml", stdin=b"image: nginx\n", cwd=folder, seconds=30, megabytes=500)
    if run.returncode == 0:
        assert run.stdout == b"image: x.example.com/library/nginx\n"
    else:
        assert_clean_error(run, "hostile.yaml")


# Secrets: a password given to kmirror reaches no output, whatever the registry answers.


def test_registry_password_reaches_no_output(folder: Path) -> None:
    class Refuse(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802  (http.server's naming)
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="test"')
            self.send_header("Docker-Distribution-API-Version", "registry/2.0")
            self.end_headers()

        do_HEAD = do_GET

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Refuse)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        port = server.server_address[1]
        (folder / "local.yaml").write_text(f"mirrors: [{{from: docker.io, to: '127.0.0.1:{port}/hub'}}]\n")
        (folder / "pod.yaml").write_bytes(b"kind: Pod\nimage: nginx:1\n")
        password = "S3cret-pa55word"
        run = kmirror(
            "verify", "-c", "local.yaml", "--plain-http", "--username", "bob", "--password-stdin", "pod.yaml",
            stdin=f"{password}\n".encode(), cwd=folder, seconds=30, megabytes=300,
        )
    finally:
        server.shutdown()
    assert run.returncode == 1, run.stderr
    assert b"denied" in run.stdout
    shown = run.stdout + run.stderr
    assert password.encode() not in shown
    assert base64.b64encode(f"bob:{password}".encode()) not in shown


# Found by the fuzz campaigns and the bounded runs above (fuzz/README.md), fixed in
# rewriter/locate.py, stream.py and reference.py.

SIZE = 1_000_000  # 1 MB: linear work takes well under a second

LARGE_SCALARS = {
    "same-reference-repeated": b"x: \"" + b"quay.io/a/b:1 " * (SIZE // 14) + b"\"\n",
    "distinct-references-in-a-block": b"x: |\n" + b"".join(b"  run quay.io/a/b%d:1\n" % i for i in range(SIZE // 24)),
    "escaped-references": b"x: \"" + b"quay.io/a/b:1\\t" * (SIZE // 15) + b"\"\n",
    "dashes-like-a-flag": b"image: nginx\nx: \"" + b"-a" * (SIZE // 2) + b"\"\n",
    "image-repeated": b"a: " + b"image" * (SIZE // 5) + b"\n",
    "image-dot-repeated": b"a: " + b"image." * (SIZE // 6) + b"\n",
    "slashes": b"a: " + b"/" * SIZE + b"\n",
    "slash-letter": b"a: " + b"/a" * (SIZE // 2) + b"\n",
}


@pytest.mark.parametrize("case", sorted(LARGE_SCALARS))
def test_one_large_scalar_is_scanned_in_linear_time(folder: Path, case: str) -> None:
    run = kmirror(stdin=LARGE_SCALARS[case], cwd=folder, seconds=30, megabytes=1500)
    assert run.returncode == 0, run.stderr[-500:]


@pytest.mark.parametrize("character", [b"\x01", b"\x0b", b"\x1b", b"\x7f", "\x9b".encode(), "\ufffe".encode()])
def test_forbidden_character_is_one_clean_line_with_a_position(folder: Path, character: bytes) -> None:
    for stream in (b"image: nginx\nx: a" + character + b"b\n", b"a: b\nx: a" + character + b"b\n"):
        run = kmirror(stdin=stream, cwd=folder, seconds=10, megabytes=200)
        assert_clean_error(run, "-:2:5: invalid YAML: control character U+")


@pytest.mark.parametrize("stream", [b"%YAML 1.3\n---\nimage: nginx\n", b"%YAML 1.0\n---\nimage: nginx\n", b"---\n%YAML 0.1", b"---\n%YAML 1.3\n---\nimage: nginx\n"])
def test_unsupported_yaml_version_is_a_clean_error(folder: Path, stream: bytes) -> None:
    run = kmirror(stdin=stream, cwd=folder, seconds=10, megabytes=200)
    assert_clean_error(run, "invalid YAML")


def test_reused_anchor_is_valid_yaml_and_quiet(folder: Path) -> None:
    # YAML 1.2: an alias refers to the most recent node with that anchor. No warning on stderr.
    (folder / "rules.yaml").write_text("mirrors: [{from: quay.io, to: quay.example.com}]\n")
    stream = b"a: &x nginx\nb: &x quay.io/a/b:1\nimage: *x\nc: &y [1]\nd: &y [2]\n"
    run = kmirror("-c", "rules.yaml", stdin=stream, cwd=folder, seconds=10, megabytes=200)
    assert (run.returncode, run.stderr) == (0, b"")
    assert run.stdout == stream.replace(b"quay.io/", b"quay.example.com/")


def test_deep_rules_file_is_a_clean_error(folder: Path) -> None:
    (folder / "hostile.yaml").write_text("mirrors: " + "[" * 10_000 + "]" * 10_000 + "\n")
    run = kmirror("-c", "hostile.yaml", stdin=b"image: nginx\n", cwd=folder, seconds=30, megabytes=500)
    assert_clean_error(run, "hostile.yaml")


def test_helm_failure_does_not_show_secrets(folder: Path) -> None:
    from tools import tool

    run = kmirror(
        "helm", "./no-such-chart", "--helm", tool("helm4"), "--set", "db.password=S3cret-pa55",
        "--repo", "https://user:T0ken-x@charts.example.invalid", cwd=folder, seconds=60, megabytes=300,
    )
    assert run.returncode == 2
    assert b"helm failed:" in run.stderr
    assert b"S3cret-pa55" not in run.stderr and b"T0ken-x" not in run.stderr


# Issue 22: what reaches libyaml is bounded (rewriter/bounds.py), and positions cost O(1) each.

FLOW_50K = b"[" * 50_000 + b"]" * 50_000  # 100 kB that once crashed libyaml's composer (exit 139)
DEEP_50K = {
    "filter": ([], b"image: nginx\nx: " + FLOW_50K + b"\n"),
    "block-sequence": ([], b"image: nginx\nx:\n" + b"- " * 50_000 + b"b\n"),
    "check": (["check", "-"], b"image: nginx\nx: " + FLOW_50K + b"\n"),
    "configmap-json": ([], b"kind: ConfigMap\ndata:\n  pod.json: '{\"image\": \"nginx\", \"x\": " + FLOW_50K + b"}'\n"),
    "resource-list": (
        [],
        b"apiVersion: config.kubernetes.io/v1\nkind: ResourceList\nitems:\n- kind: Pod\n  spec: {containers: [{image: nginx}]}\n  x: "
        + FLOW_50K
        + b"\n",
    ),
}


@pytest.mark.parametrize("case", sorted(DEEP_50K))
def test_fifty_thousand_levels_are_refused_before_libyaml_composes(folder: Path, case: str) -> None:
    args, stream = DEEP_50K[case]
    run = kmirror(*args, stdin=stream, cwd=folder, seconds=30, megabytes=300)
    assert_clean_error(run, "nested deeper than")
    assert run.stderr.startswith(b"kmirror: error: -:")


def test_fifty_thousand_levels_in_a_rules_file_are_refused(folder: Path) -> None:
    (folder / "hostile.yaml").write_bytes(b"mirrors: " + FLOW_50K + b"\n")
    run = kmirror("-c", "hostile.yaml", stdin=b"image: nginx\n", cwd=folder, seconds=30, megabytes=300)
    assert_clean_error(run, "hostile.yaml:1:1009: invalid YAML: collections nested deeper than 1000 levels")


@pytest.mark.parametrize("count", [30, 70])  # 70: read by worker processes (64 files or more)
def test_rewrite_w_with_a_deep_file_last_changes_nothing_and_leaves_no_temporary_file(folder: Path, count: int) -> None:
    for i in range(count - 1):
        (folder / f"pod-{i:03}.yaml").write_bytes(b"image: nginx\n")
    (folder / "zz-deep.yaml").write_bytes(b"image: nginx\nx: " + FLOW_50K + b"\n")
    run = kmirror("rewrite", "-w", ".", cwd=folder, seconds=60, megabytes=600)
    assert_clean_error(run, "zz-deep.yaml:2:")
    assert {p.read_bytes() for p in folder.glob("pod-*.yaml")} == {b"image: nginx\n"}
    assert not [p for p in folder.iterdir() if p.name.endswith(".kmirror")]


@pytest.mark.parametrize(
    "stream",
    [
        b"x: " + b"[" * 200_000 + b"]" * 200_000 + b"\n",  # no image: once 180 s in libyaml's parse
        b"".join(b"%%TAG !t%d! tag:example.com,2000:\n" % i for i in range(200_000)) + b"---\nimage: nginx\n",  # once 104 s
    ],
    ids=["200k-levels-without-image", "200k-tag-directives"],
)
def test_input_that_makes_libyaml_super_linear_is_refused_at_once(folder: Path, stream: bytes) -> None:
    run = kmirror(stdin=stream, cwd=folder, seconds=20, megabytes=300)  # measured: 0.1 s
    assert_clean_error(run, "invalid YAML: ")


def test_a_document_of_millions_of_nodes_is_refused_in_bounded_memory(folder: Path) -> None:
    stream = b"image: nginx\nx: [" + b"a," * 4_000_000 + b"]\n"  # 8 MB: once 1.1 GB
    run = kmirror(stdin=stream, cwd=folder, seconds=60, megabytes=300)
    assert_clean_error(run, "-:2:1999995: too large: a document of more than 1,000,000 nodes (set KMIRROR_MAX_NODES to raise the limit)")


def test_the_nodes_limit_is_set_by_kmirror_max_nodes(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stream = b"image: nginx\nx: [" + b"a, " * 300 + b"]\n"
    monkeypatch.setenv("KMIRROR_MAX_NODES", "200")
    assert_clean_error(kmirror(stdin=stream, cwd=folder, seconds=10, megabytes=200), "more than 200 nodes")
    monkeypatch.setenv("KMIRROR_MAX_NODES", "400")
    assert kmirror(stdin=stream, cwd=folder, seconds=10, megabytes=200).stdout == stream.replace(b"nginx", NGINX)
    monkeypatch.setenv("KMIRROR_MAX_NODES", "lots")
    assert_clean_error(kmirror(stdin=stream, cwd=folder, seconds=10, megabytes=200), "invalid environment: KMIRROR_MAX_NODES='lots'")


def _pods(count: int) -> bytes:
    """`kubectl get pods -A -o json | jq -c`: a List of `count` pods on one line."""
    pod = '{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p%d","namespace":"ns"},"spec":{"containers":[{"name":"c","image":"quay.io/o/a%d:v1"},{"name":"s","image":"nginx:1.25"}]}}'
    return ('{"apiVersion":"v1","kind":"List","items":[' + ",".join(pod % (i, i % 7) for i in range(count)) + "]}\n").encode()


SCALING = {
    "minified-json-list": _pods,
    "references-in-one-scalar": lambda n: b"image: nginx\nx: " + b" ".join([b"quay.io/a/b:1"] * (4 * n)) + b"\n",
}


@pytest.mark.parametrize("case", sorted(SCALING))
def test_many_references_on_one_line_cost_linear_work(folder: Path, case: str) -> None:
    # CPU time at n and 4n in the same run: linear work gives about 4x (less: start-up counts
    # once), the quadratic positions of before gave 8x to 16x.
    runs = []
    for n in (5_000, 20_000):
        run = kmirror(stdin=SCALING[case](n), cwd=folder, seconds=120, megabytes=1500)
        assert run.returncode == 0, run.stderr
        runs.append(run)
    assert runs[1].cpu_seconds / runs[0].cpu_seconds < 6, [r.cpu_seconds for r in runs]
