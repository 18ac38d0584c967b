"""Where credentials come from (rewriter/auth.py): the files and helpers skopeo and docker use, in skopeo's order."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from rewriter.auth import Credentials, auth_entry, auth_files, default_lookup, file_lookup


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def write(path: Path, auths: dict[str, object], **extra: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"auths": auths, **extra}))


def test_files_in_skopeos_order(tmp_path: Path) -> None:
    env = {"HOME": str(tmp_path / "home"), "XDG_RUNTIME_DIR": str(tmp_path / "run"), "DOCKER_CONFIG": str(tmp_path / "docker")}
    assert auth_files(env) == [tmp_path / "run/containers/auth.json", tmp_path / "home/.config/containers/auth.json", tmp_path / "docker/config.json"]
    named = {**env, "REGISTRY_AUTH_FILE": str(tmp_path / "named.json")}
    assert auth_files(named)[0] == tmp_path / "named.json"
    assert auth_files(named)[1:] == auth_files(env)[1:]
    write(tmp_path / "docker/config.json", {"a.example": {"auth": b64("docker:1")}, "b.example": {"auth": b64("docker:2")}, "c.example": {"auth": b64("docker:3")}})
    write(tmp_path / "home/.config/containers/auth.json", {"b.example": {"auth": b64("config:2")}, "c.example": {"auth": b64("config:3")}})
    write(tmp_path / "run/containers/auth.json", {"c.example": {"auth": b64("runtime:3")}})
    lookup = default_lookup(env)
    assert [lookup(h) for h in ("a.example", "b.example", "c.example")] == [Credentials("docker", "1"), Credentials("config", "2"), Credentials("runtime", "3")]
    write(tmp_path / "named.json", {"a.example": {"auth": b64("named:1")}})
    assert default_lookup(named)("a.example") == Credentials("named", "1")
    assert default_lookup(named)("c.example") == Credentials("config", "3")  # the named file replaces the runtime one


def test_identity_tokens_and_namespaces(tmp_path: Path) -> None:
    path = tmp_path / "auth.json"
    write(path, {
        "token.example": {"auth": b64("alice:"), "identitytoken": "refresh-1"},
        "quay.io/team": {"auth": b64("team:pw")},  # scoped to a namespace: left to skopeo
        "https://index.docker.io/v1/": {"auth": b64("hub:pw")},
    })
    lookup = file_lookup(path)
    token = lookup("token.example")
    assert token == Credentials("", identity_token="refresh-1")
    assert token is not None and "refresh-1" not in repr(token)
    assert lookup("quay.io") is None
    assert lookup("docker.io") == Credentials("hub", "pw")
    # What skopeo is handed: containers/image reads an entry only when `auth` decodes to user:password.
    assert auth_entry(token) == {"auth": b64(":"), "identitytoken": "refresh-1"}
    assert auth_entry(Credentials("u", "p:q")) == {"auth": b64("u:p:q")}


def test_helper_identity_token(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    helper = tmp_path / "bin" / "docker-credential-kmtoken"
    helper.parent.mkdir()
    helper.write_text('#!/bin/sh\nread server\nprintf \'{"ServerURL":"%s","Username":"<token>","Secret":"refresh-2"}\' "$server"\n')
    helper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{helper.parent}:/usr/bin:/bin")
    write(tmp_path / "config.json", {}, credsStore="kmtoken")
    assert file_lookup(tmp_path / "config.json")("any.example") == Credentials("", identity_token="refresh-2")


def test_unreadable_file_names_no_secret(tmp_path: Path) -> None:
    path = tmp_path / "auth.json"
    path.write_text('{"auths": {"a.example": {"auth": "c2VjcmV0LXZhbHVl"}}')  # truncated JSON
    with pytest.raises(Exception) as caught:
        file_lookup(path)
    assert "c2VjcmV0" not in str(caught.value) and "cannot read credentials" in str(caught.value)
