"""How `verify`, `sync` and `--pin` reach registries: the rules file's `registries:`, the
command-line overrides and the credentials, as one `registry.Options`."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

from rewriter.auth import Credentials, default_lookup, login as with_login
from rewriter.config import Config
from rewriter.errors import KmirrorError
from rewriter.registry import Options


def registry_options(config: Config, mirrors: list[str], login: Credentials | None, plain_http: bool, insecure: bool) -> Options:
    """Options from `config.registries`, `--plain-http`/`--insecure`, and credentials.

    Credentials come from the auth files (rewriter.auth); `login` (`--username`,
    `--password-stdin`) is for the mirror registry, so `mirrors` must name one host.
    """
    lookup = default_lookup(os.environ)
    if login is not None:
        if len(mirrors) > 1:
            raise KmirrorError(
                f"invalid option: --username: the mirrored images are on {len(mirrors)} registries ({', '.join(mirrors)}); "
                "log in to each (docker login, podman login or skopeo login) instead"
            )
        lookup = with_login(mirrors[0], login, lookup) if mirrors else lookup
    return Options(registries=config.registries, plain_http=plain_http, insecure=insecure, credentials=lookup)


def progress(label: str) -> Callable[[int, int], None]:
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
