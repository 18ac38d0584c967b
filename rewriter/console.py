"""The `kmirror` executable: its error boundary, its output, and the filter, without typer.

Loading typer and building its commands takes longer than rewriting a small stream, and
the filter is what pipelines run most (`helm template ... | kmirror | kubectl apply -f -`).
So `kmirror --version` and the bare filter (`kmirror [-c FILE] [--preset NAME] [--strict]`)
run from here; any other command line goes to `rewriter.cli`, whose commands use the same
helpers. Exit codes: 0 clean; 1 findings (or `--check` would change files); 2 bad usage,
configuration, input or render; 3 internal error; 130 interrupted.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from rewriter.errors import KmirrorError

if TYPE_CHECKING:
    from rewriter.config import Config
    from rewriter.pipeline import Outcome

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE, EXIT_BUG, EXIT_INTERRUPTED = 0, 1, 2, 3, 130


def main(argv: Sequence[str] | None = None) -> int:
    """Run kmirror with `argv` (default: the process arguments) and return the exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args == ["--version"]:
        return guarded(version, debug=False)
    chosen = filter_options(args)
    if chosen is None:
        from rewriter.cli import main as commands

        return commands(args)
    return guarded(lambda: filter_stdin(*chosen), debug=False)


def filter_options(args: list[str]) -> tuple[str | None, str | None, bool] | None:
    """(config, preset, strict) when `args` only set the filter's options, each at most once; else None."""
    values: dict[str, str | None] = {"--config": None, "--preset": None}
    strict = False
    rest = list(args)
    while rest:
        arg = rest.pop(0)
        name, equals, value = arg.partition("=")
        name = "--config" if name == "-c" else name
        if arg == "--strict" and not strict:
            strict = True
        elif name in values and values[name] is None and equals and value:
            values[name] = value
        elif name in values and values[name] is None and not equals and rest and not rest[0].startswith("-"):
            values[name] = rest.pop(0)
        else:
            return None
    return values["--config"], values["--preset"], strict


def guarded(run: Callable[[], int], debug: bool, hint: str = " (run with --debug for a traceback)") -> int:
    """`run()`'s exit code; kmirror's errors, Ctrl-C, a closed stdout and bugs become messages and codes.

    `hint` ends the message of an internal error (empty where there is no --debug option).
    """
    try:
        return run()
    except KmirrorError as exc:
        err(f"kmirror: error: {exc}")
        return EXIT_USAGE
    except KeyboardInterrupt:
        return interrupted()
    except ClosedStdout:
        # The reader went away (`kmirror ... | head`): stop quietly, and keep Python from
        # complaining again when it flushes stdout at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK
    except Exception as exc:  # the one boundary that turns a bug into exit 3
        if debug:
            raise
        err(f"kmirror: internal error: {type(exc).__name__}: {exc}{hint}")
        return EXIT_BUG


def interrupted() -> int:
    err("kmirror: interrupted")
    return EXIT_INTERRUPTED


def version() -> int:
    """Print `kmirror VERSION`."""
    from rewriter import __version__

    write(f"kmirror {__version__}\n")
    return EXIT_OK


def filter_stdin(config: str | None, preset: str | None, strict: bool) -> int:
    """The filter: the stream on standard input, rewritten, to standard output."""
    from rewriter.files import STDIN, read
    from rewriter.pipeline import process

    data = read(STDIN)
    if b"ResourceList" in data:  # a cheap test first: the KRM module loads only for what may be one
        from rewriter.krm import is_resource_list

        if is_resource_list(data):  # run as a KRM function: docs/kustomize.md
            return krm_function(data, config, preset)
    return emit_rewritten([process(data, STDIN, settings(config, preset))], strict)


def krm_function(data: bytes, config: str | None, preset: str | None) -> int:
    """Answer a ResourceList: rules from its functionConfig (an ImageMirror), else as usual."""
    from rewriter.files import STDIN
    from rewriter.krm import function_config, read_request, respond

    request = read_request(data, STDIN)
    if request.function_config is None:
        chosen = settings(config, preset)
    elif config is not None or preset is not None:
        raise KmirrorError("invalid option: --config/--preset: the ResourceList's functionConfig already gives the rules")
    else:
        chosen = function_config(request)
        for notice in chosen.notices:
            err(f"kmirror: {notice}")
    response = respond(request, chosen)
    for finding in response.findings:
        err(finding.text())
    write(response.text)
    return EXIT_FINDINGS if response.findings else EXIT_OK


def settings(config: str | None, preset: str | None) -> Config:
    """The rules (from --config, --preset or discovery), with their notices printed."""
    from rewriter.config import load_config

    loaded = load_config(config, preset, Path.cwd())
    for notice in loaded.notices:
        err(f"kmirror: {notice}")
    return loaded


def emit_rewritten(outcomes: list[Outcome], strict: bool) -> int:
    """Write the rewritten streams to stdout; with --strict, nothing when references are left blocked."""
    if strict and strict_refusal(outcomes, "nothing written"):
        return EXIT_FINDINGS
    report_problems(outcomes)
    write(*(outcome.output for outcome in outcomes))
    return EXIT_OK


def report_problems(outcomes: list[Outcome]) -> None:
    for outcome in outcomes:
        for problem in outcome.problems:
            err(problem.text())


def strict_refusal(outcomes: list[Outcome], consequence: str) -> bool:
    """With --strict: print every finding left after rewriting (problems included, once) and say so."""
    failures = [f for outcome in outcomes for f in outcome.findings(after_rewrite=True)]
    for finding in failures:
        err(finding.text())
    if failures:
        err(f"kmirror: {count(len(failures), 'reference')} left on blocked registries or not rewritable; {consequence} (--strict)")
    return bool(failures)


class ClosedStdout(Exception):
    """Standard output's reader went away (`kmirror ... | head`)."""


def write(*texts: str | bytes) -> None:
    """Write to standard output (text as UTF-8) and flush."""
    try:
        for text in texts:
            sys.stdout.buffer.write(text.encode("utf-8") if isinstance(text, str) else text)
        sys.stdout.buffer.flush()
    except BrokenPipeError:
        raise ClosedStdout from None


def err(message: str) -> None:
    print(message, file=sys.stderr)


def count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")
