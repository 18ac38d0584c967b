"""`--pin` on the filter and on `rewrite` (rewriter/pin.py) against real registries on 127.0.0.1.

The registries, images and project helpers are those of tests/test_verify_sync.py: a
source registry holding images the tests build, a mirror with htpasswd authentication
over plain HTTP, the rules file's `registries:` section, no command-line flags.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from collections.abc import Callable
from pathlib import Path

from test_verify_sync import (  # noqa: F401  (fixtures)
    Project,
    Registry,
    Source,
    basic_mirror,
    free_port,
    make_project,
    project,
    source,
    write_image,
)
from tools import tool


def write_index(folder: Path, text: str) -> None:
    """An OCI layout whose tag `multi` is an image index (a multi-arch image) holding one linux/amd64 image."""
    write_image(folder, text)
    layout = json.loads((folder / "index.json").read_text())
    image = {k: v for k, v in layout["manifests"][0].items() if k != "annotations"}
    index = json.dumps({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{**image, "platform": {"architecture": "amd64", "os": "linux"}}],
    }).encode()
    digest = hashlib.sha256(index).hexdigest()
    (folder / "blobs" / "sha256" / digest).write_bytes(index)
    entry = {"mediaType": "application/vnd.oci.image.index.v1+json", "digest": f"sha256:{digest}", "size": len(index),
             "annotations": {"org.opencontainers.image.ref.name": "multi"}}
    (folder / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [entry]}))


def push(folder: Path, tag: str, target: str) -> str:
    """Copy `folder`'s image `tag` to `target` with skopeo; its digest there."""
    digestfile = folder.parent / f"{folder.name}-{tag}.digest"
    subprocess.run(
        [tool("skopeo"), "copy", "--all", "--dest-tls-verify=false", "--digestfile", str(digestfile), f"oci:{folder}:{tag}", f"docker://{target}"],
        check=True, capture_output=True,
    )
    return digestfile.read_text().strip()


def test_pin_writes_the_source_digest(project: Project, source: Source, basic_mirror: Registry) -> None:
    src = source.registry.host
    pod = project.manifest(f"{src}/app:v1", f"{src}/app:v1@{source.digest}", "nginx:1.25")
    before = (project.folder / pod).read_text()
    mirror = f"{basic_mirror.host}/mirror/app"
    expected = before.replace(f'"{src}/app:v1"', f'"{mirror}:v1@{source.digest}"').replace(f'"{src}/app:v1@', f'"{mirror}:v1@')
    rewritten = project.run("rewrite", "--pin", pod)
    assert (rewritten.returncode, rewritten.stdout) == (0, expected), rewritten.stderr
    filtered = project.run("--pin", stdin=before)
    assert (filtered.returncode, filtered.stdout) == (0, expected), filtered.stderr
    # In place, then again: the pinned file is left as it is.
    assert project.run("rewrite", "-w", "--pin", pod).returncode == 0
    assert (project.folder / pod).read_text() == expected
    again = project.run("rewrite", "--check", "--pin", pod)
    assert again.returncode == 0, again.stderr


def test_pin_from_mirror(project: Project, source: Source, basic_mirror: Registry) -> None:
    pod = project.manifest(f"{source.registry.host}/app:v1")
    before = (project.folder / pod).read_text()
    missing = project.run("rewrite", "-w", "--pin", "--pin-from", "mirror", pod)
    assert (missing.returncode, missing.stdout) == (2, "")
    assert missing.stderr == f"kmirror: error: cannot pin: {basic_mirror.host}/mirror/app:v1: missing: manifest unknown\n"
    assert (project.folder / pod).read_text() == before
    assert project.run("sync", pod).returncode == 0
    pinned = project.run("--pin", "--pin-from", "mirror", stdin=before)
    assert pinned.returncode == 0, pinned.stderr
    assert f'"{basic_mirror.host}/mirror/app:v1@{source.digest}"' in pinned.stdout


def test_multi_arch_image_is_pinned_to_its_index(project: Project, source: Source, basic_mirror: Registry, tmp_path: Path) -> None:
    write_index(tmp_path / "multi", "a multi-arch image\n")
    index_digest = push(tmp_path / "multi", "multi", f"{source.registry.host}/multi:v2")
    layout = json.loads((tmp_path / "multi" / "index.json").read_text())
    assert index_digest == layout["manifests"][0]["digest"]
    done = project.run("--pin", stdin=f"image: {source.registry.host}/multi:v2\n")
    assert (done.returncode, done.stdout) == (0, f"image: {basic_mirror.host}/mirror/multi:v2@{index_digest}\n"), done.stderr


def test_unreachable_registry_names_the_image(make_project: Callable[[str, str], Project]) -> None:
    down = f"127.0.0.1:{free_port()}"
    project = make_project(down, "127.0.0.1:1")
    project.registries(down)
    pod = project.manifest(f"{down}/app:v1", f"{down}/other:v2")
    before = (project.folder / pod).read_text()
    for args in (["rewrite", "-w", "--pin", pod], ["--pin"]):
        done = project.run(*args, stdin=before if args == ["--pin"] else "")
        assert (done.returncode, done.stdout) == (2, "")
        assert done.stderr.startswith(f"kmirror: error: cannot pin: {down}/app:v1 (and 1 more on its registry): cannot reach registry: {down}: ")
    assert (project.folder / pod).read_text() == before


def test_a_rule_that_changes_the_tag_cannot_take_the_source_digest(make_project: Callable[[str, str], Project]) -> None:
    project = make_project("127.0.0.1:1", "127.0.0.1:2")
    (project.folder / ".kmirror.yaml").write_text("mirrors:\n  - {from: 'docker.io/library/nginx:1.16', to: 'harbor.example/base/nginx:1.16-patched'}\n")
    done = project.run("--pin", stdin="image: nginx:1.16\n")
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == (
        "kmirror: error: cannot pin: nginx:1.16: its rule changes the tag (1.16 -> 1.16-patched), "
        "so the source's digest is not the mirror's; use --pin-from mirror\n"
    )


def test_pin_from_without_pin(make_project: Callable[[str, str], Project]) -> None:
    project = make_project("127.0.0.1:1", "127.0.0.1:2")
    done = project.run("--pin-from", "mirror", stdin="image: nginx\n")
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr.startswith("kmirror: error: invalid option: --pin-from: ")


def test_progress_bar_on_a_terminal(project: Project, source: Source) -> None:
    pod = project.manifest(f"{source.registry.host}/app:v1")
    returncode, shown = project.run_on_terminal("rewrite", "--pin", pod)
    assert returncode == 0
    assert b"kmirror: pin [" in shown and b"] 1/1" in shown
    # Piped, nothing but the result.
    assert project.run("rewrite", "--pin", pod).stderr == ""
