"""Many files on every core: the same outcomes, in order, and the same failures as one at a time."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from rewriter.batch import MIN_FILES, process_files
from rewriter.config import load_config
from rewriter.errors import KmirrorError
from rewriter.files import Replacement
from rewriter.pipeline import process

KMIRROR = str(Path(sys.executable).parent / "kmirror")
RULES = "mirrors:\n  - {from: docker.io, to: hub.example.com}\n"
COUNT = MIN_FILES * 3


def _pod(i: int) -> bytes:
    return f"kind: Pod\nmetadata:\n  name: p{i}  # ☕\nspec:\n  containers:\n  - image: nginx:1.{i}\n".encode()


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / ".kmirror.yaml").write_text(RULES)
    for i in range(COUNT):
        (tmp_path / f"pod-{i:04}.yaml").write_bytes(_pod(i))
    return tmp_path


def test_workers_give_what_one_process_gives_in_order(folder: Path) -> None:
    assert (os.cpu_count() or 1) > 1, "this machine has one core: the workers are not exercised"
    config = load_config(str(folder / ".kmirror.yaml"), None, folder)
    names = sorted(str(p) for p in folder.glob("pod-*.yaml"))
    outcomes = list(process_files(names, config))
    assert [o.source.name for o in outcomes] == names
    assert [o.output for o in outcomes] == [process(Path(n).read_bytes(), n, config).output for n in names]
    assert [[i.location.text for i in o.images] for o in outcomes] == [[f"nginx:1.{i}"] for i in range(COUNT)]


def test_a_bad_file_among_many_is_the_error_and_nothing_is_written(folder: Path) -> None:
    (folder / "pod-0100.yaml").write_bytes(b"kind: Pod\nspec: [\n")
    before = {p: p.read_bytes() for p in folder.glob("*.yaml")}
    done = subprocess.run([KMIRROR, "rewrite", "-w", "."], cwd=folder, capture_output=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.decode().splitlines() == ["kmirror: error: pod-0100.yaml:3:1: invalid YAML: did not find expected node content"]
    assert {p: p.read_bytes() for p in folder.glob("*.yaml")} == before


def test_rewrite_in_place_many_files(folder: Path) -> None:
    done = subprocess.run([KMIRROR, "rewrite", "-w", "."], cwd=folder, capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stderr.decode() == f"rewrote {COUNT} files\n"
    for i in range(COUNT):
        assert (folder / f"pod-{i:04}.yaml").read_bytes() == _pod(i).replace(b"nginx", b"hub.example.com/library/nginx")
    assert not [p for p in folder.iterdir() if p.name.endswith(".kmirror")]


def test_a_failed_replacement_changes_no_file_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    names = [str(tmp_path / f"f{i}.yaml") for i in range(20)]
    for name in names:
        Path(name).write_text("a: 1\n")
    Path(names[5]).unlink()
    with pytest.raises(KmirrorError, match=r"^cannot write: .*f5.yaml: No such file or directory$"):
        with Replacement() as replacement:
            for name in names:
                replacement.stage(name, b"a: 2\n", b"a: 1\n")
            replacement.commit()
    assert {Path(n).read_bytes() for n in names if n != names[5]} == {b"a: 1\n"}
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".kmirror")]


def test_a_replacement_left_without_commit_changes_nothing(tmp_path: Path) -> None:
    names = [str(tmp_path / f"f{i}.yaml") for i in range(20)]
    for name in names:
        Path(name).write_text("a: 1\n")
    with pytest.raises(KmirrorError, match="later"):
        with Replacement() as replacement:
            for name in names:
                replacement.stage(name, b"a: 2\n", b"a: 1\n")
            raise KmirrorError("later")
    assert {Path(n).read_bytes() for n in names} == {b"a: 1\n"}
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(Path(n).name for n in names)


def test_a_replacement_commits_every_file(tmp_path: Path) -> None:
    names = [str(tmp_path / f"f{i}.yaml") for i in range(20)]
    for name in names:
        Path(name).write_text("a: 1\n")
    with Replacement() as replacement:
        for i, name in enumerate(names):
            replacement.stage(name, f"a: {i}\n", b"a: 1\n")
        replacement.commit()
    assert [Path(n).read_text() for n in names] == [f"a: {i}\n" for i in range(20)]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(Path(n).name for n in names)


def test_a_replacement_refuses_a_file_changed_since_it_was_read(tmp_path: Path) -> None:
    names = [str(tmp_path / f"f{i}.yaml") for i in range(5)]
    for name in names:
        Path(name).write_text("a: 1\n")
    with pytest.raises(KmirrorError, match=r"^cannot write: .*f3.yaml: changed by another program since kmirror read it; no file changed"):
        with Replacement() as replacement:
            for name in names:
                replacement.stage(name, b"a: 2\n", b"a: 1\n")
            Path(names[3]).write_text("a: 3\n")  # same size, other bytes
            replacement.commit()
    assert [Path(n).read_bytes() for n in names] == [b"a: 1\n", b"a: 1\n", b"a: 1\n", b"a: 3\n", b"a: 1\n"]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(Path(n).name for n in names)
