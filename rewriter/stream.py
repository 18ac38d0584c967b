"""A YAML stream as text plus its documents' nodes, with character offsets into the text.

Composition is libyaml's (ruamel.yaml.clib), with ruamel.yaml's pure-Python composer
as a fallback for YAML that libyaml refuses: nodes carry `start_mark.index` and
`end_mark.index`, character offsets into the text without its byte-order mark.
"""

from __future__ import annotations

import bisect
import re
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, ReusedAnchorWarning, YAMLError
from ruamel.yaml.events import DocumentStartEvent
from ruamel.yaml.nodes import Node
from ruamel.yaml.resolver import VersionedResolver

from rewriter.errors import KmirrorError

BOM = "\ufeff"
# Characters YAML forbids anywhere in a stream (outside c-printable); NUL is refused earlier as binary.
_FORBIDDEN_RE = re.compile("[\x01-\x08\x0b\x0c\x0e-\x1f\x7f-\x84\x86-\x9f\ud800-\udfff\ufffe\uffff]")


@dataclass(frozen=True)
class Source:
    """Decoded input: `text` without a byte-order mark, `bom` remembers whether it had one."""

    name: str
    text: str
    bom: bool = False
    _line_starts: list[int] = field(default_factory=list, compare=False, repr=False)

    def position(self, offset: int) -> tuple[int, int]:
        """1-based (line, column) of a character offset; lines end at `\\n` only."""
        if not self._line_starts:
            starts = [0]
            find = self.text.find
            i = find("\n")
            while i != -1:
                starts.append(i + 1)
                i = find("\n", i + 1)
            self._line_starts.extend(starts)
        line = bisect.bisect_right(self._line_starts, offset) - 1
        return line + 1, offset - self._line_starts[line] + 1

    def render(self, text: str) -> str:
        """`text` as it should be written back (with the byte-order mark if there was one)."""
        return (BOM + text) if self.bom else text


def decode(data: bytes, name: str) -> Source:
    """Decode UTF-8 (with or without a BOM); refuse other encodings and binary data."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise KmirrorError(f"{name}: cannot read: UTF-16 is not supported; convert the file to UTF-8")
    if b"\x00" in data:
        raise KmirrorError(f"{name}: cannot read: binary data (NUL byte at offset {data.index(0)})")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise KmirrorError(f"{name}: cannot read: invalid UTF-8 at byte {exc.start}") from None
    source = Source(name, text[1:], bom=True) if text.startswith(BOM) else Source(name, text)
    forbidden = _FORBIDDEN_RE.search(source.text)
    if forbidden:
        line, column = source.position(forbidden.start())
        code = f"U+{ord(forbidden.group()):04X}"
        raise KmirrorError(f"{name}:{line}:{column}: invalid YAML: control character {code} is not allowed in YAML")
    return source


@dataclass(frozen=True)
class Document:
    """One composed document: its index in the stream, where its text starts, its text, its root."""

    index: int
    start: int
    text: str
    root: Node | None


# A document marker starts a line and is followed by white space or the end of the line;
# YAML forbids such a line inside any scalar, so splitting the text there is exact.
_MARKER_RE = re.compile(r"^(?:---|\.\.\.)(?=[ \t\r\n]|$)", re.MULTILINE)
_DIRECTIVE_RE = re.compile(r"^%", re.MULTILINE)


def documents(source: Source, wanted: Callable[[str], bool] | None = None) -> Iterator[Document]:
    """The stream's documents in order, composed one piece of text at a time.

    With `wanted`, pieces of text between document markers that `wanted` refuses are only
    parsed (consecutive ones together), for syntax errors and to count their documents:
    they are not composed or yielded. A stream with directives (`%YAML`, `%TAG`) is
    composed whole, since directives belong to the next document.
    """
    text = source.text
    if wanted is None or _DIRECTIVE_RE.search(text):
        yield from _composed(source, 0, text, 0)
        return
    bounds = [m.start() for m in _MARKER_RE.finditer(text)]
    if not bounds or bounds[0] != 0:
        bounds.insert(0, 0)
    bounds.append(len(text))
    index = 0
    refused: int | None = None  # where the current run of refused pieces starts
    for start, end in zip(bounds, bounds[1:]):
        if text.startswith("...", start):
            # An end marker closes the previous document; what follows it, if anything, is a new one.
            newline = text.find("\n", start, end)
            start = end if newline == -1 else newline + 1
        piece = text[start:end]
        if not wanted(piece):
            refused = start if refused is None else refused
            continue
        if refused is not None:
            index += _count(source, refused, text[refused:start])
            refused = None
        for document in _composed(source, start, piece, index):
            yield document
            index += 1
    if refused is not None:
        _count(source, refused, text[refused:])


def compose(source: Source) -> list[Node | None]:
    """Every document's root, composed (for callers that need whole documents)."""
    return [document.root for document in documents(source)]


def _count(source: Source, start: int, piece: str) -> int:
    """How many documents a piece of text holds, parsed for syntax but not composed."""
    try:
        return sum(1 for event in _loader(pure=False).parse(piece) if isinstance(event, DocumentStartEvent))
    except MarkedYAMLError:
        # libyaml refuses some valid YAML (see compose_text): let the composer decide.
        return sum(1 for _ in _composed(source, start, piece, 0))
    except YAMLError as exc:
        raise KmirrorError(f"{source.name}: invalid YAML: {exc}") from None


def _composed(source: Source, start: int, piece: str, index: int) -> Iterator[Document]:
    try:
        roots = compose_text(piece)
    except MarkedYAMLError as exc:
        raise KmirrorError(_syntax_message(source, start, exc)) from None
    except YAMLError as exc:
        raise KmirrorError(f"{source.name}: invalid YAML: {exc}") from None
    except RecursionError:
        raise KmirrorError(f"{source.name}: invalid YAML: nesting is too deep") from None
    for offset, root in enumerate(roots):
        yield Document(index + offset, start, piece, root)


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
    """ruamel.yaml's resolver, looking up the YAML version's tag table once per stream, not per scalar."""

    _table: Any = None

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


def _syntax_message(source: Source, start: int, exc: MarkedYAMLError) -> str:
    mark = exc.problem_mark or exc.context_mark
    problem = exc.problem or exc.context or "syntax error"
    if mark is None:
        return f"{source.name}: invalid YAML: {problem}"
    line, column = source.position(start + mark.index)
    return f"{source.name}:{line}:{column}: invalid YAML: {problem}"
