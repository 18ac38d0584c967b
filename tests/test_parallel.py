"""One large stream on every core: the same locations and the same first error as one process gives."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from rewriter import cores, parallel
from rewriter.config import load_config
from rewriter.errors import KmirrorError
from rewriter.locate import locate, may_hold_images
from rewriter.pipeline import process
from rewriter.stream import Source, decode, documents

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "corpus"
POD = "---\nkind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n  - image: nginx:1\n"
MAP = "---\nkind: ConfigMap\ndata:\n  key: value\n"
BROKEN = "---\nkind: ConfigMap\ndata: [\n"
BROKEN_POD = "---\nkind: Pod\nspec: {image: nginx, [\n"


@pytest.fixture
def forks(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Every stream of a few bytes or more is cut into parts; the list gets the pid of each child forked."""
    assert cores.usable() > 1, "this machine has one core: parts are not located apart"
    monkeypatch.setattr(parallel, "_PART", 64)
    children: list[int] = []
    fork = os.fork

    def counted() -> int:
        pid = fork()
        if pid:
            children.append(pid)
        return pid

    monkeypatch.setattr(parallel.os, "fork", counted)
    return children


def _reaped(pids: list[int]) -> bool:
    for pid in pids:
        with pytest.raises(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
    return True


def _located(text: str) -> list[object]:
    source = decode(text.encode(), "s.yaml")
    return parallel.locate_stream(source, may_hold_images, ())  # type: ignore[return-value]


def _error(text: str) -> str:
    with pytest.raises(KmirrorError) as raised:
        _located(text)
    return str(raised.value)


def test_the_corpus_is_located_as_one_process_locates_it(forks: list[int]) -> None:
    text = "\n---\n".join(path.read_text(encoding="utf-8") for path in sorted(CORPUS.glob("*.yaml")))
    source = decode(text.encode(), "corpus.yaml")
    assert parallel.locate_stream(source, may_hold_images, ()) == locate(documents(source, may_hold_images))
    assert len(forks) == cores.usable() - 1
    assert _reaped(forks)


def test_an_error_in_a_later_part_is_reported_at_its_line(forks: list[int]) -> None:
    text = POD * 10 + MAP * 10 + BROKEN + POD
    line = (POD * 10 + MAP * 10).count("\n") + 4  # the marker after `data: [`
    assert _error(text) == f"s.yaml:{line}:1: invalid YAML: did not find expected node content"
    assert forks and _reaped(forks)


@pytest.mark.parametrize("first", [BROKEN, BROKEN_POD])
def test_the_first_error_in_the_stream_is_reported_when_two_parts_have_one(forks: list[int], first: str) -> None:
    text = POD + first + POD * 20 + BROKEN + POD
    apart = _error(text)
    assert forks and _reaped(forks)
    with pytest.raises(KmirrorError) as raised:
        locate(documents(decode(text.encode(), "s.yaml"), may_hold_images))
    assert apart == str(raised.value)
    assert int(apart.split(":")[1]) < text.count("\n") - 4


def test_too_deep_nesting_in_a_later_part_is_a_clean_error(forks: list[int], tmp_path: Path) -> None:
    (tmp_path / ".kmirror.yaml").write_text("mirrors:\n  - {from: docker.io, to: hub.example.com}\n")
    config = load_config(str(tmp_path / ".kmirror.yaml"), None, tmp_path)
    deep = "---\nkind: Pod\nimage: nginx\nx: " + "[" * 300 + "]" * 300 + "\n"
    text = POD * 20 + deep
    with pytest.raises(KmirrorError, match=rf"^s.yaml:{(POD * 20).count(chr(10)) + 4}:\d+: invalid YAML: collections nested deeper than 200 levels$"):
        process(text.encode(), "s.yaml", config)
    assert forks and _reaped(forks)


def test_a_child_that_dies_has_its_part_located_here(forks: list[int], monkeypatch: pytest.MonkeyPatch) -> None:
    parent = os.getpid()
    located = parallel._located

    def dying(source: Source, *rest: object) -> object:
        if os.getpid() != parent:
            os.kill(os.getpid(), signal.SIGKILL)
        return located(source, *rest)  # type: ignore[arg-type]

    monkeypatch.setattr(parallel, "_located", dying)
    text = POD * 30
    source = decode(text.encode(), "s.yaml")
    assert parallel.locate_stream(source, may_hold_images, ()) == locate(documents(source, may_hold_images))
    assert forks and _reaped(forks)


def test_an_error_in_the_first_part_ends_the_children(forks: list[int]) -> None:
    text = BROKEN + POD * 200
    assert _error(text) == "s.yaml:4:1: invalid YAML: did not find expected node content"
    assert forks and _reaped(forks)


def test_small_streams_stay_in_this_process(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_fork() -> int:
        raise AssertionError("forked for a small stream")

    monkeypatch.setattr(parallel.os, "fork", no_fork)
    assert len(_located(POD * 100)) == 100
