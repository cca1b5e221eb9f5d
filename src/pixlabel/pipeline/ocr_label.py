"""``pixlabel label IMAGES --task ocr --out WS``: every line of text as a box labelled ``text`` whose
``text`` attribute is the transcript (RapidOCR's bundled PP-OCR models; no seeds needed).

Confidence is the recognizer's own score (not calibrated: there are no human transcripts to calibrate on);
boxes at or above ``--target-precision`` are accepted, the rest go to review. Writes the store, labels.csv,
labels.coco.json (transcripts as ``attributes.text``), errors.csv and config.yaml; ``pixlabel export WS --to
label-studio`` gives the OCR template (rectangles with a per-region transcript) for review.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pixlabel.detect.ocr import TextBox, TextReader
from pixlabel.errors import InputError
from pixlabel.io.formats.coco import write_coco
from pixlabel.io.images import ImageDecodeError, load_rgb
from pixlabel.io.ingest import ingest
from pixlabel.pipeline.config import LabelConfig
from pixlabel.pipeline.label import StageTimer, tracked_run
from pixlabel.progress import progress
from pixlabel.records import Box, Dataset, ImageInfo, Label, Ontology, Provenance
from pixlabel.store import LabelStore
from pixlabel.workspace import Workspace

log = logging.getLogger(__name__)
TEXT_CLASS = "text"


@dataclass
class OcrRun:
    workspace: Workspace
    labels: dict[str, list[Label]]  # text boxes per image
    errors: list[tuple[str, str]]
    engine: str
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def coco_path(self) -> Path:
        return self.workspace.root / "labels.coco.json"


def text_labels(path: str, boxes: Sequence[TextBox], *, image_size: tuple[int, int], version: str,
                accept_at: float) -> list[Label]:
    """OCR lines of one image as ``text`` box labels carrying their transcript."""
    provenance = Provenance(source="model", labeler="ocr", model_version=version)
    out = []
    for line in boxes:
        box = Box(*line.xyxy, image_size=image_size).clipped()
        if box.area <= 0:
            continue
        score = min(max(line.score, 0.0), 1.0)
        out.append(Label(path, TEXT_CLASS, score, provenance, status="accepted" if score >= accept_at else "review",
                         box=box, attributes={"text": line.text}))
    return out


def run_ocr_label(config: LabelConfig) -> OcrRun:
    return tracked_run(config, _run, lambda r: {"task": "ocr", "images": len(r.labels),
                                                "boxes": sum(len(v) for v in r.labels.values())})


def _run(config: LabelConfig, ws: Workspace, store: LabelStore, run_id: int, timer: StageTimer) -> OcrRun:
    with timer.stage("ingest"):
        scanned = ingest(config.images, max_pixels=config.max_pixels, decode=False, workers=config.workers)
        if not scanned.images:
            raise InputError(f"{config.images}: no readable images found")
        errors = list(scanned.errors)
    reader = TextReader(threads=max(config.workers, 1))
    found: dict[str, list[Label]] = {}
    sizes: dict[str, tuple[int, int]] = {}
    with timer.stage("ocr"):
        for image in progress(scanned.images, desc="ocr", unit="img"):
            try:
                pixels = np.asarray(load_rgb(image.abs_path, max_pixels=config.max_pixels))
            except ImageDecodeError as exc:
                errors.append((image.path, str(exc)))
                continue
            sizes[image.path] = pixels.shape[:2]
            found[image.path] = text_labels(image.path, reader.read(pixels), image_size=sizes[image.path],
                                            version=reader.version, accept_at=config.target_precision)
    with timer.stage("store"):
        errors.sort()
        store.sync_images((f.path, f.content_hash, sizes.get(f.path)) for f in scanned.images)
        store.record_errors(errors)
        store.ensure_classes([TEXT_CLASS])
        batch = [lab for labs in found.values() for lab in labs]
        if batch:
            store.put_labels(batch, run_id=run_id)
        regions = [lab for lab in store.labels() if lab.box is not None or lab.mask is not None]
        infos = [ImageInfo(p, s) for p, s in sizes.items()]
        write_coco(Dataset(infos, regions, Ontology(tuple(store.classes()))), ws.root / "labels.coco.json")
        store.export_labels_csv(ws.labels_csv)
        store.export_errors_csv(ws.errors_csv)
    return OcrRun(ws, found, errors, reader.version, timer.timings)


def print_ocr_summary(run: OcrRun) -> None:
    boxes = [lab for labs in run.labels.values() for lab in labs]
    accepted = sum(lab.status == "accepted" for lab in boxes)
    with_text = sum(bool(labs) for labs in run.labels.values())
    print(f"read {len(boxes)} text lines on {with_text}/{len(run.labels)} images with {run.engine}: "
          f"{accepted} accepted, {len(boxes) - accepted} to review")
    if run.errors:
        print(f"{len(run.errors)} unreadable file(s): see {run.workspace.errors_csv}")
    total = sum(run.timings.values())
    print(f"time {total:.1f}s ({', '.join(f'{k} {v:.1f}s' for k, v in run.timings.items())})")
    print(f"labels: {run.workspace.labels_csv}\nboxes: {run.coco_path}")
