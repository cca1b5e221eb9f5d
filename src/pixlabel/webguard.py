"""What both HTTP servers (``serve`` and ``review``) need to stay up and private against hostile clients.

ASGI middleware: :class:`BodyLimit` (413 above a size, 408 for a body that stalls, both before the app
parses anything), :class:`HostCheck` (DNS-rebinding guard), :class:`SecurityHeaders`; and the token pieces:
:func:`bearer`, :func:`check_secret`, :func:`is_loopback`, :class:`FailedAuthLimiter`.

>>> host_allowed("127.0.0.1:8765", frozenset()), host_allowed("evil.example:8765", frozenset({"localhost"}))
(True, False)
>>> is_loopback("127.0.0.1"), is_loopback("0.0.0.0")
(True, False)
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import secrets
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping, MutableMapping
from typing import Any

from pixlabel.errors import InputError

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

MIN_SECRET_CHARS = 16  # 16 URL-safe characters are ~96 bits: out of reach of guessing at any request rate
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})


async def send_json(send: Send, status: int, body: Mapping[str, Any],
                    headers: Iterable[tuple[bytes, bytes]] = ()) -> None:
    """Answer a request from middleware (the app never ran) with a small JSON body."""
    data = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode()),
                            (b"connection", b"close"), *headers]})
    await send({"type": "http.response.body", "body": data})


class BodyRejected(Exception):
    """Raised into the app by :class:`BodyLimit`'s receive; the middleware answers it. Apps that catch broad
    exceptions around body parsing must re-raise it."""


class _BodyTooLarge(BodyRejected):
    pass


class _BodyStalled(BodyRejected):
    pass


class BodyLimit:
    """413 for a body over ``limit`` bytes, from Content-Length before anything is read or, for a chunked
    body, as soon as the running count passes it; 408 when the client sends nothing for ``idle_s`` seconds
    mid-body or takes longer than ``total_s`` for the whole body (slowloris-style uploads hold a connection
    and a request task each). ``error_key`` names the JSON field of the message (``error`` or ``detail``);
    ``on_reject(path, status)`` lets the app count rejections."""

    def __init__(self, app: ASGIApp, *, limit: int, hint: str = "", error_key: str = "error",
                 idle_s: float = 20.0, total_s: float = 120.0,
                 on_reject: Callable[[str, int], None] | None = None) -> None:
        self.app, self.limit, self.hint, self.error_key = app, limit, hint, error_key
        self.idle_s, self.total_s, self.on_reject = idle_s, total_s, on_reject

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._reject(scope, send, 413)
            return
        seen, started, body_done = 0, False, False
        rejected: int | None = None
        deadline = time.monotonic() + self.total_s

        async def guarded_receive() -> Message:
            nonlocal seen, body_done, rejected
            if body_done:  # after the body only a disconnect can come: wait for it without a deadline
                return await receive()
            timeout = min(self.idle_s, deadline - time.monotonic())
            try:
                message = await asyncio.wait_for(receive(), timeout=max(timeout, 0.001))
            except TimeoutError:
                rejected = 408
                raise _BodyStalled from None
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                body_done = not message.get("more_body", False)
                if seen > self.limit:
                    rejected = 413
                    raise _BodyTooLarge
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if rejected is not None:  # the app caught our signal and answers something else (FastAPI: 400)
                if message["type"] == "http.response.start" and not started:
                    started = True
                    await self._reject(scope, send, rejected)
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, guarded_receive, guarded_send)
        except BodyRejected:
            pass
        if rejected is not None and not started:
            await self._reject(scope, send, rejected)

    async def _reject(self, scope: Scope, send: Send, status: int) -> None:
        if self.on_reject is not None:
            self.on_reject(str(scope.get("path", "?")), status)
        if status == 413:
            message = f"request body larger than the {_size(self.limit)} limit{self.hint}"
        else:
            message = f"request body not received in time (idle {self.idle_s:g} s or {self.total_s:g} s in all)"
        await send_json(send, status, {self.error_key: message})


def _size(n: int) -> str:
    return f"{n / (1024 * 1024):g} MB"


def host_allowed(host_header: str, names: frozenset[str]) -> bool:
    """Whether a request's ``Host`` is one this server answers to: any IP literal (a page can only reach an
    IP-literal origin that is this server itself, so rebinding needs a name) or one of ``names``."""
    host = host_header.strip().lower()
    if host.startswith("["):  # [::1]:8765
        host = host[1:host.find("]")] if "]" in host else host
    elif host.count(":") == 1:
        host = host.rsplit(":", 1)[0]
    host = host.rstrip(".")
    if not host:
        return False
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return host in names


def default_host_names(bound: str, extra: Iterable[str] = ()) -> frozenset[str]:
    """The names a server bound to ``bound`` answers to: localhost, the bound name (if a name) and ``extra``."""
    return frozenset({"localhost", bound.lower().rstrip("."), *(h.lower().rstrip(".") for h in extra)})


class HostCheck:
    """400 for a request whose ``Host`` header is not this server's (DNS rebinding: a web page re-points its
    own name at 127.0.0.1 and reads the answers as same-origin)."""

    def __init__(self, app: ASGIApp, *, names: frozenset[str], error_key: str = "error") -> None:
        self.app, self.names, self.error_key = app, names, error_key

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            host = dict(scope.get("headers") or []).get(b"host", b"").decode("latin-1")
            if not host_allowed(host, self.names):
                await send_json(send, 400, {self.error_key: f"Host {host[:100]!r} is not served here; "
                                                            "start the server with --allowed-host NAME"})
                return
        await self.app(scope, receive, send)


class SecurityHeaders:
    """Adds headers every response of a server should carry; ``csp`` may contain ``{nonce}``, filled with a
    fresh random value per request and kept in ``scope["state"]["csp_nonce"]`` for templates."""

    def __init__(self, app: ASGIApp, *, csp: str | None = None) -> None:
        self.app, self.csp = app, csp

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        nonce = secrets.token_urlsafe(16)
        scope.setdefault("state", {})["csp_nonce"] = nonce
        extra = [(b"x-content-type-options", b"nosniff"), (b"x-frame-options", b"DENY"),
                 (b"referrer-policy", b"no-referrer")]
        if self.csp is not None:
            extra.append((b"content-security-policy", self.csp.format(nonce=nonce).encode()))

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, with_headers)


def bearer(authorization: str | None) -> str | None:
    """The secret of an ``Authorization: Bearer SECRET`` header, else None.

    >>> bearer("Bearer abc"), bearer("Basic abc"), bearer(None)
    ('abc', None, None)
    """
    scheme, _, value = (authorization or "").partition(" ")
    if scheme.lower() != "bearer":
        return None
    return value.strip() or None


def check_secret(secret: str, *, flag: str = "--token") -> str:
    """``secret`` if it is long enough to be a credential; InputError (exit 2) otherwise."""
    if len(secret) < MIN_SECRET_CHARS:
        raise InputError(f"{flag}: the secret has {len(secret)} characters; use at least {MIN_SECRET_CHARS} "
                         "(e.g. python -c 'import secrets; print(secrets.token_urlsafe(18))')")
    return secret


def matches(secret: str | None, known: Iterable[str]) -> bool:
    """Whether ``secret`` is one of ``known``, compared in constant time."""
    if not secret:
        return False
    found = False
    for k in known:
        found |= secrets.compare_digest(secret.encode(), k.encode())
    return found


def is_loopback(host: str) -> bool:
    """Whether binding to ``host`` keeps the server reachable from this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything, so treat it as public


class FailedAuthLimiter:
    """At most ``max_failures`` wrong tokens per client address in a sliding ``window_s``; after that the
    address gets 429 until its oldest failure leaves the window. Thread-safe (the review app's endpoints run
    in a thread pool); keeps at most ``max_clients`` addresses so a spray of sources cannot grow it."""

    def __init__(self, *, max_failures: int = 10, window_s: float = 60.0, max_clients: int = 10_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.max_failures, self.window_s, self.max_clients, self.clock = max_failures, window_s, max_clients, clock
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def retry_after(self, client: str) -> float:
        """Seconds until ``client`` may try again; 0 when it may now."""
        with self._lock:
            q = self._prune(client)
            if q is None or len(q) < self.max_failures:
                return 0.0
            return max(q[0] + self.window_s - self.clock(), 0.001)

    def failed(self, client: str) -> None:
        with self._lock:
            q = self._prune(client)
            if q is None:
                if len(self._failures) >= self.max_clients:
                    self._evict()
                q = self._failures[client] = deque(maxlen=self.max_failures)
            q.append(self.clock())

    def _prune(self, client: str) -> deque[float] | None:
        q = self._failures.get(client)
        if q is None:
            return None
        horizon = self.clock() - self.window_s
        while q and q[0] < horizon:
            q.popleft()
        if not q:
            del self._failures[client]
            return None
        return q

    def _evict(self) -> None:
        horizon = self.clock() - self.window_s
        for key in [k for k, q in self._failures.items() if not q or q[-1] < horizon]:
            del self._failures[key]
        while len(self._failures) >= self.max_clients:  # all recent: drop the oldest-inserted
            del self._failures[next(iter(self._failures))]


def client_address(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "?"
