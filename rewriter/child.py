"""Run helm or kustomize: a session of its own, one deadline, bounded output, nothing left behind.

The child starts in a new session, so that its whole process group (the child and whatever
it started) can be killed with one SIGKILL. That happens when the deadline passes, when it
prints more than the output limit, on Ctrl-C, and on SIGTERM or SIGHUP (which then end
kmirror as they usually do). The deadline bounds the whole run, reading included: a
grandchild that left the group (`setsid`) and holds the pipes open cannot keep kmirror
waiting past it (issue 22).
"""

from __future__ import annotations

import contextlib
import os
import selectors
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any, NamedTuple

from rewriter.errors import KmirrorError, child_timeout

DEFAULT_MAX_OUTPUT = 256  # megabytes a child may print on standard output (--max-output)
MAX_ERROR_OUTPUT = 1_000_000  # bytes of its standard error kept; the rest is read and dropped
_CHUNK = 1 << 16
_STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


class Limits(NamedTuple):
    """How long a child may run (seconds, the whole run) and how much it may print (megabytes)."""

    seconds: float
    megabytes: float = DEFAULT_MAX_OUTPUT


@dataclass(frozen=True)
class Finished:
    """A child that ended in time: its exit code (negative: killed by that signal) and what it printed."""

    returncode: int
    output: bytes
    stderr: str


def executable(name: str, what: str, hint: str) -> str:
    """The path of executable `name` (a path, or a name looked up on PATH); KmirrorError saying why not.

    A file that exists but may not be run is reported as such, not as missing.
    """
    found = shutil.which(name)
    if found is not None:
        return found
    candidates = [Path(name)] if os.sep in name else [Path(p) / name for p in os.environ.get("PATH", os.defpath).split(os.pathsep)]
    for candidate in candidates:
        if candidate.is_dir():
            raise KmirrorError(f"cannot run {what}: {name}: is a folder ({hint})")
        if candidate.exists():
            raise KmirrorError(f"cannot run {what}: {candidate}: not executable (chmod +x it, or {hint})")
    raise KmirrorError(f"cannot run {what}: {name}: not found ({hint})")


def run(command: Sequence[str], what: str, shown: str, limits: Limits) -> Finished:
    """Run `command` to its end within `limits`: its seconds, and its megabytes of standard output.

    `what` names the tool and `shown` the command in messages (secrets removed). KmirrorError
    when it cannot start, runs too long or prints too much; its process group is killed then.
    """
    try:
        child = subprocess.Popen(list(command), stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    except OSError as exc:
        raise KmirrorError(f"cannot run {what}: {command[0]}: {exc.strerror or exc}") from None
    limit = int(limits.megabytes * 1_000_000)
    with child, _killed_on_stop(child.pid):
        try:
            output, stderr = _read(child, time.monotonic() + limits.seconds, limit)
        except _TimedOut:
            _kill_group(child.pid)
            raise child_timeout(what, shown, limits.seconds) from None
        except _TooLong:
            _kill_group(child.pid)
            raise KmirrorError(
                f"{what} printed too much: {shown}: more than {limits.megabytes:g} MB on standard output (raise the limit with --max-output MB)"
            ) from None
        except BaseException:  # Ctrl-C, which the child, in a session of its own, did not get
            _kill_group(child.pid)
            raise
    return Finished(child.returncode, output, stderr.decode("utf-8", "replace"))


class _TimedOut(Exception):
    pass


class _TooLong(Exception):
    pass


def _read(child: subprocess.Popen[bytes], deadline: float, limit: int) -> tuple[bytes, bytes]:
    """Both pipes read to their end and the child reaped, by `deadline`; at most `limit` bytes of output."""
    assert child.stdout is not None and child.stderr is not None
    kept: dict[int, list[bytes]] = {child.stdout.fileno(): [], child.stderr.fileno(): []}
    sizes = dict.fromkeys(kept, 0)
    bounds = {child.stdout.fileno(): limit, child.stderr.fileno(): MAX_ERROR_OUTPUT}
    with selectors.DefaultSelector() as selector:
        for pipe in (child.stdout, child.stderr):
            selector.register(pipe, selectors.EVENT_READ)
        while selector.get_map():
            left = deadline - time.monotonic()
            if left <= 0:
                raise _TimedOut
            for key, _ in selector.select(left):
                chunk = os.read(key.fd, _CHUNK)
                if not chunk:
                    selector.unregister(key.fileobj)
                    continue
                if sizes[key.fd] < bounds[key.fd]:
                    kept[key.fd].append(chunk[: bounds[key.fd] - sizes[key.fd]])
                sizes[key.fd] += len(chunk)
                if key.fd == child.stdout.fileno() and sizes[key.fd] > limit:
                    raise _TooLong
    try:
        child.wait(max(deadline - time.monotonic(), 0))
    except subprocess.TimeoutExpired:
        raise _TimedOut from None
    stderr = b"".join(kept[child.stderr.fileno()])
    dropped = sizes[child.stderr.fileno()] - len(stderr)
    if dropped:
        stderr += b"\n(%d more bytes of error output not shown)" % dropped
    return b"".join(kept[child.stdout.fileno()]), stderr


@contextlib.contextmanager
def _killed_on_stop(group: int) -> Iterator[None]:
    """Within the block, SIGTERM or SIGHUP first kill process group `group`, then take their usual course."""
    if threading.current_thread() is not threading.main_thread():  # only the main thread may set handlers
        yield
        return
    handlers: dict[int, Any] = {signum: signal.getsignal(signum) or signal.SIG_DFL for signum in _STOP_SIGNALS}
    previous = {signum: handler for signum, handler in handlers.items() if handler != signal.SIG_IGN}  # nohup stays nohup

    def stop(signum: int, frame: FrameType | None) -> None:
        _kill_group(group)
        signal.signal(signum, previous[signum])
        os.kill(os.getpid(), signum)  # the action kmirror had before, now that the child is gone

    for stopping in previous:
        signal.signal(stopping, stop)
    try:
        yield
    finally:
        for restored, handler in previous.items():
            signal.signal(restored, handler)


def _kill_group(leader: int) -> None:
    """SIGKILL the process group `leader` leads (the child and whatever it started)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(leader, signal.SIGKILL)
