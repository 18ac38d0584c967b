"""kmirror: rewrite every container image reference in Kubernetes YAML to a mirror.

`rewriter.__version__` is the installed distribution's version (pyproject.toml is the one
place it is written), read from its metadata when first asked for.
"""

import os
import sys


def __getattr__(name: str) -> str:
    if name == "__version__":
        return _installed_version()
    raise AttributeError(f"module 'rewriter' has no attribute {name!r}")


def _installed_version() -> str:
    """The `Version:` of the first `kmirror-*.dist-info/METADATA` on sys.path, as importlib.metadata finds it.

    Read directly because importing importlib.metadata (email, zipfile, csv, ...) took
    longer than the rest of `kmirror --version`; an install it does not recognise (an egg,
    a zip) falls back to it.
    """
    for entry in sys.path:
        try:
            names = sorted(os.listdir(entry or "."))
        except OSError:
            continue
        for folder in names:
            if folder.startswith("kmirror-") and folder.endswith(".dist-info"):
                try:
                    with open(os.path.join(entry or ".", folder, "METADATA"), encoding="utf-8") as metadata:
                        for line in metadata:
                            if line.startswith("Version:"):
                                return line.partition(":")[2].strip()
                except OSError:
                    continue
    from importlib.metadata import version

    return version("kmirror")
