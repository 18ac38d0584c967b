"""The command line: typer's options, each command calling its module in `rewriter.commands`.

Exit codes: 0 clean; 1 findings (or `--check` would change files); 2 bad usage,
configuration, input or render; 3 internal error; 130 interrupted.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Annotated, Any, Optional

import typer
from typer.core import TyperArgument, TyperGroup
from typer.exceptions import TyperException

from rewriter import console
from rewriter.child import DEFAULT_MAX_OUTPUT
from rewriter.console import EXIT_OK, EXIT_USAGE


app = typer.Typer(
    add_completion=True,
    no_args_is_help=False,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    help=(
        "Rewrite every container image reference in Kubernetes YAML to your mirror.\n\n"
        "Without a command, kmirror is a filter: it reads a YAML stream on standard input "
        "and writes it rewritten to standard output.\n\n"
        "\b\nExample: helm template my-release chart/ | kmirror | kubectl apply -f -"
    ),
)

ConfigOption = Annotated[Optional[str], typer.Option("--config", "-c", help="Rules file (default: $KMIRROR_CONFIG, else the nearest .kmirror.yaml, else the daocloud preset).", metavar="FILE")]
PresetOption = Annotated[Optional[str], typer.Option("--preset", help="Use this built-in preset alone; with --config FILE, in place of the file's preset.", metavar="NAME")]
StrictOption = Annotated[bool, typer.Option("--strict", help="Fail (exit 1, nothing on stdout) when references to blocked registries remain after rewriting.")]
PinOption = Annotated[bool, typer.Option("--pin", help="Pin each rewritten image to its digest (MIRROR:TAG@sha256:...), as the source registry serves it.")]
PinFromOption = Annotated[Optional[str], typer.Option("--pin-from", help="With --pin: take digests from the source registry (default) or the mirror.", metavar="source|mirror")]
PathsArgument = Annotated[list[str], typer.Argument(help="YAML files or folders; - for standard input.", metavar="PATH...")]
OutputFileOption = Annotated[Optional[str], typer.Option("--output-file", help="Write the report to FILE instead of standard output.", metavar="FILE")]
ExcludeOption = Annotated[Optional[list[str]], typer.Option("--exclude", help="Skip files and folders matching this glob, from the working folder (repeatable; adds to the rules file's exclude:).", metavar="GLOB")]
AllowlistOption = Annotated[Optional[str], typer.Option("--allowlist", help="The mirror's allow-list (DaoCloud allows.txt: repo, prefix/*, prefix/**); report mirrored images it does not cover.", metavar="FILE")]
UsernameOption = Annotated[Optional[str], typer.Option("--username", "-u", help="User name for the mirror registry (default: from auth.json or the Docker config file); needs --password-stdin.", metavar="NAME")]
PasswordStdinOption = Annotated[bool, typer.Option("--password-stdin", help="Read the mirror registry's password (or token) from the first line of standard input.")]
PlainHttpOption = Annotated[bool, typer.Option("--plain-http", help="Talk plain HTTP to every registry (overrides registries: in the rules file).")]
InsecureOption = Annotated[bool, typer.Option("--insecure", help="Talk HTTPS to every registry without verifying certificates (overrides registries:).")]
ChartArgument = Annotated[str, typer.Argument(help="Chart folder, .tgz, repo/name, or oci:// or https URL.", metavar="CHART")]
ChartVersionOption = Annotated[Optional[str], typer.Option("--version", help="Chart version (helm's --version).", metavar="V")]
ChartRepoOption = Annotated[Optional[str], typer.Option("--repo", help="Chart repository URL (helm's --repo).", metavar="URL")]
HelmOption = Annotated[str, typer.Option("--helm", help="The helm executable (Helm 3 or 4).", metavar="PATH")]
DEFAULT_TIMEOUT = 300
TimeoutOption = Annotated[
    float,
    typer.Option("--timeout", help=f"Kill a helm or kustomize run, and every process it started, after this many seconds, and exit 2 (default: {DEFAULT_TIMEOUT}).", metavar="SECONDS", show_default=False),
]
MaxOutputOption = Annotated[
    float,
    typer.Option("--max-output", help=f"Kill a helm or kustomize run that prints more than this many megabytes, and exit 2 (default: {DEFAULT_MAX_OUTPUT}).", metavar="MB", show_default=False),
]
HelmArgsArgument = Annotated[Optional[list[str]], typer.Argument(help="More arguments for helm template, after --.", metavar="[-- HELM-ARGS...]")]
ValuesOption = Annotated[Optional[list[str]], typer.Option("--values", help="Values file (repeatable; helm's -f: kmirror's -f is --format).", metavar="FILE")]
ShortFOption = Annotated[Optional[list[str]], typer.Option("-f", hidden=True)]
SetOption = Annotated[Optional[list[str]], typer.Option("--set", help="Set a value (repeatable).", metavar="K=V")]
SetStringOption = Annotated[Optional[list[str]], typer.Option("--set-string", help="Set a STRING value (repeatable).", metavar="K=V")]
SetFileOption = Annotated[Optional[list[str]], typer.Option("--set-file", help="Set a value from a file's content (repeatable).", metavar="K=PATH")]
KubeVersionOption = Annotated[Optional[str], typer.Option("--kube-version", help="Kubernetes version for Capabilities.KubeVersion.", metavar="V")]
ApiVersionsOption = Annotated[Optional[list[str]], typer.Option("--api-versions", help="Kubernetes API versions for Capabilities.APIVersions (repeatable).", metavar="GROUP/V")]


@app.callback(invoke_without_command=True)
def filter_stream(
    ctx: typer.Context,
    config: ConfigOption = None,
    preset: PresetOption = None,
    strict: StrictOption = False,
    version: Annotated[bool, typer.Option("--version", help="Print the version and exit.")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show a traceback on internal errors.")] = False,
    pin: PinOption = False,
    pin_from: PinFromOption = None,
) -> None:
    """Rewrite the YAML stream on standard input to standard output."""
    if version:
        raise typer.Exit(console.version())
    if ctx.invoked_subcommand is not None:
        return
    raise typer.Exit(console.filter_stdin(config, preset, strict, console.pin_source(pin, pin_from)))


@app.command("rewrite")
def rewrite_command(
    paths: PathsArgument,
    write: Annotated[bool, typer.Option("--write", "-w", help="Rewrite the files in place (atomically; unchanged files are not touched).")] = False,
    check: Annotated[bool, typer.Option("--check", help="Change nothing; exit 1 if any file would change.")] = False,
    diff: Annotated[bool, typer.Option("--diff", help="Print a unified diff of the changes instead of the files.")] = False,
    strict: StrictOption = False,
    pin: PinOption = False,
    pin_from: PinFromOption = None,
    exclude: ExcludeOption = None,
    config: ConfigOption = None,
    preset: PresetOption = None,
) -> None:
    """Rewrite files: print them rewritten, or change them in place with -w.

    \b
    Example: kmirror rewrite -w deploy/
    """
    from rewriter.commands import rewrite

    raise typer.Exit(rewrite.run(paths, write, check, diff, strict, console.pin_source(pin, pin_from), exclude, config, preset))


@app.command("check")
def check_command(
    paths: PathsArgument,
    format: Annotated[Optional[str], typer.Option("--format", "-f", help="text, json, sarif, github, gitlab or junit (github when GITHUB_ACTIONS=true).", metavar="FORMAT")] = None,
    allow: Annotated[Optional[list[str]], typer.Option("--allow", help="Never report references under this registry/path prefix or this exact image (repeatable).", metavar="PATTERN")] = None,
    allowlist: AllowlistOption = None,
    output_file: OutputFileOption = None,
    exit_zero: Annotated[bool, typer.Option("--exit-zero", help="Exit 0 even when there are findings (errors still exit 2).")] = False,
    exclude: ExcludeOption = None,
    config: ConfigOption = None,
    preset: PresetOption = None,
) -> None:
    """Fail (exit 1) when references to blocked registries remain in the files.

    \b
    Example: kmirror check --format sarif deploy/ > kmirror.sarif
    """
    from rewriter.commands import check

    raise typer.Exit(check.run(paths, format, allow, allowlist, output_file, exit_zero, exclude, config, preset))


@app.command("images")
def images_command(
    paths: PathsArgument,
    format: Annotated[str, typer.Option("--format", "-f", help="text or json (every reference found), or csv, skopeo, image-syncer or pairs (unique source -> mirror copy list), kustomize (an images: list), or lock (source -> mirror -> digest, from the source registries).", metavar="FORMAT")] = "text",
    output_file: OutputFileOption = None,
    exclude: ExcludeOption = None,
    config: ConfigOption = None,
    preset: PresetOption = None,
) -> None:
    """List every image reference found, with its mirror.

    \b
    Example: kmirror images --format json deploy/
    """
    from rewriter.commands import images

    raise typer.Exit(images.run(paths, format, output_file, exclude, config, preset))


@app.command("explain")
def explain_command(
    refs: Annotated[list[str], typer.Argument(help="Image references.", metavar="REF...")],
    format: Annotated[str, typer.Option("--format", "-f", help="text or json.", metavar="FORMAT")] = "text",
    config: ConfigOption = None,
    preset: PresetOption = None,
) -> None:
    """Show how references parse, normalise, and which rule maps them to what.

    \b
    Example: kmirror explain --preset aliyun-google-containers registry.k8s.io/coredns/coredns:v1.11.1
    """
    from rewriter.commands import explain

    raise typer.Exit(explain.run(refs, format, config, preset))


@app.command("presets")
def presets_command(
    all: Annotated[bool, typer.Option("--all", help="Also list presets whose mirrors are reported dead.")] = False,
) -> None:
    """List the built-in presets with their scheme and reported status.

    \b
    Example: kmirror presets --all
    """
    from rewriter.commands import presets

    raise typer.Exit(presets.run(all))


@app.command("verify")
def verify_command(
    paths: Annotated[Optional[list[str]], typer.Argument(help="YAML files or folders; - for standard input (none with --lock).", metavar="PATH...")] = None,
    same_digest: Annotated[bool, typer.Option("--same-digest", help="Also compare each image's digest on the mirror with the source's (exit 1 when they differ).")] = False,
    lock: Annotated[Optional[str], typer.Option("--lock", help="Check the mirror against a lock (kmirror images --format lock) instead of manifests.", metavar="FILE")] = None,
    allowlist: AllowlistOption = None,
    username: UsernameOption = None,
    password_stdin: PasswordStdinOption = False,
    plain_http: PlainHttpOption = False,
    insecure: InsecureOption = False,
    exclude: ExcludeOption = None,
    config: ConfigOption = None,
    preset: PresetOption = None,
) -> None:
    """Ask the mirror registries whether every rewritten image exists (exit 1 listing what is missing).

    \b
    Example: kmirror verify deploy/
    """
    from rewriter.commands import verify

    raise typer.Exit(verify.run(paths, same_digest, lock, allowlist, username, password_stdin, plain_http, insecure, exclude, config, preset))


@app.command("sync")
def sync_command(
    paths: PathsArgument,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only list what would be copied.")] = False,
    username: UsernameOption = None,
    password_stdin: PasswordStdinOption = False,
    plain_http: PlainHttpOption = False,
    insecure: InsecureOption = False,
    exclude: ExcludeOption = None,
    config: ConfigOption = None,
    preset: PresetOption = None,
) -> None:
    """Copy the rewritten images their mirror lacks, with skopeo copy --all (exit 1 on failures).

    \b
    Example: kmirror sync --dry-run deploy/
    """
    from rewriter.commands import sync

    raise typer.Exit(sync.run(paths, dry_run, username, password_stdin, plain_http, insecure, exclude, config, preset))


@app.command("helm")
def helm_command(
    chart: ChartArgument,
    extra: HelmArgsArgument = None,
    release: Annotated[str, typer.Option("--release", help="Release name.", metavar="NAME")] = "release-name",
    namespace: Annotated[Optional[str], typer.Option("--namespace", "-n", help="Release namespace.", metavar="NS")] = None,
    values: ValuesOption = None,
    short_f: ShortFOption = None,
    sets: SetOption = None,
    set_strings: SetStringOption = None,
    set_files: SetFileOption = None,
    kube_version: KubeVersionOption = None,
    api_versions: ApiVersionsOption = None,
    version: ChartVersionOption = None,
    repo: ChartRepoOption = None,
    include_crds: Annotated[bool, typer.Option("--include-crds", help="Also render the chart's crds/ folder.")] = False,
    helm: HelmOption = "helm",
    timeout: TimeoutOption = DEFAULT_TIMEOUT,
    max_output: MaxOutputOption = DEFAULT_MAX_OUTPUT,
    strict: StrictOption = False,
    config: ConfigOption = None,
    preset: PresetOption = None,
) -> None:
    """Render a chart with `helm template` and write it rewritten to standard output.

    Anything after -- goes to helm template as it is, in helm's own spelling.

    \b
    Example: kmirror helm ./chart --release web --values prod.yaml | kubectl apply -f -
    """
    from rewriter.commands import helm as command

    raise typer.Exit(
        command.run(
            chart, extra, release, namespace, values, short_f, sets, set_strings, set_files, kube_version, api_versions,
            version, repo, include_crds, helm, timeout, max_output, strict, config, preset,
        )
    )


@app.command("chart")
def chart_command(
    chart: ChartArgument,
    extra: HelmArgsArgument = None,
    output: Annotated[Optional[str], typer.Option("--output", "-o", help="Write the values override to FILE (default: standard output).", metavar="FILE")] = None,
    write: Annotated[bool, typer.Option("--write", "-w", help="Rewrite the chart's values.yaml files in place instead.")] = False,
    values: ValuesOption = None,
    short_f: ShortFOption = None,
    sets: SetOption = None,
    set_strings: SetStringOption = None,
    set_files: SetFileOption = None,
    kube_version: KubeVersionOption = None,
    api_versions: ApiVersionsOption = None,
    version: ChartVersionOption = None,
    repo: ChartRepoOption = None,
    helm: HelmOption = "helm",
    timeout: TimeoutOption = DEFAULT_TIMEOUT,
    max_output: MaxOutputOption = DEFAULT_MAX_OUTPUT,
    config: ConfigOption = None,
    preset: PresetOption = None,
) -> None:
    """Mirror a chart's image values (an override, or values.yaml in place), then verify by rendering.

    Exit 1 when rendered images stay unmirrored (hard-coded in templates: use the post-renderer),
    judged by rendering (CRDs included) with the given values and options, the override last.

    \b
    Example: kmirror chart ./chart -o mirror-values.yaml && helm install web ./chart -f mirror-values.yaml
    """
    from rewriter.commands import chart as command

    raise typer.Exit(
        command.run(
            chart, extra, output, write, values, short_f, sets, set_strings, set_files, kube_version, api_versions,
            version, repo, helm, timeout, max_output, config, preset,
        )
    )


@app.command("kustomize")
def kustomize_command(
    directory: Annotated[str, typer.Argument(help="The kustomization's folder (or anything `kustomize build` accepts).", metavar="DIR")],
    extra: Annotated[Optional[list[str]], typer.Argument(help="More arguments for the build, after --.", metavar="[-- EXTRA...]")] = None,
    enable_helm: Annotated[bool, typer.Option("--enable-helm", help="Let the build inflate helmCharts (passes --enable-helm).")] = False,
    kustomize: Annotated[Optional[str], typer.Option("--kustomize", help="The kustomize executable (default: kustomize on PATH, else `kubectl kustomize`).", metavar="PATH")] = None,
    timeout: TimeoutOption = DEFAULT_TIMEOUT,
    max_output: MaxOutputOption = DEFAULT_MAX_OUTPUT,
    strict: StrictOption = False,
    config: ConfigOption = None,
    preset: PresetOption = None,
) -> None:
    """Build a kustomization and write it rewritten to standard output.

    \b
    Example: kmirror kustomize overlays/prod -- --load-restrictor LoadRestrictionsNone | kubectl apply -f -
    """
    from rewriter.commands import kustomize as command

    raise typer.Exit(command.run(directory, extra, enable_helm, kustomize, timeout, max_output, strict, config, preset))


@app.command("install-kustomize-plugin")
def install_kustomize_plugin_command() -> None:
    """Install kmirror as kustomize's exec transformer plugin for kind ImageMirror.

    Where kustomize looks first: $KUSTOMIZE_PLUGIN_HOME, else $XDG_CONFIG_HOME/kustomize/plugin,
    else ~/.config/kustomize/plugin. Build with --enable-alpha-plugins (see docs/kustomize.md).

    \b
    Example: kmirror install-kustomize-plugin && kubectl kustomize --enable-alpha-plugins overlays/prod
    """
    from rewriter.commands import install_kustomize_plugin

    raise typer.Exit(install_kustomize_plugin.run())


@app.command("init")
def init_command(
    preset: Annotated[Optional[str], typer.Option("--preset", help="Start from this built-in preset (default: daocloud).", metavar="NAME")] = None,
    registry: Annotated[Optional[str], typer.Option("--registry", help="Send the common public registries through your registry, one path per registry (docker.io -> HOST/docker.io).", metavar="HOST")] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing .kmirror.yaml.")] = False,
) -> None:
    """Write a commented starter .kmirror.yaml in the current folder.

    \b
    Example: kmirror init --registry harbor.example.com
    """
    from rewriter.commands import init

    raise typer.Exit(init.run(preset, registry, force))


@app.command("runtime-config")
def runtime_config_command(
    format: Annotated[str, typer.Option("--format", "-f", help="containerd-hosts, containerd-config, kind, k3s, crio, docker, talos or kubeadm.", metavar="FORMAT")],
    output_dir: Annotated[Optional[str], typer.Option("--output-dir", "-o", help="Write the files under this folder (created if needed) instead of printing, and remove those an earlier run wrote that are no longer configured; containerd-hosts and kind need it.", metavar="DIR")] = None,
    no_fallback: Annotated[bool, typer.Option("--no-fallback", help="Never pull from the upstream registries: only from the mirrors (air-gapped sites).")] = False,
    config: ConfigOption = None,
    preset: PresetOption = None,
) -> None:
    """Write container runtime mirror configuration from the same rules.

    \b
    Example: kmirror runtime-config --format containerd-hosts --output-dir /etc/containerd/certs.d
    """
    from rewriter.commands import runtime_config

    raise typer.Exit(runtime_config.run(format, output_dir, no_fallback, config, preset))


def main(argv: Sequence[str] | None = None) -> int:
    """Run kmirror with `argv` (default: the process arguments) through typer; return the exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    return console.guarded(lambda: _typer(args), debug="--debug" in args)


class _PlainArgument(TyperArgument):
    """An argument shown by its metavar alone (`PATH...`), not as `{PATH...}...` with `<list[str]>`."""

    def get_usage_pieces(self, ctx: Any) -> list[str]:
        name = self.metavar or self.name or ""
        return [name if self.required or name.startswith("[") else f"[{name}]"]

    def display_type_rich(self, ctx: Any) -> str | None:
        return None


def _command() -> TyperGroup:
    """kmirror's command group, built by typer, its arguments shown plainly."""
    command = typer.main.get_command(app)  # with the completion options, which get_group leaves out
    assert isinstance(command, TyperGroup)
    for sub in [command, *command.commands.values()]:
        for param in sub.params:
            if type(param) is TyperArgument:
                param.__class__ = _PlainArgument
    return command


def _typer(args: list[str]) -> int:
    try:
        result = _command().main(args, prog_name="kmirror", standalone_mode=False)
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
