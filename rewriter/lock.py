"""Does the mirror serve the same image as the source? `verify --same-digest`, and the lock file.

`verify --same-digest` compares, for every mirrored image the mirror has, the digest the
mirror serves for the tag with the one the source serves: a mirror run by a third party
can hold a stale or replaced image under the right tag. A difference is the state
DIFFERENT, a finding.

The lock (`images --format lock`) records, for each distinct source -> mirror pair, the
digest the source serves now (or the digest the source reference pins)::

    {"kmirror-lock": 1, "images": [{"source": "...", "mirror": "...", "digest": "sha256:..."}]}

`verify --lock FILE` later asks only the mirror registries whether each mirror reference
still serves the locked digest; the manifests and the source registries are not needed.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import NamedTuple

from rewriter.config import Config
from rewriter.errors import KmirrorError
from rewriter.files import read_text
from rewriter.inventory import Pair
from rewriter.pin import resolve
from rewriter.reference import ReferenceError, parse
from rewriter.registry import FAILED, PRESENT, Answer, Options, check, report_line

LOCK_KEY, LOCK_VERSION = "kmirror-lock", 1
DIFFERENT = "different"
Progress = Callable[[int, int], None]


def same_digest(pairs: list[Pair], answers: dict[str, Answer], options: Options, done: Progress) -> dict[str, Answer]:
    """`answers` (by mirror reference, with digests) where each PRESENT one is checked against the source's digest."""
    present = [p for p in pairs if answers[str(p.mirror)].state == PRESENT]
    sources = {str(a.ref): a for a in check(list({str(p.source): p.source for p in present}.values()), options, done, digests=True)}
    judged = dict(answers)
    for pair in present:
        mirror, source = answers[str(pair.mirror)], sources[str(pair.source)]
        if source.state != PRESENT:
            judged[str(pair.mirror)] = Answer(pair.mirror, FAILED, f"the source is {source.state}{': ' + source.detail if source.detail else ''}")
        elif mirror.digest != source.digest:
            judged[str(pair.mirror)] = Answer(pair.mirror, DIFFERENT, f"the mirror serves {mirror.digest}, the source {source.digest}", mirror.digest)
    return judged


class Locked(NamedTuple):
    """One lock entry: the source and mirror references as a copy tool names them, and the digest."""

    source: str
    mirror: str
    digest: str


def make_lock(pairs: list[Pair], config: Config, done: Progress) -> str:
    """The lock of `pairs`: digests from the source registries (or the references' own)."""
    digests = resolve([p.source for p in pairs if p.source.digest is None], config, done)
    images = [
        {"source": p.pull, "mirror": p.push, "digest": p.source.digest or digests[str(p.source)]}
        for p in pairs
    ]
    return json.dumps({LOCK_KEY: LOCK_VERSION, "images": images}, indent=2) + "\n"


def read_lock(path: str) -> list[Locked]:
    """The entries of the lock file at `path`; KmirrorError saying which entry is wrong and why."""
    try:
        data = json.loads(read_text(path, "lock"))
    except ValueError as exc:
        raise KmirrorError(f"cannot read lock: {path}: {exc}") from None
    if not isinstance(data, dict) or data.get(LOCK_KEY) != LOCK_VERSION or not isinstance(data.get("images"), list):
        raise KmirrorError(f"invalid lock: {path}: not a kmirror lock (written by kmirror images --format lock)")
    entries = []
    for n, item in enumerate(data["images"]):
        where = f"{path}: images[{n}]"
        if not isinstance(item, dict) or not all(isinstance(item.get(k), str) for k in Locked._fields):
            raise KmirrorError(f"invalid lock: {where}: expected source, mirror and digest strings")
        entry = Locked(item["source"], item["mirror"], item["digest"])
        try:
            parse(f"{entry.mirror.split('@')[0]}@{entry.digest}")  # the mirror reference and the digest, both valid
        except ReferenceError as exc:
            raise KmirrorError(f"invalid lock: {where}: {exc}") from None
        entries.append(entry)
    return entries


def check_lock(entries: list[Locked], options: Options, done: Progress) -> list[tuple[Locked, Answer]]:
    """Ask each entry's mirror registry for its digest; DIFFERENT when it is not the locked one."""
    refs = list({e.mirror: parse(e.mirror) for e in entries}.values())
    answers = {str(a.ref): a for a in check(refs, options, done, digests=True)}
    judged = []
    for entry in entries:
        answer = answers[str(parse(entry.mirror))]
        if answer.state == PRESENT and answer.digest != entry.digest:
            answer = Answer(answer.ref, DIFFERENT, f"the mirror serves {answer.digest}, the lock has {entry.digest}", answer.digest)
        judged.append((entry, answer))
    return judged


def lock_report(judged: list[tuple[Locked, Answer]]) -> tuple[str, bool]:
    """`verify --lock`'s output (what is wrong, then a summary) and whether every image is as locked."""
    lines = [report_line(entry.mirror, answer.state, answer.detail, entry.source) for entry, answer in judged if answer.state != PRESENT]
    counts = {state: sum(1 for _, a in judged if a.state == state) for state in (PRESENT, DIFFERENT, "missing", "denied", FAILED)}
    tally = ", ".join(f"{n} {state}" for state, n in counts.items() if n or state == PRESENT)
    lines.append(f"{len(judged)} locked images: {tally}\n")
    return "".join(lines), counts[PRESENT] == len(judged)
