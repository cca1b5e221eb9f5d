"""The review page in a real browser: Playwright drives Debian's Chromium against uvicorn on 127.0.0.1."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pixlabel.review import ReviewSettings
from pixlabel.review.files import image_root
from pixlabel.store import open_store
from pixlabel.workspace import Workspace
from test_review_queue import make_workspace
from test_review_server import running_server

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium (apt-get install chromium)")]


def test_relabel_with_the_keyboard_then_undo(tmp_path: Path) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    ws = make_workspace(tmp_path)
    with open_store(ws / "pixlabel.db") as store:
        settings = ReviewSettings(image_root(Workspace(ws)), {"s3cret-ana": "ana"},
                                  allowed_hosts=frozenset({"localhost"}))
        with running_server(store, settings) as url, sync_api.sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
            try:
                page = browser.new_page()
                expect = sync_api.expect  # not wait_for_function: its string predicates are eval, which the CSP forbids
                errors: list[str] = []
                page.on("pageerror", lambda exc: errors.append(str(exc)))
                page.on("console", lambda m: errors.append(m.text) if "Content Security Policy" in m.text else None)
                page.goto(f"{url}/?token=s3cret-ana")  # sets the token cookie, redirects to /
                assert page.url == f"{url}/"
                cards = page.locator(".card")
                assert cards.count() == 12
                assert cards.nth(0).get_attribute("data-path") == "img00.png"  # least confident first
                assert page.locator("img").first.evaluate("i => i.complete && i.naturalWidth") == 8

                page.keyboard.press("ArrowRight")  # select img01 (a dog at 0.35) …
                page.keyboard.press("3")  # … and make it the third class, bird
                expect(cards.nth(1)).to_have_attribute("data-label", "bird")
                assert store.current_label("img01.png").label == "bird"  # type: ignore[union-attr]
                assert store.history("img01.png")[-1].actor == "ana"
                expect(page.locator("#st-human")).to_have_text("1")  # progress
                assert "sel" in (cards.nth(2).get_attribute("class") or "")  # selection moved on

                page.keyboard.press("a")  # accept img02's label as it is (bird)
                expect(cards.nth(2)).to_have_class(re.compile(r"\bhuman\b"))
                assert store.current_label("img02.png").source == "human"  # type: ignore[union-attr]

                page.keyboard.press("Control+z")  # undo the accept, then the relabel
                expect(cards.nth(2)).not_to_have_class(re.compile(r"\bhuman\b"))
                page.keyboard.press("u")
                expect(cards.nth(1)).to_have_attribute("data-label", "dog")
                restored = store.current_label("img01.png")
                assert restored is not None and (restored.label, restored.source) == ("dog", "model")
                assert errors == []
            finally:
                browser.close()
