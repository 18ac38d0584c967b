"""kustomize `images:` entries in source files (rewriter/kustomization.py), and the property that defines them.

The property (issue 17): `kmirror rewrite -w` of every file of a kustomize tree, each named as
pre-commit names them, then `kubectl kustomize OVERLAY`, gives byte for byte what
`kubectl kustomize OVERLAY | kmirror` gave before. It runs with the real, pinned kubectl
(tools.py) on the trees in fixtures/kustomize-trees/ (upstream bases with overlays that set
`newTag`, `newName`, `digest` and `tagSuffix`; see its README).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from tools import tool

from rewriter.config import parse_config
from rewriter.kustomization import parse_argo, split
from rewriter.kustomize import Entry, apply_entries
from rewriter.pipeline import process

ROOT = Path(__file__).resolve().parents[1]
TREES = ROOT / "fixtures" / "kustomize-trees"
KMIRROR = str(Path(sys.executable).parent / "kmirror")
RULES = (TREES / "rules.yaml").read_text(encoding="utf-8")
CONFIG = parse_config(RULES, "rules.yaml")

# (tree, overlay): every overlay of the fixture trees.
OVERLAYS = [
    ("microservices-demo", "overlays/prod"),
    ("microservices-demo", "overlays/components"),
    ("kustomize-examples", "overlays/multibases-pinned"),
    ("kustomize-examples", "overlays/wordpress-prod"),
    ("kustomize-examples", "overlays/wordpress-prod-eu"),
    ("kustomize-examples", "overlays/hello-argocd"),
    ("kustomize-examples", "overlays/hello-patched"),
    ("kustomize-examples", "multibases"),
    ("podinfo-helm", "."),  # helmCharts with valuesInline: built with --enable-helm
]


def _rewrite(text: str, name: str = "kustomization.yaml", rules: str = RULES) -> tuple[str, list[str]]:
    outcome = process(text.encode(), name, parse_config(rules, "rules.yaml"))
    return outcome.output.decode(), [p.text() for p in outcome.problems]


def _tree(tmp_path: Path, tree: str) -> Path:
    """A copy of the fixture tree with the rules as its .kmirror.yaml."""
    copy = tmp_path / tree
    shutil.copytree(TREES / tree, copy)
    (copy / ".kmirror.yaml").write_text(RULES, encoding="utf-8")
    return copy


def _files(tree: Path) -> list[str]:
    """Every file of the tree as pre-commit's `types: [yaml]` names them (relative), the rules file included."""
    return sorted(
        str(p.relative_to(tree))
        for p in tree.rglob("*")
        if p.is_file() and (p.suffix in (".yaml", ".yml") or p.name == "Kustomization")
    )


def _build(tree: Path, overlay: str) -> bytes:
    # kustomize v5.7.1 checks Helm with `helm version -c`, which Helm 4 refuses: Helm 3 inflates the charts.
    helm = ["--enable-helm", "--helm-command", tool("helm3")] if (tree / overlay / "charts").is_dir() else []
    done = subprocess.run([tool("kubectl"), "kustomize", overlay, *helm], cwd=tree, capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout


def _kmirror(*args: str, cwd: Path, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    env = {k: v for k, v in os.environ.items() if k != "KMIRROR_CONFIG"}
    return subprocess.run([KMIRROR, *args], cwd=cwd, input=stdin, capture_output=True, timeout=120, env=env)


def _snapshot(tree: Path) -> dict[str, bytes]:
    return {str(p.relative_to(tree)): p.read_bytes() for p in sorted(tree.rglob("*")) if p.is_file()}


@pytest.mark.parametrize(("tree", "overlay"), OVERLAYS, ids=[f"{t}:{o}" for t, o in OVERLAYS])
def test_rewriting_the_tree_commutes_with_building_it(tmp_path: Path, tree: str, overlay: str) -> None:
    work = _tree(tmp_path, tree)
    filtered = _kmirror(cwd=work, stdin=_build(work, overlay))
    assert filtered.returncode == 0, filtered.stderr.decode()
    before = _snapshot(work)

    rewritten = _kmirror("rewrite", "-w", *_files(work), cwd=work)
    assert rewritten.returncode == 0, rewritten.stderr.decode()
    assert "KM002" not in rewritten.stderr.decode()
    after = _snapshot(work)
    assert after[".kmirror.yaml"] == before[".kmirror.yaml"]
    assert after != before
    assert _build(work, overlay) == filtered.stdout

    again = _kmirror("rewrite", "--check", *_files(work), cwd=work)  # a second run changes nothing
    assert again.returncode == 0, again.stderr.decode()


def _argo_set_images(kustomization: Path, strings: list[str]) -> None:
    """What Argo CD's `kustomize edit set image STRING...` does to a kustomization (kustomize v5.7.1,
    kustomize/commands/edit/set/setimage.go): each string becomes an entry, replacing the entry with
    the same name; the entries are then sorted by name. (No standalone kustomize can be installed here.)"""
    document = yaml.safe_load(kustomization.read_text(encoding="utf-8"))
    entries = {entry["name"]: entry for entry in document.get("images", [])}
    for text in strings:
        key, separator, rest = text.partition("=")
        name, tag, digest = split(rest if separator else text)
        entry = {"name": key, "newName": name} if separator else {"name": name}
        entry.update({k: v for k, v in (("newTag", tag), ("digest", digest)) if v})
        entries[entry["name"]] = entry
    document["images"] = [entries[name] for name in sorted(entries)]
    kustomization.write_text(yaml.safe_dump(document), encoding="utf-8")


def test_argocd_application_images_commute_with_building(tmp_path: Path) -> None:
    work = _tree(tmp_path, "kustomize-examples")
    application = work / "argocd" / "hello.yaml"
    overlay = "overlays/hello-argocd"

    def argo_build() -> bytes:
        copy = tmp_path / "argo-build"
        shutil.rmtree(copy, ignore_errors=True)
        shutil.copytree(work, copy)
        strings = yaml.safe_load(application.read_text())["spec"]["source"]["kustomize"]["images"]
        _argo_set_images(copy / overlay / "kustomization.yaml", strings)
        return _build(copy, overlay)

    filtered = _kmirror(cwd=work, stdin=argo_build())
    assert filtered.returncode == 0, filtered.stderr.decode()
    rewritten = _kmirror("rewrite", "-w", *_files(work), cwd=work)
    assert rewritten.returncode == 0, rewritten.stderr.decode()
    assert b"harbor.example.com/docker.io/monopole/hello=harbor.example.com/ghcr.io/example-org/hello:2.0" in application.read_bytes()
    assert argo_build() == filtered.stdout


def test_matcher_follows_the_bases_and_new_name_is_mirrored() -> None:
    text = (
        "# overlay\n"
        "images:\n"
        "  - name: ghcr.io/example-org/api   # the base's name\n"
        "    newTag: v2.4.0\n"
        "  - {name: 'nginx', newName: \"docker.io/library/nginx\", newTag: '1.27'}\n"
    )
    output, problems = _rewrite(text)
    assert output == (
        "# overlay\n"
        "images:\n"
        "  - name: harbor.example.com/ghcr.io/example-org/api   # the base's name\n"
        "    newTag: v2.4.0\n"
        "  - {name: 'harbor.example.com/docker.io/library/nginx', newName: \"harbor.example.com/docker.io/library/nginx\", newTag: '1.27'}\n"
    )
    assert problems == []
    assert _rewrite(output)[0] == output


def test_entries_only_in_kustomizations() -> None:
    # A ConfigMap whose data mentions `images:` with a `name:` is not a kustomization.
    text = "kind: ConfigMap\ndata:\n  images: |\n    - name: nginx\n"
    assert _rewrite(text, "config.yaml")[0] == text
    # A kustomization in a file of another name needs its kind.
    kustomization = "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nimages:\n- name: nginx\n  newTag: '1'\n"
    assert "harbor.example.com/docker.io/library/nginx" in _rewrite(kustomization, "prod.yaml")[0]
    assert _rewrite("images:\n- name: nginx\n  newTag: '1'\n", "notes.yaml")[0] == "images:\n- name: nginx\n  newTag: '1'\n"
    assert "harbor.example.com" in _rewrite("images:\n- name: nginx\n  newTag: '1'\n", "deploy/Kustomization")[0]


def test_flux_kustomization_spec_images() -> None:
    text = (
        "apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata: {name: apps}\n"
        "spec:\n  path: ./apps\n  images:\n    - name: ghcr.io/stefanprodan/podinfo\n      newTag: 6.7.0\n"
    )
    assert "- name: harbor.example.com/ghcr.io/stefanprodan/podinfo\n" in _rewrite(text, "apps.yaml")[0]


HELM_RELEASE = """\
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: metrics-server
  namespace: kube-system
spec:
  interval: 1h
  chart:
    spec:
      chart: metrics-server
      version: 3.13.1
      sourceRef: {kind: HelmRepository, name: metrics-server}
  values:
    addonResizer:
      enabled: true
  postRenderers:
    # helm-controller runs kustomize's images transformer over the rendered chart
    - kustomize:
        images:
          - name: registry.k8s.io/metrics-server/metrics-server
            newName: quay.io/example-org/metrics-server
            newTag: v0.8.0
          - name: registry.k8s.io/autoscaling/addon-resizer
            newName: quay.io/example-org/addon-resizer
            newTag: "1.8.22"
"""
FLUX_RULES = "mirrors:\n  - {from: registry.k8s.io, to: harbor.example.com/k8s}\n  - {from: quay.io, to: harbor.example.com/quay}\nblocked: [quay.io]\n"


def test_flux_helmrelease_post_renderer_keeps_its_matchers_and_mirrors_new_names() -> None:
    # The matchers name the chart's own images, which come from a chart repository, not these files.
    text, problems = _rewrite(HELM_RELEASE, "release.yaml", FLUX_RULES)
    assert problems == []
    assert text == HELM_RELEASE.replace("newName: quay.io/", "newName: harbor.example.com/quay/")
    outcome = process(HELM_RELEASE.encode(), "release.yaml", parse_config(FLUX_RULES, "rules.yaml"))
    blocked = [f.ref for f in outcome.findings(after_rewrite=False) if f.code == "KM001"]
    assert blocked == ["quay.io/example-org/metrics-server", "quay.io/example-org/addon-resizer"]  # the gate sees what is pulled


def test_flux_helmrelease_values_that_a_kept_matcher_would_miss_are_reported_and_left() -> None:
    # The release's own values give the image the matcher names: mirrored, the render would carry
    # the mirror and the entry's tag would silently stop applying.
    release = HELM_RELEASE.replace(
        "    addonResizer:\n      enabled: true\n",
        "    addonResizer:\n      enabled: true\n    image:\n      repository: registry.k8s.io/metrics-server/metrics-server\n",
    ).replace("            newName: quay.io/example-org/metrics-server\n", "")
    text, problems = _rewrite(release, "release.yaml", FLUX_RULES)
    assert text == release.replace("newName: quay.io/", "newName: harbor.example.com/quay/")  # the values are not edited
    assert len(problems) == 1 and "KM002" in problems[0]
    assert "spec.values.image gives registry.k8s.io/metrics-server/metrics-server" in problems[0]
    assert "give the entry newName harbor.example.com/k8s/metrics-server/metrics-server instead" in problems[0]


def test_flux_helmrelease_post_renderer_commutes_with_rendering(tmp_path: Path) -> None:
    # What helm-controller does with a HelmRelease (internal/postrender): render the chart with
    # spec.values, then build the render with kustomize and the post-renderer's images. Here with the
    # pinned helm 3 and kubectl's kustomize, on the vendored metrics-server chart (fixtures/charts).
    chart = ROOT / "fixtures" / "charts" / "metrics-server"
    (tmp_path / ".kmirror.yaml").write_text(FLUX_RULES, encoding="utf-8")
    release = tmp_path / "release.yaml"
    release.write_text(HELM_RELEASE, encoding="utf-8")

    def flux_render() -> bytes:
        spec = yaml.safe_load(release.read_text(encoding="utf-8"))["spec"]
        build = tmp_path / "build"
        shutil.rmtree(build, ignore_errors=True)
        build.mkdir()
        (build / "values.yaml").write_text(yaml.safe_dump(spec["values"]), encoding="utf-8")
        done = subprocess.run([tool("helm3"), "template", "metrics-server", str(chart), "-f", str(build / "values.yaml")], capture_output=True, timeout=120)
        assert done.returncode == 0, done.stderr.decode()
        (build / "rendered.yaml").write_bytes(done.stdout)
        images = [image for renderer in spec["postRenderers"] for image in renderer["kustomize"]["images"]]
        (build / "kustomization.yaml").write_text(yaml.safe_dump({"resources": ["rendered.yaml"], "images": images}), encoding="utf-8")
        return _build(build, ".")

    before = flux_render()
    assert b"image: quay.io/example-org/metrics-server:v0.8.0\n" in before and b"image: quay.io/example-org/addon-resizer:1.8.22\n" in before
    filtered = _kmirror(cwd=tmp_path, stdin=before)
    assert filtered.returncode == 0, filtered.stderr.decode()
    rewritten = _kmirror("rewrite", "-w", "release.yaml", cwd=tmp_path)
    assert rewritten.returncode == 0, rewritten.stderr.decode()
    assert flux_render() == filtered.stdout != before
    assert _kmirror("check", "release.yaml", cwd=tmp_path).returncode == 0  # nothing blocked is pulled any more


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("nginx=docker.io/library/nginx:1.27", ((0, 5), (6, 29), "1.27", "")),
        ("nginx:1.27", ((0, 5), None, "1.27", "")),
        ("quay.io/a/b@sha256:abc", ((0, 11), None, "", "sha256:abc")),
        ("localhost:5000/app=localhost:5000/app:v1", ((0, 18), (19, 37), "v1", "")),
        ("nginx", None),  # `kustomize edit set image` refuses a bare name
        ("app=new", ((0, 3), (4, 7), "", "")),
    ],
)
def test_argo_strings_read_as_kustomize_edit_set_image_reads_them(value: str, expected: object) -> None:
    assert parse_argo(value) == expected


def test_argo_strings_rewritten_part_by_part() -> None:
    text = (
        "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata: {name: web}\nspec:\n  source:\n    kustomize:\n      images:\n"
        "        - nginx=docker.io/library/nginx:1.27\n"
        "        - 'ghcr.io/org/api:v2'\n"
        "        - quay.io/a/b@sha256:0a2dd0c2a1e5e0c4d1a3f4b2c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8\n"
        "        - app=${IMAGE}\n"
        "        - 'nginx={{ .values.image }}'\n"
        "  sources:\n  - kustomize:\n      images: [busybox:1.36]\n"
    )
    output, problems = _rewrite(text, "app.yaml")
    assert problems == []
    assert output.splitlines()[7:] == [
        "        - harbor.example.com/docker.io/library/nginx=harbor.example.com/docker.io/library/nginx:1.27",
        "        - 'harbor.example.com/ghcr.io/org/api:v2'",
        "        - harbor.example.com/quay.io/a/b@sha256:0a2dd0c2a1e5e0c4d1a3f4b2c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8",
        "        - app=${IMAGE}",
        "        - 'nginx={{ .values.image }}'",
        "  sources:",
        "  - kustomize:",
        "      images: [harbor.example.com/docker.io/library/busybox:1.36]",
    ]


def test_a_rule_for_single_tags_is_reported_not_guessed() -> None:
    rules = "mirrors:\n  - {from: 'docker.io/library/nginx:1.16', to: harbor.example.com/base/nginx:1.16-patched}\n" + RULES.split("mirrors:\n", 1)[1]
    text = "images:\n- name: nginx\n  newTag: '1.25'\n"
    output, problems = _rewrite(text, rules=rules)
    assert output == text
    assert problems == [
        "kustomization.yaml:2:9: KM002 kustomize images entry 'nginx' cannot be rewritten so the build still matches: "
        "a rule names single tags of nginx, but the matcher 'nginx' matches every tag"
    ]


def test_a_rule_that_changes_the_new_tag_is_reported() -> None:
    rules = "mirrors:\n  - {from: 'docker.io/library/nginx:1.16', to: harbor.example.com/base/nginx:1.16-patched}\n"
    text = "images:\n- name: web\n  newName: nginx\n  newTag: '1.16'\n"
    output, problems = _rewrite(text, rules=rules)
    assert output == text
    assert len(problems) == 1 and "write newName 'harbor.example.com/base/nginx' with newTag/digest ':1.16-patched' by hand" in problems[0]


def test_new_name_is_checked_as_the_image_pulled() -> None:
    outcome = process(b"images:\n- name: app\n  newName: nginx\n  newTag: '1.27'\n", "kustomization.yaml", CONFIG)
    [image] = outcome.images
    assert str(image.ref) == "nginx:1.27" and image.location.path == "images[0].newName"
    assert [f.text() for f in outcome.findings(after_rewrite=False)] == [
        "kustomization.yaml:3:12: KM001 nginx:1.27 is on blocked registry docker.io (mirror: harbor.example.com/docker.io/library/nginx:1.27)"
    ]


def test_remote_bases_and_helm_charts_are_named_with_their_line() -> None:
    text = (
        "resources:\n- ../base\n- https://github.com/argoproj/argo-cd//manifests/cluster-install?ref=v2.13.0\n"
        "helmCharts:\n- name: podinfo\n  repo: https://stefanprodan.github.io/podinfo\n- name: local\n"
    )
    outcome = process(text.encode(), "kustomization.yaml", CONFIG)
    assert [note.split(": ", 1)[0] for note in outcome.notes] == ["kustomization.yaml:3:3", "kustomization.yaml:5:3"]
    assert "remote resource https://github.com/argoproj/argo-cd" in outcome.notes[0]
    assert "helmCharts podinfo comes from https://stefanprodan.github.io/podinfo" in outcome.notes[1]  # not the chart in the tree


def test_readme_example() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("### kustomize `images:` entries", 1)[1].split("\n## ", 1)[0]
    before, after = re.findall(r"```yaml\n(.*?)```", section, re.S)
    rules = "mirrors:\n  - {from: docker.io, to: harbor.example.com/docker.io}\n  - {from: ghcr.io, to: harbor.example.com/ghcr.io}\n"
    assert _rewrite(before, rules=rules) == (after, [])
    argo, argo_after = re.findall(r"Argo CD string `([^`]+)` becomes\n`([^`]+)`", section)[0]
    application = f"apiVersion: argoproj.io/v1alpha1\nkind: Application\nspec:\n  source:\n    kustomize:\n      images: [{argo}]\n"
    assert _rewrite(application, "app.yaml", rules)[0] == application.replace(argo, argo_after)


def test_json_patches_that_set_an_image_field() -> None:
    patch_file = (
        "- op: replace\n  path: /spec/template/spec/containers/0/image\n  value: nginx:1.25\n"
        "- {op: replace, path: /metadata/name, value: 'nginx:1'}\n"
        "- op: test\n  path: /spec/template/spec/containers/0/image\n  value: nginx:1.24\n"
    )
    output, problems = _rewrite(patch_file, "image-patch.yaml")
    assert problems == [] and output == patch_file.replace("value: nginx:1.25", "value: harbor.example.com/docker.io/library/nginx:1.25")
    inline = (
        "patches:\n- target: {kind: Deployment}\n  patch: |-\n"
        "    - op: replace\n      path: /spec/template/spec/containers/0/image\n      value: nginx:1.25\n"
        '- patch: \'[{"op": "add", "path": "/spec/x/image", "value": "redis:7"}, {"op": "add", "path": "/spec/y/image", "value": "redis:7"}]\'\n'
    )
    output, problems = _rewrite(inline)
    assert "      value: harbor.example.com/docker.io/library/nginx:1.25\n" in output
    assert '"value": "redis:7"' in output  # twice in one patch: reported, not guessed
    assert [p.split(": KM002 ")[1].split(" cannot")[0] for p in problems] == ["redis:7", "redis:7"]


# The same property without kubectl, over many generated entries: kustomize's transformer as
# rewriter.kustomize.apply_entries copies it (checked against the real kubectl in test_kustomize.py).
# Names are spelt one way each (see docs/guarantees.md, known gaps, for two spellings of one image).
_NAMES = ["nginx", "ghcr.io/example-org/api", "quay.io/a/b", "us-central1-docker.pkg.dev/p/r/svc", "localhost:5000/app", "gcr.io/google-containers/pause"]
_DIGEST = "sha256:" + "0a" * 32
_suffixes = st.sampled_from(["", ":1.0", ":v2.3.1", f"@{_DIGEST}", f":1.0@{_DIGEST}"])
_entries = st.lists(
    st.tuples(
        st.sampled_from(_NAMES),
        st.one_of(st.none(), st.sampled_from(_NAMES)),
        st.one_of(st.none(), st.sampled_from(["2.0", "v9"])),
        st.one_of(st.none(), st.just("sha256:" + "1b" * 32)),
    ),
    max_size=4,
)


def _mirrored(value: str) -> str:
    outcome = process(f"kind: Pod\nspec:\n  containers:\n  - image: {value}\n".encode(), "pod.yaml", CONFIG)
    return outcome.output.decode().rsplit("image: ", 1)[1].strip()


@settings(max_examples=300, deadline=None)
@given(bases=st.lists(st.tuples(st.sampled_from(_NAMES), _suffixes), min_size=1, max_size=4), written=_entries)
def test_entries_rewritten_commute_with_the_transformer(bases: list[tuple[str, str]], written: list[tuple[str, str | None, str | None, str | None]]) -> None:
    entries = [Entry(name, new_name or "", tag, digest) for name, new_name, tag, digest in written]
    text = "images:\n" + "".join(entry.to_yaml() for entry in entries) if entries else "images: []\n"
    output, problems = _rewrite(text)
    assert problems == []
    rewritten = [
        Entry(item["name"], item.get("newName", ""), item.get("newTag"), item.get("digest"))
        for item in yaml.safe_load(output)["images"] or []
    ]
    for name, suffix in bases:
        value = name + suffix
        assert apply_entries(_mirrored(value), rewritten) == _mirrored(apply_entries(value, entries))


def test_images_list_leaves_out_a_kustomizations_own_entries(tmp_path: Path) -> None:
    (tmp_path / "kustomization.yaml").write_text("images:\n- name: app\n  newName: nginx\n  newTag: '1.27'\n")
    (tmp_path / "pod.yaml").write_text("kind: Pod\nspec:\n  containers:\n  - image: quay.io/a/b:1\n")
    (tmp_path / "rules.yaml").write_text(RULES)
    done = _kmirror("images", "--format", "kustomize", "-c", "rules.yaml", "kustomization.yaml", "pod.yaml", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout == b'images:\n- name: "quay.io/a/b"\n  newName: "harbor.example.com/quay.io/a/b"\n' and b"note" not in done.stderr


@pytest.mark.parametrize(
    "stream",
    [
        b"---\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: a}\n",  # helm template's output starts so
        b"# Source: chart/templates/a.yaml\n---\napiVersion: v1\nkind: Pod\n",
    ],
)
def test_a_stream_of_manifests_is_not_composed_as_a_patch_file(stream: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    # Starting `---` markers once made every stream look like a JSON 6902 patch file, composed
    # whole a second time: 8 s and 400 MB more on the bench's 20 MB stream.
    from rewriter import kustomization
    from rewriter.stream import decode

    def composed(*args: object) -> None:
        raise AssertionError("a stream of manifests was composed for kustomize entries")

    monkeypatch.setattr(kustomization, "documents", composed)
    assert not kustomization.locate_entries(decode(stream, "all.yaml")).found


def test_a_patch_file_is_still_read() -> None:
    from rewriter import kustomization
    from rewriter.stream import decode

    patch = b"# a JSON 6902 patch\n- op: replace\n  path: /spec/template/spec/containers/0/image\n  value: nginx:1.25\n"
    assert kustomization.locate_entries(decode(patch, "patch.yaml")).patched
