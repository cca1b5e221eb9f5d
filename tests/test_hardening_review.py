"""`pixlabel review` against hostile clients: rebinding Host, reads without a token, huge bodies, odd /img paths,
headers, cookies, short secrets, token guessing."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from pixlabel.errors import InputError
from pixlabel.review import ReviewSettings, create_app
from pixlabel.review.auth import parse_tokens
from pixlabel.review.files import image_root, safe_image_path
from pixlabel.review.server import ReviewConfig, prepare
from pixlabel.store import LabelStore, open_store
from pixlabel.webguard import default_host_names
from pixlabel.workspace import Workspace
from test_review_queue import make_workspace

ANA = "ana-secret-0123456789"
AUTH = {"Authorization": f"Bearer {ANA}"}
BASE = "http://127.0.0.1:8765"


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    return make_workspace(tmp_path)


@pytest.fixture
def store(ws: Path) -> Iterator[LabelStore]:
    with open_store(ws / "pixlabel.db") as s:
        yield s


def app_for(ws: Path, store: LabelStore, **options: object) -> TestClient:
    settings = ReviewSettings(image_root(Workspace(ws)), {ANA: "ana"}, **options)  # type: ignore[arg-type]
    return TestClient(create_app(store, settings), base_url=BASE)


def test_the_cli_defaults_check_host_and_need_the_token_to_read(ws: Path) -> None:
    prepared = prepare(ReviewConfig(workspace=str(ws), tokens=(f"ana:{ANA}",)))
    try:
        settings = prepared.settings
        assert not settings.open_reads  # even on loopback: a rebinding page is a loopback client
        assert settings.allowed_hosts is not None and {"localhost", "127.0.0.1"} <= settings.allowed_hosts
        c = TestClient(create_app(prepared.store, settings), base_url=BASE)
        assert c.get("/healthz").json() == {"status": "ok"}  # open, for supervisors
        assert c.get("/api/queue").status_code == 401
        assert c.get("/api/queue", headers=AUTH).status_code == 200
        for host in ("localhost:8765", "127.0.0.1:8765", "[::1]:8765"):
            assert c.get("/api/progress", headers={**AUTH, "Host": host}).status_code == 200, host
        r = c.get("/api/labels.csv", headers={**AUTH, "Host": "rebind.attacker.example:8765"})
        assert r.status_code == 400 and "--allowed-host" in r.json()["detail"] and "cat" not in r.text
    finally:
        prepared.store.close()
    named = prepare(ReviewConfig(workspace=str(ws), host="0.0.0.0", allowed_hosts=("Review.LAN",), open_reads=True))
    try:
        assert named.settings.open_reads and "review.lan" in (named.settings.allowed_hosts or ())
    finally:
        named.store.close()


def test_bodies_over_1_mb_get_413_before_json_parsing(ws: Path, store: LabelStore) -> None:
    c = app_for(ws, store)
    huge = b'{"path": "img00.png", "label": "' + b"x" * (2 * 1024 * 1024) + b'"}'
    for headers in ({}, AUTH):
        r = c.post("/api/labels", content=huge, headers={**headers, "Content-Type": "application/json"})
        assert r.status_code == 413 and "1 MB" in r.json()["detail"]

    def chunked() -> Iterator[bytes]:  # no Content-Length: counted while it streams
        yield b'{"path": "'
        for _ in range(40):
            yield b"y" * 65536
        yield b'"}'

    r = c.post("/api/labels", content=chunked(), headers={**AUTH, "Content-Type": "application/json"})
    assert r.status_code == 413
    ok = c.post("/api/labels", json={"path": "img00.png", "label": "dog"}, headers=AUTH)
    assert ok.status_code == 200


def test_odd_image_paths_are_all_the_same_404(ws: Path, store: LabelStore, tmp_path: Path) -> None:
    images = tmp_path / "images"
    os.symlink("loop.png", images / "loop.png")  # a symlink to itself
    os.replace(images / "img05.png", images / "img05.old")
    os.symlink("img05.png", images / "img05.png")  # an image of the store turned into a loop
    (tmp_path / "secret.png").write_bytes((images / "img00.png").read_bytes())
    os.symlink(tmp_path / "secret.png", images / "out.png")
    (images / "extra.png").write_bytes((images / "img00.png").read_bytes())  # exists, not in the store
    c = app_for(ws, store, open_reads=True)
    bodies = set()
    for path in ("img00.png/x", "a" * 300 + ".png", "b" * 5000, "loop.png", "img05.png", "out.png", "extra.png",
                 "missing.png", "..%2Fsecret.png", "%2E%2E/secret.png", "img00.png%00.png", "sub/%2E%2E/img00.png"):
        r = c.get(f"/img/{path}")
        assert r.status_code == 404, path
        bodies.add(r.text)
    assert len(bodies) == 1 and "loop" not in bodies.pop()
    root = image_root(Workspace(ws))
    for bad in ("img00.png/x", "a" * 300 + ".png", "loop.png", "img05.png"):
        with pytest.raises(FileNotFoundError):
            safe_image_path(root, bad)
    assert c.get("/img/img00.png").status_code == 200


def test_security_headers_csp_nonce_and_local_docs(ws: Path, store: LabelStore) -> None:
    c = app_for(ws, store)
    c.get(f"/?token={ANA}")  # signs in (cookie)
    page = c.get("/")
    assert page.status_code == 200
    csp = page.headers["content-security-policy"]
    script_src = csp.split("script-src")[1].split(";")[0]
    assert "http" not in csp and "frame-ancestors 'none'" in csp and "'unsafe-inline'" not in script_src
    nonce = re.search(r"'nonce-([^']+)'", csp)
    assert nonce and f'<script nonce="{nonce.group(1)}">' in page.text
    assert page.headers["x-frame-options"] == "DENY" and page.headers["x-content-type-options"] == "nosniff"
    assert c.get("/").headers["content-security-policy"] != csp  # a fresh nonce per response
    docs = c.get("/docs")
    assert docs.status_code == 200 and "/api/labels" in docs.text
    assert "cdn" not in docs.text.lower() and "https://" not in docs.text and "<script" not in docs.text
    assert c.get("/openapi.json").json()["paths"]["/api/queue"]
    anonymous = app_for(ws, store)
    assert anonymous.get("/docs").status_code == 401 and anonymous.get("/openapi.json").status_code == 401
    assert anonymous.get("/redoc").status_code == 404


def test_cookie_is_httponly_and_the_page_writes_with_a_page_token(ws: Path, store: LabelStore) -> None:
    c = app_for(ws, store)
    r = c.get(f"/?token={ANA}", follow_redirects=False)
    cookie = r.headers["set-cookie"].lower()
    assert r.status_code == 303 and "httponly" in cookie and "samesite=strict" in cookie
    page = c.get("/")
    token = re.search(r'name="pixlabel-page-token" content="([0-9a-f]{64})"', page.text)
    assert token and ANA not in page.text and page.headers["cache-control"] == "no-store"
    # the cookie alone never writes (CSRF); the page token does, as the cookie's reviewer
    assert c.post("/api/labels", json={"path": "img01.png", "label": "bird"}).status_code == 401
    w = c.post("/api/labels", json={"path": "img01.png", "label": "bird"},
               headers={"Authorization": f"Bearer {token.group(1)}"})
    assert w.status_code == 200 and store.history("img01.png")[-1].actor == "ana"
    # a page token is no secret: it does not sign a browser in, and it dies with the process
    assert c.get(f"/?token={token.group(1)}", follow_redirects=False).status_code == 401
    other = app_for(ws, store)
    assert other.post("/api/labels", json={"path": "img01.png", "label": "cat"},
                      headers={"Authorization": f"Bearer {token.group(1)}"}).status_code == 401


def test_a_stale_cookie_is_dropped(ws: Path, store: LabelStore) -> None:
    c = app_for(ws, store)
    c.cookies.set("pixlabel_token", "an-old-secret-from-yesterday")
    r = c.get("/")
    assert r.status_code == 401 and "max-age=0" in r.headers["set-cookie"].lower()
    open_c = app_for(ws, store, open_reads=True)
    open_c.cookies.set("pixlabel_token", "an-old-secret-from-yesterday")
    r = open_c.get("/")
    assert r.status_code == 200 and "max-age=0" in r.headers["set-cookie"].lower()


def test_short_secrets_are_refused_at_startup(ws: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(InputError, match="at least 16"):
        parse_tokens(["ana:s3cret"])
    from pixlabel.cli.main import main

    assert main(["review", str(ws), "--token", "ana:s3cret"]) == 2
    assert "at least 16" in capsys.readouterr().err


def test_token_guessing_is_rate_limited(ws: Path, store: LabelStore) -> None:
    c = app_for(ws, store)
    codes = [c.post("/api/labels", json={"path": "img00.png", "label": "dog"},
                    headers={"Authorization": f"Bearer guess-{i:04d}-aaaaaaaaaaaa"}).status_code for i in range(12)]
    assert codes[:10] == [401] * 10 and codes[10:] == [429, 429]
    r = c.post("/api/labels", json={"path": "img00.png", "label": "dog"}, headers=AUTH)
    assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
    assert c.get("/api/queue", headers=AUTH).status_code == 429
    c2 = app_for(ws, store)
    codes = [c2.get(f"/?token=guess-{i:04d}-aaaaaaaaaaaa", follow_redirects=False).status_code for i in range(11)]
    assert codes[-1] == 429


def test_default_host_names() -> None:
    names = default_host_names("0.0.0.0", ["Review.Example."])
    assert names == {"localhost", "0.0.0.0", "review.example"}
