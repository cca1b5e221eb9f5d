"""``pixlabel label --task detect|segment``: seed boxes -> teacher–student detector -> calibrated boxes ->
store -> ``labels.coco.json``, ``labels.csv``, ``report.html`` and the trained detector in ``WS/detector``.

Defaults come from the data and a budget: the detector's input size from the images (``detect.plan``), the
training steps from the minutes left of ``--time-budget`` (or ``--effort`` and the image count). Training
resumes from ``WS/detector/checkpoint.pt`` after an interruption, and the teacher's boxes are in the store
and ``labels.coco.json`` as soon as they exist. Human boxes are never replaced: seed images, and images a
reviewer finished, keep exactly their human boxes (and train the next run as seeds); a model box batch only
replaces earlier *model* boxes of its image (store rules). A bad image is listed in errors.csv and skipped.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pixlabel.budget import Budget, Effort
from pixlabel.detect.checkpoint import FILE as CHECKPOINT_FILE
from pixlabel.detect.checkpoint import TrainingCheckpoint, fingerprint
from pixlabel.detect.data import DetImage, DetTarget, load_image
from pixlabel.detect.plan import ROUNDS, default_minutes, detector_size_for
from pixlabel.detect.predict import Detections, detect, fit_calibration, rank_alternatives, to_labels
from pixlabel.detect.spec import DetectorSpec, save_detector
from pixlabel.detect.teacher import TeacherConfig, TeacherResult, teacher_student
from pixlabel.errors import InputError
from pixlabel.io.formats._masks import label_box, mask_bitmap
from pixlabel.io.formats.coco import write_coco
from pixlabel.io.images import ImageDecodeError
from pixlabel.io.ingest import ingest
from pixlabel.pipeline.box_seeds import read_box_seeds, seed_boxes
from pixlabel.pipeline.config import LabelConfig
from pixlabel.pipeline.label import StageTimer, tracked_run
from pixlabel.records import Label, Provenance
from pixlabel.store import LabelStore
from pixlabel.trust.threshold import ThresholdChoice, threshold_for_pool
from pixlabel.workspace import Workspace

log = logging.getLogger(__name__)
BOX_FLOOR = 0.02  # calibrated confidence below which a box is noise, not even an alternative worth keeping


@dataclass
class DetectRun:
    workspace: Workspace
    classes: list[str]
    seeds: dict[str, list[Label]]  # human boxes per seed image (seed file and images reviewers finished)
    predicted: dict[str, list[Label]]  # model boxes per unlabeled image (alternatives have rank >= 1)
    threshold: float
    expected_precision: float
    teacher: TeacherResult
    errors: list[tuple[str, str]]
    detector_size: int = 0
    budget_minutes: float = 0.0
    reviewed: int = 0  # seed images that came from reviewers finishing them
    resumed: bool = False
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def coco_path(self) -> Path:
        return self.workspace.root / "labels.coco.json"

    @property
    def detector_dir(self) -> Path:
        return self.workspace.root / "detector"

    @property
    def answers(self) -> list[Label]:
        """The model's answers (rank 0): what is accepted or queued for review."""
        return [lab for labs in self.predicted.values() for lab in labs if lab.rank == 0]

    @property
    def images_done(self) -> int:
        """Unlabeled images none of whose boxes awaits review (every answer accepted, or none at all)."""
        return sum(all(lab.status == "accepted" for lab in labs if lab.rank == 0) for labs in self.predicted.values())


def _target(image: DetImage, labels: list[Label], classes: list[str], *, masks: bool) -> DetTarget:
    """Human labels of one image as a training target in working pixels (masks resized when asked)."""
    boxes = np.array([[v * image.scale for v in (b.x1, b.y1, b.x2, b.y2)]
                      for b in (label_box(lab) for lab in labels) if b is not None], np.float32).reshape(-1, 4)
    idx = np.array([classes.index(lab.label) for lab in labels], np.int64)
    target = DetTarget(boxes, idx)
    if masks:
        import torch

        h, w = image.pixels.shape[1:]
        full = [mask_bitmap(lab.mask) if lab.mask is not None else _box_mask(lab, image.size)
                for lab in labels]
        target.masks = np.stack([np.asarray(torch.nn.functional.interpolate(
            torch.from_numpy(m)[None, None].float(), size=(h, w))[0, 0] > 0.5) for m in full]) \
            if full else np.zeros((0, h, w), bool)
    return target


def _corners(lab: Label) -> list[float] | None:
    box = label_box(lab)
    return None if box is None else [round(v, 2) for v in (box.x1, box.y1, box.x2, box.y2)]


def _box_mask(lab: Label, size: tuple[int, int]) -> np.ndarray:
    """A box as a mask, for a seed box without a mask in a segmentation run (Mask R-CNN needs one)."""
    m = np.zeros(size, np.uint8)
    b = label_box(lab)
    assert b is not None
    m[int(b.y1):int(np.ceil(b.y2)), int(b.x1):int(np.ceil(b.x2))] = 1
    return m


def _human_boxes_in_store(store: LabelStore, known: set[str]) -> dict[str, list[Label]]:
    out: dict[str, list[Label]] = {}
    for lab in store.labels(source="human"):
        if lab.image in known and (lab.box is not None or lab.mask is not None):
            out.setdefault(lab.image, []).append(lab)
    return out


def run_detect_label(config: LabelConfig) -> DetectRun:
    if not config.labels:
        raise InputError("--task detect needs --labels: seed boxes as COCO .json, YOLO or VOC folder, or CSV")
    return tracked_run(config, _run, lambda r: {"task": config.task, "rounds": r.teacher.rounds,
                                                "images": len(r.seeds) + len(r.predicted),
                                                "detector_size": r.detector_size,
                                                "budget_minutes": r.budget_minutes, "resumed": r.resumed})


def _header_sizes(root: Path, paths: list[str]) -> list[tuple[int, int]]:
    """``(h, w)`` from each file's header (no decode); unreadable files are skipped (errors.csv has them)."""
    from PIL import Image

    sizes = []
    for p in paths:
        try:
            with Image.open(root / p) as im:
                sizes.append((im.height, im.width))
        except OSError:
            continue
    return sizes


def _load_all(config: LabelConfig, size: int, paths: list[str], errors: list[tuple[str, str]]) -> list[DetImage]:
    root, out = Path(config.images), []
    for p in paths:
        try:
            out.append(load_image(root, p, max_side=size * 2, max_pixels=config.max_pixels))
        except ImageDecodeError as exc:
            errors.append((p, str(exc)))
    return out


def _run(config: LabelConfig, ws: Workspace, store: LabelStore, run_id: int, timer: StageTimer) -> DetectRun:
    started = time.monotonic()
    with timer.stage("ingest"):
        scanned = ingest(config.images, max_pixels=config.max_pixels, decode=False, workers=config.workers)
        if not scanned.images:
            raise InputError(f"{config.images}: no readable images found")
        errors = list(scanned.errors)
        paths = [f.path for f in scanned.images]
        size = config.detector_size or detector_size_for(_header_sizes(Path(config.images), paths))
        effort = Effort.parse(config.effort)
        budget = Budget(config.time_budget or default_minutes(effort, len(paths)), started=started)
        log.info("detector input %d px%s; budget %.1f min (%s)", size, "" if config.detector_size else
                 " (median shorter side of the images)", budget.minutes,
                 "--time-budget" if config.time_budget else f"effort {effort}, {len(paths)} images")
        images = _load_all(config, size, paths, errors)
        errors.sort()
        hashes = {f.path: f.content_hash for f in scanned.images}
        store.sync_images((im.path, hashes[im.path], im.size) for im in images)
        store.record_errors(errors)
        store.export_errors_csv(ws.errors_csv)
    known = {im.path for im in images}
    assert config.labels is not None  # checked by run_detect before the run starts
    labels_path = Path(config.labels)
    seeds, classes = seed_boxes(read_box_seeds(labels_path), known, origin=str(labels_path), bad=dict(errors))
    stored = _human_boxes_in_store(store, known)
    # Images a reviewer finished are seeds: their human boxes are the whole truth (none: nothing there).
    reviewed = {p: labs for p, labs in store.reviewed_box_images().items() if p in known and p not in dict(errors)}
    store.ensure_classes(classes)
    # Seed-file boxes go into the store once; an image a reviewer has boxed keeps the reviewer's boxes.
    store.put_labels([dataclasses.replace(lab, provenance=Provenance(source="human", labeler="seed"),
                                          confidence=1.0, status="accepted")
                      for path, labs in seeds.items() if path not in stored and path not in reviewed
                      for lab in labs],
                     run_id=run_id, actor="seed")
    seeds.update(reviewed)
    masks = config.task == "segment" and not config.segmenter
    arch = "maskrcnn" if masks else config.detector
    spec = DetectorSpec(arch, tuple(classes), image_size=size)
    seed_imgs = [im for im in images if im.path in seeds]
    rest = [im for im in images if im.path not in seeds]
    targets = [_target(im, seeds[im.path], classes, masks=masks) for im in seed_imgs]
    rounds = config.rounds if config.rounds is not None else ROUNDS[effort]
    passes = (2 if config.flip_tta else 1) * len(config.tta_scale_list)
    tcfg = TeacherConfig(teacher_steps=config.teacher_steps, student_steps=config.student_steps, rounds=rounds,
                         pseudo_threshold=config.pseudo_threshold, seed=config.seed, budget=budget,
                         final_passes=passes)
    checkpoint = TrainingCheckpoint(ws.root / "detector" / CHECKPOINT_FILE, fingerprint({
        "spec": spec.to_dict(), "seed": config.seed, "rounds": rounds, "steps": [config.teacher_steps,
                                                                                 config.student_steps],
        "seeds": sorted((p, [(lab.label, _corners(lab)) for lab in labs]) for p, labs in seeds.items()),
        "rest": sorted(im.path for im in rest), "weights": config.weights, "open_vocab": config.open_vocab}))
    init = None
    if config.weights:
        from pixlabel.detect.model import load_detector_weights

        def init(model: object) -> None:
            loaded, skipped = load_detector_weights(model, config.weights)  # type: ignore[arg-type]
            log.info("%s: loaded %d tensors, %d left at their start values", config.weights, loaded, skipped)

    warm = []
    if config.open_vocab:
        with timer.stage("open-vocabulary"):
            from pixlabel.detect.assist import open_vocab_pseudo_boxes
            from pixlabel.labelers.zero_shot import read_prompts_yaml

            prompts = read_prompts_yaml(config.prompts, classes=classes) if config.prompts else None
            warm = open_vocab_pseudo_boxes(config.open_vocab, classes, prompts, seed_imgs, targets, rest,
                                           threshold=config.pseudo_threshold)

    def partial(round_: int, spec_: DetectorSpec, dets: list[Detections]) -> None:
        """The best model's boxes so far, stored and exported at once: an interrupted run leaves them."""
        t0 = time.perf_counter()
        boxes, _ = _decide(config, spec_, rest, dets, version=f"{arch}/{size}/round{round_}", round_=round_)
        _write(store, run_id, boxes, ws, images)
        log.info("wrote round %d boxes of %d images to the store and %s (%.1f s; %s)", round_, len(rest),
                 ws.root / "labels.coco.json", time.perf_counter() - t0, budget.describe())

    with timer.stage("train"):
        import torch

        torch.manual_seed(config.seed)
        result = teacher_student(spec, seed_imgs, targets, rest, tcfg, init=init, warm=warm, on_boxes=partial,
                                 checkpoint=checkpoint)
    with timer.stage("predict"):
        scales = config.tta_scale_list
        if (config.flip_tta or len(scales) > 1) and result.val_images:  # merged scores: own calibration
            val = detect(result.model, result.spec, result.val_images, flip_tta=config.flip_tta, scales=scales)
            result.spec = dataclasses.replace(result.spec, calibration=fit_calibration(val, result.val_targets))
        dets: list[Detections] = detect(result.model, result.spec, rest, flip_tta=config.flip_tta, scales=scales)
        if config.task == "segment" and config.segmenter:
            from pixlabel.detect.assist import segmenter_masks

            dets = segmenter_masks(config.segmenter, rest, dets)
        predicted, choice = _decide(config, result.spec, rest, dets, version=f"{arch}/{size}/round{result.best_round}",
                                    round_=result.best_round)
    with timer.stage("store"):
        _write(store, run_id, predicted, ws, images)
        save_detector(ws.root / "detector", result.model, result.spec)
        checkpoint.remove()  # the run is complete: the next one trains afresh on whatever changed
        run = DetectRun(ws, classes, seeds, predicted, choice.threshold, choice.expected_precision, result,
                        errors, size, budget.minutes, len(reviewed), checkpoint.resumed, timer.timings)
        store.export_errors_csv(ws.errors_csv)
    with timer.stage("report"):
        from pixlabel.pipeline.detect_report import write_detect_report

        write_detect_report(run, images)
    log.info("done in %.1f min of a %.1f-min budget", budget.elapsed() / 60, budget.minutes)
    return run


def _decide(config: LabelConfig, spec: DetectorSpec, rest: list[DetImage], dets: list[Detections], *,
            version: str, round_: int) -> tuple[dict[str, list[Label]], ThresholdChoice]:
    """Calibrated model labels per image: alternatives ranked (never accepted), the accept threshold chosen
    on the model's answers, each answer accepted on its own (an image is done when all of its are)."""
    labeler = f"teacher-student-{spec.arch}"
    per_image = {im.path: rank_alternatives([lab for lab in to_labels(spec, im, d, labeler=labeler,
                                                                      version=version, threshold=2.0,
                                                                      round_=round_)
                                             if lab.confidence >= BOX_FLOOR])
                 for im, d in zip(rest, dets, strict=True)}
    answers = np.array([lab.confidence for labs in per_image.values() for lab in labs if lab.rank == 0])
    choice = threshold_for_pool(answers, target_precision=config.target_precision)
    decided = {p: [dataclasses.replace(lab, status="accepted") if lab.rank == 0 and lab.confidence >= choice.threshold
                   else lab for lab in labs] for p, labs in per_image.items()}
    return decided, choice


def _write(store: LabelStore, run_id: int, predicted: dict[str, list[Label]], ws: Workspace,
           images: list[DetImage]) -> None:
    """Model boxes into the store (replacing this image's earlier model boxes), then the exports."""
    batch = [lab for labs in predicted.values() for lab in labs]
    if batch:
        store.put_labels(batch, run_id=run_id)
    export_detections(store, ws.root / "labels.coco.json", ws.labels_csv, images)


def export_detections(store: LabelStore, coco_path: Path, csv_path: Path, images: list[DetImage]) -> int:
    """labels.coco.json (model boxes carry ``score``) and labels.csv from the store's current labels."""
    dataset = store.box_dataset([im.path for im in images])
    write_coco(dataset, coco_path)
    store.export_labels_csv(csv_path)
    return len(dataset.labels)
