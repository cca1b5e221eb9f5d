"""Detection defaults from the data and a budget: input size, minutes, clock-planned steps, resumable
checkpoint, partial results, ranked alternatives, reviewed images as seeds (issue 19)."""

from __future__ import annotations

import json
import time

import pytest

from detect_shapes import shape_items
from pixlabel.budget import Budget, Effort
from pixlabel.cli.main import main
from pixlabel.detect.data import DetectionSet, DetImage, DetTarget
from pixlabel.detect.plan import PredictCost, default_minutes, detector_size_for, training_seconds
from pixlabel.detect.scenes import SceneSpec, make_scenes
from pixlabel.errors import InputError
from pixlabel.io.formats.coco import read_coco, write_coco
from pixlabel.pipeline.config import LabelConfig
from pixlabel.records import Box, Dataset, Label, Provenance
from pixlabel.store import open_store

FAST = ["--teacher-steps", "4", "--student-steps", "2", "--rounds", "1"]


def test_detector_size_follows_the_images_and_never_upsamples() -> None:
    assert detector_size_for([(160, 160)] * 5) == 160
    assert detector_size_for([(128, 192)] * 3 + [(600, 800)]) == 128  # the median shorter side
    assert detector_size_for([(100, 140)]) == 96  # rounded down, never up
    assert detector_size_for([(2000, 3000)]) == 512  # capped: CPU steps at 2000 px are not affordable
    assert detector_size_for([(20, 20)]) == 64  # the floor below which the pyramid's top levels are empty


def test_budget_and_effort() -> None:
    b = Budget(2.0, started=100.0)
    assert b.deadline == 220.0 and b.time_left(now=190.0) == 30.0 and b.time_left(now=500.0) == 0.0
    assert b.describe(now=130.0) == "1:30 left of 2:00"
    with pytest.raises(InputError, match="> 0"):
        Budget(0)
    with pytest.raises(InputError, match="fast, balanced, thorough"):
        Effort.parse("max")
    assert default_minutes(Effort.FAST, 400) < default_minutes(Effort.BALANCED, 400) < default_minutes(
        Effort.THOROUGH, 400)
    assert default_minutes(Effort.BALANCED, 400) <= 10 and default_minutes(Effort.BALANCED, 2000) <= 14
    cost = PredictCost(0.02, 1800, final_passes=2)
    teacher = training_seconds(600, cost, pseudo_passes=1, share=0.6)
    assert 0 < teacher < 0.6 * (600 - cost.final())
    assert training_seconds(100, cost, pseudo_passes=1, share=1) == 50  # passes take at most half of what is left
    with pytest.raises(InputError, match="time_budget"):
        LabelConfig(images="i", out="o", time_budget=-1)
    with pytest.raises(InputError, match="teacher_steps"):
        LabelConfig(images="i", out="o", teacher_steps=0)


def test_fit_detector_plans_its_steps_by_the_clock(one_torch_thread) -> None:
    import numpy as np
    import torch

    from pixlabel.detect.model import build_detector
    from pixlabel.detect.spec import DetectorSpec
    from pixlabel.detect.train import DetTrainConfig, fit_detector

    spec = DetectorSpec("fcos", ("a",), image_size=64)
    model = build_detector(spec, pretrained_backbone=False)
    rng = np.random.default_rng(0)
    images = [DetImage(f"{i}.png", torch.from_numpy(rng.integers(0, 255, (3, 64, 64), dtype=np.uint8)), 1.0,
                       (64, 64)) for i in range(4)]
    targets = [DetTarget(np.array([[8, 8, 40, 40]], np.float32), np.array([0])) for _ in images]
    saved: list[dict] = []
    t0 = time.perf_counter()
    out = fit_detector(model, DetectionSet(images, targets, augment=None, label_offset=0),
                       DetTrainConfig(steps=10_000, batch_size=2, seconds=4.0, min_steps=10), desc="t",
                       save=saved.append, save_every=0.0)
    took = time.perf_counter() - t0
    assert 10 <= out["steps"] < 10_000 and took < 4.0 * 1.25 + 10  # planned to fit, not the 10,000 allowed
    # the last state saved is the last step taken (a loaded machine may stop the plan early at 1.25x its time)
    assert saved and saved[-1]["step"] == out["steps"] and {"model", "opt", "step"} <= set(saved[-1])
    # resuming from a saved state continues its plan instead of starting over
    mid = saved[len(saved) // 2]
    again = fit_detector(build_detector(spec, pretrained_backbone=False),
                         DetectionSet(images, targets, augment=None, label_offset=0),
                         DetTrainConfig(steps=10_000, batch_size=2, seconds=4.0), desc="t", resume=mid)
    assert again["steps"] == mid["steps"]


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    root = tmp_path_factory.mktemp("scenes")
    truth = make_scenes(shape_items(), root / "images", 20, seed=1, spec=SceneSpec(size=80, max_item=36))
    keep = {i.path for i in truth.images[:6]}
    write_coco(Dataset(truth.images[:6], [lab for lab in truth.labels if lab.image in keep], truth.ontology),
               root / "seed.coco.json")
    return root, truth, keep


@pytest.mark.slow
def test_default_run_sizes_from_the_images_fits_its_budget_and_ranks_alternatives(scenes, tmp_path, capsys,
                                                                                  one_torch_thread):
    root, _, seed_paths = scenes
    ws = tmp_path / "ws"
    t0 = time.perf_counter()
    code = main(["label", str(root / "images"), "--task", "detect", "--labels", str(root / "seed.coco.json"),
                 "--out", str(ws), "--time-budget", "0.75"])
    took = time.perf_counter() - t0
    out = capsys.readouterr().out
    assert code == 0
    assert "detector input 64 px" in out and "budget 0.8 min" in out  # 80-px scenes: 64, not 320 or 128
    assert took < 0.75 * 60 * 1.5 + 15
    assert "images fully accepted" in out
    assert not (ws / "detector" / "checkpoint.pt").exists()  # a finished run leaves no checkpoint
    with open_store(ws / "pixlabel.db") as store:
        model = [lab for lab in store.labels(source="model")]
        queue = store.box_queue(limit=1000).items
    assert model and all(lab.status == "review" for lab in model if lab.rank > 0)  # alternatives never accepted
    queued = [x for x in queue if x.source == "model"]
    assert {x.path for x in queued} == {lab.image for lab in model if lab.rank == 0}
    assert len(queued) == sum(lab.rank == 0 for lab in model)  # the queue holds the answers only
    assert {x.path for x in queue if x.source == "human"} == seed_paths  # and the seed boxes, at the end


@pytest.mark.slow
def test_interrupted_run_leaves_teacher_boxes_and_resumes(scenes, tmp_path, monkeypatch, one_torch_thread):
    import pixlabel.detect.teacher as teacher
    from pixlabel.pipeline.detect_label import run_detect_label

    root, _, seed_paths = scenes
    ws = tmp_path / "ws"
    config = LabelConfig(images=str(root / "images"), out=str(ws), labels=str(root / "seed.coco.json"),
                         task="detect", teacher_steps=4, student_steps=3, rounds=1)
    real_fit = teacher.fit_detector

    def stop_in_student(model, data, cfg, *, desc, save=None, **kw):  # type: ignore[no-untyped-def]
        if desc.startswith("student"):
            if save is not None:
                save({"model": model.state_dict(), "opt": {"state": {}, "param_groups": []}, "step": 1,
                      "steps": 3, "warmup": 1})
            raise KeyboardInterrupt
        return real_fit(model, data, cfg, desc=desc, save=save, **kw)

    monkeypatch.setattr(teacher, "fit_detector", stop_in_student)
    with pytest.raises(KeyboardInterrupt):
        run_detect_label(config)
    # the teacher's boxes were written before the student started: the interrupted run left them
    partial = read_coco(ws / "labels.coco.json")
    assert {lab.image for lab in partial.labels if lab.source == "model"} - seed_paths
    assert all(lab.image not in seed_paths for lab in partial.labels if lab.source == "model")
    assert (ws / "detector" / "checkpoint.pt").is_file()
    with open_store(ws / "pixlabel.db") as store:
        assert any(lab.provenance.model_version.endswith("round0") for lab in store.labels(source="model"))

    calls: list[str] = []

    def record(model, data, cfg, *, desc, resume=None, **kw):  # type: ignore[no-untyped-def]
        calls.append(f"{desc}:{'resumed' if resume else 'fresh'}")
        return real_fit(model, data, cfg, desc=desc, **kw)

    monkeypatch.setattr(teacher, "fit_detector", record)
    run = run_detect_label(config)
    assert run.resumed and calls == ["student 1:resumed"]  # the teacher was not trained again
    assert not (ws / "detector" / "checkpoint.pt").exists()
    data = json.loads((ws / "labels.coco.json").read_text())
    assert any("score" in a for a in data["annotations"])


@pytest.mark.slow
def test_images_a_reviewer_finished_are_seeds_of_the_next_run(scenes, tmp_path, capsys, one_torch_thread):
    root, _, seed_paths = scenes
    ws = tmp_path / "ws"
    args = ["label", str(root / "images"), "--task", "detect", "--labels", str(root / "seed.coco.json"),
            "--out", str(ws), *FAST]
    assert main(args) == 0
    with open_store(ws / "pixlabel.db") as store:
        boxed = sorted({lab.image for lab in store.labels(source="model")})
        accepted_path, emptied_path = boxed[0], boxed[1]
        # four training steps make no confident box: give both images model answers to review
        prov = Provenance(source="model", labeler="teacher-student-fcos")
        store.put_labels([Label(p, "disc", 0.6, prov, status="review", box=Box(2, 2, 30, 30, image_size=(80, 80)))
                          for p in (accepted_path, emptied_path)])
        store.accept_image_boxes(accepted_path, actor="ana")
        for item in store.boxes_of([emptied_path])[emptied_path]:
            store.delete_box(item.id, actor="ana")
        truth_of_accepted = sorted((lab.label, lab.box.xywh) for lab in store.labels_of([accepted_path]))
    capsys.readouterr()
    assert main(args) == 0
    out = capsys.readouterr().out
    assert f"from {len(seed_paths) + 2} seed images, 2 finished by reviewers" in out
    with open_store(ws / "pixlabel.db") as store:
        after = store.labels_of([accepted_path, emptied_path])
    assert sorted((lab.label, lab.box.xywh) for lab in after if lab.image == accepted_path) == truth_of_accepted
    assert all(lab.source == "human" for lab in after)  # no model box came back on either image
    assert not [lab for lab in after if lab.image == emptied_path]
