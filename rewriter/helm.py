"""Run Helm through pyhelm3's command layer: `helm template` and `helm pull`, raw output.

pyhelm3's high-level calls parse the manifests (losing comments and `# Source:` lines)
and pass values only as JSON on stdin, so kmirror builds the argument list itself and
runs it with `pyhelm3.command.Command.run`, which returns helm's standard output as bytes.
pyhelm3 is imported on first use: the command line must start fast without it.
"""

from __future__ import annotations

import asyncio
import re
import logging
import shlex
import shutil
from dataclasses import dataclass
from pathlib import Path

from rewriter.errors import KmirrorError, child_failure

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


def template_args(chart: ChartRef, render: Render) -> list[str]:
    """The `helm template` arguments (without the executable) for `chart` and `render`."""
    args = ["template", render.release, *chart.args()]
    if render.namespace:
        args += ["--namespace", render.namespace]
    for values in render.values:
        args += ["--values", values]
    for assignment in render.sets:
        args += ["--set", assignment]
    if render.include_crds:
        args.append("--include-crds")
    return args


def template(helm: str, chart: ChartRef, render: Render) -> bytes:
    """Helm's rendered manifests, byte for byte; KmirrorError showing helm's failure."""
    return _run(helm, template_args(chart, render))


def pull(helm: str, chart: ChartRef, destination: Path) -> Path:
    """Download and unpack `chart` under `destination`; return the chart's folder."""
    _run(helm, ["pull", *chart.args(), "--untar", "--destination", str(destination)])
    folders = sorted(p.parent for p in destination.glob("*/Chart.yaml"))
    if len(folders) != 1:
        raise KmirrorError(f"cannot read chart: {chart.chart}: helm pull gave {len(folders)} charts, expected 1")
    return folders[0]


def _run(helm: str, args: list[str]) -> bytes:
    executable = shutil.which(helm)
    if executable is None:
        raise KmirrorError(f"cannot run helm: {helm}: not found (install helm, or name it with --helm PATH)")
    from pyhelm3 import errors  # type: ignore[import-untyped]
    from pyhelm3.command import Command  # type: ignore[import-untyped]

    # pyhelm3 logs a warning for every failed command; the error below says it all.
    logging.getLogger("pyhelm3").addHandler(logging.NullHandler())
    logging.getLogger("pyhelm3").propagate = False
    try:
        return bytes(asyncio.run(Command(executable=executable).run(list(args))))
    except errors.Error as exc:
        raise _failure(helm, args, exc.returncode, exc.stderr) from None


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
