"""The gate cannot be talked past (issue 18): what counts is what the API server receives.

Each input spells a pod (or another resource) the way an attacker or a careless author
might: default ports and host aliases, keys and values in every YAML spelling (quoting,
escapes, explicit keys, aliases, tags, `!!binary`, typed-looking values), every YAML line
break, and digest pins. The real `kubectl label --local -f - x=y -o json` is the oracle
for what the API server would get. For every input whose JSON holds an image on a blocked
registry (an `image` field, or a reference kmirror itself reads in the JSON), either the
filter's output holds none any more (read by kubectl again), or `kmirror check` and
`kmirror --strict` both exit 1. The spellings come from the issue and the YAML 1.2
productions for keys (c-l-block-map-explicit-entry, ns-flow-map-implicit-entry, alias
nodes), tags (c-ns-tag-property: verbatim, shorthand, `%TAG` handles), line breaks
(b-break and YAML 1.1's NEL, LS, PS) and escapes (c-ns-esc-char).
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from rewriter.config import parse_config
from rewriter.pipeline import process
from rewriter.reference import ReferenceError, parse
from tools import tool

KMIRROR = str(Path(sys.executable).parent / "kmirror")
RULES = """\
mirrors:
  - {from: "docker.io/library/nginx:1.16", to: "harbor.example.com/base/nginx:1.16-patched"}
  - {from: docker.io, to: mirror.example.com/hub}
  - {from: quay.io, to: mirror.example.com/quay}
  - {from: gcr.io, to: mirror.example.com/gcr}
blocked: [docker.io, quay.io, gcr.io, ghcr.io]
"""
CONFIG = parse_config(RULES, ".kmirror.yaml")
BLOCKED = CONFIG.rules.blocked
DIGEST = "sha256:" + "ab" * 32
HEAD = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n  - name: c\n"


def pod(item: str, break_: str = "\n") -> str:
    """A Pod whose one container is `name: c` plus `item` (lines indented by four spaces)."""
    return (HEAD + item).replace("\n", break_)


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


CASES: list[tuple[str, str]] = [
    # Hosts: the endpoint a runtime contacts (default port, case, Docker Hub's aliases).
    ("port-443-quay", pod("    image: quay.io:443/x/y:v1\n")),
    ("port-443-docker-io", pod("    image: docker.io:443/library/nginx:1.25\n")),
    ("port-443-registry-1", pod("    image: registry-1.docker.io:443/library/nginx:1.25\n")),
    ("port-443-index", pod("    image: index.docker.io:443/library/nginx:1.25\n")),
    ("port-443-gcr", pod("    image: gcr.io:443/p/x:v1\n")),
    ("port-0443", pod("    image: quay.io:0443/x/y:v1\n")),
    ("port-443-no-rule", pod("    image: ghcr.io:443/o/x:v1\n")),
    ("upper-case-host", pod("    image: QUAY.IO/x/y:v1\n")),
    ("mixed-case-host-and-port", pod("    image: Quay.Io:443/x/y:v1\n")),
    ("upper-case-docker-hub", pod("    image: DOCKER.IO/library/nginx:1.25\n")),
    ("index-alias-short-name", pod("    image: index.docker.io/nginx:1.25\n")),
    ("registry-1-alias", pod("    image: registry-1.docker.io/library/nginx\n")),
    ("upper-case-ghcr-no-rule", pod("    image: GHCR.io/o/x:v1\n")),
    # Keys: compared by value, however spelled.
    ("key-double-quoted", pod('    "image": nginx:1.25\n')),
    ("key-single-quoted", pod("    'image': nginx:1.25\n")),
    ("key-escape-x", pod('    "im\\x61ge": nginx:1.25\n')),
    ("key-escape-u", pod('    "im\\u0061ge": nginx:1.25\n')),
    ("key-escape-U", pod('    "\\U00000069mage": nginx:1.25\n')),
    ("key-all-escaped", pod('    "\\x69\\x6d\\x61\\x67\\x65": quay.io/x/y:v1\n')),
    ("key-explicit", pod("    ? image\n    : nginx:1.25\n")),
    ("key-explicit-quoted-escape", pod('    ? "im\\x61ge"\n    : nginx:1.25\n')),
    ("key-explicit-value-next-line", pod("    ? image\n    :\n      nginx:1.25\n")),
    ("key-explicit-flow", "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: c, ? image : nginx:1.25}]}\n"),
    ("key-alias", "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  labels: {k: &k image}\nspec:\n  containers:\n  - name: c\n    *k : nginx:1.25\n"),
    ("key-anchored", pod("    &a image: quay.io/x/y:v1\n")),
    ("key-tag-str", pod("    !!str image: nginx:1.25\n")),
    ("key-verbatim-tag", pod("    !<tag:yaml.org,2002:str> image: nginx:1.25\n")),
    ("key-local-tag", pod("    !foo image: nginx:1.25\n")),
    ("key-binary", pod(f"    ? !!binary {b64('image')}\n    : nginx:1.25\n")),
    ("key-space-before-colon", pod("    image   : nginx:1.25\n")),
    ("key-tab-before-colon", pod("    image\t: nginx:1.25\n")),
    ("json-escaped-key", '{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "im\\u0061ge": "quay.io/x/y:v1"}]}}\n'),
    ("json-escaped-value", '{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "quay.io\\/x\\/y:v1"}]}}\n'),
    # Values: the string kubectl sends, whatever its tag.
    ("value-local-tag", pod("    image: !foo quay.io/x/y:v1\n")),
    ("value-verbatim-local-tag", pod("    image: !<!foo> quay.io/x/y:v1\n")),
    ("value-tag-str", pod("    image: !!str quay.io/x/y:v1\n")),
    ("value-binary", pod(f"    image: !!binary {b64('quay.io/x/y:v1')}\n")),
    ("value-binary-block", pod(f"    image: !!binary |\n      {b64('nginx:1.25')}\n")),
    ("value-binary-no-rule", pod(f"    image: !!binary {b64('ghcr.io/o/x:v1')}\n")),
    ("value-timestamp", pod("    image: 2001-12-14\n")),
    ("value-explicit-timestamp", pod("    image: !!timestamp 2001-12-14\n")),
    ("value-escape-x", pod('    image: "quay.io\\x2fx/y:v1"\n')),
    ("value-escape-u", pod('    image: "\\u0071uay.io/x/y:v1"\n')),
    ("value-escaped-line-break", pod('    image: "quay.io/\\\n      x/y:v1"\n')),
    ("value-anchor-alias", pod("    image: &i quay.io/x/y:v1\n  - name: d\n    image: *i\n")),
    ("value-merge-key", "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  labels: {}\nspec:\n  containers:\n  - &base {name: c, image: quay.io/x/y:v1}\n  - <<: *base\n    name: d\n"),
    ("value-literal-block", pod("    image: |-\n      quay.io/x/y:v1\n")),
    ("value-folded-block", pod("    image: >-\n      quay.io/x/y:v1\n")),
    ("value-single-quoted", pod("    image: 'quay.io/x/y:v1'\n")),
    ("value-tag-on-next-line", pod("    image: !!str\n      quay.io/x/y:v1\n")),
    ("value-escape-colon", pod('    image: "nginx\\u003a1.25"\n')),
    ("value-anchor-and-tag", pod("    image: &i !foo quay.io/x/y:v1\n")),
    ("value-after-tab", pod("    image:\tquay.io/x/y:v1\n")),
    ("key-explicit-escaped-line-break", pod('    ? "ima\\\n      ge"\n    : quay.io/x/y:v1\n')),
    ("key-explicit-comment-between", pod("    ? image  # the key: here\n    # value: below\n    : quay.io/x/y:v1\n")),
    ("duplicate-key-blocked-last", pod("    image: mirror.example.com/hub/library/nginx:1\n    \"im\\x61ge\": nginx:1.25\n")),
    ("collection-tags", "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers: !!seq\n  - !!map\n    name: c\n    image: !!str quay.io:443/x/y:v1\n"),
    ("merge-key-list", "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  labels: {a: &n c}\nspec:\n  containers:\n  - &one {image: quay.io/x/y:v1}\n  - <<: [*one]\n    name: *n\n".replace("- &one {image: quay.io/x/y:v1}\n", "- &one {name: b, image: quay.io/x/y:v1}\n")),
    # Line breaks: every YAML break before a value on its own line, and comments on the way.
    ("next-line-lone-cr", pod("    image:\r      nginx:1.25\n")),
    ("next-line-nel", pod("    image:\x85      nginx:1.25\n")),
    ("next-line-line-separator", pod("    image:\u2028      nginx:1.25\n")),
    ("next-line-paragraph-separator", pod("    image:\u2029      nginx:1.25\n")),
    ("next-line-crlf", pod("    image:\r\n      nginx:1.25\n")),
    ("next-line-comment-with-colon", pod("    image:\n      nginx:1.25 # see: upstream\n")),
    ("next-line-after-comment-lines", pod("    image: # pinned: yes\n      # by: ops\n\n      nginx:1.25\n")),
    ("whole-stream-lone-cr", pod("    image: nginx:1.25\n", "\r")),
    ("whole-stream-nel", pod("    image: nginx:1.25\n", "\x85")),
    ("whole-stream-line-separator", pod("    image: quay.io/x/y:v1\n", "\u2028")),
    ("whole-stream-crlf", pod("    image:\n      quay.io/x/y:v1\n", "\r\n")),
    ("byte-order-mark", "\ufeff" + pod("    image: quay.io:443/x/y:v1\n")),
    # Other resources and places.
    ("deployment-escaped-key", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec:\n  selector: {matchLabels: {a: b}}\n  template:\n    metadata: {labels: {a: b}}\n    spec:\n      initContainers:\n      - name: i\n        \"im\\x61ge\": docker.io:443/library/busybox:1\n      containers:\n      - name: c\n        image: !foo gcr.io:443/p/x:v1\n"),
    ("list-items-explicit-key", "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Pod\n  metadata: {name: p}\n  spec:\n    containers:\n    - name: c\n      ? image\n      : quay.io/x/y:v1\n"),
    ("cronjob-next-line-nel", "apiVersion: batch/v1\nkind: CronJob\nmetadata: {name: j}\nspec:\n  schedule: '* * * * *'\n  jobTemplate:\n    spec:\n      template:\n        spec:\n          restartPolicy: Never\n          containers:\n          - name: c\n            image:\x85              quay.io:443/x/y:v1\n"),
    ("ephemeral-container-binary", pod(f"  ephemeralContainers:\n  - name: e\n    image: !!binary {b64('docker.io:443/library/busybox:1')}\n").replace("  - name: c\n  ephemeral", "  - name: c\n    image: mirror.example.com/hub/library/nginx:1\n  ephemeral")),
    ("second-document-escaped", pod("    image: mirror.example.com/hub/library/nginx:1\n") + "---\n" + pod('    "im\\x61ge": quay.io:443/x/y:v1\n')),
    ("document-after-end-marker", pod("    image: mirror.example.com/hub/library/nginx:1\n") + "...\n---\n" + pod("    ? image\n    : nginx:1.25\n")),
    ("env-image-name-tagged", pod("    image: mirror.example.com/hub/library/nginx:1\n    env:\n    - name: !!str SIDECAR_IMAGE\n      value: nginx:1.25\n")),
    ("env-image-name-next-line", pod("    image: mirror.example.com/hub/library/nginx:1\n    env:\n    - name:\n        SIDECAR_IMAGE\n      value: nginx:1.25\n")),
    # Digests: an exact rule never drops a pin.
    ("digest-exact-rule", pod(f"    image: nginx:1.16@{DIGEST}\n")),
    ("digest-host-rule", pod(f"    image: quay.io:443/x/y:v1@{DIGEST}\n")),
]


def kubectl_json(text: str) -> list[Any] | None:
    """What the API server would receive (kubectl's YAML to JSON), one object a document, or None when kubectl refuses the input."""
    result = subprocess.run([tool("kubectl"), "label", "--local", "-f", "-", "x=y", "-o", "json"], input=text.encode(), capture_output=True, timeout=60)
    if result.returncode != 0:
        return None
    decoder, out, sent, at = json.JSONDecoder(), result.stdout.decode(), [], 0
    while out[at:].strip():
        found, end = decoder.raw_decode(out, len(out) - len(out[at:].lstrip()))
        sent.append(found)
        at = end
    return sent


def blocked_images(sent: Any) -> set[str]:
    """Images on blocked registries in kubectl's JSON: `image` fields, and what kmirror reads in that JSON."""
    found: set[str] = set()
    stack = [sent]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "image" and isinstance(value, str):
                    try:
                        if parse(value).registry in BLOCKED:
                            found.add(value)
                    except ReferenceError:
                        pass
                stack.append(value)
        elif isinstance(node, list):
            stack.extend(node)
    outcome = process(json.dumps(sent).encode(), "sent.json", CONFIG)
    return found | {image.location.text for image in outcome.images if image.on_blocked}


def kmirror(*args: str, stdin: bytes = b"", cwd: Path) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([KMIRROR, "--config", str(cwd / "rules.yaml"), *args], input=stdin, capture_output=True, cwd=cwd, timeout=60)


def test_the_table_covers_sixty_spellings() -> None:
    assert len(CASES) >= 60
    assert len({name for name, _ in CASES}) == len(CASES)


@pytest.mark.parametrize(("name", "text"), CASES, ids=[name for name, _ in CASES])
def test_nothing_blocked_passes_silently(name: str, text: str, tmp_path: Path) -> None:
    sent = kubectl_json(text)
    assert sent is not None, f"kubectl refuses {name}: the case tests nothing"
    blocked = blocked_images(sent)
    assert blocked, f"{name}: kubectl's JSON holds no blocked image: the case tests nothing"
    (tmp_path / "rules.yaml").write_text(RULES)
    (tmp_path / "in.yaml").write_bytes(text.encode())
    strict = kmirror("--strict", stdin=text.encode(), cwd=tmp_path)
    assert strict.returncode in (0, 1), strict.stderr.decode()
    if strict.returncode == 0:
        after = kubectl_json(strict.stdout.decode())
        assert after is not None, f"{name}: kubectl refuses the filter's output"
        assert blocked_images(after) == set(), f"{name}: the filter left {blocked_images(after)}"
    else:
        assert strict.stdout == b""
        check = kmirror("check", "in.yaml", cwd=tmp_path)
        assert check.returncode == 1, f"{name}: --strict refused but check passed: {check.stdout.decode()}"


@pytest.mark.parametrize("value", ["1.25", "12345", "0x1f", "1e3", "1_000", "true", "yes", "null", "~"])
def test_values_kubectl_sends_as_numbers_booleans_or_null_are_not_images(value: str) -> None:
    """What YAML types as a number, boolean or null reaches the API server as one (which refuses it), not as an image."""
    [sent] = kubectl_json(pod(f"    image: {value}\n")) or [None]
    assert not isinstance(sent["spec"]["containers"][0].get("image"), str)
    assert process(pod(f"    image: {value}\n").encode(), "pod.yaml", CONFIG).images == ()


@pytest.mark.parametrize("value", ["2001-12-14", "!foo 123", "!!str 12", "'1.25'"])
def test_values_kubectl_sends_as_strings_are_read(value: str) -> None:
    text = pod(f"    image: {value}\n")
    [sent] = kubectl_json(text) or [None]
    image = sent["spec"]["containers"][0]["image"]
    assert isinstance(image, str)
    assert [i.location.text for i in process(text.encode(), "pod.yaml", CONFIG).images] == [image]
