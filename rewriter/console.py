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

from rewriter.errors import KmirrorError, printable_lines

if TYPE_CHECKING:
    from rewriter.config import Config
    from rewriter.pipeline import Outcome

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE, EXIT_BUG, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
COMPLETE_VAR = "_KMIRROR_COMPLETE"  # set by the shell completion script (`kmirror --install-completion`)


def main(argv: Sequence[str] | None = None) -> int:
    """Run kmirror with `argv` (default: the process arguments) and return the exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args == ["--version"]:
        return guarded(version, debug=False)
    chosen = filter_options(args)
    if chosen is None or COMPLETE_VAR in os.environ:  # a shell asking for completions runs `kmirror` with no arguments
        from rewriter.cli import main as commands

        return commands(args)
    return guarded(lambda: filter_stdin(*chosen), debug=False)


def filter_options(args: list[str]) -> tuple[str | None, str | None, bool, str | None] | None:
    """(config, preset, strict, pin) when `args` only set the filter's options, each at most once; else None.

    `pin` is where digests come from with `--pin` (`--pin-from`, default `source`), else None.
    """
    values: dict[str, str | None] = {"--config": None, "--preset": None, "--pin-from": None}
    strict = pin = False
    rest = list(args)
    while rest:
        arg = rest.pop(0)
        name, equals, value = arg.partition("=")
        name = "--config" if name == "-c" else name
        if arg == "--strict" and not strict:
            strict = True
        elif arg == "--pin" and not pin:
            pin = True
        elif name in values and values[name] is None and equals and value:
            values[name] = value
        elif name in values and values[name] is None and not equals and rest and not rest[0].startswith("-"):
            values[name] = rest.pop(0)
        else:
            return None
    if values["--pin-from"] is not None and not pin:
        return None  # the command line's error, said by the full parser
    return values["--config"], values["--preset"], strict, pin_source(pin, values["--pin-from"])


def pin_source(pin: bool, pin_from: str | None) -> str | None:
    """Where `--pin` takes digests from (None: no pinning); `--pin-from` alone is an error."""
    if pin_from is not None and not pin:
        raise KmirrorError("invalid option: --pin-from: it chooses where --pin takes digests from: give --pin too")
    return (pin_from or "source") if pin else None


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
        _drop_stdout()
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


def filter_stdin(config: str | None, preset: str | None, strict: bool, pin: str | None = None) -> int:
    """The filter: the stream on standard input, rewritten (with `pin`: digests pinned), to standard output."""
    from rewriter.files import STDIN, read
    from rewriter.pipeline import process

    if sys.stdin is not None and sys.stdin.isatty():  # someone typed `kmirror` alone: say why nothing happens
        err("kmirror: reading a YAML stream from standard input (end it with Ctrl-D; 'kmirror --help' lists the commands)")
    data = read(STDIN)
    if b"ResourceList" in data:  # a cheap test first: the KRM module loads only for what may be one
        from rewriter.krm import is_resource_list

        if is_resource_list(data):  # run as a KRM function: docs/kustomize.md
            if pin is not None:
                raise KmirrorError("invalid option: --pin: not for a ResourceList (pin the files with kmirror rewrite --pin)")
            return krm_function(data, config, preset, strict)
    chosen = settings(config, preset)
    outcomes = [process(data, STDIN, chosen)]
    if pin is not None:  # registry code loads only when asked for
        from rewriter.access import progress
        from rewriter.pin import pin as pinned

        outcomes = pinned(outcomes, chosen, pin, progress("kmirror: pin"))
    return emit_rewritten(outcomes, strict)


def krm_function(data: bytes, config: str | None, preset: str | None, strict: bool) -> int:
    """Answer a ResourceList: rules from its functionConfig (an ImageMirror), else as usual.

    With --strict and findings, nothing is written (exit 1), as for any stream.
    """
    from rewriter.config import rules_file
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
        unused = rules_file(None, Path.cwd())  # the functionConfig takes its place: rewriter/krm.py
        if unused is not None:
            err(f"kmirror: note: the rules are the ResourceList's functionConfig; {unused} is not used")
    response = respond(request, chosen)
    for finding in response.findings:
        err(finding.text())
    if strict and response.findings:
        err(_refusal(len(response.findings), "nothing written"))
        return EXIT_FINDINGS
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
    """Write the rewritten streams to stdout as one stream; with --strict, nothing when references are left blocked."""
    if strict and strict_refusal(outcomes, "nothing written"):
        return EXIT_FINDINGS
    report_problems(outcomes)
    from rewriter.stream import join_streams  # loaded already: the pipeline uses it

    write(join_streams([outcome.output for outcome in outcomes]))
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
        err(_refusal(len(failures), consequence))
    return bool(failures)


def _refusal(failures: int, consequence: str) -> str:
    return f"kmirror: {count(failures, 'reference')} left on blocked registries or not rewritable; {consequence} (--strict)"


class ClosedStdout(Exception):
    """Standard output's reader went away (`kmirror ... | head`)."""


def write(*texts: str | bytes) -> None:
    """Write to standard output (text as UTF-8) and flush; KmirrorError when it cannot take it."""
    if sys.stdout is None:  # `kmirror >&-`: Python found no file descriptor 1
        raise KmirrorError("cannot write: standard output is closed")
    try:
        for text in texts:
            sys.stdout.buffer.write(text.encode("utf-8") if isinstance(text, str) else text)
        sys.stdout.buffer.flush()
    except BrokenPipeError:
        raise ClosedStdout from None
    except OSError as exc:  # a full disk (`> /dev/full`), a file size limit, an I/O error
        _drop_stdout()  # what is still buffered would fail again when Python flushes at exit
        raise KmirrorError(f"cannot write: standard output: {exc.strerror or exc}") from None


def _drop_stdout() -> None:
    """Send the rest of standard output to /dev/null (nothing more can reach its reader)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def err(message: str) -> None:
    """Print `message` on standard error, control characters escaped (errors.printable_lines)."""
    print(printable_lines(message), file=sys.stderr)


def count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")
