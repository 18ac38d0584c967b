"""The README's examples run: the quick-start commands (the install in a fresh clone) and every rules example with its stated result."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from test_packaging import project_files

from rewriter.config import parse_config
from rewriter.reference import parse

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
KMIRROR = str(Path(sys.executable).parent / "kmirror")
RULE_BLOCKS = [b for b in re.findall(r"```yaml\n(.*?)```", README, re.S) if "mirrors:" in b]
ARROW = re.compile(r"#.*?(\S+) -> (\S+)\s*$")


QUICK_START = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
SET_UP = re.findall(r"```sh\n(.*?)\n```", QUICK_START, re.S)
INSTALL = "python3 -m venv .venv && .venv/bin/pip install . && .venv/bin/kmirror < examples/demo.yaml"


def test_quick_start_commands_are_the_documented_ones() -> None:
    # The first works on Debian and Ubuntu as written (PEP 668 refuses a bare `pip install .`).
    assert SET_UP == [INSTALL, "./scripts/test"]
    assert "./scripts/test" in (ROOT / ".ci" / "run").read_text()


def test_quick_start_install_in_a_fresh_clone(tmp_path: Path) -> None:
    # Exactly the README's first command, in a copy of what a clone holds, from a shell whose
    # PATH has no virtual environment of this checkout; it installs from the package index.
    clone = tmp_path / "kmirror"
    for name in sorted(project_files()):
        (clone / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, clone / name)
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    env["PATH"] = os.pathsep.join(p for p in env["PATH"].split(os.pathsep) if not p.startswith(str(ROOT)))
    done = subprocess.run(["bash", "-c", SET_UP[0]], cwd=clone, env=env, capture_output=True, timeout=900, check=False)
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-3000:]
    # pip's progress comes first on standard output, then the rewritten demo.
    assert done.stdout.endswith(b"\n" + (ROOT / "examples" / "demo.expected.yaml").read_bytes())
    assert (clone / ".venv" / "bin" / "kmirror").is_file()


def test_docs_name_no_release_tag() -> None:
    # kmirror has no release tags yet (docs/releasing.md): installs and pre-commit name commits.
    texts = {p: p.read_text(encoding="utf-8") for p in [ROOT / "README.md", *(ROOT / "docs").glob("*.md"), *(ROOT / "examples").rglob("*.y*ml")]}
    tagged = re.compile(r"kmirror/kmirror@v\d|rev: v\d|kmirror@v\d")
    assert {str(p.relative_to(ROOT)) for p, text in texts.items() if tagged.search(text)} == set()


def test_quick_start_demo_output(tmp_path: Path) -> None:
    # Run where no .kmirror.yaml is found, as on a fresh clone: the default preset applies.
    demo = (ROOT / "examples" / "demo.yaml").read_bytes()
    result = subprocess.run([KMIRROR], input=demo, capture_output=True, cwd=tmp_path, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout == (ROOT / "examples" / "demo.expected.yaml").read_bytes()
    assert b"using the built-in preset 'daocloud'" in result.stderr


def test_readme_has_rules_examples() -> None:
    assert len(RULE_BLOCKS) >= 4


@pytest.mark.parametrize("block", RULE_BLOCKS, ids=[f"block{i}" for i in range(len(RULE_BLOCKS))])
def test_rules_example_loads_and_maps_as_its_comments_say(block: str) -> None:
    config = parse_config(block, "README.md")
    claims = [m.groups() for line in block.splitlines() if (m := ARROW.search(line))]
    for source, expected in claims:
        decision = config.rules.decide(parse(source))
        assert str(decision.final) == expected, (source, decision.rule)
