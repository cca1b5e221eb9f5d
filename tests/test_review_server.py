"""The review app as a real server: uvicorn on 127.0.0.1, 20 concurrent HTTP writers, the CLI end to end.

``running_server`` (uvicorn in a thread on a free port) is shared with test_review_browser.py.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import uvicorn

from pixlabel.review import ReviewSettings, create_app
from pixlabel.review.files import image_root
from pixlabel.store import LabelStore, open_store
from pixlabel.workspace import Workspace
from test_review_queue import CLASSES, fill_store, make_workspace
from test_store_db import store_url  # noqa: F401  (fixture)

WRITERS = 20


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def running_server(store: LabelStore, settings: ReviewSettings) -> Iterator[str]:
    """Serve the app with uvicorn in a background thread; yields its base URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(store, settings), host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def test_twenty_concurrent_http_writers_lose_nothing(store_url: str, tmp_path: Path) -> None:  # noqa: F811
    ws = make_workspace(tmp_path, n=0)
    tokens = {f"secret-{i}": f"rev{i}" for i in range(WRITERS)}
    with open_store(store_url) as store:
        paths = fill_store(store, n=WRITERS)
        settings = ReviewSettings(image_root(Workspace(ws)), tokens)
        with running_server(store, settings) as url:
            barrier = threading.Barrier(WRITERS)
            codes: list[int] = []

            def writer(i: int) -> None:
                headers = {"Authorization": f"Bearer secret-{i}"}
                with httpx.Client(base_url=url, headers=headers, timeout=60) as http:
                    barrier.wait()
                    for k in range(3):  # own image three times, then the shared one
                        codes.append(http.post("/api/labels", json={"path": paths[i],
                                                                    "label": CLASSES[(i + k) % 3]}).status_code)
                    codes.append(http.post("/api/labels", json={"path": "img00.png",
                                                                "label": CLASSES[i % 3]}).status_code)

            threads = [threading.Thread(target=writer, args=(i,)) for i in range(WRITERS)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(timeout=120)
            assert codes == [200] * (WRITERS * 4)
    with open_store(store_url) as again:  # a fresh connection, as after a restart
        for i in range(1, WRITERS):
            history = again.history(paths[i])
            assert [(h.actor, h.new["label"]) for h in history if h.reason == "human correction"] == [  # type: ignore[index]
                (f"rev{i}", CLASSES[(i + k) % 3]) for k in range(3)]
            assert again.current_label(paths[i]).label == CLASSES[(i + 2) % 3]  # type: ignore[union-attr]
        shared = [h for h in again.history("img00.png") if h.reason == "human correction"]
        assert len(shared) == 3 + WRITERS
        # the final label is the last write's, and every write saw the one before it as "old"
        assert again.current_label("img00.png").label == shared[-1].new["label"]  # type: ignore[union-attr,index]
        assert all(b.old == a.new for a, b in zip(shared, shared[1:], strict=False))


@pytest.mark.slow
def test_cli_serves_prints_a_token_and_keeps_writes_across_a_restart(tmp_path: Path) -> None:
    ws = make_workspace(tmp_path)
    port = free_port()
    cmd = [sys.executable, "-m", "pixlabel.cli.main", "review", str(ws), "--port", str(port)]

    def start() -> tuple[subprocess.Popen[str], str]:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"})
        assert proc.stdout is not None
        lines = []
        for line in proc.stdout:
            lines.append(line)
            if "API docs" in line:
                break
        out = "".join(lines)
        match = re.search(r"reviewer token \(reviewer\): (\S+)", out)
        assert match, out
        for _ in range(200):
            try:
                httpx.get(f"http://127.0.0.1:{port}/api/progress", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.05)
        return proc, match.group(1)

    proc, token = start()
    try:
        r = httpx.post(f"http://127.0.0.1:{port}/api/labels", json={"path": "img00.png", "label": "bird"},
                       headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 200 and r.json()["labeler"] == "reviewer"
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    proc, token2 = start()
    try:
        assert token2 != token  # a new secret every start when none is given
        items = httpx.get(f"http://127.0.0.1:{port}/api/queue", params={"source": "human"},
                          headers={"Authorization": f"Bearer {token2}"}).json()["items"]  # reads need it too
        assert [(x["path"], x["label"]) for x in items] == [("img00.png", "bird")]
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_cli_refuses_a_missing_workspace_and_bad_tokens(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from pixlabel.cli.main import main

    assert main(["review", str(tmp_path / "nope")]) == 2
    assert "workspace directory not found" in capsys.readouterr().err
    ws = make_workspace(tmp_path)
    assert main(["review", str(ws), "--token", "bad name:x"]) == 2
    assert "NAME:SECRET" in capsys.readouterr().err
    (ws / "config.yaml").write_text("out: ws\n")
    assert main(["review", str(ws)]) == 2
    assert "pass --images" in capsys.readouterr().err
