"""Ask registries whether manifests exist, over the OCI Distribution API.

For each reference: `HEAD /v2/<repository>/manifests/<digest or tag>` (a reference that
pins a digest is asked for by digest: that is what a runtime pulls), accepting every
manifest and index media type. Authentication follows the registry's challenge
(https://distribution.github.io/distribution/spec/auth/token/): a 401 with
`WWW-Authenticate: Basic ...` is answered with the credentials, one with
`Bearer realm=...,service=...,scope=...` by fetching a token from the realm (with the
credentials, when there are any) and retrying with it. Credentials come from the command
line or the Docker config file (`auths` entries, credential helpers) and never appear in
messages.

Each registry is first pinged (`GET /v2/`): one that cannot be reached (after retries
with exponential backoff, which also cover 429 and 5xx answers) is a KmirrorError,
`cannot reach registry: <host>: <why>`. Requests run on a bounded pool of threads.
httpx is imported lazily so that the command line starts fast.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from rewriter.errors import KmirrorError
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
DOCKER_HUB_CONFIG_KEY = "https://index.docker.io/v1/"
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})

PRESENT, MISSING, DENIED, FAILED = "present", "missing", "denied", "failed"


@dataclass(frozen=True)
class Credentials:
    """A user name and password (or token) for one registry; `repr` hides the secret."""

    username: str
    password: str = field(repr=False)


CredentialLookup = Callable[[str], "Credentials | None"]


def no_credentials(host: str) -> Credentials | None:
    """The lookup that knows no credentials (anonymous access)."""
    return None


class TokenError(KmirrorError):
    """The token service refused or gave no token: an access problem, not a missing image."""


@dataclass(frozen=True)
class Options:
    """How to talk to registries: transport, credentials, limits."""

    plain_http: bool = False
    insecure: bool = False
    credentials: CredentialLookup = no_credentials
    timeout: float = 10.0
    retries: int = 3
    backoff: float = 0.5
    concurrency: int = 8


@dataclass(frozen=True)
class Answer:
    """What a registry said about one reference: `state` is PRESENT, MISSING, DENIED or FAILED."""

    ref: ImageRef
    state: str
    detail: str = ""


def manifest_reference(ref: ImageRef) -> str:
    """What to ask the registry for: the digest when pinned, else the tag, else `latest`."""
    return ref.digest or ref.tag or "latest"


def check(refs: Sequence[ImageRef], options: Options, done: Callable[[int, int], None] = lambda n, total: None) -> list[Answer]:
    """Ask each reference's registry whether its manifest exists; answers in input order.

    Raise KmirrorError when a registry cannot be reached. `done(n, total)` is called as
    answers come in (for a progress bar).
    """
    with Client(options) as client:
        for host in sorted({ref.registry for ref in refs}):
            client.ping(host)
        answers: list[Answer] = []
        with ThreadPoolExecutor(max_workers=max(1, options.concurrency)) as pool:
            for answer in pool.map(client.exists, refs):
                answers.append(answer)
                done(len(answers), len(refs))
        return answers


class Client:
    """An HTTP client for the registries of one run, remembering their challenges and tokens."""

    def __init__(self, options: Options) -> None:
        import httpx

        self.options = options
        self._http = httpx.Client(
            verify=not options.insecure, timeout=options.timeout, follow_redirects=True,
            headers={"User-Agent": "kmirror"},
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
        scheme = "http" if self.options.plain_http else "https"
        return f"{scheme}://{DOCKER_HUB_API if host == DOCKER_HUB else host}{path}"

    def ping(self, host: str) -> None:
        """Check that `host` answers as a registry; KmirrorError `cannot reach registry` otherwise."""
        response = self._send("GET", self.url(host, "/v2/"), {}, host)
        if response.status_code not in (200, 401):
            raise KmirrorError(f"cannot reach registry: {host}: GET /v2/ answered HTTP {response.status_code}, not a registry API")

    def exists(self, ref: ImageRef) -> Answer:
        """HEAD the manifest of `ref` and judge the answer."""
        host, repository = ref.registry, ref.repository
        url = self.url(host, f"/v2/{repository}/manifests/{manifest_reference(ref)}")
        try:
            response = self._authorized("HEAD", url, host, repository)
        except TokenError as exc:
            return Answer(ref, DENIED, str(exc))
        except KmirrorError as exc:
            return Answer(ref, FAILED, str(exc))
        status = response.status_code
        if status == 200:
            got = response.headers.get("Docker-Content-Digest")
            if ref.digest and got and got != ref.digest:
                return Answer(ref, MISSING, f"the registry answered digest {got}")
            return Answer(ref, PRESENT)
        if status == 404:
            return Answer(ref, MISSING, "manifest unknown")
        if status == 401:
            known = self.options.credentials(host) is not None
            return Answer(ref, DENIED, "HTTP 401: " + ("credentials refused" if known else f"no credentials for {host}"))
        if status == 403:
            return Answer(ref, DENIED, "HTTP 403: forbidden (not served by this mirror, or no pull permission)")
        return Answer(ref, FAILED, f"HTTP {status}")

    def _authorized(self, method: str, url: str, host: str, repository: str) -> httpx.Response:
        headers = {"Accept": ", ".join(MANIFEST_TYPES)}
        if (known := self._known_auth(host, repository)) is not None:
            headers["Authorization"] = known
        response = self._send(method, url, headers, host)
        if response.status_code != 401:
            return response
        value = self._answer_challenge(response.headers.get("WWW-Authenticate", ""), host, repository)
        if value is None:
            return response
        return self._send(method, url, {**headers, "Authorization": value}, host)

    def _known_auth(self, host: str, repository: str) -> str | None:
        with self._lock:
            return self._auth.get((host, repository)) or self._basic.get(host)

    def _answer_challenge(self, header: str, host: str, repository: str) -> str | None:
        """The Authorization value that answers `header`, or None when there is nothing to send."""
        scheme, params = parse_challenge(header)
        credentials = self.options.credentials(host)
        if scheme == "basic":
            if credentials is None:
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
        query = {"scope": params.get("scope") or scope}
        if "service" in params:
            query["service"] = params["service"]
        headers = {"Authorization": "Basic " + _basic(credentials)} if credentials is not None else {}
        import httpx

        try:
            url = httpx.URL(params["realm"], params=query)
        except (httpx.InvalidURL, TypeError) as exc:
            raise TokenError(f"cannot get a token: {host}: invalid realm {params['realm']!r}: {exc}") from None
        response = self._send("GET", str(url), headers, host)
        if response.status_code != 200:
            why = "credentials refused" if credentials is not None else "anonymous access refused"
            raise TokenError(f"cannot get a token: {host}: {url.host} answered HTTP {response.status_code} ({why})")
        try:
            body = response.json()
            token = body.get("token") or body.get("access_token")
        except (ValueError, AttributeError):
            token = None
        if not isinstance(token, str) or not token:
            raise TokenError(f"cannot get a token: {host}: {url.host} answered without a token")
        return token

    def _send(self, method: str, url: str, headers: dict[str, str], host: str) -> httpx.Response:
        """One request, retried with exponential backoff on transport errors, 429 and 5xx."""
        import httpx

        attempts = 1 + max(0, self.options.retries)
        for attempt in range(attempts):
            last = attempt == attempts - 1
            try:
                response = self._http.request(method, url, headers=headers)
            except httpx.TransportError as exc:
                if last:
                    raise KmirrorError(f"cannot reach registry: {host}: {_why(exc, self.options.plain_http)}") from None
                time.sleep(self.options.backoff * 2**attempt)
                continue
            if response.status_code not in RETRY_STATUSES or last:
                return response
            time.sleep(max(self.options.backoff * 2**attempt, _retry_after(response)))
        raise AssertionError("unreachable")


_PARAM_RE = re.compile(r'([A-Za-z][\w-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))')


def parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    """`('bearer', {'realm': ..., 'service': ..., 'scope': ...})` from a WWW-Authenticate value."""
    scheme, _, rest = header.strip().partition(" ")
    params = {m.group(1).lower(): m.group(2) if m.group(2) is not None else m.group(3) for m in _PARAM_RE.finditer(rest)}
    return scheme.lower(), {k: v.replace('\\"', '"') for k, v in params.items()}


def _basic(credentials: Credentials) -> str:
    return base64.b64encode(f"{credentials.username}:{credentials.password}".encode()).decode()


def _retry_after(response: httpx.Response) -> float:
    value = response.headers.get("Retry-After", "")
    return min(float(value), 30.0) if value.isdigit() else 0.0


def _why(exc: Exception, plain_http: bool) -> str:
    text = re.sub(r"^\[Errno -?\d+\] ", "", str(exc)) or type(exc).__name__
    if not plain_http and ("WRONG_VERSION_NUMBER" in text or "record layer failure" in text):
        text += " (an HTTP registry? use --plain-http)"
    if "CERTIFICATE_VERIFY_FAILED" in text:
        text += " (a self-signed certificate? use --insecure)"
    return text


# Credentials -------------------------------------------------------------------------


def docker_config_path(environ: Mapping[str, str] = os.environ) -> Path:
    """`$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`."""
    folder = environ.get("DOCKER_CONFIG")
    return Path(folder) / "config.json" if folder else Path.home() / ".docker" / "config.json"


def docker_config_lookup(path: Path) -> CredentialLookup:
    """Credentials by registry host from the Docker config file at `path` (missing file: none).

    Reads `auths` (`auth` as base64 `user:password`, or `username`/`password`), then
    `credHelpers`/`credsStore` (`docker-credential-<name> get`). Docker Hub's entry is
    `https://index.docker.io/v1/`.
    """
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        config = {}
    except (OSError, ValueError) as exc:
        raise KmirrorError(f"cannot read Docker config: {path}: {exc}") from None
    if not isinstance(config, dict):
        raise KmirrorError(f"cannot read Docker config: {path}: not a JSON object")
    auths = {_config_host(key): value for key, value in (config.get("auths") or {}).items() if isinstance(value, dict)}
    helpers = {_config_host(key): value for key, value in (config.get("credHelpers") or {}).items()}
    store = config.get("credsStore")

    def lookup(host: str) -> Credentials | None:
        entry = auths.get(host)
        if entry:
            found = _from_auth_entry(entry, path, host)
            if found is not None:
                return found
        helper = helpers.get(host) or store
        return _from_helper(helper, host) if helper else None

    return lookup


def _config_host(key: str) -> str:
    host = re.sub(r"^[a-z]+://", "", key.strip()).split("/", 1)[0].lower()
    return DOCKER_HUB if host in ("index.docker.io", "registry-1.docker.io", "docker.io") else host


def _from_auth_entry(entry: dict[str, object], path: Path, host: str) -> Credentials | None:
    auth = entry.get("auth")
    if isinstance(auth, str) and auth:
        try:
            username, sep, password = base64.b64decode(auth, validate=True).decode("utf-8").partition(":")
        except ValueError:
            sep = ""
        if not sep:
            raise KmirrorError(f"cannot read Docker config: {path}: auths entry for {host}: 'auth' is not base64 of user:password")
        return Credentials(username, password)
    user, secret = entry.get("username"), entry.get("password")
    if isinstance(user, str) and isinstance(secret, str):
        return Credentials(user, secret)
    return None


def _from_helper(helper: str, host: str) -> Credentials | None:
    server = DOCKER_HUB_CONFIG_KEY if host == DOCKER_HUB else host
    try:
        done = subprocess.run(
            [f"docker-credential-{helper}", "get"], input=server, capture_output=True, text=True, timeout=30, check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if done.returncode != 0:
        return None
    try:
        answer = json.loads(done.stdout)
    except ValueError:
        return None
    username, secret = answer.get("Username"), answer.get("Secret")
    if not isinstance(username, str) or not isinstance(secret, str) or not secret or username == "<token>":
        return None
    return Credentials(username, secret)


def login(host: str, credentials: Credentials, fallback: CredentialLookup) -> CredentialLookup:
    """A lookup that gives `credentials` for `host` and asks `fallback` for any other host."""
    return lambda asked: credentials if asked == host else fallback(asked)
