"""`kmirror verify PATH...`: ask the mirror registries whether every rewritten image exists."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

from rewriter import console
from rewriter.commands import common, remote
from rewriter.commands.check import load_allowlist
from rewriter.console import EXIT_FINDINGS, EXIT_OK
from rewriter.errors import KmirrorError
from rewriter.reference import parse

if TYPE_CHECKING:
    from rewriter.inventory import Pair
    from rewriter.registry import Answer


def run(
    paths: list[str] | None,
    same_digest: bool,
    lock: str | None,
    allowlist: str | None,
    username: str | None,
    password_stdin: bool,
    plain_http: bool,
    insecure: bool,
    exclude: list[str] | None,
    config: str | None,
    preset: str | None,
) -> int:
    """List the mirrored images the mirrors lack (or their allow-list refuses, or serve another digest); the exit code."""
    if lock is not None:
        return _verify_lock(lock, paths, same_digest or allowlist is not None, username, password_stdin, plain_http, insecure, config, preset)
    if not paths:
        raise KmirrorError("invalid option: PATH: give the manifests to verify (or --lock FILE)")
    login = remote.password(paths, username, password_stdin)
    allowed = load_allowlist(allowlist)
    settings = common.settings(config, preset, exclude)
    pairs = remote.pairs(common.all_outcomes(paths, settings))
    refused = [p for p in pairs if allowed is not None and not allowed.covers(p.source.registry, p.source.repository)]
    asked = [p for p in pairs if p not in refused]
    options = remote.registry_options(asked, login, plain_http, insecure, settings)
    answers = remote.mirror_answers(asked, options, "kmirror: verify", digests=same_digest)
    if same_digest:
        from rewriter.access import progress
        from rewriter.lock import same_digest as judge

        answers = judge(asked, answers, options, progress("kmirror: verify: sources"))
    return _write_verify(pairs, refused, answers)


def _verify_lock(lock: str, paths: list[str] | None, other: bool, username: str | None, password_stdin: bool, plain_http: bool, insecure: bool, config: str | None, preset: str | None) -> int:
    from rewriter.access import progress, registry_options
    from rewriter.lock import check_lock, lock_report, read_lock

    if paths or other:
        raise KmirrorError("invalid option: --lock: the lock replaces the manifests: give no PATH, --same-digest or --allowlist")
    login = remote.password([], username, password_stdin)
    entries = read_lock(lock)
    hosts = sorted({parse(e.mirror).registry for e in entries})
    options = registry_options(common.settings(config, preset, None), hosts, login, plain_http, insecure)
    text, same = lock_report(check_lock(entries, options, progress("kmirror: verify")))
    console.write(text)
    return EXIT_OK if same else EXIT_FINDINGS


def _write_verify(pairs: list[Pair], refused: list[Pair], answers: dict[str, Answer]) -> int:
    from rewriter.registry import PRESENT, report_line

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
            lines.append(report_line(pair.mirror, state, detail, pair.source))
    if not pairs:
        lines.append("no rewritten images to verify\n")
    else:
        tally = ", ".join(f"{counts[s]} {s}" for s in (PRESENT, "different", "missing", "denied", "failed", "not allowed") if counts[s] or s == PRESENT)
        lines.append(f"{console.count(len(pairs), 'mirrored image')}: {tally}\n")
    console.write("".join(lines))
    return EXIT_OK if counts[PRESENT] == len(pairs) else EXIT_FINDINGS
