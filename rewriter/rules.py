"""Mirror rules: map an image reference to its mirror; the first matching rule wins.

A rule's `from` is a registry host, or a host and leading path components
(`gcr.io/google-containers`), or one exact image (`docker.io/library/nginx:1.16`). It is
matched on the normalised reference, after `aliases`, on component boundaries. A rule
applies once, to the original reference: its result is never matched again, and neither
is a reference that already has the shape of a rule's result (a second run changes
nothing: issue 19).
"""

from __future__ import annotations

import functools
import re
from typing import NamedTuple

from rewriter.reference import DOMAIN_RE, PATH_RE, ImageRef, ReferenceError, endpoint, parse

PLACEHOLDERS = ("registry", "repository", "path", "path_dotted", "name")
_PLACEHOLDER_RE = re.compile(r"\{([^{}]*)\}")


class RuleError(ValueError):
    """A rule that cannot be used; the message says which part is wrong."""


class DigestError(ReferenceError):
    """A rule would drop or replace the digest a reference is pinned to; the message says how to fix the rule."""


class Prefix(NamedTuple):
    """A registry host plus zero or more leading repository components."""

    registry: str
    components: tuple[str, ...]

    def strip(self, ref: ImageRef) -> tuple[str, ...] | None:
        """The repository components after this prefix, or None when `ref` is not under it."""
        if ref.registry != self.registry:
            return None
        parts = tuple(ref.repository.split("/"))
        if parts[: len(self.components)] != self.components:
            return None
        return parts[len(self.components) :]

    def __str__(self) -> str:
        return "/".join((self.registry, *self.components))


def parse_prefix(text: str) -> Prefix:
    """Parse `host[/component...]`; the host becomes the registry a runtime contacts (`reference.endpoint`).

    The host and the components follow the reference grammar, so that a prefix which
    could never match a reference (`gcr.io/Google`, `gcr.io:x`) fails at load time.
    """
    host, _, path = text.strip("/").partition("/")
    if not host or ("." not in host and ":" not in host and host.lower() != "localhost"):
        raise RuleError(f"{text!r} does not start with a registry host (e.g. docker.io, gcr.io, localhost:5000)")
    if not DOMAIN_RE.fullmatch(host):
        raise RuleError(f"{text!r}: invalid registry host {host!r}")
    host = endpoint(host)
    components = tuple(path.split("/")) if path else ()
    if any(not c for c in components):
        raise RuleError(f"{text!r} has an empty path component")
    if path and not PATH_RE.fullmatch(path):
        raise RuleError(
            f"{text!r}: invalid repository path {path!r}: components are lower-case letters and digits "
            "joined by '.', '_', '__' or '-'"
        )
    return Prefix(host, components)


class Rule(NamedTuple):
    """One `mirrors` entry. `to` is None for a `keep` rule (matched, left unchanged)."""

    source: str
    to: str | None
    flatten: bool = False
    prefix: Prefix | None = None
    exact: ImageRef | None = None

    @property
    def registry(self) -> str:
        """The registry this rule matches."""
        return self.prefix.registry if self.prefix is not None else self.exact.registry  # type: ignore[union-attr]

    def describe(self) -> str:
        """A short description for `explain` (`k8s.gcr.io -> registry.aliyuncs.com/... (flatten)`)."""
        if self.to is None:
            return f"{self.source} (keep)"
        return f"{self.source} -> {self.to}" + (" (flatten)" if self.flatten else "")

    def apply(self, ref: ImageRef) -> ImageRef | None:
        """The mirrored reference when this rule matches `ref`, else None (`keep` returns `ref`)."""
        if self.exact is not None:
            if not _same_image(self.exact, ref):
                return None
            rest: tuple[str, ...] = ()
        else:
            assert self.prefix is not None
            stripped = self.prefix.strip(ref)
            if stripped is None:
                return None
            rest = stripped
        if self.to is None:
            return ref
        result = _build(self.to, ref, rest, self.flatten, self.exact is not None)
        # A digest is what a pin means: it travels, or a rule that names it in `from` replaces it by another.
        if ref.digest is not None and result.digest != ref.digest:
            named = self.exact is not None and self.exact.digest == ref.digest and result.digest is not None
            if not named:
                raise DigestError(
                    f"pinned by digest, and the rule {self.describe()} would drop the digest: give `to` without a tag "
                    "(the tag and digest travel) or name the digest in both `from` and `to`"
                )
        return result

    def produces(self, ref: ImageRef) -> bool:
        """True when `ref` has the shape of this rule's results (its name is one `to` can give)."""
        if self.to is None:
            return False
        return _results(self.to).fullmatch(f"{ref.registry}/{ref.repository}") is not None


def make_rule(source: str, to: str | None, flatten: bool = False) -> Rule:
    """Build a rule, checking `from`, `to` and their combination; raise RuleError."""
    exact: ImageRef | None = None
    prefix: Prefix | None = None
    last = source.rsplit("/", 1)[-1]
    if "/" in source and (":" in last or "@" in source):
        try:
            exact = parse(source)
        except ReferenceError as exc:
            raise RuleError(f"{source!r} is not a valid image reference: {exc}") from None
    else:
        prefix = parse_prefix(source)
    if to is not None:
        _check_target(to, flatten, exact is not None)
    return Rule(source=source, to=to, flatten=flatten, prefix=prefix, exact=exact)


def _check_target(to: str, flatten: bool, exact: bool) -> None:
    names = _PLACEHOLDER_RE.findall(to)
    for found in names:
        if found not in PLACEHOLDERS:
            raise RuleError(f"unknown placeholder {{{found}}} (known: {', '.join('{' + p + '}' for p in PLACEHOLDERS)})")
    if names and flatten:
        raise RuleError("flatten cannot be combined with a template; use {name}")
    if not names and ("{" in to or "}" in to):
        raise RuleError(f"unbalanced brace in {to!r}")
    # Check the target with a sample substitution so that a typo fails at load time.
    sample = _PLACEHOLDER_RE.sub("x", to)
    try:
        parse(sample if names or exact else sample + "/x")
    except ReferenceError as exc:
        raise RuleError(f"{to!r} does not give a valid image reference: {exc}") from None


def _same_image(pattern: ImageRef, ref: ImageRef) -> bool:
    if (pattern.registry, pattern.repository) != (ref.registry, ref.repository):
        return False
    if pattern.tag is not None and pattern.tag != ref.tag:
        return False
    return pattern.digest is None or pattern.digest == ref.digest


def _build(to: str, ref: ImageRef, rest: tuple[str, ...], flatten: bool, exact: bool) -> ImageRef:
    if "{" in to:
        values = {
            "registry": ref.registry,
            "repository": ref.repository,
            "path": "/".join(rest),
            "path_dotted": ".".join(rest),
            "name": ref.repository.rsplit("/", 1)[-1],
        }
        text = _PLACEHOLDER_RE.sub(lambda m: values[m.group(1)], to)
    elif exact or not rest:
        text = to
    elif flatten:
        text = f"{to}/{rest[-1]}"
    else:
        text = f"{to}/{'/'.join(rest)}"
    target = parse(text)
    if target.tag is None and target.digest is None:
        target = ImageRef(target.domain, target.path, ref.tag, ref.digest)
    return target


_MARKER = "kmirror{}z"  # stands for a placeholder's value: a valid host component and path component
_SPANS = {"registry": "[^/]+", "repository": ".+", "path": ".+", "path_dotted": "[^/]+", "name": "[^/]+"}


@functools.lru_cache(maxsize=256)
def _results(to: str) -> re.Pattern[str]:
    """The normalised names (`registry/repository`) a rule with this `to` gives, as a pattern.

    A prefix gives itself or names under it; a template, its text with each placeholder
    standing for any value (found by substituting markers and normalising the result).
    """
    names = _PLACEHOLDER_RE.findall(to)
    if not names:
        alternatives = [re.escape(_name(to))]
        try:
            alternatives.append(re.escape(_name(to + "/x/y")[: -len("/x/y")]) + "/.+")
        except ReferenceError:  # `to` with a tag: an exact image's target
            pass
        return re.compile("|".join(alternatives))
    markers = [_MARKER.format(i) + (".invalid" if name == "registry" else "") for i, name in enumerate(names)]  # a registry is a host
    values = iter(markers)
    sample = _PLACEHOLDER_RE.sub(lambda _: next(values), to)
    pattern = re.escape(_name(sample))
    for marker, name in zip(markers, names):
        pattern = pattern.replace(re.escape(marker), _SPANS[name], 1)
    if pattern.startswith(re.escape("docker.io/library/")) and not sample.startswith(("docker.io/library/", "library/")):
        # Normalising added `library/` to the one-component sample; a value with a `/` gets none.
        pattern = re.escape("docker.io/") + "(?:library/)?" + pattern[len(re.escape("docker.io/library/")) :]
    return re.compile(pattern)


def _name(text: str) -> str:
    ref = parse(text)
    return f"{ref.registry}/{ref.repository}"


class Decision(NamedTuple):
    """What the rules say about one reference: the mirror (None: unchanged) and why."""

    ref: ImageRef
    mirrored: ImageRef | None
    rule: Rule | None
    blocked: bool
    allowed: bool

    @property
    def final(self) -> ImageRef:
        """The reference after rewriting (the original when no rule changes it)."""
        return self.mirrored if self.mirrored is not None else self.ref


class RuleSet:
    """Ordered rules (user rules, then the preset's), aliases, blocked and allowed prefixes.

    It remembers each reference's decision, so it is a class of its own, not a NamedTuple.
    """

    __slots__ = ("rules", "aliases", "blocked", "allow", "_decided")

    def __init__(
        self,
        rules: tuple[Rule, ...] = (),
        aliases: tuple[tuple[Prefix, Prefix], ...] = (),
        blocked: frozenset[str] = frozenset(),
        allow: tuple[Rule, ...] = (),
    ) -> None:
        self.rules = rules
        self.aliases = aliases
        self.blocked = blocked
        self.allow = allow
        self._decided: dict[ImageRef, Decision] = {}

    def _key(self) -> tuple[object, ...]:
        return self.rules, self.aliases, self.blocked, self.allow

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RuleSet) and self._key() == other._key()

    def __repr__(self) -> str:
        return f"RuleSet(rules={self.rules!r}, aliases={self.aliases!r}, blocked={self.blocked!r}, allow={self.allow!r})"

    def allowing(self, extra: tuple[Rule, ...]) -> RuleSet:
        """These rules with `extra` allowed too."""
        return RuleSet(self.rules, self.aliases, self.blocked, self.allow + extra)

    def canonical(self, ref: ImageRef) -> ImageRef:
        """`ref` with the first matching alias applied (`k8s.gcr.io/x` -> `gcr.io/google-containers/x`)."""
        for alias, target in self.aliases:
            rest = alias.strip(ref)
            if rest is not None:
                path = "/".join((*target.components, *rest))
                return ImageRef(target.registry, path, ref.tag, ref.digest)
        return ref

    def decide(self, ref: ImageRef) -> Decision:
        """Apply the first matching rule to `ref` (after aliases) and judge the result (once per reference)."""
        decision = self._decided.get(ref)
        if decision is None:
            decision = self._decided[ref] = self._decide(ref)
        return decision

    def _decide(self, ref: ImageRef) -> Decision:
        for rule in self.rules:
            if rule.produces(ref):  # already mirrored: left alone, and never blocked
                return Decision(ref=ref, mirrored=None, rule=rule, blocked=False, allowed=True)
        matched = self.canonical(ref)
        for rule in self.rules:
            result = rule.apply(matched)
            if result is not None:
                mirrored = None if rule.to is None or str(result) == str(ref) else result
                return self._judge(ref, mirrored, rule)
        return self._judge(ref, None, None)

    def _judge(self, ref: ImageRef, mirrored: ImageRef | None, rule: Rule | None) -> Decision:
        allowed = any(a.apply(ref) is not None for a in self.allow)
        # A rule's result is a mirror: the next run leaves it alone (see _decide), so it is never blocked.
        blocked = mirrored is None and ref.registry in self.blocked and not allowed
        return Decision(ref=ref, mirrored=mirrored, rule=rule, blocked=blocked, allowed=allowed)
