"""Properties of the stream rewriter over generated YAML text (Hypothesis).

The strategy writes YAML streams as text: several documents (`---`, `...`, empty ones,
comments), plain, single- and double-quoted values, flow collections, anchors and aliases,
block scalars (an embedded Pod, `version=REF` lines), JSON in an annotation, trailing
white space, CRLF and a byte-order mark, and noise keys. It places references from a small
pool only where kmirror is meant to find them and records each one in text order, so:

- every placed reference is found, in order, and none else;
- no rules: the output is the input, byte for byte;
- the rewritten text differs from the input only inside the edit spans;
- a second run changes nothing;
- loading the output gives the loaded input with each located reference mapped by the rules.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from rewriter.config import parse_config
from rewriter.pipeline import Outcome, process
from rewriter.reference import parse

DIGEST = "sha256:" + "5" * 64
# Registry-qualified references with a tag or digest: kmirror finds these in any string.
QUALIFIED = (
    "quay.io/app/web:1.0",
    "quay.io/keep/tool:2",
    "registry.k8s.io/ingress-nginx/controller:v1.15.1",
    "ghcr.io/org/tool:v2",
    f"gcr.io/proj/img@{DIGEST}",
    "localhost:5000/team/app:dev",
    "docker.io/library/redis:7",
)
# Short names (and qualified ones without a tag): found only where an image is expected.
SHORT = ("nginx", "nginx:1.25", "grafana/grafana:12.0", f"busybox@{DIGEST}", "quay.io/app/latest")
ANY = QUALIFIED + SHORT

RULES = parse_config(
    """
mirrors:
  - from: quay.io/keep
    keep: true
  - from: quay.io
    to: mirror.example.com/quay
  - from: docker.io
    to: mirror.example.com/hub
  - from: registry.k8s.io
    to: mirror.example.com/k8s
    flatten: true
  - from: localhost:5000
    to: "mirror.example.com/{path_dotted}"
""",
    "rules.yaml",
)
NO_RULES = parse_config("", "x")
_TOKEN_RE = re.compile(r"[\w.\-/:@]+", re.ASCII)


@dataclass
class Stream:
    """A generated stream: its lines and the references placed in it, in text order."""

    lines: list[str] = field(default_factory=list)
    refs: list[str] = field(default_factory=list)
    anchors: list[str] = field(default_factory=list)

    def add(self, line: str, *refs: str) -> None:
        self.lines.append(line)
        self.refs.extend(refs)


def _quoted(draw: st.DrawFn, value: str) -> str:
    style = draw(st.sampled_from(("plain", "single", "double")))
    if style == "single":
        return f"'{value}'"
    if style == "double":
        return f'"{value}"'
    return value


def _tail(draw: st.DrawFn) -> str:
    """What may follow a value on its line: nothing, white space, a comment.

    Not a tab: ruamel.yaml's pure-Python scanner, which reads what libyaml refuses (a `:`
    in a plain scalar of a flow collection), refuses a trailing tab (golden case
    `trailing-whitespace` has one).
    """
    return draw(st.sampled_from(("", "", "  ", " # note", "  # was quay.io/old/image:0.9", " #image: nginx", " # café ☕ 镜像", "  # ünïcode 🚀 quay.io/x/y:1")))


def _noise(draw: st.DrawFn, out: Stream, indent: str) -> None:
    if draw(st.booleans()):
        out.add(f"{indent}# between items: image: quay.io/commented/out:1")
    if draw(st.booleans()):
        out.add("")


def _container(draw: st.DrawFn, out: Stream, indent: str, number: int) -> None:
    shape = draw(st.sampled_from(("block", "block", "flow", "alias")))
    if shape == "alias" and not out.anchors:
        shape = "block"
    if shape == "flow":
        ref = draw(st.sampled_from(ANY))
        out.add(f"{indent}- {{name: c{number}, image: {_quoted(draw, ref)}}}{_tail(draw)}", ref)
        return
    out.add(f"{indent}- name: c{number}")
    inner = indent + "  "
    if shape == "alias":
        out.add(f"{inner}image: *{draw(st.sampled_from(out.anchors))}{_tail(draw)}")
    else:
        ref = draw(st.sampled_from(ANY))
        anchor = ""
        if draw(st.booleans()):
            name = f"a{len(out.anchors)}"
            out.anchors.append(name)
            anchor = f"&{name} "
        out.add(f"{inner}image: {anchor}{_quoted(draw, ref)}{_tail(draw)}", ref)
    args = draw(st.sampled_from(("none", "block", "flow", "flow-lines")))
    if args == "block":
        first, second = draw(st.sampled_from(ANY)), draw(st.sampled_from(ANY))
        out.add(f"{inner}args:")
        out.add(f"{inner}- --verbose")
        out.add(f"{inner}- --sidecar-image{_tail(draw)}")
        out.add(f"{inner}- {_quoted(draw, first)}{_tail(draw)}", first)
        _noise(draw, out, inner)
        out.add(f"{inner}- {_quoted(draw, '--helper-image=' + second)}", second)
    elif args == "flow":
        ref = draw(st.sampled_from(ANY))
        out.add(f"{inner}args: [--log=debug, --engine-image, {_quoted(draw, ref)}, --v]{_tail(draw)}", ref)
    elif args == "flow-lines":
        first, second = draw(st.sampled_from(ANY)), draw(st.sampled_from(ANY))
        out.add(f"{inner}args: [")
        out.add(f'{inner}  "-shell-image", {_quoted(draw, first)},{_tail(draw)}', first)
        _noise(draw, out, inner + "  ")
        out.add(f"{inner}  {_quoted(draw, '--entrypoint-image=' + second)},", second)
        out.add(f"{inner}]")
    if draw(st.booleans()):
        block = draw(st.sampled_from(("|", "|-", ">", "|+")))
        refs = draw(st.lists(st.sampled_from(QUALIFIED), min_size=1, max_size=3))
        out.add(f"{inner}env:")
        out.add(f"{inner}- name: LOG_LEVEL")
        out.add(f"{inner}  value: {_quoted(draw, 'info')}")
        out.add(f"{inner}- name: EXTRA_IMAGES")
        header = draw(st.sampled_from(("", "  # e.g. 1.0=" + refs[0])))
        out.add(f"{inner}  value: {block}{header}")
        for i, ref in enumerate(refs):
            out.add(f"{inner}    1.{i}={ref}", ref)


def _workload(draw: st.DrawFn, out: Stream) -> None:
    kind = draw(st.sampled_from(("Pod", "Deployment", "CronJob")))
    api = {"Pod": "v1", "Deployment": "apps/v1", "CronJob": "batch/v1"}[kind]
    out.add(f"apiVersion: {_quoted(draw, api)}")
    out.add(f"kind: {kind}")
    out.add("metadata:")
    out.add(f"  name: {_quoted(draw, 'web')}{_tail(draw)}")
    out.add("  labels:")
    out.add("    app.kubernetes.io/name: web")
    out.add(f"    version: {_quoted(draw, '1.0')}")
    if draw(st.booleans()):
        ref = draw(st.sampled_from(ANY))
        out.add("  annotations:")
        out.add("    registry: quay.io")
        json = f'{{"name": "s", "image": "{ref}"}}'
        style = draw(st.sampled_from(("single", "double", "folded")))
        if style == "single":
            out.add(f"    example.com/sidecar: '{json}'", ref)
        elif style == "double":
            escaped = json.replace('"', '\\"')
            out.add(f'    example.com/sidecar: "{escaped}"', ref)
        else:  # folded over two lines, as kubevirt writes its hook sidecars
            out.add("""    hooks.kubevirt.io/hookSidecars: '[{"args": ["--version", "v1alpha2"], "image":""")
            out.add(f"""      "{ref}"}}]'""", ref)
    indent = {"Pod": "", "Deployment": "    ", "CronJob": "        "}[kind]
    if kind == "Deployment":
        out.add("spec:")
        out.add("  template:")
        out.add("    spec:")
    elif kind == "CronJob":
        out.add("spec:")
        out.add('  schedule: "0 3 * * *"')
        out.add("  jobTemplate:")
        out.add("    spec:")
        out.add("      template:")
        out.add("        spec:")
    else:
        out.add("spec:")
    number = 0
    for lists in draw(st.lists(st.sampled_from(("initContainers", "containers", "ephemeralContainers")), min_size=1, max_size=2, unique=True)):
        out.add(f"{indent}  {lists}:")
        _noise(draw, out, indent + "  ")
        item_indent = indent + draw(st.sampled_from(("  ", "    ")))
        for _ in range(draw(st.integers(1, 3))):
            _container(draw, out, item_indent, number)
            number += 1


def _configmap(draw: st.DrawFn, out: Stream) -> None:
    out.add("apiVersion: v1")
    out.add("kind: ConfigMap")
    out.add("metadata:")
    out.add("  name: embedded")
    out.add("data:")
    out.add(f"  registry: {_quoted(draw, 'quay.io')}")
    header = draw(st.sampled_from(("", " # image: nginx")))
    out.add(f"  pod.yaml: {draw(st.sampled_from(('|', '|-', '|+')))}{header}")
    out.add("    apiVersion: v1")
    out.add("    kind: Pod")
    out.add("    spec:")
    out.add("      containers:")
    for i in range(draw(st.integers(1, 2))):
        ref = draw(st.sampled_from(ANY))
        out.add(f"      - name: e{i}")
        # No reference in a comment here: inside the block scalar it is text, not a comment.
        out.add(f"        image: {_quoted(draw, ref)}{draw(st.sampled_from(('', '  ', ' # note')))}", ref)


@st.composite
def streams(draw: st.DrawFn) -> tuple[bytes, list[str]]:
    """A YAML stream's bytes and the references placed in it, in text order."""
    out = Stream()
    if draw(st.booleans()):
        out.add("# a comment before the first document")
    documents = draw(st.lists(st.sampled_from(("workload", "workload", "configmap", "empty")), min_size=1, max_size=3))
    for i, kind in enumerate(documents):
        out.anchors = []
        if i > 0 or draw(st.booleans()):
            out.add(draw(st.sampled_from(("---", "---", "--- # next document", "--- "))))
        if kind == "workload":
            _workload(draw, out)
        elif kind == "configmap":
            _configmap(draw, out)
        else:
            out.add("# only a comment in this document")
        if draw(st.integers(0, 3)) == 0 and out.lines[-1] != "# only a comment in this document":
            out.add("...")  # libyaml wants a document before `...`, if only `---`
    newline = draw(st.sampled_from(("\n", "\r\n")))
    text = newline.join(out.lines) + newline
    bom = b"\xef\xbb\xbf" if draw(st.integers(0, 3)) == 0 else b""
    return bom + text.encode("utf-8"), out.refs


def _mirror(ref: str) -> str:
    return str(RULES.rules.decide(parse(ref)).final)


def _edited(outcome: Outcome) -> bytes:
    """The input with each located reference replaced by its mirror, built independently of splice."""
    data = outcome.source.data
    pieces, cursor = [], 0
    for image in outcome.images:
        location = image.location
        assert location.safe
        assert data[location.start : location.end] == location.text.encode("utf-8")
        assert location.start >= cursor
        pieces += [data[cursor : location.start], _mirror(location.text).encode("utf-8")]
        cursor = location.end
    return b"".join(pieces) + data[cursor:]


def _load(data: bytes) -> list[Any]:
    return list(YAML(typ="safe", pure=True).load_all(data.decode("utf-8-sig")))


def _map(value: Any, mirrors: dict[str, str]) -> Any:
    """`value` with every located reference in a string value replaced by its mirror."""
    if isinstance(value, dict):
        return {k: _map(v, mirrors) for k, v in value.items()}
    if isinstance(value, list):
        return [_map(v, mirrors) for v in value]
    if isinstance(value, str):
        if value in mirrors:
            return mirrors[value]
        return _TOKEN_RE.sub(lambda m: mirrors.get(m.group(), m.group()), value)
    return value


@settings(max_examples=60)
@given(streams())
def test_every_placed_reference_is_found(stream: tuple[bytes, list[str]]) -> None:
    data, refs = stream
    outcome = process(data, "in.yaml", RULES)
    assert [image.location.text for image in outcome.images] == refs
    assert not outcome.problems


@settings(max_examples=60)
@given(streams())
def test_no_rules_output_is_input(stream: tuple[bytes, list[str]]) -> None:
    data, _ = stream
    outcome = process(data, "in.yaml", NO_RULES)
    assert outcome.output == data
    assert not outcome.changed


@settings(max_examples=60)
@given(streams())
def test_only_edit_spans_change(stream: tuple[bytes, list[str]]) -> None:
    data, _ = stream
    outcome = process(data, "in.yaml", RULES)
    assert outcome.output == outcome.source.render(_edited(outcome))


@settings(max_examples=60)
@given(streams())
def test_second_run_changes_nothing(stream: tuple[bytes, list[str]]) -> None:
    data, _ = stream
    first = process(data, "in.yaml", RULES).output
    second = process(first, "in.yaml", RULES)
    assert second.output == first
    assert not second.problems


@settings(max_examples=60)
@given(streams())
def test_loading_the_output_equals_mapping_the_loaded_input(stream: tuple[bytes, list[str]]) -> None:
    data, _ = stream
    outcome = process(data, "in.yaml", RULES)
    mirrors = {image.location.text: _mirror(image.location.text) for image in outcome.images}
    expected = [_map(document, mirrors) for document in _load(data)]
    assert _load(outcome.output) == expected

