"""The box review page in a real browser: Playwright drives Debian's Chromium against uvicorn on 127.0.0.1.
Draw a box with the mouse, relabel it and delete a model box with the keyboard, accept an image, then check
the store, the audit history and the COCO export that ``pixlabel export`` writes."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from pixlabel.cli.main import main
from pixlabel.review import ReviewSettings
from pixlabel.review.files import image_root
from pixlabel.store import open_store
from pixlabel.workspace import Workspace
from test_review_boxes import CLASSES, H, W, make_box_workspace
from test_review_browser import ARGS, CHROMIUM
from test_review_server import running_server

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium (apt-get install chromium)")]


def test_draw_relabel_delete_and_accept_boxes_with_mouse_and_keyboard(tmp_path: Path, capsys) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    ws = make_box_workspace(tmp_path)
    with open_store(ws / "pixlabel.db") as store:
        settings = ReviewSettings(image_root(Workspace(ws)), {"s3cret-ana": "ana"})
        with running_server(store, settings) as url, sync_api.sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
            try:
                page = browser.new_page(viewport={"width": 1400, "height": 900})
                expect = sync_api.expect  # not wait_for_function: its string predicates are eval, which the CSP forbids
                errors: list[str] = []
                page.on("pageerror", lambda exc: errors.append(str(exc)))
                page.goto(f"{url}/?token=s3cret-ana")  # token cookie, then / sends a box workspace to /boxes
                assert page.url == f"{url}/boxes"
                cards = page.locator(".card")
                assert cards.count() == 6 and cards.nth(0).get_attribute("data-path") == "im00.png"
                first = cards.nth(0)
                assert first.locator(".box").count() == 2  # the rank-1 alternative is not drawn
                assert "sel" in (first.locator(".box").nth(0).get_attribute("class") or "")  # least confident

                # draw: drag across an empty part of im00 (image pixels 36..60 x 2..14 on a 5x page scale)
                stage = first.locator(".stage").bounding_box()
                assert stage is not None and round(stage["width"]) == 320 and round(stage["height"]) == 240
                scale = stage["width"] / W
                x0, y0 = stage["x"] + 36 * scale, stage["y"] + 2 * scale
                page.mouse.move(x0, y0)
                page.mouse.down()
                page.mouse.move(x0 + 12 * scale, y0 + 6 * scale, steps=5)
                page.mouse.move(x0 + 24 * scale, y0 + 12 * scale, steps=5)
                page.mouse.up()
                expect(first.locator(".box")).to_have_count(3)
                [drawn] = [lab for lab in store.labels(source="human") if lab.image == "im00.png"]
                assert drawn.label == CLASSES[0] and drawn.box is not None
                assert [round(v) for v in drawn.box.xywh] == [36, 2, 24, 12]
                assert store.history("im00.png")[-1].actor == "ana"

                # relabel the new (selected) box with the keyboard: 3 = bird
                page.keyboard.press("3")
                expect(first.locator(".box.sel[data-label='bird']")).to_have_count(1)
                [relabeled] = [lab for lab in store.labels(source="human") if lab.image == "im00.png"]
                assert relabeled.label == "bird" and relabeled.box == drawn.box

                # select the least confident model box of im00 (Tab from the start) and delete it with x
                page.keyboard.press("ArrowUp")  # back to the first image's first (least confident) box
                page.keyboard.press("x")
                expect(first.locator(".box")).to_have_count(2)
                left = sorted((lab.label, lab.source) for lab in store.labels() if lab.image == "im00.png")
                assert left == [("bird", "human"), ("dog", "model")]  # cat 0.20 and its alternative are gone

                # accept the whole image (Shift+A): every box on it is now a reviewer's, the image is done
                page.keyboard.press("Shift+A")
                expect(first).to_have_class(re.compile(r"\bdone\b"))
                assert page.locator("#st-done").text_content() == "1"
                assert {lab.source for lab in store.labels() if lab.image == "im00.png"} == {"human"}
                assert store.reviewed_box_images().keys() == {"im00.png"}
                assert errors == []
            finally:
                browser.close()

    assert main(["export", str(ws)]) == 0
    capsys.readouterr()
    coco = json.loads((ws / "labels.coco.json").read_text())
    names = {c["id"]: c["name"] for c in coco["categories"]}
    ids = {i["id"]: i["file_name"] for i in coco["images"]}
    human = sorted((names[a["category_id"]], [round(v) for v in a["bbox"]]) for a in coco["annotations"]
                   if ids[a["image_id"]] == "im00.png")
    assert human == [("bird", [36, 2, 24, 12]), ("dog", [30, 20, 24, 20])]
    assert all("score" not in a for a in coco["annotations"] if ids[a["image_id"]] == "im00.png")
    assert all(i["width"] == W and i["height"] == H for i in coco["images"])
