"""Errors and messages: the one exception type (`kmirror: error: ...`, exit 2), and text fit to print.

KmirrorError is what the command line turns into its error line; child_failure and
child_timeout build the messages of a failed helm or kustomize run; printable and
printable_lines escape control characters in whatever kmirror prints.
"""


class KmirrorError(Exception):
    """Bad usage, configuration, input or render: a message a user can act on.

    The message reads `<what>: <where>: <why>`; the CLI prefixes `kmirror: error: `.
    """


def child_failure(what: str, command: str, returncode: int, stderr: str) -> KmirrorError:
    """`<what> failed: <command>: exit code N:` and the child's error output, indented."""
    shown = stderr.rstrip() or "(no error output)"
    indented = "\n".join("    " + line for line in shown.splitlines())
    status = f"exit code {returncode}" if returncode >= 0 else f"killed by signal {-returncode}"
    return KmirrorError(f"{what} failed: {command}: {status}:\n{indented}")


def child_timeout(what: str, command: str, timeout: float) -> KmirrorError:
    """`<what> timed out after N s: <command>`, for a child killed when its time ran out."""
    return KmirrorError(f"{what} timed out after {seconds(timeout)} s: {command}")


def seconds(value: float) -> str:
    """A number of seconds as a user wrote it: `2`, not `2.0`; `0.5`."""
    return str(int(value)) if value.is_integer() else str(value)


# Control characters (C0 but tab, DEL, C1) and the Unicode line and paragraph separators, as
# escapes: a file name or value holding one cannot forge a line of a report or message, nor
# send a terminal an escape sequence (issue 22).
_ESCAPES = {c: f"\\x{c:02x}" for c in (*range(0x20), *range(0x7F, 0xA0)) if c != 0x09}
_ESCAPES.update({0x0A: "\\n", 0x0D: "\\r", 0x2028: "\\u2028", 0x2029: "\\u2029"})


def printable(text: str) -> str:
    """`text` fit for one line of output: each control character written as an escape (`\\n`, `\\x1b`)."""
    return text.translate(_ESCAPES)


def printable_lines(text: str) -> str:
    """`text` fit for a terminal: `printable`, but a line break before an indented line stays one.

    Indented lines (four spaces) are a child's error output or a list of places, so no
    line can begin at the margin but where kmirror begins one.
    """
    first, *rest = text.split("\n")
    return printable(first) + "".join(("\n" if line.startswith("    ") else "\\n") + printable(line) for line in rest)
