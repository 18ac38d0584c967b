"""`kmirror runtime-config`: container runtime mirror configuration from the same rules."""

from __future__ import annotations

from pathlib import Path

from rewriter import console
from rewriter.console import EXIT_OK
from rewriter.errors import KmirrorError


def run(format: str, output_dir: str | None, no_fallback: bool, config: str | None, preset: str | None) -> int:
    """Print the configuration in `format`, or write its files under `output_dir`; the exit code."""
    from rewriter.runtime import MULTI_FILE, runtime_config, write_output

    if output_dir is None and format in MULTI_FILE:
        raise KmirrorError(f"invalid option: --format: {format!r} writes several files: give --output-dir DIR")
    result = runtime_config(console.settings(config, preset), format, no_fallback)
    for warning in result.warnings:
        console.err(f"kmirror: warning: {warning}")
    if output_dir is None:
        console.write("".join(result.files.values()))
    else:
        removed = write_output(Path(output_dir), result.files)
        for name in removed:
            console.err(f"removed {Path(output_dir) / name} (written by an earlier run, no longer configured)")
        console.err(f"wrote {console.count(len(result.files), 'file')} under {output_dir}")
    return EXIT_OK
