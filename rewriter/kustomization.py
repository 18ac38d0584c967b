"""kustomize `images:` entries in source files, rewritten so that a tree rewritten in place renders as its render rewritten.

An entry (kustomize's `types.Image`; `api/filters/imagetag` in kustomize v5) says what the
build does to the images of the resources it reads: `name` is a *matcher* (a regular
expression, anchored, followed by an optional `:tag` and `@digest`, tested against the image
as written), `newName` is what gets pulled instead of the name, `newTag` replaces the tag
(and drops the digest), `digest` replaces the digest (and drops the tag), `tagSuffix` is
appended to the tag. Where entries are read:

- a kustomization: a document of `kind: Kustomization` or `Component`, or any document of a
  file named `kustomization.yaml`, `kustomization.yml` or `Kustomization`: `images[]`;
- Flux's Kustomization (`kustomize.toolkit.fluxcd.io`): `spec.images[]`;
- Flux's HelmRelease (`helm.toolkit.fluxcd.io`): `spec.postRenderers[].kustomize.images[]`, which
  helm-controller applies to the rendered chart. The chart's own default values are not in these
  files (it usually comes from a repository), so the images they give render as written and the
  matcher is kept as written; `newName` is mirrored. Where the HelmRelease's own `spec.values`
  give an image the matcher matches and the rules mirror, the render would carry the mirror and
  the matcher would miss it: KM002, no edit;
- Argo CD's Application (and an ApplicationSet's template): `spec.source.kustomize.images[]`
  and `spec.sources[].kustomize.images[]`, each a string that Argo CD hands to
  `kustomize edit set image`: `name=newName[:tag][@digest]`, `name:tag`, `name@digest`.

When kmirror rewrites the bases' images, a matcher must follow them, or the entry stops
matching and the overlay silently loses its tag or name. So the matcher is rewritten as the
rules rewrite the name (`ghcr.io/org/api` -> `harbor.example.com/ghcr.io/org/api`), and
`newName` as the rules rewrite the image pulled (`newName` with the entry's tag and digest).
That holds for every image the matcher matches as long as the rules treat all tags of the
name alike; where a rule names single tags of it (`from: docker.io/library/nginx:1.16`),
or a rule would change the entry's tag, no edit is made and KM002 says what cannot be
written. A `newName` is an image reference like any other for `check` and `images`; a
matcher is not (nothing pulls it).

JSON 6902 patches (patch files, and `patches[].patch` strings of a kustomization) that set a
field named `image` are applied before the images transformer: their `value` is an image
like any other, though `locate` cannot tell it from other values (a short `nginx:1.25`).

What this cannot make hold, and says so with the file and line (notes): images of remote
bases (`resources:` URLs) and of remote `helmCharts` (with a `repo`), whose files this
repository does not hold.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from typing import NamedTuple

from ruamel.yaml.error import YAMLError
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from rewriter.findings import UNSAFE, Finding
from rewriter.locate import STR_TAG, Location, Resource, templated, whole_reference
from rewriter.plan import Image, Plan
from rewriter.reference import ImageRef
from rewriter.rules import RuleSet
from rewriter.splice import Edit
from rewriter.stream import Document, Source, compose_text, documents

KUSTOMIZATION_NAMES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
CARRIER = "kustomize-images"  # Location.carrier of a `newName`
# Searched in whole streams, so each starts with literal text, which the search finds fast
# (a pattern starting with `^` or a newline is tried at every line); `_top_level` then checks
# that a match starts a line.
_KINDS_RE = re.compile(rb"kind:[ \t]*[\"']?(?:Kustomization|Component|Application|ApplicationSet|HelmRelease)\b")
_TOP_KIND_RE = re.compile(r"^kind:[ \t]*[\"']?(?:Kustomization|Component|Application|ApplicationSet|HelmRelease)\b", re.MULTILINE)  # in one document
# The stream starts with a sequence: `- ` or `[` after blank lines, comments and markers (not a
# second `---`, which starts a document: a stream of manifests must not be composed whole here).
_SEQUENCE_RE = re.compile(rb"(?:\xef\xbb\xbf)?(?:[ \t\r\n]|#[^\n]*\n|---[ \t]*\r?\n)*(?:-[ \t\r\n]|\[)")
# What may follow a matcher in an image (kustomize api/filters/imagetag): a tag, a digest.
_TAG_SUFFIX = r"(:[a-zA-Z0-9_.{}-]*)?(@[a-zA-Z][a-zA-Z0-9]*:[a-zA-Z0-9_.{}-]*)?$"
_REMOTE_RE = re.compile(r"^(?:[a-z][a-z0-9+.-]*://|git@|git::|(?:github\.com|gitlab\.com|bitbucket\.org)/)|\?ref=|\?version=", re.IGNORECASE)


class Span(NamedTuple):
    """A value's characters in the stream: bytes `[start:end]`, which read `text`."""

    start: int
    end: int
    text: str


class Entry(NamedTuple):
    """One `images:` entry: the matcher, `newName` (None when absent), the tag and digest it sets.

    `claimed` holds the stream's spans of the scalars the entry is written in (references
    found inside them are this module's to decide); `name`/`new_name` are None when their text is
    not verbatim in the file (escapes) or is templated. `values` is set for a HelmRelease's
    post-renderer: the path of the values in the same document (its matcher is kept as written).
    """

    document: int
    path: str
    resource: Resource
    at: int
    claimed: tuple[tuple[int, int], ...]
    name: Span | None
    new_name: Span | None
    new_tag: str | None
    digest: str | None
    raw_name: str
    values: str | None = None


class Note(NamedTuple):
    """Where the property cannot hold: `at` (a byte offset) and why."""

    at: int
    message: str


class Entries(NamedTuple):
    """A stream's entries, notes, and the JSON 6902 patch values that set an `image` field."""

    entries: tuple[Entry, ...]
    notes: tuple[Note, ...]
    patched: tuple[Location, ...] = ()

    @property
    def found(self) -> bool:
        """True when there is anything to decide or say."""
        return bool(self.entries or self.notes or self.patched)


def locate_entries(source: Source) -> Entries:
    """Every kustomize `images:` entry of the stream (cheap when it holds no kustomization or Application)."""
    named = os.path.basename(source.name) in KUSTOMIZATION_NAMES
    operations = b"/image" in source.data and _SEQUENCE_RE.match(source.data) is not None  # a JSON 6902 patch file
    if not named and not operations and not _top_level(_KINDS_RE, source.data):
        return Entries((), ())
    entries: list[Entry] = []
    notes: list[Note] = []
    patched: list[Location] = []
    wanted = None if named or operations else (lambda text: _TOP_KIND_RE.search(text) is not None)
    for document in documents(source, wanted):
        if isinstance(document.root, MappingNode):
            _document(document, named, entries, notes, patched)
        elif isinstance(document.root, SequenceNode):
            _operations(document, document.root, patched)
    return Entries(tuple(entries), tuple(notes), tuple(patched))


def _top_level(pattern: re.Pattern[bytes], data: bytes) -> bool:
    """`pattern` matches at the start of a line of `data`."""
    return any(m.start() == 0 or data[m.start() - 1] == 10 for m in pattern.finditer(data))


def located(found: Entries, locations: list[Location]) -> list[Location]:
    """`locations` without those inside an entry (this module decides those), with the patched image values, in text order."""
    spans = [span for entry in found.entries for span in entry.claimed] + [(loc.start, loc.end) for loc in found.patched]
    kept = [loc for loc in locations if not any(start <= loc.start < end for start, end in spans)]
    return sorted([*kept, *found.patched], key=lambda loc: loc.start)


def _operations(document: Document, root: SequenceNode, patched: list[Location]) -> None:
    """JSON 6902 operations (a kustomize patch file) whose `value` is the whole image of an `image` field.

    kustomize applies them before its images transformer; a short name there (`nginx:1.25`)
    is an image like any other once built, so it is rewritten in the patch too.
    """
    for i, value, text in _image_values(root):
        span = _span(document, value)
        at = document.stream_offset(value.start_mark.index)
        if span is None:
            patched.append(Location(document.number, f"[{i}].value", at, at, text, "field", Resource(), safe=False))
        else:
            patched.append(Location(document.number, f"[{i}].value", span.start, span.end, text, "field", Resource()))


def _inline_patches(document: Document, top: dict[str, Node], patched: list[Location]) -> None:
    """The same operations written inline in a kustomization (`patches[].patch`, `patchesJson6902[].patch`).

    The patch is a string holding YAML or JSON; a value is edited where its text occurs
    exactly once in the string as written and as read, else reported (KM002).
    """
    for key in ("patches", "patchesJson6902"):
        items = top.get(key)
        if not isinstance(items, SequenceNode):
            continue
        for n, item in enumerate(items.value):
            patch = _pairs(item).get("patch") if isinstance(item, MappingNode) else None
            written = _text(patch)
            if patch is None or written is None or "/image" not in written:
                continue
            try:
                roots = compose_text(written)
            except (YAMLError, RecursionError):
                continue  # kustomize refuses the patch itself
            raw = document.text[patch.start_mark.index : patch.end_mark.index]
            for root in roots:
                if not isinstance(root, SequenceNode):
                    continue
                for i, _value, text in _image_values(root):
                    path = f"{key}[{n}].patch[{i}].value"
                    if raw.count(text) == 1 and written.count(text) == 1:
                        start = document.stream_offset(patch.start_mark.index + raw.index(text))
                        patched.append(Location(document.number, path, start, start + len(text.encode("utf-8")), text, "field", Resource()))
                    else:
                        at = document.stream_offset(patch.start_mark.index)
                        patched.append(Location(document.number, path, at, at, text, "field", Resource(), safe=False))


def _image_values(root: SequenceNode) -> Iterator[tuple[int, Node, str]]:
    """`(index, value node, value)` of each `add`/`replace` operation that sets a field named `image` to a reference."""
    for i, item in enumerate(root.value):
        if not isinstance(item, MappingNode):
            return
        fields = _pairs(item)
        path, value = _text(fields.get("path")), fields.get("value")
        text = _text(value)
        if _text(fields.get("op")) in ("add", "replace") and path and path.endswith("/image") and text and value is not None and whole_reference(text):
            yield i, value, text


def plan_entries(source: Source, found: Entries, rules: RuleSet, planned: Plan) -> Plan:
    """`planned` with the entries' edits, their `newName` images and their problems added."""
    images = list(planned.images)
    edits = list(planned.edits)
    problems = list(planned.problems)
    for entry in found.entries:
        _plan_entry(source, entry, rules, images, edits, problems)
    images.sort(key=lambda image: image.location.start)
    return Plan(tuple(images), tuple(edits), tuple(problems))


def note_lines(source: Source, found: Entries) -> tuple[str, ...]:
    """The notes as `file:line:column: message`."""
    lines = []
    for note in found.notes:
        line, column = source.position(note.at)
        lines.append(f"{source.name}:{line}:{column}: {note.message}")
    return tuple(lines)


def split(value: str) -> tuple[str, str, str]:
    """`(name, tag, digest)` of an image value, split the way kustomize splits it ("" when absent)."""
    slash = value.find("/")
    offset = slash if slash > 0 else 0
    search = value[offset:]
    at, colon = search.find("@"), search.find(":")
    if at < 0 and colon < 0:
        return value, "", ""
    if at >= 0 and (colon < 0 or at < colon):
        return value[: offset + at], "", value[offset + at + 1 :]
    if at >= 0:
        return value[: offset + colon], value[offset + colon + 1 : offset + at], value[offset + at + 1 :]
    return value[: offset + colon], value[offset + colon + 1 :], ""


def parse_argo(value: str) -> tuple[tuple[int, int], tuple[int, int] | None, str, str] | None:
    """An Argo CD image string as `kustomize edit set image` reads it, or None when it refuses it.

    Returns the matcher's and the new name's `(start, end)` in `value` (None: no new name),
    the tag and the digest ("" when absent).
    """
    key, separator, rest = value.partition("=")
    if separator:
        name, tag, digest = split(rest)
        return (0, len(key)), (len(key) + 1, len(key) + 1 + len(name)), tag, digest
    name, tag, digest = split(value)
    if name == value:
        return None
    return (0, len(name)), None, tag, digest


def _document(document: Document, named: bool, entries: list[Entry], notes: list[Note], patched: list[Location]) -> None:
    root = document.root
    assert isinstance(root, MappingNode)
    top = _pairs(root)
    kind = _text(top.get("kind"))
    api = _text(top.get("apiVersion")) or ""
    metadata = top.get("metadata")
    resource = Resource(api or None, kind, _text(_pairs(metadata).get("name")) if isinstance(metadata, MappingNode) else None)
    if kind in ("Kustomization", "Component") and api.startswith("kustomize.toolkit.fluxcd.io/"):
        spec = top.get("spec")
        if isinstance(spec, MappingNode):
            _mappings(document, resource, _pairs(spec).get("images"), "spec.images", entries)
    elif kind == "HelmRelease" and api.startswith("helm.toolkit.fluxcd.io/"):
        spec = top.get("spec")
        renderers = _pairs(spec).get("postRenderers") if isinstance(spec, MappingNode) else None
        for i, renderer in enumerate(renderers.value if isinstance(renderers, SequenceNode) else ()):
            kustomize = _pairs(renderer).get("kustomize") if isinstance(renderer, MappingNode) else None
            if isinstance(kustomize, MappingNode):
                path = f"spec.postRenderers[{i}].kustomize.images"
                _mappings(document, resource, _pairs(kustomize).get("images"), path, entries, values="spec.values")
    elif kind in ("Kustomization", "Component") or (named and kind is None):
        _mappings(document, resource, top.get("images"), "images", entries)
        _remote(document, top, notes)
        _inline_patches(document, top, patched)
    elif kind in ("Application", "ApplicationSet") and api.startswith("argoproj.io/"):
        spec = top.get("spec")
        if kind == "ApplicationSet" and isinstance(spec, MappingNode):
            template = _pairs(spec).get("template")
            spec, prefix = (_pairs(template).get("spec"), "spec.template.spec") if isinstance(template, MappingNode) else (None, "")
        else:
            prefix = "spec"
        if isinstance(spec, MappingNode):
            for path, images in _argo_images(_pairs(spec), prefix):
                _strings(document, resource, images, path, entries)


def _argo_images(spec: dict[str, Node], prefix: str) -> Iterator[tuple[str, Node]]:
    sources: list[tuple[str, Node]] = []
    if isinstance(spec.get("source"), MappingNode):
        sources.append((f"{prefix}.source", spec["source"]))
    many = spec.get("sources")
    if isinstance(many, SequenceNode):
        sources.extend((f"{prefix}.sources[{i}]", item) for i, item in enumerate(many.value))
    for path, node in sources:
        kustomize = _pairs(node).get("kustomize") if isinstance(node, MappingNode) else None
        if isinstance(kustomize, MappingNode) and "images" in _pairs(kustomize):
            yield f"{path}.kustomize.images", _pairs(kustomize)["images"]


def _mappings(document: Document, resource: Resource, images: Node | None, path: str, entries: list[Entry], values: str | None = None) -> None:
    if not isinstance(images, SequenceNode):
        return
    for i, item in enumerate(images.value):
        if not isinstance(item, MappingNode):
            continue
        fields = _pairs(item)
        name = fields.get("name")
        if not isinstance(name, ScalarNode) or not _text(name):
            continue
        new_name = fields.get("newName")
        claimed = tuple(_bounds(document, n) for n in (name, new_name) if isinstance(n, ScalarNode))
        entries.append(
            Entry(
                document=document.number,
                path=f"{path}[{i}]",
                resource=resource,
                at=document.stream_offset(name.start_mark.index),
                claimed=claimed,
                name=_span(document, name),
                new_name=_span(document, new_name) if isinstance(new_name, ScalarNode) and _text(new_name) else None,
                new_tag=_scalar(fields.get("newTag")),
                digest=_scalar(fields.get("digest")),
                raw_name=str(name.value),
                values=values,
            )
        )


def _strings(document: Document, resource: Resource, images: Node, path: str, entries: list[Entry]) -> None:
    if not isinstance(images, SequenceNode):
        return
    for i, item in enumerate(images.value):
        value = _text(item)
        if not value or not isinstance(item, ScalarNode) or templated(value):  # Argo CD substitutes ${ARGOCD_APP_REVISION}, ApplicationSets {{ }}
            continue
        parsed = parse_argo(value)
        if parsed is None:
            continue
        (name_start, name_end), new, tag, digest = parsed
        whole = _span(document, item)
        start = document.stream_offset(item.start_mark.index)

        def part(bounds: tuple[int, int]) -> Span | None:
            if whole is None:
                return None
            head = len(value[: bounds[0]].encode("utf-8"))
            return Span(whole.start + head, whole.start + head + len(value[bounds[0] : bounds[1]].encode("utf-8")), value[bounds[0] : bounds[1]])

        entries.append(
            Entry(
                document=document.number,
                path=f"{path}[{i}]",
                resource=resource,
                at=start,
                claimed=(_bounds(document, item),),
                name=part((name_start, name_end)),
                new_name=part(new) if new is not None and new[1] > new[0] else None,
                new_tag=tag or None,
                digest=digest or None,
                raw_name=value[name_start:name_end],
            )
        )


def _remote(document: Document, top: dict[str, Node], notes: list[Note]) -> None:
    """Notes for remote bases and for helmCharts: their images are not in this repository's files."""
    for key in ("resources", "bases", "components"):
        items = top.get(key)
        if not isinstance(items, SequenceNode):
            continue
        for item in items.value:
            value = _text(item)
            if value and _REMOTE_RE.search(value):
                notes.append(Note(
                    document.stream_offset(item.start_mark.index),
                    f"remote {key[:-1] if key != 'bases' else 'base'} {value}: its images are not in these files, so rewriting "
                    "them cannot mirror what it brings (and rewritten images: matchers no longer match it); "
                    "render this kustomization with 'kmirror kustomize' or the ImageMirror plugin",
                ))
    charts = top.get("helmCharts")
    if isinstance(charts, SequenceNode):
        for item in charts.value:
            fields = _pairs(item) if isinstance(item, MappingNode) else {}
            repo = _text(fields.get("repo"))
            if repo:  # a chart in the tree is the chart values files' business (kmirror rewrite warns of its templates)
                notes.append(Note(
                    document.stream_offset(item.start_mark.index),
                    f"helmCharts {_text(fields.get('name')) or '?'} comes from {repo}: its templates and default values are not "
                    "in these files, so the images they give are rendered as written; check the build with "
                    "'kmirror kustomize --enable-helm' or render through kmirror",
                ))


def _plan_entry(source: Source, entry: Entry, rules: RuleSet, images: list[Image], edits: list[Edit], problems: list[Finding]) -> None:
    suffix = (f":{entry.new_tag}" if entry.new_tag else "") + (f"@{entry.digest}" if entry.digest else "")
    changes: list[Edit] = []
    trouble: list[str] = []
    matcher = whole_reference(entry.raw_name)
    if entry.values is not None:
        for image in _values_it_would_miss(entry, images):
            mirrored = image.decision.mirrored
            assert mirrored is not None
            trouble.append(
                f"{image.location.path} gives {image.location.text}, which the rules mirror to {mirrored}: the matcher would then miss it, "
                f"and it must stay as written for the chart's own images; neither is changed: give the entry newName "
                f"{ImageRef(mirrored.domain, mirrored.path, None, None)} instead"
            )
            spans = [(part.start, part.end) for part in image.location.parts] or [(image.location.start, image.location.end)]
            edits[:] = [e for e in edits if not any(start <= e.start and e.end <= end for start, end in spans)]
    elif matcher is None or matcher.tag is not None or matcher.digest is not None:
        if not templated(entry.raw_name) and _touched_by_rules(entry.raw_name, rules):
            trouble.append(f"matcher {entry.raw_name!r} is not a plain image name, so kmirror cannot tell which images it matches once rewritten")
    else:
        mirrored = rules.decide(matcher).mirrored
        if mirrored is not None:
            if _per_tag(matcher, rules):
                trouble.append(f"a rule names single tags of {matcher}, but the matcher {entry.raw_name!r} matches every tag")
            elif entry.name is None:
                trouble.append(f"matcher {entry.raw_name!r} is written with escapes; change it to {mirrored} by hand")
            else:
                changes.append(Edit(entry.name.start, entry.name.end, entry.name.text, str(mirrored)))
    if entry.new_name is not None:
        ref = whole_reference(entry.new_name.text + suffix)
        if ref is not None and ref.tag == (entry.new_tag or None) and ref.digest == (entry.digest or None):
            decision = rules.decide(ref)
            line, column = source.position(entry.new_name.start)
            location = Location(entry.document, f"{entry.path}.newName", entry.new_name.start, entry.new_name.end, entry.new_name.text, CARRIER, entry.resource)
            images.append(Image(location, ref, decision, line, column, ref.registry in rules.blocked and not decision.allowed))
            mirrored = decision.mirrored
            if mirrored is not None:
                new_text = str(ImageRef(mirrored.domain, mirrored.path, None, None))
                if (mirrored.tag, mirrored.digest) != (ref.tag, ref.digest):
                    trouble.append(f"the rules give {mirrored} for {ref}: write newName {new_text!r} with newTag/digest {mirrored.suffix!r} by hand")
                elif not suffix and _per_tag(ref, rules):
                    trouble.append(f"a rule names single tags of {ref}, but newName {entry.new_name.text!r} takes every tag of the images it replaces")
                else:
                    changes.append(Edit(entry.new_name.start, entry.new_name.end, entry.new_name.text, new_text))
    if trouble:
        line, column = source.position(entry.at)
        message = f"kustomize images entry {entry.raw_name!r} cannot be rewritten so the build still matches: " + "; ".join(trouble)
        problems.append(Finding(
            code=UNSAFE, message=message, file=source.name, line=line, column=column, ref=entry.raw_name,
            registry=matcher.registry if matcher is not None else "", suggested=None, resource=entry.resource, path=entry.path,
        ))
        return
    edits.extend(changes)


def matches(name: str, value: str) -> bool:
    """True when an entry whose `name` is this matcher applies to image `value` (as written)."""
    try:
        return re.match("^" + name + _TAG_SUFFIX, value) is not None
    except re.error:  # kustomize ignores the compile error and then cannot match either
        return False


def _values_it_would_miss(entry: Entry, images: list[Image]) -> Iterator[Image]:
    """For a HelmRelease's post-renderer entry (its matcher kept as written): the images of the
    release's own values that the matcher matches and the rules mirror, which it would then miss."""
    assert entry.values is not None
    for image in images:
        location = image.location
        inside = location.path == entry.values or location.path.startswith((entry.values + ".", entry.values + "["))
        if location.document == entry.document and inside and image.decision.mirrored is not None and matches(entry.raw_name, location.text):
            yield image


def _per_tag(ref: ImageRef, rules: RuleSet) -> bool:
    """True when a rule for single tags or digests of `ref`'s repository comes before the rule that takes the whole name."""
    canonical = rules.canonical(ref)
    for rule in rules.rules:
        if rule.exact is not None:
            if (rule.exact.registry, rule.exact.repository) == (canonical.registry, canonical.repository):
                return True
        elif rule.prefix is not None and rule.prefix.strip(canonical) is not None:
            return False
    return False


def _touched_by_rules(pattern: str, rules: RuleSet) -> bool:
    """Whether the rules would rewrite what looks like the image this matcher names (its name before any tag)."""
    name = whole_reference(split(pattern)[0])
    return name is not None and rules.decide(name).mirrored is not None




def _pairs(node: MappingNode) -> dict[str, Node]:
    return {k.value: v for k, v in node.value if isinstance(k, ScalarNode) and isinstance(k.value, str)}


def _text(node: Node | None) -> str | None:
    """A string scalar's value (None for anything else)."""
    if isinstance(node, ScalarNode) and node.tag == STR_TAG and isinstance(node.value, str):
        return node.value
    return None


def _scalar(node: Node | None) -> str | None:
    """Any scalar's value as written (a tag `1.20` is a string to kustomize too); None when absent or empty."""
    if isinstance(node, ScalarNode) and isinstance(node.value, str) and node.value:
        return node.value
    return None


def _bounds(document: Document, node: Node) -> tuple[int, int]:
    return document.stream_offset(node.start_mark.index), document.stream_offset(node.end_mark.index)


def _span(document: Document, node: Node | None) -> Span | None:
    """The stream's bytes holding a string scalar's value verbatim, or None (escapes, folding, templates)."""
    value = _text(node)
    if value is None or node is None or templated(value):
        return None
    begin, end = node.start_mark.index, node.end_mark.index
    style = getattr(node, "style", None)
    if style in ("'", '"'):
        begin, end = begin + 1, end - 1
    elif style:  # block scalars
        return None
    if document.text[begin:end] != value:
        return None
    return Span(document.stream_offset(begin), document.stream_offset(end), value)
