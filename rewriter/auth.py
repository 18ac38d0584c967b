"""Registry credentials from the files `docker login`, `podman login` and `skopeo login` write.

Files are read in the order of containers-auth.json(5), the order skopeo itself uses, so
that `verify` and the `skopeo copy` of `sync` agree on who you are; the first file with
an entry for the registry host wins:

1. `$REGISTRY_AUTH_FILE`, else `$XDG_RUNTIME_DIR/containers/auth.json`;
2. `$XDG_CONFIG_HOME/containers/auth.json` (default `~/.config/containers/auth.json`);
3. `$DOCKER_CONFIG/config.json` (default `~/.docker/config.json`).

In each file: an `auths` entry (`auth` as base64 `user:password`, `username`/`password`,
or an `identitytoken`), then the file's `credHelpers` entry for the host, then its
`credsStore` (`docker-credential-<name> get`; a helper's `<token>` user means its secret
is an identity token). Entries scoped to a repository namespace (`quay.io/team`) are left
to skopeo. Docker Hub is `docker.io` (its Docker config key is `https://index.docker.io/v1/`).
A secret is never part of a message or a `repr`.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from rewriter.errors import KmirrorError
from rewriter.reference import DOCKER_HUB

DOCKER_HUB_CONFIG_KEY = "https://index.docker.io/v1/"
HELPER_TOKEN_USER = "<token>"  # what a credential helper answers for an identity token
HELPER_TIMEOUT = 30


@dataclass(frozen=True)
class Credentials:
    """A user name and password, or an identity token (an OAuth2 refresh token); `repr` hides secrets."""

    username: str
    password: str = field(default="", repr=False)
    identity_token: str = field(default="", repr=False)


CredentialLookup = Callable[[str], "Credentials | None"]


def no_credentials(host: str) -> Credentials | None:
    """The lookup that knows no credentials (anonymous access)."""
    return None


def auth_files(environ: Mapping[str, str] = os.environ) -> list[Path]:
    """The credential files kmirror reads, in the order it reads them (see the module)."""
    home = Path(environ.get("HOME") or Path.home())
    primary = environ.get("REGISTRY_AUTH_FILE")
    runtime = environ.get("XDG_RUNTIME_DIR")
    files = [Path(primary)] if primary else [Path(runtime) / "containers" / "auth.json"] if runtime else []
    files.append(Path(environ.get("XDG_CONFIG_HOME") or home / ".config") / "containers" / "auth.json")
    files.append(docker_config_path(environ))
    return files


def docker_config_path(environ: Mapping[str, str] = os.environ) -> Path:
    """`$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`."""
    folder = environ.get("DOCKER_CONFIG")
    home = Path(environ.get("HOME") or Path.home())
    return Path(folder) / "config.json" if folder else home / ".docker" / "config.json"


def default_lookup(environ: Mapping[str, str] = os.environ) -> CredentialLookup:
    """Credentials by registry host from the first of `auth_files()` that has some."""
    lookups = [file_lookup(path) for path in auth_files(environ)]

    def lookup(host: str) -> Credentials | None:
        return next((found for found in (each(host) for each in lookups) if found is not None), None)

    return lookup


def file_lookup(path: Path) -> CredentialLookup:
    """Credentials by registry host from one auth.json or Docker config file (missing file: none)."""
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        config = {}
    except (OSError, ValueError) as exc:
        # The message of a JSON error quotes no text of the file, so it cannot show a secret.
        raise KmirrorError(f"cannot read credentials: {path}: {getattr(exc, 'strerror', None) or exc}") from None
    if not isinstance(config, dict):
        raise KmirrorError(f"cannot read credentials: {path}: not a JSON object")
    auths = {host: entry for key, entry in _section(config, "auths", path).items() if (host := _host_key(key)) and isinstance(entry, dict)}
    helpers = {host: helper for key, helper in _section(config, "credHelpers", path).items() if (host := _host_key(key))}
    store = config.get("credsStore")

    def lookup(host: str) -> Credentials | None:
        entry = auths.get(host)
        if entry:
            found = _from_entry(entry, path, host)
            if found is not None:
                return found
        helper = helpers.get(host) or store
        return _from_helper(helper, host) if isinstance(helper, str) and helper else None

    return lookup


def _section(config: dict[str, object], key: str, path: Path) -> dict[str, object]:
    value = config.get(key) or {}
    if not isinstance(value, dict):
        raise KmirrorError(f"cannot read credentials: {path}: {key!r} is not a JSON object")
    return value


def _host_key(key: str) -> str | None:
    """The registry host an entry's key names; None for an entry scoped to a namespace."""
    text = key.strip()
    url = re.match(r"^[a-z]+://", text)
    rest = text[url.end():] if url else text
    host, _, path = rest.partition("/")
    host = host.lower()
    if host in ("index.docker.io", "registry-1.docker.io", "docker.io"):
        host = DOCKER_HUB
    # URLs carry API paths (`https://index.docker.io/v1/`); a bare key with a path is a namespace.
    return host if url or not path else None


def _from_entry(entry: dict[str, object], path: Path, host: str) -> Credentials | None:
    token = entry.get("identitytoken")
    if isinstance(token, str) and token:
        return Credentials("", identity_token=token)  # its `auth`, if any, holds a user name only
    auth = entry.get("auth")
    if isinstance(auth, str) and auth:
        try:
            username, sep, password = base64.b64decode(auth, validate=True).decode("utf-8").partition(":")
        except ValueError:
            sep = ""
        if not sep:
            raise KmirrorError(f"cannot read credentials: {path}: auths entry for {host}: 'auth' is not base64 of user:password")
        return Credentials(username, password)
    user, secret = entry.get("username"), entry.get("password")
    if isinstance(user, str) and isinstance(secret, str):
        return Credentials(user, secret)
    return None


def _from_helper(helper: str, host: str) -> Credentials | None:
    server = DOCKER_HUB_CONFIG_KEY if host == DOCKER_HUB else host
    try:
        done = subprocess.run(
            [f"docker-credential-{helper}", "get"], input=server, capture_output=True, text=True,
            timeout=HELPER_TIMEOUT, check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if done.returncode != 0:
        return None
    try:
        answer = json.loads(done.stdout)
    except ValueError:
        return None
    if not isinstance(answer, dict):
        return None
    username, secret = answer.get("Username"), answer.get("Secret")
    if not isinstance(username, str) or not isinstance(secret, str) or not secret:
        return None
    if username == HELPER_TOKEN_USER:
        return Credentials("", identity_token=secret)
    return Credentials(username, secret)


def login(host: str, credentials: Credentials, fallback: CredentialLookup) -> CredentialLookup:
    """A lookup that gives `credentials` for `host` and asks `fallback` for any other host."""
    return lambda asked: credentials if asked == host else fallback(asked)


def auth_entry(credentials: Credentials) -> dict[str, str]:
    """The containers auth.json entry holding `credentials` (what skopeo reads)."""
    if credentials.identity_token:
        # containers/image reads an entry only when its `auth` decodes to `user:password`.
        return {"auth": base64.b64encode(f"{credentials.username}:".encode()).decode(), "identitytoken": credentials.identity_token}
    return {"auth": base64.b64encode(f"{credentials.username}:{credentials.password}".encode()).decode()}
