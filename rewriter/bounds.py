"""What kmirror hands libyaml, bounded: nesting depth, nodes per document, directives.

libyaml's composer recurses once per level of nesting (50,000 levels of `[` crash the
process), its scanner spends time proportional to the depth on every token (200,000 levels
take minutes), `%TAG` directives cost time proportional to their number each, and every
composed node costs memory. `check` refuses text beyond these limits before libyaml reads
it, in time linear in the text: a cheap upper bound on the depth (counting characters)
clears almost every real text, and libyaml's own count of events (at C speed, once the depth
is known to be safe) the nodes of any text that is not large; the rest is read event by event
in Python, stopping at the first limit passed.
"""

from __future__ import annotations

import os
import re
from typing import Any, NamedTuple

from _ruamel_yaml import CParser  # type: ignore[import-not-found]
from ruamel.yaml.error import YAMLError
from ruamel.yaml.events import CollectionEndEvent, CollectionStartEvent, DocumentStartEvent, StreamEndEvent

from rewriter.errors import KmirrorError

MAX_DEPTH = 1000  # fixed: libyaml's composer recursion must stay far from the C stack's end
MAX_DIRECTIVES = 1000  # fixed: real streams have one or two
NODES_VARIABLE = "KMIRROR_MAX_NODES"
DEFAULT_MAX_NODES = 1_000_000  # about 280 MB of composed nodes; real documents hold a few thousand
# Text with fewer flow openers than this and no line starting with this many indentation
# or block indicator characters nests less than MAX_DEPTH deep: a flow level needs a `[` or
# `{`, and a block level at least one more column or a `- `/`? `/`: ` on the line (at most
# two levels per column: a sequence may sit at its parent mapping's column).
_FLOW_BOUND = MAX_DEPTH // 2
_PREFIX = MAX_DEPTH // 4 - 1
_INDICATORS = rf"[ \t?:-]{{{_PREFIX}}}"


class _Patterns(NamedTuple):
    """The patterns `check` searches, for text as characters or as bytes."""

    deep_line: re.Pattern[Any]  # a line starting with _PREFIX indicators (from its newline: a literal, found fast)
    deep_start: re.Pattern[Any]  # the same at the start of the text
    directive: re.Pattern[Any]
    marker: re.Pattern[Any]  # a document marker line (as in rewriter.stream): no collection spans one


_STR = _Patterns(
    re.compile("\n" + _INDICATORS),
    re.compile(_INDICATORS),
    re.compile(r"^%", re.MULTILINE),
    re.compile(r"\n(?:---|\.\.\.)(?![^ \t\r\n])"),
)
_BYTES = _Patterns(*(re.compile(p.pattern.encode(), p.flags & ~re.UNICODE) for p in _STR))
_NOT_FLOW_OPENERS = bytes(range(256)).translate(None, b"[{")  # deleted, they leave the openers to count
_NODES_PER_CHARACTER = 2  # no YAML node takes less than half a character (`{a,b}`, `[:,:]`)


class LimitError(ValueError):
    """Text beyond one of the limits; `offset` is the character of the text where it went beyond."""

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(message)
        self.offset = offset

    def __reduce__(self) -> tuple[type[LimitError], tuple[str, int]]:
        return type(self), (str(self), self.offset)  # whole, when a child process sends it back


def max_nodes() -> int:
    """The nodes-per-document limit: KMIRROR_MAX_NODES, else DEFAULT_MAX_NODES."""
    return _positive(NODES_VARIABLE, DEFAULT_MAX_NODES)


def _positive(variable: str, default: int) -> int:
    value = os.environ.get(variable, "").strip()
    if not value:
        return default
    if not value.isdigit() or int(value) == 0:
        raise KmirrorError(f"invalid environment: {variable}={value!r}: expected a positive whole number")
    return int(value)


def check(text: str | bytes, count_nodes: bool = True) -> None:
    """Raise LimitError when `text` nests deeper than MAX_DEPTH, has more than MAX_DIRECTIVES
    directives, or (with `count_nodes`) a document of more than `max_nodes()` nodes.

    Linear in the text. Text libyaml would refuse anyway may pass (libyaml then reports it).
    """
    patterns = _STR if isinstance(text, str) else _BYTES
    if (text.count("%") if isinstance(text, str) else text.count(b"%")) > MAX_DIRECTIVES:
        for number, match in enumerate(patterns.directive.finditer(text)):
            if number == MAX_DIRECTIVES:
                raise LimitError(f"invalid YAML: more than {MAX_DIRECTIVES} directives", _characters(text, match.start()))
    nodes = max_nodes() if count_nodes else None
    if not _cleared(text, patterns, nodes):
        # Documents nest on their own: read only those the bounds do not clear, each alone
        # (all of the text when one cannot be read alone: a tag handle from an earlier directive).
        start = 0
        for end in [*(m.start() + 1 for m in patterns.marker.finditer(text)), len(text)]:
            piece = text[start:end]
            if not _cleared(piece, patterns, nodes):
                try:
                    if not _read_events(piece, nodes):
                        _read_events(text, nodes)
                        return
                except LimitError as exc:
                    raise LimitError(str(exc), _characters(text, start) + exc.offset) from None
            start = end


def _cleared(text: str | bytes, patterns: _Patterns, nodes: int | None) -> bool:
    """True when cheap bounds show that `text` is within the limits (False: it may not be)."""
    if _openers(text) >= _FLOW_BOUND or patterns.deep_start.match(text) or patterns.deep_line.search(text):
        return False
    return nodes is None or len(text) * _NODES_PER_CHARACTER <= nodes or _events(text) <= nodes


def _characters(text: str | bytes, offset: int) -> int:
    """The character offset of `offset` (a byte offset when `text` is bytes)."""
    return offset if isinstance(text, str) else len(text[:offset].decode("utf-8", "replace"))


def _openers(text: str | bytes) -> int:
    if isinstance(text, str):
        return text.count("[") + text.count("{")
    return len(text.translate(None, _NOT_FLOW_OPENERS))


def _events(text: str | bytes) -> int:
    """How many events libyaml's parser gives for all of `text` (at C speed: no event is built);
    0 when it refuses the text (the composer will say why)."""
    try:
        return int(CParser(text).raw_parse())
    except YAMLError:
        return 0


def _read_events(text: str | bytes, nodes: int | None) -> bool:
    """Follow libyaml's events to the end of `text` (True) or the first limit passed (LimitError);
    False when libyaml refuses the text (the composer will say why, at its own position)."""
    parser = CParser(text)
    depth = count = 0
    try:
        while True:
            event = parser.get_event()
            if isinstance(event, CollectionStartEvent):
                depth += 1
                if depth > MAX_DEPTH:
                    raise LimitError(f"invalid YAML: collections nested deeper than {MAX_DEPTH} levels", event.start_mark.index)
            elif isinstance(event, CollectionEndEvent):
                depth -= 1
                continue
            elif isinstance(event, DocumentStartEvent):
                count = 0
                continue
            elif isinstance(event, StreamEndEvent):
                return True
            count += 1  # a scalar, an alias or a collection: one node
            if nodes is not None and count > nodes:
                raise LimitError(f"too large: a document of more than {nodes:,} nodes (set {NODES_VARIABLE} to raise the limit)", event.start_mark.index)
    except YAMLError:
        return False
