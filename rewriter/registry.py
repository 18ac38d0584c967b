"""Ask registries about manifests over the OCI Distribution API, without trusting them.

For each reference: `HEAD /v2/<repository>/manifests/<digest or tag>` (a reference that
pins a digest is asked for by digest: that is what a runtime pulls), accepting every
manifest and index media type; the digest is the registry's `Docker-Content-Digest`
(an index's own digest for a multi-arch image), else the sha256 of the manifest.
Authentication follows the registry's challenge
(https://distribution.github.io/distribution/spec/auth/token/): a 401 with
`WWW-Authenticate: Basic ...` is answered with the credentials, one with
`Bearer realm=...,service=...,scope=...` by fetching a token from the realm (with the
credentials, when there are any) and retrying with it. Credentials (rewriter.auth) never
appear in messages.

What a hostile registry or network cannot do (docs/guarantees.md, "Registries"):
- get credentials over plain HTTP from a host not allowed plain HTTP (`--plain-http`, or
  `plain_http: true` under `registries:`), nor send them to a token realm outside the
  registry's own site (its host, or hosts under its parent domain) unless `token_hosts`
  names it;
- downgrade HTTPS to HTTP with a redirect (refused), or move credentials to another host
  with one (the Authorization header is dropped);
- make kmirror read more than MAX_BODY bytes of a body (bodies it does not need are not
  read at all), or keep one request alive past its deadline (`Options.deadline`, whatever
  the pace of the bytes).

Each registry is first pinged (`GET /v2/`): one that cannot be reached (after retries
with exponential backoff, which also cover 429 and 5xx answers) is a KmirrorError,
`cannot reach registry: <host>: <why>`; a token service that cannot be reached is
`cannot reach token server: <host> (for registry <host>): <why>`. Requests run on a
bounded pool of threads. httpx is imported lazily so that the command line starts fast.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import json
import re
import ssl
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from rewriter.auth import Credentials, CredentialLookup, no_credentials
from rewriter.config import RegistrySettings, settings_for
from rewriter.errors import KmirrorError, printable
from rewriter.reference import DOCKER_HUB, ImageRef

if TYPE_CHECKING:
    import httpx

MANIFEST_TYPES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
)
DOCKER_HUB_API = "registry-1.docker.io"
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})

PRESENT, MISSING, DENIED, FAILED = "present", "missing", "denied", "failed"


class TokenError(KmirrorError):
    """The token service refused or gave no token: an access problem, not a missing image."""


@dataclass(frozen=True)
class Options:
    """How to talk to registries: per-host settings, overrides, credentials, limits.

    `plain_http` and `insecure` (the command-line flags) apply to every host, over what
    `registries` says. `timeout` bounds each read, `deadline` each request as a whole.
    """

    registries: tuple[RegistrySettings, ...] = ()
    plain_http: bool = False
    insecure: bool = False
    credentials: CredentialLookup = no_credentials
    timeout: float = 10.0
    deadline: float = 30.0
    retries: int = 3
    backoff: float = 0.5
    concurrency: int = 8

    def settings(self, host: str) -> RegistrySettings:
        """The settings for `host` (`registries:`), with the command-line overrides applied."""
        found = settings_for(self.registries, host)
        if self.plain_http:
            return found._replace(plain_http=True)
        return found._replace(skip_verify=True, ca_file=None) if self.insecure else found


@dataclass(frozen=True)
class Answer:
    """What a registry said about one reference: `state` is PRESENT, MISSING, DENIED or FAILED.

    `digest` is the manifest's digest when the registry answered PRESENT and said it.
    """

    ref: ImageRef
    state: str
    detail: str = ""
    digest: str | None = None


def report_line(mirror: object, state: str, detail: str, source: object) -> str:
    """One line of `verify`'s report: the mirror's state, and why; what a registry said (in `detail`:
    its error text, the digest it sent) is shown with control characters escaped."""
    return f"{mirror}: {state}{': ' + printable(detail) if detail else ''} (source {source})\n"


@dataclass(frozen=True)
class Reply:
    """A finished HTTP exchange: status, headers (names lower-cased), and the body when it was asked for."""

    status: int
    headers: dict[str, str]
    body: bytes = field(default=b"", repr=False)


class _Refused(Exception):
    """A redirect kmirror does not follow, or a body larger than it reads."""


MAX_BODY = 4 * 1024 * 1024  # distribution's own limit on a manifest
MAX_REDIRECTS = 10
REDIRECTS = frozenset({301, 302, 303, 307, 308})


def manifest_reference(ref: ImageRef) -> str:
    """What to ask the registry for: the digest when pinned, else the tag, else `latest`."""
    return ref.digest or ref.tag or "latest"


def endpoint_host(host: str) -> str:
    """The host that serves registry `host`'s API (Docker Hub's is registry-1.docker.io)."""
    return DOCKER_HUB_API if host == DOCKER_HUB else host


def check(
    refs: Sequence[ImageRef], options: Options, done: Callable[[int, int], None] = lambda n, total: None, digests: bool = False,
) -> list[Answer]:
    """Ask each reference's registry whether its manifest exists; answers in input order.

    With `digests`, every PRESENT answer carries the manifest's digest. Raise KmirrorError
    when a registry cannot be reached. `done(n, total)` is called as answers come in (for
    a progress bar).
    """
    with Client(options) as client:
        for host in sorted({ref.registry for ref in refs}):
            client.ping(host)
        answers: list[Answer] = []
        ask = client.digest if digests else client.exists
        with ThreadPoolExecutor(max_workers=max(1, options.concurrency)) as pool:
            for answer in pool.map(ask, refs):
                answers.append(answer)
                done(len(answers), len(refs))
        return answers


class Client:
    """An HTTP client for the registries of one run, remembering their challenges and tokens."""

    def __init__(self, options: Options) -> None:
        import httpx

        from rewriter.transport import Deadline, transport

        self.options = options
        self._deadline = Deadline()
        mounts: dict[str, httpx.BaseTransport | None] = {}
        for entry in options.registries:
            settings = options.settings(entry.host)
            if not settings.plain_http:
                mounts[f"https://{endpoint_host(entry.host)}"] = transport(_verify(settings), self._deadline)
        self._http = httpx.Client(
            transport=transport(not options.insecure, self._deadline), mounts=mounts, timeout=options.timeout,
            follow_redirects=False, headers={"User-Agent": "kmirror", "Accept-Encoding": "identity"},
        )
        self._lock = threading.Lock()
        self._auth: dict[tuple[str, str], str] = {}  # (host, repository) -> Authorization value
        self._basic: dict[str, str] = {}  # host -> Authorization value, for Basic challenges

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self._http.close()

    def url(self, host: str, path: str) -> str:
        """The URL of API `path` on registry `host`."""
        scheme = "http" if self.options.settings(host).plain_http else "https"
        return f"{scheme}://{endpoint_host(host)}{path}"

    def ping(self, host: str) -> None:
        """Check that `host` answers as a registry; KmirrorError `cannot reach registry` otherwise."""
        reply = self._send("GET", self.url(host, "/v2/"), {}, f"registry: {host}")
        if reply.status not in (200, 401):
            raise KmirrorError(f"cannot reach registry: {host}: GET /v2/ answered HTTP {reply.status}, not a registry API")

    def exists(self, ref: ImageRef) -> Answer:
        """HEAD the manifest of `ref` and judge the answer."""
        return self._manifest(ref, "HEAD")

    def digest(self, ref: ImageRef) -> Answer:
        """As `exists`, and a PRESENT answer always carries the digest (from the manifest when not said)."""
        answer = self._manifest(ref, "HEAD")
        if answer.state == PRESENT and answer.digest is None:
            answer = self._manifest(ref, "GET")
        return answer

    def _manifest(self, ref: ImageRef, method: str) -> Answer:
        host, repository = ref.registry, ref.repository
        url = self.url(host, f"/v2/{repository}/manifests/{manifest_reference(ref)}")
        try:
            reply = self._authorized(method, url, host, repository)
        except TokenError as exc:
            return Answer(ref, DENIED, str(exc))
        except KmirrorError as exc:
            return Answer(ref, FAILED, str(exc))
        status = reply.status
        if status == 200:
            got = reply.headers.get("docker-content-digest")
            if got is None and method == "GET":
                got = "sha256:" + hashlib.sha256(reply.body).hexdigest()
            if ref.digest and got and got != ref.digest:
                return Answer(ref, MISSING, f"the registry answered digest {got}")
            return Answer(ref, PRESENT, digest=got)
        if status == 404:
            return Answer(ref, MISSING, "manifest unknown")
        if status == 401:
            known = self.options.credentials(host) is not None
            return Answer(ref, DENIED, "HTTP 401: " + ("credentials refused" if known else f"no credentials for {host}"))
        if status == 403:
            return Answer(ref, DENIED, "HTTP 403: forbidden (not served by this mirror, or no pull permission)")
        return Answer(ref, FAILED, f"HTTP {status}")

    def _authorized(self, method: str, url: str, host: str, repository: str) -> Reply:
        headers = {"Accept": ", ".join(MANIFEST_TYPES)}
        if (known := self._known_auth(host, repository)) is not None:
            headers["Authorization"] = known
        body = method == "GET"
        reply = self._send(method, url, headers, f"registry: {host}", body=body)
        if reply.status != 401:
            return reply
        value = self._answer_challenge(reply.headers.get("www-authenticate", ""), host, repository)
        if value is None:
            return reply
        return self._send(method, url, {**headers, "Authorization": value}, f"registry: {host}", body=body)

    def _known_auth(self, host: str, repository: str) -> str | None:
        with self._lock:
            return self._auth.get((host, repository)) or self._basic.get(host)

    def _answer_challenge(self, header: str, host: str, repository: str) -> str | None:
        """The Authorization value that answers `header`, or None when there is nothing to send."""
        scheme, params = parse_challenge(header)
        credentials = self.options.credentials(host)
        if scheme == "basic":
            if credentials is None or credentials.identity_token:
                return None
            value = "Basic " + _basic(credentials)
            with self._lock:
                self._basic[host] = value
            return value
        if scheme != "bearer" or "realm" not in params:
            return None
        token = self._token(params, f"repository:{repository}:pull", credentials, host)
        value = f"Bearer {token}"
        with self._lock:
            self._auth[(host, repository)] = value
        return value

    def _token(self, params: dict[str, str], scope: str, credentials: Credentials | None, host: str) -> str:
        import httpx

        try:
            realm = httpx.URL(params["realm"])
        except (httpx.InvalidURL, TypeError) as exc:
            raise TokenError(f"cannot get a token: {host}: invalid realm {params['realm']!r}: {exc}") from None
        if realm.scheme not in ("http", "https") or not realm.host:
            raise TokenError(f"cannot get a token: {host}: invalid realm {params['realm']!r}: not an HTTP(S) URL")
        server = realm.host + (f":{realm.port}" if realm.port else "")
        if credentials is not None:
            self._may_receive_credentials(host, realm.scheme, server)
        query = {"scope": params.get("scope") or scope}
        if "service" in params:
            query["service"] = params["service"]
        what = f"token server: {server} (for registry {host})"
        if credentials is not None and credentials.identity_token:
            # An identity token is an OAuth2 refresh token: POSTed to the realm for an access token.
            form = {**query, "grant_type": "refresh_token", "refresh_token": credentials.identity_token, "client_id": "kmirror"}
            reply = self._send("POST", str(realm), {}, what, body=True, form=form)
        else:
            headers = {"Authorization": "Basic " + _basic(credentials)} if credentials is not None else {}
            reply = self._send("GET", str(realm.copy_merge_params(query)), headers, what, body=True)
        if reply.status != 200:
            why = "credentials refused" if credentials is not None else "anonymous access refused"
            raise TokenError(f"cannot get a token: {host}: {server} answered HTTP {reply.status} ({why})")
        try:
            answer = json.loads(reply.body)
            token = answer.get("token") or answer.get("access_token")
        except (ValueError, AttributeError):
            token = None
        if not isinstance(token, str) or not token:
            raise TokenError(f"cannot get a token: {host}: {server} answered without a token")
        return token

    def _may_receive_credentials(self, host: str, scheme: str, server: str) -> None:
        """Raise TokenError unless the token server `server` may receive `host`'s credentials over `scheme`."""
        settings = self.options.settings(host)
        name = _hostname(server)
        if scheme == "http" and not (self.options.settings(server).plain_http or (settings.plain_http and name == _hostname(host))):
            raise TokenError(
                f"cannot get a token: {host}: its token server {server} is plain HTTP, and kmirror sends no "
                f"credentials over plain HTTP to a host not allowed it (registries: {server}: {{plain_http: true}})"
            )
        if not (same_site(endpoint_host(host), server) or server in settings.token_hosts or name in settings.token_hosts):
            raise TokenError(
                f"cannot get a token: {host}: its token server {server} is outside the registry's site, and kmirror "
                f"sends no credentials there unless told to (registries: {host}: {{token_hosts: [{name}]}})"
            )

    def _send(
        self, method: str, url: str, headers: dict[str, str], what: str, body: bool = False, form: dict[str, str] | None = None,
    ) -> Reply:
        """One request, retried with exponential backoff on transport errors, 429 and 5xx.

        `what` names the server in errors (`registry: HOST`); `body` reads the answer's body
        (at most MAX_BODY bytes), which is otherwise left unread.
        """
        import httpx

        attempts = 1 + max(0, self.options.retries)
        for attempt in range(attempts):
            last = attempt == attempts - 1
            try:
                reply = self._exchange(method, url, headers, body, form)
            except _Refused as exc:
                raise KmirrorError(f"cannot reach {what}: {exc}") from None
            except httpx.TransportError as exc:
                if last:
                    why = f"no complete answer within {self.options.deadline:g} s" if self._deadline.passed() else _why(exc, url)
                    raise KmirrorError(f"cannot reach {what}: {why}") from None
                time.sleep(self.options.backoff * 2**attempt)
                continue
            if reply.status not in RETRY_STATUSES or last:
                return reply
            time.sleep(max(self.options.backoff * 2**attempt, _retry_after(reply)))
        raise AssertionError("unreachable")

    def _exchange(self, method: str, url: str, headers: dict[str, str], body: bool, form: dict[str, str] | None) -> Reply:
        """One request and the redirects it gets, each within the deadline; no downgrade to HTTP."""
        for _ in range(MAX_REDIRECTS + 1):
            self._deadline.start(self.options.deadline)
            response = self._http.send(self._http.build_request(method, url, headers=headers, data=form), stream=True)
            try:
                location = response.headers.get("location")
                if response.status_code in REDIRECTS and location:
                    target = response.url.join(location)
                    if response.url.scheme == "https" and target.scheme != "https":
                        raise _Refused(f"refused a redirect from HTTPS to {target.scheme}://{target.host} (a downgrade)")
                    if (target.scheme, target.host, target.port) != (response.url.scheme, response.url.host, response.url.port):
                        headers = {k: v for k, v in headers.items() if k.lower() != "authorization"}
                    if response.status_code == 303:
                        method, form = "GET", None
                    url = str(target)
                    continue
                content = _read(response) if body else b""
                return Reply(response.status_code, {k.lower(): v for k, v in response.headers.items()}, content)
            finally:
                response.close()
        raise _Refused(f"more than {MAX_REDIRECTS} redirects")


def _read(response: httpx.Response) -> bytes:
    """The body, raw (kmirror asks for no content encoding), refused past MAX_BODY bytes."""
    data = bytearray()
    for chunk in response.iter_raw():
        data += chunk
        if len(data) > MAX_BODY:
            raise _Refused(f"an answer larger than {MAX_BODY // 1024 // 1024} MiB from {response.url.host} (not read further)")
    return bytes(data)


def _verify(settings: RegistrySettings) -> ssl.SSLContext | bool:
    """What httpx verifies `settings.host`'s certificate with."""
    if settings.skip_verify:
        return False
    if settings.ca_file is None:
        return True
    try:
        return ssl.create_default_context(cafile=settings.ca_file)
    except (OSError, ssl.SSLError) as exc:
        why = getattr(exc, "strerror", None) or exc
        raise KmirrorError(f"cannot read CA file: {settings.ca_file}: {why} (registries: {settings.host}: ca_file)") from None


def _hostname(server: str) -> str:
    """`server` without its port (IPv6 brackets kept)."""
    return server.split("]", 1)[0] + "]" if server.startswith("[") else server.split(":", 1)[0]


def same_site(registry: str, server: str) -> bool:
    """True when `server` is `registry`'s own host, or a host under its parent domain.

    `registry-1.docker.io` and `auth.docker.io` are one site; an IP address is its own site;
    ports do not matter (a token service on another port of the same host is the same site).
    """
    a, b = _hostname(registry).lower(), _hostname(server).lower()
    if a == b:
        return True
    try:
        ipaddress.ip_address(a.strip("[]"))
        return False
    except ValueError:
        pass
    parent = a.split(".", 1)[1] if a.count(".") >= 2 else a
    return b == parent or b.endswith("." + parent)


_PARAM_RE = re.compile(r'([A-Za-z][\w-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))')


def parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    """`('bearer', {'realm': ..., 'service': ..., 'scope': ...})` from a WWW-Authenticate value."""
    scheme, _, rest = header.strip().partition(" ")
    params = {m.group(1).lower(): m.group(2) if m.group(2) is not None else m.group(3) for m in _PARAM_RE.finditer(rest)}
    return scheme.lower(), {k: v.replace('\\"', '"') for k, v in params.items()}


def _basic(credentials: Credentials) -> str:
    return base64.b64encode(f"{credentials.username}:{credentials.password}".encode()).decode()


def _retry_after(reply: Reply) -> float:
    value = reply.headers.get("retry-after", "")
    return min(float(value), 30.0) if value.isdigit() else 0.0


def _why(exc: Exception, url: str) -> str:
    text = re.sub(r"^\[Errno -?\d+\] ", "", str(exc)) or type(exc).__name__
    if url.startswith("https:") and ("WRONG_VERSION_NUMBER" in text or "record layer failure" in text):
        text += " (an HTTP registry? set plain_http for it under registries:, or use --plain-http)"
    if "CERTIFICATE_VERIFY_FAILED" in text:
        text += " (a private CA? set ca_file for it under registries:; a self-signed certificate? skip_verify, or --insecure)"
    return text
