"""`kmirror kustomize DIR`: build a kustomization and write it rewritten to standard output."""

from __future__ import annotations

import sys

from rewriter import console
from rewriter.commands import common
from rewriter.errors import printable
from rewriter.pipeline import process


def run(directory: str, extra: list[str] | None, enable_helm: bool, kustomize: str | None, timeout: float, max_output: float, strict: bool, config: str | None, preset: str | None) -> int:
    """Build `directory` (arguments after -- in `extra`) and write it rewritten; the exit code."""
    from rewriter.kustomize import build_command, run_build

    limits = common.limits(timeout, max_output)
    settings = console.settings(config, preset)
    rendered = run_build(build_command(directory, enable_helm, kustomize, extra or []), limits)
    if rendered.warnings:  # kustomize's own lines, each made fit to print
        sys.stderr.write("".join(printable(line) + "\n" for line in rendered.warnings.removesuffix("\n").split("\n")))
    return console.emit_rewritten([process(rendered.output, f"{directory} (rendered)", settings)], strict)
