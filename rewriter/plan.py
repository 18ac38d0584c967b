"""Decide, for every located reference, its mirror, the edit and the findings (pure)."""

from __future__ import annotations

from typing import NamedTuple

from rewriter import compose
from rewriter.findings import BAD_RESULT, BLOCKED, UNSAFE, Finding
from rewriter.locate import Location
from rewriter.reference import ImageRef, ReferenceError
from rewriter.rules import Decision, DigestError, RuleSet
from rewriter.splice import Edit
from rewriter.stream import Source


class Image(NamedTuple):
    """A located reference, its parse, its decision and its 1-based position.

    `on_blocked` is true when the reference as written is on a blocked registry and
    not allowed; `decision.blocked` says the same of the reference after rewriting.
    """

    location: Location
    ref: ImageRef
    decision: Decision
    line: int
    column: int
    on_blocked: bool


class Plan(NamedTuple):
    """The images of one stream, the edits that mirror them, and problems found on the way."""

    images: tuple[Image, ...]
    edits: tuple[Edit, ...]
    problems: tuple[Finding, ...]


def plan(source: Source, locations: list[Location], rules: RuleSet) -> Plan:
    """Apply `rules` once to each reference; unsafe spans and bad results become findings."""
    images: list[Image] = []
    edits: list[Edit] = []
    problems: list[Finding] = []
    for location in locations:
        line, column = source.position(location.start)
        ref = compose.reference(location.text, location.parts)
        try:
            decision = rules.decide(ref)
        except DigestError as exc:
            problems.append(_finding(source, location, line, column, UNSAFE, f"{location.text}: {exc}", None))
            continue
        except ReferenceError as exc:
            problems.append(_finding(source, location, line, column, BAD_RESULT, f"{location.text}: the matching rule gives an invalid reference: {exc}", None))
            continue
        on_blocked = ref.registry in rules.blocked and not decision.allowed
        narrower = compose.narrower(rules, ref, decision.rule) if compose.prefix_only(location.parts) else None
        if narrower is not None:  # the field cannot follow the rules: it stays as written
            decision = Decision(ref, None, decision.rule, blocked=on_blocked, allowed=decision.allowed)
        images.append(Image(location, ref, decision, line, column, on_blocked))
        if narrower is not None:
            message = f"{location.text} is a registry field shared by several images, and rule {narrower.describe()} mirrors only some of them: mirror each image instead"
            problems.append(_finding(source, location, line, column, UNSAFE, message, None))
            continue
        if decision.mirrored is None:
            continue
        found = image_edits(images[-1])
        if isinstance(found, list):
            edits.extend(found)
            continue
        new = compose.shown(decision.mirrored)
        if compose.prefix_only(location.parts):
            message = f"{location.text} is a registry field shared by several images; {found}"
        elif location.parts:
            message = f"{location.text} is composed from fields {_keys(location)}; the rule gives {new}, which editing them cannot write: {found} by hand"
        else:
            message = f"{location.text} cannot be rewritten safely (written with escapes or split); change it to {new} by hand"
        problems.append(_finding(source, location, line, column, UNSAFE, message, new))
    return Plan(tuple(images), tuple(edits), tuple(problems))


def image_edits(image: Image) -> list[Edit] | str:
    """The edits that mirror one image (none when no rule changes it), or what to write by hand."""
    location, mirrored = image.location, image.decision.mirrored
    if mirrored is None:
        return []
    if location.parts:
        return compose.edits(location.parts, mirrored)
    if not location.safe:
        return f"change {location.text} to {mirrored}"
    return [Edit(location.start, location.end, location.text, str(mirrored))]


def _unmirrored(image: Image) -> str:
    """Why an image has no mirror: no rule, or (a shared registry field) rules that differ by image."""
    rule = image.decision.rule
    if compose.prefix_only(image.location.parts) and rule is not None and rule.to is not None:
        return "the rules differ by image under it: see KM002"
    return "no rule"


def _keys(location: Location) -> str:
    return "/".join(part.key for part in location.parts)


def blocked_findings(source: Source, images: tuple[Image, ...], after_rewrite: bool) -> list[Finding]:
    """KM001 for references on blocked registries: as written, or as left after rewriting."""
    result = []
    for image in images:
        decision = image.decision
        mirrored = compose.shown(decision.mirrored) if decision.mirrored is not None else None
        if after_rewrite:
            if not decision.blocked:
                continue
            shown = decision.final
            hint = f"rule gives {mirrored}, still blocked" if mirrored else _unmirrored(image)
        else:
            if not image.on_blocked:
                continue
            shown = decision.ref
            hint = f"mirror: {mirrored}" if mirrored else _unmirrored(image)
        message = f"{compose.shown(shown)} is on blocked registry {shown.registry} ({hint})"
        result.append(_finding(source, image.location, image.line, image.column, BLOCKED, message, mirrored))
    return result


def _finding(source: Source, location: Location, line: int, column: int, code: str, message: str, suggested: str | None) -> Finding:
    return Finding(
        code=code, message=message, file=source.name, line=line, column=column, ref=location.text,
        registry=compose.reference(location.text, location.parts).registry, suggested=suggested, resource=location.resource, path=location.path,
    )
