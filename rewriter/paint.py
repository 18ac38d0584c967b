"""Colour for people at a terminal: `rewrite --diff` and `check`'s text report.

Colour is on only when standard output is a terminal, `NO_COLOR` is unset or empty
(https://no-color.org) and `TERM` is not `dumb`; piped or redirected output is plain.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from typing import TextIO

_RESET = "\033[0m"
_BOLD, _RED, _GREEN, _CYAN = "\033[1m", "\033[31m", "\033[32m", "\033[36m"
_FINDING_RE = re.compile(r"^(.*?:\d+:\d+:) (KM\d{3}) ")


def wanted(stream: TextIO | None) -> bool:
    """True when text for `stream` should be coloured (never for a closed stream: None)."""
    return stream is not None and not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb" and stream.isatty()


def diff(text: str) -> str:
    """A unified diff coloured: file headers bold, hunk headers cyan, additions green, removals red."""
    return "".join(_line(line, _diff_colour) for line in text.splitlines(keepends=True))


def findings(text: str) -> str:
    """`check`'s text report coloured: places bold, codes red, the summary red or green."""
    return "".join(_line(line, _finding_colour) for line in text.splitlines(keepends=True))


def _line(line: str, colour: Callable[[str], str]) -> str:
    body = line.rstrip("\r\n")
    return f"{colour(body)}{line[len(body):]}"


def _diff_colour(body: str) -> str:
    for prefix, colour in (("+++", _BOLD), ("---", _BOLD), ("@@", _CYAN), ("+", _GREEN), ("-", _RED)):
        if body.startswith(prefix):
            return f"{colour}{body}{_RESET}"
    return body


def _finding_colour(body: str) -> str:
    match = _FINDING_RE.match(body)
    if match is not None:
        return f"{_BOLD}{match.group(1)}{_RESET} {_RED}{match.group(2)}{_RESET} {body[match.end():]}"
    if body.startswith("no problems"):
        return f"{_GREEN}{body}{_RESET}"
    return f"{_RED}{body}{_RESET}" if body[:1].isdigit() else body
