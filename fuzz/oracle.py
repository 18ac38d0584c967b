"""What every input must do, for the fuzz targets and tests/test_fuzz.py: the oracle.

`check_stream(data)`: any bytes either fail with the one user-facing error
(KmirrorError, which the command line prints as `kmirror: error: ...` with exit 2) or
rewrite, and a rewrite keeps kmirror's promises:

- no rules: the output is the input, byte for byte;
- every character outside the edit spans is unchanged;
- a second run changes nothing and fails on nothing;
- the output composes to the same node tree, each edited scalar holding the mirrors;
- findings render in every report format;
- no warning reaches standard error.

`check_reference(text)`: any string either parses as an image reference or raises
ReferenceError; a parsed reference prints back as written, and applying the rules to
it gives a valid reference or a ReferenceError.

Any other exception, or a failed assertion, is a bug the fuzzer reports.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable

from ruamel.yaml.error import YAMLError
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from rewriter.config import Config, parse_config
from rewriter.errors import KmirrorError
from rewriter.pipeline import Outcome, process
from rewriter.plan import image_edits
from rewriter.reference import ReferenceError, parse
from rewriter.report import FORMATS, render
from rewriter.stream import compose_text

NAME = "fuzz.yaml"
# Mirrors on hosts that no input is likely to hold already, so that the edits can be undone to compare values.
RULES = parse_config(
    """
mirrors:
  - {from: quay.io/keep, keep: true}
  - {from: quay.io, to: mirror.invalid/quay}
  - {from: docker.io, to: mirror.invalid/hub}
  - {from: registry.k8s.io, to: mirror.invalid/k8s, flatten: true}
  - {from: localhost:5000, to: "mirror.invalid/{path_dotted}"}
blocked: [docker.io, quay.io, gcr.io]
""",
    "fuzz-rules.yaml",
)
# User field paths turn the textual prefilter off: every document is composed and walked.
FIELD_RULES = parse_config(
    """
mirrors:
  - {from: ghcr.io, to: mirror.invalid/ghcr}
fields:
  - {path: spec/runner/image}
  - {path: x/y}
""",
    "fuzz-fields.yaml",
)
NO_RULES = parse_config("", "fuzz-empty.yaml")
# Warning categories a caller accepts for now (tests/test_fuzz.py, until a reported bug is fixed).
TOLERATED_WARNINGS: list[type[Warning]] = []


def check_stream(data: bytes) -> None:
    """Run `data` through the whole rewrite with no rules and with two rule sets."""
    if _rewrite(data, NO_RULES) is None:
        return
    for config in (RULES, FIELD_RULES):
        _rewrite(data, config)


def _rewrite(data: bytes, config: Config) -> Outcome | None:
    """The outcome, after checking every promise; None when kmirror refused the input cleanly."""
    try:
        outcome = _quietly(process, data, config)
    except KmirrorError as exc:
        message = str(exc)
        assert message and "\n" not in message and NAME in message, f"unhelpful error: {message!r}"
        return None
    output = outcome.output
    if config is NO_RULES:
        assert output == data, "no rules, yet the output differs from the input"
        assert not outcome.changed
    assert outcome.output == outcome.source.render(_edited(outcome)), "text outside the edit spans changed"
    again = _quietly(process, output, config)
    assert again.output == output, "a second run changed the output"
    _same_tree(outcome)
    for after in (False, True):
        findings = outcome.findings(after_rewrite=after)
        for finding in findings:
            assert "\n" not in finding.text()
        for fmt in FORMATS:
            shown = render(findings, fmt, 1)
            if fmt in ("json", "sarif", "gitlab"):
                json.loads(shown)
    return outcome


def _quietly(run: Callable[[bytes, str, Config], Outcome], data: bytes, config: Config) -> Outcome:
    """`run(data, NAME, config)`, failing on any warning: Python would print it on standard error."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for category in TOLERATED_WARNINGS:
            warnings.simplefilter("ignore", category)
        outcome = run(data, NAME, config)
    assert not caught, f"a warning reached standard error: {caught[0].category.__name__}: {caught[0].message}"
    return outcome


def _edits(outcome: Outcome) -> list[tuple[int, int, str, str]]:
    """(start, end, old, new) of every edit, in stream order (byte offsets)."""
    edits = []
    for image in outcome.images:
        found = image_edits(image)  # a composed image is edited field by field (rewriter/compose.py)
        if isinstance(found, list):
            edits.extend((edit.start, edit.end, edit.old, edit.new) for edit in found)
    return sorted(edits)


def _edited(outcome: Outcome) -> bytes:
    """The input with each edit applied, built independently of splice."""
    data = outcome.source.data
    pieces, cursor = [], 0
    for start, end, old, new in _edits(outcome):
        assert data[start:end] == old.encode("utf-8"), f"edit span {start}:{end} is not {old!r}"
        assert start >= cursor, "overlapping edits"
        pieces += [data[cursor:start], new.encode("utf-8")]
        cursor = end
    return b"".join(pieces) + data[cursor:]


def _characters(data: bytes, offset: int) -> int:
    """The character offset of a byte offset (node marks count characters, edits bytes)."""
    return len(data[:offset].decode("utf-8"))


def _same_tree(outcome: Outcome) -> None:

    """Input and output compose to the same nodes; an edited scalar differs only by its mirrors."""
    data = outcome.source.data
    edits = [(_characters(data, s), _characters(data, e), old, new) for s, e, old, new in _edits(outcome)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the oracle's own reading; kmirror's is checked by _quietly
        try:
            before = compose_text(outcome.source.text)
        except (YAMLError, RecursionError):
            # kmirror composes a stream one document at a time, as kubectl does, so it accepts a
            # bare document after `...` that libyaml refuses in a whole stream; it also leaves a
            # document deeper than Python's composer goes unread when it cannot hold a reference.
            return
        after = compose_text(outcome.output.decode("utf-8").removeprefix("\ufeff"))

    assert len(before) == len(after), "the output has a different number of documents"
    pairs: list[tuple[Node | None, Node | None]] = list(zip(before, after))
    seen: set[int] = set()
    while pairs:  # iterative: a deep document must not exhaust the oracle's own stack
        old_node, new_node = pairs.pop()
        if old_node is None or new_node is None:
            assert old_node is None and new_node is None
            continue
        assert type(old_node) is type(new_node) and old_node.tag == new_node.tag, "node kinds or tags differ"
        if isinstance(old_node, ScalarNode):
            if old_node.value != new_node.value:
                begin, end = old_node.start_mark.index, old_node.end_mark.index
                undone = new_node.value
                for _, new, old in sorted((-len(n), n, o) for s, e, o, n in edits if begin <= s and e <= end):
                    undone = undone.replace(new, old)
                assert undone == old_node.value, f"scalar {old_node.value!r} became {new_node.value!r}"
            continue
        if id(old_node) in seen:
            continue
        seen.add(id(old_node))
        assert len(old_node.value) == len(new_node.value), "a collection changed its length"
        if isinstance(old_node, MappingNode):
            for (old_key, old_value), (new_key, new_value) in zip(old_node.value, new_node.value):
                pairs += [(old_key, new_key), (old_value, new_value)]
        elif isinstance(old_node, SequenceNode):
            pairs += list(zip(old_node.value, new_node.value))


def check_reference(text: str) -> None:
    """Parse `text` as an image reference, print it back, and mirror it."""
    try:
        ref = parse(text)
    except ReferenceError as exc:
        assert str(exc), "a ReferenceError without a message"
        return
    assert str(ref) == text, f"{text!r} prints back as {str(ref)!r}"
    assert parse(str(ref)) == ref
    normal = parse(ref.normalized)
    assert (normal.registry, normal.repository) == (ref.registry, ref.repository), f"normalising {text!r} changes it"
    for config in (RULES, FIELD_RULES):
        try:
            decision = config.rules.decide(ref)
        except ReferenceError:
            continue
        if decision.mirrored is not None:
            assert parse(str(decision.mirrored)) == decision.mirrored
