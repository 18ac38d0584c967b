"""Tests for rewriter/reference.py: the distribution/reference grammar, case by case.

Valid cases check every normalised part; invalid ones check that a distinguishing
fragment of the message names the problem. Hypothesis checks the round trips.
"""

from __future__ import annotations

import string

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from rewriter.reference import endpoint, normalization, ImageRef, ReferenceError, is_reference, parse

H64 = "594ceea76b01c592858f803f9ff4d2cb40542cae2060410b2c95f75907d659e1"
SHA256 = f"sha256:{H64}"
SHA384 = "sha384:" + "ab" * 48
SHA512 = "sha512:" + "f" * 128


# (id, text, registry, repository, tag, digest, normalized)
VALID: list[tuple[str, str, str, str, str | None, str | None, str]] = [
    # Docker Hub: no domain, "library/" for single names, host aliases folded.
    ("hub-single-name", "nginx", "docker.io", "library/nginx", None, None, "docker.io/library/nginx"),
    # The registry is the endpoint a runtime contacts: default port removed, host lower-cased, Hub aliases folded.
    ("port-443", "quay.io:443/x/y:v1", "quay.io", "x/y", "v1", None, "quay.io/x/y:v1"),
    ("port-443-hub-alias", "registry-1.docker.io:443/library/nginx:1.25", "docker.io", "library/nginx", "1.25", None, "docker.io/library/nginx:1.25"),
    ("port-443-hub-short-name", "docker.io:443/nginx", "docker.io", "library/nginx", None, None, "docker.io/library/nginx"),
    ("port-443-index-alias", "index.docker.io:443/library/nginx", "docker.io", "library/nginx", None, None, "docker.io/library/nginx"),
    ("port-0443-upper-case", "Quay.IO:0443/x", "quay.io", "x", None, None, "quay.io/x"),
    ("port-4430-kept", "quay.io:4430/x", "quay.io:4430", "x", None, None, "quay.io:4430/x"),
    ("port-443-ipv6", "[::1]:443/x", "[::1]", "x", None, None, "[::1]/x"),
    ("port-443-localhost", "localhost:443/x", "localhost", "x", None, None, "localhost/x"),
    ("hub-single-name-tag", "nginx:1.16", "docker.io", "library/nginx", "1.16", None, "docker.io/library/nginx:1.16"),
    ("hub-tag-with-dash", "nginx:1.16-alpine", "docker.io", "library/nginx", "1.16-alpine", None, "docker.io/library/nginx:1.16-alpine"),
    ("hub-user-namespace", "bitnami/redis", "docker.io", "bitnami/redis", None, None, "docker.io/bitnami/redis"),
    ("hub-org-tag", "kubernetesui/dashboard:v2.7.0", "docker.io", "kubernetesui/dashboard", "v2.7.0", None, "docker.io/kubernetesui/dashboard:v2.7.0"),
    ("hub-explicit-single", "docker.io/nginx", "docker.io", "library/nginx", None, None, "docker.io/library/nginx"),
    ("hub-explicit-library", "docker.io/library/nginx:1.25", "docker.io", "library/nginx", "1.25", None, "docker.io/library/nginx:1.25"),
    ("hub-explicit-org", "docker.io/rancher/local-path-provisioner:v0.0.37", "docker.io", "rancher/local-path-provisioner", "v0.0.37", None, "docker.io/rancher/local-path-provisioner:v0.0.37"),
    ("hub-index-alias", "index.docker.io/nginx", "docker.io", "library/nginx", None, None, "docker.io/library/nginx"),
    ("hub-index-alias-library", "index.docker.io/library/busybox:1", "docker.io", "library/busybox", "1", None, "docker.io/library/busybox:1"),
    ("hub-registry-1-alias", "registry-1.docker.io/bitnami/redis:7", "docker.io", "bitnami/redis", "7", None, "docker.io/bitnami/redis:7"),
    ("hub-host-upper-case", "Docker.IO/nginx", "docker.io", "library/nginx", None, None, "docker.io/library/nginx"),
    ("hub-underscore-first-is-not-domain", "test_com/foo", "docker.io", "test_com/foo", None, None, "docker.io/test_com/foo"),
    ("hub-dotted-single-name", "foo_bar.com:8080", "docker.io", "library/foo_bar.com", "8080", None, "docker.io/library/foo_bar.com:8080"),
    ("hub-host-like-single-name-tag", "test.com:5000", "docker.io", "library/test.com", "5000", None, "docker.io/library/test.com:5000"),
    ("hub-localhost-alone-is-a-name", "localhost", "docker.io", "library/localhost", None, None, "docker.io/library/localhost"),
    ("hub-localhost-port-alone-is-name-tag", "localhost:5000", "docker.io", "library/localhost", "5000", None, "docker.io/library/localhost:5000"),
    ("hub-64-hex-with-tag-is-a-name", f"{H64}:v1", "docker.io", f"library/{H64}", "v1", None, f"docker.io/library/{H64}:v1"),
    ("hub-dotted-second-component", "foo/foo_bar.com:8080", "docker.io", "foo/foo_bar.com", "8080", None, "docker.io/foo/foo_bar.com:8080"),
    # Other registries: domain when the first component has "." or ":", is localhost, or has upper case.
    ("gcr-prefix-path", "gcr.io/google-containers/kube-proxy:v1.18.0", "gcr.io", "google-containers/kube-proxy", "v1.18.0", None, "gcr.io/google-containers/kube-proxy:v1.18.0"),
    ("k8s-gcr-single", "k8s.gcr.io/kube-proxy:v1.15.5", "k8s.gcr.io", "kube-proxy", "v1.15.5", None, "k8s.gcr.io/kube-proxy:v1.15.5"),
    ("quay-two-components", "quay.io/prometheus/node-exporter:v0.18.1", "quay.io", "prometheus/node-exporter", "v0.18.1", None, "quay.io/prometheus/node-exporter:v0.18.1"),
    ("registry-host-upper-case", "GCR.IO/foo", "gcr.io", "foo", None, None, "gcr.io/foo"),
    ("upper-case-first-is-domain", "Foo/bar", "Foo", "bar", None, None, "Foo/bar"),
    ("localhost-domain", "localhost/foo", "localhost", "foo", None, None, "localhost/foo"),
    ("localhost-port", "localhost:5000/foo/bar:tag", "localhost:5000", "foo/bar", "tag", None, "localhost:5000/foo/bar:tag"),
    ("host-port-no-dot", "registry:5000/kubevirt/cirros-container-disk-demo:devel", "registry:5000", "kubevirt/cirros-container-disk-demo", "devel", None, "registry:5000/kubevirt/cirros-container-disk-demo:devel"),
    ("host-dash-port", "test-com:8080/foo", "test-com:8080", "foo", None, None, "test-com:8080/foo"),
    ("ipv4", "192.168.1.1/repo", "192.168.1.1", "repo", None, None, "192.168.1.1/repo"),
    ("ipv4-port-numeric-tag", "192.168.1.1:5000/repo:5050", "192.168.1.1:5000", "repo", "5050", None, "192.168.1.1:5000/repo:5050"),
    ("ipv6", "[2001:db8::1]/repo", "[2001:db8::1]", "repo", None, None, "[2001:db8::1]/repo"),
    ("ipv6-full-tag", "[2001:db8:1:2:3:4:5:6]/repo:tag", "[2001:db8:1:2:3:4:5:6]", "repo", "tag", None, "[2001:db8:1:2:3:4:5:6]/repo:tag"),
    ("ipv6-port-tag", "[2001:db8::1]:5000/repo:tag", "[2001:db8::1]:5000", "repo", "tag", None, "[2001:db8::1]:5000/repo:tag"),
    ("ipv6-loopback-port", "[::1]:5000/repo", "[::1]:5000", "repo", None, None, "[::1]:5000/repo"),
    ("ipv6-port-tag-digest", f"[2001:db8::1]:5000/repo:tag@{SHA256}", "[2001:db8::1]:5000", "repo", "tag", SHA256, f"[2001:db8::1]:5000/repo:tag@{SHA256}"),
    ("punycode-host-and-tag", "xn--n3h.com/myimage:xn--n3h.com", "xn--n3h.com", "myimage", "xn--n3h.com", None, "xn--n3h.com/myimage:xn--n3h.com"),
    ("dotted-path-and-tag", "b.gcr.io/test.example.com/my-app:test.example.com", "b.gcr.io", "test.example.com/my-app", "test.example.com", None, "b.gcr.io/test.example.com/my-app:test.example.com"),
    ("deep-path", "sub-dom1.foo.com/bar/baz/quux:some-long-tag", "sub-dom1.foo.com", "bar/baz/quux", "some-long-tag", None, "sub-dom1.foo.com/bar/baz/quux:some-long-tag"),
    # Separators: ".", "_", "__", one or more "-".
    ("sep-dot", "a.b", "docker.io", "library/a.b", None, None, "docker.io/library/a.b"),
    ("sep-underscore", "a_b", "docker.io", "library/a_b", None, None, "docker.io/library/a_b"),
    ("sep-double-underscore", "a__b", "docker.io", "library/a__b", None, None, "docker.io/library/a__b"),
    ("sep-dash", "a-b", "docker.io", "library/a-b", None, None, "docker.io/library/a-b"),
    ("sep-many-dashes", "a---b", "docker.io", "library/a---b", None, None, "docker.io/library/a---b"),
    ("sep-mixed", "q.io/a-b_c.d__e--f/g1", "q.io", "a-b_c.d__e--f/g1", None, None, "q.io/a-b_c.d__e--f/g1"),
    ("digits-only-components", "q.io/1/2", "q.io", "1/2", None, None, "q.io/1/2"),
    # Tags: [\w][\w.-]{0,127}.
    ("tag-upper-case", "nginx:Latest", "docker.io", "library/nginx", "Latest", None, "docker.io/library/nginx:Latest"),
    ("tag-leading-underscore", "nginx:_a", "docker.io", "library/nginx", "_a", None, "docker.io/library/nginx:_a"),
    ("tag-one-char", "nginx:1", "docker.io", "library/nginx", "1", None, "docker.io/library/nginx:1"),
    ("tag-all-classes", "nginx:A1_b.2-c", "docker.io", "library/nginx", "A1_b.2-c", None, "docker.io/library/nginx:A1_b.2-c"),
    ("tag-128-chars", "nginx:" + "t" * 128, "docker.io", "library/nginx", "t" * 128, None, "docker.io/library/nginx:" + "t" * 128),
    # Digests, alone or after a tag.
    ("digest-only", f"nginx@{SHA256}", "docker.io", "library/nginx", None, SHA256, f"docker.io/library/nginx@{SHA256}"),
    ("tag-and-digest", f"registry.k8s.io/ingress-nginx/controller:v1.15.1@{SHA256}", "registry.k8s.io", "ingress-nginx/controller", "v1.15.1", SHA256, f"registry.k8s.io/ingress-nginx/controller:v1.15.1@{SHA256}"),
    ("digest-sha384", f"q.io/a@{SHA384}", "q.io", "a", None, SHA384, f"q.io/a@{SHA384}"),
    ("digest-sha512-tag", f"xn--7o8h.com/myimage:xn--7o8h.com@{SHA512}", "xn--7o8h.com", "myimage", "xn--7o8h.com", SHA512, f"xn--7o8h.com/myimage:xn--7o8h.com@{SHA512}"),
    ("digest-deep-path", f"gcr.io/knative-releases/knative.dev/serving/cmd/activator@{SHA256}", "gcr.io", "knative-releases/knative.dev/serving/cmd/activator", None, SHA256, f"gcr.io/knative-releases/knative.dev/serving/cmd/activator@{SHA256}"),
    # The 255-character name limit, counted on the normalised name.
    ("name-255-with-domain", "example.com/" + "a" * 243, "example.com", "a" * 243, None, None, "example.com/" + "a" * 243),
    ("name-255-normalised-hub", "a" * 237 + ":tag-does-not-count", "docker.io", "library/" + "a" * 237, "tag-does-not-count", None, "docker.io/library/" + "a" * 237 + ":tag-does-not-count"),
    ("name-255-many-components", "example.com/" + "a/" * 121 + "a:tag", "example.com", "a/" * 121 + "a", "tag", None, "example.com/" + "a/" * 121 + "a:tag"),
]

# (id, text, fragment of the message)
INVALID: list[tuple[str, str, str]] = [
    ("empty", "", "empty reference"),
    ("leading-space", " nginx", "white space"),
    ("trailing-space", "nginx ", "white space"),
    ("inner-space", "ng inx", "white space"),
    ("tab", "nginx\t:1", "white space"),
    ("newline", "nginx\n", "white space"),
    ("nbsp", "nginx\u00a0", "white space"),
    ("hex-64-alone", H64, "image ID"),
    ("hex-64-zeros", "0" * 64, "image ID"),
    ("upper-case-single", "NGINX", "must be lowercase"),
    ("upper-case-with-tag", "Uppercase:tag", "must be lowercase"),
    ("upper-case-path-after-host", "gcr.io/Google/pause", "must be lowercase"),
    ("upper-case-path-after-port", "test:5000/Uppercase/lowercase:tag", "must be lowercase"),
    ("sep-triple-underscore", "a___b", "invalid repository path"),
    ("sep-double-dot", "a..b", "invalid repository path"),
    ("sep-dot-underscore", "a._b", "invalid repository path"),
    ("sep-underscore-dash", "a_-b", "invalid repository path"),
    ("leading-separator", "_a", "invalid repository path"),
    ("leading-dash", "-a", "invalid repository path"),
    ("leading-dot-component", "gcr.io/.a", "invalid repository path"),
    ("trailing-separator", "a_", "invalid repository path"),
    ("trailing-dash", "a-", "invalid repository path"),
    ("empty-component", "a//b", "invalid repository path"),
    ("trailing-slash", "quay.io/a/", "invalid repository path"),
    ("leading-slash", "/a", "invalid repository path"),
    ("bad-characters", "aa/asdf$$^/aa", "invalid repository path"),
    ("non-ascii-path", "x/\u00e9", "invalid repository path"),
    ("colon-inside-path", "gcr.io/foo:tag:tag2", "invalid repository path"),
    ("host-only", "gcr.io/", "repository path is empty"),
    ("just-tag", ":justtag", "repository path is empty"),
    ("just-digest", f"@{SHA256}", "digest without a repository name"),
    ("empty-tag", "nginx:", "invalid tag ''"),
    ("tag-leading-dot", "nginx:.a", "invalid tag '.a'"),
    ("tag-leading-dash", "nginx:-a", "invalid tag '-a'"),
    ("tag-bad-char", "nginx:a+b", "invalid tag 'a+b'"),
    ("tag-non-ascii", "nginx:1\u0661", "invalid tag"),
    ("tag-129-chars", "nginx:" + "t" * 129, "tag is longer than 128 characters"),
    ("digest-short", "repo@sha256:" + "f" * 34, "invalid sha256 digest: expected 64 lower-case hex"),
    ("digest-long", "repo@sha256:" + "f" * 65, "invalid sha256 digest"),
    ("digest-upper-hex", "repo@sha256:" + "F" * 64, "lower-case hex"),
    ("digest-sha512-wrong-length", "repo@sha512:" + "f" * 64, "invalid sha512 digest: expected 128"),
    ("digest-unknown-algorithm", "validname@invaliddigest:" + "f" * 64, "unsupported digest algorithm 'invaliddigest'"),
    ("digest-no-hex", "repo@sha256", "invalid digest 'sha256'"),
    ("digest-not-hex", "repo@sha256:" + "g" * 64, "invalid digest"),
    ("digest-too-few-hex", "repo@sha256:abc", "invalid digest"),
    ("digest-empty", "nginx:1@", "invalid digest ''"),
    ("two-digests", f"nginx@{SHA256}@{SHA256}", "invalid digest"),
    ("digest-before-tag", f"nginx@{SHA256}:tag", "invalid digest"),
    ("host-underscore", "foo_bar.com/x", "invalid registry host 'foo_bar.com'"),
    ("host-leading-dash", "-foo.com/x", "invalid registry host"),
    ("host-trailing-dash", "foo-.com/x", "invalid registry host"),
    ("host-empty-label", "foo..com/x", "invalid registry host"),
    ("port-not-numeric", "foo.com:port/x", "invalid registry host 'foo.com:port'"),
    ("port-empty", "foo.com:/x", "invalid registry host"),
    ("url-scheme", "https://gcr.io/x", "invalid registry host 'https:'"),
    ("ipv6-zone", "[fe80::1%eth0]:5000/repo", "invalid registry host"),
    ("ipv6-unbracketed", "2001:db8::1/repo", "invalid registry host"),
    # No "/": the colon after the last "/" starts a tag, so the bracket ends up in it.
    ("ipv6-alone", "[2001:db8::1]", "invalid tag '1]'"),
    ("ipv6-port-alone", "[2001:db8::1]:5000", "invalid repository path"),
    ("name-256-with-domain", "example.com/" + "a" * 244, "longer than 255"),
    ("name-too-long-a-slash-128", "a/" * 128 + "a:tag", "longer than 255"),
    ("name-too-long-once-normalised", "a" * 238, "longer than 255 characters once normalised"),
    ("name-too-long-normalised-org", "a/" * 123 + "a", "once normalised"),
]


@pytest.mark.parametrize(
    ("text", "registry", "repository", "tag", "digest", "normalized"),
    [pytest.param(*case[1:], id=case[0]) for case in VALID],
)
def test_valid_reference(
    text: str, registry: str, repository: str, tag: str | None, digest: str | None, normalized: str
) -> None:
    ref = parse(text)
    assert (ref.registry, ref.repository, ref.tag, ref.digest) == (registry, repository, tag, digest)
    assert ref.normalized == normalized
    assert str(ref) == text
    assert is_reference(text)


@pytest.mark.parametrize(("text", "fragment"), [pytest.param(*case[1:], id=case[0]) for case in INVALID])
def test_invalid_reference(text: str, fragment: str) -> None:
    with pytest.raises(ReferenceError) as info:
        parse(text)
    assert fragment in str(info.value)
    assert not is_reference(text)


def test_case_tables_are_large_and_ids_unique() -> None:
    ids = [case[0] for case in VALID] + [case[0] for case in INVALID]
    assert len(ids) >= 60
    assert len(ids) == len(set(ids))


def test_domain_and_path_are_kept_as_written() -> None:
    ref = parse("Index.Docker.IO/nginx:1")
    assert (ref.domain, ref.path) == ("Index.Docker.IO", "nginx")
    assert ref.registry == "docker.io"
    assert str(ref) == "Index.Docker.IO/nginx:1"
    hub = parse("bitnami/redis")
    assert hub.domain is None and hub.path == "bitnami/redis"


@pytest.mark.parametrize(
    ("text", "name", "suffix"),
    [
        pytest.param("k8s.gcr.io/kube-proxy:v1", "kube-proxy", ":v1", id="tag"),
        pytest.param("nginx", "nginx", "", id="bare"),
        pytest.param(f"q.io/a/b/c:t@{SHA256}", "c", f":t@{SHA256}", id="tag-digest"),
        pytest.param(f"q.io/a@{SHA256}", "a", f"@{SHA256}", id="digest"),
    ],
)
def test_name_and_suffix(text: str, name: str, suffix: str) -> None:
    ref = parse(text)
    assert (ref.name, ref.suffix) == (name, suffix)


def test_normalized_adds_no_latest_tag() -> None:
    assert parse("busybox").normalized == "docker.io/library/busybox"


def test_reference_error_is_a_value_error() -> None:
    assert issubclass(ReferenceError, ValueError)


def test_image_ref_is_frozen_and_comparable() -> None:
    assert parse("gcr.io/a:1") == ImageRef("gcr.io", "a", "1", None)
    with pytest.raises(AttributeError):
        parse("gcr.io/a").tag = "x"  # type: ignore[misc]


# --- Hypothesis: references built from the grammar's pieces -------------------------------

_LOWER_ALNUM = string.ascii_lowercase + string.digits
_HOST_CHARS = string.ascii_letters + string.digits
_TAG_FIRST = string.ascii_letters + string.digits + "_"
_TAG_REST = _TAG_FIRST + ".-"
_HEX = "0123456789abcdef"

alnum = st.text(_LOWER_ALNUM, min_size=1, max_size=8)
separator = st.sampled_from([".", "_", "__", "-", "--", "---"])


@st.composite
def path_component(draw: st.DrawFn) -> str:
    """alpha-numeric ( separator alpha-numeric )*"""
    parts = [draw(alnum)]
    for _ in range(draw(st.integers(0, 2))):
        parts += [draw(separator), draw(alnum)]
    return "".join(parts)


@st.composite
def domain_component(draw: st.DrawFn) -> str:
    """[a-zA-Z0-9] | [a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]"""
    first = draw(st.sampled_from(_HOST_CHARS))
    if draw(st.booleans()):
        return first
    middle = draw(st.text(_HOST_CHARS + "-", max_size=6))
    return first + middle + draw(st.sampled_from(_HOST_CHARS))


@st.composite
def host(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["dotted", "localhost", "ipv6", "known"]))
    if kind == "dotted":
        labels = draw(st.lists(domain_component(), min_size=2, max_size=3))
        return ".".join(labels)
    if kind == "ipv6":
        groups = draw(st.lists(st.text(_HEX + "ABCDEF", min_size=1, max_size=4), min_size=2, max_size=4))
        return "[" + "::".join(groups) + "]"
    if kind == "known":
        return draw(st.sampled_from(["docker.io", "index.docker.io", "registry-1.docker.io", "gcr.io", "k8s.gcr.io", "quay.io"]))
    return "localhost"


@st.composite
def domain(draw: st.DrawFn) -> str:
    port = draw(st.one_of(st.none(), st.integers(1, 65535)))
    return draw(host()) + (f":{port}" if port is not None else "")


tag = st.builds(lambda a, b: a + b, st.sampled_from(_TAG_FIRST), st.text(_TAG_REST, max_size=127))
digest = st.one_of(
    st.text(_HEX, min_size=64, max_size=64).map(lambda h: f"sha256:{h}"),
    st.text(_HEX, min_size=128, max_size=128).map(lambda h: f"sha512:{h}"),
)


@st.composite
def reference(draw: st.DrawFn) -> str:
    """[ domain "/" ] path [ ":" tag ] [ "@" digest ]"""
    components = draw(st.lists(path_component(), min_size=1, max_size=3))
    name = "/".join(components)
    dom = draw(st.one_of(st.none(), domain()))
    if dom is not None:
        name = f"{dom}/{name}"
    elif len(components) > 1:
        # Without a domain, a first component with "." (or "localhost") would be read as one.
        assume("." not in components[0] and components[0] != "localhost")
    text = name
    if (t := draw(st.one_of(st.none(), tag))) is not None:
        text += f":{t}"
    if (d := draw(st.one_of(st.none(), digest))) is not None:
        text += f"@{d}"
    # The grammar refuses a lone 64-hex string (an image ID); it is tested above.
    assume(not (len(text) == 64 and all(c in _HEX for c in text)))
    return text


@given(reference())
def test_property_str_round_trip(text: str) -> None:
    assert str(parse(text)) == text


@given(reference())
def test_property_normalized_parses_to_the_same_image(text: str) -> None:
    ref = parse(text)
    again = parse(ref.normalized)
    assert (again.registry, again.repository, again.tag, again.digest) == (ref.registry, ref.repository, ref.tag, ref.digest)
    assert again.normalized == ref.normalized


@given(reference(), st.sampled_from([" ", "\t", "\n", "\u00a0"]), st.data())
def test_property_white_space_anywhere_is_refused(text: str, space: str, data: st.DataObject) -> None:
    at = data.draw(st.integers(0, len(text)))
    with pytest.raises(ReferenceError, match="white space"):
        parse(text[:at] + space + text[at:])


@pytest.mark.parametrize(
    ("host", "registry"),
    [("quay.io", "quay.io"), ("QUAY.IO:443", "quay.io"), ("gcr.io:00443", "gcr.io"), ("registry-1.docker.io:443", "docker.io"),
     ("Index.Docker.IO", "docker.io"), ("docker.io:5000", "docker.io:5000"), ("[::1]:443", "[::1]"), ("quay.io:8443", "quay.io:8443")],
)
def test_endpoint_is_the_registry_a_runtime_contacts(host: str, registry: str) -> None:
    assert endpoint(host) == registry


def test_normalization_names_each_step() -> None:
    assert normalization(parse("quay.io/x:v1")) == []
    assert normalization(parse("Registry-1.Docker.IO:443/nginx")) == [
        "host Registry-1.Docker.IO:443 lower-cased",
        "default port :443 removed from registry-1.docker.io:443",
        "registry-1.docker.io is Docker Hub (docker.io)",
        "nginx is an official Docker Hub image: library/nginx",
    ]
    assert normalization(parse("bitnami/redis")) == ["no registry host: Docker Hub (docker.io)"]
