"""Which named files kmirror reads as a workload's YAML: never its own rules, never other tools' YAML.

pre-commit passes every changed YAML file by name, and a folder holds more than manifests,
so a file named on the command line (or found in a folder) is read only when it is one of:

- a Kubernetes manifest: some document has a top-level `kind` (Helm and kustomize output,
  strategic-merge patches, Argo CD Applications, Flux resources);
- a kustomize file: named `kustomization.yaml`, `kustomization.yml` or `Kustomization`, or
  a JSON 6902 patch (a list of `op`/`path` operations);
- a Helm values file: any other file whose documents are mappings without `kind` (charts and
  GitOps repositories name values files freely: `values-prod.yaml`, `prod/web.yaml`).

It is never a kmirror rules file: the rules file in use, a file named `.kmirror.yaml` or
`.kmirror.yml`, a document of kind `ImageMirror` (kmirror.dev), or a file whose one document
is a mapping with no `kind` whose keys are rules-file keys, `mirrors` or `preset` among them.
Nor is it another tool's file, by name (`Chart.yaml`, `Chart.lock`, `requirements.yaml`,
`docker-compose*.yml`, `compose*.yml`, `.gitlab-ci.yml`, `.pre-commit-*.yaml`, `mkdocs.yml`,
`action.yml`, anything under `.github/`) or by shape (a GitHub Actions workflow: `on` and
`jobs`; GitLab CI: `stages`; a compose file: `services` of mappings with `image` or `build`),
nor a list or a scalar that is no JSON patch. Those are skipped with a note. Standard input is
always read: what is piped is the user's choice.
"""
from __future__ import annotations

import os
import re

from ruamel.yaml.error import YAMLError
from ruamel.yaml.nodes import MappingNode, ScalarNode, SequenceNode

from rewriter.kustomization import KUSTOMIZATION_NAMES

RULES_NAMES = (".kmirror.yaml", ".kmirror.yml")
_RULES_KEYS = frozenset(("preset", "mirrors", "aliases", "blocked", "allow", "fields"))  # config.py's top-level keys
# Each starts with a literal newline, which the search finds fast in a large file (a pattern
# starting with `^` is tried at every offset); the first line is searched with a newline before it.
_KIND_RE = re.compile(rb"\n[\"']?kind[\"']?[ \t]*:")
_IMAGE_MIRROR_RE = re.compile(rb"\n[\"']?kind[\"']?[ \t]*:[ \t]*[\"']?ImageMirror\b")
_OTHER_NAMES_RE = re.compile(
    r"(?:Chart\.yaml|Chart\.lock|requirements\.yaml|(?:docker-)?compose(?:[.-][^/]*)?\.ya?ml|\.gitlab-ci\.ya?ml"
    r"|\.pre-commit-(?:config|hooks)\.ya?ml|mkdocs\.ya?ml|action\.ya?ml)"
)
NOT_OURS = "not a Kubernetes manifest, kustomize file or Helm values file (see README: which files kmirror rewrites)"
RULES = "a kmirror rules file (kmirror never rewrites its own rules)"


def skip_reason(data: bytes, name: str, rules_file: str) -> str | None:
    """Why the file `name` holding `data` is not to be read, or None when it is (`rules_file`: the rules in use)."""
    base = os.path.basename(name)
    if base in RULES_NAMES or _same_file(name, rules_file):
        return RULES
    if b"ImageMirror" in data and _on_a_line(_IMAGE_MIRROR_RE, data):
        return RULES
    if base in KUSTOMIZATION_NAMES or _on_a_line(_KIND_RE, data):
        return None
    if _OTHER_NAMES_RE.fullmatch(base) or ".github" in os.path.normpath(name).split(os.sep):
        return NOT_OURS
    return _by_structure(data)


def _on_a_line(pattern: re.Pattern[bytes], data: bytes) -> bool:
    """`pattern` (which starts with a newline) matches at the start of a line of `data` (a BOM before the first is allowed)."""
    first = data[3:4096] if data.startswith(b"\xef\xbb\xbf") else data[:4096]
    return pattern.match(b"\n" + first) is not None or pattern.search(data) is not None


def _same_file(name: str, rules_file: str) -> bool:
    try:
        return os.path.samefile(name, rules_file)
    except OSError:  # the rules are a preset, or either file is missing: the read reports it
        return False


def _by_structure(data: bytes) -> str | None:
    """Decide by the composed documents (files that reach this are small: no manifest's markers)."""
    from rewriter.bounds import LimitError
    from rewriter.stream import compose_text

    try:
        roots = [root for root in compose_text(data.decode("utf-8-sig")) if root is not None]
    except (YAMLError, UnicodeDecodeError, RecursionError, LimitError):
        return None  # processing reports the error where it is
    for root in roots:
        if isinstance(root, SequenceNode) and root.value and all(_operation(item) for item in root.value):
            continue
        if not isinstance(root, MappingNode):
            return NOT_OURS
        top = {k.value: v for k, v in root.value if isinstance(k, ScalarNode)}
        keys = set(top)
        if "kind" in keys:
            return None
        if len(roots) == 1 and keys and keys <= _RULES_KEYS and keys & {"mirrors", "preset"}:
            return RULES
        if {"on", "jobs"} <= keys or "stages" in keys or _compose_services(top.get("services")):
            return NOT_OURS
    return None


def _compose_services(node: object) -> bool:
    """A docker-compose `services:` mapping: every service a mapping with `image` or `build`."""
    if not isinstance(node, MappingNode) or not node.value:
        return False
    for _, service in node.value:
        keys = {k.value for k, _ in service.value if isinstance(k, ScalarNode)} if isinstance(service, MappingNode) else set()
        if not keys & {"image", "build"}:
            return False
    return True


def _operation(node: object) -> bool:
    return isinstance(node, MappingNode) and {"op", "path"} <= {k.value for k, _ in node.value if isinstance(k, ScalarNode)}
