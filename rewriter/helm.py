"""Run Helm: `helm template` and `helm pull`, raw output.

kmirror builds helm's argument list itself and runs it with rewriter.child (a session of
its own, one deadline, bounded output), keeping helm's standard output byte for byte:
comments and `# Source:` lines included. Whatever kmirror shows of a command or of helm's
error output has the values given with `--set*` and URL credentials replaced by `***`.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

from rewriter.child import Limits, executable, run
from rewriter.errors import KmirrorError, child_failure

DEFAULT_RELEASE = "release-name"  # the name `helm template` uses when given none


@dataclass(frozen=True)
class ChartRef:
    """A chart as helm names it: a folder, a .tgz, `repo/name`, an `oci://` or https URL."""

    chart: str
    version: str | None = None
    repo: str | None = None

    def shown(self) -> str:
        """The chart fit to print: a URL's user part (credentials) as `***`."""
        return _URL_USER_RE.sub("***@", self.chart)

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


def template(helm: str, chart: ChartRef, render: Render, limits: Limits) -> bytes:
    """Helm's rendered manifests, byte for byte; KmirrorError showing helm's failure or time-out."""
    return _run(helm, template_args(chart, render), limits)


def pull(helm: str, chart: ChartRef, destination: Path, limits: Limits) -> Path:
    """Download and unpack `chart` under `destination`; return the chart's folder."""
    _run(helm, ["pull", *chart.args(), "--untar", "--destination", str(destination)], limits)
    folders = sorted(p.parent for p in destination.glob("*/Chart.yaml"))
    if len(folders) != 1:
        raise KmirrorError(f"cannot read chart: {chart.shown()}: helm pull gave {len(folders)} charts, expected 1")
    return folders[0]


def _run(helm: str, args: list[str], limits: Limits) -> bytes:
    shown = shlex.join([helm, *_redacted(args)])
    path = executable(helm, "helm", "install helm, or name it with --helm PATH")
    finished = run([path, *args], "helm", shown, limits)
    if finished.returncode != 0:
        raise child_failure("helm", shown, finished.returncode, _hidden(finished.stderr, args))
    return finished.output


def _hidden(stderr: str, args: list[str]) -> str:
    """Helm's error output with every secret of `args` (see `_secrets`) replaced by `***`.

    Helm may repeat what it was given. A value of 4 characters or more is hidden wherever it
    appears; a shorter one (`--set pin=123`) where it stands alone, not inside a longer run
    of letters and digits (so that `line 12` survives `--set n=1`, and `123` is still hidden).
    """
    for secret in _secrets(args):
        pattern = re.escape(secret) if len(secret) >= 4 else rf"(?<![^\W_]){re.escape(secret)}(?![^\W_])"
        stderr = re.sub(pattern, "***", stderr)
    return _URL_USER_RE.sub("***@", stderr)


_SECRET_OPTIONS = ("--set", "--set-string", "--set-file", "--set-json", "--set-literal", "--password", "--username")
_SPLIT_OPTIONS = ("--set", "--set-string")  # helm reads `a=1,b=2` as two assignments
_URL_USER_RE = re.compile(r"(?<=://)[^/@\s]+@")
_COMMA_RE = re.compile(r"(?<!\\),")


def _secrets(args: list[str]) -> list[str]:
    """The values in `args` that `_redacted` hides (each assignment of a `--set a=1,b=2` too), longest first."""
    found = [m.group()[:-1] for arg in args for m in _URL_USER_RE.finditer(arg)]
    for before, arg in zip(["", *args], args):
        option, equals, value = arg.partition("=")
        if before in _SECRET_OPTIONS and not arg.startswith("-"):
            found.append(value if before.startswith("--set") and equals else arg)
            if before in _SPLIT_OPTIONS:
                found.extend(part.partition("=")[2] for part in _COMMA_RE.split(arg))
        elif equals and option in _SECRET_OPTIONS:
            found.append(value)
            if option in _SPLIT_OPTIONS:
                found.extend(part.partition("=")[2] for part in _COMMA_RE.split(value))
    return sorted({f for f in found if f}, key=len, reverse=True)


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
