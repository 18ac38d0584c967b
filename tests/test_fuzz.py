"""A short fuzz run in the suite: Hypothesis drives the oracle of `fuzz/oracle.py`.

The oracle is the one the atheris targets use (`fuzz/README.md`): any bytes either fail
with a KmirrorError (`kmirror: error: ...`, exit 2) or rewrite keeping every promise;
any string either parses as an image reference or raises ReferenceError. Inputs here are
raw bytes, YAML token soup built from the fuzzing dictionary, and mutated golden inputs;
`fuzz/regressions/` holds inputs that once broke kmirror or the oracle. Streams are checked
in a forked child under a memory limit (`oracle.check_stream_isolated`): a crash or running
out of memory fails the example instead of the test run.
"""

from __future__ import annotations

import ast
import os
import signal
import sys
import threading
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "fuzz"))

import oracle  # noqa: E402  (fuzz/ is not a package: the atheris targets run it as a script folder)

TOKENS = [
    ast.literal_eval("b" + line).decode("utf-8")  # the dictionary's escapes are bytes (libFuzzer's format)
    for line in (ROOT / "fuzz" / "yaml.dict").read_text().splitlines()
    if line.startswith('"')
]
EXAMPLES = 300  # a fixed budget, a few seconds in all; fuzz/README.md runs the long campaigns
SEEDS = [p.read_bytes() for p in sorted((ROOT / "fixtures" / "rewrite").glob("*/input.yaml"))]
REGRESSIONS = sorted((ROOT / "fuzz" / "regressions").iterdir())
def _soup(pieces: list[str], bom: bool) -> bytes:
    return (b"\xef\xbb\xbf" if bom else b"") + "".join(pieces).encode("utf-8")


soups = st.builds(_soup, st.lists(st.sampled_from(TOKENS) | st.text(max_size=4), max_size=80), st.booleans())


@st.composite
def mutated_seeds(draw: st.DrawFn) -> bytes:
    """A golden input with a few bytes inserted, deleted, duplicated or replaced."""
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 8))):
        at = draw(st.integers(0, len(data)))
        action = draw(st.sampled_from(("insert", "delete", "duplicate", "replace")))
        if action == "insert":
            data[at:at] = draw(st.sampled_from(TOKENS)).encode("utf-8")
        elif action == "delete":
            del data[at : at + draw(st.integers(1, 40))]
        elif action == "duplicate":
            data[at:at] = data[at : at + draw(st.integers(1, 200))]
        else:
            data[at : at + 1] = draw(st.binary(min_size=1, max_size=1))
    return bytes(data)


@settings(max_examples=EXAMPLES)
@given(st.binary(max_size=2000))
def test_fuzz_raw_bytes(data: bytes) -> None:
    oracle.check_stream_isolated(data)


@settings(max_examples=EXAMPLES)
@given(soups)
def test_fuzz_yaml_token_soup(data: bytes) -> None:
    oracle.check_stream_isolated(data)


@settings(max_examples=EXAMPLES)
@given(mutated_seeds())
def test_fuzz_mutated_golden_inputs(data: bytes) -> None:
    oracle.check_stream_isolated(data)


REFERENCE_PIECES = ["/", ":", "@", ".", "-", "_", "__", "sha256:", "5" * 64, "A", "a", "1", "[::1]", "localhost", "docker.io", "library", "x" * 128]


@settings(max_examples=EXAMPLES)
@given(st.text(max_size=300) | st.lists(st.sampled_from(REFERENCE_PIECES), max_size=20).map("".join))
def test_fuzz_reference_parser(text: str) -> None:
    oracle.check_reference(text)


def test_regressions_pass_the_oracle() -> None:
    assert REGRESSIONS, "fuzz/regressions/ is empty"
    for path in REGRESSIONS:
        oracle.check_stream_isolated(path.read_bytes())


def test_the_oracle_fails_a_child_killed_by_a_signal() -> None:
    # No input crashes kmirror now (that is the point): the test kills the checking child itself.
    me = os.getpid()
    stop = threading.Event()

    def kill_the_child() -> None:
        while not stop.is_set():
            children = Path(f"/proc/{me}/task/{me}/children").read_text().split()
            if children:
                os.kill(int(children[0]), signal.SIGKILL)
                return

    killer = threading.Thread(target=kill_the_child)
    killer.start()
    try:
        with pytest.raises(AssertionError, match="killed by signal 9"):
            oracle.check_stream_isolated(b"".join(b"---\nimage: nginx:1.%d\n" % i for i in range(100_000)))
    finally:
        stop.set()
        killer.join()


def test_the_oracle_fails_a_rewrite_beyond_its_memory_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(oracle, "MEMORY_LIMIT", 4 * 1024 * 1024)
    with pytest.raises(AssertionError, match="MemoryError"):
        oracle.check_stream_isolated(b"image: nginx\nx: " + b"y" * 8 * 1024 * 1024 + b"\n")
