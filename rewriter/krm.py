"""The ImageMirror object, and kmirror as a KRM function: a ResourceList in, a ResourceList out.

An ImageMirror carries the rules for kustomize (the legacy exec plugin, rewriter/plugin.py)
and for KRM functions::

    apiVersion: kmirror.dev/v1
    kind: ImageMirror
    metadata: {name: mirror}
    spec:                      # the .kmirror.yaml schema: preset, mirrors, aliases, blocked, allow, fields
      mirrors:
        - {from: k8s.gcr.io, to: mirror.example.com/k8s}
    # or, instead of inline rules:  spec: {configFile: ../.kmirror.yaml}   (relative to the working folder)

A ResourceList (https://github.com/kubernetes-sigs/kustomize/blob/master/cmd/config/docs/api-conventions/functions-spec.md)
is one object `apiVersion: config.kubernetes.io/v1` (or v1beta1), `kind: ResourceList`, with
`items` (the resources), an optional `functionConfig` (here: an ImageMirror) and, on output,
`results`. The response is the request's own text with the image values in `items` spliced
(every other byte kept, annotations included) and `results` added: one `severity: error`
result per reference left on a blocked registry or not rewritable, with its resource and
field. As in kyaml's function framework, error results mean exit code 1.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from rewriter.config import Config, load_config, parse_config
from rewriter.errors import KmirrorError
from rewriter.findings import UNSAFE, Finding
from rewriter.pipeline import process
from rewriter.plan import Image, blocked_findings, image_edits
from rewriter.splice import Edit, splice
from rewriter.stream import Source, compose, decode

API_VERSION = "kmirror.dev/v1"
KIND = "ImageMirror"
RESOURCE_LIST = "ResourceList"
RESOURCE_LIST_VERSIONS = ("config.kubernetes.io/v1", "config.kubernetes.io/v1beta1")
_OBJECT_KEYS = ("apiVersion", "kind", "metadata", "spec")
# A top-level `kind: ResourceList` line (block style), or a JSON/flow `"kind": "ResourceList"`.
_KIND_RE = re.compile(r"^kind:[ \t]*[\"']?ResourceList\b|[\"']kind[\"'][ \t]*:[ \t]*[\"']ResourceList\b", re.MULTILINE)
_ITEM_PATH_RE = re.compile(r"^items\[\d+\]\.?")


def _compose(text: str, name: str) -> list[Node]:
    """The documents of `text` that are not empty; KmirrorError on invalid YAML."""
    roots = compose(Source(name, text.encode("utf-8")))
    return [r for r in roots if r is not None and not (isinstance(r, ScalarNode) and r.value in ("", None))]


def _fragment(text: str, node: Node) -> str:
    """The text of `node` alone, padded so that its lines and columns stay those of `text`."""
    start: int = node.start_mark.index
    line: int = node.start_mark.line
    column: int = node.start_mark.column
    return "\n" * line + " " * column + text[start : node.end_mark.index]


def _fields(node: Node) -> dict[str, Node]:
    return {k.value: v for k, v in node.value if isinstance(k, ScalarNode)} if isinstance(node, MappingNode) else {}


def _text(node: Node | None) -> str | None:
    return node.value if isinstance(node, ScalarNode) and node.tag == "tag:yaml.org,2002:str" else None


def _name(fields: dict[str, Node]) -> str:
    metadata = fields.get("metadata")
    name = _text(_fields(metadata).get("name")) if metadata is not None else None
    return name or "(unnamed)"


def image_mirror_config(text: str, node: Node, where: str) -> Config:
    """The rules an ImageMirror object (composed from `text`) carries; KmirrorError when it is not one.

    `spec.configFile` names a rules file, read relative to the working folder; otherwise
    `spec` holds the rules inline, validated exactly like a `.kmirror.yaml`.
    """
    fields = _fields(node)
    api_version, kind = _text(fields.get("apiVersion")), _text(fields.get("kind"))
    if (api_version, kind) != (API_VERSION, KIND):
        got = f"{api_version or '?'}, kind {kind or '?'}"
        raise KmirrorError(f"invalid config: {where}: expected apiVersion {API_VERSION}, kind {KIND}; got apiVersion {got}")
    for key in fields:
        if key not in _OBJECT_KEYS:
            raise KmirrorError(f"invalid config: {key}: unknown key (known: {', '.join(_OBJECT_KEYS)}) (in {where})")
    where = f"{where} {KIND}/{_name(fields)}"
    spec = fields.get("spec")
    if spec is None:
        raise KmirrorError(f"invalid config: spec: missing: give the rules inline (as in .kmirror.yaml) or spec.configFile (in {where})")
    if not isinstance(spec, MappingNode):
        raise KmirrorError(f"invalid config: spec: expected a mapping (in {where}, line {spec.start_mark.line + 1})")
    inline = _fields(spec)
    if "configFile" not in inline:
        return parse_config(_fragment(text, spec), f"{where} spec")
    if len(inline) > 1:
        others = ", ".join(k for k in inline if k != "configFile")
        raise KmirrorError(f"invalid config: spec.configFile: cannot be combined with inline rules ({others}) (in {where})")
    path = _text(inline["configFile"])
    if not path:
        raise KmirrorError(f"invalid config: spec.configFile: expected a non-empty string (in {where})")
    return load_config(path, None, Path.cwd())


def load_image_mirror(text: str, where: str) -> Config:
    """The rules of the ImageMirror object that is the whole of `text` (a YAML document)."""
    documents = _compose(text, where)
    if len(documents) != 1:
        raise KmirrorError(f"invalid config: {where}: expected one {KIND} object, found {len(documents)} documents")
    return image_mirror_config(text, documents[0], where)


def is_resource_list(data: bytes) -> bool:
    """True when `data` is one YAML or JSON document whose top level is a ResourceList.

    Cheap text tests come first, so that ordinary streams are composed only once.
    """
    if RESOURCE_LIST.encode() not in data:
        return False
    try:

        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return False
    if not _KIND_RE.search(text):
        return False
    try:
        return _root(text, "-") is not None
    except KmirrorError:
        return False


def _root(text: str, name: str) -> MappingNode | None:
    documents = _compose(text, name)
    if len(documents) != 1 or not isinstance(documents[0], MappingNode):
        return None
    fields = _fields(documents[0])
    if _text(fields.get("kind")) != RESOURCE_LIST or _text(fields.get("apiVersion")) not in RESOURCE_LIST_VERSIONS:
        return None
    return documents[0]


@dataclass(frozen=True)
class Request:
    """A ResourceList read from a stream: its text and the nodes kmirror needs."""

    data: bytes
    source: Source
    root: MappingNode
    items: SequenceNode
    function_config: MappingNode | None
    results: tuple[ScalarNode, Node] | None


def read_request(data: bytes, name: str) -> Request:
    """Read a ResourceList; KmirrorError when `data` is not one or its `items` is missing."""
    source = decode(data, name)
    root = _root(source.text, name)
    if root is None:
        raise KmirrorError(f"{name}: not a ResourceList: expected one object, apiVersion {' or '.join(RESOURCE_LIST_VERSIONS)}, kind {RESOURCE_LIST}")
    fields = _fields(root)
    items = fields.get("items")
    if not isinstance(items, SequenceNode):
        why = "missing" if items is None else "expected a list"
        raise KmirrorError(f"{name}: invalid ResourceList: items: {why}")
    config = fields.get("functionConfig")
    if config is not None and _is_null(config):
        config = None
    if config is not None and not isinstance(config, MappingNode):
        raise KmirrorError(f"{name}:{config.start_mark.line + 1}: invalid ResourceList: functionConfig: expected an object")
    results = next(((k, v) for k, v in root.value if isinstance(k, ScalarNode) and k.value == "results"), None)
    return Request(data, source, root, items, config, results)


def _is_null(node: Node) -> bool:
    return isinstance(node, ScalarNode) and node.tag == "tag:yaml.org,2002:null"


def function_config(request: Request) -> Config:
    """The rules of the request's functionConfig, which must be an ImageMirror."""
    assert request.function_config is not None
    return image_mirror_config(request.source.text, request.function_config, f"{request.source.name} functionConfig")


@dataclass(frozen=True)
class Response:
    """The ResourceList to write, and the findings listed in its `results`."""

    text: str
    findings: tuple[Finding, ...]


def respond(request: Request, config: Config) -> Response:
    """Rewrite the images in `items` with `config` and add a result per finding.

    The whole ResourceList goes through the pipeline; only what it finds under `items`
    is kept, so that the functionConfig's own rules are never taken for images.
    """
    outcome = process(request.data, request.source.name, config)
    images = tuple(i for i in outcome.images if i.location.path.startswith("items["))
    problems = [p for p in outcome.problems if p.path.startswith("items[")]
    findings = sorted([*problems, *blocked_findings(outcome.source, images, after_rewrite=True)], key=lambda f: (f.line, f.column, f.code))
    edits = [edit for i in images for edit in _edits(i)]
    source = request.source
    if findings:
        edits.append(_in_bytes(source.text, _results_edit(request, [_result(f, findings) for f in findings])))
    return Response(source.render(splice(source.data, edits)).decode("utf-8"), tuple(findings))


def _edits(image: Image) -> list[Edit]:
    found = image_edits(image)
    return found if isinstance(found, list) else []  # not writable: reported as KM002 by the pipeline


def _in_bytes(text: str, edit: Edit) -> Edit:
    """`edit` of `text` with byte offsets of its UTF-8 instead of character offsets."""
    return edit._replace(start=len(text[: edit.start].encode("utf-8")), end=len(text[: edit.end].encode("utf-8")))



def _result(finding: Finding, findings: list[Finding]) -> dict[str, Any]:
    """One entry of `results`, in the shape of kyaml's framework.Result."""
    resource = finding.resource
    ref = {"apiVersion": resource.api_version, "kind": resource.kind, "name": resource.name, "namespace": resource.namespace}
    # What the field holds now: the mirror when kmirror wrote one, else the reference as written.
    rewritten = finding.code != UNSAFE and not any(f.code == UNSAFE and (f.line, f.column) == (finding.line, finding.column) for f in findings)
    current = finding.suggested if rewritten and finding.suggested else finding.ref
    field = {"path": _ITEM_PATH_RE.sub("", finding.path), "currentValue": current}
    if finding.code == UNSAFE and finding.suggested:
        field["proposedValue"] = finding.suggested
    return {
        "message": f"{finding.code} {finding.message}",
        "severity": finding.severity,
        "resourceRef": {k: v for k, v in ref.items() if v is not None},
        "field": field,
    }


def _results_edit(request: Request, results: list[dict[str, Any]]) -> Edit:
    """The edit that adds `results`: appended to the object, or merged into existing ones."""
    text, root = request.source.text, request.root
    if request.results is not None:
        key, value = request.results
        earlier = _load(text, value, request.source.name) or []
        if not isinstance(earlier, list):
            raise KmirrorError(f"{request.source.name}:{value.start_mark.line + 1}: invalid ResourceList: results: expected a list")
        start, end = key.start_mark.index, value.end_mark.index
        tail = "\n" if text[start:end].endswith("\n") else ""
        # kyaml keeps earlier functions' results; they are re-written here as one JSON line.
        return Edit(start, end, text[start:end], f"{json.dumps(key.value)}: {json.dumps(earlier + results)}{tail}")
    end = root.end_mark.index
    if root.flow_style:
        close = text.rfind("}", 0, end)
        return Edit(close, close, "", f', "results": {json.dumps(results)}')
    newline = "\r\n" if "\r\n" in text else "\n"
    indent = " " * root.value[0][0].start_mark.column
    lead = "" if end == 0 or text[end - 1] == "\n" else newline
    return Edit(end, end, "", lead + "".join(line + newline for line in _block(results, indent)))


def _load(text: str, node: Node, name: str) -> Any:
    try:
        return YAML(typ="safe", pure=False).load(_fragment(text, node))
    except YAMLError as exc:
        raise KmirrorError(f"{name}: invalid ResourceList: results: {exc}") from None


def _block(results: list[dict[str, Any]], indent: str) -> list[str]:
    """`results:` as block YAML lines; every string double-quoted (JSON strings are YAML)."""
    lines = [f"{indent}results:"]
    for result in results:
        lead = f"{indent}- "
        for key, value in result.items():
            if isinstance(value, dict):
                lines.append(f"{lead}{key}:")
                lines.extend(f"{indent}    {k}: {json.dumps(v)}" for k, v in value.items())
            else:
                lines.append(f"{lead}{key}: {json.dumps(value)}")
            lead = f"{indent}  "
    return lines
