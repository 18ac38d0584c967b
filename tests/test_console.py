"""The executable's fast path: `--version` and the bare filter run without typer, as typer would run them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from tools import tool

from rewriter.console import filter_options

KMIRROR = str(Path(sys.executable).parent / "kmirror")
POD = b"kind: Pod\nspec:\n  containers:\n  - image: nginx:1.25  # web\n"


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ([], (None, None, False, None)),
        (["-c", "r.yaml"], ("r.yaml", None, False, None)),
        (["--config", "r.yaml", "--strict"], ("r.yaml", None, True, None)),
        (["--config=r.yaml"], ("r.yaml", None, False, None)),
        (["--preset", "daocloud"], (None, "daocloud", False, None)),
        (["--preset=daocloud", "-c", "r.yaml"], ("r.yaml", "daocloud", False, None)),
        (["--pin"], (None, None, False, "source")),  # issue 21: --pin and --pin-from
        (["--pin", "--pin-from", "mirror", "--strict"], (None, None, True, "mirror")),
        (["--pin-from=mirror", "--pin"], (None, None, False, "mirror")),
    ],
)
def test_filter_options(args: list[str], expected: tuple[str | None, str | None, bool, str | None]) -> None:
    assert filter_options(args) == expected


@pytest.mark.parametrize(
    "args",
    [
        ["rewrite", "x.yaml"],
        ["--help"],
        ["--debug"],
        ["-c"],
        ["-c", "-"],
        ["-cr.yaml"],
        ["--config="],
        ["--strict", "--strict"],
        ["-c", "a.yaml", "--config", "b.yaml"],
        ["--version", "--strict"],
        ["--unknown"],
        ["--pin", "--pin"],
        ["--pin-from", "mirror"],  # without --pin: the full command line says what is wrong
    ],
)
def test_anything_else_goes_to_the_full_command_line(args: list[str]) -> None:
    assert filter_options(args) is None


def test_version_and_filter_do_not_load_typer_or_dataclasses(tmp_path: Path) -> None:
    # Start-up time (issue 11): typer and rich take tens of milliseconds to import; dataclasses
    # takes about 10 and each dataclass about 1 more, so the filter's records are NamedTuples.
    (tmp_path / "rules.yaml").write_text("mirrors:\n  - {from: docker.io, to: hub.example.com}\n")
    code = (
        "import io, sys\n"
        "from rewriter.console import main\n"
        "sys.stdin = io.TextIOWrapper(io.BytesIO(sys.argv[1].encode()))\n"
        "assert main(['--version']) == 0 and main(['-c', 'rules.yaml']) == 0\n"
        "print([m for m in ('typer', 'dataclasses') if m in sys.modules], file=sys.stderr)\n"
    )
    done = subprocess.run([sys.executable, "-c", code, POD.decode()], cwd=tmp_path, capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout == b"kmirror 0.1.0\n" + POD.replace(b"nginx", b"hub.example.com/library/nginx")
    assert done.stderr == b"[]\n"


@pytest.mark.parametrize("args", [["--version"], ["-c", "rules.yaml", "--strict"], ["--config=rules.yaml"], ["--preset", "nope"], ["-c", "missing.yaml"]])
def test_fast_path_answers_as_typer_does(tmp_path: Path, args: list[str]) -> None:
    (tmp_path / "rules.yaml").write_text("mirrors:\n  - {from: docker.io, to: hub.example.com}\nblocked: [quay.io]\n")
    stream = POD + b"---\nimage: quay.io/a/b:1\n"
    fast = subprocess.run([KMIRROR, *args], input=stream, cwd=tmp_path, capture_output=True, timeout=60)
    # --debug is not a filter option: the same command line goes through typer.
    full = subprocess.run([KMIRROR, "--debug", *args], input=stream, cwd=tmp_path, capture_output=True, timeout=60)
    assert (fast.returncode, fast.stdout, fast.stderr) == (full.returncode, full.stdout, full.stderr)


def imported_modules(argv: list[str], cwd: Path) -> set[str]:
    """The modules a `kmirror` run imports, from `python -X importtime`'s report on standard error."""
    done = subprocess.run([sys.executable, "-X", "importtime", KMIRROR, *argv], cwd=cwd, capture_output=True,
                          text=True, timeout=60, check=False)
    lines = [line for line in done.stderr.splitlines() if line.startswith("import time:")]
    assert lines, done.stderr
    return {line.rpartition("|")[2].strip() for line in lines}


def test_check_of_one_file_loads_neither_pydantic_nor_pyhelm3(tmp_path: Path) -> None:
    # Issue 20: typer 0.29 imports pydantic for every subcommand (~65 ms); pyhelm3 cost ~130 ms and
    # brought pydantic, PyYAML and semver (kmirror now runs helm itself: rewriter/child.py).
    (tmp_path / "pod.yaml").write_bytes(POD)
    (tmp_path / ".kmirror.yaml").write_text("mirrors:\n  - {from: docker.io, to: hub.example.com}\n")
    modules = imported_modules(["check", "pod.yaml"], tmp_path)
    assert "typer" in modules and "rewriter.cli" in modules  # the subcommand path was the one measured
    heavy = {m for m in modules if m.split(".")[0] in {"pydantic", "pydantic_core", "pyhelm3", "yaml", "semver"}}
    assert heavy == set()
