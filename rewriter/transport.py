"""HTTP transports whose every socket operation honours a per-request deadline.

httpx's timeouts bound each read, so a server that sends one byte every few seconds
(headers or body) keeps a request alive forever. Here each connection's socket operations
get at most the time left until the deadline of the request the calling thread is making
(`Deadline.start`), so a whole request, connection and TLS handshake included, ends by
then with a timeout error. Imported only by the registry client (it loads httpx).
"""

from __future__ import annotations

import math
import ssl
import threading
import time
import typing

import httpcore
import httpx


class Deadline(threading.local):
    """When the calling thread's current request must be over (time.monotonic)."""

    at: float = math.inf

    def start(self, seconds: float) -> None:
        """Give the request the calling thread is about to make `seconds` in all."""
        self.at = time.monotonic() + seconds

    def passed(self) -> bool:
        """True once the current request's deadline has passed."""
        return time.monotonic() >= self.at

    def left(self, timeout: float | None, error: type[Exception]) -> float:
        """`timeout`, shortened to the time left; raise `error` when none is."""
        remaining = self.at - time.monotonic()
        if remaining <= 0:
            raise error("the request's deadline passed")
        return remaining if timeout is None else min(timeout, remaining)


class _Stream(httpcore.NetworkStream):
    def __init__(self, inner: httpcore.NetworkStream, deadline: Deadline) -> None:
        self._inner, self._deadline = inner, deadline

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, self._deadline.left(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, self._deadline.left(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None) -> httpcore.NetworkStream:
        inner = self._inner.start_tls(ssl_context, server_hostname, self._deadline.left(timeout, httpcore.ConnectTimeout))
        return _Stream(inner, self._deadline)

    def get_extra_info(self, info: str) -> typing.Any:
        return self._inner.get_extra_info(info)


class _Backend(httpcore.NetworkBackend):
    def __init__(self, deadline: Deadline) -> None:
        self._inner, self._deadline = httpcore.SyncBackend(), deadline

    def connect_tcp(
        self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        left = self._deadline.left(timeout, httpcore.ConnectTimeout)
        return _Stream(self._inner.connect_tcp(host, port, left, local_address, socket_options), self._deadline)

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


def transport(verify: ssl.SSLContext | bool, deadline: Deadline) -> httpx.HTTPTransport:
    """An httpx transport (TLS verified per `verify`) whose requests end by `deadline`."""
    made = httpx.HTTPTransport(verify=verify)
    # httpx builds its connection pool without a way to pass a network backend; the pool
    # is replaced by an equal one that has ours (httpcore's public API).
    made._pool = httpcore.ConnectionPool(
        ssl_context=httpx.create_ssl_context(verify=verify), max_connections=100, max_keepalive_connections=20,
        keepalive_expiry=5.0, network_backend=_Backend(deadline),
    )  # httpx's own limits (httpx.Limits' defaults)
    return made
