"""`kmirror helm CHART`: render a chart with `helm template` and write it rewritten to standard output."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rewriter import console
from rewriter.commands import common
from rewriter.errors import KmirrorError
from rewriter.pipeline import process

if TYPE_CHECKING:
    from rewriter.helm import Render


def run(
    chart: str,
    extra: list[str] | None,
    release: str,
    namespace: str | None,
    values: list[str] | None,
    short_f: list[str] | None,
    sets: list[str] | None,
    set_strings: list[str] | None,
    set_files: list[str] | None,
    kube_version: str | None,
    api_versions: list[str] | None,
    version: str | None,
    repo: str | None,
    include_crds: bool,
    helm: str,
    timeout: float,
    max_output: float,
    strict: bool,
    config: str | None,
    preset: str | None,
) -> int:
    """Render `chart` and write it rewritten; the exit code."""
    from rewriter.helm import ChartRef, template

    render = render_options(values, short_f, sets, set_strings, set_files, kube_version, api_versions, extra, release=release, namespace=namespace, include_crds=include_crds)
    limits = common.limits(timeout, max_output)
    settings = console.settings(config, preset)
    rendered = template(helm, ChartRef(chart, version, repo), render, limits)
    return console.emit_rewritten([process(rendered, f"{chart} (rendered)", settings)], strict)


def render_options(
    values: list[str] | None,
    short_f: list[str] | None,
    sets: list[str] | None,
    set_strings: list[str] | None,
    set_files: list[str] | None,
    kube_version: str | None,
    api_versions: list[str] | None,
    extra: list[str] | None,
    **more: Any,
) -> Render:
    """What `helm template` is asked for; -f is refused with the way to say it."""
    from rewriter.helm import Render

    if short_f:
        raise KmirrorError(f"invalid option: -f: in kmirror, -f means --format; give values files as --values {short_f[0]}, or pass helm's own options after --: -- -f {short_f[0]}")
    return Render(
        values=tuple(values or ()),
        sets=tuple(sets or ()),
        set_strings=tuple(set_strings or ()),
        set_files=tuple(set_files or ()),
        kube_version=kube_version,
        api_versions=tuple(api_versions or ()),
        extra=tuple(extra or ()),
        **more,
    )
