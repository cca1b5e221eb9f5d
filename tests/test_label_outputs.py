"""What a run writes and says: suspects.csv, words instead of ``nan``, thumbnails per class even when nothing is
accepted, and bad files (truncated, decompression bomb) in errors.csv while the run goes on."""

from __future__ import annotations

import csv
import re
import struct
import zlib
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image
from sklearn.datasets import load_digits

from pixlabel.cli.main import main
from pixlabel.labelers.select import CVResult
from pixlabel.pipeline.config import LabelConfig
from pixlabel.pipeline.label import run_label
from pixlabel.pipeline.summary import accept_text, cv_text
from pixlabel.pipeline.suspects import suspects, write_suspects_csv
from pixlabel.trust.threshold import ACCEPT_NOTHING, ThresholdChoice

NAN = re.compile(r"\bnan\b", re.IGNORECASE)


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


# ---------------------------------------------------------------- arrays


def _decision(**kw: object) -> SimpleNamespace:
    base = dict(method="poisson", cv={}, flagged_seeds=np.zeros(0, np.int64), probs=np.zeros((0, 3)),
                target_precision=0.97, threshold=ThresholdChoice(ACCEPT_NOTHING, float("nan"), 0.0, False),
                heldout_correct=np.zeros(0, bool), notes=[])
    return SimpleNamespace(**(base | kw))


def test_suspects_suggest_the_heldout_argmax_and_score_the_doubt(tmp_path: Path) -> None:
    heldout = np.array([[0.1, 0.8, 0.1], [0.7, 0.2, 0.1], [0.2, 0.2, 0.6]])  # seeds 4, 0, 2 held out
    cv = {"probe": CVResult("probe", 0.5, np.array([2]), np.array([[0.05, 0.05, 0.9]])),
          "poisson": CVResult("poisson", 0.6, np.array([4, 0, 2]), heldout)}
    pool_probs = np.eye(3)[[0, 1, 2, 2, 0, 1]]  # (N, K) final labels; seed 3 sits at pool row 5
    d = _decision(cv=cv, flagged_seeds=np.array([4, 3]), probs=pool_probs)
    y = np.array([0, 1, 2, 0, 0])
    found = suspects(d, y, labeled_idx=np.array([0, 1, 2, 5, 4]))
    assert [(s.seed, s.given, s.suggested) for s in found] == [(4, 0, 1), (3, 0, 1)]
    assert found[0].score == pytest.approx(0.9)  # 1 - held-out P(given) from the chosen labeler's CV
    assert found[1].score == pytest.approx(1.0)  # never held out: the final probabilities of its row
    out = tmp_path / "suspects.csv"
    write_suspects_csv(found, [f"s{i}.png" for i in range(5)], ["cat", "dog", "owl"], out)
    assert out.read_text().splitlines() == ["path,given,suggested,score", "s4.png,cat,dog,0.9000",
                                            "s3.png,cat,dog,1.0000"]


def test_summary_says_why_nothing_was_accepted_in_words() -> None:
    one_seed_each = _decision(cv={"poisson": CVResult("poisson", float("nan"), np.zeros(0, np.int64),
                                                      np.zeros((0, 3)))})
    run = SimpleNamespace(decision=one_seed_each, paths=[f"{i}.png" for i in range(10)],
                          seeds={"0.png": "a", "1.png": "b", "2.png": "c"},
                          accepted=np.array([True] * 3 + [False] * 7), copy_of_seed=None)
    text = accept_text(run) + cv_text(one_seed_each)
    assert "too few seeds to hold any out" in text and "all 7 go to review" in text
    assert "no held-out check" in text and not NAN.search(text)
    run.decision = _decision(heldout_correct=np.ones(40, bool), cv={"poisson": CVResult(
        "poisson", 0.8, np.arange(40), np.full((40, 3), 1 / 3))})
    text = accept_text(run) + cv_text(run.decision)
    assert "no confidence threshold reaches the target precision 97% on 40 held-out seeds" in text
    assert not NAN.search(text)


# ---------------------------------------------------------------- real runs


def _truncated_png(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _bomb_png(path: Path, w: int = 40_000, h: int = 40_000) -> None:
    """A 1x1 PNG whose header claims w x h (1.6e9 pixels): tiny on disk, a bomb if decoded."""
    Image.new("L", (1, 1)).save(path)
    data = bytearray(path.read_bytes())
    struct.pack_into(">II", data, 16, w, h)  # IHDR data starts after signature(8) + length(4) + type(4)
    struct.pack_into(">I", data, 29, zlib.crc32(bytes(data[12:29])))
    path.write_bytes(bytes(data))


@pytest.fixture(scope="module")
def digits_folder(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    root = tmp_path_factory.mktemp("digits") / "images"
    root.mkdir()
    x, y = load_digits(return_X_y=True)
    truth = {}
    for i in range(300):
        name = f"{i:04d}.png"
        Image.fromarray((x[i].reshape(8, 8) * 16).clip(0, 255).astype(np.uint8)).save(root / name)
        truth[name] = f"digit{y[i]}"
    Image.fromarray((x[300].reshape(8, 8) * 16).astype(np.uint8)).resize((64, 64)).save(root / "truncated.png")
    _truncated_png(root / "truncated.png")
    _bomb_png(root / "bomb.png")
    return root, truth


def _seed_csv(path: Path, truth: dict[str, str], per_class: int, flip: int = 0) -> dict[str, str]:
    rng = np.random.default_rng(0)
    classes = sorted(set(truth.values()))
    seeds = {}
    for c in classes:
        for p in rng.choice(sorted(p for p, t in truth.items() if t == c), per_class, replace=False):
            seeds[str(p)] = c
    for p in list(seeds)[:flip]:  # a few deliberately wrong human labels
        seeds[p] = classes[(classes.index(seeds[p]) + 3) % len(classes)]
    path.write_text("path,label\n" + "".join(f"{p},{c}\n" for p, c in seeds.items()))
    return seeds


def _section(html: str, title: str) -> str:
    start = html.index(f"<h2>{title}</h2>")
    return html[start:html.index("</section>", start)]


@pytest.mark.slow
def test_one_seed_per_class_speaks_in_words_and_bad_files_do_not_stop_the_run(digits_folder, tmp_path: Path,
                                                                               capsys) -> None:
    images, truth = digits_folder
    seeds_csv = tmp_path / "seeds.csv"
    _seed_csv(seeds_csv, truth, per_class=1)
    ws = tmp_path / "ws"
    assert main(["label", str(images), "--labels", str(seeds_csv), "--out", str(ws), "--image-size", "32",
                 "--method", "poisson"]) == 0
    out = capsys.readouterr().out
    assert "too few seeds to hold any out" in out and not NAN.search(out), out
    html = (ws / "report.html").read_text()
    assert not NAN.search(html)
    assert "too few seeds to hold any out" in html
    samples = _section(html, "Samples per class")
    assert samples.count('<figure class="thumb">') >= 10  # model labels shown although none was accepted
    assert "to review" in samples
    errors = {r["path"]: r["reason"] for r in _rows(ws / "errors.csv")}
    assert errors["truncated.png"].startswith("truncated image data")
    assert errors["bomb.png"].startswith("decompression bomb: 1.6e9 pixels")
    labeled = {r["path"] for r in _rows(ws / "labels.csv")}
    assert labeled == set(truth)  # every readable file labeled, the bad ones not
    assert (ws / "suspects.csv").read_text().startswith("path,given,suggested,score\n")
    assert (ws / "duplicates.csv").read_text().startswith("group,path,kind\n")


@pytest.mark.slow
def test_suspects_csv_lists_what_the_decision_flags(digits_folder, tmp_path: Path) -> None:
    images, truth = digits_folder
    seeds_csv = tmp_path / "seeds.csv"
    seeds = _seed_csv(seeds_csv, truth, per_class=6, flip=4)
    run = run_label(LabelConfig(images=str(images), labels=str(seeds_csv), out=str(tmp_path / "ws"),
                                image_size=32, method="poisson-pixels", target_precision=0.97))
    rows = _rows(tmp_path / "ws" / "suspects.csv")
    flagged = [run.paths[run.labeled_idx[s]] for s in run.decision.flagged_seeds]
    assert [r["path"] for r in rows] == flagged
    # 4 of 60 seeds are wrong on purpose; the pixel view labels digits well enough to be sure of the right class
    assert rows
    heldout = run.decision.cv["poisson-pixels"]
    where = {int(s): k for k, s in enumerate(heldout.heldout_idx)}
    for r, s in zip(rows, run.decision.flagged_seeds, strict=True):
        assert r["given"] == seeds[r["path"]]
        probs = heldout.heldout_probs[where[int(s)]]
        assert r["suggested"] == run.classes[int(probs.argmax())]
        assert float(r["score"]) == pytest.approx(1 - probs[run.classes.index(r["given"])], abs=1e-4)
    assert not run.accepted[[i for i, p in enumerate(run.paths) if p not in seeds]].any()
    html = (run.workspace.report_html).read_text()
    assert _section(html, "Samples per class").count('<figure class="thumb">') >= 10
    assert not NAN.search(html)
