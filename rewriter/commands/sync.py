"""`kmirror sync PATH...`: copy the rewritten images their mirror lacks, with skopeo copy --all."""

from __future__ import annotations

from rewriter import console
from rewriter.commands import common, remote
from rewriter.console import EXIT_FINDINGS, EXIT_OK


def run(
    paths: list[str],
    dry_run: bool,
    username: str | None,
    password_stdin: bool,
    plain_http: bool,
    insecure: bool,
    exclude: list[str] | None,
    config: str | None,
    preset: str | None,
) -> int:
    """Copy (or with `dry_run` list) what the mirrors lack; the exit code (1 when a copy failed)."""
    from rewriter.registry import PRESENT
    from rewriter.sync import copy, find_skopeo

    login = remote.password(paths, username, password_stdin)
    settings = common.settings(config, preset, exclude)
    pairs = remote.pairs(common.all_outcomes(paths, settings))
    options = remote.registry_options(pairs, login, plain_http, insecure, settings)
    skopeo = find_skopeo() if not dry_run else ""
    answers = remote.mirror_answers(pairs, options, "kmirror: sync: checking")
    todo = [p for p in pairs if answers[str(p.mirror)].state != PRESENT]
    lines = [f"present: {p.push}\n" for p in pairs if p not in todo]
    failed = 0
    for n, pair in enumerate(todo, 1):
        if dry_run:
            lines.append(f"would copy: {pair.pull} -> {pair.push}\n")
            continue
        console.err(f"kmirror: copying [{n}/{len(todo)}] {pair.pull} -> {pair.push}")
        done = copy(skopeo, pair, options)
        if not done.ok:
            failed += 1
            detail = "".join(f"    {line}\n" for line in done.stderr.strip().splitlines())
            console.err(f"kmirror: skopeo failed (exit {done.returncode}): {' '.join(done.command)}\n{detail}".rstrip("\n"))
        lines.append(f"{'copied' if done.ok else 'failed'}: {pair.pull} -> {pair.push}\n")
    verb = "to copy" if dry_run else "copied"
    lines.append(f"{console.count(len(pairs), 'mirrored image')}: {len(pairs) - len(todo)} present, {len(todo) - failed} {verb}, {failed} failed\n")
    console.write("".join(lines))
    return EXIT_FINDINGS if failed else EXIT_OK
