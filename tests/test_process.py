"""kmirror as a process among others: closed pipes, Ctrl-C, termination.

- A reader that goes away (`kmirror ... | head -1`) ends kmirror quietly, exit 0.
- SIGINT (Ctrl-C) exits 130 with no traceback and nothing half-written on stdout.
- SIGINT or SIGTERM during `rewrite -w` changes no file while files are staged, leaves every file
  old or new once the renames started, and never leaves a temporary file.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

KMIRROR = str(Path(sys.executable).parent / "kmirror")
RULES = "mirrors:\n  - {from: docker.io, to: hub.example.com}\n  - {from: quay.io, to: quay.example.com}\n"
POD = b"apiVersion: v1\nkind: Pod\nspec:\n  containers:\n  - image: nginx:1.25\n  - image: quay.io/a/b:1\n"
REWRITTEN = POD.replace(b"nginx", b"hub.example.com/library/nginx").replace(b"quay.io/", b"quay.example.com/")


def environment() -> dict[str, str]:
    """The test's environment without a rules file or CI format chosen for kmirror."""
    return {k: v for k, v in os.environ.items() if k not in ("KMIRROR_CONFIG", "GITHUB_ACTIONS")}


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A folder with the rules file and a stream far larger than a pipe's buffer."""
    (tmp_path / ".kmirror.yaml").write_text(RULES)
    (tmp_path / "big.yaml").write_bytes(b"---\n".join([POD] * 5_000))
    return tmp_path


# A closed pipe

HEAD_COMMANDS = {
    "filter": "kmirror < big.yaml",
    "rewrite": "kmirror rewrite big.yaml",
    "diff": "kmirror rewrite --diff big.yaml",
    "check": "kmirror check -c blocked.yaml big.yaml",
    "check-json": "kmirror check -c blocked.yaml --format json big.yaml",
    "images": "kmirror images big.yaml",
    "images-csv": "kmirror images --format csv big.yaml",
}


@pytest.mark.parametrize("name", sorted(HEAD_COMMANDS))
def test_a_reader_that_goes_away_ends_kmirror_quietly(folder: Path, name: str) -> None:
    (folder / "blocked.yaml").write_text("blocked: [docker.io]\n")
    command = HEAD_COMMANDS[name].replace("kmirror", KMIRROR, 1)
    script = f"{command} | head -1 >/dev/null; echo ${{PIPESTATUS[0]}}"
    result = subprocess.run(["bash", "-c", script], capture_output=True, cwd=folder, env=environment(), timeout=120)
    assert result.stderr == b""
    assert result.stdout.strip() in (b"0", b"1")  # 1: `check` found references before its reader left


# Ctrl-C


def _blocked_reading_stdin(pid: int) -> bool:
    # /proc/PID/syscall: the number of the system call it sleeps in, then its arguments (read is 0 on x86-64, fd 0).
    try:
        return Path(f"/proc/{pid}/syscall").read_text().split()[:2] == ["0", "0x0"]
    except OSError:
        return False


def test_sigint_while_waiting_for_input_exits_130_without_a_trace(folder: Path) -> None:
    reader, writer = os.pipe()  # standard input that never closes
    process = subprocess.Popen([KMIRROR], stdin=reader, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=folder, env=environment())
    os.close(reader)
    try:
        deadline = time.monotonic() + 30
        while not _blocked_reading_stdin(process.pid):
            assert time.monotonic() < deadline, "kmirror never started reading standard input"
            time.sleep(0.01)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
    finally:
        os.close(writer)
    assert process.returncode == 130
    assert out == b""
    assert b"Traceback" not in err and b"KeyboardInterrupt" not in err


@pytest.mark.parametrize("delay", [0.0, 0.3])
@pytest.mark.parametrize("documents", [15_000, 60_000])  # below and above the size located on every core
def test_sigint_while_rewriting_exits_130_and_writes_nothing(folder: Path, documents: int, delay: float) -> None:
    (folder / "bigger.yaml").write_bytes(b"---\n".join([POD] * documents))  # more than a second's work
    with (folder / "bigger.yaml").open("rb") as stream:
        process = subprocess.Popen([KMIRROR], stdin=stream, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=folder, env=environment())
        # Interrupted once it has read its input (the offset it shares with `stream` is at the end),
        # not by the clock: a loaded machine may still be starting Python, a fast one be done.
        deadline = time.monotonic() + 30
        while os.lseek(stream.fileno(), 0, os.SEEK_CUR) < (folder / "bigger.yaml").stat().st_size:
            assert time.monotonic() < deadline and process.poll() is None, "kmirror never read its input"
            time.sleep(0.001)
        time.sleep(delay)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert out == b""  # all or nothing: no half stream for `kubectl apply`
    assert b"Traceback" not in err


# Interrupted in-place rewrites


def _interrupt_rewrite(folder: Path, sig: signal.Signals, when: str) -> tuple[int, list[bytes], list[Path]]:
    """Start `rewrite -w` on many files and send `sig` once a temporary file exists (`staging`) or the
    first file is replaced (`renaming`); return the exit code, the files' contents and the temporary files left."""
    work = folder / "work"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    padded = POD + b"# padding\n" * 20_000  # large files: fsync takes a while, the window is wide
    files = [work / f"p{i:03}.yaml" for i in range(150)]
    for file in files:
        file.write_bytes(padded)
    process = subprocess.Popen([KMIRROR, "rewrite", "-w", "-c", "../.kmirror.yaml", "."], cwd=work, stderr=subprocess.PIPE, env=environment())
    deadline = time.monotonic() + 60

    def started() -> bool:
        if when == "staging":
            return any(p.name.endswith(".kmirror") for p in work.iterdir())
        return files[0].read_bytes()[: len(REWRITTEN)] == REWRITTEN

    while not started():
        assert time.monotonic() < deadline and process.poll() is None, f"kmirror did not start {when}"
        time.sleep(0.001)
    if when == "staging":
        time.sleep(0.03)
    process.send_signal(sig)
    _, err = process.communicate(timeout=60)
    assert b"Traceback" not in err
    contents = [file.read_bytes() for file in files]
    assert set(contents) <= {padded, REWRITTEN + b"# padding\n" * 20_000}
    return process.returncode, contents, [p for p in work.iterdir() if p.name.endswith(".kmirror")]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_while_files_are_staged_changes_no_file_and_leaves_no_temporary_file(folder: Path, sig: signal.Signals) -> None:
    for _ in range(3):
        code, contents, leftovers = _interrupt_rewrite(folder, sig, "staging")
        assert code == (130 if sig == signal.SIGINT else -sig)
        assert all(c.startswith(POD) for c in contents)  # every file as it was
        assert leftovers == []


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_while_files_are_renamed_leaves_whole_files_and_no_temporary_file(folder: Path, sig: signal.Signals) -> None:
    for _ in range(3):
        code, contents, leftovers = _interrupt_rewrite(folder, sig, "renaming")
        # It lands after the last rename: as an interruption, or, once kmirror has finished, as the signal itself.
        assert code in (0, 130, -sig) if sig == signal.SIGINT else code in (0, -sig)
        assert leftovers == []


# No network unless asked: an audit hook sees every socket kmirror opens or resolves.

AUDITED = """
import sys
def refuse(event, args):
    if event.startswith("socket.") and event != "socket.__new__":
        sys.stderr.write(f"NETWORK {event} {args!r}\\n")
sys.addaudithook(refuse)
from rewriter.cli import main
sys.exit(main(sys.argv[1:]))
"""

OFFLINE = {
    "filter": ([], True),
    "rewrite": (["rewrite", "pod.yaml"], False),
    "rewrite-w": (["rewrite", "-w", "pod.yaml"], False),
    "check": (["check", "--format", "sarif", "pod.yaml"], False),
    "images": (["images", "--format", "json", "pod.yaml"], False),
    "explain": (["explain", "quay.io/a/b:1"], False),
    "presets": (["presets"], False),
    "runtime-config": (["runtime-config", "--format", "containerd-config"], False),
}


@pytest.mark.parametrize("name", sorted(OFFLINE))
def test_commands_that_need_no_network_open_no_socket(folder: Path, name: str) -> None:
    args, stdin = OFFLINE[name]
    (folder / "pod.yaml").write_bytes(POD)
    result = subprocess.run(
        [sys.executable, "-c", AUDITED, *args], input=POD if stdin else b"", capture_output=True, cwd=folder, env=environment(), timeout=60
    )
    assert result.returncode in (0, 1), result.stderr
    assert b"NETWORK" not in result.stderr


def test_the_audit_hook_sees_a_registry_request(folder: Path) -> None:
    # The positive control: `verify` asks the mirror (a closed port on this machine).
    (folder / "pod.yaml").write_bytes(POD)
    (folder / "local.yaml").write_text("mirrors: [{from: docker.io, to: '127.0.0.1:9/hub'}]\n")
    result = subprocess.run(
        [sys.executable, "-c", AUDITED, "verify", "-c", "local.yaml", "--plain-http", "pod.yaml"], capture_output=True, cwd=folder, env=environment(), timeout=60
    )
    assert b"NETWORK socket.connect" in result.stderr


# Standard streams that are closed or full, input without end (issue 22 item 5, issue 18 item 5)

STDOUT_COMMANDS = {
    "filter": "kmirror < pod.yaml",
    "version": "kmirror --version",
    "rewrite": "kmirror rewrite pod.yaml",
    "diff": "kmirror rewrite --diff pod.yaml",
    "check": "kmirror check -c blocked.yaml pod.yaml",
    "check-json": "kmirror check -c blocked.yaml --format json pod.yaml",
    "images": "kmirror images pod.yaml",
    "explain": "kmirror explain nginx",
}


def _shell(command: str, folder: Path) -> subprocess.CompletedProcess[bytes]:
    (folder / "pod.yaml").write_bytes(POD)
    (folder / "blocked.yaml").write_text("blocked: [docker.io]\n")
    return subprocess.run(["bash", "-c", command.replace("kmirror", KMIRROR, 1)], capture_output=True, cwd=folder, env=environment(), timeout=60)


def _one_error(result: subprocess.CompletedProcess[bytes], message: str) -> None:
    assert result.returncode == 2, result.stderr
    assert result.stderr.decode().splitlines() == [f"kmirror: error: {message}"]


@pytest.mark.parametrize("name", sorted(STDOUT_COMMANDS))
@pytest.mark.parametrize("redirect", [">/dev/full", ">&-"], ids=["full-disk", "closed"])
def test_stdout_that_takes_nothing_is_exit_2(folder: Path, name: str, redirect: str) -> None:
    result = _shell(f"{STDOUT_COMMANDS[name]} {redirect}", folder)
    expected = "cannot write: standard output: No space left on device" if redirect == ">/dev/full" else "cannot write: standard output is closed"
    _one_error(result, expected)


@pytest.mark.parametrize("command", ["kmirror", "kmirror check -", "kmirror rewrite -"])
def test_closed_stdin_is_exit_2(folder: Path, command: str) -> None:
    _one_error(_shell(f"{command} <&-", folder), "cannot read: -: standard input is closed")


def test_input_beyond_the_size_limit_is_refused_in_bounded_memory(folder: Path) -> None:
    # `yes` never ends: standard input, and a FIFO named on the command line, stop at the limit.
    limited = "KMIRROR_MAX_INPUT_MB=2 /usr/bin/time -q -f 'peak %M' kmirror"
    for command, name in ((f"yes 'a: b' | {limited}", "-"), (f"{limited} check <(yes 'a: b')", "/dev/fd/63")):
        result = _shell(command, folder)
        assert result.returncode == 2, result.stderr
        message, peak = result.stderr.decode().splitlines()[-2:]
        assert message == f"kmirror: error: cannot read: {name}: larger than 2 MB (set KMIRROR_MAX_INPUT_MB to raise the limit)"
        assert int(peak.split()[1]) < 100_000  # kB: the interpreter and two megabytes
    (folder / "big.yaml").write_bytes(b"# " + b"-" * 2_500_000 + b"\n")  # 2.5 MB that hold few nodes
    _one_error(_shell("KMIRROR_MAX_INPUT_MB=2 kmirror check big.yaml", folder), "cannot read: big.yaml: larger than 2 MB (set KMIRROR_MAX_INPUT_MB to raise the limit)")
    assert _shell("KMIRROR_MAX_INPUT_MB=3 kmirror check big.yaml", folder).returncode == 0
    _one_error(_shell("KMIRROR_MAX_INPUT_MB=0 kmirror check big.yaml", folder), "invalid environment: KMIRROR_MAX_INPUT_MB='0': expected a positive whole number of megabytes")


@pytest.mark.parametrize(
    ("command", "what"),
    [
        ("kmirror -c zero.yaml < pod.yaml", "config"),
        ("kmirror check -c zero.yaml pod.yaml", "config"),
        ("kmirror check --allowlist zero.yaml pod.yaml", "allow-list"),
        ("kmirror verify --lock zero.yaml", "lock"),
    ],
)
def test_the_other_files_kmirror_reads_are_bounded_too(folder: Path, command: str, what: str) -> None:
    # Rules files, allow-lists and lock files are read as the input is: a device is refused unread,
    # and one that never ends stops at the input limit (it took all memory, then exit 3).
    (folder / "zero.yaml").symlink_to("/dev/zero")
    _one_error(_shell(command, folder), f"cannot read {what}: zero.yaml: not a regular file (a device or socket)")
    endless = "KMIRROR_MAX_INPUT_MB=2 /usr/bin/time -q -f 'peak %M' " + command.replace("zero.yaml", "<(yes '# a comment')")
    result = _shell(endless, folder)
    assert result.returncode == 2, result.stderr
    message, peak = result.stderr.decode().splitlines()[-2:]
    assert message == f"kmirror: error: cannot read {what}: /dev/fd/63: larger than 2 MB (set KMIRROR_MAX_INPUT_MB to raise the limit)"
    assert int(peak.split()[1]) < 100_000  # kB


def test_devices_are_refused_unread(folder: Path) -> None:
    (folder / "zero.yaml").symlink_to("/dev/zero")
    _one_error(_shell("kmirror check zero.yaml", folder), "cannot read: zero.yaml: not a regular file (a device or socket)")
    _one_error(_shell("kmirror rewrite -w zero.yaml", folder), "cannot read: zero.yaml: not a regular file (a device or socket)")
    _one_error(_shell("kmirror < /dev/zero", folder), "-: cannot read: binary data (NUL byte at offset 0)")  # stopped at the first chunk


def test_a_worker_that_dies_is_a_clear_internal_error_and_changes_no_file(folder: Path) -> None:
    for i in range(200):
        (folder / f"pod-{i:03}.yaml").write_bytes(b"---\n".join([POD] * 40))
    writer = subprocess.Popen([KMIRROR, "rewrite", "-w", "."], cwd=folder, env=environment(), stderr=subprocess.PIPE)
    children = Path(f"/proc/{writer.pid}/task/{writer.pid}/children")
    deadline = time.monotonic() + 60
    workers: list[str] = []
    while not workers and time.monotonic() < deadline and writer.poll() is None:
        workers = children.read_text().split()
    assert workers, "kmirror started no worker process"
    os.kill(int(workers[0]), signal.SIGKILL)
    assert writer.wait(timeout=120) == 3
    stderr = writer.stderr.read().decode()  # type: ignore[union-attr]
    assert stderr.splitlines() == [
        "kmirror: internal error: WorkerDied: a worker process reading the files ended abruptly (killed, or out of memory); no file changed (run with --debug for a traceback)"
    ]
    assert {p.read_bytes() for p in folder.glob("pod-*.yaml")} == {b"---\n".join([POD] * 40)}
    assert not [p for p in folder.iterdir() if p.name.endswith(".kmirror")]
