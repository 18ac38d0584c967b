#!/usr/bin/env python3
"""kmirror's benchmark (issue 11): large streams and small inputs, in one run.

Usage: `.venv/bin/python bench/run.py` (takes about ten to twenty minutes on 2 cores).

Builds 5, 10 and 20 MB streams from fixtures/corpus in `bench/work/` (git-ignored),
times kmirror's pipe rewrite against `kubectl kustomize` with the equivalent `images:`
list, a ruamel.yaml round trip and a bare libyaml composition of the same stream; then
small-input latency and `kmirror rewrite -w` over 2,000 files. Every program runs as a
subprocess: wall time from the clock, CPU time from `wait4`, peak RSS from GNU time. Writes
`bench/RESULTS.md` (machine, goals with PASS/MISS, every measurement) and asserts nothing
about time: a missed goal is reported, not raised. It stops (exit 1) only when a program
fails or a check of the inputs fails (kmirror runs that differ, libyaml composing fewer
documents than the stream holds). See bench/README.md.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

from ruamel.yaml import YAML
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "corpus"
WORK = BENCH / "work"
RESULTS = BENCH / "RESULTS.md"
KUBECTL = ROOT / ".tools" / "bin" / "kubectl"
TIME = "/usr/bin/time"  # GNU time (Debian package `time`), for peak RSS
PYTHON = sys.executable

MB = 1_000_000  # sizes are in MB of 10**6 bytes
SIZES = (5, 10, 20)
SMALL_RUNS = 40
WRITE_RUNS = 3
WRITE_FILES = 2000
SMALL_FILE = 8_000  # corpus documents up to this many characters make the -w files
MARKER_RE = re.compile(r"^---(?=[ \t\r\n]|$)", re.MULTILINE)

# The baselines, as small programs reading the stream on standard input.
COMPOSE = (
    "import sys\n"
    "from ruamel.yaml import YAML\n"
    "print(len(list(YAML(typ='safe', pure=False).compose_all(sys.stdin.buffer.read().decode('utf-8')))))\n"
)
ROUND_TRIP = (
    "import sys\n"
    "from ruamel.yaml import YAML\n"
    "yaml = YAML()\n"
    "yaml.allow_duplicate_keys = True\n"
    "yaml.dump_all(list(yaml.load_all(sys.stdin)), sys.stdout)\n"
)

# Goals of issue 11 (the 20 MB stream unless said otherwise).
KUSTOMIZE_RATIO = 30.0
ROUND_TRIP_RATIO = 100.0
COMPOSE_RATIO = 0.5
LINEAR_SLACK = 1.25  # the cost of an extra MB from 10 to 20 MB at most 1.25x that from 5 to 10 MB
RSS_FACTOR = 4.0
VERSION_MS = 100.0
ONE_DOCUMENT_MS = 150.0
CORE_SHARE = 0.75  # "uses every core": CPU time / wall time at least 0.75 x the cores


class BenchError(Exception):
    """A correctness check failed or a tool misbehaved: the numbers would mean nothing."""


def log(message: str) -> None:
    """Progress on standard error, with the time of day."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------
# The corpus and the streams built from it


@dataclass(frozen=True)
class Piece:
    """One corpus document: its text from its `---` line to the next, and where its name ends."""

    file: str
    index: int
    kind: str
    text: str
    name_end: int
    references: int  # ground-truth entries for this document
    ambiguous: int  # of which flagged `ambiguous`

    def named(self, suffix: str) -> str:
        """The document with `suffix` appended to its metadata.name (nothing else changes)."""
        return self.text[: self.name_end] + suffix + self.text[self.name_end :]


@dataclass(frozen=True)
class Corpus:
    """The documents streams are built from, the ones left out (with why), the registries."""

    pieces: tuple[Piece, ...]
    dropped: tuple[str, ...]
    registries: tuple[str, ...]


def load_corpus() -> Corpus:
    """Split every corpus file into documents; keep those kustomize accepts (a kind and a name)."""
    pieces: list[Piece] = []
    dropped: list[str] = []
    registries: set[str] = set()
    files = sorted(CORPUS.glob("*.yaml"))
    if not files:
        raise BenchError(f"no corpus at {CORPUS}")
    for path in files:
        text = path.read_text(encoding="utf-8")
        truth = json.loads(path.with_suffix(".expected.json").read_text(encoding="utf-8"))
        registries.update(entry["registry"] for entry in truth)
        counts = Counter(entry["doc"] for entry in truth)
        ambiguous = Counter(entry["doc"] for entry in truth if "ambiguous" in entry)
        index = 0
        for chunk in _chunks(text):
            roots = list(YAML(typ="safe", pure=False).compose_all(chunk))
            if len(roots) > 1:
                raise BenchError(f"{path.name}: a piece between two `---` lines holds {len(roots)} documents")
            for root in roots:
                piece = _piece(path.name, index, chunk, root, counts[index], ambiguous[index])
                if isinstance(piece, Piece):
                    pieces.append(piece)
                else:
                    dropped.append(f"{path.name} document {index}: {piece}")
                index += 1
        whole = len(list(YAML(typ="safe", pure=False).compose_all(text)))
        if index != whole:
            raise BenchError(f"{path.name}: {index} documents by pieces, {whole} composed whole")
    return Corpus(tuple(pieces), tuple(dropped), tuple(sorted(registries)))


def _chunks(text: str) -> Iterator[str]:
    """The text between document-start lines (`---` can start a line inside no scalar)."""
    bounds = [m.start() for m in MARKER_RE.finditer(text)]
    if not bounds or bounds[0] != 0:
        bounds.insert(0, 0)
    bounds.append(len(text))
    for start, end in zip(bounds, bounds[1:]):
        yield text[start:end]


def _piece(file: str, index: int, chunk: str, root: Node | None, references: int, ambiguous: int) -> Piece | str:
    """The document as a Piece, or why kustomize would not take it."""
    if not isinstance(root, MappingNode):
        return "empty document"
    top = {k.value: v for k, v in root.value if isinstance(k, ScalarNode)}
    kind, meta = top.get("kind"), top.get("metadata")
    if not isinstance(kind, ScalarNode):
        return "no kind"
    fields = {k.value: v for k, v in meta.value if isinstance(k, ScalarNode)} if isinstance(meta, MappingNode) else {}
    name = fields.get("name")
    if not isinstance(name, ScalarNode):
        return f"{kind.value} without metadata.name" + (" (it has generateName)" if "generateName" in fields else "")
    start, end = name.start_mark.index, name.end_mark.index
    quoted = name.style in ("'", '"')
    written = chunk[start + 1 : end - 1] if quoted else chunk[start:end]
    if written != name.value:
        return f"{kind.value} whose metadata.name is not written on one line as is"
    end -= 1 if quoted else 0
    head = "" if chunk.startswith("---") else "---\n"
    tail = "" if chunk.endswith("\n") else "\n"
    return Piece(file, index, str(kind.value), head + chunk + tail, len(head) + end, references, ambiguous)


@dataclass(frozen=True)
class Stream:
    """A stream of corpus copies, written to `folder/stream.yaml` (kustomize's resource too)."""

    mb: int
    folder: Path
    size: int
    documents: int
    copies: float
    references: int  # ground-truth entries of its documents
    ambiguous: int

    @property
    def path(self) -> Path:
        """The stream file."""
        return self.folder / "stream.yaml"


def build_stream(corpus: Corpus, mb: int) -> Stream:
    """Whole corpus copies while they fit in `mb` MB, then the documents of one more copy that still fit.

    Document j of copy i gets `-c{i}-{j}` appended to its metadata.name, so every resource
    of the stream has a name of its own.
    """
    parts: list[str] = []
    size = references = ambiguous = 0
    copy = 0
    while True:
        texts = [(piece, piece.named(f"-c{copy}-{j}")) for j, piece in enumerate(corpus.pieces)]
        whole = sum(len(text.encode("utf-8")) for _, text in texts)
        last = size + whole > mb * MB
        for piece, text in texts:
            length = len(text.encode("utf-8"))
            if last and size + length > mb * MB:
                continue
            parts.append(text)
            size += length
            references += piece.references
            ambiguous += piece.ambiguous
        if last:
            break
        copy += 1
    folder = WORK / f"stream-{mb}mb"
    _fresh(folder)
    stream = Stream(mb, folder, size, len(parts), len(parts) / len(corpus.pieces), references, ambiguous)
    stream.path.write_bytes("".join(parts).encode("utf-8"))
    return stream


def _fresh(folder: Path) -> None:
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)


def rules_text(registries: Sequence[str]) -> str:
    """A rules file with one rule per registry: `registry:5000` -> `registry-5000.mirror.example`."""
    lines = ["mirrors:\n"]
    for registry in registries:
        lines.append(f"  - from: {registry}\n    to: {re.sub(r'[^a-z0-9]+', '-', registry)}.mirror.example\n")
    return "".join(lines)


def image_name(ref: str) -> str:
    """The name part of a reference as written (no tag, no digest), as kustomize matches it."""
    ref = ref.split("@", 1)[0]
    colon = ref.rfind(":")
    return ref[:colon] if colon > ref.rfind("/") else ref


def kustomization(rows: Sequence[dict[str, object]]) -> str:
    """A kustomization of `stream.yaml` whose `images:` maps every name kmirror found to its mirror."""
    names: dict[str, str] = {}
    for row in rows:
        if row["mirrored"] is None:
            continue
        name, new = image_name(str(row["ref"])), image_name(str(row["mirrored"]))
        if names.setdefault(name, new) != new:
            raise BenchError(f"image {name} goes to both {names[name]} and {new}")
    images = [{"name": name, "newName": names[name]} for name in sorted(names)]
    return json.dumps({"resources": ["stream.yaml"], "images": images}, indent=2) + "\n"


# ---------------------------------------------------------------------------------------
# Running programs


@dataclass(frozen=True)
class Run:
    """One program run: wall and CPU seconds, peak RSS in bytes, a digest of its output."""

    wall: float
    cpu: float
    rss: int
    digest: str


def measure(argv: Sequence[str], stdin: Path | None, out: Path) -> Run:
    """Run `argv` with stdin from a file and stdout to `out`; BenchError unless it exits 0.

    The program runs under GNU time, whose only job is its peak RSS: a child's own
    `ru_maxrss` would start at this Python's size, which the child inherits until exec.
    CPU time comes from `wait4` on time, which counts every process it waited for.
    """
    err, peak = out.with_name(out.name + ".stderr"), out.with_name(out.name + ".rss")
    with open(stdin or os.devnull, "rb") as given, open(out, "wb") as written, open(err, "wb") as errors:
        start = time.perf_counter()
        process = subprocess.Popen([TIME, "-q", "-f", "%M", "-o", str(peak), *argv], stdin=given, stdout=written, stderr=errors)
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        message = err.read_text(errors="replace").strip()[-2000:]
        raise BenchError(f"{' '.join(map(str, argv))} exited {process.returncode}:\n{message}")
    digest = hashlib.sha256(out.read_bytes()).hexdigest()
    return Run(wall, usage.ru_utime + usage.ru_stime, int(peak.read_text().split()[-1]) * 1024, digest)


@dataclass(frozen=True)
class Series:
    """Several runs of one program on one input."""

    runs: tuple[Run, ...]

    @property
    def wall(self) -> float:
        """Median wall time, seconds."""
        return statistics.median(r.wall for r in self.runs)

    @property
    def cpu(self) -> float:
        """Median CPU time (user + system, children included), seconds."""
        return statistics.median(r.cpu for r in self.runs)

    @property
    def rss(self) -> int:
        """Peak RSS over the runs, bytes."""
        return max(r.rss for r in self.runs)

    @property
    def identical(self) -> bool:
        """True when every run wrote the same output."""
        return len({r.digest for r in self.runs}) == 1


def series(count: int, argv: Sequence[str], stdin: Path | None, out: Path) -> Series:
    """`count` runs of `argv`."""
    return Series(tuple(measure(argv, stdin, out) for _ in range(count)))


def kmirror_executable() -> str:
    """The installed console script: .venv/bin/kmirror, else kmirror on PATH."""
    local = ROOT / ".venv" / "bin" / "kmirror"
    found = str(local) if local.is_file() else shutil.which("kmirror")
    if found is None:
        raise BenchError("kmirror is not installed: run ./scripts/test once (it creates .venv), or pip install -e .")
    return found


def compile_kmirror() -> None:
    """Byte-compile kmirror's modules, as `pip install` does for an installed package.

    The editable install in .venv runs the sources; where PYTHONDONTWRITEBYTECODE is set,
    Python would compile every module again at every start, which no installed kmirror does.
    """
    subprocess.run([PYTHON, "-m", "compileall", "-q", str(ROOT / "rewriter")], check=True)


def kubectl() -> str:
    """.tools/bin/kubectl, installed by ./scripts/install-tools when missing."""
    if not KUBECTL.is_file():
        log("kubectl missing: running ./scripts/install-tools")
        subprocess.run([str(ROOT / "scripts" / "install-tools")], check=True)
    return str(KUBECTL)


# ---------------------------------------------------------------------------------------
# The measurements


@dataclass(frozen=True)
class Large:
    """Everything measured on one stream."""

    stream: Stream
    tools: dict[str, Series]
    found: int  # references kmirror reports
    located: int  # references the full locate finds
    same_as_locate: bool
    difference: str  # a few (line, column, reference) found by only one side, when they differ
    images: int  # entries of the kustomize images: list
    kmirror_mirrored: int  # lines of kmirror's output naming a mirror
    kustomize_mirrored: int  # lines of kustomize's output naming a mirror
    pss: int  # peak of kmirror's processes' summed PSS, bytes (an untimed run)


def run_counts(mb: int) -> dict[str, int]:
    """Runs per program for a stream of `mb` MB (kustomize and the round trip take minutes)."""
    return {"kmirror": 11, "libyaml compose": 3, "kubectl kustomize": 3 if mb < 20 else 1, "ruamel.yaml round trip": 1}


def measure_kmirror(streams: Sequence[Stream], kmirror: str, rules: Path) -> list[Series]:
    """kmirror's runs on every stream, taken in turns (5, 10, 20, 5, 10, 20 MB, ...).

    The linearity goal compares the medians of different streams: taken in turns, they are
    measured under the same conditions of a machine shared with other work.
    """
    count = run_counts(SIZES[0])["kmirror"]
    log(f"kmirror x{count} on every stream, in turns")
    runs: list[list[Run]] = [[] for _ in streams]
    for _ in range(count):
        for stream, done in zip(streams, runs):
            done.append(measure([kmirror, "-c", str(rules)], stream.path, _out(stream, "kmirror")))
    for stream, done in zip(streams, runs):
        log(f"{stream.mb} MB: kmirror: median {statistics.median(r.wall for r in done):.2f} s")
    return [Series(tuple(done)) for done in runs]


def _out(stream: Stream, tool: str) -> Path:
    return WORK / f"out-{stream.mb}mb-{tool.split()[0].replace('.', '-')}.yaml"


def measure_stream(stream: Stream, kmirror: str, own: Series, rules: Path, kube: str) -> Large:
    """libyaml, kustomize and the round trip on `stream` (kmirror's runs are `own`), with the correctness checks."""
    rows = json.loads(subprocess.run([kmirror, "images", "--format", "json", "-c", str(rules), str(stream.path)], check=True, capture_output=True).stdout)
    listed = kustomization(rows)
    (stream.folder / "kustomization.yaml").write_text(listed, encoding="utf-8")
    images = len(json.loads(listed)["images"])
    log(f"{stream.mb} MB: kmirror reports {len(rows)} references; checking against the full locate")
    located = full_locate(stream.path)
    reported = Counter((int(r["line"]), int(r["column"]), str(r["ref"])) for r in rows)
    counts = run_counts(stream.mb)
    commands: dict[str, list[str]] = {
        "libyaml compose": [PYTHON, "-c", COMPOSE],
        "kubectl kustomize": [kube, "kustomize", str(stream.folder)],
        "ruamel.yaml round trip": [PYTHON, "-c", ROUND_TRIP],
    }
    tools: dict[str, Series] = {"kmirror": own}
    outs = {tool: _out(stream, tool) for tool in ["kmirror", *commands]}
    for tool, argv in commands.items():
        log(f"{stream.mb} MB: {tool} x{counts[tool]}")
        stdin = None if tool == "kubectl kustomize" else stream.path
        tools[tool] = series(counts[tool], argv, stdin, outs[tool])
        log(f"{stream.mb} MB: {tool}: median {tools[tool].wall:.2f} s")
    if not tools["kmirror"].identical:
        raise BenchError(f"{stream.mb} MB: kmirror's output differs between runs")
    composed = int(outs["libyaml compose"].read_text())
    if composed != stream.documents:
        raise BenchError(f"{stream.mb} MB: libyaml composed {composed} documents, the stream has {stream.documents}")
    kmirror_lines, kustomize_lines = _mirror_lines(outs["kmirror"]), _mirror_lines(outs["kubectl kustomize"])
    only = [f"kmirror only {k}" for k in (reported - located)][:3] + [f"locate only {k}" for k in (located - reported)][:3]
    log(f"{stream.mb} MB: kmirror's memory, all its processes (untimed run)")
    pss = combined_pss([kmirror, "-c", str(rules)], stream.path, outs["kmirror"])
    return Large(stream, tools, len(rows), sum(located.values()), reported == located, "; ".join(only), images, kmirror_lines, kustomize_lines, pss)


def combined_pss(argv: Sequence[str], stdin: Path, out: Path) -> int:
    """The peak, sampled every 2 ms, of the summed PSS of a run's process and its children, in bytes.

    GNU time's peak RSS is the largest single process's, and counts the pages a forked
    child shares with its parent in both; PSS (proportional set size) splits each shared
    page among the processes sharing it, so the sum is what they hold together.
    """
    with open(stdin, "rb") as given, open(out, "wb") as written:
        process = subprocess.Popen(argv, stdin=given, stdout=written, stderr=subprocess.DEVNULL)
        peak = 0
        while process.poll() is None:
            peak = max(peak, sum(_pss(pid) for pid in _process_tree(process.pid)))
            time.sleep(0.002)
    if process.returncode != 0:
        raise BenchError(f"{' '.join(argv)} exited {process.returncode}")
    return peak


def _process_tree(pid: int) -> list[int]:
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:  # it has ended
        return []
    return [pid, *(p for child in children for p in _process_tree(int(child)))]


def _pss(pid: int) -> int:
    try:
        rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return 0
    return next((int(line.split()[1]) * 1024 for line in rollup.splitlines() if line.startswith("Pss:")), 0)


def full_locate(path: Path) -> Counter[tuple[int, int, str]]:
    """(line, column, reference) of everything rewriter.locate finds, every document composed.

    `documents(source)` without a `wanted` test is the switch that turns the textual
    prefilter off: every piece of the stream is composed and walked.
    """
    from rewriter.locate import locate
    from rewriter.stream import decode, documents

    source = decode(path.read_bytes(), str(path))
    return Counter((*source.position(loc.start), loc.text) for loc in locate(documents(source), ()))


def _mirror_lines(path: Path) -> int:
    return sum(1 for line in path.read_text(encoding="utf-8").splitlines() if ".mirror.example" in line)


@dataclass(frozen=True)
class Small:
    """Small-input latency: label, command shown, series."""

    label: str
    shown: str
    series: Series


def measure_small(corpus: Corpus, kmirror: str, rules: Path, kube: str) -> tuple[list[Small], Piece]:
    """--version, a one-document rewrite, `check` of it (a subcommand's start-up), kustomize on it, the interpreter's floor."""
    piece = next(p for p in corpus.pieces if p.file == "ingress-nginx-deploy-cloud.yaml" and p.kind == "Deployment")
    folder = WORK / "one-document"
    _fresh(folder)
    (folder / "stream.yaml").write_text(piece.named(""), encoding="utf-8")
    rows = json.loads(subprocess.run([kmirror, "images", "--format", "json", "-c", str(rules), str(folder / "stream.yaml")], check=True, capture_output=True).stdout)
    (folder / "kustomization.yaml").write_text(kustomization(rows), encoding="utf-8")
    # `check` exits 1 on blocked references: it gets the rewritten document, as a CI gate after a rewrite does.
    mirrored = subprocess.run([kmirror, "-c", str(rules)], input=(folder / "stream.yaml").read_bytes(), check=True, capture_output=True).stdout
    (folder / "mirrored.yaml").write_bytes(mirrored)
    cases = [
        ("python -c pass (interpreter floor)", "python -c pass", [PYTHON, "-c", "pass"], None),
        ("kmirror --version", "kmirror --version", [kmirror, "--version"], None),
        ("kmirror one-document rewrite", "kmirror -c rules.yaml < stream.yaml", [kmirror, "-c", str(rules)], folder / "stream.yaml"),
        ("kmirror check, one document (subcommand start-up)", "kmirror check -c rules.yaml mirrored.yaml",
         [kmirror, "check", "-c", str(rules), str(folder / "mirrored.yaml")], None),
        ("kubectl kustomize, same document", "kubectl kustomize one-document/", [kube, "kustomize", str(folder)], None),
    ]
    log(f"small: {len(cases)} programs x{SMALL_RUNS}, in turns (the same conditions for each)")
    runs: list[list[Run]] = [[] for _ in cases]
    for _ in range(SMALL_RUNS):
        for (_, _, argv, stdin), done in zip(cases, runs):
            done.append(measure(argv, stdin, WORK / "out-small.txt"))
    return [Small(label, shown, Series(tuple(done))) for (label, shown, _, _), done in zip(cases, runs)], piece


@dataclass(frozen=True)
class Written:
    """`kmirror rewrite -w` over many small files."""

    files: int
    size: int
    series: Series
    summary: str


def measure_write(corpus: Corpus, kmirror: str, rules: Path) -> Written:
    """`kmirror rewrite -w` over WRITE_FILES small documents that hold references (files rebuilt before each run)."""
    small = [p for p in corpus.pieces if p.references and len(p.text) <= SMALL_FILE]
    folder = WORK / "files"
    texts = [small[i % len(small)].named(f"-f{i}") for i in range(WRITE_FILES)]

    log(f"rewrite -w over {WRITE_FILES} files x{WRITE_RUNS}")
    out = WORK / "out-write.txt"
    runs = []
    for _ in range(WRITE_RUNS):
        _fresh(folder)
        for i, text in enumerate(texts):
            (folder / f"f{i:04d}.yaml").write_text(text, encoding="utf-8")
        run = measure([kmirror, "rewrite", "-w", "-c", str(rules), str(folder)], None, out)
        tree = hashlib.sha256(b"".join(path.read_bytes() for path in sorted(folder.iterdir()))).hexdigest()
        runs.append(replace(run, digest=tree))
    result = Series(tuple(runs))
    if not result.identical:
        raise BenchError("kmirror rewrite -w left different files in different runs")
    summary = out.with_name(out.name + ".stderr").read_text().strip().splitlines()[-1:]
    return Written(WRITE_FILES, sum(len(t.encode("utf-8")) for t in texts), result, " ".join(summary))


# ---------------------------------------------------------------------------------------
# Machine details and the report


def machine() -> list[tuple[str, str]]:
    """What the numbers were measured on."""
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")), platform.processor())
    memory = next(line.split(":", 1)[1].strip() for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal"))
    kube = subprocess.run([str(KUBECTL), "version", "--client"], capture_output=True, text=True).stdout.strip().replace("\n", ", ")
    kmirror = subprocess.run([kmirror_executable(), "--version"], capture_output=True, text=True).stdout.strip()
    head = _git("rev-parse", "--short", "HEAD")
    dirty = _git("status", "--porcelain", "--", "rewriter").splitlines()
    return [
        ("CPU", f"{cpu}, {os.cpu_count()} logical cores ({len(os.sched_getaffinity(0))} usable)"),
        ("memory", memory),
        ("system", platform.platform()),
        ("Python", f"{platform.python_version()} ({PYTHON})"),
        ("ruamel.yaml", f"{metadata.version('ruamel.yaml')}, ruamel.yaml.clib {metadata.version('ruamel.yaml.clib')}"),
        ("kmirror", f"{kmirror}, commit {head}" + (f" plus uncommitted changes to {len(dirty)} file(s) under rewriter/" if dirty else "")),
        ("kubectl", kube),
    ]


def _git(*args: str) -> str:
    return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True).stdout.strip()


def _load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


@dataclass(frozen=True)
class Goal:
    """One goal of issue 11: what was measured against what was wanted."""

    goal: str
    measured: str
    target: str
    met: bool


def goals(large: list[Large], small: list[Small], written: Written) -> list[Goal]:
    """Every goal of issue 11, as measured in this run."""
    big = large[-1]
    km = big.tools["kmirror"]
    kustomize = big.tools["kubectl kustomize"].wall / km.wall
    round_trip = big.tools["ruamel.yaml round trip"].wall / km.wall
    compose = km.wall / big.tools["libyaml compose"].wall
    low, high = _marginal(large, lambda s: s.wall)
    growth = high / low if low > 0 else float("inf")
    low_cpu, high_cpu = _marginal(large, lambda s: s.cpu)
    memory = max(km.rss, big.pss)
    rss = memory / big.stream.size
    version = next(s for s in small if s.label == "kmirror --version").series.wall * 1000
    one = next(s for s in small if s.label == "kmirror one-document rewrite").series.wall * 1000
    cores = len(os.sched_getaffinity(0))
    share = written.series.cpu / written.series.wall
    mb = f"{big.stream.size / MB:.1f} MB"
    return [
        Goal(f"{mb}: kubectl kustomize time / kmirror time", f"{kustomize:.1f}x", f">= {KUSTOMIZE_RATIO:.0f}x", kustomize >= KUSTOMIZE_RATIO),
        Goal(f"{mb}: ruamel.yaml round trip time / kmirror time", f"{round_trip:.1f}x", f">= {ROUND_TRIP_RATIO:.0f}x", round_trip >= ROUND_TRIP_RATIO),
        Goal(f"{mb}: kmirror time / libyaml compose_all time", f"{compose:.2f}", f"<= {COMPOSE_RATIO}", compose <= COMPOSE_RATIO),
        Goal(
            "kmirror finds exactly what the full locate finds (every size)",
            ", ".join(f"{x.found} = {x.located}" if x.same_as_locate else f"{x.found} vs {x.located} (differ)" for x in large),
            "identical (line, column, reference)",
            all(x.same_as_locate for x in large),
        ),
        Goal(
            "time grows linearly with input size",
            f"{low * 1000:.0f} ms per extra MB from 5 to 10 MB, {high * 1000:.0f} ms from 10 to 20 MB (x{growth:.2f}); "
            f"by CPU time {low_cpu * 1000:.0f} ms, {high_cpu * 1000:.0f} ms (x{high_cpu / low_cpu:.2f})",
            f"x <= {LINEAR_SLACK}",
            growth <= LINEAR_SLACK,
        ),
        Goal(
            f"{mb}: kmirror peak memory / input size (the larger of its largest process's peak RSS and its processes' summed PSS)",
            f"{km.rss / MB:.0f} MB RSS, {big.pss / MB:.0f} MB PSS: {rss:.2f}x",
            f"< {RSS_FACTOR:.0f}x",
            rss < RSS_FACTOR,
        ),
        Goal("kmirror --version, median wall", f"{version:.0f} ms", f"< {VERSION_MS:.0f} ms", version < VERSION_MS),
        Goal("one-document rewrite, median wall", f"{one:.0f} ms", f"< {ONE_DOCUMENT_MS:.0f} ms", one < ONE_DOCUMENT_MS),
        Goal(
            f"rewrite -w over {written.files} files uses every core: CPU time / wall time",
            f"{share:.2f} on {cores} cores",
            f">= {CORE_SHARE * cores:.2f} ({CORE_SHARE:.0%} of {cores})",
            share >= CORE_SHARE * cores,
        ),
    ]


def _marginal(large: list[Large], value: Callable[[Series], float]) -> tuple[float, float]:
    """kmirror's seconds per extra MB from the first to the second stream, and from the second to the third."""
    first, middle, big = (x.tools["kmirror"] for x in large)
    sizes = [x.stream.size for x in large]
    low = (value(middle) - value(first)) / (sizes[1] - sizes[0]) * MB
    high = (value(big) - value(middle)) / (sizes[2] - sizes[1]) * MB
    return low, high


def report(corpus: Corpus, rules: str, large: list[Large], small: list[Small], one: Piece, written: Written, details: list[tuple[str, str]], loads: list[str], started: float) -> str:
    """bench/RESULTS.md."""
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    minutes = (time.time() - started) / 60
    out = [
        "# Benchmark results\n\n",
        f"Written by `bench/run.py` on {when} in {minutes:.0f} minutes, one run of everything below; "
        "how and why: [README.md](README.md). Re-run the script to refresh this file; do not edit it by hand.\n\n",
        "## Machine\n\n| | |\n|---|---|\n",
        *(f"| {k} | {v} |\n" for k, v in details),
        f"| load average (1, 5, 15 min) | {' → '.join(loads)} (start → after the streams → end) |\n\n",
        "The machine is shared: other programs may have run at the same time (see the load average), which "
        "inflates wall times but not CPU times; CPU times are listed next to every wall time.\n\n",
        "## Goals\n\n| goal | measured | goal | result |\n|---|---|---|---|\n",
        *(f"| {g.goal} | {g.measured} | {g.target} | {'PASS' if g.met else 'MISS'} |\n" for g in goals(large, small, written)),
        "\n## Large streams\n\n",
        "| stream | bytes | documents | corpus copies | references kmirror reports | full locate | ground-truth entries (ambiguous) | `images:` entries |\n",
        "|---|---|---|---|---|---|---|---|\n",
        *(
            f"| {x.stream.size / MB:.1f} MB | {x.stream.size:,} | {x.stream.documents:,} | {x.stream.copies:.2f} | {x.found:,} | {x.located:,} | "
            f"{x.stream.references:,} ({x.stream.ambiguous}) | {x.images} |\n"
            for x in large
        ),
        "\nMedian wall time over the runs, throughput from it, median CPU time (user + system), peak RSS over the runs:\n\n",
        "| stream | program | runs | wall s | MB/s | CPU s | peak RSS MB | RSS / input |\n|---|---|---|---|---|---|---|---|\n",
    ]
    for x in large:
        for tool, s in x.tools.items():
            out.append(
                f"| {x.stream.size / MB:.1f} MB | {tool} | {len(s.runs)} | {s.wall:.2f} | {x.stream.size / MB / s.wall:.2f} | {s.cpu:.2f} | "
                f"{s.rss / MB:.0f} | {s.rss / x.stream.size:.2f} |\n"
            )
    out += [
        "\n| stream | kubectl kustomize / kmirror | round trip / kmirror | kmirror / libyaml compose | same ratios by CPU time |\n|---|---|---|---|---|\n",
        *(_ratios(x) for x in large),
        "\nChecks (the script stops when one of the first two fails): every kmirror run of a stream wrote the same bytes; "
        "libyaml composed as many documents as the stream has. Full locate: kmirror's `images --format json` is compared "
        "with the (line, column, reference) triples that `rewriter.locate.locate` finds, called in-process, over every "
        "composed document of the stream (`rewriter.stream.documents(source)` without its `wanted` prefilter): "
        + "; ".join(f"{x.stream.size / MB:.1f} MB " + ("identical" if x.same_as_locate else f"DIFFERENT ({x.difference})") for x in large)
        + ".\n\n",
        "Lines naming a mirror in the output (kustomize only rewrites `containers[]`/`initContainers[]` `image` "
        "fields, kmirror every reference it finds): "
        + "; ".join(f"{x.stream.size / MB:.1f} MB: kmirror {x.kmirror_mirrored:,}, kustomize {x.kustomize_mirrored:,}" for x in large)
        + ".\n\n",
        "kmirror locates a stream of 2 MB or more in one process per core (forked children, which share the input "
        "with it). Peak RSS above is its largest process's; what all its processes hold together, as the peak of "
        "their summed PSS sampled every 2 ms in one more, untimed run: "
        + "; ".join(f"{x.stream.size / MB:.1f} MB: {x.pss / MB:.0f} MB ({x.pss / x.stream.size:.2f}x)" for x in large)
        + ".\n\n",
        f"## Small inputs\n\nOne document: the `{one.kind}` (document {one.index}) of `{one.file}`, "
        f"{len(one.text.encode('utf-8')):,} bytes; kustomize gets the same file with an `images:` list made the same way.\n\n",
        "| program | command | runs | median ms | min ms | max ms | median CPU ms | peak RSS MB |\n|---|---|---|---|---|---|---|---|\n",
        *(
            f"| {s.label} | `{s.shown}` | {len(s.series.runs)} | {s.series.wall * 1000:.0f} | {min(r.wall for r in s.series.runs) * 1000:.0f} | "
            f"{max(r.wall for r in s.series.runs) * 1000:.0f} | {s.series.cpu * 1000:.0f} | {s.series.rss / MB:.0f} |\n"
            for s in small
        ),
        f"\n## `kmirror rewrite -w` over {written.files:,} small files\n\n",
        f"{written.files:,} files ({written.size / MB:.1f} MB in all) in one folder, each a corpus document of at most "
        f"{SMALL_FILE:,} characters that holds at least one reference; the files are written afresh (untimed) before each run. "
        "CPU time is user + system of kmirror and every process it waited for.\n\n",
        "| runs | wall s (median) | CPU s (median) | CPU / wall | peak RSS MB | kmirror said |\n|---|---|---|---|---|---|\n",
        f"| {len(written.series.runs)} | {written.series.wall:.2f} | {written.series.cpu:.2f} | {written.series.cpu / written.series.wall:.2f} | "
        f"{written.series.rss / MB:.0f} | {written.summary} |\n",
        "\n## How the streams were made\n\n",
        f"Each corpus file (`fixtures/corpus`) is split at its `---` lines into documents. "
        f"{len(corpus.pieces)} documents are kept; the {len(corpus.dropped)} that kustomize refuses (no `kind` or no "
        "`metadata.name`) are left out of every stream, so kmirror, kustomize and the baselines read the same bytes:\n\n",
        *(f"- {d}\n" for d in corpus.dropped),
        "\nA stream is as many whole copies of the kept documents (in file order) as fit in the size, then every document "
        "of one more copy that still fits. In copy i, document j gets `-c{i}-{j}` appended to its `metadata.name` value in the text "
        "(inside the quotes when quoted); nothing else changes, comments and layout included.\n\n",
        "Rules (`bench/work/rules.yaml`), one per registry of the corpus ground truth:\n\n```yaml\n",
        rules,
        "```\n\nkustomize's `images:` list is built from `kmirror images --format json` of the same stream: every distinct "
        "name as written (tag and digest cut off) with the mirror's name as `newName`; kustomize matches names exactly.\n",
    ]
    return "".join(out)


def _ratios(x: Large) -> str:
    km = x.tools["kmirror"]
    kus, rt, comp = x.tools["kubectl kustomize"], x.tools["ruamel.yaml round trip"], x.tools["libyaml compose"]
    by_cpu = f"{kus.cpu / km.cpu:.1f}x, {rt.cpu / km.cpu:.1f}x, {km.cpu / comp.cpu:.2f}"
    return f"| {x.stream.size / MB:.1f} MB | {kus.wall / km.wall:.1f}x | {rt.wall / km.wall:.1f}x | {km.wall / comp.wall:.2f} | {by_cpu} |\n"


def main() -> int:
    """Build the inputs, measure everything, write bench/RESULTS.md."""
    started = time.time()
    loads = [_load()]
    try:
        if not Path(TIME).is_file():
            raise BenchError(f"{TIME} is missing: install GNU time (apt-get install time)")
        kmirror, kube = kmirror_executable(), kubectl()
        compile_kmirror()
        WORK.mkdir(exist_ok=True)
        corpus = load_corpus()
        rules = rules_text(corpus.registries)
        rules_path = WORK / "rules.yaml"
        rules_path.write_text(rules, encoding="utf-8")
        details = machine()
        streams = []
        for mb in SIZES:
            streams.append(build_stream(corpus, mb))
            log(f"built {streams[-1].path} ({streams[-1].size:,} bytes, {streams[-1].documents} documents)")
        own = measure_kmirror(streams, kmirror, rules_path)
        large = [measure_stream(stream, kmirror, series, rules_path, kube) for stream, series in zip(streams, own)]
        loads.append(_load())
        small, one = measure_small(corpus, kmirror, rules_path, kube)
        written = measure_write(corpus, kmirror, rules_path)
        loads.append(_load())
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 1
    RESULTS.write_text(report(corpus, rules, large, small, one, written, details, loads, started), encoding="utf-8")
    log(f"wrote {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
