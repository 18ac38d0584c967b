"""Digest pinning (`--pin`): each rewritten reference becomes `MIRROR:TAG@sha256:...`.

The digest is the one the source registry serves for the reference's tag (what upstream
published; `--pin-from mirror` asks the mirror instead, for sites that cannot reach the
source). For a multi-arch image it is the index's digest, which is what a runtime
resolves the tag to. A reference that already has a digest keeps it, and a reference no
rule rewrites is left as written. Every digest is resolved before anything is written: a
registry that cannot be reached, or that lacks the image, is a KmirrorError naming the
image (exit 2, nothing written). Pinning from the source is refused for a rule that
changes the tag (the source's digest would not be the mirror's).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from rewriter.access import registry_options
from rewriter.config import Config
from rewriter.errors import KmirrorError
from rewriter.pipeline import Outcome
from rewriter.plan import Image
from rewriter.reference import ImageRef
from rewriter.registry import PRESENT, check
from rewriter.splice import Edit, splice

SOURCES = ("source", "mirror")


def pin(outcomes: list[Outcome], config: Config, pin_from: str, done: Callable[[int, int], None]) -> list[Outcome]:
    """`outcomes` with every rewritten reference that has no digest pinned to the one `pin_from` serves."""
    if pin_from not in SOURCES:
        raise KmirrorError(f"invalid option: --pin-from: {pin_from!r}: choose source or mirror")
    asked = {str(ref): ref for image in _images(outcomes) if (ref := asked_for(image, pin_from)) is not None}
    digests = resolve(list(asked.values()), config, done)
    return [_pinned(outcome, digests, pin_from) for outcome in outcomes]


def asked_for(image: Image, pin_from: str) -> ImageRef | None:
    """The reference whose digest pins `image` (None when it needs none); KmirrorError when it cannot be pinned."""
    mirrored = image.decision.mirrored
    if mirrored is None or mirrored.digest is not None or not image.location.safe:
        return None
    if pin_from == "mirror":
        return mirrored
    if mirrored.tag != image.ref.tag:
        raise KmirrorError(
            f"cannot pin: {image.location.text}: its rule changes the tag ({image.ref.tag or 'latest'} -> {mirrored.tag}), "
            "so the source's digest is not the mirror's; use --pin-from mirror"
        )
    return image.ref


def resolve(refs: list[ImageRef], config: Config, done: Callable[[int, int], None]) -> dict[str, str]:
    """The digest each reference's registry serves, by `str(ref)`; KmirrorError naming the first that fails."""
    options = registry_options(config, [], None, plain_http=False, insecure=False)
    digests: dict[str, str] = {}
    for host in sorted({ref.registry for ref in refs}):
        wanted = [ref for ref in refs if ref.registry == host]
        try:
            answers = check(wanted, options, lambda n, total: done(len(digests) + n, len(refs)), digests=True)
        except KmirrorError as exc:
            raise KmirrorError(f"cannot pin: {wanted[0]}{_more(len(wanted))}: {exc}") from None
        for answer in answers:
            if answer.state != PRESENT or answer.digest is None:
                raise KmirrorError(f"cannot pin: {answer.ref}: {answer.state}{': ' + answer.detail if answer.detail else ''}")
            digests[str(answer.ref)] = answer.digest
    return digests


def _more(n: int) -> str:
    return f" (and {n - 1} more on its registry)" if n > 1 else ""


def _images(outcomes: Iterable[Outcome]) -> Iterable[Image]:
    return (image for outcome in outcomes for image in outcome.images)


def _pinned(outcome: Outcome, digests: dict[str, str], pin_from: str) -> Outcome:
    edits = []
    for image in outcome.images:
        mirrored = image.decision.mirrored
        if mirrored is None or not image.location.safe:
            continue
        ref = asked_for(image, pin_from)
        new = str(mirrored) if ref is None else f"{mirrored}@{digests[str(ref)]}"
        edits.append(Edit(image.location.start, image.location.end, image.location.text, new))
    if not edits:
        return outcome
    return outcome._replace(output=outcome.source.render(splice(outcome.source.data, edits)))
