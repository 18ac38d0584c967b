"""In-place rewrites (`kmirror rewrite -w`) on disk: atomic, all-or-nothing checks, links, modes, owners.

Policy, stated in docs/guarantees.md and tested here:
- each file is replaced in one rename: a reader sees the old file or the new one, never half;
- a file changed by another program since kmirror read it is not replaced (exit 2, no file changed);
- a symbolic link met while walking a folder that leads outside it is not followed;
- every file is checked for write permission before the first one is written;
- a symbolic link is followed: the file it points to is rewritten and the link stays a link;
  links to folders are followed only when named, not while walking a folder;
- a hard link is broken: the named path gets the new file, other names keep the old one;
- mode bits, owner and group are kept (owner and group when the user may set them).
"""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from rewriter.errors import KmirrorError
from rewriter.files import write_atomic

KMIRROR = str(Path(sys.executable).parent / "kmirror")
RULES = "mirrors:\n  - {from: docker.io, to: hub.example.com}\n  - {from: quay.io, to: quay.example.com}\n"
POD = b"apiVersion: v1\nkind: Pod\nspec:\n  containers:\n  - image: nginx:1.25  # web\n  - image: 'quay.io/a/b:1'\n"
REWRITTEN = POD.replace(b"nginx", b"hub.example.com/library/nginx").replace(b"quay.io/", b"quay.example.com/")


def run(*args: str, cwd: Path, preexec_fn: object = None) -> subprocess.CompletedProcess[bytes]:
    """Run the installed kmirror with the rules file of `cwd`."""
    env = {k: v for k, v in os.environ.items() if k not in ("KMIRROR_CONFIG", "GITHUB_ACTIONS")}
    return subprocess.run([KMIRROR, *args], capture_output=True, cwd=cwd, env=env, timeout=120, preexec_fn=preexec_fn)  # type: ignore[arg-type]


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A folder with the rules file and pod.yaml."""
    (tmp_path / ".kmirror.yaml").write_text(RULES)
    (tmp_path / "pod.yaml").write_bytes(POD)
    return tmp_path


def leftovers(folder: Path) -> list[Path]:
    """Temporary files kmirror left behind."""
    return [p for p in folder.rglob("*") if p.name.endswith(".kmirror")]


# Concurrency


def test_two_writers_and_a_reader_see_only_whole_files(folder: Path) -> None:
    files = [folder / f"pod-{i:03}.yaml" for i in range(150)]
    for file in files:
        file.write_bytes(POD)
    seen: set[bytes] = set()
    done = threading.Event()

    def read_until_done() -> None:
        while not done.is_set():
            for file in files:
                seen.add(file.read_bytes())

    reader = threading.Thread(target=read_until_done)
    reader.start()
    env = {k: v for k, v in os.environ.items() if k != "KMIRROR_CONFIG"}
    writers = [subprocess.Popen([KMIRROR, "rewrite", "-w", "."], cwd=folder, env=env, stderr=subprocess.PIPE) for _ in range(2)]
    results = [(w.wait(timeout=120), w.stderr.read()) for w in writers]  # type: ignore[union-attr]
    done.set()
    reader.join()
    for code, stderr in results:  # a writer that finds a file changed by the other one changes nothing
        assert code == 0 or (code == 2 and b"changed by another program since kmirror read it" in stderr), stderr
    assert 0 in [code for code, _ in results]
    assert seen <= {POD, REWRITTEN}
    assert all(file.read_bytes() == REWRITTEN for file in files)
    assert not leftovers(folder)


def test_two_writers_with_different_rules_leave_a_valid_result(folder: Path) -> None:
    (folder / "hub.yaml").write_text("mirrors: [{from: docker.io, to: hub.example.com}]\n")
    (folder / "quay.yaml").write_text("mirrors: [{from: quay.io, to: quay.example.com}]\n")
    files = [folder / f"pod-{i:03}.yaml" for i in range(150)]
    for file in files:
        file.write_bytes(POD)
    env = {k: v for k, v in os.environ.items() if k != "KMIRROR_CONFIG"}
    writers = [
        subprocess.Popen([KMIRROR, "rewrite", "-w", "-c", rules, *map(str, files)], cwd=folder, env=env, stderr=subprocess.PIPE)
        for rules in ("hub.yaml", "quay.yaml")
    ]
    codes = []
    for writer in writers:
        codes.append(writer.wait(timeout=120))
        stderr = writer.stderr.read()  # type: ignore[union-attr]
        assert codes[-1] == 0 or (codes[-1] == 2 and b"changed by another program since kmirror read it" in stderr), stderr
    assert 0 in codes
    hub_only = POD.replace(b"nginx", b"hub.example.com/library/nginx")
    quay_only = POD.replace(b"quay.io/", b"quay.example.com/")
    # Each file is one writer's rewrite of the original, or of the other writer's result.
    assert {file.read_bytes() for file in files} <= {hub_only, quay_only, REWRITTEN}
    assert not leftovers(folder)


# Permission checks come before any write


def test_a_read_only_file_stops_the_whole_batch(folder: Path) -> None:
    (folder / "a.yaml").write_bytes(POD)
    (folder / "b.yaml").write_bytes(POD)
    (folder / "b.yaml").chmod(0o444)
    result = run("rewrite", "-w", "a.yaml", "b.yaml", "pod.yaml", cwd=folder)
    assert result.returncode == 2
    assert result.stderr.decode().splitlines() == ["kmirror: error: cannot write: b.yaml: permission denied (read-only file)"]
    assert [(folder / n).read_bytes() for n in ("a.yaml", "b.yaml", "pod.yaml")] == [POD, POD, POD]
    assert (folder / "b.yaml").stat().st_mode & 0o777 == 0o444


def test_a_read_only_file_that_would_not_change_is_not_an_error(folder: Path) -> None:
    (folder / "done.yaml").write_bytes(REWRITTEN)
    (folder / "done.yaml").chmod(0o444)
    result = run("rewrite", "-w", "done.yaml", cwd=folder)
    assert result.returncode == 0, result.stderr
    assert (folder / "done.yaml").read_bytes() == REWRITTEN


# Links


def test_symbolic_link_rewrites_its_target_and_stays_a_link(folder: Path) -> None:
    target_folder = folder / "real"
    target_folder.mkdir()
    target = target_folder / "pod.yaml"
    target.write_bytes(POD)
    target.chmod(0o640)
    link = folder / "link.yaml"
    link.symlink_to("real/pod.yaml")
    result = run("rewrite", "-w", "link.yaml", cwd=folder)
    assert result.returncode == 0, result.stderr
    assert link.is_symlink() and os.readlink(link) == "real/pod.yaml"
    assert target.read_bytes() == REWRITTEN
    assert target.stat().st_mode & 0o777 == 0o640
    assert not leftovers(folder)


def test_symbolic_link_chain_rewrites_the_final_target(folder: Path) -> None:
    (folder / "one.yaml").symlink_to("two.yaml")
    (folder / "two.yaml").symlink_to("pod.yaml")
    assert run("rewrite", "-w", "one.yaml", cwd=folder).returncode == 0
    assert (folder / "one.yaml").is_symlink() and (folder / "two.yaml").is_symlink()
    assert (folder / "pod.yaml").read_bytes() == REWRITTEN


def test_symbolic_link_to_a_read_only_file_is_refused(folder: Path) -> None:
    (folder / "pod.yaml").chmod(0o444)
    (folder / "link.yaml").symlink_to("pod.yaml")
    result = run("rewrite", "-w", "link.yaml", cwd=folder)
    assert result.returncode == 2
    assert "cannot write: link.yaml: permission denied" in result.stderr.decode()
    assert (folder / "pod.yaml").read_bytes() == POD


@pytest.mark.parametrize(
    ("make", "fragment"),
    [
        (lambda f: (f / "dangling.yaml").symlink_to("missing.yaml"), "cannot read: dangling.yaml: no such file"),
        (lambda f: (f / "loop.yaml").symlink_to("loop.yaml"), "cannot read: loop.yaml: Too many levels of symbolic links"),
    ],
    ids=["dangling", "loop"],
)
def test_broken_symbolic_links_fail_cleanly(folder: Path, make: object, fragment: str) -> None:
    make(folder)  # type: ignore[operator]
    name = fragment.split(": ")[1]
    result = run("rewrite", "-w", name, "pod.yaml", cwd=folder)
    assert result.returncode == 2
    assert result.stderr.decode().splitlines() == [f"kmirror: error: {fragment}"]
    assert (folder / "pod.yaml").read_bytes() == POD


def test_links_to_folders_are_not_followed_when_walking_a_folder(folder: Path) -> None:
    elsewhere = folder / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "pod.yaml").write_bytes(POD)
    tree = folder / "tree"
    tree.mkdir()
    (tree / "linked").symlink_to(elsewhere)
    (tree / "own.yaml").write_bytes(POD)
    assert run("rewrite", "-w", "tree", cwd=folder).returncode == 0
    assert (tree / "own.yaml").read_bytes() == REWRITTEN
    assert (elsewhere / "pod.yaml").read_bytes() == POD
    assert run("rewrite", "-w", "tree/linked", cwd=folder).returncode == 0  # named on the command line: followed
    assert (elsewhere / "pod.yaml").read_bytes() == REWRITTEN


def test_hard_link_is_broken_the_other_name_keeps_the_old_file(folder: Path) -> None:
    os.link(folder / "pod.yaml", folder / "other-name")
    assert run("rewrite", "-w", "pod.yaml", cwd=folder).returncode == 0
    assert (folder / "pod.yaml").read_bytes() == REWRITTEN
    assert (folder / "other-name").read_bytes() == POD


# Modes and owners


@pytest.mark.parametrize("mode", [0o600, 0o644, 0o664, 0o755, 0o2775])
def test_mode_is_kept_whatever_the_umask(folder: Path, mode: int) -> None:
    (folder / "pod.yaml").chmod(mode)
    result = run("rewrite", "-w", "pod.yaml", cwd=folder, preexec_fn=lambda: os.umask(0o077))
    assert result.returncode == 0, result.stderr
    assert (folder / "pod.yaml").stat().st_mode & 0o7777 == mode


def test_owner_and_group_are_kept(folder: Path) -> None:
    pod = folder / "pod.yaml"
    if os.geteuid() == 0:
        # CI runs as root: give the file to someone else, as a shared checkout would.
        os.chown(pod, 1234, 2345)
    before = pod.stat()
    assert run("rewrite", "-w", "pod.yaml", cwd=folder).returncode == 0
    after = pod.stat()
    assert pod.read_bytes() == REWRITTEN
    assert (after.st_uid, after.st_gid) == (before.st_uid, before.st_gid)


# A write that fails part-way


def _file_size_limit(size: int) -> object:
    def limit() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # fail the write with EFBIG instead of dying
        resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))

    return limit


def test_a_write_failing_part_way_leaves_the_original_intact(folder: Path) -> None:
    big = POD + b"".join(b"# padding line %05d to make the file larger than the limit\n" % i for i in range(2000))
    (folder / "pod.yaml").write_bytes(big)
    result = run("rewrite", "-w", "pod.yaml", cwd=folder, preexec_fn=_file_size_limit(32 * 1024))
    assert result.returncode == 2
    assert result.stderr.decode().splitlines() == ["kmirror: error: cannot write: pod.yaml: File too large"]
    assert (folder / "pod.yaml").read_bytes() == big
    assert not leftovers(folder)


def test_a_failed_write_in_a_batch_changes_no_file(folder: Path) -> None:
    big = POD + b"# padding\n" * 10_000
    (folder / "a-small.yaml").write_bytes(POD)
    (folder / "b-big.yaml").write_bytes(big)
    result = run("rewrite", "-w", "a-small.yaml", "b-big.yaml", cwd=folder, preexec_fn=_file_size_limit(32 * 1024))
    assert result.returncode == 2
    assert "cannot write: b-big.yaml: File too large" in result.stderr.decode()
    assert (folder / "a-small.yaml").read_bytes() == POD  # staged, but never renamed into place
    assert (folder / "b-big.yaml").read_bytes() == big
    assert not leftovers(folder)


def test_write_atomic_removes_its_temporary_file_on_any_failure(tmp_path: Path) -> None:
    target = tmp_path / "pod.yaml"
    target.write_bytes(POD)
    with pytest.raises(UnicodeEncodeError):
        write_atomic(str(target), "image: \udc80\n")  # a lone surrogate cannot be written as UTF-8
    assert target.read_bytes() == POD
    assert not leftovers(tmp_path)


def test_write_atomic_on_a_vanished_file_is_a_clean_error(tmp_path: Path) -> None:
    with pytest.raises(KmirrorError, match=r"^cannot write: .*gone.yaml: No such file or directory$"):
        write_atomic(str(tmp_path / "gone.yaml"), "x\n")
    assert not leftovers(tmp_path)


# Issue 18: folders stay folders; a file changed meanwhile is not replaced


def test_links_leading_outside_a_walked_folder_are_skipped_with_a_note(folder: Path) -> None:
    outside = folder / "outside.yaml"
    outside.write_bytes(POD)
    tree = folder / "tree"
    tree.mkdir()
    (tree / "out.yaml").symlink_to(outside)
    (tree / "zero.yaml").symlink_to("/dev/zero")
    (tree / "own.yaml").write_bytes(POD)
    (tree / "in.yaml").symlink_to("own.yaml")  # inside the folder: followed
    result = run("rewrite", "-w", "tree", cwd=folder)
    assert result.returncode == 0, result.stderr
    assert result.stderr.decode().splitlines() == [
        f"kmirror: note: skipped tree/out.yaml: a symbolic link to {outside}, outside tree (name it to read it)",
        "kmirror: note: skipped tree/zero.yaml: a symbolic link to /dev/zero, outside tree (name it to read it)",
        "rewrote 2 files",
    ]
    assert outside.read_bytes() == POD
    assert (tree / "own.yaml").read_bytes() == REWRITTEN
    assert run("rewrite", "-w", "tree/out.yaml", cwd=folder).returncode == 0  # named on the command line: followed
    assert outside.read_bytes() == REWRITTEN


def test_a_file_changed_after_it_was_read_is_not_replaced(folder: Path) -> None:
    # pod.yaml is read and staged first; the big file keeps kmirror busy until the test has
    # appended to pod.yaml (it waits for the temporary file: the sign that pod.yaml was read).
    (folder / "z-big.yaml").write_bytes(b"---\n".join([POD] * 100_000))
    writer = subprocess.Popen([KMIRROR, "rewrite", "-w", "pod.yaml", "z-big.yaml"], cwd=folder, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while not leftovers(folder) and time.monotonic() < deadline:
        time.sleep(0.005)
    assert leftovers(folder), "pod.yaml was never staged"
    with (folder / "pod.yaml").open("ab") as appended:
        appended.write(b"# added meanwhile\n")
    assert writer.wait(timeout=120) == 2
    assert writer.stderr.read().decode().splitlines() == [  # type: ignore[union-attr]
        "kmirror: error: cannot write: pod.yaml: changed by another program since kmirror read it; no file changed (run kmirror again)"
    ]
    assert (folder / "pod.yaml").read_bytes() == POD + b"# added meanwhile\n"
    assert (folder / "z-big.yaml").read_bytes() == b"---\n".join([POD] * 100_000)
    assert not leftovers(folder)
