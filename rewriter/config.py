"""The rules file (`.kmirror.yaml`) and the built-in presets: load, validate, discover.

Schema (every key optional)::

    preset: daocloud                 # base preset; its rules apply after yours
    mirrors:                         # ordered; the first match wins
      - from: k8s.gcr.io             # host, host/leading/path, or one exact image
        to: registry.aliyuncs.com/google_containers   # prefix, or a template with {placeholders}
        flatten: true                # keep only the last path component
      - from: quay.io/internal
        keep: true                   # matched, left unchanged
    aliases: {k8s.gcr.io: gcr.io/google-containers}  # same images under another name
    blocked: [docker.io, gcr.io]     # default: every `from` registry
    allow: [quay.io/myorg]           # never reported as blocked
    fields:                          # extra places that hold an image (kustomize path syntax)
      - {path: spec/runner/image, kind: MyRunner}
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from rewriter.bounds import LimitError, check
from rewriter.errors import KmirrorError
from rewriter.rules import Prefix, Rule, RuleError, RuleSet, make_rule, parse_prefix

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

CONFIG_NAME = ".kmirror.yaml"
DEFAULT_PRESET = "daocloud"
_TOP_KEYS = ("preset", "mirrors", "aliases", "blocked", "allow", "fields")
_RULE_KEYS = ("from", "to", "flatten", "keep")
_FIELD_KEYS = ("path", "kind")
_PRESET_META = ("description", "source", "scheme", "status", "status_date", "status_note")


class FieldPath(NamedTuple):
    """A user-declared image field: path segments (`containers[]` marks a list) and a kind."""

    segments: tuple[str, ...]
    kind: str | None = None


class Preset(NamedTuple):
    """A built-in preset: its rules and what we know about the mirror behind it."""

    name: str
    description: str
    source: str
    scheme: str
    status: str
    status_date: str
    status_note: str
    mirrors: tuple[Rule, ...]
    aliases: tuple[tuple[Prefix, Prefix], ...]


class Config(NamedTuple):
    """Everything the rules file decides, plus where it came from and notices for stderr."""

    rules: RuleSet
    fields: tuple[FieldPath, ...]
    origin: str
    notices: tuple[str, ...] = ()


def _compose(text: str) -> Node | None:
    """The one document of `text`: composed by libyaml (fast), or by the pure-Python composer
    when libyaml refuses the text (it accepts some valid YAML libyaml does not, and its error is
    the one users see)."""
    check(text)
    try:
        return YAML(typ="safe", pure=False).compose(text)  # type: ignore[no-any-return]
    except YAMLError:
        return YAML(typ="safe", pure=True).compose(text)  # type: ignore[no-any-return]


class _Doc:
    """A parsed YAML file as nodes, for error messages that point at a line."""

    def __init__(self, name: str, text: str) -> None:
        self.name = name
        try:
            self.root = _compose(text)
        except MarkedYAMLError as exc:
            mark = exc.problem_mark
            where = f"{name}:{mark.line + 1}:{mark.column + 1}" if mark else name
            raise KmirrorError(f"{where}: invalid YAML: {exc.problem}") from None
        except YAMLError as exc:
            raise KmirrorError(f"{name}: invalid YAML: {exc}") from None
        except RecursionError:
            raise KmirrorError(f"{name}: invalid YAML: nesting is too deep for a rules file") from None
        except LimitError as exc:
            line, column = text.count("\n", 0, exc.offset) + 1, exc.offset - text.rfind("\n", 0, exc.offset)
            raise KmirrorError(f"{name}:{line}:{column}: {exc}") from None

    def fail(self, key: str, why: str, node: Node | None) -> KmirrorError:
        line = f", line {node.start_mark.line + 1}" if node is not None else ""
        return KmirrorError(f"invalid config: {key}: {why} (in {self.name}{line})")


def _mapping(doc: _Doc, node: Node | None, key: str, allowed: tuple[str, ...]) -> dict[str, Node]:
    if not isinstance(node, MappingNode):
        raise doc.fail(key, "expected a mapping", node)
    result: dict[str, Node] = {}
    for k, v in node.value:
        name = k.value if isinstance(k, ScalarNode) else None
        if name not in allowed:
            raise doc.fail(key, f"unknown key {name!r} (known: {', '.join(allowed)})", k)
        if name in result:
            raise doc.fail(key, f"duplicate key {name!r}", k)
        result[name] = v
    return result


def _string(doc: _Doc, node: Node, key: str) -> str:
    if not isinstance(node, ScalarNode) or node.tag != "tag:yaml.org,2002:str" or not node.value:
        raise doc.fail(key, "expected a non-empty string", node)
    return str(node.value)


def _bool(doc: _Doc, node: Node, key: str) -> bool:
    # Judge by the resolved tag: `True` is a YAML boolean, the quoted "true" is a string.
    if not isinstance(node, ScalarNode) or node.tag != "tag:yaml.org,2002:bool":
        raise doc.fail(key, "expected true or false", node)
    return str(node.value).lower() in ("true", "yes", "on")  # the last two: YAML 1.1 documents


def _sequence(doc: _Doc, node: Node, key: str) -> list[Node]:
    if not isinstance(node, SequenceNode):
        raise doc.fail(key, "expected a list", node)
    return list(node.value)


def _rule(doc: _Doc, node: Node, key: str) -> Rule:
    fields = _mapping(doc, node, key, _RULE_KEYS)
    if "from" not in fields:
        raise doc.fail(key, "missing key 'from'", node)
    source = _string(doc, fields["from"], f"{key}.from")
    keep = _bool(doc, fields["keep"], f"{key}.keep") if "keep" in fields else False
    flatten = _bool(doc, fields["flatten"], f"{key}.flatten") if "flatten" in fields else False
    if keep and ("to" in fields or flatten):
        raise doc.fail(key, "'keep' leaves the reference unchanged: drop 'to' and 'flatten'", node)
    if not keep and "to" not in fields:
        raise doc.fail(key, "missing key 'to' (or 'keep: true')", node)
    to = _string(doc, fields["to"], f"{key}.to") if "to" in fields else None
    try:
        return make_rule(source, to, flatten)
    except RuleError as exc:
        raise doc.fail(key, str(exc), node) from None


def _prefix(doc: _Doc, node: Node, key: str) -> Prefix:
    try:
        return parse_prefix(_string(doc, node, key))
    except RuleError as exc:
        raise doc.fail(key, str(exc), node) from None


def _host(doc: _Doc, node: Node, key: str) -> str:
    # Blocking is judged on the registry host (RuleSet.blocked): a path would never match.
    prefix = _prefix(doc, node, key)
    if prefix.components:
        raise doc.fail(key, f"{str(node.value)!r}: list registry hosts only (e.g. {prefix.registry})", node)
    return prefix.registry


def _aliases(doc: _Doc, node: Node) -> tuple[tuple[Prefix, Prefix], ...]:
    if not isinstance(node, MappingNode):
        raise doc.fail("aliases", "expected a mapping of name: canonical name", node)
    return tuple(
        (_prefix(doc, k, "aliases"), _prefix(doc, v, f"aliases.{k.value}")) for k, v in node.value
    )


def _field(doc: _Doc, node: Node, key: str) -> FieldPath:
    fields = _mapping(doc, node, key, _FIELD_KEYS)
    if "path" not in fields:
        raise doc.fail(key, "missing key 'path'", node)
    path = _string(doc, fields["path"], f"{key}.path")
    segments = tuple(path.strip("/").split("/"))
    if any(not s or s == "[]" for s in segments):
        raise doc.fail(f"{key}.path", f"{path!r}: empty segment (write spec/containers[]/image)", fields["path"])
    kind = _string(doc, fields["kind"], f"{key}.kind") if "kind" in fields else None
    return FieldPath(segments, kind)


def _list(doc: _Doc, node: Node | None, key: str) -> list[tuple[str, Node]]:
    if node is None:
        return []
    return [(f"{key}[{i}]", item) for i, item in enumerate(_sequence(doc, node, key))]


def load_preset(name: str) -> Preset:
    """Load the built-in preset `name`; raise KmirrorError naming the known ones."""
    if name not in preset_names():
        raise KmirrorError(f"unknown preset: {name!r}: known presets are {', '.join(preset_names())}")
    text = _presets().joinpath(f"{name}.yaml").read_text(encoding="utf-8")
    doc = _Doc(f"preset {name}", text)
    top = _mapping(doc, doc.root, "preset", _PRESET_META + ("mirrors", "aliases"))
    meta = {k: _string(doc, top[k], k) for k in _PRESET_META}
    rules = tuple(_rule(doc, n, k) for k, n in _list(doc, top.get("mirrors"), "mirrors"))
    aliases = _aliases(doc, top["aliases"]) if "aliases" in top else ()
    return Preset(name=name, mirrors=rules, aliases=aliases, **meta)


def preset_names() -> list[str]:
    """Names of the built-in presets, sorted."""
    return sorted(f.name[: -len(".yaml")] for f in _presets().iterdir() if f.name.endswith(".yaml"))


def _presets() -> Traversable:
    from importlib import resources  # here, not at the top: a rules file without a preset needs none

    return resources.files("rewriter.presets")


def parse_config(text: str, name: str, preset_override: str | None = None) -> Config:
    """Validate a rules file's text and build its Config (preset rules after the user's)."""
    doc = _Doc(name, text)
    if doc.root is None:
        top: dict[str, Node] = {}
    else:
        top = _mapping(doc, doc.root, "(top level)", _TOP_KEYS)
    rules = [_rule(doc, n, k) for k, n in _list(doc, top.get("mirrors"), "mirrors")]
    aliases = list(_aliases(doc, top["aliases"])) if "aliases" in top else []
    preset_name = preset_override or (_string(doc, top["preset"], "preset") if "preset" in top else None)
    notices: list[str] = []
    if preset_name is not None:
        preset = load_preset(preset_name)
        rules.extend(preset.mirrors)
        aliases.extend(preset.aliases)
        notices.extend(_dead_notice(preset))
    if "blocked" in top:
        blocked = frozenset(_host(doc, n, k) for k, n in _list(doc, top["blocked"], "blocked"))
    else:
        blocked = frozenset(r.registry for r in rules if r.to is not None)
    allow = tuple(_allow(doc, n, k) for k, n in _list(doc, top.get("allow"), "allow"))
    fields = tuple(_field(doc, n, k) for k, n in _list(doc, top.get("fields"), "fields"))
    ruleset = RuleSet(rules=tuple(rules), aliases=tuple(aliases), blocked=blocked, allow=allow)
    return Config(rules=ruleset, fields=fields, origin=name, notices=tuple(notices))


def _allow(doc: _Doc, node: Node, key: str) -> Rule:
    try:
        return make_rule(_string(doc, node, key), None)
    except RuleError as exc:
        raise doc.fail(key, str(exc), node) from None


def _dead_notice(preset: Preset) -> list[str]:
    if preset.status != "dead":
        return []
    return [
        f"warning: preset {preset.name!r} is reported dead since {preset.status_date}: "
        f"{preset.status_note} Choose another with --preset (see 'kmirror presets')."
    ]


def discover(start: Path) -> Path | None:
    """The nearest `.kmirror.yaml` in `start` or a parent folder, if any."""
    for folder in (start, *start.parents):
        candidate = folder / CONFIG_NAME
        if candidate.is_file():
            return candidate
    return None


def load_config(config: str | None, preset: str | None, cwd: Path) -> Config:
    """Resolve the rules: --config, else $KMIRROR_CONFIG, else the nearest .kmirror.yaml, else the default preset."""
    path = config or os.environ.get("KMIRROR_CONFIG") or None
    found = Path(path) if path else discover(cwd)
    if found is None:
        chosen = preset or DEFAULT_PRESET
        result = parse_config(f"preset: {chosen}\n", f"preset {chosen}")
        if preset is None:
            notice = (
                f"note: no {CONFIG_NAME} found; using the built-in preset {DEFAULT_PRESET!r}. "
                f"Choose with --preset NAME or --config FILE ('kmirror presets' lists presets)."
            )
            return Config(result.rules, result.fields, result.origin, (notice, *result.notices))
        return result
    try:
        text = found.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise KmirrorError(f"cannot read config: {found}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise KmirrorError(f"cannot read config: {found}: {exc}") from None
    return parse_config(text, str(found), preset)
