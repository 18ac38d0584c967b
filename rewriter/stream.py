"""A YAML stream as bytes plus its documents' nodes, with byte offsets into the stream.

The stream stays in its UTF-8 bytes: each piece of text between document markers is
decoded on its own, so memory holds the input and one piece's characters, not a copy
of the whole stream as characters (four bytes each once a single emoji is in it).

Composition is libyaml's (ruamel.yaml.clib), with ruamel.yaml's pure-Python composer
as a fallback for YAML that libyaml refuses. Nodes carry character offsets into their
document's text (`start_mark.index`); `Document.stream_offset` turns one into a byte
offset of the stream (without its byte-order mark).
"""

from __future__ import annotations

import bisect
import codecs
import functools
import os
import re
import signal
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from _ruamel_yaml import CParser  # type: ignore[import-not-found]
from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, ReusedAnchorWarning, YAMLError
from ruamel.yaml.nodes import Node, ScalarNode
from ruamel.yaml.resolver import VersionedResolver

from rewriter import cores
from rewriter.errors import KmirrorError

BOM = b"\xef\xbb\xbf"
# Characters YAML forbids anywhere in a stream (outside c-printable), as UTF-8: C0 and C1
# controls but tab, newlines and NEL, and U+FFFE/U+FFFF (surrogates are invalid UTF-8 already).
# NUL is refused earlier as binary.
_FORBIDDEN_RE = re.compile(rb"[\x01-\x08\x0b\x0c\x0e-\x1f\x7f]|\xc2[\x80-\x84\x86-\x9f]|\xef\xbf[\xbe\xbf]")
# Deleting these bytes leaves the forbidden single bytes (a fast check before the search).
_ALLOWED_BYTES = bytes([9, 10, 13, *range(0x20, 0x7F), *range(0x80, 0x100)])
_CHECK_CHUNK = 1 << 20  # UTF-8 is checked a megabyte at a time, never decoded whole


@dataclass(frozen=True)
class Source:
    """Decoded input: `data` is valid UTF-8 without a byte-order mark, `bom` says whether it had one."""

    name: str
    data: bytes
    bom: bool = False
    _last: list[int] = field(default_factory=lambda: [0, 1], compare=False, repr=False)  # an offset and its line

    @functools.cached_property
    def text(self) -> str:
        """The stream as characters (for callers that need small streams whole)."""
        return self.data.decode("utf-8")

    def position(self, offset: int) -> tuple[int, int]:
        """1-based (line, column in characters) of a byte offset; lines end at `\\n` only.

        Lines are counted from the previous call's offset when it is not after this one,
        so walking a stream's offsets in order counts its lines once.
        """
        data = self.data
        known, line = self._last
        if offset < known:
            known, line = 0, 1
        line += data.count(b"\n", known, offset)
        self._last[:] = [offset, line]
        start = data.rfind(b"\n", 0, offset) + 1
        return line, len(data[start:offset].decode("utf-8")) + 1

    def render(self, data: bytes) -> bytes:
        """`data` as it should be written back (with the byte-order mark if there was one)."""
        return (BOM + data) if self.bom else data


def decode(data: bytes, name: str) -> Source:
    """Check that `data` is UTF-8 (with or without a BOM); refuse other encodings and binary data."""
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
    if data.translate(None, _ALLOWED_BYTES) or b"\xc2" in data or b"\xef\xbf" in data:
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


@dataclass(frozen=True)
class Document:
    """One composed document: its index in the stream, its root, and the text it was composed from.

    `text` may hold neighbouring documents too (they are composed in batches); it starts
    at byte `start` of the stream.
    """

    index: int
    start: int
    text: str
    root: Node | None
    widths: _Widths = field(compare=False, repr=False)

    def stream_offset(self, offset: int) -> int:
        """The stream's byte offset of character `offset` of `text`."""
        return self.start + self.widths(offset)


# A document marker starts a line and is followed by white space or the end of the line;
# YAML forbids such a line inside any scalar, so splitting the text there is exact. (The
# pattern starts with the newline before a marker: a literal, which the search finds fast.)
_MARKER_RE = re.compile(rb"\n(?:---|\.\.\.)(?![^ \t\r\n])")
_CONTENT_RE = re.compile(rb"^[ \t]*[^ \t\r\n#]", re.MULTILINE)  # a line that is not blank or a comment
_RUN = 1 << 18  # pieces go together in runs of up to this many bytes (and one more piece)
# From this many bytes on, parsing the pieces that are not composed in a forked process,
# while this one composes the rest, saves more than the fork costs (a few milliseconds).
_APART = 1 << 20


class InvalidYAML(KmirrorError):
    """A syntax error; `offset` is the stream's byte offset it was found at (to tell which came first)."""

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(message)
        self.offset = offset

    def __reduce__(self) -> tuple[type[InvalidYAML], tuple[str, int]]:
        return type(self), (str(self), self.offset)  # whole, when a worker process sends it back


def documents(source: Source, wanted: Callable[[str], bool] | None = None) -> Iterator[Document]:
    """The stream's documents in order, composed a run of pieces of text at a time.

    With `wanted`, pieces of text between document markers that `wanted` refuses are only
    parsed, for syntax errors: they are not composed or yielded. Consecutive pieces that
    `wanted` treats alike go together, up to about 256 kB a run, so that memory holds one
    run's characters and nodes at a time. When the pieces only parsed are large, a forked
    process parses them while this one composes the others; the error reported is the
    first in the stream either way. A stream with directives (`%YAML`, `%TAG`) is composed
    whole, since directives belong to the next document.
    """
    data = source.data
    if wanted is None or data.startswith(b"%") or b"\n%" in data:
        yield from _composed(source, 0, data.decode("utf-8"), 0)
        return
    checker = _Checker(source, wanted) if len(data) >= _APART and cores.forkable() else None
    try:
        index = 0
        for run in _runs(data, wanted):
            if not run.wanted:
                if checker is None:
                    _parse(source, run.start, run.end)
                index += run.documents
                continue
            try:
                found = list(_composed(source, run.start, data[run.start : run.end].decode("utf-8"), index))
            except InvalidYAML as exc:
                earlier = checker.result() if checker is not None else None
                raise (earlier if earlier is not None and earlier.offset < exc.offset else exc) from None
            yield from found
            index += len(found)
        if checker is not None and (error := checker.result()) is not None:
            raise error
    finally:
        if checker is not None:
            checker.stop()


@dataclass
class _Run:
    """Consecutive pieces of text, all wanted or all not; `documents` counts those not wanted."""

    wanted: bool
    start: int
    end: int = 0
    documents: int = 0


def _runs(data: bytes, wanted: Callable[[str], bool]) -> Iterator[_Run]:
    """The stream's pieces, grouped into runs, each yielded once it is complete."""
    run: _Run | None = None
    for start, end in _pieces(data):
        piece = data[start:end]
        keep = wanted(piece.decode("utf-8"))
        if run is not None and (run.wanted != keep or start - run.start > _RUN):
            yield run
            run = None
        if run is None:
            run = _Run(keep, start)
        run.end = end
        if not keep and (piece.startswith(b"---") or _CONTENT_RE.search(piece)):
            run.documents += 1  # a piece parsed without error holds one document, or none when blank
    if run is not None:
        yield run


class _Checker:
    """Parses the runs `wanted` refuses for syntax errors in a forked process, while this one composes the others.

    The child groups the pieces into runs on its own (the same runs: `wanted` is a pure
    function), writes the first error's offset and message to a pipe, and exits; if it
    ends any other way (killed, out of memory), `result` parses the runs here instead.
    """

    def __init__(self, source: Source, wanted: Callable[[str], bool]) -> None:
        self.source = source
        self.wanted = wanted
        self.done = False
        self.error: InvalidYAML | None = None
        reader, writer = os.pipe()
        self.pid = os.fork()
        if self.pid == 0:  # the child: parse, write, and leave without any of the parent's clean-up
            status = 1
            try:
                os.close(reader)
                error = _first_error(source, wanted)
                report = b"" if error is None else f"{error.offset}\n{error}".encode("utf-8")
                while report:
                    report = report[os.write(writer, report) :]
                status = 0
            finally:
                os._exit(status)
        os.close(writer)
        self.pipe = reader

    def result(self) -> InvalidYAML | None:
        """The first syntax error in the runs, or None (waits for the child)."""
        if not self.done:
            chunks = []
            while chunk := os.read(self.pipe, 1 << 16):
                chunks.append(chunk)
            if self._reap() != 0:
                self.error = _first_error(self.source, self.wanted)
            elif chunks:
                offset, message = b"".join(chunks).decode("utf-8").split("\n", 1)
                self.error = InvalidYAML(message, int(offset))
            self.done = True
        return self.error

    def stop(self) -> None:
        """End the child if it still runs (this process failed or was interrupted first)."""
        if self.pid:
            os.kill(self.pid, signal.SIGKILL)
            self._reap()

    def _reap(self) -> int:
        _, status = os.waitpid(self.pid, 0)
        self.pid = 0
        os.close(self.pipe)
        return os.waitstatus_to_exitcode(status)


def _first_error(source: Source, wanted: Callable[[str], bool]) -> InvalidYAML | None:
    """The first syntax error in the runs `wanted` refuses, or None."""
    for run in _runs(source.data, wanted):
        if not run.wanted:
            try:
                _parse(source, run.start, run.end)
            except InvalidYAML as exc:
                return exc
    return None


def _pieces(data: bytes) -> Iterator[tuple[int, int]]:
    """(start, end) of the text between document markers, each piece from its marker on."""
    bounds = [0, *(m.start() + 1 for m in _MARKER_RE.finditer(data)), len(data)]

    for start, end in zip(bounds, bounds[1:]):
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
        CParser(piece).raw_parse()
    except MarkedYAMLError:
        # libyaml refuses some valid YAML (see compose_text): let the composer decide.
        for _ in _composed(source, start, piece.decode("utf-8"), 0):
            pass
    except YAMLError as exc:
        raise InvalidYAML(f"{source.name}: invalid YAML: {exc}", start) from None


def _composed(source: Source, start: int, text: str, index: int) -> Iterator[Document]:
    try:
        roots = compose_text(text)
    except MarkedYAMLError as exc:
        raise _syntax_error(source, start, text, exc) from None
    except YAMLError as exc:
        raise InvalidYAML(f"{source.name}: invalid YAML: {exc}", start) from None
    except RecursionError:
        raise InvalidYAML(f"{source.name}: invalid YAML: nesting is too deep", start) from None
    widths = _Widths(text)
    for offset, root in enumerate(roots):
        yield Document(index + offset, start, text, root, widths)


def compose_text(text: str) -> list[Node | None]:
    """Every document of `text`; raise libyaml's YAMLError when no composer accepts it.

    libyaml is fast but, unlike YAML 1.2 and Kubernetes, refuses a `:` inside a plain
    scalar of a flow collection (`args: [--x-image, quay.io/a:b]`); the pure-Python
    composer (same character offsets) gets a second try then.
    """
    with warnings.catch_warnings():
        # A re-used anchor name is valid YAML (an alias means the latest node with that name).
        warnings.simplefilter("ignore", ReusedAnchorWarning)
        return _compose_quietly(text)


def _compose_quietly(text: str) -> list[Node | None]:
    try:
        return list(_loader(pure=False).compose_all(text))
    except MarkedYAMLError as first:
        try:
            return list(_loader(pure=True).compose_all(text))
        except Exception:  # the pure composer has its own ways to fail; libyaml's error is the one to show
            raise first from None


class _Resolver(VersionedResolver):
    """ruamel.yaml's resolver, looking up the YAML version's tag table once per loader, not per
    scalar, and a plain scalar's tag once per value (keys and values repeat across documents)."""

    _table: Any = None
    _plain: dict[str, Any] | None = None

    def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
        if kind is not ScalarNode or not implicit[0]:
            return super().resolve(kind, value, implicit)
        if self._plain is None:
            self._plain = {}
        tag = self._plain.get(value)
        if tag is None:
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


def _loader(pure: bool) -> YAML:
    loader = YAML(typ="safe", pure=pure)
    loader.Resolver = _Resolver
    return loader


def _syntax_error(source: Source, start: int, text: str, exc: MarkedYAMLError) -> InvalidYAML:
    mark = exc.problem_mark or exc.context_mark
    problem = exc.problem or exc.context or "syntax error"
    if mark is None:
        return InvalidYAML(f"{source.name}: invalid YAML: {problem}", start)
    offset = start + _Widths(text)(mark.index)
    line, column = source.position(offset)
    return InvalidYAML(f"{source.name}:{line}:{column}: invalid YAML: {problem}", offset)
