"""Many files through the pipeline on every core: worker processes read and process them.

Processing is CPU-bound Python, so threads would share one core; forked workers inherit
the loaded modules and the configuration, and send back each file's Outcome. Few files
(or one core, or a system without fork) are processed in this process: starting workers
costs more than it saves.
"""

from __future__ import annotations

import functools
import multiprocessing
import signal
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from rewriter import cores
from rewriter.config import Config
from rewriter.files import STDIN, read
from rewriter.pipeline import Outcome, process
from rewriter.selection import skip_reason

MIN_FILES = 64  # below this many files, workers cost more than they save
_CHUNK = 32  # files a worker takes at a time


def process_files(names: Sequence[str], config: Config) -> Iterator[Outcome]:
    """Every file's Outcome, in the order of `names`, each as soon as it is known; KmirrorError from the first file that fails."""
    workers = min(cores.usable(), len(names) // _CHUNK)
    if len(names) < MIN_FILES or workers < 2 or not cores.forkable():
        yield from (_process(config, name) for name in names)
        return
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_ignore_interrupts) as pool:
        try:
            yield from pool.map(functools.partial(_process, config), names, chunksize=_CHUNK)
        except BrokenProcessPool:
            _kill_workers()
            raise WorkerDied("a worker process reading the files ended abruptly (killed, or out of memory); no file changed") from None
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise


class WorkerDied(Exception):
    """A worker process ended without an answer: not the input's fault as far as kmirror can tell (exit 3)."""


def _kill_workers() -> None:
    """End the pool's other workers for sure, before the pool waits for them.

    The pool sends them SIGTERM, which a worker loses when it lands before the forked child
    has started to run: CPython's fork clears the child's pending signals. That worker would
    then wait forever to hand over its results, and the pool forever for it.
    """
    for worker in multiprocessing.active_children():
        worker.kill()


def _ignore_interrupts() -> None:
    # Ctrl-C reaches every process of the group: the parent alone reports it and stops the workers.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # SIGTERM and SIGHUP end a worker as usual (the parent may be cleaning up under its own handlers).
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGHUP, signal.SIG_DFL)


def _process(config: Config, name: str) -> Outcome:
    """The file's Outcome; a file kmirror does not rewrite (selection.py) comes back unchanged, with the reason."""
    data = read(name)
    outcome = process(data, name, config)  # first, so that bad input is reported whatever the file is
    reason = skip_reason(data, name, config.origin) if name != STDIN else None
    return outcome if reason is None else Outcome(outcome.source, data, (), (), skipped=reason)
