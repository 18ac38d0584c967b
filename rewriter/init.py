"""Starter rules files for `kmirror init`: options in, the text of a commented `.kmirror.yaml` out.

Two starters:

- `--registry HOST[/PATH]`: every common public registry goes behind your registry, under a
  path named after the upstream host (`docker.io` -> `HOST/docker.io`), the layout of one
  Harbor proxy-cache project per upstream registry; all of them are blocked.
- `--preset NAME` (default: the built-in default preset): `preset: NAME`, with commented
  examples of your own rules, `blocked` and `allow`.

Both load with `rewriter.config.parse_config`; the tests check it.
"""

from __future__ import annotations

from rewriter.config import CONFIG_NAME, DEFAULT_PRESET, load_preset
from rewriter.errors import KmirrorError
from rewriter.rules import RuleError, parse_prefix

#: The public registries `--registry` sends through your registry, most used first.
PUBLIC_REGISTRIES = (
    "docker.io",
    "ghcr.io",
    "quay.io",
    "registry.k8s.io",
    "k8s.gcr.io",
    "gcr.io",
    "mcr.microsoft.com",
    "public.ecr.aws",
)

#: Commented out in the preset starter; valid rules-file YAML once uncommented.
EXAMPLES = """\
mirrors:
  - from: quay.io/myorg             # a registry host, or a host and leading path components
    to: registry.example.com/myorg  # quay.io/myorg/app:1.0 -> registry.example.com/myorg/app:1.0
  - from: k8s.gcr.io
    to: registry.example.com/google_containers
    flatten: true                   # keep only the last path component of the rest
blocked: [docker.io, k8s.gcr.io]    # must not remain (default: every registry a rule rewrites)
allow:
  - quay.io/myorg/legacy-tool       # a path prefix or one exact image, never reported
"""


def _header(command: str) -> str:
    return f"""\
# kmirror rules file, written by `{command}`.
#
# kmirror reads the nearest {CONFIG_NAME} in the folder it runs in or above it: keep this
# file at the repository root, where pre-commit and CI run. kmirror changes image values
# only, never a tag or a digest. `kmirror explain IMAGE` shows what one reference becomes
# and why; `kmirror check PATH...` fails while references to blocked registries remain.
"""


def starter(preset: str | None = None, registry: str | None = None) -> str:
    """The text of a starter rules file for `--preset NAME` or `--registry HOST` (at most one).

    Neither: the default preset. Raise KmirrorError for both, an unknown preset or a
    registry that is not `host[:port][/path]`.
    """
    if preset is not None and registry is not None:
        raise KmirrorError("invalid options: --preset and --registry: choose one")
    if registry is not None:
        return _registry_starter(registry)
    return _preset_starter(preset or DEFAULT_PRESET, explicit=preset is not None)


def _registry_starter(registry: str) -> str:
    try:
        prefix = str(parse_prefix(registry))
    except RuleError as exc:
        raise KmirrorError(f"invalid option: --registry: {exc}") from None
    width = max(len(r) for r in PUBLIC_REGISTRIES)
    rules = "".join(f"  - {{from: {r + ',':{width + 1}} to: {prefix}/{r}}}\n" for r in PUBLIC_REGISTRIES)
    blocked = "".join(f"  - {r}\n" for r in PUBLIC_REGISTRIES)
    return (
        _header(f"kmirror init --registry {registry}")
        + f"""\
#
# Layout: each public registry sits behind {prefix} under a path named after it,
# like one Harbor proxy-cache project per upstream registry, named after its host:
#   nginx:1.25                -> {prefix}/docker.io/library/nginx:1.25
#   quay.io/jetstack/cert-manager-controller:v1.14.4
#                             -> {prefix}/quay.io/jetstack/cert-manager-controller:v1.14.4
# In Harbor, that is a registry endpoint and a proxy-cache project for each registry below,
# each project named after the registry's host. If your registry lays images out another
# way, change the `to` values; delete the registries you never use.
mirrors:                 # the first match wins
{rules}
# References left on these registries fail `kmirror check` and `kmirror --strict`.
blocked:
{blocked}
# Never report these as blocked (a registry path prefix or one exact image):
# allow:
#   - quay.io/myorg/legacy-tool
"""
    )


def _preset_starter(name: str, explicit: bool) -> str:
    preset = load_preset(name)
    command = f"kmirror init --preset {name}" if explicit else "kmirror init"
    examples = "".join(f"# {line}\n" if line else "#\n" for line in EXAMPLES.splitlines())
    return (
        _header(command)
        + f"""\
#
# Preset {name}: {preset.description}
#   scheme: {preset.scheme}; status: {preset.status} as of {preset.status_date}
#   source: {preset.source}
# `kmirror presets --all` lists every preset. The preset's rules apply after yours.
preset: {name}

# Your own rules go first, and the first match wins. Uncomment and edit, for example:
{examples}"""
    )
