"""The shared guards of both servers: body limits and stalls, Host names, the failed-token limiter."""

from __future__ import annotations

import asyncio
from typing import Any

from pixlabel.webguard import BodyLimit, FailedAuthLimiter, host_allowed


async def _echo_length(scope: Any, receive: Any, send: Any) -> None:
    size = 0
    while True:
        message = await receive()
        size += len(message.get("body", b""))
        if not message.get("more_body"):
            break
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": str(size).encode()})


def _call(app: Any, chunks: list[bytes | None], headers: list[tuple[bytes, bytes]] = []) -> list[Any]:  # noqa: B006
    """Run one request through ``app``; ``None`` in ``chunks`` is a client that stops sending."""
    sent: list[Any] = []

    async def receive() -> dict[str, Any]:
        chunk = chunks.pop(0) if chunks else None
        if chunk is None:
            await asyncio.sleep(3600)
        return {"type": "http.request", "body": chunk, "more_body": bool(chunks)}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app({"type": "http", "path": "/x", "headers": headers}, receive, send))
    return sent


def test_body_limit_answers_413_408_or_passes() -> None:
    app = BodyLimit(_echo_length, limit=100, idle_s=0.2, total_s=5)
    ok = _call(app, [b"a" * 60, b"b" * 30])
    assert ok[0]["status"] == 200 and ok[1]["body"] == b"90"
    assert _call(app, [b"a" * 60, b"b" * 60])[0]["status"] == 413  # chunked: counted as it streams
    assert _call(app, [], headers=[(b"content-length", b"101")])[0]["status"] == 413  # declared: nothing read
    stalled = _call(app, [b"a" * 10, None])  # slowloris: a few bytes, then nothing
    assert stalled[0]["status"] == 408 and b"not received in time" in stalled[1]["body"]
    slow = BodyLimit(_echo_length, limit=10**6, idle_s=1, total_s=0.3)
    assert _call(slow, [b"a", None])[0]["status"] == 408  # the whole-body deadline


def test_host_names() -> None:
    names = frozenset({"localhost", "review.lan"})
    for ok in ("127.0.0.1", "127.0.0.1:8765", "[::1]:8765", "192.168.1.20:80", "LOCALHOST:1", "review.lan.",
               "Review.LAN:8765"):
        assert host_allowed(ok, names), ok
    for bad in ("", "evil.example", "evil.example:8765", "127.0.0.1.evil.example", "localhost.evil.example",
                "[::1", "review.lan@evil"):
        assert not host_allowed(bad, names), bad


def test_failed_auth_limiter_window_and_size() -> None:
    now = [0.0]
    limiter = FailedAuthLimiter(max_failures=3, window_s=10, max_clients=2, clock=lambda: now[0])
    for _ in range(3):
        assert limiter.retry_after("a") == 0
        limiter.failed("a")
        now[0] += 1
    assert limiter.retry_after("a") == 7.0  # the first failure leaves the window at t=10
    assert limiter.retry_after("b") == 0  # per address
    now[0] = 10.5
    assert limiter.retry_after("a") == 0
    for client in ("c", "d", "e"):
        limiter.failed(client)
    assert len(limiter._failures) <= 2  # a spray of addresses cannot grow it without bound
