"""Images composed from sibling fields of one mapping: recognise the shape, compose, edit the fields.

Helm charts and operators often keep one image in several fields and join them in a
template or in the operator's code. The shapes recognised (each seen in real charts and
custom resources; README lists an example of each):

    {registry, repository, tag, digest|sha}   registry "/" repository ":" tag "@" digest (Bitnami,
                                              prometheus-community); an empty registry: repository alone,
                                              or `defaultRegistry` beside it (kyverno)
    {registry|hub, image, tag, digest}        registry "/" image ":" tag "@" digest (ingress-nginx, istio)
    {repository, image, version}              repository "/" image ":" version, or "@" version when the
                                              version is a sha256 digest (NVIDIA gpu-operator ClusterPolicy)
    {repository, tag, digest}                 the host inside repository, under a key naming an image,
                                              beside a pull policy, or under any key when repository
                                              names its registry host (podinfo's `redis: {repository:
                                              docker.io/redis, tag: 8.8.0}`)
    {name, version|tag}                       under a key naming an image (`image: {name, version}`)

A registry-bearing field with no name beside it is a prefix shared by other images: a `hub`
next to a `tag` (istio's `global.hub`), a `registry` under a key naming an image
(ingress-nginx's `global.image.registry`), an `imageRegistry` (Bitnami's `global`), a `hub`
that names its host without a tag (an IstioOperator's `spec.hub: gcr.io/istio-release`), or any
`...ImageRegistry`/`containerRegistry`/`container-registry` whose value names a registry host
(Strimzi's `defaultImageRegistry: quay.io`, joined with `defaultImageRepository` and each image's
name; ECK's operator configuration), or a `registry` beside `imagePath`/`imagePrefix` (Calico's
Installation, `registry: quay.io/`: one trailing `/` is kept). It is decided as `PREFIX/*`:
rewritten when the rules move everything under it alike, else KM002.

A mapping whose `image` is a bare name next to `tag`/`version`/`digest` but with no
registry-bearing sibling (or an empty one), or below a mapping with a `hub`, takes its
registry from elsewhere (a chart's `global`): its name is part of an image and is neither
reported nor rewritten alone.

This module is pure: the walker in `locate` hands it a mapping's string values and the
spans of their characters; `plan` asks it for the edits that give a mirrored reference.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from rewriter.reference import ImageRef, ReferenceError, parse
from rewriter.rules import Rule, RuleSet
from rewriter.splice import Edit

PREFIX_KEYS = ("registry", "hub")
TAG_KEYS = ("tag", "version")
DIGEST_KEYS = ("digest", "sha")
NAME_KEYS = frozenset({"image", "repository", "name"})
TRIGGER_KEYS = NAME_KEYS | {"hub", "registry", "imageRegistry"}  # with none of these (`triggered`), a mapping composes nothing
_DEFAULT_REGISTRY = "defaultRegistry"  # kyverno's image: the registry when `registry` is empty
# `defaultImageRegistry` (Strimzi), `containerRegistry`/`container-registry` (ECK): a registry for every image.
_SHARED_REGISTRY_RE = re.compile(r"(?:image|container)[-_]?registry$", re.IGNORECASE)
PROBE = "kmirror-probe/any-image"  # stands for every image under a prefix field when deciding it
_POLICY_KEYS = ("pullPolicy", "imagePullPolicy")


class Shape(NamedTuple):
    """Which key of a mapping plays which part; `consumed` keys are never read on their own.

    `prefix` is None when the name field holds the whole name, `name` None for a prefix
    field alone; `composable` is False when a part comes from outside the mapping (the
    image is then left alone).
    """

    prefix: str | None
    name: str | None
    tag: str | None
    digest: str | None
    consumed: frozenset[str]
    composable: bool


class Part(NamedTuple):
    """One field of a composed image: its key, its value, and where its characters are.

    `start`/`end` are offsets of the value's characters in the stream (`start` is -1 when
    they cannot be found verbatim); for an empty value written `""` or `''` they are equal
    and point between the quotes; for an empty plain value `start` is -1.
    """

    role: str
    key: str
    value: str
    start: int
    end: int


def triggered(keys: set[str]) -> bool:
    """A mapping with these keys may compose an image (else `shape` is None whatever the values)."""
    return not TRIGGER_KEYS.isdisjoint(keys) or any("egistry" in key and _SHARED_REGISTRY_RE.search(key) for key in keys)


def shape(values: dict[str, str], image_parent: bool, under_hub: bool) -> Shape | None:
    """The composed-image shape of a mapping with these string `values`, or None.

    `image_parent` says the mapping sits under a key naming an image (`image`, `initImage`);
    `under_hub` that an enclosing mapping has a `hub` (istio's `global.proxy.image: proxyv2`).
    """
    tag = next((k for k in TAG_KEYS if k in values), None)
    if "image" not in values and "repository" not in values and not ("name" in values and image_parent):
        # A hub names its host (IstioOperator `spec.hub: gcr.io/istio-release`, a gateway's) or has a tag beside it.
        hub = tag is not None or ("hub" in values and _names_its_host(f"{values['hub']}/{PROBE}"))
        # Calico's Installation: `registry` (often with a trailing `/`) beside `imagePath`/`imagePrefix`.
        calico = "imagePath" in values or "imagePrefix" in values
        for key, beside in (("hub", hub), ("registry", image_parent or calico), ("imageRegistry", True)):
            if key in values and beside and values[key] and _prefix(values[key]):
                return Shape(key, None, None, None, frozenset({key}), composable=True)
        for key, value in values.items():
            if _SHARED_REGISTRY_RE.search(key) and value and _prefix(value) and _names_its_host(f"{value}/{PROBE}"):
                return Shape(key, None, None, None, frozenset({key}), composable=True)
        return None
    digest = next((k for k in DIGEST_KEYS if k in values), None)
    if "image" in values:
        prefix = next((k for k in (*PREFIX_KEYS, "repository") if k in values), None)
        if prefix is None:
            if (tag or digest or under_hub) and _bare(values["image"]):
                return Shape(None, "image", tag, digest, frozenset({"image"}), composable=False)
            return None
        parts = frozenset(k for k in (prefix, "image", tag, digest) if k)
        if not values[prefix]:
            # gpu-operator reads `image` as a whole reference when repository and version are both
            # empty (internal/image/image.go); otherwise the registry comes from elsewhere (global).
            if prefix == "repository" and not (tag and values[tag]) or not _bare(values["image"]):
                return None
            return Shape(prefix, "image", tag, digest, parts, composable=False)
        return Shape(prefix, "image", tag, digest, parts, composable=True)
    if "repository" in values and (
        image_parent or "registry" in values or any(k in values for k in _POLICY_KEYS) or (tag is not None and _names_its_host(values["repository"]))
    ):
        prefix = "registry" if "registry" in values else None
        if prefix and not values["registry"] and values.get(_DEFAULT_REGISTRY):
            prefix = _DEFAULT_REGISTRY  # kyverno: `registry` when set, else `defaultRegistry`
        parts = frozenset(k for k in (prefix, "registry", _DEFAULT_REGISTRY, "repository", tag, digest) if k and k in values)
        return Shape(prefix, "repository", tag, digest, parts, composable=bool(values["repository"]))
    if "name" in values and image_parent and tag is not None:
        parts = frozenset(k for k in ("name", tag, digest) if k)
        return Shape(None, "name", tag, digest, parts, composable=bool(values["name"]))
    return None


def _prefix(value: str) -> bool:
    return "{{" not in value and _parses(f"{_joinable(value)}/{PROBE}")


def _joinable(prefix: str) -> str:
    """A prefix field's value without the one trailing `/` some write (Calico's `registry: quay.io/`)."""
    return prefix.removesuffix("/")


def _names_its_host(value: str) -> bool:
    """A repository that starts with its registry host (`docker.io/redis`): an image's name under any key."""
    try:
        return "{{" not in value and parse(value).domain is not None
    except ReferenceError:
        return False


def _parses(text: str) -> bool:
    try:
        parse(text)
    except ReferenceError:
        return False
    return True


def prefix_only(parts: tuple[Part, ...]) -> bool:
    """The parts are one prefix field (`global.hub`), decided as `PREFIX/*`."""
    return len(parts) == 1 and parts[0].role == "prefix"


def reference(text: str, parts: tuple[Part, ...]) -> ImageRef:
    """The reference the rules decide for a location's `text`: for a prefix field, a probe under it."""
    return parse(f"{_joinable(parts[0].value)}/{PROBE}") if prefix_only(parts) else parse(text)


def narrower(rules: RuleSet, probe: ImageRef, chosen: Rule | None) -> Rule | None:
    """A rule tried before `chosen` that matches only some of the images under a prefix field.

    `probe` is the prefix's `reference`; such a rule makes the images under the field go
    different ways, which one edit of the field cannot write.
    """
    ref = rules.canonical(probe)
    under = tuple(ref.repository.split("/")[: -len(PROBE.split("/"))])
    for rule in rules.rules:
        if rule is chosen:
            return None
        if rule.registry != ref.registry:
            continue
        components = rule.prefix.components if rule.prefix is not None else tuple(rule.exact.repository.split("/"))  # type: ignore[union-attr]
        if len(components) > len(under) and components[: len(under)] == under:
            return rule
    return None


def shown(ref: ImageRef | str) -> str:
    """A decided reference as people read it: the probe under a prefix field is `*`."""
    return str(ref).replace(f"/{PROBE}", "/*")


def _bare(value: str) -> bool:
    """A name with no registry, tag or digest of its own (`ingress-nginx/controller`)."""
    try:
        ref = parse(value)
    except ReferenceError:
        return False
    return ref.domain is None and ref.tag is None and ref.digest is None


def compose(parts: tuple[Part, ...]) -> str | None:
    """The reference the fields make, as the chart's template or the operator joins them; None if invalid."""
    by_role = {part.role: part for part in parts}
    prefix = by_role["prefix"].value if "prefix" in by_role else ""
    if prefix_only(parts):
        return f"{_joinable(prefix)}/*"
    text = f"{prefix}/{by_role['name'].value}" if prefix else by_role["name"].value
    tag, digest = _suffix(by_role)
    text += (f":{tag}" if tag else "") + (f"@{digest}" if digest else "")
    if "{{" in text or "$(" in text or "${" in text:
        return None
    try:
        parse(text)
    except ReferenceError:
        return None
    return text


def _suffix(by_role: dict[str, Part]) -> tuple[str, str]:
    """The tag and digest the fields give: a sha256 `version` is a digest, a bare `sha` a sha256 hex."""
    tag = by_role["tag"].value if "tag" in by_role else ""
    digest = by_role["digest"].value if "digest" in by_role else ""
    if tag.startswith("sha256:") and "prefix" in by_role and by_role["prefix"].key == "repository":
        tag, digest = "", tag  # gpu-operator: `version: sha256:...` pulls repository/image@version
    if digest and ":" not in digest and "digest" in by_role and by_role["digest"].key == "sha":
        digest = f"sha256:{digest}"
    return tag, digest


def edits(parts: tuple[Part, ...], mirrored: ImageRef) -> list[Edit] | str:
    """The field edits that make the fields compose to `mirrored`, or what to write by hand."""
    found = values(parts, mirrored)
    if isinstance(found, str):
        return found
    by_role = {part.role: part for part in parts}
    result: list[Edit] = []
    for role, new in found.items():
        part = by_role.get(role)
        if part is None or part.start < 0:
            if prefix_only(parts):
                return "it cannot be edited exactly: mirror each image instead"
            return "set " + ", ".join(f"{by_role[r].key if r in by_role else r}: {v}" for r, v in found.items())
        result.append(Edit(part.start, part.end, part.value, new))
    return result


def values(parts: tuple[Part, ...], mirrored: ImageRef) -> dict[str, str] | str:
    """The new value of each field (by role) that must change for the fields to compose `mirrored`.

    The registry-bearing field takes the new registry; the name field changes only when the
    rule changes the name (flatten, a template); tag and digest only when the rule changes them.
    A string says why no field values can (a prefix field under a rule that changes names).
    """
    by_role = {part.role: part for part in parts}
    target = f"{mirrored.domain}/{mirrored.path}" if mirrored.domain else mirrored.path
    if prefix_only(parts):
        if not target.endswith(f"/{PROBE}"):
            return "the rule changes image names: mirror each image instead"
        slash = "/" if parts[0].value.endswith("/") else ""
        return {"prefix": target[: -len(PROBE) - 1] + slash}
    name = by_role["name"]
    wanted: dict[str, str] = {}
    prefix = by_role.get("prefix")
    # An empty registry before a name with no host of its own is where the chart puts one: its template
    # joins them (`{{ if .registry }}...`), or fills in a default of its own (longhorn's `docker.io`), which
    # a name edited to start with the mirror's host would then follow. So the mirror's host goes there.
    if prefix is not None and (prefix.value or not _names_its_host(name.value)):
        wanted["prefix"], wanted["name"] = _split(target, name.value)
    else:
        wanted["name"] = target
    tag, digest = _suffix(by_role)
    if (mirrored.tag or "", mirrored.digest or "") != (tag, digest):
        if "tag" in by_role and by_role["tag"].value.startswith("sha256:") and prefix is not None and prefix.key == "repository":
            wanted["tag"] = mirrored.digest or mirrored.tag or ""
        else:
            wanted["tag"] = mirrored.tag or ""
            wanted["digest"] = mirrored.digest or ""
    return {role: new for role, new in wanted.items() if new != (by_role[role].value if role in by_role else "")}


def _split(target: str, name: str) -> tuple[str, str]:
    """`target` cut into a registry-bearing prefix and a name, keeping as much of `name` as it can."""
    if target.endswith("/" + name):
        return target[: -len(name) - 1], name
    components = target.split("/")
    kept = name.split("/")
    common = 0
    while common < min(len(kept), len(components) - 1) and kept[-1 - common] == components[-1 - common]:
        common += 1
    common = max(common, 1)
    return "/".join(components[:-common]), "/".join(components[-common:])
