"""detection_metrics on hand-made datasets whose AP can be worked out by hand, and the detection report."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from pycocotools import mask as cocomask

from pixlabel.detect.eval_report import write_detection_report
from pixlabel.detect.metrics import detection_metrics
from pixlabel.errors import InputError
from pixlabel.records import Box, Dataset, ImageInfo, Label, Mask, Ontology, Provenance

SIZE = (64, 64)
MODEL = Provenance(source="model")


def box(x: float, y: float, side: float = 20) -> Box:
    return Box(x, y, x + side, y + side, image_size=SIZE)


def square_mask(x: int, y: int, side: int = 20) -> Mask:
    pixels = np.zeros(SIZE, np.uint8)
    pixels[y:y + side, x:x + side] = 1
    rle = cocomask.encode(np.asfortranarray(pixels))
    return Mask(SIZE, rle={"size": list(SIZE), "counts": rle["counts"].decode("ascii")})


def dataset(labels: list[Label], classes: tuple[str, ...] = ("cat", "dog"), images: tuple[str, ...] = ()) -> Dataset:
    paths = images or tuple(dict.fromkeys(lab.image for lab in labels))
    return Dataset([ImageInfo(p, SIZE) for p in paths], labels, Ontology(classes))


# four images: a cat on a, a dog on b, a cat on c, a cat and a dog on d
TRUTH = dataset([Label("a", "cat", box=box(5, 5)), Label("b", "dog", box=box(30, 30)),
                 Label("c", "cat", box=box(10, 30)), Label("d", "cat", box=box(0, 0)),
                 Label("d", "dog", box=box(40, 40))])


def guess(image: str, name: str, b: Box, score: float = 0.9) -> Label:
    return Label(image, name, score, MODEL, box=b)


def perfect() -> list[Label]:
    return [guess(lab.image, lab.label, lab.box, 0.5 + 0.1 * i) for i, lab in enumerate(TRUTH.labels)]


def test_perfect_predictions_score_one() -> None:
    m = detection_metrics(TRUTH, dataset(perfect()))
    assert (m["map50"], m["map"], m["map75"]) == (1.0, 1.0, 1.0)
    assert m["per_class"]["cat"] == {"ap50": 1.0, "ap": 1.0, "ap75": 1.0, "recall50": 1.0, "n_truth": 3, "n_pred": 3}
    assert (m["n_images"], m["n_truth"], m["n_pred"]) == (4, 5, 5)
    curve = m["pr_curves"]["dog"]
    assert len(curve["recall"]) == len(curve["precision"]) == 101 and min(curve["precision"]) == 1.0
    json.dumps(m, allow_nan=False)  # JSON-ready, no NaN


def test_a_missed_box_lowers_recall_and_ap() -> None:
    m = detection_metrics(TRUTH, dataset([p for p in perfect() if p.image != "c"]))  # one cat of three missed
    cat = m["per_class"]["cat"]
    assert cat["recall50"] == pytest.approx(2 / 3)
    assert cat["ap50"] == pytest.approx(67 / 101, abs=1e-6)  # precision 1 up to recall 0.66, then nothing
    assert m["per_class"]["dog"]["ap50"] == 1.0
    assert m["map50"] == pytest.approx((67 / 101 + 1) / 2, abs=1e-6)
    assert m["pr_curves"]["cat"]["precision"][66] == 1.0 and m["pr_curves"]["cat"]["precision"][67] == 0.0


def test_a_wrong_class_costs_both_classes() -> None:
    guesses = perfect()
    guesses[1] = guess("b", "cat", box(30, 30), 0.95)  # the dog on b called a cat, with the highest score
    m = detection_metrics(TRUTH, dataset(guesses))
    # cat: a false positive ranked first -> precision 1/2, 2/3, 3/4 at recall 1/3, 2/3, 1
    assert m["per_class"]["cat"]["ap50"] == pytest.approx(0.75)  # interpolation: best precision to the right
    assert m["per_class"]["dog"]["recall50"] == 0.5  # the dog on d is still found
    assert m["map50"] < 0.8


def test_a_loose_box_passes_at_iou_half_only() -> None:
    shifted = [guess(p.image, p.label, box(p.box.x1 + 6, p.box.y1)) for p in perfect()]
    m = detection_metrics(TRUTH, dataset(shifted))  # IoU 14*20 / (26*20) = 0.54
    assert m["map50"] == 1.0 and m["map75"] == 0.0 and m["map"] == pytest.approx(0.1)


def test_no_predictions_scores_zero() -> None:
    m = detection_metrics(TRUTH, Dataset([], [], Ontology(())))
    assert (m["map50"], m["map"], m["n_pred"]) == (0.0, 0.0, 0)
    assert m["per_class"]["dog"]["ap50"] == 0.0 and m["pr_curves"]["dog"]["precision"] == [0.0] * 101


def test_a_class_without_truth_has_no_ap_and_stays_out_of_the_mean() -> None:
    truth = dataset(TRUTH.labels, classes=("cat", "dog", "cow"), images=("a", "b", "c", "d"))
    m = detection_metrics(truth, dataset([*perfect(), guess("a", "cow", box(40, 0))]))
    assert m["per_class"]["cow"] == {"ap50": None, "ap": None, "ap75": None, "recall50": None, "n_truth": 0,
                                     "n_pred": 1}
    assert "cow" not in m["pr_curves"] and m["map50"] == 1.0
    no_truth = detection_metrics(dataset([], images=("a",)), dataset([guess("a", "cat", box(0, 0))]))
    assert no_truth["map50"] is None and no_truth["n_images"] == 1


def test_classes_match_by_name_and_images_by_path() -> None:
    # the prediction file lists classes in another order, a class the truth lacks, and an image not in the truth
    predicted = Dataset([ImageInfo("zzz", SIZE), ImageInfo("d", SIZE)], [*reversed(perfect()),
                        guess("zzz", "cat", box(0, 0))], Ontology(("dog", "bird", "cat")))
    assert detection_metrics(TRUTH, predicted)["map50"] == 1.0


def test_only_the_listed_images_are_scored() -> None:
    only_a_b = [p for p in perfect() if p.image in ("a", "b")]
    assert detection_metrics(TRUTH, dataset(only_a_b))["map50"] < 1.0
    m = detection_metrics(TRUTH, dataset(only_a_b), images=["a", "b"])
    assert (m["map50"], m["n_images"], m["n_truth"]) == (1.0, 2, 2)
    with pytest.raises(InputError, match="no truth entry, e.g. 'x'"):
        detection_metrics(TRUTH, dataset(only_a_b), images=["a", "x"])


def test_predictions_on_other_paths_are_an_error() -> None:
    with pytest.raises(InputError, match="'img/a' must match truth paths such as 'a'"):
        detection_metrics(TRUTH, dataset([guess("img/a", "cat", box(5, 5))]))


def test_mask_ap() -> None:
    truth = dataset([Label("a", "cat", box=box(5, 5), mask=square_mask(5, 5)),
                     Label("b", "dog", box=box(30, 30), mask=square_mask(30, 30))])
    same = [Label(lab.image, lab.label, 0.8, MODEL, mask=lab.mask) for lab in truth.labels]
    assert detection_metrics(truth, dataset(same), iou_type="segm")["map"] == 1.0
    off = [Label("a", "cat", 0.8, MODEL, mask=square_mask(5, 12)), same[1]]  # IoU 13/27: a miss at 0.5
    m = detection_metrics(truth, dataset(off), iou_type="segm")
    assert m["per_class"]["cat"]["ap50"] == 0.0 and m["per_class"]["dog"]["ap50"] == 1.0
    assert detection_metrics(truth, dataset(off), iou_type="bbox")["per_class"]["cat"]["ap50"] == 0.0
    with pytest.raises(InputError, match="a: a prediction 'cat' has a box but no mask"):
        detection_metrics(truth, dataset([guess("a", "cat", box(5, 5))]), iou_type="segm")


def test_report_files(tmp_path: Path) -> None:
    guesses = perfect()[:-1]
    truth = dataset(TRUTH.labels, classes=("cat", "dog", "cow"), images=("a", "b", "c", "d"))
    m = detection_metrics(truth, dataset(guesses))
    write_detection_report(tmp_path / "eval", m, title="scenes <test>")
    assert json.loads((tmp_path / "eval" / "metrics.json").read_text()) == m
    html = (tmp_path / "eval" / "report.html").read_text()
    assert "scenes &lt;test&gt;" in html and "<svg" in html and "precision–recall" in html
    assert html.count("<polyline") == 2  # one PR curve per class with truth; cow has none
    assert "<td>cow</td><td>–</td>" in html  # no AP for a class without truth
