"""Allow-lists (DaoCloud's allows.txt semantics) and `kmirror check --allowlist`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rewriter.allowlist import parse_allowlist
from rewriter.findings import NOT_ALLOWED
from rewriter.cli import main
from rewriter.errors import KmirrorError

ALLOWS = """\
# DaoCloud-style allow-list
docker.io/library/nginx
docker.io/bitnami/*        # one more component
gcr.io/google-containers/**

quay.io/prometheus/node-exporter
"""


def covers(text: str, name: str) -> bool:
    registry, _, repository = name.partition("/")
    return parse_allowlist(text, "allows.txt").covers(registry, repository)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        # exact repository
        ("docker.io/library/nginx", True),
        ("docker.io/library/nginx-extra", False),  # whole components only
        ("docker.io/library/nginx/sub", False),
        ("docker.io/library", False),
        # prefix/*: exactly one more component
        ("docker.io/bitnami/redis", True),
        ("docker.io/bitnami/redis/extra", False),
        ("docker.io/bitnami", False),
        ("docker.io/bitnamix/redis", False),
        # prefix/**: one or more components, any depth
        ("gcr.io/google-containers/pause", True),
        ("gcr.io/google-containers/a/b/c", True),
        ("gcr.io/google-containers", False),
        ("gcr.io/google-containers-x/pause", False),
        # hosts are compared normalised
        ("index.docker.io/library/nginx", True),
        ("QUAY.IO/prometheus/node-exporter", True),
        ("quay.io/prometheus/alertmanager", False),
    ],
)
def test_pattern_kinds_and_boundaries(name: str, expected: bool) -> None:
    assert covers(ALLOWS, name) is expected


def test_docker_hub_aliases_in_patterns() -> None:
    assert covers("index.docker.io/library/*\n", "docker.io/library/busybox")
    assert covers("registry-1.docker.io/library/**\n", "docker.io/library/busybox")


components = st.lists(st.from_regex(r"[a-z0-9]{1,6}", fullmatch=True), min_size=1, max_size=5)


@given(prefix=components, rest=components)
def test_star_is_exactly_one_component_and_double_star_any_depth(prefix: list[str], rest: list[str]) -> None:
    name = "/".join(["r.example", *prefix, *rest])
    base = "/".join(["r.example", *prefix])
    assert covers(f"{base}/*", name) is (len(rest) == 1)
    assert covers(f"{base}/**", name)
    assert not covers(f"{base}/*", base)
    assert not covers(f"{base}/**", base)
    assert covers(name, name)


@pytest.mark.parametrize(
    ("line", "why"),
    [
        ("docker.io/*/nginx", "a wildcard (* or **) may only be the whole last component"),
        ("docker.io/library/ngin*", "a wildcard (* or **) may only be the whole last component"),
        ("docker.io", "expected registry/repository, registry/prefix/* or registry/prefix/**"),
        ("docker.io//nginx", "empty path component"),
        ("docker.io/library/nginx extra", "white space inside a pattern"),
    ],
)
def test_invalid_lines_name_the_line(line: str, why: str) -> None:
    with pytest.raises(KmirrorError) as raised:
        parse_allowlist(f"# ok\ndocker.io/library/nginx\n{line}\n", "allows.txt")
    assert str(raised.value) == f"invalid allow-list: allows.txt:3: {line!r}: {why}"


MANIFEST = """\
apiVersion: v1
kind: Pod
metadata: {name: web}
spec:
  containers:
    - name: web
      image: nginx:1.25
    - name: cache
      image: bitnami/redis:7.2
    - name: tool
      image: bitnami/tools/kubectl:1.29
    - name: internal
      image: registry.example.com/team/app:2.0
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".kmirror.yaml").write_text("preset: daocloud\nblocked: []\n")
    (tmp_path / "pod.yaml").write_text(MANIFEST)
    (tmp_path / "allows.txt").write_text("docker.io/library/*\ndocker.io/bitnami/*\n")
    return tmp_path


def test_check_reports_what_the_allow_list_does_not_cover(project: Path, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    assert main(["check", "--allowlist", "allows.txt", "pod.yaml"]) == 1
    out, err = capsysbinary.readouterr()
    assert err == b""
    assert out.decode() == (
        f"pod.yaml:11:14: {NOT_ALLOWED} docker.io/bitnami/tools/kubectl is not on the mirror's allow-list allows.txt "
        "(pulling m.daocloud.io/docker.io/bitnami/tools/kubectl:1.29 would be refused)\n"
        f"1 problem in 1 file (1 file checked against {project / '.kmirror.yaml'})\n"
    )


def test_check_json_carries_the_finding(project: Path, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    assert main(["check", "--format", "json", "--allowlist", "allows.txt", "pod.yaml"]) == 1
    [record] = json.loads(capsysbinary.readouterr()[0])
    assert (record["code"], record["ref"], record["suggested"]) == (NOT_ALLOWED, "bitnami/tools/kubectl:1.29", "m.daocloud.io/docker.io/bitnami/tools/kubectl:1.29")


def test_check_passes_when_everything_is_covered(project: Path, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    (project / "allows.txt").write_text("docker.io/**\n")
    assert main(["check", "--allowlist", "allows.txt", "pod.yaml"]) == 0
    assert capsysbinary.readouterr()[0] == f"no problems (1 file checked against {project / '.kmirror.yaml'})\n".encode()


def test_check_without_allow_list_is_unchanged(project: Path, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    assert main(["check", "pod.yaml"]) == 0


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "kmirror: error: cannot read allow-list: missing.txt: no such file\n"),
        ("docker.io/**/x\n", "kmirror: error: invalid allow-list: missing.txt:1: 'docker.io/**/x': a wildcard (* or **) may only be the whole last component\n"),
    ],
)
def test_bad_allow_list_is_exit_2(project: Path, capsysbinary: pytest.CaptureFixture[bytes], content: str | None, message: str) -> None:
    if content is not None:
        (project / "missing.txt").write_text(content)
    assert main(["check", "--allowlist", "missing.txt", "pod.yaml"]) == 2
    out, err = capsysbinary.readouterr()
    assert (out, err.decode()) == (b"", message)
