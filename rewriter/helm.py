"""Run Helm through pyhelm3's command layer: `helm template` and `helm pull`, raw output.

pyhelm3's high-level calls parse the manifests (losing comments and `# Source:` lines)
and pass values only as JSON on stdin, so kmirror builds the argument list itself and
runs it with `pyhelm3.command.Command.run`, which returns helm's standard output as bytes.
pyhelm3 is imported on first use: the command line must start fast without it.

pyhelm3 starts helm through asyncio (`create_subprocess_shell`) and offers no way to
bound it: kmirror runs it on an event loop that starts each child in a session of its
own, and when the time is up (or on Ctrl-C) SIGKILLs that child's whole process group
(helm and whatever it started); pyhelm3 then reaps helm.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import shlex
import shutil
import signal
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from rewriter.errors import KmirrorError, child_failure, child_timeout

DEFAULT_RELEASE = "release-name"  # the name `helm template` uses when given none


@dataclass(frozen=True)
class ChartRef:
    """A chart as helm names it: a folder, a .tgz, `repo/name`, an `oci://` or https URL."""

    chart: str
    version: str | None = None
    repo: str | None = None

    def args(self) -> list[str]:
        """The chart's part of a `helm template`/`helm pull` argument list."""
        args = [self.chart]
        if self.version:
            args += ["--version", self.version]
        if self.repo:
            args += ["--repo", self.repo]
        return args


@dataclass(frozen=True)
class Render:
    """What `helm template` is asked to render, besides the chart."""

    release: str = DEFAULT_RELEASE
    namespace: str | None = None
    values: tuple[str, ...] = ()
    sets: tuple[str, ...] = ()
    include_crds: bool = False
    set_strings: tuple[str, ...] = ()
    set_files: tuple[str, ...] = ()
    kube_version: str | None = None
    api_versions: tuple[str, ...] = ()
    extra: tuple[str, ...] = ()  # helm's own arguments, given after `--`, last


def template_args(chart: ChartRef, render: Render) -> list[str]:
    """The `helm template` arguments (without the executable) for `chart` and `render`."""
    args = ["template", render.release, *chart.args()]
    if render.namespace:
        args += ["--namespace", render.namespace]
    for values in render.values:
        args += ["--values", values]
    for assignment in render.sets:
        args += ["--set", assignment]
    for assignment in render.set_strings:
        args += ["--set-string", assignment]
    for assignment in render.set_files:
        args += ["--set-file", assignment]
    if render.kube_version:
        args += ["--kube-version", render.kube_version]
    for api_version in render.api_versions:
        args += ["--api-versions", api_version]
    if render.include_crds:
        args.append("--include-crds")
    return [*args, *render.extra]


def template(helm: str, chart: ChartRef, render: Render, timeout: float) -> bytes:
    """Helm's rendered manifests, byte for byte; KmirrorError showing helm's failure or time-out."""
    return _run(helm, template_args(chart, render), timeout)


def pull(helm: str, chart: ChartRef, destination: Path, timeout: float) -> Path:
    """Download and unpack `chart` under `destination`; return the chart's folder."""
    _run(helm, ["pull", *chart.args(), "--untar", "--destination", str(destination)], timeout)
    folders = sorted(p.parent for p in destination.glob("*/Chart.yaml"))
    if len(folders) != 1:
        raise KmirrorError(f"cannot read chart: {chart.chart}: helm pull gave {len(folders)} charts, expected 1")
    return folders[0]


def _run(helm: str, args: list[str], timeout: float) -> bytes:
    executable = shutil.which(helm)
    if executable is None:
        raise KmirrorError(f"cannot run helm: {helm}: not found (install helm, or name it with --helm PATH)")
    from pyhelm3 import errors  # type: ignore[import-untyped]
    from pyhelm3.command import Command  # type: ignore[import-untyped]

    # pyhelm3 logs a warning for every failed command; the error below says it all.
    logging.getLogger("pyhelm3").addHandler(logging.NullHandler())
    logging.getLogger("pyhelm3").propagate = False
    try:
        loop = _SessionLoop()
        with asyncio.Runner(loop_factory=lambda: loop) as runner:
            output = runner.run(_bounded(loop, Command(executable=executable).run(list(args)), timeout))
    except errors.Error as exc:
        raise _failure(helm, args, exc.returncode, exc.stderr) from None
    if output is None:
        raise child_timeout("helm", shlex.join([helm, *_redacted(args)]), timeout)
    return output


_P = TypeVar("_P", bound=asyncio.BaseProtocol)


class _SessionLoop(asyncio.SelectorEventLoop):
    """An event loop that starts every shell command in a new session, so that it can kill it whole."""

    def __init__(self) -> None:
        super().__init__()
        self._groups: list[int] = []
        self._killing = False

    async def subprocess_shell(
        self, protocol_factory: Callable[[], _P], cmd: bytes | str, **kwargs: Any
    ) -> tuple[asyncio.SubprocessTransport, _P]:
        transport, protocol = await super().subprocess_shell(protocol_factory, cmd, start_new_session=True, **kwargs)
        self._groups.append(transport.get_pid())
        if self._killing:  # started while the time ran out
            self.kill_children()
        return transport, protocol

    def kill_children(self) -> None:
        """SIGKILL the process group of every child started, and of any started from now on."""
        self._killing = True
        for group in self._groups:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(group, signal.SIGKILL)


async def _bounded(loop: _SessionLoop, command: Coroutine[Any, Any, bytes], timeout: float) -> bytes | None:
    """`command`'s output, or None when it ran longer than `timeout` seconds and was killed."""
    task = asyncio.ensure_future(command)
    try:
        done, _ = await asyncio.wait([task], timeout=timeout)
    except asyncio.CancelledError:  # Ctrl-C, which helm, in a session of its own, did not get
        loop.kill_children()
        raise
    if done:
        return bytes(task.result())
    loop.kill_children()
    await asyncio.wait([task])  # pyhelm3 reaps helm
    task.exception()  # helm's failure once killed, which the time-out replaces
    return None


def _failure(helm: str, args: list[str], code: int, stderr: bytes) -> KmirrorError:
    shown = stderr.decode("utf-8", "replace")
    for secret in _secrets(args):  # helm may repeat what it was given
        shown = shown.replace(secret, "***")
    shown = _URL_USER_RE.sub("***@", shown)
    return child_failure("helm", shlex.join([helm, *_redacted(args)]), code, shown)


_SECRET_OPTIONS = ("--set", "--set-string", "--set-file", "--set-json", "--set-literal", "--password", "--username")
_URL_USER_RE = re.compile(r"(?<=://)[^/@\s]+@")


def _secrets(args: list[str]) -> list[str]:
    """The values in `args` that `_redacted` hides, longest first, and every URL's user part."""
    found = [m.group()[:-1] for arg in args for m in _URL_USER_RE.finditer(arg)]
    for before, arg in zip(["", *args], args):
        option, equals, value = arg.partition("=")
        if before in _SECRET_OPTIONS and not arg.startswith("-"):
            found.append(value if before.startswith("--set") and equals else arg)
        elif equals and option in _SECRET_OPTIONS:
            found.append(value)
    return sorted((f for f in found if len(f) >= 4), key=len, reverse=True)


def _redacted(args: list[str]) -> list[str]:
    """`args` fit to print: values given with --set* and credentials removed (they may be secrets)."""
    shown: list[str] = []
    for arg in args:
        option, equals, _ = arg.partition("=")
        if shown and shown[-1] in _SECRET_OPTIONS and not arg.startswith("-"):
            key = arg.partition("=")[0] if shown[-1].startswith("--set") else ""
            shown.append(f"{key}=***" if key else "***")
        elif equals and option in _SECRET_OPTIONS:
            shown.append(f"{option}=***")
        else:
            shown.append(_URL_USER_RE.sub("***@", arg))
    return shown
