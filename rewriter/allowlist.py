"""A mirror's allow-list: the source images it serves (DaoCloud's `allows.txt` semantics).

One pattern a line, naming source repositories as `registry/repository` (no tag)::

    docker.io/library/nginx      exactly this repository
    docker.io/bitnami/*          one more path component: docker.io/bitnami/redis,
                                 not docker.io/bitnami/a/b, not docker.io/bitnami
    gcr.io/google-containers/**  one or more components, at any depth

Blank lines and `#` comments are ignored; a wildcard stands only as the last component.
Matching is on whole components and on the normalised source name: `nginx` is
`docker.io/library/nginx`, `index.docker.io` is `docker.io`. A public mirror that keeps
such a list refuses (403) anything else at pull time, so kmirror can tell offline.
"""

from __future__ import annotations

from dataclasses import dataclass

from rewriter.errors import KmirrorError
from rewriter.files import read_text
from rewriter.findings import NOT_ALLOWED, Finding
from rewriter.plan import Image
from rewriter.reference import DOCKER_HUB, DOCKER_HUB_ALIASES
from rewriter.stream import Source

EXACT, ONE, ANY = "exact", "*", "**"


@dataclass(frozen=True)
class Pattern:
    """One allow-list line: leading components and how many more may follow."""

    components: tuple[str, ...]
    kind: str

    def covers(self, parts: tuple[str, ...]) -> bool:
        """True when the name split into `parts` is allowed by this pattern."""
        head = parts[: len(self.components)]
        if head != self.components:
            return False
        extra = len(parts) - len(self.components)
        if self.kind == EXACT:
            return extra == 0
        if self.kind == ONE:
            return extra == 1
        return extra >= 1


@dataclass(frozen=True)
class AllowList:
    """The patterns of one allow-list file; `origin` names it in messages."""

    patterns: tuple[Pattern, ...]
    origin: str

    def covers(self, registry: str, repository: str) -> bool:
        """True when source repository `registry/repository` is on the list."""
        parts = (_host(registry), *repository.split("/"))
        return any(p.covers(parts) for p in self.patterns)


def parse_allowlist(text: str, origin: str) -> AllowList:
    """Parse allow-list `text`; raise KmirrorError `invalid allow-list: FILE:LINE: why`."""
    patterns = []
    for number, line in enumerate(text.splitlines(), 1):
        entry = line.split("#", 1)[0].strip()
        if not entry:
            continue
        try:
            patterns.append(_pattern(entry))
        except ValueError as exc:
            raise KmirrorError(f"invalid allow-list: {origin}:{number}: {entry!r}: {exc}") from None
    return AllowList(tuple(patterns), origin)


def load_allowlist(path: str) -> AllowList:
    """Read and parse the allow-list file at `path`; KmirrorError when unreadable or invalid."""
    return parse_allowlist(read_text(path, "allow-list"), path)


def _pattern(entry: str) -> Pattern:
    if any(c.isspace() for c in entry):
        raise ValueError("white space inside a pattern")
    components = entry.split("/")
    kind = EXACT
    if components[-1] in (ONE, ANY):
        kind = components.pop()
    if not components or (len(components) < 2 and kind == EXACT):
        raise ValueError("expected registry/repository, registry/prefix/* or registry/prefix/**")
    if any(not c for c in components):
        raise ValueError("empty path component")
    if any("*" in c for c in components):
        raise ValueError("a wildcard (* or **) may only be the whole last component")
    components[0] = _host(components[0])
    return Pattern(tuple(components), kind)


def _host(registry: str) -> str:
    lowered = registry.lower()
    return DOCKER_HUB if lowered in DOCKER_HUB_ALIASES else lowered


def not_allowed(images: tuple[Image, ...], allowlist: AllowList) -> list[Image]:
    """The images that go through a mirror (a rule rewrites them) but whose source is not on the list."""
    return [
        image for image in images
        if image.decision.mirrored is not None and not allowlist.covers(image.ref.registry, image.ref.repository)
    ]


def findings(source: Source, images: tuple[Image, ...], allowlist: AllowList) -> list[Finding]:
    """A KM004 finding for each image of `source` that the allow-list does not cover."""
    return [
        Finding(
            code=NOT_ALLOWED,
            message=(
                f"{image.ref.registry}/{image.ref.repository} is not on the mirror's allow-list {allowlist.origin} "
                f"(pulling {image.decision.mirrored} would be refused)"
            ),
            file=source.name, line=image.line, column=image.column, ref=image.location.text,
            registry=image.ref.registry, suggested=str(image.decision.mirrored),
            resource=image.location.resource, path=image.location.path,
        )
        for image in not_allowed(images, allowlist)
    ]
