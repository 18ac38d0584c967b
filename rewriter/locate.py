"""Find every image reference in composed YAML documents, as character spans of the text.

Where a reference is recognised (the whole scalar unless said otherwise):

- the value of any key named `image`, and of `reference` under an `image` mapping
  (pod `volumes[].image.reference`), in any resource and any custom resource;
- the value of a key whose name contains "image" (`queue-sidecar-image`), and the
  `value`/`default` next to a `name` that contains "image" (env `*_IMAGE`, parameters),
  when the value has a `/`, `:` or `@` — names about registries, repositories, tags,
  versions, pull policies or secrets are not images;
- in `args`/`command` lists, the item after a flag naming an image (`--engine-image`);
- inside any string, `--*image*=REF`, any registry-qualified reference with a tag
  or digest (`--reloader=quay.io/x:v1`, `4.3.1=quay.io/strimzi/kafka:...`), and any reference
  after `docker://`, short names and untagged ones too (CDI's `docker://kubevirt/fedora`);
- inside multi-line or JSON/YAML strings that mention an image, the same rules applied
  to the embedded document (an embedded Pod in a ConfigMap, a JSON annotation);
- the user's own field paths (`fields:` in the rules file).

Keys and values are read as kubectl reads them when it turns YAML into JSON: keys by
their value however they are spelled (quoted, escaped, `? key`, an alias, a tag), and a
value as the string kubectl sends (`_string`: whatever its tag, `!!binary` decoded, a
timestamp too). Values that are templated (`{{ }}`, `$( )`, `${ }`) or do not parse as
references are never reported, nor is anything in a resource annotated
`kmirror.dev/ignore: "true"`. Collections reached through aliases are visited once.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Iterable, Iterator
from typing import NamedTuple

from ruamel.yaml.error import YAMLError
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from ruamel.yaml.resolver import BaseResolver

from rewriter import compose
from rewriter.bounds import LimitError
from rewriter.config import FieldPath
from rewriter.reference import ImageRef, ReferenceError, parse
from rewriter.stream import Document, compose_text

_DEFAULT_STR = BaseResolver.DEFAULT_SCALAR_TAG  # the tag object most string scalars share
_CORE_TAG = "tag:yaml.org,2002:"
STR_TAG = _CORE_TAG + "str"
_NULL_TAG = _CORE_TAG + "null"
_BINARY_TAG = _CORE_TAG + "binary"
_EXPLICIT_TAG_RE = re.compile(r"(?:&\S*\s+)*!")  # a scalar's properties (anchors, then a tag) start with a tag
# Scalars kubectl sends as JSON numbers, booleans or null (go-yaml types them as YAML 1.1 does).
_TYPED_TAGS = frozenset(_CORE_TAG + name for name in ("int", "float", "bool", "null"))
# Plain words go-yaml reads as YAML 1.1 booleans where YAML 1.2 (ruamel.yaml's default) reads strings.
_YAML_11_BOOLEANS = frozenset(w for word in ("y", "yes", "n", "no", "on", "off") for w in (word, word.capitalize(), word.upper()))
_RESOURCE_KEYS = ("apiVersion", "kind", "name")
_NOT_AN_IMAGE = ("registry", "repo", "prefix", "tag", "digest", "version", "policy", "secret", "pull")
_TOKEN_RE = re.compile(r"[\w.\-/:@\[\]]+", re.ASCII)
# -name=value, one word, or its value in quotes (`-consul-image="hashicorp/consul:1.19.2"`)
_FLAG_RE = re.compile(r"(?<![^\s\"',;\[])(--?[\w-]++)=([\"']?)([^\s\"',;]+)(?=\2)", re.ASCII)
_KEY_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*", re.ASCII)
_EMBEDDED_DEPTH = 2
_Q = r"""\\?["']?"""  # a key's closing quote, possibly escaped inside a quoted JSON string
# Keys, names and flags longer than this are not taken for image names (by the prefilter nor by
# locate): bounding the patterns keeps the prefilter linear on hostile input like `imageimage...`.
_KEY_MAX = 512
# The prefilter's patterns run on lower-cased text, each only when its keyword occurs at all.
_IMAGE_KEY_RE = re.compile(
    rf"image[\w.-]{{0,{_KEY_MAX}}}+{_Q}[ \t]*:[ \t]*(?!\{{\s*\}})[^\s#]"  # image: VALUE (not an empty {})
    rf"|image[\w.-]{{0,{_KEY_MAX}}}+{_Q}[ \t]*:[ \t]*(?:#[^\n]*)?\r?\n(?:[ \t]*(?:#[^\n]*)?\r?\n)*"
    r"[ \t]*(?!- )[^\s#](?![^\n#]*:(?:[ \t]|\r?$))",  # image:\n  VALUE (a scalar, not a mapping; a comment may hold `: `)
    re.MULTILINE,
)
_IMAGE_NAME_RE = re.compile(  # name: SOME_IMAGE, the value perhaps tagged, anchored or on the next line
    rf"name{_Q}[ \t]*:\s*+(?:(?:[!&]\S*+|#[^\n]*+)\s*+)*[\\\"']*[^\s\"',}}]{{0,{_KEY_MAX}}}image"
)
_IMAGE_FLAG_TEXT_RE = re.compile(rf"-(?<![\w-]-)-?[\w-]{{0,{_KEY_MAX}}}image")  # --engine-image, -shell-image=... (a leading `-` first: fast)
# The key whose value such a name names. Here and below, a pattern per keyword: each starts with its
# literal, which `re` skips to fast; an alternation at the start is tried at every character (7x slower).
_VALUE_KEY_RES = tuple(re.compile(rf"{key}{_Q}[ \t]*:") for key in ("value", "default"))
_REFERENCE_KEY_RE = re.compile(rf"reference{_Q}[ \t]*:[ \t]*[^\s#]")  # volumes[].image.reference
# Fields an image is composed from (`rewriter.compose`): a registry-bearing key with a value, or an
# `image:` block mapping that starts with its name or version.
_COMPOSED_KEY_RES = (
    *((key, re.compile(rf"{key}{_Q}[ \t]*:[ \t]*[^\s#]")) for key in ("registry", "repository", "hub")),
    ("image", re.compile(rf"image{_Q}[ \t]*:[ \t]*(?:#[^\n]*)?\r?\n[ \t]*(?:name|version|tag){_Q}[ \t]*:")),
)
_QUALIFIED_TEXT_RE = re.compile(r"/[\w.\-\[\]]*+[:@]\w", re.ASCII)  # .../name:tag, .../name@digest
# Spellings that hide a key or a reference from the patterns above, each rare in manifests (`_spelled`,
# `_key_elsewhere`). Each pattern starts with a literal character, which the search skips to quickly.
_ESCAPE_RE = re.compile(r"\\[xu/\r\n\x85\u2028\u2029]")  # `\x61`, `\u0061` (`\U` once lower-cased), `\/`, `\` + break
_LONE_CR_RE = re.compile(r"\r(?!\n)")
_ODD_BREAKS = ("\x85", "\u2028", "\u2029")  # NEL, LS, PS: line breaks to YAML 1.1, go-yaml and libyaml
# An alias after what may stand before a node (at the very start of a text it could name no anchor).
_ALIAS_RE = re.compile(r"\*(?<=[\s\[{,?:-]\*)[^\s,\[\]{}]")
_EXPLICIT_KEY_RE = re.compile(r"\?\s")
_NODE_START = frozenset(" \t\r\n[{,\x85\u2028\u2029")  # what may stand before the `?` of an explicit key
MAX_NESTING = 200  # real manifests nest a few dozen levels; deeper input is refused, not walked


class NestingError(ValueError):
    """The document nests collections deeper than MAX_NESTING, or an embedded document is beyond
    a limit of `rewriter.bounds` (`message`); `offset` is where, in the stream."""

    def __init__(self, offset: int, message: str = f"invalid YAML: collections nested deeper than {MAX_NESTING} levels") -> None:
        super().__init__(message)
        self.offset = offset

    def __reduce__(self) -> tuple[type[NestingError], tuple[int, str]]:
        return type(self), (self.offset, str(self))  # whole, when a child process sends it back


class Resource(NamedTuple):
    """The Kubernetes object a reference belongs to (fields None when not given)."""

    api_version: str | None = None
    kind: str | None = None
    name: str | None = None
    namespace: str | None = None

    def __str__(self) -> str:
        return f"{self.kind or '?'}/{self.name or '?'}"


class Location(NamedTuple):
    """One image reference: `text` is exactly the stream's bytes `[start:end]`, decoded.


    `safe` is False when the reference was read from the value but its characters could
    not be found unambiguously in the file (e.g. written with escapes); `start`/`end`
    then span the whole scalar and the reference must be reported, not rewritten.
    `parts` is set for an image composed from sibling fields (`rewriter.compose`): `text`
    is then the composed reference and `start` where its registry-bearing field is.
    """

    document: int
    path: str
    start: int
    end: int
    text: str
    carrier: str
    resource: Resource
    safe: bool = True
    parts: tuple[compose.Part, ...] = ()


def locate(documents: Iterable[Document], fields: tuple[FieldPath, ...] = ()) -> list[Location]:
    """Every image reference in `documents`, in text order, with offsets into the stream."""
    found: dict[int, Location] = {}
    unsafe: list[Location] = []
    for document in documents:
        if document.root is not None:
            walker = _Walker(document.text, document.number, fields, found, unsafe, _shift(document), None)
            walker.node(document.root, "", (), Resource(), None)
    return sorted([*found.values(), *unsafe], key=lambda loc: loc.start)


def _shift(document: Document) -> Callable[[int, str], int | None]:
    """Map a character offset in a document's text to a byte offset of the stream."""
    return lambda offset, _token: document.stream_offset(offset)


def may_hold_images(text: str) -> bool:
    """False only when `locate` cannot find a reference in `text` (a cheap, textual prefilter).

    Each pattern stands for the text one of the rules in this module's docstring needs:
    a key naming an image with a value on its line or a scalar on the next, a `name`
    naming an image along with a `value` or `default` key, an image flag, a `reference`
    key, a `/` followed in the same token by a tag or digest (every registry-qualified
    reference, `docker://` URLs included), or a field a composed image starts from. Text
    that may spell keys or values another way (escapes, odd line breaks, `!!binary`:
    `_spelled`; aliases, explicit keys: `_key_elsewhere`) is kept.
    """
    if _QUALIFIED_TEXT_RE.search(text):
        return True
    lowered = text.lower()
    if "image" in lowered and (
        _IMAGE_KEY_RE.search(lowered)
        or _IMAGE_FLAG_TEXT_RE.search(lowered)
        or (_IMAGE_NAME_RE.search(lowered) and any(key.search(lowered) for key in _VALUE_KEY_RES))
        or _key_elsewhere(lowered)
    ):
        return True
    if any(word in lowered and key.search(lowered) for word, key in _COMPOSED_KEY_RES):
        return True
    return ("reference" in lowered and _REFERENCE_KEY_RE.search(lowered) is not None) or "docker://" in lowered or _spelled(lowered)


def _spelled(lowered: str) -> bool:
    """The text may spell a key or reference that no pattern sees: an escape that writes any
    character or joins two lines, a line break other than LF and CRLF, or `!!binary` (base64 of anything;
    `!<tag:yaml.org,2002:binary>` verbatim; a stream with `%TAG` handles is composed whole anyway)."""
    return (
        ("\\" in lowered and _ESCAPE_RE.search(lowered) is not None)
        or ("\r" in lowered and _LONE_CR_RE.search(lowered) is not None)
        or (not lowered.isascii() and any(c in lowered for c in _ODD_BREAKS))
        or ("binary" in lowered and ("!binary" in lowered or "2002:binary" in lowered))
    )


def _key_elsewhere(lowered: str) -> bool:
    """A key may be written elsewhere: an alias (`*k : v`) or an explicit key (`? k`)."""
    if _ALIAS_RE.search(lowered):
        return True
    return any(m.start() == 0 or lowered[m.start() - 1] in _NODE_START for m in _EXPLICIT_KEY_RE.finditer(lowered))


def format_key(path: str, key: str) -> str:
    """Append a mapping key to a display path (`a.b`, or `a["x.y"]` for other keys)."""
    if _KEY_RE.fullmatch(key):
        return f"{path}.{key}" if path else key
    return f"{path}[{json.dumps(key)}]"


def _child_path(path: str, key: str) -> str:
    """`format_key(path, key)`, the steps of repeated keys formatted once."""
    after, first = _key_step(key)
    return path + after if path else first


@functools.lru_cache(maxsize=4096)
def _key_step(key: str) -> tuple[str, str]:
    """What `format_key` appends for `key`: after a path, and as the first step (keys repeat: once each)."""
    return format_key("x", key)[1:], format_key("", key)


@functools.lru_cache(maxsize=4096)
def _is_image_name(name: str) -> bool:
    if len(name) > _KEY_MAX:
        return False
    lowered = name.lower()
    return "image" in lowered and not any(word in lowered for word in _NOT_AN_IMAGE)


def _string(node: ScalarNode) -> str | None:
    """The scalar as kubectl sends it: its string, or None for a number, boolean or null.

    kubectl's go-yaml sends as strings what YAML would type otherwise: a timestamp
    (`2001-12-14`), an application tag's value (`!foo x`), `!!binary` decoded (None when it
    is not UTF-8), and sexagesimal YAML 1.1 numbers (`1:20`, which go-yaml does not type);
    it sends YAML 1.1 booleans (`yes`, `off`) as booleans.
    """
    if node.ctag is _DEFAULT_STR:
        if not node.style and node.value in _YAML_11_BOOLEANS:  # plain (style "")
            return None
        return node.value  # type: ignore[no-any-return]
    tag = node.tag
    value: str = node.value
    if tag == _BINARY_TAG:
        import base64  # here, not at the top: `!!binary` is rare and the filter must start fast

        try:
            return base64.b64decode("".join(value.split()), validate=True).decode("utf-8")
        except ValueError:  # not base64, or not UTF-8
            return None
    if tag in _TYPED_TAGS and ":" not in value:
        return None
    return value


def templated(value: str) -> bool:
    """The value holds a template placeholder (`{{ }}`, `$( )`, `${ }`): not an image as written."""
    return "{{" in value or "$(" in value or "${" in value


def whole_reference(value: str) -> ImageRef | None:
    """`value` parsed as one image reference; None when it is templated or not a reference."""
    if templated(value):
        return None
    try:
        return parse(value)
    except ReferenceError:
        return None


def _qualified(token: str) -> bool:
    """A registry-qualified reference with a tag or digest (safe to spot in free text)."""
    try:
        ref = parse(token)
    except ReferenceError:
        return False
    return ref.domain is not None and (ref.tag is not None or ref.digest is not None)


class _Host(NamedTuple):
    """For a walker inside an embedded document: the string scalar that holds it."""

    path: str
    resource: Resource
    start: int
    depth: int
    carrier: str


class _Walker:
    """Walks one document (or one embedded document) and records locations in `found`.

    `outer` maps an offset in this walker's text to an offset in the stream (identity at
    the top level); `host` is set when this walker reads a document embedded in a string.
    """

    def __init__(
        self,
        text: str,
        document: int,
        fields: tuple[FieldPath, ...],
        found: dict[int, Location],
        unsafe: list[Location],
        outer: Callable[[int, str], int | None],
        host: _Host | None,
    ) -> None:
        self.text = text
        self.document = document
        self.fields = fields
        self.found = found
        self.unsafe = unsafe
        self.outer = outer
        self.host = host
        self.seen: set[int] = set()
        self.mappers: dict[int, Callable[[int, str], int | None]] = {}
        self.level = 0
        self.under_hub = 0  # how many enclosing mappings have a `hub` key

    def node(self, node: Node, path: str, keys: tuple[str, ...], resource: Resource, key: str | None) -> None:
        if isinstance(node, ScalarNode):
            self.scalar(node, path, keys, resource, key, whole=False)
            return
        if id(node) in self.seen:  # an alias of a collection already walked: once is enough
            return
        self.seen.add(id(node))
        self.level += 1
        if self.level > MAX_NESTING:
            raise NestingError(self._stream_offset(node))
        try:
            if isinstance(node, MappingNode):
                self.mapping(node, path, keys, resource, key)
            elif isinstance(node, SequenceNode):
                self.sequence(node, path, keys, resource, key)
        finally:
            self.level -= 1

    def mapping(self, node: MappingNode, path: str, keys: tuple[str, ...], resource: Resource, parent: str | None) -> None:
        # A key YAML would type (`1: x`) is still a JSON key to kubectl: its text, then.
        pairs = [(k.value if k.ctag is _DEFAULT_STR else _string(k) or k.value, v) for k, v in node.value if isinstance(k, ScalarNode)]
        keys_here = {k for k, _ in pairs}
        scalars = {k: text for k, v in pairs if k in _RESOURCE_KEYS and isinstance(v, ScalarNode) and (text := _string(v)) is not None}
        if "kind" in scalars and "apiVersion" in scalars:
            if _ignored(node):
                return
            resource = _resource(node, scalars)
            keys = ()
        sibling_name = scalars.get("name", "")
        consumed = self.composed(pairs, path, resource, parent) if compose.triggered(keys_here) else frozenset()
        hub = "hub" in keys_here  # istio: bare `image` names below it take this hub
        self.under_hub += hub
        for key, value in pairs:
            if key in consumed:
                continue
            if isinstance(value, ScalarNode):
                text = _string(value)
                if not text:
                    continue
                whole = (
                    key == "image"
                    or (key == "reference" and (parent == "image" or _sibling(pairs, "type") == "image"))  # Strimzi's {type: image, reference}
                    or (_is_image_name(key) and _has_structure(text))
                    or (key in ("value", "default") and _is_image_name(sibling_name) and _has_structure(text))
                )
                if not (whole or self.fields) and _inert(text):  # most scalars: nothing to find in them
                    continue
                child_keys = (*keys, key)
                whole = whole or self._declared(child_keys, resource)
                self.scalar(value, _child_path(path, key), child_keys, resource, _carrier(key, resource, keys), whole=whole)
            else:
                self.node(value, _child_path(path, key), (*keys, key), resource, key)
        self.under_hub -= hub  # not restored when walking fails: the walk is then abandoned

    def sequence(self, node: SequenceNode, path: str, keys: tuple[str, ...], resource: Resource, parent: str | None) -> None:
        item_keys = (*keys[:-1], keys[-1] + "[]") if keys else ("[]",)
        previous: str | None = None
        for i, item in enumerate(node.value):
            item_path = f"{path}[{i}]"
            if isinstance(item, ScalarNode):
                after_flag = parent in ("args", "command") and previous is not None and _is_image_flag(previous)
                whole = after_flag or self._declared(item_keys, resource)
                carrier = "arg" if parent in ("args", "command") else "field"
                self.scalar(item, item_path, item_keys, resource, carrier, whole=whole)
                previous = _string(item)
            else:
                self.node(item, item_path, item_keys, resource, parent)
                previous = None

    def composed(self, pairs: list[tuple[str, Node]], path: str, resource: Resource, parent: str | None) -> frozenset[str]:
        """Record the image the mapping's fields compose, if any; the keys that are its parts."""
        values = {k: v for k, v in pairs if isinstance(v, ScalarNode)}
        found = compose.shape({k: _text(v) for k, v in values.items()}, parent is not None and _is_image_name(parent), self.under_hub > 0)
        if found is None:
            return frozenset()
        if not found.composable:
            return found.consumed
        roles = (("prefix", found.prefix), ("name", found.name), ("tag", found.tag), ("digest", found.digest))
        parts = tuple(self._part(role, key, values[key]) for role, key in roles if key is not None)
        text = compose.compose(parts)
        if text is None:
            return found.consumed
        if self.host is not None:
            path, resource = self.host.path, self.host.resource
        bearer = parts[0] if parts[0].value else parts[1]
        node = values[bearer.key]
        safe = all(p.start >= 0 or not p.value for p in parts)
        at = bearer.start if bearer.start >= 0 else self._stream_offset(node)
        if at not in self.found:
            self.found[at] = Location(self.document, path, at, at, text, "composed", resource, safe, parts)
        return found.consumed

    def _part(self, role: str, key: str, node: ScalarNode) -> compose.Part:
        """A field of a composed image, with the stream span of its characters (-1: not found verbatim)."""
        value = _text(node)
        if not value:
            if self.host is None and node.style in ('"', "'"):
                at = self.outer(node.start_mark.index + 1, "")
                if at is not None:
                    return compose.Part(role, key, value, at, at)
            return compose.Part(role, key, value, -1, -1)
        inner = self._mapper(node)(0, value)
        start = None if inner is None else self.outer(inner, value)
        if start is None:
            return compose.Part(role, key, value, -1, -1)
        return compose.Part(role, key, value, start, start + len(value.encode("utf-8")))

    def _declared(self, keys: tuple[str, ...], resource: Resource) -> bool:
        return bool(self.fields) and any(f.segments == keys and (f.kind is None or f.kind == resource.kind) for f in self.fields)

    def scalar(self, node: ScalarNode, path: str, keys: tuple[str, ...], resource: Resource, carrier: str | None, whole: bool) -> None:
        value = _string(node)
        if not value or (not whole and _inert(value)):
            return
        verbatim = node.ctag is _DEFAULT_STR or not self._typed(node)
        carrier = carrier or "field"
        if whole and whole_reference(value) is not None:
            self.record(node, path, resource, carrier, 0, value, verbatim)
            return
        for offset, token in _tokens(value):
            self.record(node, path, resource, carrier, offset, token, verbatim)
        if verbatim and (self.host is None or self.host.depth < _EMBEDDED_DEPTH) and _may_embed(value):
            self.embedded(node, path, resource, carrier)

    def embedded(self, node: ScalarNode, path: str, resource: Resource, carrier: str) -> None:
        value: str = node.value
        try:
            roots = compose_text(value)
        except (YAMLError, RecursionError):
            return
        except LimitError as exc:  # refused, not skipped: a reference could hide in what is not read
            raise NestingError(self._stream_offset(node), str(exc)) from None
        mapper = self._mapper(node)

        def outer(offset: int, token: str) -> int | None:
            inner = mapper(offset, token)
            return None if inner is None else self.outer(inner, token)

        if self.host is None:
            start = self._stream_offset(node)
            host = _Host(path, resource, start, 1, carrier)
        else:
            host = _Host(self.host.path, self.host.resource, self.host.start, self.host.depth + 1, self.host.carrier)
        for root in roots:
            if isinstance(root, (MappingNode, SequenceNode)):
                walker = _Walker(value, self.document, self.fields, self.found, self.unsafe, outer, host)
                walker.node(root, "", (), Resource(), None)

    def record(self, node: ScalarNode, path: str, resource: Resource, carrier: str, offset: int, token: str, verbatim: bool = True) -> None:
        if self.host is not None:
            path, resource, carrier = self.host.path, self.host.resource, self.host.carrier
        inner = self._mapper(node)(offset, token) if verbatim else None
        start = None if inner is None else self.outer(inner, token)
        if start is None:
            # Read from the value but not found verbatim in the text (escapes, `!!binary`): report, never edit.
            at = self._stream_offset(node)
            self.unsafe.append(Location(self.document, path, at, at, token, carrier, resource, safe=False))
        elif start not in self.found:
            self.found[start] = Location(self.document, path, start, start + len(token.encode("utf-8")), token, carrier, resource)

    def _typed(self, node: ScalarNode) -> bool:
        """The scalar has an explicit YAML type other than `!!str`: what it holds is reported, never edited.

        A decoded `!!binary` is not the text, and a mirror written into `!!timestamp` or
        `!!int` would make the manifest one that kubectl refuses.
        """
        tag = node.tag or ""
        return tag.startswith(_CORE_TAG) and tag != STR_TAG and _EXPLICIT_TAG_RE.match(self.text, node.start_mark.index) is not None

    def _stream_offset(self, node: Node) -> int:
        """Where `node` starts in the stream (for an embedded document: where its host scalar starts)."""
        if self.host is not None:
            return self.host.start
        at = self.outer(node.start_mark.index, "")
        assert at is not None  # the top level's `outer` maps every offset
        return at

    def _mapper(self, node: ScalarNode) -> Callable[[int, str], int | None]:
        """Map an offset in the scalar's value to an offset in this walker's text (one per scalar)."""
        mapper = self.mappers.get(id(node))
        if mapper is None:
            mapper = self.mappers[id(node)] = self._new_mapper(node)
        return mapper

    def _new_mapper(self, node: ScalarNode) -> Callable[[int, str], int | None]:
        begin: int = node.start_mark.index
        end: int = node.end_mark.index
        if node.style in ("|", ">"):
            # The header line (`|-  # a comment`) is not content: a comment there may repeat the token.
            begin = self.text.find("\n", begin, end) + 1 or end
        value: str = node.value
        span = self.text[begin:end]
        if span == value:  # written as it reads (most plain scalars): same offsets
            return lambda offset, _token: begin + offset


        # The k-th occurrence of a token in the value is the k-th in the text when both hold it
        # equally often; otherwise escapes or folding changed it and it is not edited (KM002).
        # Whole tokens are counted in one pass over each side; parts of tokens one by one.
        runs: list[dict[str, list[int]]] = []
        known: dict[tuple[str, bool], tuple[dict[int, int], bool]] = {}

        def positions(token: str, part: bool) -> tuple[dict[int, int], bool]:
            found = known.get((token, part))
            if found is not None:
                return found
            in_value = None
            if not part:
                if not runs:
                    runs.extend((_runs(value), _runs(span)))
                in_value, in_span = runs[0].get(token), runs[1].get(token, [])
            if in_value is None:
                in_value, in_span = _occurrences(value, token), _occurrences(span, token)
            found = known[(token, part)] = dict(zip(in_value, in_span)), len(in_value) == len(in_span)
            return found

        def mapper(offset: int, token: str) -> int | None:
            pairs, consistent = positions(token, part=False)
            if consistent and offset not in pairs:  # a part of a longer run (`docker://REF`)
                pairs, consistent = positions(token, part=True)
            return begin + pairs[offset] if consistent else None


        return mapper


def _runs(text: str) -> dict[str, list[int]]:
    """Where each maximal run of reference characters starts in `text`, by run."""
    found: dict[str, list[int]] = {}
    for match in _TOKEN_RE.finditer(text):
        found.setdefault(match.group(), []).append(match.start())
    return found


def _occurrences(text: str, token: str) -> list[int]:
    positions = []
    i = text.find(token)
    while i != -1:
        positions.append(i)
        i = text.find(token, i + 1)
    return positions


def _text(node: ScalarNode) -> str:
    """A scalar's value as a template prints it into an image (a null prints nothing)."""
    return "" if node.tag == _NULL_TAG else str(node.value)


def _has_structure(value: object) -> bool:
    return isinstance(value, str) and any(c in value for c in "/:@")


def _is_image_flag(item: str) -> bool:
    return item.startswith("-") and "=" not in item and _is_image_name(item.lstrip("-"))


def references_in_text(value: str) -> Iterator[tuple[int, str]]:
    """(offset, reference) for each reference this module finds in free text (image flags, qualified references)."""
    return _tokens(value)


def _tokens(value: str) -> Iterator[tuple[int, str]]:
    """References inside free text: `--*image*=REF`, qualified references, `docker://REF`."""
    if "=" in value and "image" in value.lower():
        for match in _FLAG_RE.finditer(value):
            if _is_image_name(match.group(1)) and whole_reference(match.group(3)) is not None:
                yield match.start(3), match.group(3)
    if "/" not in value or (":" not in value and "@" not in value):
        return
    for match in _TOKEN_RE.finditer(value):
        token, start = match.group(), match.start()
        if "://" in token:
            scheme, _, rest = token.partition("://")
            if scheme == "docker" and whole_reference(rest) is not None:  # an image by its scheme, short names too (CDI)
                yield start + len(scheme) + 3, rest
            continue
        if "/" in token and _qualified(token):
            yield start, token


def _sibling(pairs: list[tuple[str, Node]], key: str) -> str | None:
    """The string value of `key` among a mapping's pairs, if it has one."""
    return next((_string(v) for k, v in pairs if k == key and isinstance(v, ScalarNode)), None)


def _inert(value: str) -> bool:
    """Free text in which `_tokens` finds nothing (no `/`, no `=`) and no document is embedded."""
    return "/" not in value and "=" not in value and not _may_embed(value)


def _may_embed(value: str) -> bool:
    lowered = value.lower()
    return ("image" in lowered or "registry" in lowered) and ("\n" in value or value.lstrip().startswith(("{", "[")))


def _carrier(key: str, resource: Resource, keys: tuple[str, ...]) -> str:
    if key == "image":
        return "image-key"
    if keys[-1:] == ("env[]",):
        return "env"
    if resource.kind == "ConfigMap" and keys[:1] == ("data",):
        return "configmap"
    if keys[-2:] == ("metadata", "annotations"):
        return "annotation"
    return "field"


IGNORE_ANNOTATION = "kmirror.dev/ignore"


def _ignored(node: MappingNode) -> bool:
    """True for a resource annotated `kmirror.dev/ignore: "true"`: its images are neither rewritten nor reported."""
    for k, v in node.value:
        if isinstance(k, ScalarNode) and k.value == "metadata" and isinstance(v, MappingNode):
            for mk, mv in v.value:
                if isinstance(mk, ScalarNode) and mk.value == "annotations" and isinstance(mv, MappingNode):
                    return any(isinstance(ak, ScalarNode) and ak.value == IGNORE_ANNOTATION and isinstance(av, ScalarNode) and av.value == "true" for ak, av in mv.value)
    return False


def _resource(node: MappingNode, scalars: dict[str, str]) -> Resource:
    name = namespace = None
    for k, v in node.value:
        if isinstance(k, ScalarNode) and k.value == "metadata" and isinstance(v, MappingNode):
            meta = {mk.value: text for mk, mv in v.value if isinstance(mv, ScalarNode) and (text := _string(mv)) is not None}
            name, namespace = meta.get("name"), meta.get("namespace")
    return Resource(scalars.get("apiVersion"), scalars.get("kind"), name, namespace)
