"""kmirror across a repository and in CI (issue 19), end to end through the installed `kmirror`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from ruamel.yaml import YAML

KMIRROR = str(Path(sys.executable).parent / "kmirror")
RULES = "mirrors:\n  - {from: docker.io, to: hub.example.com}\n"


def run(*args: str, cwd: Path, stdin: bytes = b"", env: dict[str, str] | None = None) -> subprocess.CompletedProcess[bytes]:
    """The installed kmirror, with no rules file or CI variables from the environment unless given."""
    environment = {k: v for k, v in os.environ.items() if k not in ("KMIRROR_CONFIG", "GITHUB_ACTIONS", "NO_COLOR")}
    environment.update(env or {})
    return subprocess.run([KMIRROR, *args], input=stdin, capture_output=True, cwd=cwd, env=environment, timeout=120)


def documents(data: bytes) -> list[object]:
    return list(YAML(typ="safe").load_all(data))


# -- 1. several files on standard output form one stream ------------------------------------


def test_several_files_print_as_one_valid_stream(tmp_path: Path) -> None:
    (tmp_path / ".kmirror.yaml").write_text(RULES)
    files = {
        "a.yaml": b"kind: Pod\nimage: nginx:1",  # no final newline
        "b.yaml": b"\xef\xbb\xbfkind: Pod\nimage: redis:7\n",  # a byte-order mark
        "c.yaml": b"---\nkind: Pod\n",  # opens with its own marker
        "d.yaml": b"%YAML 1.2\n---\nkind: Pod\n",  # directives
    }
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    result = run("rewrite", *files, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == (
        b"kind: Pod\nimage: hub.example.com/library/nginx:1\n---\n"
        b"kind: Pod\nimage: hub.example.com/library/redis:7\n"
        b"---\nkind: Pod\n...\n%YAML 1.2\n---\nkind: Pod\n"
    )
    assert documents(result.stdout) == [{"kind": "Pod", "image": "hub.example.com/library/nginx:1"}, {"kind": "Pod", "image": "hub.example.com/library/redis:7"}, {"kind": "Pod"}, {"kind": "Pod"}]


def test_in_place_files_stay_byte_exact(tmp_path: Path) -> None:
    (tmp_path / ".kmirror.yaml").write_text(RULES)
    (tmp_path / "a.yaml").write_bytes(b"image: nginx:1")
    (tmp_path / "b.yaml").write_bytes(b"\xef\xbb\xbfimage: redis:7\n")
    result = run("rewrite", "-w", "a.yaml", "b.yaml", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "a.yaml").read_bytes() == b"image: hub.example.com/library/nginx:1"
    assert (tmp_path / "b.yaml").read_bytes() == b"\xef\xbb\xbfimage: hub.example.com/library/redis:7\n"


# -- 2. rule sets are idempotent --------------------------------------------------------------

SCHEMES = "mirrors:\n  - {from: gcr.io, to: \"anjia0532/{path_dotted}\"}\n  - {from: docker.io, to: docker.mirrors.example}\n"


def test_a_second_run_changes_nothing_and_strict_passes_the_first(tmp_path: Path) -> None:
    (tmp_path / ".kmirror.yaml").write_text(SCHEMES)
    pod = b"kind: Pod\nspec:\n  containers:\n  - image: gcr.io/kaniko-project/executor:v1.8.1\n  - image: nginx:1\n"
    first = run("--strict", cwd=tmp_path, stdin=pod)
    assert first.returncode == 0, first.stderr
    assert first.stdout == pod.replace(b"gcr.io/kaniko-project/executor", b"anjia0532/kaniko-project.executor").replace(b"nginx", b"docker.mirrors.example/library/nginx")
    second = run("--strict", cwd=tmp_path, stdin=first.stdout)
    assert (second.returncode, second.stdout) == (0, first.stdout)
    (tmp_path / "pod.yaml").write_bytes(first.stdout)
    assert run("check", "pod.yaml", cwd=tmp_path).returncode == 0
    explained = run("explain", "anjia0532/kaniko-project.executor:v1.8.1", cwd=tmp_path)
    assert b"rule:       gcr.io -> anjia0532/{path_dotted} (already its result: left alone)" in explained.stdout
