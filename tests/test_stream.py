"""Documents composed piece by piece: same documents, same indices, same errors as the whole stream."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from rewriter.errors import KmirrorError
from rewriter.locate import locate, may_hold_images
from rewriter import stream as stream_module
from rewriter.stream import decode, documents

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
CORPUS_FILES = sorted(CORPUS.glob("*.yaml"))


@pytest.fixture(params=["here", "apart"])
def checking(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Pieces that are not composed are parsed in this process, or (from 0 bytes on) in a forked one."""
    if request.param == "apart":
        monkeypatch.setattr(stream_module, "_APART", 0)
    return str(request.param)


@pytest.mark.parametrize("path", CORPUS_FILES, ids=[p.name for p in CORPUS_FILES])
def test_prefilter_finds_exactly_what_the_full_locate_finds(path: Path, checking: str) -> None:
    source = decode(path.read_bytes(), path.name)
    assert locate(documents(source, may_hold_images)) == locate(documents(source))


STREAMS = {
    "leading comment": "# c\n---\nimage: a\n",
    "empty documents": "---\n# only a comment\n---\n---\nimage: a\n",
    "end markers": "x: 1\n...\n# c\n---\nimage: a\n...\nimage: b\n",
    "no markers": "image: a\n",
    "trailing marker": "image: a\n---\n",
    "marker with content": "--- {image: a}\n--- |\n  text\n---\nimage: b\n",
    "directive": "%YAML 1.2\n---\nx: 1\n---\nimage: a\n",
    "not a marker": "x: ---\n---x: 1\n---\nimage: a\n",
    "crlf": "x: 1\r\n---\r\nimage: a\r\n",
}


@pytest.mark.parametrize("text", STREAMS.values(), ids=list(STREAMS))
def test_document_indices_match_whole_stream_composition(text: str) -> None:
    source = decode(text.encode(), "s.yaml")
    whole = [(d.index, d.stream_offset(d.root.start_mark.index)) for d in documents(source) if d.root is not None and d.root.value]
    pieces = [(d.index, d.stream_offset(d.root.start_mark.index)) for d in documents(source, lambda _: True) if d.root is not None and d.root.value]
    assert pieces == whole
    assert locate(documents(source, may_hold_images)) == locate(documents(source))


def test_syntax_error_in_a_document_without_images_is_still_reported() -> None:
    source = decode(b"image: a\n---\nkind: ConfigMap\ndata: [\n", "s.yaml")
    with pytest.raises(KmirrorError, match=r"^s.yaml:5:1: invalid YAML"):
        list(documents(source, may_hold_images))


def test_syntax_error_position_is_in_stream_lines() -> None:
    source = decode(b"a: 1\n---\nimage: nginx\nb: [\n", "s.yaml")
    with pytest.raises(KmirrorError, match=r"^s.yaml:5:1: invalid YAML"):
        list(documents(source, may_hold_images))


@pytest.mark.parametrize(
    "text",
    [
        "image: nginx\n",
        "image:\n  nginx\n",
        "- name: SIDECAR_IMAGE\n  value: busybox:1.36\n",
        "args: [--engine-image, longhornio/engine:v1]\n",
        "volumes: [{image: {reference: busybox}}]\n",
        'a: "{\\"image\\": \\"busybox:1\\"}"\n',
        "a: --reloader=quay.io/x/y:v1\n",
        "url: docker://registry:5000/x:y\n",
    ],
)
def test_prefilter_keeps_every_shape_locate_reads(text: str) -> None:
    assert may_hold_images(text)
    source = decode(text.encode(), "s.yaml")
    assert locate(documents(source))


@pytest.mark.parametrize(
    "text",
    [
        "kind: CustomResourceDefinition\nspec:\n  image:\n    description: the container image\n    type: object\n",
        "labels:\n  app.kubernetes.io/name: web\n",
        "image: {}\n",
        "additionalPrinterColumns:\n- jsonPath: .spec.image\n  name: Image\n  type: string\n",
        "apiVersion: rbac.authorization.k8s.io/v1\n",
    ],
)
def test_prefilter_skips_what_cannot_hold_images(text: str) -> None:
    assert not may_hold_images(text)
    source = decode(text.encode(), "s.yaml")
    assert locate(documents(source)) == []


def test_offsets_are_bytes_and_columns_are_characters() -> None:
    data = "note: ☕ café\nspec: {x: 镜像, image: nginx}\n".encode()
    source = decode(data, "s.yaml")
    [location] = locate(documents(source, may_hold_images))
    assert (location.start, location.end) == (data.index(b"nginx"), data.index(b"nginx") + 5)
    assert source.position(location.start) == (2, len("spec: {x: 镜像, image: ") + 1)


def test_positions_asked_out_of_order() -> None:
    source = decode("a: é\nb: 1\nc: ☕\n".encode(), "s.yaml")
    last, first = source.data.index(b"c"), source.data.index(b"b")
    assert [source.position(last), source.position(first), source.position(last)] == [(3, 1), (2, 1), (3, 1)]


def _long_stream() -> str:
    """Runs of documents with and without images, each run longer than one batch of composition."""
    with_image = "---\nkind: Pod\nspec:\n  containers:\n  - image: nginx:{i}\n"
    without = "---\nkind: ConfigMap\ndata:\n  key: value {i}\n# a comment\n"
    count = stream_module._RUN // len(without) + 50
    parts = [template.format(i=i) for template in (without, with_image, without, with_image) for i in range(count)]
    return "# leading comment\n" + "".join(parts) + "...\n"


def test_runs_longer_than_a_batch_keep_document_indices() -> None:
    source = decode(_long_stream().encode(), "s.yaml")
    whole = [(d.index, d.stream_offset(d.root.start_mark.index)) for d in documents(source) if d.root is not None]
    pieces = [(d.index, d.stream_offset(d.root.start_mark.index)) for d in documents(source, lambda _: True) if d.root is not None]
    assert pieces == whole
    assert locate(documents(source, may_hold_images)) == locate(documents(source))


def test_syntax_error_after_a_long_run_without_images_is_found_at_its_line() -> None:
    text = _long_stream() + "---\nkind: ConfigMap\ndata: [\n"
    source = decode(text.encode(), "s.yaml")
    line = text.count("\n") + 1
    with pytest.raises(KmirrorError, match=rf"^s.yaml:{line}:1: invalid YAML"):
        list(documents(source, may_hold_images))


# Pieces that are not composed, parsed in a forked process while this one composes the rest.

WITH_IMAGE = "---\nkind: Pod\nspec:\n  containers:\n  - image: nginx:1\n"
WITHOUT = "---\nkind: ConfigMap\ndata:\n  key: value\n"
BROKEN = "---\nkind: ConfigMap\ndata: [\n"
BROKEN_WITH_IMAGE = "---\nkind: Pod\nspec: {image: nginx, [\n"


@pytest.fixture
def forks(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Every stream is checked apart; the list gets the pid of each child forked."""
    monkeypatch.setattr(stream_module, "_APART", 0)
    children: list[int] = []
    fork = os.fork

    def counted() -> int:
        pid = fork()
        if pid:
            children.append(pid)
        return pid

    monkeypatch.setattr(stream_module.os, "fork", counted)
    return children


def _error(text: str) -> str:
    with pytest.raises(KmirrorError) as raised:
        list(documents(decode(text.encode(), "s.yaml"), may_hold_images))
    return str(raised.value)


def test_a_forked_check_finds_the_error_in_a_piece_not_composed(forks: list[int]) -> None:
    text = WITH_IMAGE + WITHOUT * 3 + BROKEN + WITH_IMAGE
    assert _error(text) == "s.yaml:21:1: invalid YAML: did not find expected node content"  # the marker after `data: [`
    assert len(forks) == 1


@pytest.mark.parametrize("first", ["not composed", "composed"])
def test_the_first_error_in_the_stream_is_reported_wherever_it_was_found(forks: list[int], first: str, monkeypatch: pytest.MonkeyPatch) -> None:
    pieces = [BROKEN, WITH_IMAGE, BROKEN_WITH_IMAGE] if first == "not composed" else [BROKEN_WITH_IMAGE, WITHOUT, BROKEN]
    text = WITH_IMAGE + "".join(pieces)
    apart = _error(text)
    assert len(forks) == 1
    monkeypatch.setattr(stream_module, "_APART", 1 << 62)
    assert _error(text) == apart  # as parsing the stream in order here finds it
    second = (WITH_IMAGE + "".join(pieces[:2])).count("\n") + 1
    assert int(apart.split(":")[1]) <= second
    assert len(forks) == 1


def test_a_child_that_dies_is_replaced_by_parsing_here(forks: list[int], monkeypatch: pytest.MonkeyPatch) -> None:
    parent = os.getpid()
    first_error = stream_module._first_error

    def dying(source: stream_module.Source, wanted: object) -> object:
        if os.getpid() != parent:
            os.kill(os.getpid(), signal.SIGKILL)
        return first_error(source, wanted)  # type: ignore[arg-type]

    monkeypatch.setattr(stream_module, "_first_error", dying)
    text = WITH_IMAGE + BROKEN
    assert _error(text) == "s.yaml:9:1: invalid YAML: did not find expected node content"
    assert len(forks) == 1


def test_no_child_outlives_the_documents(forks: list[int]) -> None:
    source = decode((WITH_IMAGE + WITHOUT * 50).encode(), "s.yaml")
    iterator = documents(source, may_hold_images)
    next(iterator)
    iterator.close()  # the caller stopped early (an error of its own)
    assert len(forks) == 1
    with pytest.raises(ChildProcessError):
        os.waitpid(forks[0], os.WNOHANG)  # reaped already
