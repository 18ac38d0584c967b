"""Find the real external tools that tests drive (helm, kubectl, skopeo, ...).

``./scripts/test`` installs them (see ``scripts/install-tools``) and exports
``KMIRROR_TOOLS_DIR``.  A test that needs a tool must *fail* when the tool is
missing, never skip: a green run that tested nothing is a red run.

Usage::

    from tools import tool

    subprocess.run([tool("helm4"), "template", chart], check=True)
"""

from __future__ import annotations

import os
import shutil

import pytest

#: The tools ``./scripts/test`` provides.
KNOWN_TOOLS: tuple[str, ...] = (
    "helm3",
    "helm4",
    "kubectl",
    "skopeo",
    "docker-registry",
    "pre-commit",
)


def tool(name: str) -> str:
    """Return the absolute path of the executable *name*.

    Looks in ``$KMIRROR_TOOLS_DIR`` first, then on ``PATH``.  When it is not
    found, fails the calling test (``pytest.fail``) with a hint to run the
    tests through ``./scripts/test``, which installs every tool.
    """
    tools_dir = os.environ.get("KMIRROR_TOOLS_DIR")
    if tools_dir:
        candidate = os.path.join(tools_dir, name)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return os.path.abspath(candidate)
    found = shutil.which(name)
    if found:
        return os.path.abspath(found)
    pytest.fail(
        f"required tool {name!r} not found in KMIRROR_TOOLS_DIR={tools_dir!r} or on PATH; "
        "run the tests with ./scripts/test, which installs it",
        pytrace=False,
    )
