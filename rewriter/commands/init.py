"""`kmirror init`: write a commented starter .kmirror.yaml in the current folder."""

from __future__ import annotations

from pathlib import Path

from rewriter import console
from rewriter.console import EXIT_OK
from rewriter.errors import KmirrorError


def run(preset: str | None, registry: str | None, force: bool) -> int:
    """Write the starter rules file (replacing one only with `force`); the exit code."""
    from rewriter.config import CONFIG_NAME, parse_config
    from rewriter.init import starter

    text = starter(preset, registry)
    notices = parse_config(text, CONFIG_NAME).notices  # what kmirror will say when it loads the file
    target = Path.cwd() / CONFIG_NAME
    try:
        with open(target, "w" if force else "x", encoding="utf-8", newline="") as out:
            out.write(text)
    except FileExistsError:
        raise KmirrorError(f"cannot write: {target}: it exists already (--force replaces it)") from None
    except OSError as exc:
        raise KmirrorError(f"cannot write: {target}: {exc.strerror or exc}") from None
    for notice in notices:
        console.err(f"kmirror: {notice}")
    console.err(f"wrote {CONFIG_NAME}; see what it does: kmirror check .")
    return EXIT_OK
