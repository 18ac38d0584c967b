"""`kmirror chart CHART`: mirror a chart's image values (an override, or values.yaml in place), then verify by rendering."""

from __future__ import annotations

from rewriter import console
from rewriter.commands import common
from rewriter.commands.helm import render_options
from rewriter.console import EXIT_FINDINGS, EXIT_OK
from rewriter.errors import KmirrorError
from rewriter.files import check_writable, write_atomic


def run(
    chart: str,
    extra: list[str] | None,
    output: str | None,
    write: bool,
    values: list[str] | None,
    short_f: list[str] | None,
    sets: list[str] | None,
    set_strings: list[str] | None,
    set_files: list[str] | None,
    kube_version: str | None,
    api_versions: list[str] | None,
    version: str | None,
    repo: str | None,
    helm: str,
    timeout: float,
    max_output: float,
    config: str | None,
    preset: str | None,
) -> int:
    """Write the override (or the values files), list what the values cannot reach; the exit code."""
    from rewriter.chart import mirror_chart
    from rewriter.helm import ChartRef

    if output is not None and write:
        raise KmirrorError("invalid option: -o and -w: choose one (an override file, or values.yaml rewritten in place)")
    render = render_options(values, short_f, sets, set_strings, set_files, kube_version, api_versions, extra)
    limits = common.limits(timeout, max_output)
    result = mirror_chart(helm, ChartRef(chart, version, repo), console.settings(config, preset), in_place=write, limits=limits, given=render)
    if write:
        for file in result.rewritten:
            check_writable(str(file.path))
        for file, text in result.rewritten.items():
            write_atomic(str(file.path), text)
        console.err(f"rewrote {', '.join(f.name for f in result.rewritten) or 'nothing'} ({console.count(len(result.changes), 'value')} changed)")
    elif output is not None:
        common.save(output, result.override)
        console.err(f"wrote {output} ({console.count(len(result.changes), 'value')})")
    else:
        console.write(result.override)
    for left in result.leftovers:
        console.err(f"{left.template}: {left.ref} is not mirrored ({'mirror: ' + left.mirror if left.mirror else 'no rule'})")
    if result.leftovers:
        console.err(f"kmirror: {len(result.leftovers)} of {console.count(result.rendered, 'rendered image')} cannot be reached through values (hard-coded in templates); use the post-renderer: see docs/helm.md")
        return EXIT_FINDINGS
    console.err(f"verified: all {result.rendered} rendered images are mirrored" if result.rendered != 1 else "verified: the 1 rendered image is mirrored")
    return EXIT_OK
