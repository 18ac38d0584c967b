"""Shared pytest set-up: Hypothesis profiles.

``./scripts/test`` sets ``HYPOTHESIS_PROFILE=ci`` when ``CI=true``.
"""

from __future__ import annotations

import os

from hypothesis import settings

settings.register_profile("ci", derandomize=True, deadline=None, max_examples=200)
settings.register_profile("default", deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))
