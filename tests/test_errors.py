"""rewriter.errors: messages, and control characters escaped in every text output (issue 22).

A file name may hold any byte but `/` and NUL: a newline in one must not forge a line of
`check`'s report or of a message, nor an escape sequence reach the terminal. The real
`kmirror` runs on a folder whose file names hold control characters.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from rewriter.errors import child_failure, printable, printable_lines

KMIRROR = str(Path(sys.executable).parent / "kmirror")
RULES = "mirrors:\n  - {from: docker.io, to: hub.example.com}\nblocked: [docker.io, quay.io]\n"
FORGED = "a\nforged.yaml:1:1: KM001 x\x1b[2K\r.yaml"
SHOWN = "a\\nforged.yaml:1:1: KM001 x\\x1b[2K\\r.yaml"


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("plain, with a tab\tand café", "plain, with a tab\tand café"),
        ("a\nb\r\n", "a\\nb\\r\\n"),
        ("\x00\x07\x1b[31m\x7f\x85\x9b", "\\x00\\x07\\x1b[31m\\x7f\\x85\\x9b"),
        ("line\u2028paragraph\u2029", "line\\u2028paragraph\\u2029"),
    ],
)
def test_printable_escapes_every_control_character_but_tab(text: str, shown: str) -> None:
    assert printable(text) == shown


def test_printable_lines_keeps_only_breaks_before_indented_lines() -> None:
    message = str(child_failure("helm", "helm template x", 1, "Error: bad\x1b[0m\nsecond"))
    assert printable_lines(message) == "helm failed: helm template x: exit code 1:\n    Error: bad\\x1b[0m\n    second"
    assert printable_lines("cannot read: a\nkmirror: error: forged") == "cannot read: a\\nkmirror: error: forged"


def kmirror(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("KMIRROR_CONFIG", "GITHUB_ACTIONS")}
    return subprocess.run([KMIRROR, *args], capture_output=True, text=True, cwd=folder, env=env, timeout=60)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / ".kmirror.yaml").write_text(RULES)
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / FORGED).write_text("image: quay.io/x/y:1\n---\nimage: nginx:1.25\n")
    return tmp_path


def test_check_text_report_cannot_be_forged(folder: Path) -> None:
    done = kmirror(folder, "check", "m")
    assert (done.returncode, done.stderr) == (1, "")
    assert done.stdout.splitlines() == [
        f"m/{SHOWN}:1:8: KM001 quay.io/x/y:1 is on blocked registry quay.io (no rule)",
        f"m/{SHOWN}:3:8: KM001 nginx:1.25 is on blocked registry docker.io (mirror: hub.example.com/library/nginx:1.25)",
        f"2 problems in 1 file (1 file checked against {folder / '.kmirror.yaml'})",
    ]


def test_images_text_output_cannot_be_forged(folder: Path) -> None:
    done = kmirror(folder, "images", "m")
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.splitlines() == [
        f"m/{SHOWN}:1:8: quay.io/x/y:1 -> (unchanged)",
        f"m/{SHOWN}:3:8: nginx:1.25 -> hub.example.com/library/nginx:1.25",
    ]


def test_rewrite_messages_and_diff_headers_cannot_be_forged(folder: Path) -> None:
    checked = kmirror(folder, "rewrite", "--check", "m")
    assert checked.returncode == 1
    assert checked.stderr.splitlines() == [f"would rewrite m/{SHOWN}", "1 file would be rewritten, 0 unchanged"]
    diff = kmirror(folder, "rewrite", "--diff", "m")
    assert diff.stdout.splitlines()[:2] == [f"--- a/m/{SHOWN}", f"+++ b/m/{SHOWN}"]
    strict = kmirror(folder, "rewrite", "--strict", "m")
    assert (strict.returncode, strict.stdout) == (1, "")
    assert strict.stderr.splitlines()[0] == f"m/{SHOWN}:1:8: KM001 quay.io/x/y:1 is on blocked registry quay.io (no rule)"
    assert len(strict.stderr.splitlines()) == 2


def test_an_error_message_cannot_be_forged(folder: Path) -> None:
    (folder / "m" / FORGED).write_text("image: [\n")
    done = kmirror(folder, "rewrite", "m")
    assert (done.returncode, done.stdout) == (2, "")
    assert len(done.stderr.splitlines()) == 1
    assert done.stderr.startswith(f"kmirror: error: m/{SHOWN}:")
