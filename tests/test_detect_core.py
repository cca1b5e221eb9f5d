"""Detection building blocks on generated scenes: truth geometry, spec round trip, matching, calibration."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from detect_shapes import shape_items as _items
from pixlabel.detect.data import DetectionSet, DetTarget, load_image, strong_augment
from pixlabel.detect.model import build_detector, load_detector_weights
from pixlabel.detect.predict import Detections, calibrated, fit_calibration, match_correct
from pixlabel.detect.scenes import SceneSpec, make_scenes
from pixlabel.detect.spec import DetectorSpec, load_detector, save_detector
from pixlabel.errors import InputError


def test_scenes_truth_boxes_cover_the_visible_item_pixels(tmp_path):
    ds = make_scenes(_items(), tmp_path, 12, seed=3, spec=SceneSpec(size=96, max_objects=3, min_item=28,
                                                                     max_item=40))
    assert len(ds.images) == 12 and all((tmp_path / i.path).is_file() for i in ds.images)
    assert {lab.label for lab in ds.labels} <= {"disc", "bar"}
    for lab in ds.labels:
        w, h = lab.box.x2 - lab.box.x1, lab.box.y2 - lab.box.y1
        assert 8 <= w <= 41 and 8 <= h <= 41  # an item scaled to 28-40 px, never the whole scene
        assert lab.mask is not None and lab.mask.image_size == (96, 96)
    again = make_scenes(_items(), tmp_path / "again", 12, seed=3, spec=SceneSpec(size=96, max_objects=3,
                                                                                 min_item=28, max_item=40))
    assert [lab.box for lab in again.labels] == [lab.box for lab in ds.labels]  # deterministic given the seed


def test_augmented_targets_stay_inside_the_image(tmp_path):
    ds = make_scenes(_items(), tmp_path, 6, seed=0, spec=SceneSpec(size=96))
    by = ds.labels_by_image()
    imgs = [load_image(tmp_path, i.path, max_side=96, max_pixels=10**7) for i in ds.images]
    targets = [DetTarget(np.array([[b.box.x1, b.box.y1, b.box.x2, b.box.y2] for b in by[i.path]], np.float32),
                         np.array([0] * len(by[i.path]))) for i in ds.images]
    data = DetectionSet(imgs, targets, augment=strong_augment(96), label_offset=0)
    torch.manual_seed(0)
    for _ in range(3):
        for img, t in (data[i] for i in range(len(data))):
            assert img.dtype == torch.float32 and 0 <= float(img.min()) and float(img.max()) <= 1
            h, w = img.shape[1:]
            assert min(h, w) == 96
            if len(t["boxes"]):
                assert float(t["boxes"][:, 0::2].max()) <= w and float(t["boxes"][:, 1::2].max()) <= h
                assert bool((t["boxes"][:, 2:] > t["boxes"][:, :2]).all())


def test_match_correct_is_greedy_by_score_and_class_aware():
    truth = DetTarget(np.array([[0, 0, 10, 10], [20, 20, 30, 30]], np.float32), np.array([0, 1]))
    dets = Detections(np.array([[0, 0, 10, 10], [1, 1, 10, 10], [20, 20, 30, 30], [50, 50, 60, 60]], np.float32),
                      np.array([0, 0, 0, 1]), np.array([0.9, 0.95, 0.8, 0.7]))
    # the 0.95 box claims truth 0 first, so the exact 0.9 box is a duplicate; the third has the wrong class
    assert match_correct([dets], [truth]).tolist() == [False, True, False, False]


def test_calibration_maps_scores_to_hit_rates():
    rng = np.random.default_rng(0)
    dets, truth = [], []
    for _ in range(60):
        s = rng.uniform(0.05, 1.0)
        hit = rng.uniform() < s  # a detection with score s is right with probability s
        box = np.array([[0, 0, 10, 10]], np.float32)
        dets.append(Detections(box, np.array([0]), np.array([s])))
        truth.append(DetTarget(box, np.array([0 if hit else 1])))
    spec = DetectorSpec("fcos", ("a", "b"), calibration=fit_calibration(dets, truth))
    out = calibrated(spec, np.array([0.1, 0.5, 0.95]))
    assert np.all(np.diff(out) >= 0) and out[0] < 0.4 and out[2] > 0.6


@pytest.mark.parametrize("arch", ["fcos", "fasterrcnn"])
def test_saved_detector_loads_and_predicts_the_same(tmp_path, arch, one_torch_thread):
    spec = DetectorSpec(arch, ("a", "b"), image_size=64, calibration=((0.0, 0.0), (1.0, 0.9)))
    torch.manual_seed(0)
    model = build_detector(spec, pretrained_backbone=False).eval()
    save_detector(tmp_path / "m", model, spec)
    again, spec2 = load_detector(tmp_path / "m")
    assert spec2 == spec
    x = [torch.rand(3, 64, 80)]
    with torch.no_grad():
        a, b = model(x)[0], again(x)[0]
    assert torch.equal(a["boxes"], b["boxes"]) and torch.equal(a["scores"], b["scores"])
    # a checkpoint for other classes still transfers everything but the class-specific head
    other = build_detector(DetectorSpec(arch, ("a", "b", "c"), image_size=64), pretrained_backbone=False)
    loaded, skipped = load_detector_weights(other, tmp_path / "m" / "weights.pt")
    assert loaded > 100 and 0 < skipped < 10


def test_load_detector_refuses_a_classifier_dir_and_bad_weights(tmp_path):
    with pytest.raises(InputError, match="not a detector directory"):
        load_detector(tmp_path)
    torch.save({"nothing.here": torch.zeros(3)}, tmp_path / "w.pt")
    model = build_detector(DetectorSpec("fcos", ("a",), image_size=64), pretrained_backbone=False)
    with pytest.raises(InputError, match="fits the detector"):
        load_detector_weights(model, tmp_path / "w.pt")


def test_test_time_augmentation_merges_passes_and_restores_the_model(tmp_path, one_torch_thread):
    from pixlabel.detect.predict import detect

    spec = DetectorSpec("fcos", ("disc", "bar"), image_size=64)
    torch.manual_seed(0)
    model = build_detector(spec, pretrained_backbone=False).eval()
    model.score_thresh = 0.0  # an untrained head scores everything low: keep boxes so merging is exercised
    ds = make_scenes(_items(), tmp_path, 3, seed=1, spec=SceneSpec(size=64, min_item=20, max_item=30))
    imgs = [load_image(tmp_path, i.path, max_side=64, max_pixels=10**7) for i in ds.images]
    plain = detect(model, spec, imgs, min_score=0.0)
    both = detect(model, spec, imgs, min_score=0.0, flip_tta=True, scales=(1.0, 1.25))
    assert (model.transform.min_size, model.transform.max_size) == ((64,), 128)  # put back after the passes
    for p, b in zip(plain, both, strict=True):
        assert len(b.scores) >= min(len(p.scores), 100) > 0
        assert b.scores.max() >= p.scores.max() - 1e-6  # NMS keeps the best of every pass
        assert (b.boxes[:, :2] >= -1e-3).all() and (b.boxes[:, 2:] <= 64 + 1e-3).all()
