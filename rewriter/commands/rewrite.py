"""`kmirror rewrite PATH...`: print the files rewritten, diff them, check them, or replace them in place."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

from rewriter import console, paint, templates
from rewriter.commands import common
from rewriter.config import Config
from rewriter.console import EXIT_FINDINGS, EXIT_OK
from rewriter.errors import KmirrorError, printable
from rewriter.files import STDIN, Replacement, check_writable
from rewriter.pipeline import Outcome


def run(paths: list[str], write: bool, check: bool, diff: bool, strict: bool, pin: str | None, exclude: list[str] | None, config: str | None, preset: str | None) -> int:
    """Rewrite files: print them rewritten, or change them in place with `write` (with `pin`, digests pinned); the exit code."""
    settings = common.settings(config, preset, exclude)
    for note in templates.notes(paths, settings):
        console.err(note)
    if not write or check:
        return _rewrite(list(_pinned(common.outcomes(paths, settings), settings, pin)), None, check=check, diff=diff, strict=strict)
    with Replacement() as replacement:  # each changed file is written beside itself while the next ones are processed
        outcomes = []
        for outcome in _pinned(common.outcomes(paths, settings), settings, pin):
            outcomes.append(outcome)
            if outcome.changed and outcome.source.name != STDIN:
                replacement.stage(outcome.source.name, outcome.output, outcome.source.render(outcome.source.data))
        return _rewrite(outcomes, replacement, check=False, diff=diff, strict=strict)


def _pinned(outcomes: Iterable[Outcome], settings: Config, pin: str | None) -> Iterable[Outcome]:
    """`outcomes` as they come, or, with `--pin`, all of them pinned once every digest is known."""
    if pin is None:
        return outcomes
    from rewriter.access import progress
    from rewriter.pin import pin as pinned

    return pinned(list(outcomes), settings, pin, progress("kmirror: pin"))


def _rewrite(outcomes: list[Outcome], replacement: Replacement | None, check: bool, diff: bool, strict: bool) -> int:
    """Print, diff, check or (with a Replacement of the changed files) write the outcomes; the exit code."""
    if replacement is None and not (check or diff):
        return console.emit_rewritten(outcomes, strict)
    if strict and console.strict_refusal(outcomes, "no file changed"):
        return EXIT_FINDINGS
    console.report_problems(outcomes)
    changed = [o for o in outcomes if o.changed]
    if diff:
        console.write(common.painted("".join(_diff(o) for o in changed), paint.diff))
    if check:
        for outcome in changed:
            console.err(f"would rewrite {outcome.source.name}")
        console.err(f"{console.count(len(changed), 'file')} would be rewritten, {len(outcomes) - len(changed)} unchanged")
        return EXIT_FINDINGS if changed else EXIT_OK
    if replacement is not None:
        stdin = [o for o in changed if o.source.name == STDIN]
        if stdin:
            raise KmirrorError("cannot write: -: standard input cannot be rewritten in place (drop -w)")
        for outcome in changed:
            check_writable(outcome.source.name)
        replacement.commit()
        console.err(f"rewrote {console.count(len(changed), 'file')}")
    return EXIT_OK


def _diff(outcome: Outcome) -> str:
    name = outcome.source.name
    before = outcome.source.render(outcome.source.data).decode("utf-8").splitlines(keepends=True)
    after = outcome.output.decode("utf-8").splitlines(keepends=True)
    return "".join(difflib.unified_diff(before, after, f"a/{printable(name)}", f"b/{printable(name)}"))
