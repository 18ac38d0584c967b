"""The cores this process may use, and whether it may hand work to forked processes."""

from __future__ import annotations

import os
import threading


def usable() -> int:
    """How many cores this process may run on (its CPU affinity where the system has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def forkable() -> bool:
    """True when work can go to forked processes on other cores.

    That needs fork, more than one core, and a single thread: a child forked from a
    process with other threads may inherit a lock one of them held and wait forever.
    """
    return hasattr(os, "fork") and usable() > 1 and threading.active_count() == 1
