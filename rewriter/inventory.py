"""The copy list: unique source -> mirror pairs, in the formats that copy tools read.

- `csv`: `source,mirror` rows of normalised references, with a header.
- `pairs`: `SOURCE TARGET` lines for a shell loop (`skopeo copy docker://$1 docker://$2`).
- `image-syncer`: its images file, one `"SOURCE": "TARGET"` entry per pair (YAML).
- `skopeo`: a `skopeo sync --src yaml` file, with the `skopeo sync` command to run it in
  its first lines. skopeo sync copies to one destination, naming each image either by its
  last path component or (`--scoped`) by its whole source name; kmirror refuses pairs
  that no single such command reproduces.

A copy needs references a copy tool accepts: the source is pulled by digest when the
reference pins one (a runtime ignores the tag then), else by tag (`latest` when none is
written: a tool given no tag may copy every tag); the target gets the mirror's tag, or
the digest when it has no tag.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass

from rewriter import compose
from rewriter.errors import KmirrorError
from rewriter.plan import Image
from rewriter.reference import ImageRef

FORMATS = ("csv", "skopeo", "image-syncer", "pairs")
DEFAULT_TAG = "latest"


@dataclass(frozen=True)
class Pair:
    """A reference as written (`source`) and the mirror reference rules give it."""

    source: ImageRef
    mirror: ImageRef

    @property
    def pull(self) -> str:
        """The source as a copy tool should pull it (digest first, else tag or `latest`)."""
        return name(self.source) + (f"@{self.source.digest}" if self.source.digest else f":{self.source.tag or DEFAULT_TAG}")

    @property
    def push(self) -> str:
        """The mirror reference a copy tool should push to (tag first, else digest, else `latest`)."""
        if self.mirror.tag:
            return f"{name(self.mirror)}:{self.mirror.tag}"
        if self.mirror.digest:
            return f"{name(self.mirror)}@{self.mirror.digest}"
        return f"{name(self.mirror)}:{DEFAULT_TAG}"


def name(ref: ImageRef) -> str:
    """`registry/repository`, normalised (`nginx` -> `docker.io/library/nginx`)."""
    return f"{ref.registry}/{ref.repository}"


def unique_pairs(images: Iterable[Image]) -> list[Pair]:
    """One pair per distinct (source, mirror), sorted; references no rule changes are left out."""
    found: dict[tuple[str, str], Pair] = {}
    for image in images:
        mirrored = image.decision.mirrored
        if mirrored is not None and not compose.prefix_only(image.location.parts):  # a prefix field names no image to copy
            found.setdefault((image.ref.normalized, mirrored.normalized), Pair(image.ref, mirrored))
    return [found[key] for key in sorted(found)]


def render(pairs: list[Pair], fmt: str) -> str:
    """The complete copy list for `pairs` in format `fmt` (one of FORMATS)."""
    if fmt == "csv":
        return "source,mirror\n" + "".join(f"{p.source.normalized},{p.mirror.normalized}\n" for p in pairs)
    if fmt == "pairs":
        return "".join(f"{p.pull} {p.push}\n" for p in pairs)
    if fmt == "image-syncer":
        return "".join(f"{json.dumps(p.pull)}: {json.dumps(p.push)}\n" for p in pairs) or "{}\n"
    if fmt == "skopeo":
        return _skopeo(pairs)
    raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")


def _skopeo(pairs: list[Pair]) -> str:
    if not pairs:
        return "# no images to copy\n{}\n"
    destination, scoped = _sync_destination(pairs)
    grouped: dict[str, dict[str, list[str]]] = {}
    for p in pairs:
        versions = grouped.setdefault(p.source.registry, {}).setdefault(p.source.repository, [])
        version = p.source.digest or p.source.tag or DEFAULT_TAG
        if version not in versions:
            versions.append(version)
    command = f"skopeo sync --all --src yaml --dest docker{' --scoped' if scoped else ''} FILE {destination}"
    lines = ["# kmirror images --format skopeo: copy with", f"#   {command}"]
    for registry in sorted(grouped):
        lines += [f"{json.dumps(registry)}:", "  images:"]
        for repository in sorted(grouped[registry]):
            lines.append(f"    {json.dumps(repository)}:")
            lines += [f"      - {json.dumps(v)}" for v in grouped[registry][repository]]
    return "\n".join(lines) + "\n"


def _sync_destination(pairs: list[Pair]) -> tuple[str, bool]:
    """The one `(destination, scoped)` under which skopeo sync gives every pair's mirror name."""
    common: set[tuple[str, bool]] | None = None
    for p in pairs:
        layouts = set()
        target = name(p.mirror)
        if (p.mirror.tag, p.mirror.digest) == (p.source.tag, p.source.digest):
            for scoped, tail in ((True, name(p.source)), (False, p.source.repository.rsplit("/", 1)[-1])):
                if target.endswith("/" + tail):
                    layouts.add((target[: -len(tail) - 1], scoped))
        common = layouts if common is None else common & layouts
        if not common:
            raise KmirrorError(
                f"cannot write a skopeo sync file: {p.source} -> {p.mirror}: skopeo sync copies to one destination, "
                "naming each image by its last path component or (--scoped) its whole source name, and no one "
                "destination gives this mirror name and those of the images before it; use --format pairs or image-syncer"
            )
    assert common is not None
    return min(common)
