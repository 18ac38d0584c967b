"""What several commands share: rules with --exclude, files through the pipeline, reports, saving a file, colour, child limits."""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from rewriter import console, paint
from rewriter.batch import process_files
from rewriter.child import Limits
from rewriter.config import Config
from rewriter.errors import KmirrorError, seconds
from rewriter.files import anchored, check_writable, expand, write_atomic
from rewriter.pipeline import Outcome


def settings(config: str | None, preset: str | None, exclude: list[str] | None) -> Config:
    """The rules, with the --exclude globs added to the rules file's."""
    loaded = console.settings(config, preset)
    return loaded._replace(exclude=loaded.exclude + anchored(Path.cwd(), tuple(exclude or ())))


def all_outcomes(paths: Sequence[str], settings: Config) -> list[Outcome]:
    """Every named file's Outcome (see `outcomes`)."""
    return list(outcomes(paths, settings))


def outcomes(paths: Sequence[str], settings: Config) -> Iterator[Outcome]:
    """The YAML files `paths` name, through the pipeline in order; notes on skipped ones go to standard error."""
    files, notes = expand(list(paths), settings.exclude)
    for note in notes:
        console.err(f"kmirror: note: {note}")
    for outcome in process_files(files, settings):
        for note in outcome.notes:
            console.err(f"kmirror: note: {note}")
        if outcome.skipped is not None:
            console.err(f"kmirror: note: skipped {outcome.source.name}: {outcome.skipped}")
            continue
        yield outcome


def report(text: str, output_file: str | None) -> None:
    """The report to standard output, or to `output_file` (written whole, replaced atomically)."""
    if output_file is None:
        console.write(text)
    else:
        save(output_file, text)


def save(name: str, text: str) -> None:
    """Write `text` to file `name`: an existing file is replaced atomically, a new one created."""
    if Path(name).exists():
        check_writable(name)
        write_atomic(name, text)
        return
    try:
        with open(name, "w", encoding="utf-8", newline="") as out:
            out.write(text)
    except OSError as exc:
        raise KmirrorError(f"cannot write: {name}: {exc.strerror or exc}") from None


def painted(text: str, colour: Callable[[str], str]) -> str:
    """`text` coloured by `colour` when standard output is a terminal that wants colour."""
    return colour(text) if paint.wanted(sys.stdout) else text


def limits(timeout: float, max_output: float) -> Limits:
    """`--timeout` and `--max-output`, checked: finite numbers above 0."""
    if not (math.isfinite(timeout) and timeout > 0):
        raise KmirrorError(f"invalid option: --timeout: {seconds(timeout)}: give a number of seconds greater than 0")
    if not (math.isfinite(max_output) and max_output > 0):
        raise KmirrorError(f"invalid option: --max-output: {seconds(max_output)}: give a number of megabytes greater than 0")
    return Limits(timeout, max_output)
