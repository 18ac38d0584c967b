"""`kmirror presets`: the built-in presets with their scheme and reported status."""

from __future__ import annotations

from rewriter import console
from rewriter.config import load_preset, preset_names
from rewriter.console import EXIT_OK


def run(all: bool) -> int:
    """List the presets (the dead ones too with `all`); the exit code."""
    lines = []
    for name in preset_names():
        preset = load_preset(name)
        if preset.status == "dead" and not all:
            continue
        lines.append(f"{name:26} {preset.status:8} {preset.status_date}  {preset.scheme}: {preset.description}\n")
    console.write("".join(lines))
    return EXIT_OK
