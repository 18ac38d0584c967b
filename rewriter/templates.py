"""Images of a Helm chart that rewriting its values file cannot mirror.

`kmirror rewrite` of a chart's values file mirrors what the templates read from it; an
image a template spells out itself (`image: busybox:1.36`, `--x-image=quay.io/x:v1`)
renders unchanged, and so does one in a subchart's own `values.yaml` left out of the
rewrite. Template images are found line by line (templates are not YAML): the value of an
`image:` key outside `{{ }}`, and the references `locate` finds in free text. Nor can it mirror a
registry the template writes before what values fill in (`image: "quay.io/{{ .Values.repo }}:..."`):
that prefix is decided as every image under it (`compose.PROBE`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

from rewriter.compose import PROBE
from rewriter.config import Config
from rewriter.errors import KmirrorError
from rewriter.files import read
from rewriter.locate import references_in_text
from rewriter.pipeline import process
from rewriter.reference import ReferenceError, parse

_IMAGE_LINE_RE = re.compile(r"""^\s*(?:-\s+)?["']?image["']?\s*:\s*["']?([^\s"'#{}]+)["']?\s*(?:#.*)?$""", re.ASCII)
# An image key whose value starts with a registry host and a `/`, then a template expression.
_PREFIX_LINE_RE = re.compile(r"""^\s*(?:-\s+)?["']?image["']?\s*:\s*["']?((?:[\w-]+\.[\w.-]+(?::\d+)?|[\w-]+:\d+|localhost)/[^\s"'#{}]*)\{\{""", re.ASCII)
_TEMPLATE_SUFFIXES = (".yaml", ".yml", ".tpl", ".txt", ".json")


def notes(paths: list[str], config: Config) -> list[str]:
    """A warning for each image a rule would change that is hard-coded in the templates of a chart whose values file is in `paths`."""
    found: list[str] = []
    seen: set[Path] = set()
    given = {os.path.realpath(name) for name in paths}  # realpath: a link loop is reported by the read, not here
    for name in paths:
        path = Path(name)
        chart = path.parent
        if not (path.is_file() and path.name.startswith("values") and (chart / "Chart.yaml").is_file()):
            continue
        if chart in seen:
            continue
        seen.add(chart)
        for template, line, ref, prefix in _literal(chart / "templates"):
            decision = config.rules.decide(parse(ref + PROBE if prefix else ref))
            if decision.mirrored is None and not decision.blocked:
                continue
            mirrored = str(decision.mirrored).removesuffix(PROBE) if prefix else str(decision.mirrored)
            hint = f"mirror: {mirrored}" if decision.mirrored is not None else "no rule"
            what = f"the registry {ref} is written in the template before what values fill in" if prefix else f"{ref} is written in the template, not read from values"
            found.append(f"kmirror: warning: {template}:{line}: {what}: rewriting {name} cannot mirror it ({hint}); render the chart through kmirror, or change the template")
        for sub in sorted((chart / "charts").glob("*/values.yaml")):
            if os.path.realpath(sub) not in given and process(read(str(sub)), str(sub), config).changed:
                found.append(f"kmirror: warning: {sub}: this subchart's values hold images the rules mirror: rewrite it too, or they render unchanged")
    return found


def _literal(folder: Path) -> Iterator[tuple[Path, int, str, bool]]:
    """(file, 1-based line, reference, False) for each image written outside `{{ }}` in the templates
    under `folder`, and (file, line, prefix, True) for a registry written before a template expression."""
    for template in sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix in _TEMPLATE_SUFFIXES):
        try:
            text = read(str(template)).decode("utf-8")
        except (KmirrorError, UnicodeDecodeError):
            continue  # not a text template (or beyond the input limit): helm would refuse it anyway
        for number, line in enumerate(text.splitlines(), 1):
            prefix = _PREFIX_LINE_RE.match(line)
            if prefix:
                yield template, number, prefix.group(1), True
            plain = re.sub(r"\{\{.*?\}\}", " ", line)  # what a template computes is read from values, not written here
            match = _IMAGE_LINE_RE.match(plain)
            refs = [match.group(1)] if match and "{{" not in line else []
            refs.extend(token for _, token in references_in_text(plain))
            for ref in dict.fromkeys(refs):
                try:
                    parse(ref)
                except ReferenceError:
                    continue
                yield template, number, ref, False
