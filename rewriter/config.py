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
    registries:                      # how verify, sync, --pin and runtime-config reach a host
      harbor.local:5000: {plain_http: true}   # or ca_file: certs/ca.pem (relative to this file),
                                              # skip_verify: true, token_hosts: [auth.example.net]
    exclude: [vendor, "*.generated.yaml"]  # paths never read (globs, from the working folder)
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
from rewriter.files import anchored, read_text
from rewriter.rules import Prefix, Rule, RuleError, RuleSet, make_rule, parse_prefix

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

CONFIG_NAME = ".kmirror.yaml"
DEFAULT_PRESET = "daocloud"
_TOP_KEYS = ("preset", "mirrors", "aliases", "blocked", "allow", "fields", "registries", "exclude")
_RULE_KEYS = ("from", "to", "flatten", "keep")
_FIELD_KEYS = ("path", "kind")
# The `registries:` section (issue 21): per-host connection settings.
_REGISTRY_KEYS = ("plain_http", "ca_file", "skip_verify", "token_hosts")
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


class RegistrySettings(NamedTuple):
    """How to reach one registry host (`registries:`): HTTP or HTTPS, which CA, whether to verify.

    `ca_file` is an absolute path; `token_hosts` are hosts outside the registry's own site
    that may receive credentials as its token service.
    """

    host: str
    plain_http: bool = False
    ca_file: str | None = None
    skip_verify: bool = False
    token_hosts: tuple[str, ...] = ()


def settings_for(registries: tuple[RegistrySettings, ...], host: str) -> RegistrySettings:
    """The `registries:` entry for `host`, else the defaults (HTTPS, system CAs, verified)."""
    return next((r for r in registries if r.host == host), RegistrySettings(host))


class Config(NamedTuple):
    """Everything the rules file decides, plus where it came from and notices for stderr."""

    rules: RuleSet
    fields: tuple[FieldPath, ...]
    origin: str
    notices: tuple[str, ...] = ()
    registries: tuple[RegistrySettings, ...] = ()
    exclude: tuple[str, ...] = ()


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
    exclude = tuple(_string(doc, n, k) for k, n in _list(doc, top.get("exclude"), "exclude"))
    ruleset = RuleSet(rules=tuple(rules), aliases=tuple(aliases), blocked=blocked, allow=allow)
    registries = _registries(doc, top["registries"]) if "registries" in top else ()
    return Config(rules=ruleset, fields=fields, origin=name, notices=tuple(notices), registries=registries, exclude=exclude)


def _registries(doc: _Doc, node: Node) -> tuple[RegistrySettings, ...]:
    if not isinstance(node, MappingNode):
        raise doc.fail("registries", "expected a mapping of registry host: settings", node)
    found: dict[str, RegistrySettings] = {}
    for key_node, value in node.value:
        host = _registry_host(doc, key_node, "registries")
        key = f"registries.{host}"
        if host in found:
            raise doc.fail("registries", f"{host!r} is given twice", key_node)
        fields = _mapping(doc, value, key, _REGISTRY_KEYS)
        plain = _bool(doc, fields["plain_http"], f"{key}.plain_http") if "plain_http" in fields else False
        skip = _bool(doc, fields["skip_verify"], f"{key}.skip_verify") if "skip_verify" in fields else False
        ca_file = None
        if "ca_file" in fields:  # relative to the rules file, wherever kmirror runs
            ca_file = str((Path(doc.name).parent / _string(doc, fields["ca_file"], f"{key}.ca_file")).absolute())
        if plain and (skip or ca_file):
            raise doc.fail(key, "plain_http talks no TLS: drop ca_file and skip_verify", value)
        if skip and ca_file:
            raise doc.fail(key, "skip_verify trusts any certificate: drop ca_file, or skip_verify to verify with it", value)
        tokens = tuple(_registry_host(doc, n, f"{key}.token_hosts") for _, n in _list(doc, fields.get("token_hosts"), f"{key}.token_hosts"))
        found[host] = RegistrySettings(host, plain, ca_file, skip, tokens)
    return tuple(found.values())


def _registry_host(doc: _Doc, node: Node, key: str) -> str:
    """A registry host (with its port), as references normalise it."""
    prefix = _prefix(doc, node, key)
    if prefix.components:
        raise doc.fail(key, f"{str(node.value)!r}: give a registry host, with its port if any (e.g. harbor.local:5000)", node)
    return prefix.registry


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


# What marks a repository's top folder (`.git` is a file in a worktree or a submodule).
_REPOSITORY_MARKERS = (".git", ".hg")


def discover(start: Path) -> Path | None:
    """The nearest `.kmirror.yaml` in `start` or a parent folder, no higher than its repository's top.

    The top is the first folder holding `.git` or `.hg`; outside any repository the search
    goes up to `/`. A project's rules live in the project: as black and pre-commit find
    theirs, a file above the repository (a home folder's, a CI runner's work folder) is
    never picked up for it (issue 22).
    """
    for folder in (start, *start.parents):
        candidate = folder / CONFIG_NAME
        if candidate.is_file():
            return candidate
        if any((folder / marker).exists() for marker in _REPOSITORY_MARKERS):
            return None
    return None


def rules_file(config: str | None, cwd: Path) -> Path | None:
    """The rules file to read: --config, else $KMIRROR_CONFIG, else the nearest .kmirror.yaml (None: none)."""
    path = config or os.environ.get("KMIRROR_CONFIG") or None
    return Path(path) if path else discover(cwd)


def load_config(config: str | None, preset: str | None, cwd: Path) -> Config:
    """Resolve the rules: --config, else $KMIRROR_CONFIG, else --preset alone, else the nearest .kmirror.yaml, else the default preset.

    With a rules file named (--config or $KMIRROR_CONFIG), --preset replaces the file's
    `preset:` (the file's rules first, then the preset's); without one, --preset is the
    whole rule set and no .kmirror.yaml is looked for.
    """
    named = config or os.environ.get("KMIRROR_CONFIG")
    found = rules_file(config, cwd) if named or preset is None else None
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
    loaded = parse_config(read_rules_file(found), str(found), preset)
    return loaded._replace(exclude=anchored(found.parent, loaded.exclude))


def read_rules_file(path: Path) -> str:
    """The text of rules file `path` (bounded: `files.read_text`); KmirrorError `cannot read config: ...` (quoting none of it)."""
    return read_text(str(path), "config")
