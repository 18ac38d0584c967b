"""What verify and sync share: credentials, registry options, the mirror pairs and the registries' answers.

Registry code is imported when these commands run, so that the command line starts fast.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from rewriter.errors import KmirrorError
from rewriter.files import STDIN
from rewriter.pipeline import Outcome

if TYPE_CHECKING:
    from rewriter.inventory import Pair
    from rewriter.registry import Answer, Credentials
    from rewriter.registry import Options as RegistryOptions


def password(paths: Sequence[str], username: str | None, password_stdin: bool) -> Credentials | None:
    """The credentials given on the command line, the password read from standard input."""
    from rewriter.registry import Credentials

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


def registry_options(pairs: list[Pair], login: Credentials | None, plain_http: bool, insecure: bool) -> RegistryOptions:
    """How to talk to the mirror registries: the Docker config file's credentials, or the login given."""
    from rewriter.registry import Options, docker_config_lookup, docker_config_path, login as with_login

    lookup = docker_config_lookup(docker_config_path())
    if login is not None:
        hosts = sorted({p.mirror.registry for p in pairs})
        if len(hosts) > 1:
            raise KmirrorError(f"invalid option: --username: the mirrored images are on {len(hosts)} registries ({', '.join(hosts)}); log in to each in the Docker config file instead")
        lookup = with_login(hosts[0], login, lookup) if hosts else lookup
    return Options(plain_http=plain_http, insecure=insecure, credentials=lookup)


def pairs(outcomes: list[Outcome]) -> list[Pair]:
    """The unique (source, mirror) pairs of the rewritten images."""
    from rewriter.inventory import unique_pairs

    return unique_pairs(image for o in outcomes for image in o.images)


def _progress(label: str) -> Callable[[int, int], None]:
    """A progress bar on standard error when it is a terminal; otherwise nothing."""
    if not sys.stderr.isatty():
        return lambda n, total: None

    def show(n: int, total: int) -> None:
        filled = 30 * n // max(total, 1)
        sys.stderr.write(f"\r{label} [{'#' * filled}{'.' * (30 - filled)}] {n}/{total}")
        if n >= total:
            sys.stderr.write("\r\033[K")
        sys.stderr.flush()

    return show


def mirror_answers(pairs: list[Pair], options: RegistryOptions, label: str) -> dict[str, Answer]:
    """What the mirror registries say about each pair's mirror reference, keyed by it."""
    from rewriter.registry import check

    wanted = list({str(p.mirror): p.mirror for p in pairs}.values())
    return {str(a.ref): a for a in check(wanted, options, _progress(label))}
