"""One large stream on every core: cut into parts at document markers, each part located in a process of its own.

Locating is CPU-bound Python (composing nodes and walking them), so a stream of several
megabytes is cut into one part per core, at least `_PART` bytes each. Forked children
locate the later parts and send back their locations through a pipe while this process
locates the first. Each child reports the first error of its part and the parts are
taken in stream order, so the error reported is the first in the stream, as when one
process reads it all. A child that ends any other way (killed, a bug) has its part
located here instead, where whatever went wrong surfaces as usual.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable

from rewriter import cores
from rewriter.config import FieldPath
from rewriter.errors import KmirrorError
from rewriter.locate import Location, NestingError, locate
from rewriter.stream import Part, Source, documents, parts

_PART = 1 << 20  # a smaller part costs more to fork and hand back than it saves


def locate_stream(source: Source, wanted: Callable[[str], bool] | None, fields: tuple[FieldPath, ...]) -> list[Location]:
    """`locate(documents(source, wanted), fields)`, on every core when the stream is large."""
    count = min(cores.usable(), len(source.data) // _PART)
    if wanted is None or count < 2 or not cores.forkable():
        return locate(documents(source, wanted), fields)
    first, *rest = parts(source, count)
    children = [_Child(source, part, wanted, fields) for part in rest]
    try:
        found = _located(source, first, wanted, fields)
        for child in children:
            found.extend(child.result())
    finally:
        for child in children:
            child.stop()
    return found


def _located(source: Source, part: Part, wanted: Callable[[str], bool], fields: tuple[FieldPath, ...]) -> list[Location]:
    return locate(documents(source, wanted, part), fields)


class _Child:
    """A forked process locating one part; `result` waits for its locations or raises its error."""

    def __init__(self, source: Source, part: Part, wanted: Callable[[str], bool], fields: tuple[FieldPath, ...]) -> None:
        self.work = (source, part, wanted, fields)
        reader, writer = os.pipe()
        self.pid = os.fork()
        if self.pid == 0:  # the child: locate, send, and leave without any of the parent's clean-up
            status = 1
            try:
                import pickle  # here, not at the top: small streams never need it

                os.close(reader)
                try:
                    outcome: tuple[bool, object] = (True, _located(*self.work))
                except (KmirrorError, NestingError) as exc:
                    outcome = (False, exc)
                with os.fdopen(writer, "wb") as pipe:
                    pipe.write(pickle.dumps(outcome, pickle.HIGHEST_PROTOCOL))
                status = 0
            finally:
                os._exit(status)
        os.close(writer)
        self.pipe: int | None = reader

    def result(self) -> list[Location]:
        """The part's locations; its error if it has one; located here if the child ended some other way."""
        assert self.pipe is not None
        with os.fdopen(self.pipe, "rb") as pipe:
            self.pipe = None
            sent = pipe.read()
        if self._reap() != 0:
            return _located(*self.work)
        import pickle

        ok, value = pickle.loads(sent)  # from our own child
        if not ok:
            raise value
        return value  # type: ignore[no-any-return]

    def stop(self) -> None:
        """End the child if it still runs (this process failed or was interrupted first)."""
        if self.pid:
            os.kill(self.pid, signal.SIGKILL)
            self._reap()
        if self.pipe is not None:
            os.close(self.pipe)
            self.pipe = None

    def _reap(self) -> int:
        _, status = os.waitpid(self.pid, 0)
        self.pid = 0
        return os.waitstatus_to_exitcode(status)
