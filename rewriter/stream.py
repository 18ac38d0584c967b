"""A YAML stream as bytes plus its documents' nodes, with byte offsets into the stream.

The stream stays in its UTF-8 bytes: each piece of text between document markers is
decoded on its own, so memory holds the input and one piece's characters, not a copy
of the whole stream as characters (four bytes each once a single emoji is in it).

Composition is libyaml's (ruamel.yaml.clib), with ruamel.yaml's pure-Python composer
as a fallback for YAML that libyaml refuses. Nodes carry character offsets into their
document's text (`start_mark.index`); `Document.stream_offset` turns one into a byte
offset of the stream (without its byte-order mark). No text reaches libyaml before
`rewriter.bounds.check` has cleared it (nesting, directives, nodes per document).
"""

from __future__ import annotations

import bisect
import codecs
import functools
import itertools
import re
import warnings
from collections.abc import Callable, Generator, Iterator
from typing import Any, NamedTuple

from _ruamel_yaml import CParser  # type: ignore[import-not-found]
from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, ReusedAnchorWarning, YAMLError
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode
from ruamel.yaml.resolver import VersionedResolver

from rewriter import bounds
from rewriter.errors import KmirrorError

BOM = b"\xef\xbb\xbf"
# Characters YAML forbids anywhere in a stream (outside c-printable), as UTF-8: C0 and C1
# controls but tab, newlines and NEL, and U+FFFE/U+FFFF (surrogates are invalid UTF-8 already).
# NUL is refused earlier as binary.
_FORBIDDEN_RE = re.compile(rb"[\x01-\x08\x0b\x0c\x0e-\x1f\x7f]|\xc2[\x80-\x84\x86-\x9f]|\xef\xbf[\xbe\xbf]")
# Deleting these bytes leaves the forbidden single bytes (a fast check before the search).
_ALLOWED_BYTES = bytes([9, 10, 13, *range(0x20, 0x7F), *range(0x80, 0x100)])
_CHECK_CHUNK = 1 << 20  # UTF-8 is checked a megabyte at a time, never decoded whole


class Source:
    """Decoded input: `data` is valid UTF-8 without a byte-order mark, `bom` says whether it had one."""

    def __init__(self, name: str, data: bytes, bom: bool = False) -> None:
        self.name = name
        self.data = data
        self.bom = bom
        self._last = (0, 1, 0)  # an offset, its line, its column (from 0)

    @functools.cached_property
    def directives(self) -> bool:
        """True when a line starts with `%` (a directive, or text that YAML would refuse)."""
        return self.data.startswith(b"%") or _DIRECTIVE_RE.search(self.data) is not None

    @functools.cached_property
    def text(self) -> str:
        """The stream as characters (for callers that need small streams whole)."""
        return self.data.decode("utf-8")

    def position(self, offset: int) -> tuple[int, int]:
        """1-based (line, column in characters) of a byte offset; lines end at `\\n` only.

        Counted on from the previous call's offset when it is not after this one, so walking
        a stream's offsets in order reads each byte once, however many offsets share a line.
        """
        data = self.data
        known, line, column = self._last
        if offset < known:
            known, line, column = 0, 1, 0
        newlines = data.count(b"\n", known, offset)
        if newlines:
            line += newlines
            known = data.rfind(b"\n", known, offset) + 1
            column = 0
        column += len(data[known:offset].decode("utf-8"))
        self._last = (offset, line, column)
        return line, column + 1

    def render(self, data: bytes) -> bytes:
        """`data` as it should be written back (with the byte-order mark if there was one)."""
        return (BOM + data) if self.bom else data


def join_streams(streams: list[bytes]) -> bytes:
    """Several YAML streams as one: each ended by a newline, a `---` between them.

    A stream after the first loses its byte-order mark (one is allowed only at the start);
    one that opens with directives (`%YAML`) is preceded by `...` instead, since directives
    may follow only a document's end. One that opens with `---` needs no marker.
    """
    pieces: list[bytes] = []
    for data in streams:
        if pieces:
            data = data.removeprefix(BOM)
            if pieces[-1] and not pieces[-1].endswith((b"\n", b"\r")):
                pieces.append(b"\n")
            if data.startswith(b"%"):
                pieces.append(b"...\n")
            elif not _STARTS_DOCUMENT_RE.match(data):
                pieces.append(b"---\n")
        pieces.append(data)
    return b"".join(pieces)


_STARTS_DOCUMENT_RE = re.compile(rb"---(?![^ \t\r\n])")
# Byte pairs as patterns: `re` finds a literal of two bytes several times faster than `in` does.
_DIRECTIVE_RE = re.compile(rb"\n%")
_NONCHARACTER_RE = re.compile(rb"\xef\xbf[\xbe\xbf]")  # U+FFFE, U+FFFF


def decode(data: bytes, name: str) -> Source:
    """Check that `data` is UTF-8 (with or without a BOM); refuse other encodings and binary data."""
    if data.startswith((b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff")):  # before UTF-16: FF FE starts both marks
        raise KmirrorError(f"{name}: cannot read: UTF-32 is not supported; convert the file to UTF-8")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise KmirrorError(f"{name}: cannot read: UTF-16 is not supported; convert the file to UTF-8")
    if b"\x00" in data:
        raise KmirrorError(f"{name}: cannot read: binary data (NUL byte at offset {data.index(0)})")
    bom = data.startswith(BOM)
    if not data.isascii():
        _check_utf8(data, name)
    source = Source(name, data[len(BOM) :], bom=True) if bom else Source(name, data)
    forbidden = _forbidden(source.data)
    if forbidden:
        line, column = source.position(forbidden.start())
        code = f"U+{ord(forbidden.group().decode('utf-8')):04X}"
        raise KmirrorError(f"{name}:{line}:{column}: invalid YAML: control character {code} is not allowed in YAML")
    return source


def _forbidden(data: bytes) -> re.Match[bytes] | None:
    if data.translate(None, _ALLOWED_BYTES) or b"\xc2" in data or _NONCHARACTER_RE.search(data):
        return _FORBIDDEN_RE.search(data)
    return None


def _check_utf8(data: bytes, name: str) -> None:
    checker = codecs.getincrementaldecoder("utf-8")()
    try:
        for start in range(0, len(data), _CHECK_CHUNK):
            checker.decode(data[start : start + _CHECK_CHUNK], final=start + _CHECK_CHUNK >= len(data))
    except UnicodeDecodeError:
        try:
            data.decode("utf-8")  # again at once, for the exact offset
        except UnicodeDecodeError as exc:
            raise KmirrorError(f"{name}: cannot read: invalid UTF-8 at byte {exc.start}") from None


class _Widths:
    """Byte offsets of character offsets in one text."""

    def __init__(self, text: str) -> None:
        self.text = text

    @functools.cached_property
    def _wide(self) -> tuple[list[int], list[int]]:
        # Where each non-ASCII character is, and the extra bytes of it and every one before it.
        at: list[int] = []
        extra: list[int] = []
        total = 0
        for match in _WIDE_RE.finditer(self.text):
            total += len(match.group().encode("utf-8")) - 1
            at.append(match.start())
            extra.append(total)
        return at, extra

    def __call__(self, offset: int) -> int:
        if self.text.isascii():
            return offset
        at, extra = self._wide
        before = bisect.bisect_left(at, offset)  # wide characters before `offset`
        return offset + (extra[before - 1] if before else 0)


_WIDE_RE = re.compile(r"[^\x00-\x7f]")


class Document(NamedTuple):
    """One composed document: its number in the stream (from 0), its root, and the text it was composed from.

    `text` may hold neighbouring documents too (they are composed in batches); it starts
    at byte `start` of the stream.
    """

    number: int
    start: int
    text: str
    root: Node | None
    widths: _Widths

    def stream_offset(self, offset: int) -> int:
        """The stream's byte offset of character `offset` of `text`."""
        return self.start + self.widths(offset)


# A document marker starts a line and is followed by white space or the end of the line;
# YAML forbids such a line inside any scalar, so splitting the text there is exact. (The
# pattern starts with the newline before a marker: a literal, which the search finds fast.)
_MARKER_RE = re.compile(rb"\n(?:---|\.\.\.)(?![^ \t\r\n])")
_CONTENT_RE = re.compile(rb"^[ \t]*[^ \t\r\n#]", re.MULTILINE)  # a line that is not blank or a comment
_RUN = 1 << 18  # pieces go together in runs of up to this many bytes (and one more piece)


class Part(NamedTuple):
    """Bytes `[start:end]` of a stream, cut at document markers; `first` is the number of its first document."""

    start: int
    end: int
    first: int


def parts(source: Source, count: int) -> list[Part]:
    """The stream cut at document markers into at most `count` parts of about the same size.

    Each part starts where a piece of text between markers starts, so its documents are
    whole; their numbers are counted from the text (`_holds_document`). A stream with
    directives is one part (`documents` composes it whole).
    """
    data = source.data
    if source.directives:
        return [Part(0, len(data), 0)]
    found: list[Part] = []
    start = index = seen = 0  # where the part at hand starts, its first document, documents so far
    for piece_start, end in _pieces(data, 0, len(data)):
        if piece_start >= len(data) * (len(found) + 1) / count:
            found.append(Part(start, piece_start, index))
            start, index = piece_start, seen
            if len(found) == count - 1:
                break
        seen += _holds_document(data, piece_start, end)
    return [*found, Part(start, len(data), index)]


def _holds_document(data: bytes, start: int, end: int) -> bool:
    """A piece (parsed without error) holds one document when it starts with a marker or has content, else none."""
    return data.startswith(b"---", start, end) or _CONTENT_RE.search(data, start, end) is not None


def documents(source: Source, wanted: Callable[[str], bool] | None = None, part: Part | None = None) -> Iterator[Document]:
    """The stream's documents in order (or those of `part` of it), composed a run of pieces of text at a time.

    With `wanted`, pieces of text between document markers that `wanted` refuses are only
    parsed, for syntax errors: they are not composed or yielded. Consecutive pieces that
    `wanted` treats alike go together, up to about 256 kB a run, so that memory holds one
    run's characters and nodes at a time. A stream with directives (`%YAML`, `%TAG`) is
    composed whole, since directives belong to the next document (`parts` leaves it whole).
    """
    data = source.data
    if wanted is None or source.directives:
        yield from _composed(source, 0, data.decode("utf-8"), 0)
        return
    part = part or Part(0, len(data), 0)
    index = part.first
    run: _Run | None = None
    for start, end in _pieces(data, part.start, part.end):
        piece = data[start:end]
        keep = wanted(piece.decode("utf-8"))
        if run is not None and (run.wanted != keep or start - run.start > _RUN):
            index = yield from _finish(source, run, index)
            run = None
        if run is None:
            run = _Run(keep, start)
        run.end = end
        if not keep:
            run.documents += _holds_document(data, start, end)
    if run is not None:
        yield from _finish(source, run, index)


class _Run:
    """Consecutive pieces of text, all wanted or all not; `documents` counts those not wanted."""

    __slots__ = ("wanted", "start", "end", "documents")

    def __init__(self, wanted: bool, start: int) -> None:
        self.wanted = wanted
        self.start = start
        self.end = 0
        self.documents = 0


def _finish(source: Source, run: _Run, index: int) -> Generator[Document, None, int]:
    """Compose a wanted run and yield its documents, or parse one that is not; return the next index."""
    if not run.wanted:
        _parse(source, run.start, run.end)
        return index + run.documents
    documents = list(_composed(source, run.start, source.data[run.start : run.end].decode("utf-8"), index))
    yield from documents
    return index + len(documents)


def _pieces(data: bytes, first: int, last: int) -> Iterator[tuple[int, int]]:
    """(start, end) of the text between document markers in `data[first:last]`, each piece from its marker on."""
    cuts = itertools.chain([first], (m.start() + 1 for m in _MARKER_RE.finditer(data, first, last)), [last])
    for start, end in itertools.pairwise(cuts):  # found as they are needed: `parts` stops early
        if data.startswith(b"...", start):
            # An end marker closes the previous document; what follows it, if anything, is a new one.
            newline = data.find(b"\n", start, end)
            start = end if newline == -1 else newline + 1
        yield start, end


def compose(source: Source) -> list[Node | None]:
    """Every document's root, composed (for callers that need whole documents)."""
    return [document.root for document in documents(source)]


def _parse(source: Source, start: int, end: int) -> None:
    """Parse `source.data[start:end]` for syntax errors, without building anything (libyaml's raw parse)."""
    piece = source.data[start:end]
    try:
        bounds.check(piece, count_nodes=False)  # nothing is composed: no node to count
    except bounds.LimitError as exc:
        raise KmirrorError(_limit_message(source, start, piece.decode("utf-8"), exc)) from None
    try:
        CParser(piece).raw_parse()
    except MarkedYAMLError:
        # libyaml refuses some valid YAML (see compose_text): let the composer decide.
        for _ in _composed(source, start, piece.decode("utf-8"), 0):
            pass
    except YAMLError as exc:
        raise KmirrorError(f"{source.name}: invalid YAML: {exc}") from None


def _composed(source: Source, start: int, text: str, index: int) -> Iterator[Document]:
    try:
        roots = compose_text(text)
    except MarkedYAMLError as exc:
        raise KmirrorError(_syntax_message(source, start, text, exc)) from None
    except YAMLError as exc:
        raise KmirrorError(f"{source.name}: invalid YAML: {exc}") from None
    except RecursionError:
        raise KmirrorError(f"{source.name}: invalid YAML: nesting is too deep") from None
    except bounds.LimitError as exc:
        raise KmirrorError(_limit_message(source, start, text, exc)) from None
    widths = _Widths(text)
    for offset, root in enumerate(roots):
        yield Document(index + offset, start, text, root, widths)


def compose_text(text: str) -> list[Node | None]:
    """Every document of `text`; raise libyaml's YAMLError when no composer accepts it,
    bounds.LimitError when it is beyond kmirror's limits (checked first).

    libyaml is fast but, unlike YAML 1.2 and Kubernetes, refuses a `:` inside a plain
    scalar of a flow collection (`args: [--x-image, quay.io/a:b]`); the pure-Python
    composer (same character offsets) gets a second try then.
    """
    with warnings.catch_warnings():
        # A re-used anchor name is valid YAML (an alias means the latest node with that name).
        warnings.simplefilter("ignore", ReusedAnchorWarning)
        bounds.check(text)
        return _compose_quietly(text)


def _compose_quietly(text: str) -> list[Node | None]:
    composer = _CComposer(text)
    try:
        roots = []
        while composer.check_node():
            roots.append(composer.get_node())
        return roots
    except MarkedYAMLError as first:
        try:
            return list(_pure_loader().compose_all(text))
        except Exception:  # the pure composer has its own ways to fail; libyaml's error is the one to show
            raise first from None
    finally:
        composer.dispose()


class _Resolver(VersionedResolver):
    """ruamel.yaml's resolver, looking up the YAML version's tag table once per loader, not per
    scalar, and a plain scalar's tag once per value (keys and values repeat across documents).

    Only plain scalars are looked up: without path resolvers (kmirror adds none), anything else
    untagged takes its kind's default tag, as `BaseResolver.resolve` would give it.
    """

    _table: Any = None
    _plain: dict[str, Any] | None = None

    def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
        if kind is not ScalarNode:
            return self.DEFAULT_MAPPING_TAG if kind is MappingNode else self.DEFAULT_SEQUENCE_TAG
        if not implicit[0]:
            return self.DEFAULT_SCALAR_TAG
        if self._plain is None:
            self._plain = {}
        tag = self._plain.get(value)
        if tag is None:
            if len(self._plain) >= _PLAIN_TAGS:
                self._plain.clear()
            tag = self._plain[value] = super().resolve(kind, value, implicit)
        return tag


    @property
    def versioned_resolver(self) -> Any:
        if self._table is None:
            try:
                self._table = VersionedResolver.versioned_resolver.fget(self)  # type: ignore[attr-defined]
            except KeyError as exc:
                raise YAMLError(f"unsupported YAML version {exc} in a %YAML directive") from None
        return self._table


_PLAIN_TAGS = 8192  # plain scalars whose tags a resolver remembers (then it starts again)


class _CComposer(CParser, _Resolver):  # type: ignore[misc]
    """libyaml's parser and composer with kmirror's resolver, built once per text: what
    `YAML(typ="safe", pure=False).compose_all` runs, without a loader class made per call.

    On this path ruamel.yaml never reads a `%YAML` directive (its resolver finds no scanner
    to ask), so every text resolves as YAML 1.2: all composers share one tag table and one
    cache of plain scalars' tags.
    """

    _plain: dict[str, Any] | None = {}
    _shared_table: Any = None

    def __init__(self, text: str) -> None:
        CParser.__init__(self, text)
        _Resolver.__init__(self, loadumper=self)

    @property
    def versioned_resolver(self) -> Any:
        if _CComposer._shared_table is None:
            _CComposer._shared_table = super().versioned_resolver
        return _CComposer._shared_table


def _pure_loader() -> YAML:
    loader = YAML(typ="safe", pure=True)
    loader.Resolver = _Resolver
    return loader


def _syntax_message(source: Source, start: int, text: str, exc: MarkedYAMLError) -> str:
    mark = exc.problem_mark or exc.context_mark
    problem = exc.problem or exc.context or "syntax error"
    if mark is None:
        return f"{source.name}: invalid YAML: {problem}"
    line, column = source.position(start + _Widths(text)(mark.index))
    return f"{source.name}:{line}:{column}: invalid YAML: {problem}"


def _limit_message(source: Source, start: int, text: str, exc: bounds.LimitError) -> str:
    line, column = source.position(start + _Widths(text)(exc.offset))
    return f"{source.name}:{line}:{column}: {exc}"
