"""`verify --same-digest`, `images --format lock` and `verify --lock` (rewriter/lock.py) against real registries.

The registries and helpers are those of tests/test_verify_sync.py; a different image is
pushed to the mirror under the same tag with skopeo, as a compromised or stale mirror would
serve it.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from test_verify_sync import (  # noqa: F401  (fixtures)
    SECRETS,
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


def replace_on_mirror(project: Project, tmp_path: Path, target: str) -> str:
    """Push another image to `target` (credentials from the project's auth file); its digest."""
    write_image(tmp_path / "other", "not what upstream published\n")
    digestfile = tmp_path / "other.digest"
    subprocess.run(
        [tool("skopeo"), "copy", "--dest-tls-verify=false", "--dest-authfile", project.env["REGISTRY_AUTH_FILE"],
         "--digestfile", str(digestfile), f"oci:{tmp_path / 'other'}:v1", f"docker://{target}"],
        check=True, capture_output=True,
    )
    return digestfile.read_text().strip()


def test_same_digest_fails_after_the_mirror_tag_is_replaced(project: Project, source: Source, basic_mirror: Registry, tmp_path: Path) -> None:
    pod = project.manifest(f"{source.registry.host}/app:v1")
    assert project.run("sync", pod).returncode == 0
    same = project.run("verify", "--same-digest", pod)
    assert (same.returncode, same.stdout) == (0, "1 mirrored image: 1 present\n"), same.stderr
    mirrored = f"{basic_mirror.host}/mirror/app:v1"
    other = replace_on_mirror(project, tmp_path, mirrored)
    assert project.run("verify", pod).returncode == 0  # the tag is there...
    different = project.run("verify", "--same-digest", pod)  # ...but it is not the source's image
    assert (different.returncode, different.stdout) == (1, (
        f"{mirrored}: different: the mirror serves {other}, the source {source.digest} (source {source.registry.host}/app:v1)\n"
        "1 mirrored image: 0 present, 1 different\n"
    ))


def test_lock_round_trip(project: Project, source: Source, basic_mirror: Registry, tmp_path: Path) -> None:
    pod = project.manifest(f"{source.registry.host}/app:v1", f"{source.registry.host}/app@{source.digest}")
    made = project.run("images", "--format", "lock", pod)
    assert made.returncode == 0, made.stderr
    mirror = f"{basic_mirror.host}/mirror/app"
    assert json.loads(made.stdout) == {"kmirror-lock": 1, "images": [
        {"source": f"{source.registry.host}/app:v1", "mirror": f"{mirror}:v1", "digest": source.digest},
        {"source": f"{source.registry.host}/app@{source.digest}", "mirror": f"{mirror}@{source.digest}", "digest": source.digest},
    ]}
    (project.folder / "kmirror.lock").write_text(made.stdout)
    missing = project.run("verify", "--lock", "kmirror.lock")
    assert missing.returncode == 1 and missing.stdout.endswith("2 locked images: 0 present, 2 missing\n")
    assert project.run("sync", pod).returncode == 0
    assert project.run("verify", "--lock", "kmirror.lock").stdout == "2 locked images: 2 present\n"
    other = replace_on_mirror(project, tmp_path, f"{mirror}:v1")
    changed = project.run("verify", "--lock", "kmirror.lock")
    assert (changed.returncode, changed.stdout) == (1, (
        f"{mirror}:v1: different: the mirror serves {other}, the lock has {source.digest} (source {source.registry.host}/app:v1)\n"
        "2 locked images: 1 present, 1 different\n"
    ))


def test_verify_lock_asks_only_the_mirror(project: Project, source: Source, basic_mirror: Registry) -> None:
    pod = project.manifest(f"{source.registry.host}/app:v1")
    assert project.run("sync", pod).returncode == 0
    gone = f"127.0.0.1:{free_port()}"  # the source registry is unreachable by now
    lock = {"kmirror-lock": 1, "images": [{"source": f"{gone}/app:v1", "mirror": f"{basic_mirror.host}/mirror/app:v1", "digest": source.digest}]}
    (project.folder / "kmirror.lock").write_text(json.dumps(lock))
    done = project.run("verify", "--lock", "kmirror.lock")
    assert (done.returncode, done.stdout) == (0, "1 locked images: 1 present\n"), done.stderr


def test_lock_of_an_unreachable_source_is_an_error(make_project: Callable[[str, str], Project]) -> None:
    down = f"127.0.0.1:{free_port()}"
    project = make_project(down, "127.0.0.1:1")
    project.registries(down)
    done = project.run("images", "--format", "lock", project.manifest(f"{down}/app:v1"))
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr.startswith(f"kmirror: error: cannot pin: {down}/app:v1: cannot reach registry: {down}: ")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", "cannot read lock: kmirror.lock: "),
        ('{"images": []}', "invalid lock: kmirror.lock: not a kmirror lock (written by kmirror images --format lock)"),
        ('{"kmirror-lock": 1, "images": [{"source": "a", "mirror": "b.example/c:1"}]}', "invalid lock: kmirror.lock: images[0]: expected source, mirror and digest strings"),
        ('{"kmirror-lock": 1, "images": [{"source": "a", "mirror": "b.example/c:1", "digest": "sha256:12"}]}', "invalid lock: kmirror.lock: images[0]: "),
    ],
)
def test_bad_lock_files(text: str, message: str, make_project: Callable[[str, str], Project]) -> None:
    project = make_project("127.0.0.1:1", "127.0.0.1:2")
    (project.folder / "kmirror.lock").write_text(text)
    done = project.run("verify", "--lock", "kmirror.lock")
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr.startswith(f"kmirror: error: {message}")


def test_lock_takes_no_manifests(make_project: Callable[[str, str], Project]) -> None:
    project = make_project("127.0.0.1:1", "127.0.0.2")
    done = project.run("verify", "--lock", "kmirror.lock", project.manifest("127.0.0.1:1/app:v1"))
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr.startswith("kmirror: error: invalid option: --lock: the lock replaces the manifests")
    assert project.run("verify").stderr.startswith("kmirror: error: invalid option: PATH: give the manifests to verify")


def test_a_source_trusted_through_ca_file(basic_mirror: Registry, make_project: Callable[[str, str], Project], tmp_path_factory: pytest.TempPathFactory) -> None:
    """An HTTPS source with its own CA: `sync` hands skopeo the CA (--src-cert-dir), `--same-digest` trusts it too."""
    from test_runtime import Registry as TlsRegistry
    from test_runtime import _oci_layout, _stop

    folder = tmp_path_factory.mktemp("tls-source")
    tls = TlsRegistry(folder)
    try:
        _oci_layout(folder / "layout")
        tls.push(folder / "layout", "app")
        host = f"127.0.0.1:{tls.port}"
        project = make_project(host, basic_mirror.host)
        (project.folder / "certs").mkdir()
        (project.folder / "certs" / "source-ca.pem").write_bytes(tls.ca.read_bytes())
        with (project.folder / ".kmirror.yaml").open("a") as rules:
            rules.write(f"registries:\n  '{host}': {{ca_file: certs/source-ca.pem}}\n  '{basic_mirror.host}': {{plain_http: true}}\n")
        project.auth_file({basic_mirror.host: {"auth": SECRETS[1]}})
        pod = project.manifest(f"{host}/app:1.0")
        synced = project.run("sync", pod)
        assert synced.returncode == 0, synced.stderr
        same = project.run("verify", "--same-digest", pod)
        assert (same.returncode, same.stdout) == (0, "1 mirrored image: 1 present\n"), same.stderr
    finally:
        _stop(tls.process)
