"""The one exception type the command line turns into `kmirror: error: ...` and exit 2."""


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
