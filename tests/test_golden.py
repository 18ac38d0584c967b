"""Golden cases of the stream rewriter, discovered from `fixtures/rewrite/<case>/`.

Each case folder holds `input.yaml`, `rules.yaml` (a `.kmirror.yaml`), `expected.yaml` (the
exact output bytes) and, when `kmirror rewrite` reports problems, `expected-findings.txt` (its
stderr lines), after `expected-notes.txt` when it notes something first. Every case runs
through the pipeline and through the installed `kmirror` command; bytes are compared, never
parsed structures. The expected files were written by
hand; `SOURCE.md` in a case folder says how a real tool produced its input.
"""

from __future__ import annotations

import difflib
import subprocess
from pathlib import Path

import pytest

from rewriter.config import parse_config
from rewriter.pipeline import Outcome, process

ROOT = Path(__file__).resolve().parents[1]
CASES = ROOT / "fixtures" / "rewrite"
KMIRROR = ROOT / ".venv" / "bin" / "kmirror"
NAMES = sorted(p.name for p in CASES.iterdir() if (p / "input.yaml").is_file()) or ["(no cases)"]


def _run(case: Path, data: bytes) -> Outcome:
    rules = (case / "rules.yaml").read_text(encoding="utf-8")
    return process(data, "input.yaml", parse_config(rules, "rules.yaml"))


def _expected_findings(case: Path) -> list[str]:
    path = case / "expected-findings.txt"
    return path.read_text(encoding="utf-8").splitlines() if path.is_file() else []


def _same(actual: bytes, expected: bytes) -> None:
    """Assert equal bytes; on a difference show it line by line, with line ends visible."""
    if actual != expected:
        before = [repr(line) for line in expected.splitlines(keepends=True)]
        after = [repr(line) for line in actual.splitlines(keepends=True)]
        diff = "\n".join(difflib.unified_diff(before, after, "expected", "actual", lineterm=""))
        raise AssertionError(f"output differs from expected.yaml:\n{diff}")


def test_cases_are_complete() -> None:
    assert len(NAMES) >= 25
    for name in NAMES:
        for part in ("rules.yaml", "expected.yaml"):
            assert (CASES / name / part).is_file(), f"{name} has no {part}"


@pytest.mark.parametrize("name", NAMES)
def test_pipeline(name: str) -> None:
    case = CASES / name
    outcome = _run(case, (case / "input.yaml").read_bytes())
    _same(outcome.output, (case / "expected.yaml").read_bytes())
    assert [problem.text() for problem in outcome.problems] == _expected_findings(case)


@pytest.mark.parametrize("name", NAMES)
def test_second_run_changes_nothing(name: str) -> None:
    case = CASES / name
    expected = (case / "expected.yaml").read_bytes()
    _same(_run(case, expected).output, expected)


@pytest.mark.parametrize("name", NAMES)
def test_command_line(name: str) -> None:
    assert KMIRROR.is_file(), f"{KMIRROR} is missing: run the tests with ./scripts/test"
    case = CASES / name
    done = subprocess.run(
        [str(KMIRROR), "rewrite", "--config", "rules.yaml", "input.yaml"],
        cwd=case,
        capture_output=True,
        timeout=60,
    )
    _same(done.stdout, (case / "expected.yaml").read_bytes())
    notes = case / "expected-notes.txt"  # what kmirror notes on stderr before the findings
    expected = (notes.read_text(encoding="utf-8").splitlines() if notes.is_file() else []) + _expected_findings(case)
    assert done.stderr.decode("utf-8").splitlines() == expected
    assert done.returncode == 0
