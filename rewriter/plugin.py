"""kmirror as a kustomize legacy exec transformer plugin, and the command that installs it.

kustomize (`kustomize build --enable-alpha-plugins`, `kubectl kustomize --enable-alpha-plugins`)
runs the executable `<plugin root>/kmirror.dev/v1/imagemirror/ImageMirror` for a transformer
config of `apiVersion: kmirror.dev/v1`, `kind: ImageMirror` (see rewriter/krm.py). Its contract
(kustomize v5, api/internal/plugins/execplugin):

- argv[1] is a temporary file holding the transformer config (re-serialised by kustomize);
- standard input is every resource as one YAML stream, each carrying the annotation
  `kustomize.config.k8s.io/id`, which kustomize needs back to match the output;
- the working folder is the kustomization's folder;
- standard output replaces the resources; a non-zero exit fails the build, and kustomize
  shows the plugin's standard error only then (it drops it on success).

So the plugin fails (exit 1, nothing on standard output) when a reference on a blocked
registry or one it cannot rewrite remains: a warning would never be seen.

The plugin root is where kustomize looks first: `$KUSTOMIZE_PLUGIN_HOME` (its first entry),
else `$XDG_CONFIG_HOME/kustomize/plugin`, else `$HOME/.config/kustomize/plugin`.
"""

from __future__ import annotations

import os
import shlex
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from rewriter import console
from rewriter.console import EXIT_FINDINGS, EXIT_OK
from rewriter.errors import KmirrorError
from rewriter.files import STDIN, read, read_text
from rewriter.findings import Finding
from rewriter.krm import API_VERSION, KIND, load_image_mirror
from rewriter.pipeline import Outcome, process

PLUGIN_PATH = Path(*API_VERSION.split("/"), KIND.lower(), KIND)


def plugin_root(env: Mapping[str, str]) -> Path:
    """The folder kustomize searches first for exec plugins, under the environment `env`."""
    if env.get("KUSTOMIZE_PLUGIN_HOME"):
        return Path(env["KUSTOMIZE_PLUGIN_HOME"].split(os.pathsep)[0])
    if env.get("XDG_CONFIG_HOME"):
        return Path(env["XDG_CONFIG_HOME"], "kustomize", "plugin")
    if env.get("HOME"):
        return Path(env["HOME"], ".config", "kustomize", "plugin")
    raise KmirrorError("cannot install: kustomize plugin: none of KUSTOMIZE_PLUGIN_HOME, XDG_CONFIG_HOME, HOME is set")


def plugin_script(python: str) -> str:
    """The executable's text: a shell script that runs this module with interpreter `python`."""
    from rewriter import __version__  # read only here: the plugin runs on every kustomize build

    # -P: do not put the working folder (the kustomization's) first on sys.path.
    return (
        "#!/bin/sh\n"
        f"# kustomize exec transformer for apiVersion {API_VERSION}, kind {KIND}.\n"
        f"# Installed by 'kmirror install-kustomize-plugin' (kmirror {__version__}); run it again after moving kmirror.\n"
        f"exec {shlex.quote(python)} -P -m rewriter.plugin \"$@\"\n"
    )


def install(root: Path, python: str) -> Path:
    """Write the plugin executable under `root` (replacing an older one) and return its path."""
    target = root / PLUGIN_PATH
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_name(f".{KIND}.kmirror")
        temporary.write_text(plugin_script(python), encoding="utf-8")
        temporary.chmod(0o755)
        temporary.replace(target)
    except OSError as exc:
        raise KmirrorError(f"cannot install: {target}: {exc.strerror or exc}") from None
    return target


def transform(config_text: str, config_name: str, resources: bytes) -> Outcome:
    """Rewrite the resources with the rules of the ImageMirror in `config_text`."""
    return process(resources, "(kustomize resources)", load_image_mirror(config_text, config_name))


def _describe(finding: Finding) -> str:
    return f"{KIND}: {finding.resource}: {finding.path}: {finding.code} {finding.message}"


def main(argv: Sequence[str] | None = None) -> int:
    """Run as kustomize runs the plugin: `ImageMirror CONFIG_FILE`, resources on standard input."""
    args = list(sys.argv[1:] if argv is None else argv)
    return console.guarded(lambda: _transform_stdin(args), debug=False, hint="")  # kustomize passes no --debug


def _transform_stdin(args: list[str]) -> int:
    if len(args) != 1:
        raise KmirrorError(f"usage: {KIND} CONFIG_FILE: kustomize runs this plugin with one argument, got {len(args)}")
    outcome = transform(read_text(args[0], "config"), "transformer config", read(STDIN))
    failures = outcome.findings(after_rewrite=True)
    if failures:
        for finding in failures:
            console.err(_describe(finding))
        console.err(f"kmirror: {console.count(len(failures), 'image reference')} cannot be mirrored; see above")
        return EXIT_FINDINGS
    console.write(outcome.output)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
