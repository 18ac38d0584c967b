"""One stream through the whole pipeline: decode, compose, locate, plan, splice."""

from __future__ import annotations

from typing import NamedTuple

from rewriter import kustomization
from rewriter.config import Config
from rewriter.findings import Finding
from rewriter.errors import KmirrorError
from rewriter.locate import NestingError, may_hold_images
from rewriter.parallel import locate_stream
from rewriter.plan import Image, blocked_findings, plan
from rewriter.splice import splice
from rewriter.stream import BOM, Source, decode



class Outcome(NamedTuple):
    """A processed stream: the text to write (`output`), its images and findings.

    `notes` are said on standard error (`file:line:column: ...`); `skipped` is the reason a
    file was left alone unread (not a file kmirror rewrites), None when it was processed.
    """

    source: Source
    output: bytes
    images: tuple[Image, ...]
    problems: tuple[Finding, ...]
    notes: tuple[str, ...] = ()
    skipped: str | None = None

    @property
    def changed(self) -> bool:
        """True when rewriting changes the stream."""
        return memoryview(self.output)[len(BOM) if self.source.bom else 0 :] != self.source.data

    def findings(self, after_rewrite: bool) -> list[Finding]:
        """Problems plus KM001 findings, as written (`check`) or after rewriting (`--strict`)."""
        found = [*self.problems, *blocked_findings(self.source, self.images, after_rewrite)]
        return sorted(found, key=lambda f: (f.line, f.column, f.code))


def process(data: bytes, name: str, config: Config) -> Outcome:
    """Rewrite one stream's bytes with `config`; raise KmirrorError on unreadable input."""
    source = decode(data, name)
    try:
        wanted = None if config.fields else may_hold_images
        locations = locate_stream(source, wanted, config.fields)
    except NestingError as exc:
        line, column = source.position(exc.offset)
        raise KmirrorError(f"{name}:{line}:{column}: {exc}") from None
    entries = kustomization.locate_entries(source)
    if entries.found:
        locations = kustomization.located(entries, locations)
    result = plan(source, locations, config.rules)
    if entries.found:
        result = kustomization.plan_entries(source, entries, config.rules, result)
    output = source.render(splice(source.data, list(result.edits)))
    return Outcome(source, output, result.images, result.problems, kustomization.note_lines(source, entries))
