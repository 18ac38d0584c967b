"""`kmirror check PATH...`: report references to blocked registries (exit 1 when there are any)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from rewriter import paint
from rewriter.commands import common
from rewriter.config import Config
from rewriter.console import EXIT_FINDINGS, EXIT_OK
from rewriter.errors import KmirrorError
from rewriter.findings import Finding
from rewriter.pipeline import Outcome
from rewriter.rules import RuleError, make_rule

if TYPE_CHECKING:
    from rewriter.allowlist import AllowList


def run(
    paths: list[str],
    format: str | None,
    allow: list[str] | None,
    allowlist: str | None,
    output_file: str | None,
    exit_zero: bool,
    exclude: list[str] | None,
    config: str | None,
    preset: str | None,
) -> int:
    """Report the references left on blocked registries in `format`; the exit code."""
    from rewriter.files import repository_root
    from rewriter.report import FORMATS, ROOTED, render

    chosen = format or _default_format()
    if chosen not in FORMATS:
        raise KmirrorError(f"invalid option: --format: {chosen!r}: choose one of {', '.join(FORMATS)}")
    settings = _with_allow(common.settings(config, preset, exclude), allow or [])
    allowed = load_allowlist(allowlist)
    outcomes = common.all_outcomes(paths, settings)
    findings = [f for o in outcomes for f in _check_findings(o, allowed)]
    root = repository_root(Path.cwd()) if chosen in ROOTED else None
    text = render(findings, chosen, len(outcomes), settings.origin, root)
    common.report(common.painted(text, paint.findings) if chosen == "text" and output_file is None else text, output_file)
    return EXIT_FINDINGS if findings and not exit_zero else EXIT_OK


def _default_format() -> str:
    return "github" if os.environ.get("GITHUB_ACTIONS") == "true" else "text"


def _with_allow(settings: Config, patterns: list[str]) -> Config:
    try:
        extra = tuple(make_rule(p, None) for p in patterns)
    except RuleError as exc:
        raise KmirrorError(f"invalid option: --allow: {exc}") from None
    return settings._replace(rules=settings.rules.allowing(extra))


def load_allowlist(path: str | None) -> AllowList | None:
    """The mirror's allow-list file (--allowlist), if given."""
    from rewriter.allowlist import load_allowlist

    return load_allowlist(path) if path is not None else None


def _check_findings(outcome: Outcome, allowed: AllowList | None) -> list[Finding]:
    found = outcome.findings(after_rewrite=False)
    if allowed is None:
        return found
    from rewriter.allowlist import findings

    return sorted([*found, *findings(outcome.source, outcome.images, allowed)], key=lambda f: (f.line, f.column, f.code))
