"""Open-vocabulary boxes from class names with OWLv2 (``transformers``): no seed boxes needed.

OWLv2 proposes one box per image patch and scores it against every text prompt. A class may have several
prompts (aliases, descriptions); a box takes the class of its best prompt, so a class's score is the max over
its prompts (an alias can only add recall, never dilute another prompt). Scores are OWLv2's sigmoid
outputs: ranked but not calibrated probabilities.

OWLv2 pads every image to a square (bottom and right) before resizing it to the model's input size, so its
normalised boxes are fractions of that square: scaled by the longer side they are original pixels (the origin
does not move), and boxes reaching into the padding are clipped to the image here.

``model`` is a hub id (``google/owlv2-base-patch16-ensemble``; needs internet once, then the Hugging Face
cache) or a local directory holding the model and processor (what offline users pass).

>>> det = OpenVocabDetector("/models/owlv2-base", ["cat", "dog"],
...                         prompts={"cat": ["a photo of a cat.", "a kitten."]})  # doctest: +SKIP
>>> det.predict([Image.open("pets.jpg")], score_threshold=0.2)[0][0]  # doctest: +SKIP
Detection(x1=12.5, y1=40.0, x2=230.1, y2=310.7, class_index=0, score=0.61)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from PIL import Image

from pixlabel.detect.hf_pretrained import load_pretrained
from pixlabel.errors import InputError

DEFAULT_TEMPLATE = "a photo of a {}."  # the prompt form OWL-ViT/OWLv2 were shown with


@dataclass(frozen=True)
class Detection:
    """One box in original-image pixels, corners ``(x1, y1)``–``(x2, y2)``, with ``0 <= x1 < x2 <= w``."""

    x1: float
    y1: float
    x2: float
    y2: float
    class_index: int  # into the detector's ``classes``
    score: float  # sigmoid score of the class's best prompt, in (0, 1)

    @property
    def box(self) -> tuple[float, float, float, float]:
        return (self.x1, self.y1, self.x2, self.y2)


def detector_prompts(classes: Sequence[str], prompts: Mapping[str, Sequence[str]] | None = None
                     ) -> dict[str, list[str]]:
    """Prompts per class: the user's list where given (e.g. from ``read_prompts_yaml``), else one
    ``"a photo of a {name}."``. A user list replaces the default, so a vague default cannot add false boxes.

    >>> detector_prompts(["cat", "golden_retriever"], {"cat": ["a cat.", "a kitten."]})
    {'cat': ['a cat.', 'a kitten.'], 'golden_retriever': ['a photo of a golden retriever.']}
    """
    if isinstance(classes, str) or not isinstance(classes, Sequence) or not classes \
            or not all(isinstance(c, str) and c.strip() for c in classes):
        raise InputError(f"classes: expected a non-empty list of class names, got {classes!r:.120}")
    dupes = sorted({c for c in classes if list(classes).count(c) > 1})
    if dupes:
        raise InputError(f"classes: duplicate class names: {', '.join(dupes)}")
    prompts = dict(prompts or {})
    unknown = [k for k in prompts if k not in classes]
    if unknown:
        raise InputError(f"prompts for unknown class {unknown[0]!r}; known: {', '.join(classes)}")
    out: dict[str, list[str]] = {}
    owner: dict[str, str] = {}
    for name in classes:
        given = prompts.get(name)
        if given is None:
            texts = [DEFAULT_TEMPLATE.format(name.replace("_", " ").strip())]
        elif isinstance(given, str) or not isinstance(given, Sequence) or not given \
                or not all(isinstance(p, str) and p.strip() for p in given):
            raise InputError(f"prompts of class {name!r}: expected a non-empty list of strings, got {given!r:.120}")
        else:
            texts = list(dict.fromkeys(p.strip() for p in given))
        for text in texts:
            if text in owner:  # one box score cannot go to two classes
                raise InputError(f"prompt {text!r} is given for both {owner[text]!r} and {name!r}")
            owner[text] = name
        out[name] = texts
    return out


def _load_owlv2(source: str, local_only: bool) -> tuple[Any, Any]:
    from transformers import Owlv2ForObjectDetection, Owlv2Processor

    processor = Owlv2Processor.from_pretrained(source, local_files_only=local_only)
    # float(): a half-precision checkpoint would be slow or unsupported on CPU
    model = Owlv2ForObjectDetection.from_pretrained(source, local_files_only=local_only).float().eval()
    return processor, model


class OpenVocabDetector:
    """OWLv2 boxes for ``classes``, described by ``prompts`` (see :func:`detector_prompts`)."""

    def __init__(self, model: str, classes: Sequence[str], *, prompts: Mapping[str, Sequence[str]] | None = None,
                 device: str = "cpu"):
        self.prompts = detector_prompts(classes, prompts)
        self.classes = list(self.prompts)
        self.model_id = model
        self.device = torch.device(device)
        self.processor, self.model = load_pretrained(model, what="OWLv2 detector", model_types=("owlv2",),
                                                     load=_load_owlv2)
        self.model.to(self.device)
        self._texts = [p for ps in self.prompts.values() for p in ps]  # (Q,) all prompts, class by class
        self._text_class = torch.tensor([k for k, ps in enumerate(self.prompts.values()) for _ in ps])  # (Q,)
        self._check_prompt_lengths()

    def _check_prompt_lengths(self) -> None:
        # OWL text towers have 16 positions; truncation would drop the end token the text embedding is read at
        tokenizer = self.processor.tokenizer
        limit = min(int(tokenizer.model_max_length), int(self.model.config.text_config.max_position_embeddings))
        for text, ids in zip(self._texts, tokenizer(self._texts, verbose=False)["input_ids"], strict=True):
            if len(ids) > limit:
                raise InputError(f"prompt {text!r} is {len(ids)} tokens; {self.model_id} reads at most {limit} "
                                 "(start and end tokens included): shorten it")

    def predict(self, images: Sequence[Image.Image], *, score_threshold: float = 0.1, nms_iou: float | None = 0.5,
                max_detections: int = 100, batch_size: int = 4) -> list[list[Detection]]:
        """Detections per image, best score first. ``nms_iou``: per-class non-maximum suppression of boxes
        overlapping more than this (None: off — OWLv2 was trained set-wise, but neighbouring patches still
        repeat an object now and then). At most ``max_detections`` per image.
        """
        _check_options(score_threshold, nms_iou, max_detections, batch_size)
        if isinstance(images, Image.Image) or not all(isinstance(im, Image.Image) for im in images):
            raise InputError(f"predict expects a list of PIL images, got {type(images).__name__}")
        out: list[list[Detection]] = []
        for start in range(0, len(images), batch_size):
            batch = [im.convert("RGB") for im in images[start:start + batch_size]]
            # one prompt list per image: OWLv2 reshapes the text batch to (images, queries)
            inputs = self.processor(text=[self._texts] * len(batch), images=batch, return_tensors="pt")
            with torch.inference_mode():
                outputs = self.model(**inputs.to(self.device))
            sizes = [(im.height, im.width) for im in batch]  # (h, w)
            # the padded square's side on both axes: right on every transformers version (before 4.42 the
            # post-processing scaled y by h and x by w, huggingface/transformers#30686)
            squares = [(max(size), max(size)) for size in sizes]
            results = self.processor.image_processor.post_process_object_detection(
                outputs, threshold=score_threshold, target_sizes=squares)
            out.extend(self._detections(r, size, nms_iou, max_detections) for r, size in zip(results, sizes,
                                                                                               strict=True))
        return out

    def _detections(self, result: dict[str, torch.Tensor], size: tuple[int, int], nms_iou: float | None,
                    max_detections: int) -> list[Detection]:
        from torchvision.ops import batched_nms

        h, w = size
        boxes = result["boxes"].float().cpu()  # (n, 4) x1 y1 x2 y2, may reach into the padding
        scores = result["scores"].float().cpu()  # (n,) best prompt's score
        classes = self._text_class[result["labels"].cpu()]  # (n,) best prompt → its class
        boxes[:, 0::2] = boxes[:, 0::2].clamp(0, w)
        boxes[:, 1::2] = boxes[:, 1::2].clamp(0, h)
        keep = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])  # boxes wholly in the padding vanish
        boxes, scores, classes = boxes[keep], scores[keep], classes[keep]
        if nms_iou is None:
            order = torch.argsort(scores, descending=True, stable=True)
        else:
            order = batched_nms(boxes, scores, classes, nms_iou)  # sorted by score
        order = order[:max_detections]
        out = []
        for i in order.tolist():
            x1, y1, x2, y2 = boxes[i].tolist()
            out.append(Detection(x1, y1, x2, y2, class_index=int(classes[i]), score=float(scores[i])))
        return out


def _check_options(score_threshold: float, nms_iou: float | None, max_detections: int, batch_size: int) -> None:
    if isinstance(score_threshold, bool) or not isinstance(score_threshold, int | float) \
            or not math.isfinite(score_threshold) or not 0 <= score_threshold < 1:
        raise InputError(f"score_threshold must be in [0, 1), got {score_threshold!r}")
    if nms_iou is not None and (isinstance(nms_iou, bool) or not isinstance(nms_iou, int | float)
                                or not 0 < nms_iou <= 1):
        raise InputError(f"nms_iou must be in (0, 1] or None, got {nms_iou!r}")
    for name, value in (("max_detections", max_detections), ("batch_size", batch_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InputError(f"{name} must be a positive integer, got {value!r}")
