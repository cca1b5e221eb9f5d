"""``pixlabel label --task detect|segment``: seed boxes -> teacher–student detector -> calibrated boxes ->
store -> ``labels.coco.json``, ``labels.csv``, ``report.html`` and the trained detector in ``WS/detector``.

Human boxes are never replaced: seed images keep exactly their human boxes, and a model box batch only
replaces earlier *model* boxes of its image (store rules). A bad image is listed in errors.csv and skipped.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pixlabel.detect.data import DetImage, DetTarget, load_image
from pixlabel.detect.predict import Detections, calibrated, detect, fit_calibration, to_labels
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
from pixlabel.records import Dataset, ImageInfo, Label, Ontology, Provenance
from pixlabel.store import LabelStore
from pixlabel.trust.threshold import threshold_for_pool
from pixlabel.workspace import Workspace

log = logging.getLogger(__name__)
BOX_FLOOR = 0.02  # calibrated confidence below which a box is noise, not worth a reviewer's glance


@dataclass
class DetectRun:
    workspace: Workspace
    classes: list[str]
    seeds: dict[str, list[Label]]  # human boxes per seed image
    predicted: dict[str, list[Label]]  # model boxes per unlabeled image
    threshold: float
    expected_precision: float
    teacher: TeacherResult
    errors: list[tuple[str, str]]
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def coco_path(self) -> Path:
        return self.workspace.root / "labels.coco.json"

    @property
    def detector_dir(self) -> Path:
        return self.workspace.root / "detector"


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
                                                "images": len(r.seeds) + len(r.predicted)})


def _load_all(config: LabelConfig, paths: list[str], errors: list[tuple[str, str]]) -> list[DetImage]:
    root, out = Path(config.images), []
    for p in paths:
        try:
            out.append(load_image(root, p, max_side=config.detector_size * 2, max_pixels=config.max_pixels))
        except ImageDecodeError as exc:
            errors.append((p, str(exc)))
    return out


def _run(config: LabelConfig, ws: Workspace, store: LabelStore, run_id: int, timer: StageTimer) -> DetectRun:
    with timer.stage("ingest"):
        scanned = ingest(config.images, max_pixels=config.max_pixels, decode=False, workers=config.workers)
        if not scanned.images:
            raise InputError(f"{config.images}: no readable images found")
        errors = list(scanned.errors)
        images = _load_all(config, [f.path for f in scanned.images], errors)
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
    reviewed = {p for p, labs in stored.items() if any(lab.provenance.labeler != "seed" for lab in labs)}
    store.ensure_classes(classes)
    # Seed-file boxes go into the store once; an image a reviewer has boxed keeps the reviewer's boxes.
    store.put_labels([dataclasses.replace(lab, provenance=Provenance(source="human", labeler="seed"),
                                          confidence=1.0, status="accepted")
                      for path, labs in seeds.items() if path not in stored for lab in labs],
                     run_id=run_id, actor="seed")
    seeds.update({p: stored[p] for p in reviewed})
    masks = config.task == "segment" and not config.segmenter
    arch = "maskrcnn" if masks else config.detector
    spec = DetectorSpec(arch, tuple(classes), image_size=config.detector_size)
    seed_imgs = [im for im in images if im.path in seeds]
    rest = [im for im in images if im.path not in seeds]
    targets = [_target(im, seeds[im.path], classes, masks=masks) for im in seed_imgs]
    tcfg = TeacherConfig(teacher_steps=config.teacher_steps, student_steps=config.student_steps,
                         rounds=config.rounds, pseudo_threshold=config.pseudo_threshold, seed=config.seed)
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
    with timer.stage("train"):
        import torch

        torch.manual_seed(config.seed)
        result = teacher_student(spec, seed_imgs, targets, rest, tcfg, init=init, warm=warm)
    with timer.stage("predict"):
        scales = config.tta_scale_list
        if (config.flip_tta or len(scales) > 1) and result.val_images:  # merged scores: own calibration
            val = detect(result.model, result.spec, result.val_images, flip_tta=config.flip_tta, scales=scales)
            result.spec = dataclasses.replace(result.spec, calibration=fit_calibration(val, result.val_targets))
        dets: list[Detections] = detect(result.model, result.spec, rest, flip_tta=config.flip_tta, scales=scales)
        if config.task == "segment" and config.segmenter:
            from pixlabel.detect.assist import segmenter_masks

            dets = segmenter_masks(config.segmenter, rest, dets)
        conf = np.concatenate([calibrated(result.spec, d.scores) for d in dets]) if dets else np.zeros(0)
        choice = threshold_for_pool(conf, target_precision=config.target_precision)
        version = f"{arch}/{config.detector_size}/round{result.best_round}"
        predicted = {im.path: [lab for lab in to_labels(result.spec, im, d, labeler=f"teacher-student-{arch}",
                                                        version=version, threshold=choice.threshold,
                                                        round_=result.best_round)
                               if lab.confidence >= BOX_FLOOR]
                     for im, d in zip(rest, dets, strict=True)}
    with timer.stage("store"):
        for labs in predicted.values():
            if labs:
                store.put_labels(labs, run_id=run_id)
        save_detector(ws.root / "detector", result.model, result.spec)
        run = DetectRun(ws, classes, seeds, predicted, choice.threshold, choice.expected_precision, result,
                        errors, timer.timings)
        export_detections(store, run.coco_path, ws.labels_csv, images)
        store.export_errors_csv(ws.errors_csv)
    with timer.stage("report"):
        from pixlabel.pipeline.detect_report import write_detect_report

        write_detect_report(run, images)
    return run


def export_detections(store: LabelStore, coco_path: Path, csv_path: Path, images: list[DetImage]) -> int:
    """labels.coco.json (model boxes carry ``score``) and labels.csv from the store's current labels."""
    labels = [lab for lab in store.labels() if lab.box is not None or lab.mask is not None]
    infos = [ImageInfo(im.path, im.size) for im in images]
    write_coco(Dataset(infos, labels, Ontology(tuple(store.classes()))), coco_path)
    store.export_labels_csv(csv_path)
    return len(labels)
