"""Copy images to their mirror with `skopeo copy --all` (manifest lists and digests kept).

Credentials kmirror knows for the source or the mirror registry are handed to skopeo in
a temporary auth file (mode 0600, removed afterwards), never on its command line, which
other users could read; without them skopeo looks up its own (`auth.json`, the Docker
config). `--plain-http` and `--insecure` become `--src-tls-verify=false` and
`--dest-tls-verify=false`: skopeo then accepts any certificate and falls back to HTTP.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from rewriter.errors import KmirrorError
from rewriter.inventory import Pair
from rewriter.registry import Credentials, Options

SKOPEO = "skopeo"
RETRY_TIMES = "3"


@dataclass(frozen=True)
class Copy:
    """One finished `skopeo copy`: the command as shown (no secrets), its exit code and stderr."""

    pair: Pair
    command: tuple[str, ...]
    returncode: int
    stderr: str

    @property
    def ok(self) -> bool:
        """True when skopeo succeeded."""
        return self.returncode == 0


def find_skopeo() -> str:
    """The path of skopeo; KmirrorError when it is not installed."""
    found = shutil.which(SKOPEO)
    if found is None:
        raise KmirrorError("cannot copy: skopeo: not found on PATH (install it: apt-get install skopeo, brew install skopeo)")
    return found


def command(skopeo: str, pair: Pair, options: Options, src_auth: Path | None, dest_auth: Path | None) -> list[str]:
    """The `skopeo copy` command line that copies `pair` (auth files by path only)."""
    args = [skopeo, "copy", "--all", "--retry-times", RETRY_TIMES]
    if options.plain_http or options.insecure:
        args += ["--src-tls-verify=false", "--dest-tls-verify=false"]
    if src_auth is not None:
        args += ["--src-authfile", str(src_auth)]
    if dest_auth is not None:
        args += ["--dest-authfile", str(dest_auth)]
    return args + [f"docker://{pair.pull}", f"docker://{pair.push}"]


def copy(skopeo: str, pair: Pair, options: Options) -> Copy:
    """Run `skopeo copy` for `pair`; the result says whether it worked and why not."""
    with tempfile.TemporaryDirectory(prefix="kmirror-auth-") as folder:
        src_auth = _auth_file(Path(folder) / "source.json", pair.source.registry, options.credentials(pair.source.registry))
        dest_auth = _auth_file(Path(folder) / "mirror.json", pair.mirror.registry, options.credentials(pair.mirror.registry))
        args = command(skopeo, pair, options, src_auth, dest_auth)
        try:
            done = subprocess.run(args, capture_output=True, text=True, stdin=subprocess.DEVNULL, check=False)
        except OSError as exc:
            raise KmirrorError(f"cannot copy: {skopeo}: {exc.strerror or exc}") from None
    return Copy(pair, tuple(args), done.returncode, done.stderr)


def _auth_file(path: Path, host: str, credentials: Credentials | None) -> Path | None:
    """Write a containers auth file with `credentials` for `host` (None: write nothing)."""
    if credentials is None:
        return None
    secret = base64.b64encode(f"{credentials.username}:{credentials.password}".encode()).decode()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump({"auths": {host: {"auth": secret}}}, out)
    return path
