"""Container image references, read exactly as a container runtime reads them.

The grammar is the one of distribution/reference (the code Docker, containerd and
Kubernetes use)::

    reference            := name [ ":" tag ] [ "@" digest ]
    name                 := [ domain "/" ] path
    domain               := host [ ":" port ]
    host                 := domain-name | "[" ipv6 "]"
    domain-name          := domain-component ( "." domain-component )*
    domain-component     := [a-zA-Z0-9] | [a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]
    port                 := [0-9]+
    path                 := path-component ( "/" path-component )*
    path-component       := alpha-numeric ( separator alpha-numeric )*
    alpha-numeric        := [a-z0-9]+
    separator            := [_.] | "__" | "-"+
    tag                  := [\\w][\\w.-]{0,127}
    digest               := algorithm ":" hex
    algorithm            := component ( [+._-] component )*,  component := [A-Za-z][A-Za-z0-9]*
    hex                  := [0-9a-fA-F]{32,}   (sha256: exactly 64, sha512: 128, lower case)

The name (domain and path) is at most 255 characters, counted as a runtime counts it:
on the normalised name (`docker.io/library/` included). The first component is a domain
only when it contains "." or ":", is "localhost", or has an upper-case letter;
otherwise the reference is on Docker Hub. Normalisation, a separate step, adds
"docker.io" and, for single-component Docker Hub names, "library/". The registry is the
endpoint a runtime contacts (`endpoint`): the host lower-cased, the default HTTPS port
":443" removed, and Docker Hub's aliases ("index.docker.io", "registry-1.docker.io")
folded to "docker.io", so `Quay.IO:443/x` is on quay.io.
"""

from __future__ import annotations

import functools
import re
from typing import NamedTuple

DOCKER_HUB = "docker.io"
DOCKER_HUB_ALIASES = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})
DEFAULT_PORT = 443  # runtimes pull over HTTPS: `host:443` is `host`
NAME_MAX = 255

_ALNUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[_.]|__|-+)"
_PATH_COMPONENT = rf"{_ALNUM}(?:{_SEPARATOR}{_ALNUM})*"
_PATH = rf"{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN_NAME = rf"{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*"
_IPV6 = r"\[[a-fA-F0-9:]+\]"
_DOMAIN = rf"(?:{_DOMAIN_NAME}|{_IPV6})(?::[0-9]+)?"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"

DOMAIN_RE = re.compile(_DOMAIN, re.ASCII)
PATH_RE = re.compile(_PATH, re.ASCII)
TAG_RE = re.compile(_TAG, re.ASCII)
DIGEST_RE = re.compile(_DIGEST, re.ASCII)
_HEX64_RE = re.compile(r"[a-f0-9]{64}", re.ASCII)
_DIGEST_LENGTHS = {"sha256": 64, "sha384": 96, "sha512": 128}


class ReferenceError(ValueError):
    """An image reference that a container runtime would refuse; the message says why."""


class ImageRef(NamedTuple):
    """A parsed image reference.

    `domain` and `path` are as written (`domain` is None when the reference names no
    registry); `registry` and `repository` are normalised (`nginx` has registry
    `docker.io` and repository `library/nginx`). `str(ref)` gives the text back.
    """

    domain: str | None
    path: str
    tag: str | None
    digest: str | None

    @property
    def registry(self) -> str:
        """The registry host, lower-cased (unless only its case makes it a host), Docker Hub's aliases folded."""
        if self.domain is None:
            return DOCKER_HUB
        lowered = self.domain.lower()
        # A host recognised only by its upper case (`J/app`) keeps it: lower-cased it would read as Docker Hub.
        return endpoint(lowered) if ("." in lowered or ":" in lowered or lowered == "localhost") else self.domain

    @property
    def repository(self) -> str:
        """The repository path, with `library/` for single-component Docker Hub names."""
        if self.registry == DOCKER_HUB and "/" not in self.path:
            return "library/" + self.path
        return self.path

    @property
    def name(self) -> str:
        """The last path component (`kube-proxy` in `k8s.gcr.io/kube-proxy:v1`)."""
        return self.path.rsplit("/", 1)[-1]

    @property
    def suffix(self) -> str:
        """The tag and digest as written (`:v1@sha256:...`), or the empty string."""
        return (f":{self.tag}" if self.tag else "") + (f"@{self.digest}" if self.digest else "")

    @property
    def normalized(self) -> str:
        """`registry/repository[:tag][@digest]` (no implicit `latest`)."""
        return f"{self.registry}/{self.repository}{self.suffix}"

    def __str__(self) -> str:
        head = f"{self.domain}/{self.path}" if self.domain is not None else self.path
        return head + self.suffix


def endpoint(host: str) -> str:
    """The registry a container runtime contacts for `host` (`Docker.IO:443` is `docker.io`).

    Lower-cased (host names are case-insensitive), without the default port (`:443`,
    `:0443`: a runtime dials the same socket), Docker Hub's aliases folded to docker.io.
    """
    return _endpoint_steps(host)[-1]


def _endpoint_steps(host: str) -> tuple[str, str, str]:
    """`host` lower-cased, then without its default port, then with Docker Hub's aliases folded."""
    lowered = host.lower()
    name, colon, port = lowered.rpartition(":")
    unported = name if colon and port.isdigit() and int(port) == DEFAULT_PORT else lowered
    return lowered, unported, DOCKER_HUB if unported in DOCKER_HUB_ALIASES else unported


def normalization(ref: ImageRef) -> list[str]:
    """How `ref` as written becomes `ref.normalized`, one step a line (none when written normalised)."""
    steps = []
    if ref.domain is None:
        steps.append(f"no registry host: Docker Hub ({DOCKER_HUB})")
    elif ref.registry != ref.domain:
        lowered, unported, folded = _endpoint_steps(ref.domain)
        if lowered != ref.domain:
            steps.append(f"host {ref.domain} lower-cased")
        if unported != lowered:
            steps.append(f"default port :{DEFAULT_PORT} removed from {lowered}")
        if folded != unported:
            steps.append(f"{unported} is Docker Hub ({DOCKER_HUB})")
    if ref.repository != ref.path:
        steps.append(f"{ref.path} is an official Docker Hub image: {ref.repository}")
    return steps


@functools.lru_cache(maxsize=4096)
def parse(text: str) -> ImageRef:
    """Parse `text` as an image reference; raise ReferenceError naming the first problem.

    Results are cached (a stream names the same images again and again); ImageRef is immutable.
    """
    if not text:
        raise ReferenceError("empty reference")
    if "".join(text.split()) != text:
        raise ReferenceError("reference contains white space")

    if _HEX64_RE.fullmatch(text):
        raise ReferenceError("a 64-character hexadecimal string is an image ID, not a reference")
    rest, digest = _split_digest(text)
    name, tag = _split_tag(rest)
    if len(name) > NAME_MAX:
        raise ReferenceError(f"repository name is longer than {NAME_MAX} characters")
    domain, path = _split_domain(name)
    if not path:
        raise ReferenceError("repository path is empty")
    if path.lower() == path and not PATH_RE.fullmatch(path):
        raise ReferenceError(f"invalid repository path {path!r}: components are lower-case letters and digits joined by '.', '_', '__' or '-'")
    if path.lower() != path:
        raise ReferenceError(f"repository name must be lowercase: {path!r}")
    ref = ImageRef(domain=domain, path=path, tag=tag, digest=digest)
    # Runtimes check the length after normalising (distribution's ParseNormalizedNamed
    # parses "docker.io/library/<name>"), so a long Docker Hub name is refused at pull time.
    if len(ref.registry) + 1 + len(ref.repository) > NAME_MAX:
        raise ReferenceError(f"repository name is longer than {NAME_MAX} characters once normalised ({ref.registry}/...)")
    return ref


def is_reference(text: str) -> bool:
    """True when `text` parses as an image reference."""
    try:
        parse(text)
    except ReferenceError:
        return False
    return True


def _split_digest(text: str) -> tuple[str, str | None]:
    if "@" not in text:
        return text, None
    rest, digest = text.split("@", 1)
    if not DIGEST_RE.fullmatch(digest):
        raise ReferenceError(f"invalid digest {digest!r}: expected <algorithm>:<hex>")
    algorithm, hex_part = digest.split(":", 1)
    expected = _DIGEST_LENGTHS.get(algorithm)
    if expected is None:
        raise ReferenceError(f"unsupported digest algorithm {algorithm!r}")
    if len(hex_part) != expected or hex_part.lower() != hex_part:
        raise ReferenceError(f"invalid {algorithm} digest: expected {expected} lower-case hex characters")
    if not rest:
        raise ReferenceError("digest without a repository name")
    return rest, digest


def _split_tag(text: str) -> tuple[str, str | None]:
    # A ":" after the last "/" starts the tag; one before it belongs to a port.
    slash = text.rfind("/")
    colon = text.rfind(":")
    if colon <= slash:
        return text, None
    name, tag = text[:colon], text[colon + 1 :]
    if not TAG_RE.fullmatch(tag):
        if len(tag) > 128:
            raise ReferenceError("tag is longer than 128 characters")
        raise ReferenceError(f"invalid tag {tag!r}: letters, digits, '_', '.', '-', not starting with '.' or '-'")
    return name, tag


def _split_domain(name: str) -> tuple[str | None, str]:
    first, sep, rest = name.partition("/")
    if not sep:
        return None, name
    if "." in first or ":" in first or first == "localhost" or first.lower() != first:
        if not DOMAIN_RE.fullmatch(first):
            raise ReferenceError(f"invalid registry host {first!r}")
        return first, rest
    return None, name
