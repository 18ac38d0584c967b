"""Findings: what kmirror reports about a stream, with stable codes.

KM001  a reference on a blocked registry (error)
KM002  a reference kmirror found but cannot rewrite safely (error)
KM003  a rule gives an invalid reference for this image (error)
KM004  a mirrored image that the mirror's allow-list does not cover (error)
"""

from __future__ import annotations

from typing import NamedTuple

from rewriter.locate import Resource

BLOCKED = "KM001"
UNSAFE = "KM002"
BAD_RESULT = "KM003"
NOT_ALLOWED = "KM004"


class Finding(NamedTuple):
    """One problem at one place: `ref` as written, `suggested` the mirror (None: no rule)."""

    code: str
    message: str
    file: str
    line: int
    column: int
    ref: str
    registry: str
    suggested: str | None
    resource: Resource
    path: str
    severity: str = "error"

    def text(self) -> str:
        """`file:line:col: CODE message`, the line tools and editors understand."""
        return f"{self.file}:{self.line}:{self.column}: {self.code} {self.message}"
