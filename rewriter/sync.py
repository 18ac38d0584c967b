"""Copy images to their mirror with `skopeo copy --all` (manifest lists and digests kept).

Credentials kmirror found for the source or the mirror registry (rewriter.auth: the same
files skopeo reads, in its order) are handed to skopeo as they are, a password or an
identity token, in a temporary auth file per side (mode 0600, removed afterwards), never on
its command line, which other users could read; for a registry kmirror has none for, skopeo
is given no auth file and looks up its own. Per side, a registry reached over plain HTTP or
without certificate checks (`registries:`, `--plain-http`, `--insecure`) gets
`--src-tls-verify=false` / `--dest-tls-verify=false` (skopeo then also accepts plain HTTP),
and one with a `ca_file` gets `--src-cert-dir` / `--dest-cert-dir`, a temporary folder
holding that CA.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from rewriter.errors import KmirrorError
from rewriter.inventory import Pair
from rewriter.auth import Credentials, auth_entry
from rewriter.registry import Options

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


def command(skopeo: str, pair: Pair, options: Options, folder: Path) -> list[str]:
    """The `skopeo copy` command line that copies `pair`; auth files and CA folders go under `folder`."""
    args = [skopeo, "copy", "--all", "--retry-times", RETRY_TIMES]
    for side, host in (("src", pair.source.registry), ("dest", pair.mirror.registry)):
        settings = options.settings(host)
        if settings.plain_http or settings.skip_verify:
            args.append(f"--{side}-tls-verify=false")
        elif settings.ca_file is not None:
            args += [f"--{side}-cert-dir", str(_cert_dir(folder / f"{side}-certs", settings.ca_file))]
        credentials = options.credentials(host)
        if credentials is not None:
            args += [f"--{side}-authfile", str(_auth_file(folder / f"{side}-auth.json", host, credentials))]
    return args + [f"docker://{pair.pull}", f"docker://{pair.push}"]


def copy(skopeo: str, pair: Pair, options: Options) -> Copy:
    """Run `skopeo copy` for `pair`; the result says whether it worked and why not."""
    with tempfile.TemporaryDirectory(prefix="kmirror-auth-") as folder:
        args = command(skopeo, pair, options, Path(folder))
        try:
            done = subprocess.run(args, capture_output=True, text=True, stdin=subprocess.DEVNULL, check=False)
        except OSError as exc:
            raise KmirrorError(f"cannot copy: {skopeo}: {exc.strerror or exc}") from None
    return Copy(pair, tuple(args), done.returncode, done.stderr)


def _auth_file(path: Path, host: str, credentials: Credentials) -> Path:
    """Write a containers auth file holding `credentials` for `host`, readable only by its owner."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump({"auths": {host: auth_entry(credentials)}}, out)
    return path


def _cert_dir(path: Path, ca_file: str) -> Path:
    """A folder skopeo reads CAs from (`*.crt`), holding `ca_file`."""
    path.mkdir()
    try:
        shutil.copyfile(ca_file, path / "ca.crt")
    except OSError as exc:
        raise KmirrorError(f"cannot read CA file: {ca_file}: {exc.strerror or exc}") from None
    return path
