"""A YAML stream as text plus its documents' nodes, with character offsets into the text.

Composition is libyaml's (ruamel.yaml.clib), with ruamel.yaml's pure-Python composer
as a fallback for YAML that libyaml refuses: nodes carry `start_mark.index` and
`end_mark.index`, character offsets into the text without its byte-order mark.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.nodes import Node

from rewriter.errors import KmirrorError

BOM = "\ufeff"


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
    if text.startswith(BOM):
        return Source(name, text[1:], bom=True)
    return Source(name, text)


def compose(source: Source) -> list[Node | None]:
    """Every document of the stream, in order (an empty document is None or an empty scalar)."""
    try:
        return compose_text(source.text)
    except MarkedYAMLError as exc:
        raise KmirrorError(_syntax_message(source, exc)) from None
    except YAMLError as exc:
        raise KmirrorError(f"{source.name}: invalid YAML: {exc}") from None
    except RecursionError:
        raise KmirrorError(f"{source.name}: invalid YAML: nesting is too deep") from None


def compose_text(text: str) -> list[Node | None]:
    """Every document of `text`; raise libyaml's YAMLError when no composer accepts it.

    libyaml is fast but, unlike YAML 1.2 and Kubernetes, refuses a `:` inside a plain
    scalar of a flow collection (`args: [--x-image, quay.io/a:b]`); the pure-Python
    composer (same character offsets) gets a second try then.
    """
    try:
        return list(YAML(typ="safe", pure=False).compose_all(text))
    except MarkedYAMLError as first:
        try:
            return list(YAML(typ="safe", pure=True).compose_all(text))
        except YAMLError:
            raise first from None


def _syntax_message(source: Source, exc: MarkedYAMLError) -> str:
    mark = exc.problem_mark or exc.context_mark
    problem = exc.problem or exc.context or "syntax error"
    if mark is None:
        return f"{source.name}: invalid YAML: {problem}"
    return f"{source.name}:{mark.line + 1}:{mark.column + 1}: invalid YAML: {problem}"
