"""The copy list (`kmirror images --format csv|skopeo|image-syncer|pairs`): golden files and rules.

Golden cases live in fixtures/inventory/<case>/: input.yaml, rules.yaml and one
expected.<format>[.yaml|.txt] per format (expected.<...>.error: the format must fail with
exit 2 and this message). The skopeo files are also run through the real
`skopeo sync --dry-run`, whose planned copies must be exactly kmirror's pairs.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
from tools import tool

from rewriter.cli import main
from rewriter.inventory import FORMATS, Pair, name, render
from rewriter.reference import parse

ROOT = Path(__file__).resolve().parent.parent
CASES = ROOT / "fixtures" / "inventory"
FILES = {"csv": "expected.csv", "pairs": "expected.pairs.txt", "skopeo": "expected.skopeo.yaml", "image-syncer": "expected.image-syncer.yaml"}


def _cases() -> list[tuple[str, str]]:
    return [(case.name, fmt) for case in sorted(CASES.iterdir()) if case.is_dir() for fmt in FORMATS]


def test_every_case_has_a_golden_file_for_every_format() -> None:
    for case in (c for c in CASES.iterdir() if c.is_dir()):
        for fmt, filename in FILES.items():
            assert (case / filename).is_file() or (case / f"{filename}.error").is_file(), f"{case.name}: no golden {fmt}"


@pytest.mark.parametrize(("case", "fmt"), _cases())
def test_golden(case: str, fmt: str, capsysbinary: pytest.CaptureFixture[bytes], monkeypatch: pytest.MonkeyPatch) -> None:
    folder = CASES / case
    monkeypatch.chdir(folder)  # paths in the output stay the same wherever the tests run
    code = main(["images", "--config", "rules.yaml", "--format", fmt, "input.yaml"])
    out, err = capsysbinary.readouterr()
    expected = folder / FILES[fmt]
    if expected.is_file():
        assert (code, err) == (0, b"")
        assert out == expected.read_bytes()
    else:
        assert code == 2
        assert out == b""
        assert err == (folder / f"{FILES[fmt]}.error").read_bytes()


SKOPEO_CASES = [c.name for c in sorted(CASES.iterdir()) if (c / FILES["skopeo"]).is_file() and (c / FILES["skopeo"]).read_text().startswith("# kmirror")]
_PLANNED = re.compile(r'msg="Would have copied image ref \d+/\d+" from="docker://([^"]+)" to="docker://([^"]+)"')


@pytest.mark.parametrize("case", SKOPEO_CASES)
def test_real_skopeo_sync_plans_exactly_the_pairs(case: str, tmp_path: Path) -> None:
    """Run the command the file's header gives, with --dry-run; skopeo contacts no registry then."""
    folder = CASES / case
    text = (folder / FILES["skopeo"]).read_text()
    command = text.splitlines()[1].lstrip("# ").split()
    assert command[:2] == ["skopeo", "sync"]
    command = [tool("skopeo"), *command[1:]]
    command[command.index("FILE")] = str(folder / FILES["skopeo"])
    done = subprocess.run([*command, "--dry-run"], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    planned = {(parse(src).normalized, dst) for src, dst in _PLANNED.findall(done.stderr)}
    expected = set()
    for line in (folder / FILES["pairs"]).read_text().splitlines():
        pull, push = (parse(r) for r in line.split())
        # skopeo sync keeps the source's tag or digest: a tag+digest reference is copied by digest.
        expected.add((pull.normalized, name(push) + pull.suffix))
    assert planned == expected
    assert len(planned) >= 4


def _pair(source: str, mirror: str) -> Pair:
    return Pair(parse(source), parse(mirror))


def test_copy_references() -> None:
    assert _pair("nginx", "m.example/nginx").pull == "docker.io/library/nginx:latest"
    assert _pair("nginx", "m.example/nginx").push == "m.example/nginx:latest"
    pinned = _pair("quay.io/a/b:v1@sha256:" + "a" * 64, "m.example/a/b:v1@sha256:" + "a" * 64)
    assert pinned.pull == "quay.io/a/b@sha256:" + "a" * 64  # skopeo refuses tag and digest together
    assert pinned.push == "m.example/a/b:v1"
    digest_only = _pair("quay.io/a/b@sha256:" + "b" * 64, "m.example/a/b@sha256:" + "b" * 64)
    assert (digest_only.pull, digest_only.push) == ("quay.io/a/b@sha256:" + "b" * 64, "m.example/a/b@sha256:" + "b" * 64)


def test_skopeo_refuses_a_tag_that_changes() -> None:
    """An exact-image rule may give another tag; skopeo sync keeps tags, so it cannot copy that."""
    from rewriter.errors import KmirrorError

    with pytest.raises(KmirrorError, match="cannot write a skopeo sync file"):
        render([_pair("docker.io/library/nginx:1.16", "m.example/library/nginx:stable")], "skopeo")


def test_skopeo_scoped_and_flat() -> None:
    scoped = render([_pair("quay.io/a/b:v1", "m.example/quay.io/a/b:v1")], "skopeo")
    assert "--scoped FILE m.example\n" in scoped
    flat = render([_pair("quay.io/a/b:v1", "m.example/ns/b:v1")], "skopeo")
    assert "docker FILE m.example/ns\n" in flat


def test_pairs_are_unique_across_spellings(tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    (tmp_path / "rules.yaml").write_text("mirrors:\n  - {from: docker.io, to: m.example/hub}\n")
    (tmp_path / "a.yaml").write_text(
        "kind: Pod\nspec:\n  containers:\n  - {name: a, image: nginx:1.25}\n  - {name: b, image: docker.io/library/nginx:1.25}\n"
        "  - {name: c, image: index.docker.io/library/nginx:1.25}\n"
    )
    assert main(["images", "-c", str(tmp_path / "rules.yaml"), "-f", "pairs", str(tmp_path / "a.yaml")]) == 0
    out, _ = capsysbinary.readouterr()
    assert out == b"docker.io/library/nginx:1.25 m.example/hub/library/nginx:1.25\n"


def test_json_contract_is_unchanged(tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    folder = CASES / "daocloud"
    assert main(["images", "-c", str(folder / "rules.yaml"), "-f", "json", str(folder / "input.yaml")]) == 0
    rows = json.loads(capsysbinary.readouterr()[0])
    assert len(rows) == 8  # occurrences, not unique pairs
    assert all(list(row) == ["file", "document", "path", "line", "column", "ref", "normalized", "registry", "mirrored", "blocked"] for row in rows)


def test_unknown_format_names_every_format(capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    folder = CASES / "daocloud"
    assert main(["images", "-c", str(folder / "rules.yaml"), "-f", "yaml", str(folder / "input.yaml")]) == 2
    out, err = capsysbinary.readouterr()
    assert out == b""
    assert err.startswith(b"kmirror: error: invalid option: --format: 'yaml': choose one of text, json, csv, skopeo, image-syncer, pairs")


DOCS = ROOT / "docs" / "supply-chain.md"
_BLOCK = re.compile(r"^```(\w+)\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def _doc_examples() -> list[tuple[str, str]]:
    """(command, expected output) for each ```console block of docs/supply-chain.md."""
    examples = []
    for kind, body in _BLOCK.findall(DOCS.read_text()):
        if kind == "console":
            command, _, output = body.partition("\n")
            examples.append((command.removeprefix("$ "), output))
    return examples


@pytest.mark.parametrize(("command", "expected"), _doc_examples())
def test_docs_examples(command: str, expected: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    """The offline examples in docs/supply-chain.md print exactly what the page shows."""
    for kind, body in _BLOCK.findall(DOCS.read_text()):
        first, _, rest = body.partition("\n")
        if kind in ("yaml", "text") and first.startswith("# ") and "." in first:
            (tmp_path / first[2:]).write_text(rest)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("KMIRROR_CONFIG", raising=False)
    args = command.split()
    assert args[0] == "kmirror"
    code = main(args[1:])
    out, err = capsysbinary.readouterr()
    assert out.decode() == expected
    assert code == (1 if "KM0" in expected else 0), err
