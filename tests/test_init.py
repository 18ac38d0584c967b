"""`kmirror init` and rewriter/init.py: starter rules files that load, and say what they do."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from rewriter.config import DEFAULT_PRESET, load_preset, parse_config, preset_names
from rewriter.errors import KmirrorError
from rewriter.init import EXAMPLES, PUBLIC_REGISTRIES, starter
from rewriter.reference import parse

KMIRROR = str(Path(sys.executable).parent / "kmirror")


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if k != "KMIRROR_CONFIG"}
    return subprocess.run([KMIRROR, *args], cwd=cwd, env=environment, capture_output=True, text=True, timeout=60)


def mirrored(config_text: str, ref: str) -> str | None:
    decision = parse_config(config_text, ".kmirror.yaml").rules.decide(parse(ref))
    return None if decision.mirrored is None else str(decision.mirrored)


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("nginx:1.25", "harbor.example.com/docker.io/library/nginx:1.25"),
        ("ghcr.io/fluxcd/source-controller:v1.2.0", "harbor.example.com/ghcr.io/fluxcd/source-controller:v1.2.0"),
        ("quay.io/jetstack/cert-manager-controller:v1.14.4", "harbor.example.com/quay.io/jetstack/cert-manager-controller:v1.14.4"),
        ("registry.k8s.io/coredns/coredns:v1.11.1", "harbor.example.com/registry.k8s.io/coredns/coredns:v1.11.1"),
        ("k8s.gcr.io/pause:3.2", "harbor.example.com/k8s.gcr.io/pause:3.2"),
        ("mcr.microsoft.com/dotnet/runtime:8.0", "harbor.example.com/mcr.microsoft.com/dotnet/runtime:8.0"),
        ("public.ecr.aws/karpenter/controller:1.0.0@sha256:" + "a" * 64,
         "harbor.example.com/public.ecr.aws/karpenter/controller:1.0.0@sha256:" + "a" * 64),
        ("registry.example.org/team/app:1", None),
    ],
)
def test_registry_starter_puts_each_public_registry_under_its_own_path(ref: str, expected: str | None) -> None:
    assert mirrored(starter(registry="harbor.example.com"), ref) == expected


def test_registry_starter_blocks_exactly_the_public_registries_it_mirrors() -> None:
    config = parse_config(starter(registry="harbor.example.com"), ".kmirror.yaml")
    assert config.rules.blocked == frozenset(PUBLIC_REGISTRIES)
    assert {rule.registry for rule in config.rules.rules} == set(PUBLIC_REGISTRIES)
    assert config.notices == ()


def test_registry_starter_takes_a_port_and_a_path_and_lowercases_the_host() -> None:
    text = starter(registry="Harbor.Example.com:8443/mirrors")
    assert mirrored(text, "nginx:1.25") == "harbor.example.com:8443/mirrors/docker.io/library/nginx:1.25"
    assert "written by `kmirror init --registry Harbor.Example.com:8443/mirrors`" in text


@pytest.mark.parametrize("bad", ["https://harbor.example.com", "harbor", "harbor.example.com/Upper", ""])
def test_registry_starter_rejects_what_is_not_a_registry(bad: str) -> None:
    with pytest.raises(KmirrorError, match=r"^invalid option: --registry: "):
        starter(registry=bad)


@pytest.mark.parametrize("name", preset_names())
def test_preset_starter_loads_as_that_preset(name: str) -> None:
    text = starter(preset=name)
    assert f"\npreset: {name}\n" in text
    config = parse_config(text, ".kmirror.yaml")
    assert config.rules == parse_config(f"preset: {name}\n", "x").rules
    preset = load_preset(name)
    assert f"# Preset {name}: {preset.description}\n" in text
    assert f"status: {preset.status} as of {preset.status_date}" in text


def test_default_starter_is_the_default_preset() -> None:
    text = starter()
    assert text.startswith("# kmirror rules file, written by `kmirror init`.\n")
    assert parse_config(text, ".kmirror.yaml").rules == parse_config(f"preset: {DEFAULT_PRESET}\n", "x").rules


def test_preset_starter_examples_work_once_uncommented() -> None:
    text = starter(preset="daocloud")
    assert "".join(f"# {line}\n" if line else "#\n" for line in EXAMPLES.splitlines()) in text
    uncommented = parse_config(f"preset: daocloud\n{EXAMPLES}", ".kmirror.yaml")
    assert str(uncommented.rules.decide(parse("quay.io/myorg/app:1.0")).mirrored) == "registry.example.com/myorg/app:1.0"
    assert str(uncommented.rules.decide(parse("k8s.gcr.io/sig-storage/csi-provisioner:v3.0.0")).mirrored) == (
        "registry.example.com/google_containers/csi-provisioner:v3.0.0"
    )
    assert uncommented.rules.blocked == frozenset({"docker.io", "k8s.gcr.io"})


def test_every_line_is_a_comment_or_yaml_a_reader_can_follow() -> None:
    for text in (starter(), starter(registry="harbor.example.com")):
        assert text.endswith("\n") and "\t" not in text
        assert all(len(line) <= 100 for line in text.splitlines())
        comments = [line for line in text.splitlines() if line.startswith("#")]
        assert len(comments) >= 8


def test_unknown_preset_and_both_options_are_errors() -> None:
    with pytest.raises(KmirrorError, match=r"^unknown preset: 'nope': known presets are "):
        starter(preset="nope")
    with pytest.raises(KmirrorError, match=r"^invalid options: --preset and --registry: choose one$"):
        starter(preset="daocloud", registry="harbor.example.com")


def test_init_writes_the_file_that_kmirror_then_uses(tmp_path: Path) -> None:
    result = run("init", "--registry", "harbor.example.com", cwd=tmp_path)
    assert (result.returncode, result.stdout) == (0, "")
    assert result.stderr == "wrote .kmirror.yaml; see what it does: kmirror check .\n"
    assert (tmp_path / ".kmirror.yaml").read_text() == starter(registry="harbor.example.com")
    (tmp_path / "deploy").mkdir()
    (tmp_path / "deploy" / "pod.yaml").write_text("kind: Pod\nspec:\n  containers:\n    - image: nginx:1.25\n")
    check = run("check", ".", cwd=tmp_path / "deploy")  # found from a subfolder too
    assert check.returncode == 1
    assert "pod.yaml:4:14: KM001 nginx:1.25 is on blocked registry docker.io (mirror: harbor.example.com/docker.io/library/nginx:1.25)" in check.stdout


def test_init_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    (tmp_path / ".kmirror.yaml").write_text("preset: lank8s\n")
    refused = run("init", "--preset", "daocloud", cwd=tmp_path)
    assert (refused.returncode, refused.stdout) == (2, "")
    assert refused.stderr == f"kmirror: error: cannot write: {tmp_path / '.kmirror.yaml'}: it exists already (--force replaces it)\n"
    assert (tmp_path / ".kmirror.yaml").read_text() == "preset: lank8s\n"
    forced = run("init", "--preset", "daocloud", "--force", cwd=tmp_path)
    assert forced.returncode == 0, forced.stderr
    assert (tmp_path / ".kmirror.yaml").read_text() == starter(preset="daocloud")


def test_init_warns_about_a_dead_preset_and_still_writes_it(tmp_path: Path) -> None:
    result = run("init", "--preset", "ustc", cwd=tmp_path)
    assert result.returncode == 0
    assert result.stderr.startswith("kmirror: warning: preset 'ustc' is reported dead since ")
    assert (tmp_path / ".kmirror.yaml").read_text() == starter(preset="ustc")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--preset", "nope"), "kmirror: error: unknown preset: 'nope': known presets are "),
        (("--preset", "daocloud", "--registry", "h.example.com"), "kmirror: error: invalid options: --preset and --registry: choose one"),
        (("--registry", "harbor"), "kmirror: error: invalid option: --registry: 'harbor' does not start with a registry host"),
    ],
)
def test_init_bad_options_exit_2_and_write_nothing(tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    result = run("init", *args, cwd=tmp_path)
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr.startswith(message)
    assert list(tmp_path.iterdir()) == []
