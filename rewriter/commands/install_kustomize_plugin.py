"""`kmirror install-kustomize-plugin`: install kmirror as kustomize's exec transformer plugin for kind ImageMirror."""

from __future__ import annotations

import os
import sys

from rewriter import console
from rewriter.console import EXIT_OK


def run() -> int:
    """Install the plugin where kustomize looks first; the exit code."""
    from rewriter.plugin import install, plugin_root

    target = install(plugin_root(os.environ), sys.executable)
    console.err(f"installed {target}")
    return EXIT_OK
