"""Pretrained helpers around the trained detector, both optional and both from ``transformers``:

- open-vocabulary boxes (OWLv2) from class names, calibrated on the seed images and added to the teacher's
  training set as pseudo-boxes for unlabeled images (``--open-vocab MODEL``);
- box-prompted masks (SAM) for the final boxes (``--segmenter sam:MODEL`` with ``--task segment``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import replace

import numpy as np
from PIL import Image

from pixlabel.detect.data import DetImage, DetTarget
from pixlabel.detect.predict import Detections, calibrated, fit_calibration
from pixlabel.detect.spec import DetectorSpec
from pixlabel.errors import InputError

log = logging.getLogger(__name__)


def _pil(image: DetImage) -> Image.Image:
    return Image.fromarray(image.pixels.permute(1, 2, 0).numpy())


def open_vocab_pseudo_boxes(model: str, classes: Sequence[str], prompts: Mapping[str, Sequence[str]] | None,
                            seeds: Sequence[DetImage], seed_targets: Sequence[DetTarget],
                            unlabeled: Sequence[DetImage], *, threshold: float) -> list[tuple[DetImage, DetTarget]]:
    """OWLv2 boxes on the unlabeled images whose seed-calibrated P(correct) clears ``threshold``."""
    from pixlabel.detect.open_vocab import OpenVocabDetector

    det = OpenVocabDetector(model, list(classes), prompts=prompts)

    def run(images: Sequence[DetImage]) -> list[Detections]:
        out = []
        for found in det.predict([_pil(im) for im in images], score_threshold=0.05):
            out.append(Detections(np.array([d.box for d in found], np.float32).reshape(-1, 4),
                                  np.array([d.class_index for d in found], np.int64),
                                  np.array([d.score for d in found], np.float64)))
        return out

    spec = DetectorSpec("fcos", tuple(classes), calibration=fit_calibration(run(seeds), seed_targets))
    pseudo = []
    for im, d in zip(unlabeled, run(unlabeled), strict=True):
        target = d.above(threshold, calibrated(spec, d.scores))
        if len(target.labels):
            pseudo.append((im, target))
    log.info("open-vocabulary %s: %d pseudo-boxed images", model, len(pseudo))
    return pseudo


def segmenter_masks(segmenter: str, images: Sequence[DetImage], dets: Sequence[Detections]) -> list[Detections]:
    """Each detection's mask from a box-prompted segmenter, given as ``sam:MODEL`` (hub id or local dir)."""
    kind, sep, model = segmenter.partition(":")
    if kind != "sam" or not sep or not model:
        raise InputError(f"--segmenter {segmenter!r}: expected sam:MODEL (a hub id or a local directory)")
    from pixlabel.detect.sam import BoxPromptSegmenter

    sam = BoxPromptSegmenter(model)
    out = []
    for im, d in zip(images, dets, strict=True):
        h, w = im.pixels.shape[1:]
        masks = sam.segment(_pil(im), [tuple(float(v) for v in b) for b in d.boxes]) if len(d.boxes) else []
        out.append(replace(d, masks=np.stack(masks) if masks else np.zeros((0, h, w), bool)))
    return out
