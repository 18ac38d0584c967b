"""kmirror against the corpus (fixtures/corpus) of real upstream manifests and its hand-checked ground truth.

For every `<name>.yaml` in the corpus (format of `<name>.expected.json`: see SOURCES.md there):

- every reference the ground truth lists is reported at its line and column, with the same
  `ref`, `doc`, `path` and `carrier`, and nothing else is reported (entries flagged
  `ambiguous` may be reported or not);
- with one rule per registry of the corpus, rewriting changes exactly the lines holding the
  references, each into the line with the mirror spliced in at the reference's column (the
  mirror is worked out here from the ground truth), and a second run changes nothing;
- `kmirror check` with those rules reports one KM001 per occurrence in the original and
  none in the rewritten text.

The ambiguous entries kmirror reports (and so rewrites): argo-workflows-examples's `image`
parameter value `alexcollinsintuit/argosay:v2` (line 707); istio-samples's `image_name: quay.io/kiali/kiali`
inside the Kiali ConfigMap (line 970); kubevirt-examples's `docker://registry:5000/...` CDI URL
(line 100); tekton-examples's `BUILDER_IMAGE` default `gcr.io/kaniko-project/executor:v1.8.1`
(line 137). It does not report tekton-examples's TaskRun parameter `image` value `ubuntu`
(line 238): a short name in a parameter without `/`, `:` or `@`; nor argo-workflows-examples's
seven `withItems` `{image, tag}` items (lines 28-31, 92-94): a bare `image` next to a `tag` is part
of an image whose registry may come from elsewhere (issue 17).
"""

from __future__ import annotations

import json
import re
import subprocess
from collections import Counter
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from rewriter.config import Config, parse_config
from rewriter.pipeline import Outcome, process

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "corpus"
KMIRROR = Path(__file__).resolve().parents[1] / ".venv" / "bin" / "kmirror"
MIRROR = "mirror.example.com"
# A missing corpus fails every test below (never an empty, skipped parameter list).
FILES = sorted(p.name for p in CORPUS.glob("*.yaml")) or ["(corpus missing)"]

Entry = dict[str, Any]


def test_corpus_is_there() -> None:
    assert len(FILES) == 20, f"expected the 20 corpus files in {CORPUS}"


def _expected(name: str) -> list[Entry]:
    entries: list[Entry] = json.loads((CORPUS / name).with_suffix(".expected.json").read_text(encoding="utf-8"))
    return entries


def _slug(registry: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", registry)


@cache
def _rules_text() -> str:
    registries = sorted({e["registry"] for name in FILES for e in _expected(name)})
    return "mirrors:\n" + "".join(f"  - from: {r}\n    to: {MIRROR}/{_slug(r)}\n" for r in registries)


@cache
def _config() -> Config:
    return parse_config(_rules_text(), "rules.yaml")


@cache
def _original(name: str) -> bytes:
    return (CORPUS / name).read_bytes()


@cache
def _outcome(name: str) -> Outcome:
    return process(_original(name), name, _config())


def _mirror(entry: Entry) -> str:
    """The mirror of a ground-truth reference under `_rules_text()`, worked out by hand."""
    ref, registry = entry["ref"], entry["registry"]
    rest = ref if entry.get("implicit_registry") else ref.split("/", 1)[1]
    name = rest.split("@")[0].split(":")[0]
    if registry == "docker.io" and "/" not in name:
        rest = "library/" + rest
    return f"{MIRROR}/{_slug(registry)}/{rest}"


def _reported(name: str) -> list[Entry]:
    """The ground-truth entries kmirror reports: all but the ambiguous ones it leaves out."""
    found = {(image.line, image.column) for image in _outcome(name).images}
    return [e for e in _expected(name) if "ambiguous" not in e or (e["line"], e["col"]) in found]


@pytest.mark.parametrize("name", FILES)
def test_references_match_the_ground_truth(name: str) -> None:
    expected = {(e["line"], e["col"]): e for e in _expected(name)}
    seen = []
    for image in _outcome(name).images:
        where = (image.line, image.column)
        assert where in expected, f"{name}:{image.line}:{image.column}: {image.location.text} is not in the ground truth"
        entry = expected[where]
        location = image.location
        got = (location.text, location.document, location.path, location.carrier)
        assert got == (entry["ref"], entry["doc"], entry["path"], entry["carrier"]), f"{name}:{image.line}:{image.column}"
        seen.append(where)
    assert len(seen) == len(set(seen)), f"{name}: a reference is reported twice"
    missing = [f"{e['line']}:{e['col']} {e['ref']}" for e in _expected(name) if "ambiguous" not in e and (e["line"], e["col"]) not in seen]
    assert not missing, f"{name}: not reported: {missing}"
    assert not _outcome(name).problems


@pytest.mark.parametrize("name", FILES)
def test_rewrite_changes_exactly_the_reference_lines(name: str) -> None:
    before = _original(name).decode("utf-8").split("\n")
    after = _outcome(name).output.decode("utf-8").split("\n")
    assert len(after) == len(before)
    wanted = list(before)
    by_line: dict[int, list[Entry]] = {}
    for entry in _reported(name):
        by_line.setdefault(entry["line"], []).append(entry)
    for line, entries in by_line.items():
        text = wanted[line - 1]
        for entry in sorted(entries, key=lambda e: e["col"], reverse=True):
            start = entry["col"] - 1
            assert text[start : start + len(entry["ref"])] == entry["ref"]
            text = text[:start] + _mirror(entry) + text[start + len(entry["ref"]) :]
        wanted[line - 1] = text
    changed = {i + 1 for i, (old, new) in enumerate(zip(before, after)) if old != new}
    assert changed == set(by_line)
    for number in sorted(changed):
        assert after[number - 1] == wanted[number - 1], f"{name}:{number}"
    assert after == wanted


@pytest.mark.parametrize("name", FILES)
def test_second_rewrite_changes_nothing(name: str) -> None:
    output = _outcome(name).output
    again = process(output, name, _config())
    assert again.output == output
    assert not again.changed


@pytest.fixture(scope="module")
def checked(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[list[Entry], list[Entry]]]:
    """`kmirror check --format json` findings per file: (original, rewritten), from two real runs."""
    assert KMIRROR.is_file(), f"{KMIRROR} is missing: run the tests with ./scripts/test"
    work = tmp_path_factory.mktemp("corpus")
    (work / "rules.yaml").write_text(_rules_text(), encoding="utf-8")
    (work / "rewritten").mkdir()
    for name in FILES:
        (work / "rewritten" / name).write_bytes(_outcome(name).output)

    results = {}
    for label, paths, code in (
        ("original", [str(CORPUS / name) for name in FILES], 1),
        ("rewritten", [f"rewritten/{name}" for name in FILES], 0),
    ):
        done = subprocess.run(
            [str(KMIRROR), "check", "--config", "rules.yaml", "--format", "json", *paths],
            cwd=work, capture_output=True, timeout=300,
        )
        assert done.returncode == code, done.stderr.decode()
        results[label] = json.loads(done.stdout)
    per_file: dict[str, tuple[list[Entry], list[Entry]]] = {}
    for name in FILES:
        original = [f for f in results["original"] if Path(f["file"]).name == name]
        rewritten = [f for f in results["rewritten"] if Path(f["file"]).name == name]
        per_file[name] = (original, rewritten)
    return per_file


@pytest.mark.parametrize("name", FILES)
def test_check_blocks_the_original_and_passes_the_rewritten(name: str, checked: dict[str, tuple[list[Entry], list[Entry]]]) -> None:
    original, rewritten = checked[name]
    assert rewritten == []
    assert {f["code"] for f in original} == {"KM001"}
    got = Counter((f["line"], f["column"], f["ref"], f["suggested"]) for f in original)
    want = Counter((e["line"], e["col"], e["ref"], _mirror(e)) for e in _reported(name))
    assert got == want


def test_the_project_reads_no_folder_outside_itself() -> None:
    """A user's fresh clone has nothing beside it: tests, bench and scripts use fixtures/corpus."""
    root = Path(__file__).resolve().parents[1]
    outside = re.compile(r"""\.\./shared|parents\[2\]\s*/\s*["']shared""")
    offenders = [
        str(path.relative_to(root))
        for folder in ("tests", "bench", "scripts", "rewriter", ".ci", "fuzz")
        for path in (root / folder).rglob("*")
        if path.is_file() and path.suffix in ("", ".py", ".sh", ".toml") and outside.search(path.read_text(errors="replace"))
    ]
    assert offenders == []
