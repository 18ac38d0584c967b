"""The README's examples run: the quick-start command and every rules example with its stated result."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from rewriter.config import parse_config
from rewriter.reference import parse

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
KMIRROR = str(Path(sys.executable).parent / "kmirror")
RULE_BLOCKS = [b for b in re.findall(r"```yaml\n(.*?)```", README, re.S) if "mirrors:" in b]
ARROW = re.compile(r"#.*?(\S+) -> (\S+)\s*$")


def test_quick_start_commands_are_the_documented_ones() -> None:
    assert "pip install . && kmirror < examples/demo.yaml" in README
    assert "./scripts/test" in (ROOT / ".ci" / "run").read_text()


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
