"""Apply edits to text from the end backwards, checking each span first."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Edit:
    """Replace `text[start:end]`, which must equal `old`, with `new`."""

    start: int
    end: int
    old: str
    new: str


class SpliceError(RuntimeError):
    """An edit does not fit the text: a bug in kmirror, never in the user's input."""


def splice(text: str, edits: list[Edit]) -> str:
    """`text` with every edit applied; every character outside the edits is kept."""
    pieces: list[str] = []
    cursor = len(text)
    for edit in sorted(edits, key=lambda e: e.start, reverse=True):
        if edit.end > cursor:
            raise SpliceError(f"overlapping edits at offset {edit.start}")
        if text[edit.start : edit.end] != edit.old:
            raise SpliceError(f"text at offset {edit.start} is not {edit.old!r}")
        pieces.append(text[edit.end : cursor])
        pieces.append(edit.new)
        cursor = edit.start
    pieces.append(text[:cursor])
    return "".join(reversed(pieces))
