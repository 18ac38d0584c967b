"""Image values of a Helm chart: find them, mirror them, write an override or splice values.yaml.

Shapes recognised, in the chart's values and in each subchart's (under the subchart's name
or alias)::

    image: "registry/repository:tag"          # one string, under a key ending in `image`
    image: {registry, repository, tag, digest} # registry, tag and digest optional
    global: {imageRegistry: REGISTRY}          # when set, replaces image.registry (bitnami)

and every other shape `rewriter.compose` knows (`{registry, image, tag, digest}`,
`{repository, image, version}`, `{hub, image, tag}`, `{name, version}`, a shared `hub` or
`global.image.registry`), changed field by field as `kmirror rewrite` changes them. A bare
name that is part of such an image is never taken for an image of its own.

Values merge as Helm merges them: the parent's `sub.image.tag` beats the subchart's own
`image.tag`; `global` is shared. Lists are not followed: Helm replaces a list as a whole,
so an override cannot reach one item. A chart may ignore `global.imageRegistry`; which
registry an image really uses is read from a render of the chart (`choose_registries`).
"""

from __future__ import annotations

import bisect
import dataclasses
import json
import re
import tarfile
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError
from ruamel.yaml.nodes import MappingNode, ScalarNode

from rewriter import compose
from rewriter.child import Limits
from rewriter.config import Config
from rewriter.errors import KmirrorError
from rewriter.files import check_size, read
from rewriter.helm import ChartRef, Render, pull, template
from rewriter.locate import whole_reference
from rewriter.pipeline import Outcome, process
from rewriter.reference import ImageRef, ReferenceError
from rewriter.rules import Decision, RuleSet
from rewriter.splice import Edit, splice
from rewriter.stream import decode

Keys = tuple[str, ...]
GLOBAL_REGISTRY: Keys = ("global", "imageRegistry")
_FIELDS = ("registry", "repository", "tag", "digest")
_SOURCE_RE = re.compile(rb"^# Source: (.+)$", re.MULTILINE)
_PLAIN_KEY_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*", re.ASCII)
_YAML_WORDS = frozenset({"true", "false", "yes", "no", "on", "off", "y", "n", "null"})


@dataclass(frozen=True)
class ValuesFile:
    """One values.yaml: its name for people, its text, where its values sit, and its file.

    `scope` is the key path of the (sub)chart in the top chart's values (`()` for the
    top chart, `("sub",)` for subchart `sub`); `path` is None inside a packaged subchart.
    """

    name: str
    text: str
    scope: Keys
    path: Path | None


@dataclass(frozen=True)
class Scalar:
    """A scalar value in a values file: its key path in the merged values and its span."""

    file: ValuesFile
    keys: Keys
    value: str
    start: int
    end: int
    is_string: bool


@dataclass(frozen=True)
class ImageValue:
    """An image in the values: where (`keys`), its shape and fields, the reference they make.

    `shape` is "string" (the value is the whole reference), "mapping" or "composed"; for a
    mapping, `fields` holds the present ones of registry/repository/tag/digest, and
    `via_global` says the rendered registry is `global.imageRegistry`, not `registry`; for a
    composed image, `fields` holds its fields by key and `roles` maps each role to its key.
    """

    keys: Keys
    shape: str
    fields: dict[str, Scalar]
    ref: ImageRef
    via_global: bool = False
    roles: tuple[tuple[str, str], ...] = ()

    def parts(self) -> tuple[compose.Part, ...]:
        """A composed image's fields as `rewriter.compose` reads them (spans unused here)."""
        return tuple(compose.Part(role, key, self.fields[key].value, -1, -1) for role, key in self.roles)


@dataclass(frozen=True)
class Change:
    """Set the value at `keys` to `new`; `old` is where it is written now (None: nowhere)."""

    keys: Keys
    old: Scalar | None
    new: str


# -- reading a chart ---------------------------------------------------------------------


def read_chart(folder: Path) -> list[ValuesFile]:
    """The values files of the chart in `folder` and of its subcharts, the top chart first."""
    files: list[ValuesFile] = []
    _read_folder(folder, (), "", files)
    return files


def _read_folder(folder: Path, scope: Keys, shown: str, files: list[ValuesFile]) -> None:
    values = folder / "values.yaml"
    if values.is_file():
        files.append(ValuesFile(f"{shown}values.yaml", _text(values), scope, values))
    aliases = _aliases(_text(folder / "Chart.yaml"), f"{shown}Chart.yaml")
    charts = folder / "charts"
    if not charts.is_dir():
        return
    for entry in sorted(charts.iterdir()):
        if entry.is_dir() and (entry / "Chart.yaml").is_file():
            name = _chart_name(_text(entry / "Chart.yaml"), f"{shown}charts/{entry.name}/Chart.yaml")
            for key in aliases.get(name, [name]):
                _read_folder(entry, (*scope, key), f"{shown}charts/{entry.name}/", files)
        elif entry.name.endswith((".tgz", ".tar.gz")):
            _read_archive(entry, scope, aliases, f"{shown}charts/{entry.name}", files)


def _read_archive(archive: Path, scope: Keys, aliases: dict[str, list[str]], shown: str, files: list[ValuesFile]) -> None:
    """A packaged subchart: its values and its own subcharts' (one level of archives)."""
    try:
        with tarfile.open(archive) as tar:
            members = {m.name: m for m in tar.getmembers() if m.isfile()}
            texts = {name: _member_text(tar, m, shown) for name, m in members.items() if name.endswith(("Chart.yaml", "values.yaml"))}
    except (OSError, tarfile.TarError) as exc:
        raise KmirrorError(f"cannot read chart: {shown}: {exc}") from None
    charts = sorted(PurePosixPath(n).parent for n in texts if n.endswith("/Chart.yaml"))
    parents = {folder: _aliases(texts[f"{folder}/Chart.yaml"], f"{shown}:{folder}/Chart.yaml") for folder in charts}
    top = [folder for folder in charts if len(folder.parts) == 1]
    if len(top) != 1:
        raise KmirrorError(f"cannot read chart: {shown}: expected one chart folder at the top of the archive")

    def visit(folder: PurePosixPath, keys: Keys) -> None:
        values = f"{folder}/values.yaml"
        if values in texts:
            files.append(ValuesFile(f"{shown}:{values}", texts[values], keys, None))
        for child in charts:
            if child.parent == folder / "charts":
                name = _chart_name(texts[f"{child}/Chart.yaml"], f"{shown}:{child}/Chart.yaml")
                for key in parents[folder].get(name, [name]):
                    visit(child, (*keys, key))

    name = _chart_name(texts[f"{top[0]}/Chart.yaml"], f"{shown}:{top[0]}/Chart.yaml")
    for key in aliases.get(name, [name]):
        visit(top[0], (*scope, key))


def _member_text(tar: tarfile.TarFile, member: tarfile.TarInfo, shown: str) -> str:
    check_size(member.size, f"{shown}:{member.name}", "chart")  # before extracting: what the archive says it holds
    handle = tar.extractfile(member)
    assert handle is not None  # a regular file
    return decode(handle.read(), f"{shown}:{member.name}").text


def _text(path: Path) -> str:
    return decode(read(str(path), "chart"), str(path)).text


def _load(text: str, name: str) -> object:
    try:
        return YAML(typ="safe", pure=False).load(text)
    except YAMLError as exc:
        raise KmirrorError(f"cannot read chart: {name}: invalid YAML: {exc}") from None


def _chart_name(text: str, name: str) -> str:
    data = _load(text, name)
    if not isinstance(data, dict) or not isinstance(data.get("name"), str):
        raise KmirrorError(f"cannot read chart: {name}: no chart name")
    return str(data["name"])


def _aliases(text: str, name: str) -> dict[str, list[str]]:
    """Subchart name -> the keys its values sit under (its aliases, else its name)."""
    data = _load(text, name)
    result: dict[str, list[str]] = {}
    dependencies = data.get("dependencies") if isinstance(data, dict) else None
    for dependency in dependencies if isinstance(dependencies, list) else []:
        if isinstance(dependency, dict) and isinstance(dependency.get("name"), str):
            key = dependency.get("alias") or dependency["name"]
            result.setdefault(dependency["name"], []).append(str(key))
    return result


# -- finding image values ----------------------------------------------------------------


def merge(files: list[ValuesFile]) -> dict[Keys, Scalar]:
    """Every scalar of the values, by key path, the parent's winning over a subchart's."""
    merged: dict[Keys, Scalar] = {}
    for file in sorted(files, key=lambda f: len(f.scope), reverse=True):
        try:
            root = YAML(typ="safe", pure=False).compose(file.text)
        except YAMLError as exc:
            raise KmirrorError(f"cannot read chart: {file.name}: invalid YAML: {exc}") from None
        if isinstance(root, MappingNode):
            for scalar in _scalars(file, root, ()):
                merged[scalar.keys] = scalar
    return merged


def _scalars(file: ValuesFile, node: MappingNode, keys: Keys) -> Iterable[Scalar]:
    for key_node, value in node.value:
        if not isinstance(key_node, ScalarNode):
            continue
        key = str(key_node.value)
        # A subchart's `global` is the shared one, not a key under the subchart.
        child = (key,) if not keys and key == "global" else (*(keys or file.scope), key)
        if isinstance(value, MappingNode):
            yield from _scalars(file, value, child)
        elif isinstance(value, ScalarNode):
            is_string = value.tag == "tag:yaml.org,2002:str"
            text = str(value.value) if value.tag != "tag:yaml.org,2002:null" else ""
            yield Scalar(file, child, text, value.start_mark.index, value.end_mark.index, is_string)


def _is_image_key(key: str) -> bool:
    return key.lower().endswith("image")




def find_images(merged: dict[Keys, Scalar], rendered: frozenset[str]) -> list[ImageValue]:
    """The image values in `merged`; `rendered` holds the names (`registry/repository`) a render shows.

    A mapping image with a `registry` key takes its registry from a non-empty
    `global.imageRegistry` unless the render shows it with its own registry only.
    """
    global_registry = merged.get(GLOBAL_REGISTRY)
    images: list[ImageValue] = []
    consumed: set[Keys] = set()
    for keys, fields in _mappings(merged).items():
        values = {key: scalar.value for key, scalar in fields.items() if scalar.is_string or key in compose.TAG_KEYS}
        under_hub = any((*keys[:i], "hub") in merged for i in range(len(keys)))
        found = compose.shape(values, bool(keys) and _is_image_key(keys[-1]), under_hub)
        if found is None or (keys, found.prefix) == (GLOBAL_REGISTRY[:1], "imageRegistry"):
            continue
        if found.name == "repository":
            image = _mapping_image(merged, keys, global_registry, rendered) if "repository" in fields else None
        else:
            consumed.update((*keys, key) for key in found.consumed)
            image = _composed_image(keys, fields, found) if found.composable else None
        if image is not None:
            images.append(image)
    for keys, scalar in merged.items():
        if keys not in consumed and _is_image_key(keys[-1]) and scalar.is_string and (keys[-1] == "image" or any(c in scalar.value for c in "/:@")):
            ref = whole_reference(scalar.value)
            if ref is not None:
                images.append(ImageValue(keys, "string", {}, ref))
    return sorted(images, key=lambda i: i.keys)


def _mappings(merged: dict[Keys, Scalar]) -> dict[Keys, dict[str, Scalar]]:
    """The scalars of the merged values grouped by the mapping that holds them."""
    groups: dict[Keys, dict[str, Scalar]] = {}
    for keys, scalar in merged.items():
        groups.setdefault(keys[:-1], {})[keys[-1]] = scalar
    return groups


def _composed_image(keys: Keys, fields: dict[str, Scalar], found: compose.Shape) -> ImageValue | None:
    named = (("prefix", found.prefix), ("name", found.name), ("tag", found.tag), ("digest", found.digest))
    roles = tuple((role, key) for role, key in named if key is not None)
    parts = tuple(compose.Part(role, key, fields[key].value, -1, -1) for role, key in roles)
    text = compose.compose(parts)
    if text is None:
        return None
    return ImageValue(keys, "composed", {key: fields[key] for _, key in roles}, compose.reference(text, parts), roles=roles)


def _mapping_image(merged: dict[Keys, Scalar], keys: Keys, global_registry: Scalar | None, rendered: frozenset[str]) -> ImageValue | None:
    fields = {name: merged[(*keys, name)] for name in _FIELDS if (*keys, name) in merged}
    own = _compose(fields, fields["registry"].value if "registry" in fields else "")
    if own is None:
        return None
    if "registry" in fields and global_registry is not None and global_registry.value:
        via_global = _compose(fields, global_registry.value)
        if via_global is not None and not (_name(own) in rendered and _name(via_global) not in rendered):
            return ImageValue(keys, "mapping", fields, via_global, via_global=True)
    return ImageValue(keys, "mapping", fields, own)


def _compose(fields: dict[str, Scalar], registry: str) -> ImageRef | None:
    text = f"{registry}/{fields['repository'].value}" if registry else fields["repository"].value
    if "tag" in fields and fields["tag"].value:
        text += f":{fields['tag'].value}"
    if "digest" in fields and fields["digest"].value:
        text += f"@{fields['digest'].value}"
    return whole_reference(text)


def _name(ref: ImageRef) -> str:
    return f"{ref.registry}/{ref.repository}"


def rendered_names(refs: Iterable[ImageRef]) -> frozenset[str]:
    """The `registry/repository` names of rendered references, for `find_images`."""
    return frozenset(_name(ref) for ref in refs)


# -- planning the changes ----------------------------------------------------------------


def plan_changes(images: list[ImageValue], merged: dict[Keys, Scalar], rules: RuleSet) -> list[Change]:
    """The value changes that mirror `images` under `rules` (unchanged values are left out).

    Images that take their registry from `global.imageRegistry`: when all their mirrors
    share one registry, global is set to it; otherwise global is emptied, and each such
    image gets its own registry (mirrored or not), which bitnami-style charts then use.
    """
    targets = [(image, _decide(rules, image)) for image in images]
    global_registry = merged.get(GLOBAL_REGISTRY)
    via_global = {(d.mirrored or i.ref).domain or "docker.io" for i, d in targets if i.via_global}
    new_global = (via_global.pop() if len(via_global) == 1 else "") if via_global else None
    changes: list[Change] = []
    for image, decision in targets:
        emptied = image.via_global and new_global == ""
        if decision.mirrored is None and not emptied:
            continue
        target = decision.mirrored or image.ref
        if image.shape == "composed":
            changes.extend(_composed_changes(image, target, rules, decision))
            continue
        if image.shape == "string":
            changes.append(Change(image.keys, merged[image.keys], str(target)))
            continue
        for name, new in _wanted(image, target).items():
            old = image.fields.get(name)
            if new != (old.value if old is not None else ""):
                changes.append(Change((*image.keys, name), old, new))
    if global_registry is not None and new_global is not None and new_global != global_registry.value:
        changes.append(Change(GLOBAL_REGISTRY, global_registry, new_global))
    return changes


def _composed_changes(image: ImageValue, target: ImageRef, rules: RuleSet, decision: Decision) -> list[Change]:
    """The field changes of a composed image; none where the fields cannot express the rule (the render shows it)."""
    parts = image.parts()
    if compose.prefix_only(parts) and compose.narrower(rules, image.ref, decision.rule) is not None:
        return []
    found = compose.values(parts, target)
    roles = dict(image.roles)
    if isinstance(found, str) or any(role not in roles for role in found):
        return []
    return [Change((*image.keys, roles[role]), image.fields[roles[role]], new) for role, new in found.items()]


def _wanted(image: ImageValue, target: ImageRef) -> dict[str, str]:
    """The mapping fields that make `target`; tag and digest only when a rule changed them."""
    wanted: dict[str, str] = {}
    if "registry" in image.fields:
        wanted["registry"] = target.domain or "docker.io"
        wanted["repository"] = target.path
    else:
        wanted["repository"] = f"{target.domain}/{target.path}" if target.domain else target.path
    if target.suffix != image.ref.suffix:  # otherwise keep them: the tag may come from appVersion
        wanted["tag"] = target.tag or ""
        wanted["digest"] = target.digest or ""
    return wanted


def override_text(changes: list[Change], header: str) -> str:
    """A values file that sets every change, each with its old value as a comment.

    Values are written as JSON strings (valid YAML, never read as another type).
    """
    tree: dict[str, object] = {}
    for change in changes:
        node = tree
        for key in change.keys[:-1]:
            child = node.setdefault(key, {})
            assert isinstance(child, dict)
            node = child
        node[change.keys[-1]] = change
    lines = [f"# {line}".rstrip() for line in header.splitlines()]
    lines.extend(_emit(tree, 0) if tree else ["{}"])
    return "\n".join(lines) + "\n"


def _emit(tree: dict[str, object], depth: int) -> list[str]:
    lines = []
    for key, value in tree.items():
        indent = "  " * depth + _key(key) + ":"
        if isinstance(value, Change):
            was = f"{json.dumps(value.old.value)} in {value.old.file.name}" if value.old is not None else "not set"
            lines.append(f"{indent} {json.dumps(value.new)}  # was {was}")
        else:
            assert isinstance(value, dict)
            lines.append(indent)
            lines.extend(_emit(value, depth + 1))
    return lines


def _key(key: str) -> str:
    plain = _PLAIN_KEY_RE.fullmatch(key) and key.lower() not in _YAML_WORDS
    return key if plain else json.dumps(key)


def _decide(rules: RuleSet, image: ImageValue) -> Decision:
    """The rules' decision for one image value; KmirrorError when its rule cannot apply (a digest it would drop)."""
    try:
        return rules.decide(image.ref)
    except ReferenceError as exc:
        raise KmirrorError(f"cannot mirror chart values: {'.'.join(image.keys)}: {image.ref}: {exc}") from None


def splice_values(changes: list[Change]) -> dict[ValuesFile, str]:
    """Each values file that changes, with its new text; KmirrorError when a change cannot be spliced."""
    edits: dict[ValuesFile, list[Edit]] = {}
    problems: list[str] = []
    for change in changes:
        where = ".".join(change.keys)
        old = change.old
        if old is None:
            problems.append(f"{where}: not set in any values.yaml (would be {change.new})")
        elif old.file.path is None:
            problems.append(f"{where}: in packaged subchart {old.file.name}")
        else:
            edit = _edit(old, change.new)
            if edit is None:
                problems.append(f"{where}: {old.file.name}: the value cannot be located exactly (escapes or a block scalar); set it to {change.new} by hand")
            else:
                edits.setdefault(old.file, []).append(edit)
    if problems:
        listed = "\n".join(f"    {p}" for p in problems)
        raise KmirrorError(f"cannot rewrite in place: values.yaml: nothing written; use -o FILE for an override instead:\n{listed}")
    return {file: splice(file.text, found) for file, found in edits.items()}


def _edit(old: Scalar, new: str) -> Edit | None:
    span = old.file.text[old.start : old.end]
    if "\n" in span:
        return None
    if old.value == "":
        if span in ('""', "''"):
            return Edit(old.start + 1, old.start + 1, "", new)
        return None
    if span.count(old.value) != 1:
        return None
    start = old.start + span.index(old.value)
    return Edit(start, start + len(old.value), old.value, new)


# -- the whole job -----------------------------------------------------------------------


@dataclass(frozen=True)
class Leftover:
    """A rendered image that is still not mirrored, and the template it comes from."""

    template: str
    ref: str
    mirror: str | None


@dataclass(frozen=True)
class ChartResult:
    """What `kmirror chart` found and made: changes, override text, rewritten files, leftovers."""

    images: tuple[ImageValue, ...]
    changes: tuple[Change, ...]
    override: str
    rewritten: dict[ValuesFile, str]
    rendered: int
    leftovers: tuple[Leftover, ...]


def mirror_chart(helm: str, chart: ChartRef, config: Config, in_place: bool, limits: Limits, given: Render = Render()) -> ChartResult:
    """Mirror the image values of `chart`, then render it with them and list what is left.

    Reads a local chart folder as it is and pulls anything else (`helm pull`). Nothing is
    written: with `in_place` the result holds the new texts of the values files. Both
    renders use the `given` values and options, the override last among the values files
    (so what is left is judged as the user will install it). Each helm run is bounded by
    `limits`.
    """
    local = Path(chart.chart)
    if in_place and not (local.is_dir() and chart.repo is None):
        raise KmirrorError(f"cannot rewrite in place: {chart.shown()}: not a chart folder (use -o FILE for an override)")
    with tempfile.TemporaryDirectory(prefix="kmirror-chart.") as scratch:
        folder = _chart_folder(helm, chart, Path(scratch), limits)
        files = read_chart(folder)
        before = _render(helm, folder, given, (), config, limits)
        merged = merge(files)
        images = find_images(merged, rendered_names(i.ref for i in before.images))
        changes = plan_changes(images, merged, config.rules)
        rewritten = splice_values(changes) if in_place else {}
        header = f"kmirror values override for chart {chart.shown()} (rules: {config.origin})\nuse it with: helm install|upgrade|template ... -f THIS_FILE"
        override = override_text(changes, header)
        values = Path(scratch) / "kmirror-values.yaml"
        values.write_text(override, encoding="utf-8")
        after = _render(helm, folder, given, (str(values),), config, limits)
    sources = _sources(after.source.data)
    leftovers = tuple(
        Leftover(_template(sources, image.location.start), image.location.text, str(image.decision.mirrored) if image.decision.mirrored else None)
        for image in after.images
        if image.decision.mirrored is not None or image.on_blocked
    )
    return ChartResult(tuple(images), tuple(changes), override, rewritten, len(after.images), leftovers)


def _chart_folder(helm: str, chart: ChartRef, scratch: Path, limits: Limits) -> Path:
    """The chart's folder: a local one as it is, a local archive unpacked, anything else pulled."""
    local = Path(chart.chart)
    if chart.repo is not None or not local.exists():
        return pull(helm, chart, scratch, limits)
    if local.is_dir():
        return local
    try:
        with tarfile.open(local) as tar:
            tar.extractall(scratch, filter="data")
    except (OSError, tarfile.TarError) as exc:
        raise KmirrorError(f"cannot read chart: {chart.chart}: {exc}") from None
    folders = list(scratch.glob("*/Chart.yaml"))
    if len(folders) != 1:
        raise KmirrorError(f"cannot read chart: {chart.chart}: expected one chart folder at the top of the archive")
    return folders[0].parent


def _render(helm: str, folder: Path, given: Render, values: tuple[str, ...], config: Config, limits: Limits) -> Outcome:
    render = dataclasses.replace(given, values=given.values + values, include_crds=True)
    rendered = template(helm, ChartRef(str(folder)), render, limits)
    return process(rendered, f"{folder} (rendered)", config)


def _sources(rendered: bytes) -> list[tuple[int, str]]:
    """Where each `# Source:` line of `helm template` output starts (a byte offset), and its template."""
    return [(m.start(), m.group(1).decode("utf-8").strip()) for m in _SOURCE_RE.finditer(rendered)]



def _template(sources: list[tuple[int, str]], offset: int) -> str:
    """The template an offset of `helm template` output comes from (the `# Source:` line before it)."""
    index = bisect.bisect_right([start for start, _ in sources], offset) - 1
    return sources[index][1] if index >= 0 else "(unknown template)"
