"""Files on disk: expand paths to YAML files, read them, replace them atomically."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from rewriter.errors import KmirrorError

STDIN = "-"
YAML_SUFFIXES = (".yaml", ".yml")
_HELD_SIGNALS = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}


def is_chart_template(path: Path) -> bool:
    """True for a file under a Helm chart's `templates/` folder (Go templates, not YAML)."""
    for folder in _real(path).parents:
        if folder.name == "templates" and (folder.parent / "Chart.yaml").is_file():
            return True
    return False


def expand(paths: list[str]) -> tuple[list[str], list[str]]:
    """YAML files named by `paths` (folders recursed; hidden files and folders skipped) and notes on skipped ones."""
    files: list[str] = []
    notes: list[str] = []
    for given in paths:
        path = Path(given)
        if given == STDIN or not path.is_dir():
            if given != STDIN and is_chart_template(path):
                notes.append(f"skipped {given}: a Helm chart template, not YAML (use 'kmirror helm' or the post-renderer)")
            else:
                files.append(given)
            continue
        for root, dirs, names in os.walk(path):
            here = Path(root)
            dirs[:] = sorted(d for d in dirs if not d.startswith(".") and not _templates_of_chart(here, d))
            files.extend(str(here / n) for n in sorted(names) if n.endswith(YAML_SUFFIXES) and not n.startswith("."))
            if (here / "Chart.yaml").is_file() and (here / "templates").is_dir():
                notes.append(f"skipped {here / 'templates'}: Helm chart templates, not YAML (use 'kmirror helm')")
    return files, notes


def _templates_of_chart(folder: Path, name: str) -> bool:
    return name == "templates" and (folder / "Chart.yaml").is_file()


def read(name: str) -> bytes:
    """The bytes of file `name` (`-` is standard input); KmirrorError when unreadable."""
    if name == STDIN:
        return sys.stdin.buffer.read()
    try:
        return Path(name).read_bytes()
    except FileNotFoundError:
        raise KmirrorError(f"cannot read: {name}: no such file") from None
    except IsADirectoryError:
        raise KmirrorError(f"cannot read: {name}: is a directory") from None
    except OSError as exc:
        raise KmirrorError(f"cannot read: {name}: {exc.strerror or exc}") from None


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


def write_atomic(name: str, content: str | bytes, sync_folder: bool = True) -> None:
    """Replace file `name` with `content` (text is written as UTF-8, newlines as given), keeping its mode, owner and group.

    The new content goes to a temporary file in the same folder, which then replaces
    the original in one rename: readers see the old file or the new one, never half,
    and a failure at any point leaves the original as it was. A symbolic link is
    followed (the file it points to is replaced, the link stays); a hard link is broken.
    """
    path = _real(name)
    with _signals_held():
        try:
            status = path.stat()
            handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".kmirror", dir=path.parent)
        except OSError as exc:
            raise KmirrorError(f"cannot write: {name}: {exc.strerror or exc}") from None
        try:
            with os.fdopen(handle, "wb") as out:
                out.write(content.encode("utf-8") if isinstance(content, str) else content)

                out.flush()
                _keep_owner(out.fileno(), status)
                os.fchmod(out.fileno(), status.st_mode & 0o7777)  # after chown, which clears set-id bits
                os.fsync(out.fileno())
            os.replace(temporary, path)
        except OSError as exc:
            Path(temporary).unlink(missing_ok=True)
            raise KmirrorError(f"cannot write: {name}: {exc.strerror or exc}") from None
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
    if sync_folder:
        _sync_folder(path.parent)


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


WRITERS = 8  # files written at a time: the time goes to fsync, which other threads overlap


def write_all(contents: list[tuple[str, str | bytes]]) -> None:
    """`write_atomic` every (name, content), several at a time; KmirrorError from the first that fails.

    The signals `write_atomic` holds are held in this thread too, for the whole batch (the
    writer threads start with them held): one sent meanwhile lands after the last rename.
    """
    with _signals_held(), ThreadPoolExecutor(WRITERS) as pool:

        futures = [pool.submit(write_atomic, name, content) for name, content in contents]
        try:
            for future in futures:
                future.result()
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise
