"""Documents composed piece by piece: same documents, same indices, same errors as the whole stream."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rewriter.errors import KmirrorError
from rewriter.locate import locate, may_hold_images
from rewriter import stream as stream_module
from rewriter.stream import decode, documents

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "corpus"
CORPUS_FILES = sorted(CORPUS.glob("*.yaml"))


@pytest.mark.parametrize("path", CORPUS_FILES, ids=[p.name for p in CORPUS_FILES])
def test_prefilter_finds_exactly_what_the_full_locate_finds(path: Path) -> None:
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


def _spans(found: object) -> list[tuple[int, int]]:
    return [(d.number, d.stream_offset(d.root.start_mark.index)) for d in found if d.root is not None]  # type: ignore[attr-defined]


@pytest.mark.parametrize("text", STREAMS.values(), ids=list(STREAMS))
def test_document_indices_match_whole_stream_composition(text: str) -> None:
    source = decode(text.encode(), "s.yaml")
    whole = [(d.number, d.stream_offset(d.root.start_mark.index)) for d in documents(source) if d.root is not None and d.root.value]
    pieces = [(d.number, d.stream_offset(d.root.start_mark.index)) for d in documents(source, lambda _: True) if d.root is not None and d.root.value]
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


@given(st.lists(st.sampled_from(["a", "é", "☕", " ", "\n", "\r\n", "𝔸"]), max_size=60))
def test_positions_walked_in_order_match_counting_from_the_start(pieces: list[str]) -> None:
    text = "".join(pieces)
    source = decode(text.encode(), "s.yaml")
    offsets = [len(text[:i].encode()) for i in range(len(text) + 1)]
    expected = [(text[:i].count("\n") + 1, i - (text.rfind("\n", 0, i) + 1) + 1) for i in range(len(text) + 1)]
    assert [source.position(o) for o in offsets] == expected  # each call counts on from the previous one


def _long_stream() -> str:
    """Runs of documents with and without images, each run longer than one batch of composition."""
    with_image = "---\nkind: Pod\nspec:\n  containers:\n  - image: nginx:{i}\n"
    without = "---\nkind: ConfigMap\ndata:\n  key: value {i}\n# a comment\n"
    count = stream_module._RUN // len(without) + 50
    parts = [template.format(i=i) for template in (without, with_image, without, with_image) for i in range(count)]
    return "# leading comment\n" + "".join(parts) + "...\n"


def test_runs_longer_than_a_batch_keep_document_indices() -> None:
    source = decode(_long_stream().encode(), "s.yaml")
    assert _spans(documents(source, lambda _: True)) == _spans(documents(source))
    assert locate(documents(source, may_hold_images)) == locate(documents(source))


def test_syntax_error_after_a_long_run_without_images_is_found_at_its_line() -> None:
    text = _long_stream() + "---\nkind: ConfigMap\ndata: [\n"
    source = decode(text.encode(), "s.yaml")
    line = text.count("\n") + 1
    with pytest.raises(KmirrorError, match=rf"^s.yaml:{line}:1: invalid YAML"):
        list(documents(source, may_hold_images))


# Parts: a stream cut at document markers, each part's documents numbered as in the whole stream.


PART_STREAMS = {**{p.name: p.read_text(encoding="utf-8") for p in CORPUS_FILES}, **STREAMS, "long": _long_stream()}


@pytest.mark.parametrize("count", [2, 3, 7])
@pytest.mark.parametrize("name", PART_STREAMS)
def test_parts_hold_the_documents_of_the_whole_stream_with_their_numbers(name: str, count: int) -> None:
    source = decode(PART_STREAMS[name].encode(), "s.yaml")
    cut = stream_module.parts(source, count)
    assert 1 <= len(cut) <= count
    assert cut[0].start == 0 and cut[-1].end == len(source.data)
    assert all(a.end == b.start for a, b in zip(cut, cut[1:]))
    everything = lambda _: True  # noqa: E731  (every piece composed, so every document has a root)
    assert _spans(d for part in cut for d in documents(source, everything, part)) == _spans(documents(source, everything))
    assert [loc for part in cut for loc in locate(documents(source, may_hold_images, part))] == locate(documents(source))


def test_parts_are_about_the_same_size() -> None:
    source = decode(_long_stream().encode(), "s.yaml")
    sizes = [part.end - part.start for part in stream_module.parts(source, 4)]
    assert len(sizes) == 4
    assert max(sizes) - min(sizes) < 200  # a piece or so


def test_a_stream_with_directives_is_one_part() -> None:
    source = decode(("%YAML 1.2\n---\nimage: a\n" + "---\nimage: b\n" * 100).encode(), "s.yaml")
    assert stream_module.parts(source, 4) == [stream_module.Part(0, len(source.data), 0)]


@pytest.mark.parametrize(
    ("encoding", "name"),
    [("utf-32", "UTF-32"), ("utf-32-be", "UTF-32"), ("utf-16", "UTF-16"), ("utf-16-be", "UTF-16")],
)
def test_other_unicode_encodings_are_named_as_what_they_are(encoding: str, name: str) -> None:
    # UTF-32 LE's byte-order mark (FF FE 00 00) starts with UTF-16 LE's (FF FE) (issue 22).
    data = ("\ufeff" if encoding.endswith("-be") else "") + "image: nginx\n"
    with pytest.raises(KmirrorError) as error:
        decode(data.encode(encoding), "pod.yaml")
    assert str(error.value) == f"pod.yaml: cannot read: {name} is not supported; convert the file to UTF-8"

# The prefilter stays sound (issue 18): whatever the spelling of keys and values, a piece it
# skips holds no reference that composing everything would find.
_KEYS = ["image", "name", "value", "default", "reference", "args", "sidecarImage", "x"]
_VALUES = [
    "quay.io/x/y:v1", "nginx:1.25", "nginx", f"ghcr.io/o/x@sha256:{'ab' * 32}", "quay.io:443/x:v1", "2001-12-14",
    "1:20", "1.25", "FOO_IMAGE", "--x-image=quay.io/a:b", "--engine-image", "a: b", "docker://quay.io/x:v1",
]
_BREAKS = ["\n", "\r\n", "\r", "\x85", "\u2028", "\u2029"]


def _escaped(draw: st.DrawFn, text: str) -> str:
    """`text` as a double-quoted scalar, some characters written as escapes or lines joined by `\\`."""
    out = []
    for c in text:
        how = draw(st.sampled_from(["plain", "plain", "plain", "x", "u", "U", "join"]))
        if how == "x":
            out.append(f"\\x{ord(c):02x}")
        elif how == "u":
            out.append(f"\\u{ord(c):04X}")
        elif how == "U":
            out.append(f"\\U{ord(c):08x}")
        elif how == "join":
            out.append("\\\n    " + c)
        else:
            out.append(c)
    return '"' + "".join(out).replace('"', '\\"') + '"'


def _scalar(draw: st.DrawFn, text: str, key: bool) -> str:
    """One spelling of the scalar `text` (keys on one line; the alias form is handled by the caller)."""
    import base64

    style = draw(st.sampled_from(["plain", "single", "double", "escaped", "str", "local", "binary", "verbatim"]))
    if style == "single":
        return "'" + text.replace("'", "''") + "'"
    if style == "double":
        return '"' + text.replace('"', '\\"') + '"'
    if style == "escaped" and not key:
        return _escaped(draw, text)
    if style == "str":
        return "!!str " + text
    if style == "local":
        return "!foo " + text
    if style == "binary":
        return "!!binary " + base64.b64encode(text.encode()).decode()
    if style == "verbatim":
        return "!<tag:yaml.org,2002:str> " + text
    return text if ": " not in text else "'" + text + "'"


@st.composite
def _entry(draw: st.DrawFn, anchors: list[str]) -> str:
    """One mapping entry at indent 4, its key and value spelled in any of the ways YAML allows."""
    key, value = draw(st.sampled_from(_KEYS)), draw(st.sampled_from(_VALUES))
    if anchors and draw(st.booleans()):
        key_text = f"*k{draw(st.integers(0, len(anchors) - 1))} "
    else:
        key_text = _scalar(draw, key, key=True)
        if draw(st.booleans()) and key_text[0] not in "!'\"" and "\\" not in key_text:
            key_text = f"&a{draw(st.integers(0, 9))} {key_text}"
    value_text = _scalar(draw, value, key=False)
    if draw(st.booleans()):  # on the next line, after any line break and perhaps a comment holding `: `
        comment = draw(st.sampled_from(["", " # note: x", "  # a: b"]))
        value_text = comment + draw(st.sampled_from(_BREAKS)) + "      " + value_text + draw(st.sampled_from(["", " # see: y"]))
    else:
        value_text = " " + value_text
    if draw(st.booleans()):
        return f"    ? {key_text}\n    :{value_text}\n"
    return f"    {key_text}:{value_text}\n"


@st.composite
def spelled_documents(draw: st.DrawFn) -> str:
    """A stream of pods (and documents without images) whose keys and values use every spelling."""
    documents_ = []
    for _ in range(draw(st.integers(1, 3))):
        anchors = draw(st.lists(st.sampled_from(["image", "name", "value", "reference"]), max_size=2))
        labels = "".join(f"    l{i}: &k{i} {name}\n" for i, name in enumerate(anchors))
        body = "".join(draw(st.lists(_entry(anchors), min_size=1, max_size=4)))
        if draw(st.booleans()):
            body += "    args: [" + ", ".join(_scalar(draw, v, key=False) for v in draw(st.lists(st.sampled_from(_VALUES), max_size=3))) + "]\n"
        document = f"apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  labels:\n    k: v\n{labels}spec:\n  containers:\n  - n: c\n{body}"
        if draw(st.booleans()):
            document = document.replace("\n", draw(st.sampled_from(["\r\n", "\r"])))
        documents_.append(document)
    return "---\n".join(documents_)


@settings(max_examples=300)
@given(spelled_documents())
def test_prefilter_keeps_every_spelling(text: str) -> None:
    source = decode(text.encode(), "s.yaml")
    try:
        full = locate(documents(source))
    except KmirrorError:
        with pytest.raises(KmirrorError):
            locate(documents(source, may_hold_images))
        return
    assert locate(documents(source, may_hold_images)) == full


def test_tags_stay_right_when_the_shared_cache_of_plain_scalars_starts_again() -> None:
    # libyaml's composers share one cache of plain scalars' tags, emptied when full: a text with
    # more distinct plain scalars than it holds still gets every tag right, before and after.
    values = [f"{n}" if n % 2 else f"v{n}" for n in range(2 * stream_module._PLAIN_TAGS + 3)]
    text = "".join(f"- {v}\n" for v in values)
    for _ in range(2):
        (root,) = stream_module.compose_text(text)
        tags = [item.tag.rsplit(":", 1)[-1] for item in root.value]
        assert tags == ["int" if v.isdigit() else "str" for v in values]
