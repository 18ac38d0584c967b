"""Apply edits to a stream's bytes from the end backwards, checking each span first."""

from __future__ import annotations

from typing import Any, NamedTuple, TypeVar



class Edit(NamedTuple):
    """Replace `text[start:end]`, which must equal `old`, with `new`."""

    start: int
    end: int
    old: str
    new: str


class SpliceError(RuntimeError):
    """An edit does not fit the text: a bug in kmirror, never in the user's input."""


Text = TypeVar("Text", str, bytes)


def splice(text: Text, edits: list[Edit]) -> Text:
    """`text` with every edit applied; every character outside the edits is kept.

    Offsets count bytes in UTF-8 `bytes` (a stream) and characters in a `str` (a small file).
    """
    # Slices of bytes are taken through a memoryview: the output is the only copy made.
    view: Any = memoryview(text) if isinstance(text, bytes) else text
    pieces: list[Any] = []
    cursor = len(text)
    for edit in sorted(edits, key=lambda e: e.start, reverse=True):
        old, new = (edit.old.encode("utf-8"), edit.new.encode("utf-8")) if isinstance(text, bytes) else (edit.old, edit.new)
        if edit.end > cursor:
            raise SpliceError(f"overlapping edits at offset {edit.start}")
        if view[edit.start : edit.end] != old:
            raise SpliceError(f"text at offset {edit.start} is not {edit.old!r}")
        pieces.append(view[edit.end : cursor])
        pieces.append(new)
        cursor = edit.start
    pieces.append(view[:cursor])
    return text[:0].join(reversed(pieces))
