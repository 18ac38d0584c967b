"""What verify and sync share: credentials, registry options, the mirror pairs and the registries' answers.

Registry code is imported when these commands run, so that the command line starts fast.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from rewriter.config import Config
from rewriter.errors import KmirrorError
from rewriter.files import STDIN
from rewriter.pipeline import Outcome

if TYPE_CHECKING:
    from rewriter.inventory import Pair
    from rewriter.auth import Credentials
    from rewriter.registry import Answer
    from rewriter.registry import Options as RegistryOptions


def password(paths: Sequence[str], username: str | None, password_stdin: bool) -> Credentials | None:
    """The credentials given on the command line, the password read from standard input."""
    from rewriter.auth import Credentials

    if username is None and not password_stdin:
        return None
    if username is None or not password_stdin:
        raise KmirrorError("invalid option: --username: give both --username and --password-stdin (a password is never an argument)")
    if STDIN in paths:
        raise KmirrorError("invalid option: --password-stdin: standard input cannot hold both the password and the YAML (name files)")
    secret = sys.stdin.readline().rstrip("\r\n")
    if not secret:
        raise KmirrorError("invalid option: --password-stdin: standard input held no password")
    return Credentials(username, secret)


def registry_options(pairs: list[Pair], login: Credentials | None, plain_http: bool, insecure: bool, settings: Config) -> RegistryOptions:
    """How to talk to the mirror registries: the rules file's `registries:`, the credentials files, or the login given."""
    from rewriter.access import registry_options as options

    return options(settings, sorted({p.mirror.registry for p in pairs}), login, plain_http, insecure)


def pairs(outcomes: list[Outcome]) -> list[Pair]:
    """The unique (source, mirror) pairs of the rewritten images."""
    from rewriter.inventory import unique_pairs

    return unique_pairs(image for o in outcomes for image in o.images)


def mirror_answers(pairs: list[Pair], options: RegistryOptions, label: str, digests: bool = False) -> dict[str, Answer]:
    """What the mirror registries say about each pair's mirror reference (with `digests`, their digests), keyed by it."""
    from rewriter.access import progress
    from rewriter.registry import check

    wanted = list({str(p.mirror): p.mirror for p in pairs}.values())
    return {str(a.ref): a for a in check(wanted, options, progress(label), digests=digests)}
