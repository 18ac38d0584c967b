"""Render findings for people and for CI systems, one small function per output format.

- `text`: `file:line:col: CODE message` lines and a summary line.
- `json`: an array of every field of every finding.
- `sarif`: SARIF 2.1.0, for GitHub code scanning.
- `github`: GitHub Actions `::error` workflow commands, then the summary line.
- `gitlab`: GitLab Code Quality JSON.
- `junit`: JUnit XML, one failing test case per finding.

Fingerprints (SARIF, GitLab) hash what a finding is, not where its line is, so that a
re-run on an edited file still matches the same problem. The CI formats (ROOTED) name files
relative to the repository's root when given one, as CI systems resolve them; SARIF also
says which root (`originalUriBaseIds`).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path, PurePath
from typing import Any
from urllib.parse import quote

from rewriter.errors import printable
from rewriter.findings import BAD_RESULT, BLOCKED, NOT_ALLOWED, UNSAFE, Finding

FORMATS = ("text", "json", "sarif", "github", "gitlab", "junit")
ROOTED = ("sarif", "github", "gitlab", "junit")
SRCROOT = "SRCROOT"  # the uriBaseId of file locations; GitHub code scanning knows this name

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
INFORMATION_URI = "https://github.com/kmirror/kmirror"
_RULES = (
    (BLOCKED, "BlockedRegistry", "Image reference on a blocked registry"),
    (UNSAFE, "UnsafeReference", "Image reference that cannot be rewritten safely"),
    (BAD_RESULT, "BadRuleResult", "Mirror rule gives an invalid image reference"),
    (NOT_ALLOWED, "NotOnAllowList", "Mirrored image not on the mirror's allow-list"),
)


def render(findings: Sequence[Finding], fmt: str, files_checked: int, rules: str | None = None, root: Path | None = None) -> str:
    """The complete output for `findings` in format `fmt` (one of FORMATS); `rules` names the rules used.

    With `root` (an absolute folder), the ROOTED formats name files relative to it.
    """
    try:
        renderer = _RENDERERS[fmt]
    except KeyError:
        raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}") from None
    if root is not None and fmt in ROOTED:
        findings = [f._replace(file=relative(f.file, root)) for f in findings]
        renderer = functools.partial(_sarif, root=root) if fmt == "sarif" else renderer
    return renderer(findings, files_checked, rules)


def relative(file: str, root: Path) -> str:
    """`file` (as given, from the working folder) relative to folder `root`, with `/`; `-` stays."""
    if file == "-":
        return file
    absolute = os.path.abspath(file)
    real = os.path.join(os.path.realpath(os.path.dirname(absolute)), os.path.basename(absolute))  # root is a real path too
    return PurePath(os.path.relpath(real, root)).as_posix()


def summary(findings: Sequence[Finding], files_checked: int, rules: str | None = None) -> str:
    """`N problems in M files (K files checked)`, or `no problems (K files checked)`.

    With `rules` (a rules file, or `preset NAME`): `(K files checked against RULES)`, so that
    a CI log shows which rules passed it (a rules file found by discovery may be a surprise).
    """
    checked = f"{_count(files_checked, 'file')} checked" + (f" against {printable(rules)}" if rules else "")
    if not findings:
        return f"no problems ({checked})"
    files = len({f.file for f in findings})
    return f"{_count(len(findings), 'problem')} in {_count(files, 'file')} ({checked})"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _text(findings: Sequence[Finding], files_checked: int, rules: str | None) -> str:
    return "".join(f"{printable(f.text())}\n" for f in findings) + summary(findings, files_checked, rules) + "\n"


def _json(findings: Sequence[Finding], files_checked: int, rules: str | None) -> str:
    records = [
        {
            "file": f.file,
            "line": f.line,
            "column": f.column,
            "ref": f.ref,
            "registry": f.registry,
            "suggested": f.suggested,
            "code": f.code,
            "message": f.message,
            "severity": f.severity,
            "path": f.path,
            "resource": {
                "apiVersion": f.resource.api_version,
                "kind": f.resource.kind,
                "name": f.resource.name,
                "namespace": f.resource.namespace,
            },
        }
        for f in findings
    ]
    return json.dumps(records, indent=2) + "\n"


def _identities(findings: Sequence[Finding]) -> list[str]:
    """What each finding is, independent of its line: file, code, ref, YAML path, resource.

    A repeat of the same identity (the same reference twice in one value) gets its
    occurrence number, so every finding of one run has its own fingerprint.
    """
    seen: Counter[str] = Counter()
    result = []
    for f in findings:
        r = f.resource
        identity = "\0".join(x or "" for x in (f.file, f.code, f.ref, f.path, r.api_version, r.kind, r.namespace, r.name))
        seen[identity] += 1
        result.append(f"{identity}\0{seen[identity]}" if seen[identity] > 1 else identity)
    return result


def _tool_version() -> str:
    # Imported here, for SARIF alone: importlib.metadata would add to every command's start.
    from importlib.metadata import PackageNotFoundError

    import rewriter

    try:
        return rewriter.__version__
    except PackageNotFoundError:
        return "0.0.0"


def _artifact_uri(file: str) -> str:
    """A URI reference for `file`: relative paths stay relative, with forward slashes."""
    path = PurePath(file)
    if path.is_absolute():
        return path.as_uri()
    return quote(file.replace("\\", "/"))


def _artifact_location(file: str, root: Path | None) -> dict[str, str]:
    uri = _artifact_uri(file)
    return {"uri": uri, "uriBaseId": SRCROOT} if root is not None and not PurePath(file).is_absolute() else {"uri": uri}


def _sarif(findings: Sequence[Finding], files_checked: int, rules: str | None, root: Path | None = None) -> str:
    rule_index = {code: i for i, (code, _, _) in enumerate(_RULES)}
    results = [
        {
            "ruleId": f.code,
            "ruleIndex": rule_index[f.code],
            "level": "error",
            "message": {"text": f.message},
            "locations": [
                {
                    "physicalLocation": {
                        "artifactLocation": _artifact_location(f.file, root),
                        "region": {"startLine": f.line, "startColumn": f.column, "endColumn": f.column + len(f.ref)},
                    }
                }
            ],
            "partialFingerprints": {"kmirrorFinding/v1": hashlib.sha256(identity.encode()).hexdigest()},
        }
        for f, identity in zip(findings, _identities(findings))
    ]
    log: dict[str, Any] = {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "kmirror",
                        "informationUri": INFORMATION_URI,
                        "version": _tool_version(),
                        "rules": [
                            {"id": code, "name": name, "shortDescription": {"text": description}}
                            for code, name, description in _RULES
                        ],
                    }
                },
                "columnKind": "unicodeCodePoints",
                "results": results,
            }
        ],
    }
    if root is not None:
        log["runs"][0]["originalUriBaseIds"] = {SRCROOT: {"uri": root.as_uri().rstrip("/") + "/"}}
    return json.dumps(log, indent=2) + "\n"


def _escape_data(value: str) -> str:
    return value.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(value: str) -> str:
    return _escape_data(value).replace(":", "%3A").replace(",", "%2C")


def _github(findings: Sequence[Finding], files_checked: int, rules: str | None) -> str:
    lines = [
        f"::error file={_escape_property(f.file)},line={f.line},col={f.column},"
        f"title={_escape_property(f.code)}::{_escape_data(f.message)}\n"
        for f in findings
    ]
    return "".join(lines) + summary(findings, files_checked, rules) + "\n"


def _gitlab(findings: Sequence[Finding], files_checked: int, rules: str | None) -> str:
    issues = [
        {
            "description": f.message,
            "check_name": f.code,
            "fingerprint": hashlib.md5(identity.encode(), usedforsecurity=False).hexdigest(),
            "severity": "major",
            "location": {"path": f.file, "lines": {"begin": f.line}},
        }
        for f, identity in zip(findings, _identities(findings))
    ]
    return json.dumps(issues, indent=2) + "\n"


def _junit(findings: Sequence[Finding], files_checked: int, rules: str | None) -> str:
    tests = max(len(findings), 1)
    failures = str(len(findings))
    root = ET.Element("testsuites", name="kmirror", tests=str(tests), failures=failures)
    suite = ET.SubElement(root, "testsuite", name="kmirror", tests=str(tests), failures=failures, errors="0")
    for f in findings:
        case = ET.SubElement(suite, "testcase", classname=f.file, name=f"{f.code} {f.ref} at line {f.line}")
        failure = ET.SubElement(case, "failure", message=f.message, type=f.code)
        failure.text = f.text()
    if not findings:
        ET.SubElement(suite, "testcase", classname="kmirror", name="no blocked images")
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


_RENDERERS: dict[str, Callable[[Sequence[Finding], int, str | None], str]] = {
    "text": _text,
    "json": _json,
    "sarif": _sarif,
    "github": _github,
    "gitlab": _gitlab,
    "junit": _junit,
}
