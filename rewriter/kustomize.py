"""kustomize, the tool: run `kustomize build`, and speak its `images:` transformer.

Building: a standalone `kustomize` on PATH is preferred (`kustomize build DIR`), else
kubectl's built-in one (`kubectl kustomize DIR`). The command is an argument list, never
a shell line; a failed build becomes a KmirrorError showing the command, its exit code
and its standard error, indented. The build runs through rewriter.child: in a session of
its own, killed with everything it started when it outlives its time limit or prints too much.

The `images:` list (in a kustomization, or a Flux HelmRelease's
`postRenderers[].kustomize.images`) is what kustomize's image transformer reads
(api/filters/imagetag in kustomize v5). Its semantics, which `apply_entries` copies:

- an entry's `name` is a regular expression, anchored, followed by an optional `:tag`
  and `@digest`, matched against the whole value as written (no normalisation:
  `nginx` and `docker.io/library/nginx` are different names);
- only `image` fields of the items of `containers` and `initContainers` lists are
  visited (any depth, any kind except CustomResourceDefinition): not custom resources'
  own image fields, args, env values or annotations;
- `newName` replaces the name; `newTag` replaces the tag and drops the digest, `digest`
  replaces the digest and drops the tag, both set both;
- the entries apply one after the other, so a later entry sees earlier results.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from rewriter.child import Limits, executable, run
from rewriter.errors import KmirrorError, child_failure
from rewriter.kustomization import CARRIER, matches, split
from rewriter.plan import Image

_REACHED_RE = re.compile(r"(?:^|\.)(?:containers|initContainers)\[\d+\]\.image$")


def build_command(
    directory: str,
    enable_helm: bool,
    kustomize: str | None,
    extra: Sequence[str],
    which: Callable[[str], str | None] = shutil.which,
) -> list[str]:
    """The build's argument list: `--kustomize PATH`, else `kustomize` on PATH, else `kubectl kustomize`."""
    if kustomize is not None:
        base = [kustomize, "build"]
    elif (found := which("kustomize")) is not None:
        base = [found, "build"]
    elif (found := which("kubectl")) is not None:
        base = [found, "kustomize"]
    else:
        raise KmirrorError(f"cannot render: {directory}: neither kustomize nor kubectl is on PATH (install one, or pass --kustomize PATH)")
    return [*base, directory, *(["--enable-helm"] if enable_helm else []), *extra]


@dataclass(frozen=True)
class Rendered:
    """A successful build: the manifests (bytes as printed) and the build's warnings (stderr)."""

    output: bytes
    warnings: str


def run_build(command: Sequence[str], limits: Limits) -> Rendered:
    """Run the build; KmirrorError when it cannot start, exits non-zero or goes beyond `limits`."""
    shown = shlex.join(command)
    path = executable(command[0], "kustomize", "install kustomize or kubectl, or fix --kustomize")
    finished = run([path, *command[1:]], "kustomize", shown, limits)
    if finished.returncode != 0:
        raise child_failure("kustomize", shown, finished.returncode, finished.stderr)
    return Rendered(finished.output, finished.stderr)


@dataclass(frozen=True)
class Entry:
    """One `images:` entry: `name` as written, and what kustomize should put instead."""

    name: str
    new_name: str
    new_tag: str | None = None
    digest: str | None = None

    def to_yaml(self) -> str:
        """The entry as a YAML list item, every value double-quoted (a tag `1.20` is not a number)."""
        fields = [("name", self.name), ("newName", self.new_name), ("newTag", self.new_tag), ("digest", self.digest)]
        shown = [f"{key}: {json.dumps(value)}" for key, value in fields if value is not None]
        return "- " + "\n  ".join(shown) + "\n"


@dataclass(frozen=True)
class Placed:
    """An image and the file it was found in (for messages)."""

    file: str
    image: Image

    def where(self) -> str:
        """`file:line:column`."""
        return f"{self.file}:{self.image.line}:{self.image.column}"


@dataclass(frozen=True)
class ImagesList:
    """The entries, and the mirrored references kustomize's transformer never visits."""

    entries: tuple[Entry, ...]
    unreached: tuple[Placed, ...]

    def to_yaml(self) -> str:
        """`images:` followed by the entries (`images: []` when there are none)."""
        if not self.entries:
            return "images: []\n"
        return "images:\n" + "".join(entry.to_yaml() for entry in self.entries)


def reached(image: Image) -> bool:
    """True when kustomize's image transformer visits this reference's field."""
    location = image.location
    return (
        location.carrier == "image-key"
        and location.resource.kind != "CustomResourceDefinition"
        and _REACHED_RE.search(location.path) is not None
    )


def apply_entries(value: str, entries: Iterable[Entry]) -> str:
    """What kustomize's image transformer makes of `value` with `entries`, applied in order."""
    for entry in entries:
        if not matches(entry.name, value):
            continue
        name, tag, digest = split(value)
        name = entry.new_name or name
        if entry.new_tag is not None:
            tag, digest = entry.new_tag, entry.digest or ""
        elif entry.digest is not None:
            tag, digest = "", entry.digest
        value = name + (f":{tag}" if tag else "") + (f"@{digest}" if digest else "")
    return value


def images_list(placed: Iterable[Placed]) -> ImagesList:
    """The `images:` entries that make kustomize give every reached reference its mirror.

    One entry per name as written, sorted by name. KmirrorError when no list can: when
    references with the same name need different results (per-tag rules, a `keep` rule
    for some tags), or when one entry's result is another entry's name.
    """
    everything = [p for p in placed if p.image.location.carrier != CARRIER]  # a kustomization's own newName is no resource's image
    reachable = [p for p in everything if reached(p.image)]
    unreached = tuple(p for p in everything if not reached(p.image) and p.image.decision.mirrored is not None)
    entries: dict[str, Entry] = {}
    for item in reachable:
        mirrored = item.image.decision.mirrored
        name, tag, digest = split(item.image.location.text)
        if mirrored is None or name in entries:
            continue
        new_name, new_tag, new_digest = split(str(mirrored))
        if (new_tag, new_digest) == (tag, digest):
            entries[name] = Entry(name, new_name)
        else:
            entries[name] = Entry(name, new_name, new_tag or None, new_digest or None)
    ordered = tuple(entries[name] for name in sorted(entries))
    wrong = []
    for item in reachable:
        text = item.image.location.text
        mirrored = item.image.decision.mirrored
        want = str(mirrored) if mirrored is not None else text
        got = apply_entries(text, ordered)
        if got != want:
            wrong.append(f"{item.where()}: {text}: kustomize would give {got}, the rules give {want}")
    if wrong:
        shown = "\n".join("    " + line for line in wrong)
        raise KmirrorError(
            "cannot express the rules as a kustomize images list: kustomize matches names, not tags, "
            f"and applies the entries in turn (use 'kmirror kustomize' or the ImageMirror plugin instead):\n{shown}"
        )
    return ImagesList(ordered, unreached)
