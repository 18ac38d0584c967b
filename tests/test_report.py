"""Every output format of rewriter.report, on hand-made findings and on none.

SARIF output is validated against the official SARIF 2.1.0 JSON schema, vendored in
tests/sarif/ with its provenance and licence notice.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import jsonschema
import pytest

import rewriter
from rewriter.findings import BAD_RESULT, BLOCKED, UNSAFE, Finding
from rewriter.locate import Resource
from rewriter.report import FORMATS, render

DEPLOYMENT = Resource("apps/v1", "Deployment", "web", "prod")
MESSY_MESSAGE = "docker.io/library/busybox:1.36 cannot be rewritten safely, 100% sure:\nfix it by hand\r"

BLOCKED_WITH_RULE = Finding(
    code=BLOCKED,
    message="quay.io/x:v1 is on blocked registry quay.io (mirror: mirror.example.com/x:v1)",
    file="deploy.yaml",
    line=12,
    column=16,
    ref="quay.io/x:v1",
    registry="quay.io",
    suggested="mirror.example.com/x:v1",
    resource=DEPLOYMENT,
    path="spec.template.spec.containers[0].image",
)
BAD_RULE = Finding(
    code=BAD_RESULT,
    message="quay.io/y:v2: the matching rule gives an invalid reference: bad name",
    file="deploy.yaml",
    line=30,
    column=9,
    ref="quay.io/y:v2",
    registry="quay.io",
    suggested=None,
    resource=DEPLOYMENT,
    path="spec.template.spec.initContainers[0].image",
)
UNSAFE_ESCAPED = Finding(
    code=UNSAFE,
    message=MESSY_MESSAGE,
    file="my manifests/job.yaml",
    line=3,
    column=5,
    ref="docker.io/library/busybox:1.36",
    registry="docker.io",
    suggested="mirror.example.com/library/busybox:1.36",
    resource=Resource("batch/v1", "Job", "migrate", None),
    path="spec.template.spec.containers[0].args[1]",
)
NO_RULE_ODD_FILE = Finding(
    code=BLOCKED,
    message="ghcr.io/z:v3 is on blocked registry ghcr.io (no rule)",
    file="odd,name:50%.yaml",
    line=1,
    column=8,
    ref="ghcr.io/z:v3",
    registry="ghcr.io",
    suggested=None,
    resource=Resource(),
    path="image",
)
FINDINGS = [BLOCKED_WITH_RULE, BAD_RULE, UNSAFE_ESCAPED, NO_RULE_ODD_FILE]


SARIF_SCHEMA = json.loads((Path(__file__).parent / "sarif" / "sarif-schema-2.1.0.json").read_text(encoding="utf-8"))


def validate_sarif(log: Any) -> None:
    """Validate against the official SARIF 2.1.0 schema (tests/sarif, with its notice); raise on the first error."""
    validator = jsonschema.Draft4Validator(SARIF_SCHEMA, format_checker=jsonschema.Draft4Validator.FORMAT_CHECKER)
    validator.validate(log)


def test_formats_are_exactly_the_contract() -> None:
    assert FORMATS == ("text", "json", "sarif", "github", "gitlab", "junit")
    with pytest.raises(ValueError, match="unknown format 'xml'"):
        render(FINDINGS, "xml", 1)


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_renders_no_findings(fmt: str) -> None:
    out = render([], fmt, 0)
    assert out.endswith("\n") and not out.endswith("\n\n")
    if fmt in ("json", "gitlab"):
        assert json.loads(out) == []
    elif fmt == "sarif":
        log = json.loads(out)
        validate_sarif(log)
        assert log["runs"][0]["results"] == []
    elif fmt == "junit":
        suite = ET.fromstring(out).find("testsuite")
        assert suite is not None
        assert (suite.get("tests"), suite.get("failures")) == ("1", "0")
        assert [case.get("name") for case in suite.iter("testcase")] == ["no blocked images"]
        assert suite.find("testcase/failure") is None
    else:
        assert out == "no problems (0 files checked)\n"


def test_text_is_one_line_per_finding_then_the_summary() -> None:
    assert render(FINDINGS, "text", 7) == (
        "deploy.yaml:12:16: KM001 quay.io/x:v1 is on blocked registry quay.io (mirror: mirror.example.com/x:v1)\n"
        "deploy.yaml:30:9: KM003 quay.io/y:v2: the matching rule gives an invalid reference: bad name\n"
        "my manifests/job.yaml:3:5: KM002 docker.io/library/busybox:1.36 cannot be rewritten safely, 100% sure:\\nfix it by hand\\r\n"
        "odd,name:50%.yaml:1:8: KM001 ghcr.io/z:v3 is on blocked registry ghcr.io (no rule)\n"
        "4 problems in 3 files (7 files checked)\n"
    )


def test_text_escapes_control_characters_so_no_line_can_be_forged() -> None:
    forged = BLOCKED_WITH_RULE._replace(file="a\nforged.yaml:1:1: KM001 fake\x1b[2K\u2028.yaml")
    assert render([forged], "text", 1) == (
        "a\\nforged.yaml:1:1: KM001 fake\\x1b[2K\\u2028.yaml:12:16: KM001 quay.io/x:v1 is on blocked registry quay.io (mirror: mirror.example.com/x:v1)\n"
        "1 problem in 1 file (1 file checked)\n"
    )


@pytest.mark.parametrize("fmt", ["text", "github"])
def test_summary_names_the_rules(fmt: str) -> None:
    assert render([], fmt, 2, "preset daocloud") == "no problems (2 files checked against preset daocloud)\n"
    assert render([BLOCKED_WITH_RULE], fmt, 1, "../../.kmirror.yaml").splitlines()[-1] == "1 problem in 1 file (1 file checked against ../../.kmirror.yaml)"
    assert render([], fmt, 1, "a\nforged").splitlines() == ["no problems (1 file checked against a\\nforged)"]


def test_summary_counts_in_the_singular() -> None:
    assert render([BLOCKED_WITH_RULE], "text", 1).splitlines()[-1] == "1 problem in 1 file (1 file checked)"
    assert render([], "text", 1) == "no problems (1 file checked)\n"


def test_json_has_every_field_of_every_finding() -> None:
    records = json.loads(render(FINDINGS, "json", 3))
    assert len(records) == 4
    for record in records:
        assert set(record) == {
            "file", "line", "column", "ref", "registry", "suggested", "code", "message", "severity", "path", "resource",
        }
        assert set(record["resource"]) == {"apiVersion", "kind", "name", "namespace"}
    assert records[0] == {
        "file": "deploy.yaml",
        "line": 12,
        "column": 16,
        "ref": "quay.io/x:v1",
        "registry": "quay.io",
        "suggested": "mirror.example.com/x:v1",
        "code": "KM001",
        "message": "quay.io/x:v1 is on blocked registry quay.io (mirror: mirror.example.com/x:v1)",
        "severity": "error",
        "path": "spec.template.spec.containers[0].image",
        "resource": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "namespace": "prod"},
    }
    assert records[2]["message"] == MESSY_MESSAGE
    assert records[3]["suggested"] is None
    assert records[3]["resource"] == {"apiVersion": None, "kind": None, "name": None, "namespace": None}


def test_sarif_has_the_spec_structure_and_github_fields() -> None:
    log = json.loads(render(FINDINGS, "sarif", 3))
    validate_sarif(log)
    assert log["$schema"] == "https://json.schemastore.org/sarif-2.1.0.json"
    assert log["version"] == "2.1.0"
    [run] = log["runs"]
    driver = run["tool"]["driver"]
    assert driver["name"] == "kmirror"
    assert driver["informationUri"] == "https://github.com/kmirror/kmirror"
    assert driver["version"] == version("kmirror")
    rules = driver["rules"]
    assert [rule["id"] for rule in rules] == ["KM001", "KM002", "KM003", "KM004"]
    results = run["results"]
    assert [r["ruleId"] for r in results] == ["KM001", "KM003", "KM002", "KM001"]
    assert all(rules[r["ruleIndex"]]["id"] == r["ruleId"] for r in results)
    assert {r["level"] for r in results} == {"error"}
    assert results[2]["message"]["text"] == MESSY_MESSAGE
    physical = results[0]["locations"][0]["physicalLocation"]
    assert physical["artifactLocation"]["uri"] == "deploy.yaml"
    assert physical["region"] == {"startLine": 12, "startColumn": 16, "endColumn": 16 + len("quay.io/x:v1")}
    uris = [r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in results]
    assert uris[2:] == ["my%20manifests/job.yaml", "odd%2Cname%3A50%25.yaml"]


def test_sarif_uris_use_forward_slashes_and_file_uris_for_absolute_paths() -> None:
    findings = [BLOCKED_WITH_RULE._replace(file="charts\\web\\deploy.yaml"), BLOCKED_WITH_RULE._replace(file="/srv/my repo/deploy.yaml")]
    results = json.loads(render(findings, "sarif", 2))["runs"][0]["results"]
    uris = [r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in results]
    assert uris == ["charts/web/deploy.yaml", "file:///srv/my%20repo/deploy.yaml"]


def test_sarif_version_falls_back_when_kmirror_is_not_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    def missing() -> str:
        raise PackageNotFoundError("kmirror")

    monkeypatch.setattr(rewriter, "_installed_version", missing)
    assert json.loads(render([], "sarif", 0))["runs"][0]["tool"]["driver"]["version"] == "0.0.0"


def _sarif_fingerprints(findings: list[Finding]) -> list[str]:
    results = json.loads(render(findings, "sarif", 1))["runs"][0]["results"]
    return [next(iter(r["partialFingerprints"].values())) for r in results]


def _gitlab_fingerprints(findings: list[Finding]) -> list[str]:
    return [issue["fingerprint"] for issue in json.loads(render(findings, "gitlab", 1))]


@pytest.mark.parametrize("fingerprints", [_sarif_fingerprints, _gitlab_fingerprints])
def test_fingerprints_are_stable_and_distinct(fingerprints: Any) -> None:
    first = fingerprints(FINDINGS)
    assert len(set(first)) == len(FINDINGS)
    # The same problem after the file was edited above it: same fingerprint.
    assert fingerprints([f._replace(line=f.line + 5, column=f.column + 2) for f in FINDINGS]) == first
    # The same reference at the same path in another document of the file: another one.
    other_resource = BLOCKED_WITH_RULE._replace(resource=DEPLOYMENT._replace(name="api"))
    assert len(set(fingerprints([BLOCKED_WITH_RULE, other_resource]))) == 2
    # The same reference twice in one value: each occurrence has its own.
    twice = fingerprints([BLOCKED_WITH_RULE, BLOCKED_WITH_RULE._replace(column=40)])
    assert len(set(twice)) == 2 and twice[0] == first[0]


def test_github_commands_escape_properties_and_data() -> None:
    assert render(FINDINGS, "github", 7) == (
        "::error file=deploy.yaml,line=12,col=16,title=KM001::"
        "quay.io/x:v1 is on blocked registry quay.io (mirror: mirror.example.com/x:v1)\n"
        "::error file=deploy.yaml,line=30,col=9,title=KM003::"
        "quay.io/y:v2: the matching rule gives an invalid reference: bad name\n"
        "::error file=my manifests/job.yaml,line=3,col=5,title=KM002::"
        "docker.io/library/busybox:1.36 cannot be rewritten safely, 100%25 sure:%0Afix it by hand%0D\n"
        "::error file=odd%2Cname%3A50%25.yaml,line=1,col=8,title=KM001::"
        "ghcr.io/z:v3 is on blocked registry ghcr.io (no rule)\n"
        "4 problems in 3 files (7 files checked)\n"
    )


def test_gitlab_code_quality_issues() -> None:
    issues = json.loads(render(FINDINGS, "gitlab", 3))
    assert len(issues) == 4
    for issue, finding in zip(issues, FINDINGS):
        assert set(issue) == {"description", "check_name", "fingerprint", "severity", "location"}
        assert re.fullmatch(r"[0-9a-f]{32}", issue["fingerprint"])
        assert issue["description"] == finding.message
        assert issue["check_name"] == finding.code
        assert issue["severity"] == "major"
        assert issue["location"] == {"path": finding.file, "lines": {"begin": finding.line}}


def test_junit_has_one_failing_case_per_finding() -> None:
    out = render(FINDINGS, "junit", 3)
    assert out.startswith("<?xml")
    root = ET.fromstring(out)
    assert root.tag == "testsuites"
    suites = root.findall("testsuite")
    assert len(suites) == 1
    suite = suites[0]
    assert (suite.get("name"), suite.get("tests"), suite.get("failures")) == ("kmirror", "4", "4")
    cases = suite.findall("testcase")
    assert [(c.get("classname"), c.get("name")) for c in cases] == [
        ("deploy.yaml", "KM001 quay.io/x:v1 at line 12"),
        ("deploy.yaml", "KM003 quay.io/y:v2 at line 30"),
        ("my manifests/job.yaml", "KM002 docker.io/library/busybox:1.36 at line 3"),
        ("odd,name:50%.yaml", "KM001 ghcr.io/z:v3 at line 1"),
    ]
    for case, finding in zip(cases, FINDINGS):
        [failure] = case.findall("failure")
        assert failure.get("type") == finding.code
        assert failure.get("message") == finding.message
        # XML parsers turn a raw carriage return in text into a line feed (XML 1.0, 2.11).
        assert failure.text == finding.text().replace("\r", "\n")


def test_the_vendored_schema_refuses_what_sarif_forbids() -> None:
    log = json.loads(render(FINDINGS, "sarif", 3))
    for broken in ({**log, "version": "2.0.0"}, {**log, "runs": [{"results": []}]}, {**log, "extra": 1}):
        with pytest.raises(jsonschema.ValidationError):
            validate_sarif(broken)


def test_sarif_with_a_root_names_the_base_and_gives_relative_uris(tmp_path: Path) -> None:
    log = json.loads(render([BLOCKED_WITH_RULE], "sarif", 1, root=tmp_path))
    validate_sarif(log)
    assert log["runs"][0]["originalUriBaseIds"] == {"SRCROOT": {"uri": tmp_path.as_uri() + "/"}}
    assert log["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]["uriBaseId"] == "SRCROOT"
