"""rewriter.bounds: what reaches libyaml is bounded, and the cheap bounds never let too much through.

The oracle is libyaml's own event stream: the depth and node counts it gives are what the
composer would build.
"""

from __future__ import annotations

import pytest
from _ruamel_yaml import CParser  # type: ignore[import-not-found]
from ruamel.yaml.events import CollectionEndEvent, CollectionStartEvent

from rewriter import bounds
from rewriter.bounds import MAX_DEPTH, LimitError, check


def _depth(text: str) -> int:
    """The deepest nesting libyaml's events show."""
    parser = CParser(text)
    depth = deepest = 0
    while (event := parser.get_event()) is not None and type(event).__name__ != "StreamEndEvent":
        if isinstance(event, CollectionStartEvent):
            depth += 1
            deepest = max(deepest, depth)
        elif isinstance(event, CollectionEndEvent):
            depth -= 1
    return deepest


def _mixed(levels: int, block: int, style: str) -> str:
    """`levels` levels: `block` block ones (mappings, then compact sequences), the rest flow of `style`."""
    mappings = block // 2
    text = "".join(" " * i + "a:\n" for i in range(mappings)) + " " * mappings + "- " * (block - mappings)
    flow = levels - block
    opener, closer = ("[", "]") if style == "sequence" else ("{a: ", "}")
    return text + opener * flow + "x" + closer * flow + "\n"


@pytest.mark.parametrize("style", ["sequence", "mapping"])
@pytest.mark.parametrize("block", [0, 1, 300, MAX_DEPTH])
@pytest.mark.parametrize("levels", [MAX_DEPTH, MAX_DEPTH + 1])
def test_refused_exactly_when_deeper_than_the_limit(levels: int, block: int, style: str) -> None:
    text = _mixed(levels, block, style)
    assert _depth(text) == levels
    for given in (text, text.encode()):
        if levels > MAX_DEPTH:
            with pytest.raises(LimitError, match=f"nested deeper than {MAX_DEPTH} levels"):
                check(given)
        else:
            check(given)


def test_the_position_is_where_the_limit_is_passed_in_the_document_that_passes_it() -> None:
    deep = "x: " + "[" * (MAX_DEPTH + 5) + "]" * (MAX_DEPTH + 5) + "\n"
    text = "a: é\n---\n" + "b: [[1]]\n" * 600 + "---\n" + deep
    with pytest.raises(LimitError) as raised:
        check(text)
    assert text[raised.value.offset :].startswith("[" * 6 + "]")
    with pytest.raises(LimitError) as in_bytes:
        check(text.encode())
    assert in_bytes.value.offset == raised.value.offset  # characters, whatever the input


def test_many_shallow_flow_collections_are_not_refused() -> None:
    check("x: [" + ", ".join(["{a: [b]}"] * 5_000) + "]\n")
    check("---\n".join(["x: {a: [b]}\n"] * 5_000))


def test_directives_beyond_the_limit() -> None:
    text = "".join(f"%TAG !t{i}! tag:example.com,2000:\n" for i in range(bounds.MAX_DIRECTIVES + 1)) + "---\na: b\n"
    with pytest.raises(LimitError, match="more than 1000 directives") as raised:
        check(text)
    assert text[raised.value.offset :].startswith("%TAG !t1000!")
    check("".join(f"# %{i}\n" for i in range(5_000)))  # a `%` that starts no line is no directive


def test_nodes_per_document(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KMIRROR_MAX_NODES", "100")
    check("---\n".join(["[" + "a, " * 90 + "]\n"] * 50))  # many documents, each within the limit
    with pytest.raises(LimitError, match="more than 100 nodes"):
        check("a: [" + "a, " * 120 + "]\n")
    check("a: [" + "a, " * 120 + "]\n", count_nodes=False)
