"""`kmirror verify PATH...`: ask the mirror registries whether every rewritten image exists."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

from rewriter import console
from rewriter.commands import common, remote
from rewriter.commands.check import load_allowlist
from rewriter.console import EXIT_FINDINGS, EXIT_OK

if TYPE_CHECKING:
    from rewriter.inventory import Pair
    from rewriter.registry import Answer


def run(
    paths: list[str],
    allowlist: str | None,
    username: str | None,
    password_stdin: bool,
    plain_http: bool,
    insecure: bool,
    exclude: list[str] | None,
    config: str | None,
    preset: str | None,
) -> int:
    """List the mirrored images the mirrors lack (or their allow-list refuses); the exit code."""
    login = remote.password(paths, username, password_stdin)
    allowed = load_allowlist(allowlist)
    pairs = remote.pairs(common.all_outcomes(paths, common.settings(config, preset, exclude)))
    refused = [p for p in pairs if allowed is not None and not allowed.covers(p.source.registry, p.source.repository)]
    asked = [p for p in pairs if p not in refused]
    answers = remote.mirror_answers(asked, remote.registry_options(asked, login, plain_http, insecure), "kmirror: verify")
    return _write_verify(pairs, refused, answers)


def _write_verify(pairs: list[Pair], refused: list[Pair], answers: dict[str, Answer]) -> int:
    from rewriter.registry import PRESENT

    lines = []
    counts: Counter[str] = Counter()
    for pair in pairs:
        if pair in refused:
            state, detail = "not allowed", "not on the mirror's allow-list"
        else:
            answer = answers[str(pair.mirror)]
            state, detail = answer.state, answer.detail
        counts[state] += 1
        if state != PRESENT:
            lines.append(f"{pair.mirror}: {state}{': ' + detail if detail else ''} (source {pair.source})\n")
    if not pairs:
        lines.append("no rewritten images to verify\n")
    else:
        tally = ", ".join(f"{counts[s]} {s}" for s in (PRESENT, "missing", "denied", "failed", "not allowed") if counts[s] or s == PRESENT)
        lines.append(f"{console.count(len(pairs), 'mirrored image')}: {tally}\n")
    console.write("".join(lines))
    return EXIT_OK if counts[PRESENT] == len(pairs) else EXIT_FINDINGS
