"""The command line: options to settings, one call into the pipeline, output, exit code.

Exit codes: 0 clean; 1 findings (or `--check` would change files); 2 bad usage,
configuration, input or render; 3 internal error; 130 interrupted.
"""

from __future__ import annotations

import difflib
import json
import math
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Annotated, Optional

import typer
from typer.exceptions import TyperException

from rewriter import compose, console, templates
from rewriter.batch import process_files
from rewriter.config import Config, load_preset, preset_names
from rewriter.console import EXIT_FINDINGS, EXIT_OK, EXIT_USAGE
from rewriter.errors import KmirrorError, seconds
from rewriter.files import STDIN, Replacement, check_writable, expand, write_atomic
from rewriter.findings import Finding
from rewriter.pipeline import Outcome, process
from rewriter.plan import Image
from rewriter.reference import ReferenceError, parse
from rewriter.rules import RuleError, make_rule


app = typer.Typer(
    add_completion=False,
    no_args_is_help=False,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    help=(
        "Rewrite every container image reference in Kubernetes YAML to your mirror.\n\n"
        "Without a command, kmirror is a filter: it reads a YAML stream on standard input "
        "and writes it rewritten to standard output.\n\n"
        "Example: helm template my-release chart/ | kmirror | kubectl apply -f -"
    ),
)

ConfigOption = Annotated[Optional[str], typer.Option("--config", "-c", help="Rules file (default: $KMIRROR_CONFIG, else the nearest .kmirror.yaml, else the daocloud preset).", metavar="FILE")]
PresetOption = Annotated[Optional[str], typer.Option("--preset", help="Use this built-in preset (overrides the rules file's).", metavar="NAME")]
StrictOption = Annotated[bool, typer.Option("--strict", help="Fail (exit 1, nothing on stdout) when references to blocked registries remain after rewriting.")]
PathsArgument = Annotated[list[str], typer.Argument(help="YAML files or folders; - for standard input.", metavar="PATH...")]


def _run(paths: Sequence[str], settings: Config) -> list[Outcome]:
    return list(_outcomes(paths, settings))


def _outcomes(paths: Sequence[str], settings: Config) -> Iterator[Outcome]:
    files, notes = expand(list(paths))
    for note in notes:
        console.err(f"kmirror: note: {note}")
    for outcome in process_files(files, settings):
        for note in outcome.notes:
            console.err(f"kmirror: note: {note}")
        if outcome.skipped is not None:
            console.err(f"kmirror: note: skipped {outcome.source.name}: {outcome.skipped}")
            continue
        yield outcome


@app.callback(invoke_without_command=True)
def filter_stream(
    ctx: typer.Context,
    config: ConfigOption = None,
    preset: PresetOption = None,
    strict: StrictOption = False,
    version: Annotated[bool, typer.Option("--version", help="Print the version and exit.")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show a traceback on internal errors.")] = False,
) -> None:
    """Rewrite the YAML stream on standard input to standard output."""
    if version:
        raise typer.Exit(console.version())
    if ctx.invoked_subcommand is not None:
        return
    raise typer.Exit(console.filter_stdin(config, preset, strict))


@app.command("rewrite")
def rewrite_command(
    paths: PathsArgument,
    write: Annotated[bool, typer.Option("--write", "-w", help="Rewrite the files in place (atomically; unchanged files are not touched).")] = False,
    check: Annotated[bool, typer.Option("--check", help="Change nothing; exit 1 if any file would change.")] = False,
    diff: Annotated[bool, typer.Option("--diff", help="Print a unified diff of the changes instead of the files.")] = False,
    strict: StrictOption = False,
    config: ConfigOption = None,
    preset: PresetOption = None,
) -> None:
    """Rewrite files: print them rewritten, or change them in place with -w.

    Example: kmirror rewrite -w deploy/
    """
    settings = console.settings(config, preset)
    for note in templates.notes(paths, settings):
        console.err(note)
    if not write or check:
        raise typer.Exit(_rewrite(_run(paths, settings), None, check=check, diff=diff, strict=strict))
    with Replacement() as replacement:  # each changed file is written beside itself while the next ones are processed
        outcomes = []
        for outcome in _outcomes(paths, settings):
            outcomes.append(outcome)
            if outcome.changed and outcome.source.name != STDIN:
                replacement.stage(outcome.source.name, outcome.output)
        raise typer.Exit(_rewrite(outcomes, replacement, check=False, diff=diff, strict=strict))


def _rewrite(outcomes: list[Outcome], replacement: Replacement | None, check: bool, diff: bool, strict: bool) -> int:
    """Print, diff, check or (with a Replacement of the changed files) write the outcomes; the exit code."""
    if replacement is None and not (check or diff):
        return console.emit_rewritten(outcomes, strict)
    if strict and console.strict_refusal(outcomes, "no file changed"):
        return EXIT_FINDINGS
    console.report_problems(outcomes)
    changed = [o for o in outcomes if o.changed]
    if diff:
        console.write("".join(_diff(o) for o in changed))
    if check:
        for outcome in changed:
            console.err(f"would rewrite {outcome.source.name}")
        console.err(f"{console.count(len(changed), 'file')} would be rewritten, {len(outcomes) - len(changed)} unchanged")
        return EXIT_FINDINGS if changed else EXIT_OK
    if replacement is not None:
        stdin = [o for o in changed if o.source.name == STDIN]
        if stdin:
            raise KmirrorError("cannot write: -: standard input cannot be rewritten in place (drop -w)")
        for outcome in changed:
            check_writable(outcome.source.name)
        replacement.commit()
        console.err(f"rewrote {console.count(len(changed), 'file')}")
    return EXIT_OK


def _diff(outcome: Outcome) -> str:
    name = outcome.source.name
    before = outcome.source.render(outcome.source.data).decode("utf-8").splitlines(keepends=True)
    after = outcome.output.decode("utf-8").splitlines(keepends=True)
    return "".join(difflib.unified_diff(before, after, f"a/{name}", f"b/{name}"))


@app.command("check")
def check_command(
    paths: PathsArgument,
    format: Annotated[Optional[str], typer.Option("--format", "-f", help="text, json, sarif, github, gitlab or junit (github when GITHUB_ACTIONS=true).", metavar="FORMAT")] = None,
    allow: Annotated[Optional[list[str]], typer.Option("--allow", help="Never report references under this registry/path prefix or this exact image (repeatable).", metavar="PATTERN")] = None,
    allowlist: AllowlistOption = None,
    config: ConfigOption = None,
    preset: PresetOption = None,
) -> None:
    """Fail (exit 1) when references to blocked registries remain in the files.

    Example: kmirror check --format sarif deploy/ > kmirror.sarif
    """
    from rewriter.report import FORMATS, render

    chosen = format or _default_format()
    if chosen not in FORMATS:
        raise KmirrorError(f"invalid option: --format: {chosen!r}: choose one of {', '.join(FORMATS)}")
    settings = _with_allow(console.settings(config, preset), allow or [])
    allowed = _load_allowlist(allowlist)
    outcomes = _run(paths, settings)
    findings = [f for o in outcomes for f in _check_findings(o, allowed)]
    console.write(render(findings, chosen, len(outcomes)))
    raise typer.Exit(EXIT_FINDINGS if findings else EXIT_OK)


def _default_format() -> str:
    return "github" if os.environ.get("GITHUB_ACTIONS") == "true" else "text"


def _with_allow(settings: Config, patterns: list[str]) -> Config:
    try:
        extra = tuple(make_rule(p, None) for p in patterns)
    except RuleError as exc:
        raise KmirrorError(f"invalid option: --allow: {exc}") from None
    return settings._replace(rules=settings.rules.allowing(extra))


@app.command("images")
def images_command(
    paths: PathsArgument,
    format: Annotated[str, typer.Option("--format", "-f", help="text or json (every reference found), or csv, skopeo, image-syncer or pairs (unique source -> mirror copy list), or kustomize (an images: list).", metavar="FORMAT")] = "text",
    config: ConfigOption = None,
    preset: PresetOption = None,
) -> None:
    """List every image reference found, with its mirror.

    Example: kmirror images --format json deploy/
    """
    from rewriter import inventory

    formats = ("text", "json", *inventory.FORMATS, "kustomize")
    if format not in formats:
        raise KmirrorError(f"invalid option: --format: {format!r}: choose one of {', '.join(formats)}")
    outcomes = _run(paths, console.settings(config, preset))
    if format == "kustomize":
        raise typer.Exit(_kustomize_images(outcomes))
    rows = [_image_row(o, image) for o in outcomes for image in o.images]
    if format in inventory.FORMATS:
        console.write(inventory.render(inventory.unique_pairs(image for o in outcomes for image in o.images), format))
    elif format == "json":
        console.write(json.dumps(rows, indent=2) + "\n")
    else:
        console.write("".join(f"{r['file']}:{r['line']}:{r['column']}: {r['ref']} -> {r['mirrored'] or '(unchanged)'}\n" for r in rows))
    raise typer.Exit(EXIT_OK)


def _image_row(outcome: Outcome, image: Image) -> dict[str, object]:
    decision = image.decision
    return {
        "file": outcome.source.name,
        "document": image.location.document,
        "path": image.location.path,
        "line": image.line,
        "column": image.column,
        "ref": image.location.text,
        "normalized": compose.shown(image.ref.normalized),
        "registry": image.ref.registry,
        "mirrored": compose.shown(decision.mirrored) if decision.mirrored is not None else None,
        "blocked": decision.blocked,
    }


@app.command("explain")
def explain_command(
    refs: Annotated[list[str], typer.Argument(help="Image references.", metavar="REF...")],
    format: Annotated[str, typer.Option("--format", "-f", help="text or json.", metavar="FORMAT")] = "text",
    config: ConfigOption = None,
    preset: PresetOption = None,
) -> None:
    """Show how references parse, normalise, and which rule maps them to what.

    Example: kmirror explain --preset aliyun-google-containers registry.k8s.io/coredns/coredns:v1.11.1
    """
    if format not in ("text", "json"):
        raise KmirrorError(f"invalid option: --format: {format!r}: choose one of text, json")
    settings = console.settings(config, preset)
    rows = [_explain(text, settings) for text in refs]
    if format == "json":
        console.write(json.dumps(rows, indent=2) + "\n")
    else:
        console.write("".join(_explain_text(row) for row in rows))
    raise typer.Exit(EXIT_OK)


def _explain(text: str, settings: Config) -> dict[str, object]:
    row: dict[str, object] = dict.fromkeys(("input", "valid", "error", "registry", "repository", "tag", "digest", "normalized", "mirrored", "rule", "blocked"))
    row.update(input=text, valid=False, blocked=False)
    try:
        ref = parse(text)
        decision = settings.rules.decide(ref)
    except ReferenceError as exc:
        row["error"] = str(exc)
        return row
    row.update(
        valid=True,
        registry=ref.registry,
        repository=ref.repository,
        tag=ref.tag,
        digest=ref.digest,
        normalized=ref.normalized,
        mirrored=str(decision.mirrored) if decision.mirrored is not None else None,
        rule=decision.rule.describe() if decision.rule is not None else None,
        blocked=decision.blocked,
    )
    return row


def _explain_text(row: dict[str, object]) -> str:
    if not row["valid"]:
        return f"{row['input']}\n  invalid: {row['error']}\n"
    lines = [
        f"{row['input']}",
        f"  normalized: {row['normalized']}",
        f"  registry:   {row['registry']}   repository: {row['repository']}   tag: {row['tag'] or '-'}   digest: {row['digest'] or '-'}",
        f"  rule:       {row['rule'] or '(none)'}",
        f"  mirrored:   {row['mirrored'] or '(unchanged)'}",
        f"  blocked:    {'yes' if row['blocked'] else 'no'}",
    ]
    return "\n".join(lines) + "\n"


@app.command("presets")
def presets_command(
    all: Annotated[bool, typer.Option("--all", help="Also list presets whose mirrors are reported dead.")] = False,
) -> None:
    """List the built-in presets with their scheme and reported status.

    Example: kmirror presets --all
    """
    lines = []
    for name in preset_names():
        preset = load_preset(name)
        if preset.status == "dead" and not all:
            continue
        lines.append(f"{name:26} {preset.status:8} {preset.status_date}  {preset.scheme}: {preset.description}\n")
    console.write("".join(lines))
    raise typer.Exit(EXIT_OK)


# verify, sync, and the allow-list of check (issue 8). Registry and skopeo code is imported
# when these commands run, so that the command line starts fast.
from collections import Counter  # noqa: E402
from collections.abc import Callable  # noqa: E402
from typing import TYPE_CHECKING  # noqa: E402

if TYPE_CHECKING:
    from rewriter.allowlist import AllowList
    from rewriter.inventory import Pair
    from rewriter.registry import Answer, Credentials
    from rewriter.registry import Options as RegistryOptions

AllowlistOption = Annotated[Optional[str], typer.Option("--allowlist", help="The mirror's allow-list (DaoCloud allows.txt: repo, prefix/*, prefix/**); report mirrored images it does not cover.", metavar="FILE")]
UsernameOption = Annotated[Optional[str], typer.Option("--username", "-u", help="User name for the mirror registry (default: the Docker config file); needs --password-stdin.", metavar="NAME")]
PasswordStdinOption = Annotated[bool, typer.Option("--password-stdin", help="Read the mirror registry's password (or token) from the first line of standard input.")]
PlainHttpOption = Annotated[bool, typer.Option("--plain-http", help="Talk plain HTTP to the registries (local test registries).")]
InsecureOption = Annotated[bool, typer.Option("--insecure", help="Talk HTTPS without verifying certificates.")]


def _load_allowlist(path: str | None) -> AllowList | None:
    from rewriter.allowlist import load_allowlist

    return load_allowlist(path) if path is not None else None


def _check_findings(outcome: Outcome, allowed: AllowList | None) -> list[Finding]:
    found = outcome.findings(after_rewrite=False)
    if allowed is None:
        return found
    from rewriter.allowlist import findings

    return sorted([*found, *findings(outcome.source, outcome.images, allowed)], key=lambda f: (f.line, f.column, f.code))


def _password(paths: Sequence[str], username: str | None, password_stdin: bool) -> Credentials | None:
    """The credentials given on the command line, the password read from standard input."""
    from rewriter.registry import Credentials

    if username is None and not password_stdin:
        return None
    if username is None or not password_stdin:
        raise KmirrorError("invalid option: --username: give both --username and --password-stdin (a password is never an argument)")
    if STDIN in paths:
        raise KmirrorError("invalid option: --password-stdin: standard input cannot hold both the password and the YAML (name files)")
    password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        raise KmirrorError("invalid option: --password-stdin: standard input held no password")
    return Credentials(username, password)


def _registry_options(pairs: list[Pair], login: Credentials | None, plain_http: bool, insecure: bool) -> RegistryOptions:
    from rewriter.registry import Options, docker_config_lookup, docker_config_path, login as with_login

    lookup = docker_config_lookup(docker_config_path())
    if login is not None:
        hosts = sorted({p.mirror.registry for p in pairs})
        if len(hosts) > 1:
            raise KmirrorError(f"invalid option: --username: the mirrored images are on {len(hosts)} registries ({', '.join(hosts)}); log in to each in the Docker config file instead")
        lookup = with_login(hosts[0], login, lookup) if hosts else lookup
    return Options(plain_http=plain_http, insecure=insecure, credentials=lookup)


def _pairs(outcomes: list[Outcome]) -> list[Pair]:
    from rewriter.inventory import unique_pairs

    return unique_pairs(image for o in outcomes for image in o.images)


def _progress(label: str) -> Callable[[int, int], None]:
    """A progress bar on standard error when it is a terminal; otherwise nothing."""
    if not sys.stderr.isatty():
        return lambda n, total: None

    def show(n: int, total: int) -> None:
        filled = 30 * n // max(total, 1)
        sys.stderr.write(f"\r{label} [{'#' * filled}{'.' * (30 - filled)}] {n}/{total}")
        if n >= total:
            sys.stderr.write("\r\033[K")
        sys.stderr.flush()

    return show


def _mirror_answers(pairs: list[Pair], options: RegistryOptions, label: str) -> dict[str, Answer]:
    """What the mirror registries say about each pair's mirror reference, keyed by it."""
    from rewriter.registry import check

    wanted = list({str(p.mirror): p.mirror for p in pairs}.values())
    return {str(a.ref): a for a in check(wanted, options, _progress(label))}


@app.command("verify")
def verify_command(
    paths: PathsArgument,
    allowlist: AllowlistOption = None,
    username: UsernameOption = None,
    password_stdin: PasswordStdinOption = False,
    plain_http: PlainHttpOption = False,
    insecure: InsecureOption = False,
    config: ConfigOption = None,
    preset: PresetOption = None,
) -> None:
    """Ask the mirror registries whether every rewritten image exists (exit 1 listing what is missing).

    Example: kmirror verify deploy/
    """
    login = _password(paths, username, password_stdin)
    allowed = _load_allowlist(allowlist)
    pairs = _pairs(_run(paths, console.settings(config, preset)))
    refused = [p for p in pairs if allowed is not None and not allowed.covers(p.source.registry, p.source.repository)]
    asked = [p for p in pairs if p not in refused]
    answers = _mirror_answers(asked, _registry_options(asked, login, plain_http, insecure), "kmirror: verify")
    raise typer.Exit(_write_verify(pairs, refused, answers))


def _write_verify(pairs: list[Pair], refused: list[Pair], answers: dict[str, Answer]) -> int:
    from rewriter.registry import PRESENT

    lines = []
    counts: Counter[str] = Counter()
    for pair in pairs:
        if pair in refused:
            state, detail = "not allowed", "not on the mirror's allow-list"
        else:
            answer = answers[str(pair.mirror)]
            state, detail = answer.state, answer.detail
        counts[state] += 1
        if state != PRESENT:
            lines.append(f"{pair.mirror}: {state}{': ' + detail if detail else ''} (source {pair.source})\n")
    if not pairs:
        lines.append("no rewritten images to verify\n")
    else:
        tally = ", ".join(f"{counts[s]} {s}" for s in (PRESENT, "missing", "denied", "failed", "not allowed") if counts[s] or s == PRESENT)
        lines.append(f"{len(pairs)} mirrored images: {tally}\n")
    console.write("".join(lines))
    return EXIT_OK if counts[PRESENT] == len(pairs) else EXIT_FINDINGS


@app.command("sync")
def sync_command(
    paths: PathsArgument,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only list what would be copied.")] = False,
    username: UsernameOption = None,
    password_stdin: PasswordStdinOption = False,
    plain_http: PlainHttpOption = False,
    insecure: InsecureOption = False,
    config: ConfigOption = None,
    preset: PresetOption = None,
) -> None:
    """Copy the rewritten images their mirror lacks, with skopeo copy --all (exit 1 on failures).

    Example: kmirror sync --dry-run deploy/
    """
    from rewriter.registry import PRESENT
    from rewriter.sync import copy, find_skopeo

    login = _password(paths, username, password_stdin)
    pairs = _pairs(_run(paths, console.settings(config, preset)))
    options = _registry_options(pairs, login, plain_http, insecure)
    skopeo = find_skopeo() if not dry_run else ""
    answers = _mirror_answers(pairs, options, "kmirror: sync: checking")
    todo = [p for p in pairs if answers[str(p.mirror)].state != PRESENT]
    lines = [f"present: {p.push}\n" for p in pairs if p not in todo]
    failed = 0
    for n, pair in enumerate(todo, 1):
        if dry_run:
            lines.append(f"would copy: {pair.pull} -> {pair.push}\n")
            continue
        console.err(f"kmirror: copying [{n}/{len(todo)}] {pair.pull} -> {pair.push}")
        done = copy(skopeo, pair, options)
        if not done.ok:
            failed += 1
            detail = "".join(f"    {line}\n" for line in done.stderr.strip().splitlines())
            console.err(f"kmirror: skopeo failed (exit {done.returncode}): {' '.join(done.command)}\n{detail}".rstrip("\n"))
        lines.append(f"{'copied' if done.ok else 'failed'}: {pair.pull} -> {pair.push}\n")
    verb = "to copy" if dry_run else "copied"
    lines.append(f"{len(pairs)} mirrored images: {len(pairs) - len(todo)} present, {len(todo) - failed} {verb}, {failed} failed\n")
    console.write("".join(lines))
    raise typer.Exit(EXIT_FINDINGS if failed else EXIT_OK)


ChartArgument = Annotated[str, typer.Argument(help="Chart folder, .tgz, repo/name, or oci:// or https URL.", metavar="CHART")]
ChartVersionOption = Annotated[Optional[str], typer.Option("--version", help="Chart version (helm's --version).", metavar="V")]
ChartRepoOption = Annotated[Optional[str], typer.Option("--repo", help="Chart repository URL (helm's --repo).", metavar="URL")]
HelmOption = Annotated[str, typer.Option("--helm", help="The helm executable (Helm 3 or 4).", metavar="PATH")]
DEFAULT_TIMEOUT = 300
TimeoutOption = Annotated[
    float,
    typer.Option("--timeout", help=f"Kill a helm or kustomize run, and every process it started, after this many seconds, and exit 2 (default: {DEFAULT_TIMEOUT}).", metavar="SECONDS", show_default=False),
]


def _timeout(value: float) -> float:
    """`--timeout`, checked: a finite number of seconds above 0."""
    if not (math.isfinite(value) and value > 0):
        raise KmirrorError(f"invalid option: --timeout: {seconds(value)}: give a number of seconds greater than 0")
    return value


@app.command("helm")
def helm_command(
    chart: ChartArgument,
    release: Annotated[str, typer.Option("--release", help="Release name.", metavar="NAME")] = "release-name",
    namespace: Annotated[Optional[str], typer.Option("--namespace", "-n", help="Release namespace.", metavar="NS")] = None,
    values: Annotated[Optional[list[str]], typer.Option("--values", "-f", help="Values file (repeatable).", metavar="VALUES")] = None,
    sets: Annotated[Optional[list[str]], typer.Option("--set", help="Set a value (repeatable).", metavar="K=V")] = None,
    version: ChartVersionOption = None,
    repo: ChartRepoOption = None,
    include_crds: Annotated[bool, typer.Option("--include-crds", help="Also render the chart's crds/ folder.")] = False,
    helm: HelmOption = "helm",
    timeout: TimeoutOption = DEFAULT_TIMEOUT,
    strict: StrictOption = False,
    config: ConfigOption = None,
    preset: PresetOption = None,
) -> None:
    """Render a chart with `helm template` and write it rewritten to standard output.

    Example: kmirror helm ./chart --release web -f prod.yaml | kubectl apply -f -
    """
    from rewriter.helm import ChartRef, Render, template

    limit = _timeout(timeout)
    settings = console.settings(config, preset)
    render = Render(release, namespace, tuple(values or ()), tuple(sets or ()), include_crds)
    rendered = template(helm, ChartRef(chart, version, repo), render, limit)
    raise typer.Exit(console.emit_rewritten([process(rendered, f"{chart} (rendered)", settings)], strict))


@app.command("chart")
def chart_command(
    chart: ChartArgument,
    output: Annotated[Optional[str], typer.Option("--output", "-o", help="Write the values override to FILE (default: standard output).", metavar="FILE")] = None,
    write: Annotated[bool, typer.Option("--write", "-w", help="Rewrite the chart's values.yaml files in place instead.")] = False,
    version: ChartVersionOption = None,
    repo: ChartRepoOption = None,
    helm: HelmOption = "helm",
    timeout: TimeoutOption = DEFAULT_TIMEOUT,
    config: ConfigOption = None,
    preset: PresetOption = None,
) -> None:
    """Mirror a chart's image values (an override, or values.yaml in place), then verify by rendering.

    Exit 1 when rendered images stay unmirrored (hard-coded in templates: use the post-renderer).

    Example: kmirror chart ./chart -o mirror-values.yaml && helm install web ./chart -f mirror-values.yaml
    """
    from rewriter.chart import mirror_chart
    from rewriter.helm import ChartRef

    if output is not None and write:
        raise KmirrorError("invalid option: -o and -w: choose one (an override file, or values.yaml rewritten in place)")
    limit = _timeout(timeout)
    result = mirror_chart(helm, ChartRef(chart, version, repo), console.settings(config, preset), in_place=write, timeout=limit)
    if write:
        for file in result.rewritten:
            check_writable(str(file.path))
        for file, text in result.rewritten.items():
            write_atomic(str(file.path), text)
        console.err(f"rewrote {', '.join(f.name for f in result.rewritten) or 'nothing'} ({len(result.changes)} values changed)")
    elif output is not None:
        _save(output, result.override)
        console.err(f"wrote {output} ({len(result.changes)} values)")
    else:
        console.write(result.override)
    for left in result.leftovers:
        console.err(f"{left.template}: {left.ref} is not mirrored ({'mirror: ' + left.mirror if left.mirror else 'no rule'})")
    if result.leftovers:
        console.err(f"kmirror: {len(result.leftovers)} of {result.rendered} rendered images cannot be reached through values (hard-coded in templates); use the post-renderer: see docs/helm.md")
        raise typer.Exit(EXIT_FINDINGS)
    console.err(f"verified: all {result.rendered} rendered images are mirrored")
    raise typer.Exit(EXIT_OK)


def _save(name: str, text: str) -> None:
    if Path(name).exists():
        check_writable(name)
        write_atomic(name, text)
        return
    try:
        with open(name, "w", encoding="utf-8", newline="") as out:
            out.write(text)
    except OSError as exc:
        raise KmirrorError(f"cannot write: {name}: {exc.strerror or exc}") from None


@app.command("kustomize")
def kustomize_command(
    directory: Annotated[str, typer.Argument(help="The kustomization's folder (or anything `kustomize build` accepts).", metavar="DIR")],
    extra: Annotated[Optional[list[str]], typer.Argument(help="More arguments for the build, after --.", metavar="[-- EXTRA...]")] = None,
    enable_helm: Annotated[bool, typer.Option("--enable-helm", help="Let the build inflate helmCharts (passes --enable-helm).")] = False,
    kustomize: Annotated[Optional[str], typer.Option("--kustomize", help="The kustomize executable (default: kustomize on PATH, else `kubectl kustomize`).", metavar="PATH")] = None,
    timeout: TimeoutOption = DEFAULT_TIMEOUT,
    strict: StrictOption = False,
    config: ConfigOption = None,
    preset: PresetOption = None,
) -> None:
    """Build a kustomization and write it rewritten to standard output.

    Example: kmirror kustomize overlays/prod -- --load-restrictor LoadRestrictionsNone | kubectl apply -f -
    """
    from rewriter.kustomize import build_command, run_build

    limit = _timeout(timeout)
    settings = console.settings(config, preset)
    rendered = run_build(build_command(directory, enable_helm, kustomize, extra or []), limit)
    if rendered.warnings:
        sys.stderr.write(rendered.warnings)
    raise typer.Exit(console.emit_rewritten([process(rendered.output, f"{directory} (rendered)", settings)], strict))


@app.command("install-kustomize-plugin")
def install_kustomize_plugin_command() -> None:
    """Install kmirror as kustomize's exec transformer plugin for kind ImageMirror.

    Where kustomize looks first: $KUSTOMIZE_PLUGIN_HOME, else $XDG_CONFIG_HOME/kustomize/plugin,
    else ~/.config/kustomize/plugin. Build with --enable-alpha-plugins (see docs/kustomize.md).

    Example: kmirror install-kustomize-plugin && kubectl kustomize --enable-alpha-plugins overlays/prod
    """
    from rewriter.plugin import install, plugin_root

    target = install(plugin_root(os.environ), sys.executable)
    console.err(f"installed {target}")
    raise typer.Exit(EXIT_OK)


def _kustomize_images(outcomes: list[Outcome]) -> int:
    from rewriter.kustomize import Placed, images_list

    listed = images_list(Placed(o.source.name, image) for o in outcomes for image in o.images)
    for left in listed.unreached:
        console.err(
            f"kmirror: note: {left.where()}: {left.image.location.text} ({left.image.location.resource} {left.image.location.path}) "
            "is not in containers/initContainers: kustomize's images transformer leaves it unchanged"
        )
    console.write(listed.to_yaml())
    return EXIT_OK


@app.command("init")
def init_command(
    preset: Annotated[Optional[str], typer.Option("--preset", help="Start from this built-in preset (default: daocloud).", metavar="NAME")] = None,
    registry: Annotated[Optional[str], typer.Option("--registry", help="Send the common public registries through your registry, one path per registry (docker.io -> HOST/docker.io).", metavar="HOST")] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing .kmirror.yaml.")] = False,
) -> None:
    """Write a commented starter .kmirror.yaml in the current folder.

    Example: kmirror init --registry harbor.example.com
    """
    from rewriter.config import CONFIG_NAME, parse_config
    from rewriter.init import starter

    text = starter(preset, registry)
    notices = parse_config(text, CONFIG_NAME).notices  # what kmirror will say when it loads the file
    target = Path.cwd() / CONFIG_NAME
    try:
        with open(target, "w" if force else "x", encoding="utf-8", newline="") as out:
            out.write(text)
    except FileExistsError:
        raise KmirrorError(f"cannot write: {target}: it exists already (--force replaces it)") from None
    except OSError as exc:
        raise KmirrorError(f"cannot write: {target}: {exc.strerror or exc}") from None
    for notice in notices:
        console.err(f"kmirror: {notice}")
    console.err(f"wrote {CONFIG_NAME}; see what it does: kmirror check .")
    raise typer.Exit(EXIT_OK)


@app.command("runtime-config")
def runtime_config_command(
    format: Annotated[str, typer.Option("--format", "-f", help="containerd-hosts, containerd-config, kind, k3s, crio, docker, talos or kubeadm.", metavar="FORMAT")],
    output_dir: Annotated[Optional[str], typer.Option("--output-dir", "-o", help="Write the files under this folder (created if needed) instead of printing; containerd-hosts and kind need it.", metavar="DIR")] = None,
    config: ConfigOption = None,
    preset: PresetOption = None,
) -> None:
    """Write container runtime mirror configuration from the same rules.

    Example: kmirror runtime-config --format containerd-hosts --output-dir /etc/containerd/certs.d
    """
    from rewriter.runtime import MULTI_FILE, runtime_config

    if output_dir is None and format in MULTI_FILE:
        raise KmirrorError(f"invalid option: --format: {format!r} writes several files: give --output-dir DIR")
    result = runtime_config(console.settings(config, preset), format)
    for warning in result.warnings:
        console.err(f"kmirror: warning: {warning}")
    if output_dir is None:
        console.write("".join(result.files.values()))
    else:
        _write_tree(Path(output_dir), result.files)
        console.err(f"wrote {len(result.files)} files under {output_dir}")
    raise typer.Exit(EXIT_OK)


def _write_tree(folder: Path, files: dict[str, str]) -> None:
    for relative, text in files.items():
        target = folder / relative
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.touch(mode=0o644, exist_ok=True)  # write_atomic replaces an existing file only
        except OSError as exc:
            raise KmirrorError(f"cannot write: {target}: {exc.strerror or exc}") from None
        write_atomic(str(target), text)


def main(argv: Sequence[str] | None = None) -> int:
    """Run kmirror with `argv` (default: the process arguments) through typer; return the exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    return console.guarded(lambda: _typer(args), debug="--debug" in args)


def _typer(args: list[str]) -> int:
    try:
        result = app(args, prog_name="kmirror", standalone_mode=False)
        return int(result) if isinstance(result, int) else EXIT_OK
    except typer.Exit as done:
        return done.exit_code
    except TyperException as exc:  # usage errors: click prints "Usage: ..." and the problem
        show = getattr(exc, "show", None)
        if show is not None:
            show()
        else:
            console.err(f"kmirror: error: {exc}")
        return EXIT_USAGE
    except typer.Abort:  # click's name for Ctrl-C
        return console.interrupted()
