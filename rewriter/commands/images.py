"""`kmirror images PATH...`: every image reference found, with its mirror, or a copy list."""

from __future__ import annotations

import json

from rewriter import compose, console
from rewriter.commands import common
from rewriter.console import EXIT_OK
from rewriter.errors import KmirrorError, printable
from rewriter.pipeline import Outcome
from rewriter.plan import Image


def run(paths: list[str], format: str, output_file: str | None, exclude: list[str] | None, config: str | None, preset: str | None) -> int:
    """List the references in `format`; the exit code."""
    from rewriter import inventory

    formats = ("text", "json", *inventory.FORMATS, "kustomize", "lock")
    if format not in formats:
        raise KmirrorError(f"invalid option: --format: {format!r}: choose one of {', '.join(formats)}")
    settings = common.settings(config, preset, exclude)
    outcomes = common.all_outcomes(paths, settings)
    rows = [_image_row(o, image) for o in outcomes for image in o.images]
    if format == "kustomize":
        text = _kustomize_images(outcomes)
    elif format == "lock":
        from rewriter.access import progress
        from rewriter.commands.remote import pairs
        from rewriter.lock import make_lock

        text = make_lock(pairs(outcomes), settings, progress("kmirror: lock"))
    elif format in inventory.FORMATS:
        text = inventory.render(inventory.unique_pairs(image for o in outcomes for image in o.images), format)
    elif format == "json":
        text = json.dumps(rows, indent=2) + "\n"
    else:
        text = "".join(printable(f"{r['file']}:{r['line']}:{r['column']}: {r['ref']} -> {r['mirrored'] or '(unchanged)'}") + "\n" for r in rows)
    common.report(text, output_file)
    return EXIT_OK


def _image_row(outcome: Outcome, image: Image) -> dict[str, object]:
    decision = image.decision
    return {
        "file": outcome.source.name,
        "document": image.location.document,
        "path": image.location.path,
        "line": image.line,
        "column": image.column,
        "ref": image.location.text,
        "normalized": compose.shown(image.ref.normalized),
        "registry": image.ref.registry,
        "mirrored": compose.shown(decision.mirrored) if decision.mirrored is not None else None,
        "blocked": decision.blocked,
    }


def _kustomize_images(outcomes: list[Outcome]) -> str:
    from rewriter.kustomize import Placed, images_list

    listed = images_list(Placed(o.source.name, image) for o in outcomes for image in o.images)
    for left in listed.unreached:
        console.err(
            f"kmirror: note: {left.where()}: {left.image.location.text} ({left.image.location.resource} {left.image.location.path}) "
            "is not in containers/initContainers: kustomize's images transformer leaves it unchanged"
        )
    return listed.to_yaml()
