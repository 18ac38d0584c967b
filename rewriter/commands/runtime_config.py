"""`kmirror runtime-config`: container runtime mirror configuration from the same rules."""

from __future__ import annotations

from pathlib import Path

from rewriter import console
from rewriter.console import EXIT_OK
from rewriter.errors import KmirrorError
from rewriter.files import write_atomic


def run(format: str, output_dir: str | None, config: str | None, preset: str | None) -> int:
    """Print the configuration in `format`, or write its files under `output_dir`; the exit code."""
    from rewriter.runtime import MULTI_FILE, runtime_config

    if output_dir is None and format in MULTI_FILE:
        raise KmirrorError(f"invalid option: --format: {format!r} writes several files: give --output-dir DIR")
    result = runtime_config(console.settings(config, preset), format)
    for warning in result.warnings:
        console.err(f"kmirror: warning: {warning}")
    if output_dir is None:
        console.write("".join(result.files.values()))
    else:
        _write_tree(Path(output_dir), result.files)
        console.err(f"wrote {console.count(len(result.files), 'file')} under {output_dir}")
    return EXIT_OK


def _write_tree(folder: Path, files: dict[str, str]) -> None:
    for relative, text in files.items():
        target = folder / relative
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.touch(mode=0o644, exist_ok=True)  # write_atomic replaces an existing file only
        except OSError as exc:
            raise KmirrorError(f"cannot write: {target}: {exc.strerror or exc}") from None
        write_atomic(str(target), text)
