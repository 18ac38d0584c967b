"""Runtime mirror configuration (containerd, kind, k3s, CRI-O, Docker, Talos, kubeadm) from the rules.

A runtime mirror works per registry host: when a node pulls `<host>/<repository>`, the runtime
asks the mirror endpoint instead, optionally under a path prefix, and falls back to the host
itself when the mirror fails. The rules are first turned into *entries*: for each source
namespace that matters (a rule's `from`, an alias, or an alias of a rule's `from`), what
kmirror does to every image under it that no more specific entry covers. This is computed
with the same first-match order as `RuleSet.decide`, so each entry says exactly what the
manifests get. Each format then writes the entries it can express and lists the others as
warnings: an entry is never dropped silently.

The rules file's `registries:` reach every format: a host with `plain_http` gets `http://`
endpoints (or the format's "insecure" switch), `ca_file` and `skip_verify` the format's TLS
settings, or a warning saying where the CA must go. With `no_fallback` a pull never goes to
the upstream registry: where the format can say so (containerd's `server` is the mirror,
Talos `skipFallback`, CRI-O's `location` is the mirror), else as a warning.

Shapes of entries, by how the mirrored repository is built from the rest of the source path:
`prefix` (mirror path + rest), `flatten` (mirror path + last component), `template` (any other
arrangement, from a rule with placeholders), `keep` (the image is left unchanged).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rewriter.config import Config, RegistrySettings, settings_for
from rewriter.errors import KmirrorError
from rewriter.files import write_atomic
from rewriter.reference import DOCKER_HUB, DOCKER_HUB_ALIASES, ImageRef, ReferenceError, parse
from rewriter.rules import Prefix, Rule, RuleSet

FORMATS = ("containerd-hosts", "containerd-config", "kind", "k3s", "crio", "docker", "talos", "kubeadm")
MULTI_FILE = frozenset({"containerd-hosts", "kind"})
DOCKER_HUB_ENDPOINT = "registry-1.docker.io"
KUBEADM_REGISTRY = "registry.k8s.io"
# What kubeadm pulls from its image repository (kubeadm config images list); tags travel unchanged.
KUBEADM_IMAGES = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kube-proxy", "pause", "etcd")
KUBEADM_SAMPLE_TAG = "v1.31.0"
COREDNS_PATH = "coredns/coredns"
# Stand-ins, in a target path, for the source path's rest, its last component, and the rest joined with '.'.
_REST, _NAME, _DOTTED = "\x00rest\x00", "\x00name\x00", "\x00dotted\x00"


@dataclass(frozen=True)
class Site:
    """How nodes reach registries (`registries:`), and whether a pull may fall back to the upstream registry."""

    registries: tuple[RegistrySettings, ...] = ()
    no_fallback: bool = False

    def settings(self, host: str) -> RegistrySettings:
        """The settings of registry `host` (normalised: `docker.io`, not its endpoint)."""
        return settings_for(self.registries, host)

    def scheme(self, host: str) -> str:
        """`http` for a host reached over plain HTTP, else `https`."""
        return "http" if self.settings(host).plain_http else "https"

    def insecure(self, host: str) -> bool:
        """True when the host is reached over plain HTTP or without verifying its certificate."""
        settings = self.settings(host)
        return settings.plain_http or settings.skip_verify


@dataclass(frozen=True)
class RuntimeConfig:
    """The files of one format (relative path -> text) and what the format cannot express."""

    files: dict[str, str]
    warnings: list[str]


@dataclass(frozen=True)
class Target:
    """Where a source namespace is mirrored: a registry host and a path pattern.

    `path` is a tuple of components; a component may contain the stand-ins for the
    rest of the source path and for its last component. `shape` names the common cases.
    """

    host: str
    path: tuple[str, ...]

    @property
    def shape(self) -> str:
        """`prefix` (constant path, then the rest), `flatten` (constant path, then the name) or `template`."""
        *head, last = self.path or ("",)
        if any(_REST in c or _NAME in c or _DOTTED in c for c in head):
            return "template"
        return {_REST: "prefix", _NAME: "flatten"}.get(last, "template")

    @property
    def constant(self) -> tuple[str, ...]:
        """The path components before the rest (or the name), for `prefix` and `flatten`."""
        return self.path[:-1]

    @property
    def endpoint_host(self) -> str:
        """The host a runtime connects to (Docker Hub is served by registry-1.docker.io)."""
        return DOCKER_HUB_ENDPOINT if self.host == DOCKER_HUB else self.host


@dataclass(frozen=True)
class Entry:
    """What the rules do to every image under `source` not covered by a more specific entry.

    `target` is None when such images are left unchanged (a `keep` rule, or no rule).
    """

    source: Prefix
    target: Target | None
    rule: Rule | None
    alias: tuple[Prefix, Prefix] | None

    @property
    def label(self) -> str:
        """How warnings name this entry: the deciding rule, and the source and alias when they differ from it."""
        rule = f"rule '{self.rule.describe()}'" if self.rule is not None else "no rule"
        if self.alias is not None:
            return f"{self.source} (alias of {self.alias[1]}; {rule})"
        return rule

    @property
    def host_level(self) -> bool:
        """True when the entry covers a whole registry host."""
        return not self.source.components


def runtime_config(config: Config, format: str, no_fallback: bool = False) -> RuntimeConfig:
    """The files of `format` for the rules and `registries:` of `config`; KmirrorError for an unknown format.

    With `no_fallback`, pulls must never leave for the upstream registries.
    """
    writer = _WRITERS.get(format)
    if writer is None:
        raise KmirrorError(f"invalid option: --format: {format!r}: choose one of {', '.join(FORMATS)}")
    files, warnings = writer(config.rules, Site(config.registries, no_fallback))
    return RuntimeConfig(files=files, warnings=[f"{format}: {w}" for w in warnings])


# --- writing under --output-dir ------------------------------------------------------------------

RECORD = ".kmirror-runtime-config.json"  # what the last run wrote: {"files": {relative path: sha256}}


def write_output(folder: Path, files: dict[str, str]) -> list[str]:
    """Write `files` under `folder` (atomically, folders created); remove the stale files an earlier run wrote.

    A file is removed only when the record in `folder` says kmirror wrote it and it still has
    the content kmirror wrote (a file edited since, or never written by kmirror, is kept), and
    only when this run does not write it; folders left empty by a removal are removed too.
    Returns the removed files, relative to `folder`.
    """
    record = folder / RECORD
    try:
        earlier = json.loads(record.read_text(encoding="utf-8")).get("files", {})
    except (OSError, ValueError, AttributeError):
        earlier = {}
    for relative, text in files.items():
        _write(folder / relative, text)
    removed = []
    for relative, digest in sorted(earlier.items()) if isinstance(earlier, dict) else ():
        target = folder / relative
        if relative in files or Path(relative).is_absolute() or ".." in Path(relative).parts or not _written_as(target, digest):
            continue
        target.unlink()
        removed.append(relative)
        for parent in target.relative_to(folder).parents[:-1]:
            try:
                (folder / parent).rmdir()
            except OSError:  # not empty
                break
    wrote = {relative: hashlib.sha256(text.encode()).hexdigest() for relative, text in files.items()}
    _write(record, json.dumps({"files": wrote}, indent=2) + "\n")
    return removed


def _written_as(path: Path, digest: object) -> bool:
    try:
        return isinstance(digest, str) and path.is_file() and hashlib.sha256(path.read_bytes()).hexdigest() == digest
    except OSError:
        return False


def _write(target: Path, text: str) -> None:
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.touch(mode=0o644, exist_ok=True)  # write_atomic replaces an existing file only
    except OSError as exc:
        raise KmirrorError(f"cannot write: {target}: {exc.strerror or exc}") from None
    write_atomic(str(target), text)


# --- entries -----------------------------------------------------------------------------------


def entries(rules: RuleSet) -> list[Entry]:
    """The entries of `rules`, most general first within each host, redundant ones removed."""
    candidates: list[Prefix] = []
    for prefix in _candidate_prefixes(rules):
        if prefix not in candidates:
            candidates.append(prefix)
    result: list[Entry] = []
    for source in candidates:
        entry = _evaluate(rules, source)
        parent = _nearest_cover(source, candidates)
        if parent is None:
            if entry.target is not None:
                result.append(entry)
            continue
        decided = _evaluate(rules, parent)
        if (decided.rule, decided.alias) != (entry.rule, entry.alias):
            result.append(entry)
    hosts = list(dict.fromkeys(c.registry for c in candidates))
    return sorted(result, key=lambda e: (hosts.index(e.source.registry), len(e.source.components), candidates.index(e.source)))


def exact_rules(rules: RuleSet) -> list[Rule]:
    """The exact-image rules that apply to their own image (not shadowed by an earlier rule, nor refused on it)."""
    return [r for r in rules.rules if r.exact is not None and _applies_to_itself(rules, r.exact, r)]


def _applies_to_itself(rules: RuleSet, image: ImageRef, rule: Rule) -> bool:
    try:
        return rules.decide(image).rule is rule
    except ReferenceError:  # the rule would drop the digest it names: it rewrites nothing
        return False


def _candidate_prefixes(rules: RuleSet) -> list[Prefix]:
    found = [r.prefix for r in rules.rules if r.prefix is not None]
    for alias, target in rules.aliases:
        found.append(alias)
        for prefix in list(found):
            if _covers(target, prefix) and prefix != target:
                found.append(Prefix(alias.registry, alias.components + prefix.components[len(target.components) :]))
    return found


def _covers(outer: Prefix, inner: Prefix) -> bool:
    n = len(outer.components)
    return outer.registry == inner.registry and inner.components[:n] == outer.components


def _nearest_cover(source: Prefix, candidates: list[Prefix]) -> Prefix | None:
    covers = [c for c in candidates if c != source and _covers(c, source)]
    return max(covers, key=lambda c: len(c.components), default=None)


def _evaluate(rules: RuleSet, source: Prefix) -> Entry:
    """Decide, as RuleSet.decide does, for an image under `source` and under no more specific candidate."""
    alias = next(((a, t) for a, t in rules.aliases if _covers(a, source)), None)
    canonical = source
    if alias is not None:
        canonical = Prefix(alias[1].registry, alias[1].components + source.components[len(alias[0].components) :])
    for rule in rules.rules:
        if rule.prefix is None or not _covers(rule.prefix, canonical):
            continue
        if rule.to is None:
            return Entry(source, None, rule, alias)
        extra = canonical.components[len(rule.prefix.components) :]
        return Entry(source, _target(rule, canonical, extra), rule, alias)
    return Entry(source, None, None, alias)


def _target(rule: Rule, canonical: Prefix, extra: tuple[str, ...]) -> Target:
    assert rule.to is not None
    rest = "/".join((*extra, _REST))
    if "{" in rule.to:
        values = {
            "registry": canonical.registry,
            "repository": "/".join((*canonical.components, _REST)),
            "path": rest,
            "name": _NAME,
            "path_dotted": ".".join((*extra, _DOTTED)),
        }
        text = re.sub(r"\{([a-z_]+)\}", lambda m: values[m.group(1)], rule.to)
    elif rule.flatten:
        text = f"{rule.to}/{_NAME}"
    else:
        text = f"{rule.to}/{rest}"
    first, _, path = text.partition("/")
    if "." in first or ":" in first or first == "localhost":
        host = first.lower()
    else:
        host, path = DOCKER_HUB, text
    host = DOCKER_HUB if host in DOCKER_HUB_ALIASES else host
    return Target(host, tuple(path.split("/")))


# --- shared helpers for the per-host formats ------------------------------------------------


@dataclass(frozen=True)
class HostMirror:
    """One registry host's mirror endpoint: `https://<host>` plus a path (empty: the registry root)."""

    source: str
    entry: Entry
    path: tuple[str, ...]
    scheme: str = "https"

    @property
    def endpoint(self) -> str:
        """The endpoint URL as a hosts.toml or CRI config wants it (`/v2/<path>` when there is a path)."""
        return f"{self.root}/v2/{'/'.join(self.path)}" if self.path else self.root

    @property
    def root(self) -> str:
        """The endpoint without `/v2` (`https://<host>`, `http://` for a plain-HTTP mirror)."""
        return f"{self.scheme}://{self.target.endpoint_host}"

    @property
    def target(self) -> Target:
        """Where the mirror is."""
        assert self.entry.target is not None
        return self.entry.target


def _host_mirrors(rules: RuleSet, site: Site, what: str, only: str | None = None) -> tuple[list[HostMirror], list[str]]:
    """Whole-host mirrors with an optional path prefix; warnings for everything else.

    `what` names the format in warnings (`containerd hosts.toml`); `only` restricts the
    mirrors to one registry host, every rule for another host becoming a warning.
    """
    mirrors: list[HostMirror] = []
    warnings: list[str] = []
    found = entries(rules)
    if only is not None:
        for entry in found:
            if entry.source.registry != only and entry.target is not None:
                warnings.append(f"{entry.label}: {what} applies to {only} (Docker Hub) only; not expressed")
        found = [e for e in found if e.source.registry == only]
    for entry in found:
        target = entry.target
        if not entry.host_level or target is None:
            continue
        if target.shape == "template":
            warnings.append(f"{entry.label}: {what} cannot rearrange repository paths (templates); not expressed")
            continue
        if target.shape == "flatten":
            warnings.append(
                f"{entry.label}: {what} cannot flatten paths; mirrored as the prefix "
                f"{'/'.join((target.host, *target.constant))}, which is right only for images one component "
                f"below {entry.source}"
            )
        mirrors.append(HostMirror(entry.source.registry, entry, target.constant, site.scheme(target.host)))
    mirrored = {m.source for m in mirrors}
    for entry in found:
        if entry.host_level:
            continue
        if entry.target is not None:
            warnings.append(f"{entry.label}: {what} configures whole registries, not paths under them; not expressed")
        elif entry.source.registry in mirrored:
            warnings.append(
                f"{entry.label}: {what} configures whole registries, so images under {entry.source} are also "
                f"tried on the {entry.source.registry} mirror first"
            )
    for rule in exact_rules(rules):
        warnings.append(f"rule '{rule.describe()}': {what} cannot mirror single images or tags; not expressed")
    return mirrors, warnings


def _toml(text: str) -> str:
    """A TOML basic string."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + "".join(c if c >= " " and c != "\x7f" else f"\\u{ord(c):04x}" for c in escaped) + '"'


def _yaml(text: str) -> str:
    """A YAML double-quoted scalar (JSON's string syntax is a subset of it)."""
    return json.dumps(text)


def _hosts_toml(mirror: HostMirror, site: Site) -> str:
    server = DOCKER_HUB_ENDPOINT if mirror.source == DOCKER_HUB else mirror.source
    lines = [f"# kmirror: {mirror.entry.label}"]
    if site.no_fallback:
        # The server is the last host containerd tries (the upstream when not set): the mirror, then.
        lines += [f"# --no-fallback: the server is the mirror, so containerd never asks {mirror.source}"]
        lines += [f"server = {_toml(mirror.endpoint)}", *_host_settings(mirror, site, "")]
    else:
        lines += [f"server = {_toml(site.scheme(mirror.source) + '://' + server)}", *_tls_settings(site.settings(mirror.source), "")]
    lines += ["", f"[host.{_toml(mirror.endpoint)}]", *_host_settings(mirror, site, "  ")]
    return "\n".join(lines) + "\n"


def _host_settings(mirror: HostMirror, site: Site, indent: str) -> list[str]:
    lines = [f'{indent}capabilities = ["pull", "resolve"]']
    if mirror.path:
        lines.append(f"{indent}override_path = true")
    return lines + _tls_settings(site.settings(mirror.target.host), indent)


def _tls_settings(settings: RegistrySettings, indent: str) -> list[str]:
    """hosts.toml's `ca` and `skip_verify` for a host."""
    lines = [f"{indent}ca = {_toml(settings.ca_file)}"] if settings.ca_file else []
    return lines + [f"{indent}skip_verify = true"] if settings.skip_verify else lines


def _ca_warnings(hosts: list[str], site: Site, where: str) -> list[str]:
    """For formats that take no CA file: where each host's `ca_file` must be copied instead."""
    return [
        f"registries: {host}: ca_file: this format names no CA; copy {ca} to {where.format(host=host)}"
        for host in dict.fromkeys(hosts) if (ca := site.settings(host).ca_file)
    ]


def _read_ca(path: str) -> str:
    try:
        with open(path, "rb") as ca:
            return base64.b64encode(ca.read()).decode()
    except OSError as exc:
        raise KmirrorError(f"cannot read CA file: {path}: {exc.strerror or exc}") from None


# --- formats -----------------------------------------------------------------------------------


def _containerd_hosts(rules: RuleSet, site: Site) -> tuple[dict[str, str], list[str]]:
    mirrors, warnings = _host_mirrors(rules, site, "containerd hosts.toml")
    return {f"{m.source}/hosts.toml": _hosts_toml(m, site) for m in mirrors}, warnings


def _containerd_config(rules: RuleSet, site: Site) -> tuple[dict[str, str], list[str]]:
    mirrors, warnings = _host_mirrors(rules, site, "containerd's CRI registry.mirrors")
    lines = [
        "# containerd CRI registry mirrors from kmirror: merge into /etc/containerd/config.toml.",
        "# Deprecated since containerd 1.5 and refused when config_path is set or from containerd 2.2 on;",
        "# prefer kmirror runtime-config --format containerd-hosts.",
        "version = 2",
    ]
    for m in mirrors:
        lines += [
            "",
            f"# {m.entry.label}",
            f'[plugins."io.containerd.grpc.v1.cri".registry.mirrors.{_toml(m.source)}]',
            f"  endpoint = [{_toml(m.endpoint)}]",
        ]
    for host in dict.fromkeys([m.target.host for m in mirrors] + [m.source for m in mirrors]):
        settings = site.settings(host)
        if settings.ca_file or settings.skip_verify:
            lines += ["", f'[plugins."io.containerd.grpc.v1.cri".registry.configs.{_toml(host)}.tls]']
            lines += [f"  ca_file = {_toml(settings.ca_file)}"] if settings.ca_file else []
            lines += ["  insecure_skip_verify = true"] if settings.skip_verify else []
    if site.no_fallback and mirrors:
        warnings.append("--no-fallback: containerd's CRI registry.mirrors always tries the upstream registry last; use containerd-hosts")
    return {"config.toml": "\n".join(lines) + "\n"}, warnings


def _kind(rules: RuleSet, site: Site) -> tuple[dict[str, str], list[str]]:
    # kind node images from v0.27 on (containerd 2) set config_path and refuse registry.mirrors,
    # so mirrors go in hosts.toml files mounted into each node; the patch enables them on older images.
    mirrors, warnings = _host_mirrors(rules, site, "containerd hosts.toml (kind)")
    files = {f"certs.d/{m.source}/hosts.toml": _hosts_toml(m, site) for m in mirrors}
    lines = [
        "# kind cluster configuration from kmirror. Create the cluster from this folder:",
        "#   kind create cluster --config kind-config.yaml",
        "# (kind resolves a relative hostPath against the current folder). Copy extraMounts to every node.",
        "kind: Cluster",
        "apiVersion: kind.x-k8s.io/v1alpha4",
        "containerdConfigPatches:",
        "  - |-",
        '    [plugins."io.containerd.grpc.v1.cri".registry]',
        '      config_path = "/etc/containerd/certs.d"',
        "nodes:",
        "  - role: control-plane",
    ]
    if mirrors:
        lines.append("    extraMounts:")
    for m in mirrors:
        lines += [
            f"      - hostPath: {_yaml('./certs.d/' + m.source)}",
            f"        containerPath: {_yaml('/etc/containerd/certs.d/' + m.source)}",
            "        readOnly: true",
        ]
    # hosts.toml names each CA by its path on this machine: the same path in the node.
    for ca in dict.fromkeys(c for m in mirrors for h in (m.source, m.target.host) if (c := site.settings(h).ca_file)):
        lines += [f"      - hostPath: {_yaml(ca)}", f"        containerPath: {_yaml(ca)}", "        readOnly: true"]
    files["kind-config.yaml"] = "\n".join(lines) + "\n"
    return files, warnings


def _talos(rules: RuleSet, site: Site) -> tuple[dict[str, str], list[str]]:
    mirrors, warnings = _host_mirrors(rules, site, "Talos registry mirrors")
    lines = [
        "# Talos machine configuration patch from kmirror:",
        "#   talosctl gen config NAME ENDPOINT --config-patch @talos-registries.yaml",
        "machine:",
        "  registries:",
        "    mirrors:" if mirrors else "    mirrors: {}",
    ]
    for m in mirrors:
        lines += [
            f"      # {m.entry.label}",
            f"      {_yaml(m.source)}:",
            "        endpoints:",
            f"          - {_yaml(m.endpoint)}",
        ]
        if m.path:
            lines.append("        overridePath: true")
        if site.no_fallback:
            lines.append("        skipFallback: true")
    tls = [h for h in dict.fromkeys([m.target.endpoint_host for m in mirrors]) if _talos_tls(site, h)]
    if tls:
        lines.append("    config:")
    for host in tls:
        lines += [f"      {_yaml(host)}:", "        tls:", *_talos_tls(site, host)]
    return {"talos-registries.yaml": "\n".join(lines) + "\n"}, warnings


def _talos_tls(site: Site, endpoint_host: str) -> list[str]:
    """Talos's `tls` settings for a mirror (`ca` is the certificate itself, base64-encoded)."""
    settings = site.settings(DOCKER_HUB if endpoint_host == DOCKER_HUB_ENDPOINT else endpoint_host)
    lines = ["          insecureSkipVerify: true"] if settings.skip_verify else []
    return lines + [f"          ca: {_yaml(_read_ca(settings.ca_file))}"] if settings.ca_file else lines


def _docker(rules: RuleSet, site: Site) -> tuple[dict[str, str], list[str]]:
    mirrors, warnings = _host_mirrors(rules, site, "Docker's registry-mirrors", only=DOCKER_HUB)
    urls: list[str] = []
    for m in mirrors:
        if m.path:
            warnings.append(
                f"{m.entry.label}: Docker's registry-mirrors must be a registry root, and "
                f"{'/'.join((m.entry.target.host, *m.path))} has a path; not expressed"  # type: ignore[union-attr]
            )
        else:
            urls.append(m.root)
    daemon: dict[str, list[str]] = {"registry-mirrors": urls}
    insecure = [m.target.endpoint_host for m in mirrors if not m.path and site.insecure(m.target.host)]
    if insecure:  # Docker talks HTTP, or skips verification, only to the hosts listed here
        daemon["insecure-registries"] = list(dict.fromkeys(insecure))
    warnings += _ca_warnings([m.target.host for m in mirrors if not m.path], site, "/etc/docker/certs.d/{host}/ca.crt")
    if site.no_fallback and urls:
        warnings.append("--no-fallback: Docker always falls back to Docker Hub when its registry-mirrors fail; not expressed")
    return {"daemon.json": json.dumps(daemon, indent=2) + "\n"}, warnings


def _crio(rules: RuleSet, site: Site) -> tuple[dict[str, str], list[str]]:
    lines = [
        "# containers-registries.conf(5) from kmirror, for CRI-O, podman, skopeo and buildah:",
        "# save as /etc/containers/registries.conf.d/50-kmirror.conf. The longest matching prefix wins.",
    ]
    warnings: list[str] = []
    for entry in entries(rules):
        target = entry.target
        if target is not None and target.shape == "template":
            warnings.append(f"{entry.label}: registries.conf cannot rearrange repository paths (templates); not expressed")
            continue
        if target is not None and target.shape == "flatten":
            warnings.append(
                f"{entry.label}: registries.conf cannot flatten paths; mirrored as the prefix "
                f"{'/'.join((target.host, *target.constant))}, which is right only for images one component "
                f"below {entry.source}"
            )
        mirror = _toml("/".join((target.host, *target.constant))) if target is not None else None
        lines += ["", f"# {entry.label}", "[[registry]]", f"prefix = {_toml(str(entry.source))}"]
        if mirror is not None and site.no_fallback:
            # --no-fallback: the mirror is the location itself, so the source is never asked.
            lines += [f"location = {mirror}", *_crio_insecure(site, target.host if target is not None else "")]
            continue
        lines += [f"location = {_toml(str(entry.source))}", *_crio_insecure(site, entry.source.registry)]
        if mirror is not None and target is not None:
            lines += ["", "[[registry.mirror]]", f"location = {mirror}", *_crio_insecure(site, target.host)]
    for rule in exact_rules(rules):
        warnings.append(f"rule '{rule.describe()}': registries.conf mirrors namespaces, not single tags; not expressed")
    hosts = [h for e in entries(rules) for h in (e.source.registry, e.target.host if e.target else "") if h]
    warnings += _ca_warnings(hosts, site, "/etc/containers/certs.d/{host}/ca.crt")
    return {"registries.conf": "\n".join(lines) + "\n"}, warnings


def _crio_insecure(site: Site, host: str) -> list[str]:
    return ["insecure = true"] if site.insecure(host) else []


def _k3s(rules: RuleSet, site: Site) -> tuple[dict[str, str], list[str]]:
    lines = [
        "# k3s registries.yaml from kmirror: save as /etc/rancher/k3s/registries.yaml on every node,",
        "# then restart k3s (or k3s-agent).",
    ]
    warnings: list[str] = []
    body: list[str] = []
    by_host: dict[str, list[Entry]] = {}
    for entry in entries(rules):
        by_host.setdefault(entry.source.registry, []).append(entry)
    for host, group in by_host.items():
        block, notes = _k3s_mirror(host, group, site)
        body += block
        warnings += notes
    for rule in exact_rules(rules):
        warnings.append(f"rule '{rule.describe()}': k3s rewrites match repository names, not tags; not expressed")
    lines.append("mirrors:" if body else "mirrors: {}")
    targets = dict.fromkeys(e.target for e in entries(rules) if e.target is not None)
    tls = {t.endpoint_host: site.settings(t.host) for t in targets if site.settings(t.host).ca_file or site.settings(t.host).skip_verify}
    if tls:
        body.append("configs:")
    for endpoint, settings in tls.items():
        body += [f"  {_yaml(endpoint)}:", "    tls:"]
        body += [f"      ca_file: {_yaml(settings.ca_file)}"] if settings.ca_file else []
        body += ["      insecure_skip_verify: true"] if settings.skip_verify else []
    if site.no_fallback and by_host:
        warnings.append("--no-fallback: registries.yaml cannot turn off the fallback: start k3s (and k3s agent) with --disable-default-registry-endpoint")
    return {"registries.yaml": "\n".join(lines + body) + "\n"}, warnings


def _k3s_mirror(host: str, group: list[Entry], site: Site) -> tuple[list[str], list[str]]:
    """One `mirrors.<host>` block: a single endpoint host, rewrites that never overlap."""
    warnings: list[str] = []
    mapped = [e for e in group if e.target is not None]
    if not mapped:
        return [], []
    chosen = next((e for e in mapped if e.host_level), mapped[0]).target
    assert chosen is not None
    endpoint = chosen.endpoint_host
    expressed: list[tuple[Entry, tuple[str, str] | None]] = []
    for entry in mapped:
        assert entry.target is not None
        rewrite = _k3s_rewrite(entry)
        if entry.target.endpoint_host != endpoint:
            warnings.append(f"{entry.label}: k3s sends all of {host} to one mirror host ({endpoint}); not expressed")
        elif rewrite == ("", ""):
            expressed.append((entry, None))
        elif rewrite is None:
            warnings.append(f"{entry.label}: a k3s rewrite cannot join path components with '.' or set a tag; not expressed")
        else:
            expressed.append((entry, rewrite))
    if any(e.host_level and r is not None for e, r in expressed) and len(expressed) > 1:
        # k3s tries a mirror's rewrites in no fixed order: one that matches every image must stand alone.
        for entry, _ in expressed:
            if not entry.host_level:
                warnings.append(f"{entry.label}: k3s cannot order rewrites, and {host}'s rule rewrites every image; not expressed")
        expressed = [(e, r) for e, r in expressed if e.host_level]
    if not expressed:
        return [], warnings
    for entry in group:
        if entry.target is None and not entry.host_level:
            warnings.append(
                f"{entry.label}: k3s mirrors whole registries, so images under {entry.source} are also tried on {endpoint} first"
            )
    if not any(e.host_level for e, _ in expressed):
        covered = ", ".join(str(e.source) for e, _ in expressed)
        warnings.append(
            f"{host}: k3s mirrors whole registries, so images outside {covered} are also requested from {endpoint} "
            f"under their own name before {host}"
        )
    block = [f"  # {e.label}" for e, _ in expressed]
    block += [f"  {_yaml(host)}:", "    endpoint:", f"      - {_yaml(site.scheme(chosen.host) + '://' + endpoint)}"]
    rewrites = [r for _, r in expressed if r is not None]
    if rewrites:
        block.append("    rewrite:")
        block += [f"      {_yaml(pattern)}: {_yaml(replacement)}" for pattern, replacement in rewrites]
    return block, warnings


def _k3s_rewrite(entry: Entry) -> tuple[str, str] | None:
    """(regular expression, replacement) on the repository path; ("", "") when none is needed; None if impossible."""
    assert entry.target is not None
    path = "/".join(entry.target.path)
    if _DOTTED in path or ":" in path or "@" in path:  # '.'-joined paths; tags are beyond rewrites
        return None
    if entry.target.shape == "prefix" and not entry.target.constant and not entry.source.components:
        return "", ""
    head = "".join(c.replace(".", "\\.") + "/" for c in entry.source.components)
    pattern = f"^{head}((?:.*/)?([^/]+))$" if _NAME in path else f"^{head}(.*)$"
    return pattern, path.replace(_REST, "${1}").replace(_NAME, "${2}")


def _kubeadm(rules: RuleSet, site: Site) -> tuple[dict[str, str], list[str]]:
    warnings: list[str] = []
    repository = _kubeadm_repository(rules, KUBEADM_IMAGES)
    dns = _kubeadm_repository(rules, (COREDNS_PATH,))
    if repository is None:
        warnings.append(
            f"the rules do not map {KUBEADM_REGISTRY}/<name> to one <repository>/<name> for {', '.join(KUBEADM_IMAGES)}; "
            "imageRepository not set"
        )
    if dns is None:
        warnings.append(f"the rules do not map {KUBEADM_REGISTRY}/{COREDNS_PATH} to <repository>/coredns; dns.imageRepository not set")
    if repository == KUBEADM_REGISTRY:
        warnings.append(f"no rule maps {KUBEADM_REGISTRY}: kubeadm keeps pulling from it")
    lines = [
        "# kubeadm ClusterConfiguration from kmirror: merge into your kubeadm configuration",
        "# (kubeadm init --config FILE; for kubeadm before 1.31 use apiVersion kubeadm.k8s.io/v1beta3).",
        "apiVersion: kubeadm.k8s.io/v1beta4",
        "kind: ClusterConfiguration",
    ]
    if repository is not None:
        lines.append(f"imageRepository: {_yaml(repository)}")
    if dns is not None:
        lines += ["dns:", f"  imageRepository: {_yaml(dns)}"]
    return {"kubeadm-config.yaml": "\n".join(lines) + "\n"}, warnings


def _kubeadm_repository(rules: RuleSet, paths: tuple[str, ...]) -> str | None:
    """The repository R such that every `registry.k8s.io/<path>` maps to `R/<last component>`, if any."""
    found: set[str] = set()
    for path in paths:
        final = rules.decide(parse(f"{KUBEADM_REGISTRY}/{path}:{KUBEADM_SAMPLE_TAG}")).final
        name = path.rsplit("/", 1)[-1]
        written = f"{final.domain}/{final.path}" if final.domain is not None else final.path
        if not written.endswith("/" + name):
            return None
        found.add(written[: -len(name) - 1])
    return found.pop() if len(found) == 1 else None


_WRITERS: dict[str, Callable[[RuleSet, Site], tuple[dict[str, str], list[str]]]] = {
    "containerd-hosts": _containerd_hosts,
    "containerd-config": _containerd_config,
    "kind": _kind,
    "k3s": _k3s,
    "crio": _crio,
    "docker": _docker,
    "talos": _talos,
    "kubeadm": _kubeadm,
}
