"""Files on disk: expand paths to YAML files, read them, replace them atomically."""

from __future__ import annotations

import contextlib
import os
import signal
import stat
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType, TracebackType
from typing import TYPE_CHECKING, Any, BinaryIO, NamedTuple

from rewriter.errors import KmirrorError

if TYPE_CHECKING:
    from concurrent.futures import Future

STDIN = "-"
YAML_SUFFIXES = (".yaml", ".yml")
_HELD_SIGNALS = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}


def is_chart_template(path: Path) -> bool:
    """True for a file under a Helm chart's `templates/` folder (Go templates, not YAML)."""
    for folder in _real(path).parents:
        if folder.name == "templates" and (folder.parent / "Chart.yaml").is_file():
            return True
    return False


def expand(paths: list[str], exclude: tuple[str, ...] = ()) -> tuple[list[str], list[str]]:
    """YAML files named by `paths` (folders recursed; hidden files and folders skipped) and notes on skipped ones.

    A file or folder whose path or any folder above it matches a glob of `exclude`
    (absolute: see `anchored`) is skipped. KmirrorError for a folder that holds no YAML
    file at all: a mistyped path in CI must not pass as clean. While walking a folder, a
    symbolic link that leads outside it is skipped (with a note), so that `rewrite -w deploy/`
    changes nothing outside `deploy/`; a link named in `paths` is followed.
    """
    files: list[str] = []
    notes: list[str] = []
    for given in paths:
        path = Path(given)
        if given != STDIN and path.is_dir() and path.name == "templates" and (path.parent / "Chart.yaml").is_file():
            notes.append(f"skipped {given}: Helm chart templates, not YAML (use 'kmirror helm')")
            continue
        if given == STDIN or not path.is_dir():
            if given != STDIN and is_chart_template(path):
                notes.append(f"skipped {given}: a Helm chart template, not YAML (use 'kmirror helm' or the post-renderer)")
            elif given == STDIN or not excluded(given, exclude):
                files.append(given)
            continue
        before, skipped = len(files), False
        inside = _real(path)
        for root, dirs, names in os.walk(path):
            here = Path(root)
            dirs[:] = sorted(d for d in dirs if not d.startswith(".") and not _templates_of_chart(here, d))
            kept = [d for d in dirs if not excluded(str(here / d), exclude)]
            yaml = [here / n for n in sorted(names) if n.endswith(YAML_SUFFIXES) and not n.startswith(".")]
            for name in yaml:
                if name.is_symlink() and not _real(name).is_relative_to(inside):
                    notes.append(f"skipped {name}: a symbolic link to {_real(name)}, outside {given} (name it to read it)")
                elif not excluded(str(name), exclude):
                    files.append(str(name))
            skipped = skipped or len(kept) < len(dirs) or len(files) - before < len(yaml)
            dirs[:] = kept
            if (here / "Chart.yaml").is_file() and (here / "templates").is_dir():
                notes.append(f"skipped {here / 'templates'}: Helm chart templates, not YAML (use 'kmirror helm')")
        if len(files) == before:
            raise KmirrorError(f"no YAML files in {given}" + (" (all excluded)" if skipped else ""))
    return files, notes


def excluded(name: str, patterns: tuple[str, ...]) -> bool:
    """True when a glob of `patterns` (absolute: see `anchored`) matches `name`'s absolute path or a folder above it.

    Globs are fnmatch's (`*` matches `/` too).
    """
    if not patterns:
        return False
    import fnmatch  # here, not at the top: the filter names no files

    path = Path(os.path.abspath(name))
    return any(fnmatch.fnmatchcase(c.as_posix(), p) for c in (path, *path.parents) for p in patterns)


def anchored(base: Path, patterns: tuple[str, ...]) -> tuple[str, ...]:
    """Exclude globs made absolute from folder `base` (`vendor` -> `/repo/vendor`), trailing `/` dropped."""
    return tuple(os.path.join(os.path.abspath(base), p).rstrip("/") for p in patterns)


def repository_root(folder: Path) -> Path:
    """The top level of the git working tree `folder` is in, else `folder` itself (both real paths)."""
    import subprocess  # here, not at the top: only reports for CI need it

    try:
        done = subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=folder, capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired):  # no git: the folder is the root, as outside a repository
        return _real(folder)
    top = done.stdout.strip()
    return _real(top) if done.returncode == 0 and top else _real(folder)


def _templates_of_chart(folder: Path, name: str) -> bool:
    return name == "templates" and (folder / "Chart.yaml").is_file()


INPUT_VARIABLE = "KMIRROR_MAX_INPUT_MB"
DEFAULT_MAX_INPUT_MB = 256  # far above any real manifest; a stream that never ends stops here
_CHUNK = 1 << 20


def max_input() -> int:
    """The largest input kmirror reads, in bytes: KMIRROR_MAX_INPUT_MB megabytes (10^6 bytes), else 256."""
    value = os.environ.get(INPUT_VARIABLE, "").strip()
    if not value:
        return DEFAULT_MAX_INPUT_MB * 1_000_000
    if not value.isdigit() or int(value) == 0:
        raise KmirrorError(f"invalid environment: {INPUT_VARIABLE}={value!r}: expected a positive whole number of megabytes")
    return int(value) * 1_000_000


def read(name: str, what: str = "") -> bytes:
    """The bytes of file `name` (`-` is standard input); KmirrorError (`cannot read[ WHAT]: ...`) when unreadable.

    At most `max_input()` bytes are read: a larger input, or one that never ends, is refused
    in bounded memory. A named device or socket is refused unread; a FIFO (`<(helm template ...)`)
    and standard input are read until they end. Reading stops early at a chunk holding a NUL
    byte: that is binary data, which `stream.decode` refuses.
    """
    failure = f"cannot read {what}" if what else "cannot read"
    if name == STDIN:
        if sys.stdin is None:  # `kmirror <&-`: Python found no file descriptor 0
            raise KmirrorError(f"{failure}: -: standard input is closed")
        return _bounded(sys.stdin.buffer, name, max_input(), failure)
    return _read_file(name, failure)


def read_text(name: str, what: str) -> str:
    """The text of file `name` (never standard input) that kmirror reads besides its input: a rules
    file, an allow-list, a lock file, a plugin's configuration. Bounded as `read` is (a rules file
    named `/dev/zero` is refused, not read until memory runs out); a byte-order mark is dropped.
    KmirrorError `cannot read WHAT: NAME: why`.
    """
    data = _read_file(name, f"cannot read {what}")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise KmirrorError(f"cannot read {what}: {name}: invalid UTF-8 at byte {exc.start}") from None


def _read_file(name: str, failure: str) -> bytes:
    limit = max_input()
    try:
        with open(name, "rb") as handle:
            status = os.fstat(handle.fileno())
            if stat.S_ISCHR(status.st_mode) or stat.S_ISBLK(status.st_mode) or stat.S_ISSOCK(status.st_mode):
                raise KmirrorError(f"{failure}: {name}: not a regular file (a device or socket)")
            if stat.S_ISREG(status.st_mode) and status.st_size > limit:
                raise _too_large(failure, name, limit)
            return _bounded(handle, name, limit, failure)
    except FileNotFoundError:
        raise KmirrorError(f"{failure}: {name}: no such file") from None
    except IsADirectoryError:
        raise KmirrorError(f"{failure}: {name}: is a directory") from None
    except OSError as exc:
        raise KmirrorError(f"{failure}: {name}: {exc.strerror or exc}") from None


def _bounded(handle: BinaryIO, name: str, limit: int, failure: str) -> bytes:
    chunks: list[bytes] = []
    size = 0
    read = getattr(handle, "read1", handle.read)  # one read at a time: a terminal's end (Ctrl-D) is not sticky
    try:
        while chunk := read(_next_read(handle, size, limit)):
            chunks.append(chunk)
            size += len(chunk)
            if size > limit:
                raise _too_large(failure, name, limit)
            if b"\x00" in chunk:
                break
    except IsADirectoryError:
        raise KmirrorError(f"{failure}: {name}: is a directory") from None
    except OSError as exc:
        raise KmirrorError(f"{failure}: {name}: {exc.strerror or exc}") from None
    return b"".join(chunks)


def _next_read(handle: BinaryIO, size: int, limit: int) -> int:
    """How much to ask for next: the whole of a regular file (standard input too) at first, when
    it is within the limit (one read instead of one per chunk); then, or for anything else, a chunk."""
    if size == 0:
        try:
            status = os.fstat(handle.fileno())
        except (OSError, ValueError):  # no file descriptor (io.UnsupportedOperation is both)
            return _CHUNK
        if stat.S_ISREG(status.st_mode) and _CHUNK < status.st_size <= limit:
            return status.st_size
    return _CHUNK


def check_size(size: int, name: str, what: str) -> None:
    """Refuse, as `read` would, a file of `size` bytes beyond `max_input()` (one inside an archive)."""
    limit = max_input()
    if size > limit:
        raise _too_large(f"cannot read {what}", name, limit)


def _too_large(failure: str, name: str, limit: int) -> KmirrorError:
    return KmirrorError(f"{failure}: {name}: larger than {limit // 1_000_000} MB (set {INPUT_VARIABLE} to raise the limit)")


def _real(path: str | Path) -> Path:
    """`path` with every symbolic link followed; a loop is left for the next read or write to report.

    (`Path.resolve` raises RuntimeError on a loop before Python 3.13, an error with no place in kmirror.)
    """
    return Path(os.path.realpath(path))


def check_writable(name: str) -> None:
    """Raise KmirrorError unless file `name` may be replaced (checked before any file is written)."""
    path = _real(name)
    # No write bit at all means "do not change me", even for root (who os.access lets through).
    if not os.access(path, os.W_OK) or not path.stat().st_mode & 0o222:
        raise KmirrorError(f"cannot write: {name}: permission denied (read-only file)")
    if not os.access(path.parent, os.W_OK | os.X_OK):
        raise KmirrorError(f"cannot write: {name}: permission denied on folder {path.parent}")


def write_atomic(name: str, content: str | bytes) -> None:
    """Replace file `name` with `content` (text is written as UTF-8, newlines as given), keeping its mode, owner and group.

    The new content goes to a temporary file in the same folder, which then replaces
    the original in one rename: readers see the old file or the new one, never half,
    and a failure at any point leaves the original as it was. A symbolic link is
    followed (the file it points to is replaced, the link stays); a hard link is broken.
    """
    with _signals_held():
        staged = _stage(name, content)
        _rename(staged)
    _sync_folder(staged.path.parent)


class _Staged(NamedTuple):
    """A new content written to `temporary`, beside the file `path` it is to replace (`name` as given)."""

    name: str
    path: Path
    temporary: str


def _stage(name: str, content: str | bytes, created: Callable[[str], None] = lambda _: None) -> _Staged:
    """Write `content` to a new temporary file beside `name`'s file, with its mode, owner and group, synced.

    `created` hears of the temporary file as soon as it exists; on failure it is removed again.
    """
    import tempfile  # here, not at the top: the filter never writes a file

    path = _real(name)
    try:
        status = path.stat()
        handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".kmirror", dir=path.parent)
    except OSError as exc:
        raise KmirrorError(f"cannot write: {name}: {exc.strerror or exc}") from None
    created(temporary)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(content.encode("utf-8") if isinstance(content, str) else content)
            out.flush()
            _keep_owner(out.fileno(), status)
            os.fchmod(out.fileno(), status.st_mode & 0o7777)  # after chown, which clears set-id bits
            os.fsync(out.fileno())
    except OSError as exc:
        Path(temporary).unlink(missing_ok=True)
        raise KmirrorError(f"cannot write: {name}: {exc.strerror or exc}") from None
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return _Staged(name, path, temporary)


def _rename(staged: _Staged) -> None:
    """Put the temporary file in place of the file it replaces (or remove it when that fails)."""
    try:
        os.replace(staged.temporary, staged.path)
    except OSError as exc:
        Path(staged.temporary).unlink(missing_ok=True)
        raise KmirrorError(f"cannot write: {staged.name}: {exc.strerror or exc}") from None


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """Hold Ctrl-C, SIGTERM and SIGHUP while a temporary file exists; one sent meanwhile lands after the rename.

    SIGTERM's and SIGHUP's default action kills the process with no chance to remove the
    temporary file, and Ctrl-C's KeyboardInterrupt may come between creating it and the
    `try` that removes it.
    """
    held = signal.pthread_sigmask(signal.SIG_BLOCK, _HELD_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)


def _keep_owner(handle: int, status: os.stat_result) -> None:
    """Give the new file the old one's owner and group, when this user may (root, or a member of the group)."""
    if (status.st_uid, status.st_gid) == (os.geteuid(), os.getegid()):
        return
    try:
        os.fchown(handle, status.st_uid, status.st_gid)
    except PermissionError:  # not root: the file becomes ours, as with any editor that saves by renaming
        with contextlib.suppress(PermissionError):
            os.fchown(handle, -1, status.st_gid)


def _sync_folder(folder: Path) -> None:
    """Make the rename itself durable: without this, a crash may bring the old file back.

    Best effort: the file is already replaced, and some file systems cannot sync a folder.
    """
    with contextlib.suppress(OSError):
        handle = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(handle)
        finally:
            os.close(handle)


WRITERS = 4  # files staged at a time: the time goes to the file system (creating and syncing files)


class _Stopped(KeyboardInterrupt):
    """SIGTERM or SIGHUP arrived while temporary files existed (an interruption, like Ctrl-C)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


class Replacement:
    """Files replaced together, all or none; use it as a `with` block, from the main thread.

    `stage` writes a file's new content to a temporary file beside it at once, in a
    writer thread (while the caller goes on computing the next one); `commit` checks that
    no file changed since it was read (another program appending to it, an editor saving it),
    renames every staged file into place, then syncs each folder once. Leaving the block without
    a commit (an error, Ctrl-C, SIGTERM or SIGHUP) removes every temporary file and
    changes no file; a SIGTERM or SIGHUP is then sent again, so it still ends the process.
    """

    def __enter__(self) -> Replacement:
        from concurrent.futures import ThreadPoolExecutor  # here, not at the top: the filter never writes a file

        self._lock = threading.Lock()
        self._temporaries: set[str] = set()  # every temporary file that exists, told by the writer that made it
        self._futures: list[Future[_Staged]] = []
        self._originals: list[bytes] = []  # each staged file's bytes as read, in the order staged
        self._pool = ThreadPoolExecutor(WRITERS, initializer=signal.pthread_sigmask, initargs=(signal.SIG_BLOCK, _HELD_SIGNALS))
        self._previous: dict[int, Any] = {}
        try:
            with _signals_held():
                _handler_pid[0] = os.getpid()
                for signum in _STOP_SIGNALS:
                    self._previous[signum] = signal.signal(signum, _stop)
        except BaseException as error:  # a signal that came meanwhile: __exit__ would not run
            self.__exit__(type(error), error, error.__traceback__)
            raise
        return self

    def stage(self, name: str, content: str | bytes, original: bytes) -> None:
        """Start writing `content` for file `name`, read as `original` (a failure is raised by `commit`)."""
        self._futures.append(self._pool.submit(_stage, name, content, self._created))
        self._originals.append(original)

    def _created(self, temporary: str) -> None:
        with self._lock:
            self._temporaries.add(temporary)

    def commit(self) -> None:
        """Wait for every staged file, then rename them all; KmirrorError from the first (in order) that failed."""
        staged = [future.result() for future in self._futures]
        with _signals_held():  # one sent meanwhile lands after the last rename
            for item, original in zip(staged, self._originals):
                if _unchanged(item.path, original) is False:
                    raise KmirrorError(f"cannot write: {item.name}: changed by another program since kmirror read it; no file changed (run kmirror again)")
            for item in staged:
                _rename(item)
                self._temporaries.discard(item.temporary)
        for folder in dict.fromkeys(item.path.parent for item in staged):
            _sync_folder(folder)

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None) -> None:
        with _signals_held():  # a second Ctrl-C does not cut the clean-up short
            self._pool.shutdown(wait=True, cancel_futures=True)
            for temporary in self._temporaries:
                Path(temporary).unlink(missing_ok=True)
            for signum, handler in self._previous.items():
                signal.signal(signum, handler)
            if isinstance(error, _Stopped):
                os.kill(os.getpid(), error.signum)  # lands when the block ends: the usual action, now that nothing is left behind


def _unchanged(path: Path, original: bytes) -> bool | None:
    """Whether file `path` still holds `original`; None when it cannot be read (the rename will tell)."""
    try:
        with open(path, "rb") as handle:
            if os.fstat(handle.fileno()).st_size != len(original):
                return False
            return handle.read(len(original) + 1) == original
    except OSError:
        return None


_STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


_handler_pid = [0]  # the process that installed _stop: its Replacement cleans up, no process forked from it


def _stop(signum: int, frame: FrameType | None) -> None:
    if os.getpid() != _handler_pid[0]:  # a worker forked while files were staged: it has nothing to clean up
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
        return
    raise _Stopped(signum)
