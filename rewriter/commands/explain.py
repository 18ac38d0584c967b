"""`kmirror explain REF...`: how references parse and normalise, and which rule maps them to what."""

from __future__ import annotations

import json

from rewriter import console
from rewriter.config import Config
from rewriter.console import EXIT_OK
from rewriter.errors import KmirrorError, printable
from rewriter.reference import ReferenceError, normalization, parse
from rewriter.rules import Decision


def run(refs: list[str], format: str, config: str | None, preset: str | None) -> int:
    """Explain each reference in `format` (text or json); the exit code."""
    if format not in ("text", "json"):
        raise KmirrorError(f"invalid option: --format: {format!r}: choose one of text, json")
    settings = console.settings(config, preset)
    rows = [_explain(text, settings) for text in refs]
    if format == "json":
        console.write(json.dumps(rows, indent=2) + "\n")
    else:
        console.write("".join(_explain_text(row) for row in rows))
    return EXIT_OK


def _explain(text: str, settings: Config) -> dict[str, object]:
    row: dict[str, object] = dict.fromkeys(("input", "valid", "error", "registry", "repository", "tag", "digest", "normalized", "normalization", "mirrored", "rule", "blocked"))
    row.update(input=text, valid=False, blocked=False)
    try:
        ref = parse(text)
        decision = settings.rules.decide(ref)
    except ReferenceError as exc:
        row["error"] = str(exc)
        return row
    row.update(
        valid=True,
        registry=ref.registry,
        repository=ref.repository,
        tag=ref.tag,
        digest=ref.digest,
        normalized=ref.normalized,
        normalization=normalization(ref),
        mirrored=str(decision.mirrored) if decision.mirrored is not None else None,
        rule=_rule_text(decision),
        blocked=decision.blocked,
    )
    return row


def _rule_text(decision: Decision) -> str | None:
    if decision.rule is None:
        return None
    done = decision.mirrored is None and decision.rule.to is not None  # the reference is this rule's result already
    return decision.rule.describe() + (" (already its result: left alone)" if done else "")


def _explain_text(row: dict[str, object]) -> str:
    if not row["valid"]:
        return f"{printable(str(row['input']))}\n  invalid: {printable(str(row['error']))}\n"
    lines = [
        printable(str(row["input"])),
        f"  normalized: {row['normalized']}",
        *(f"    ({step})" for step in row["normalization"]),  # type: ignore[attr-defined]
        f"  registry:   {row['registry']}   repository: {row['repository']}   tag: {row['tag'] or '-'}   digest: {row['digest'] or '-'}",
        f"  rule:       {row['rule'] or '(none)'}",
        f"  mirrored:   {row['mirrored'] or '(unchanged)'}",
        f"  blocked:    {'yes' if row['blocked'] else 'no'}",
    ]
    return "\n".join(lines) + "\n"
