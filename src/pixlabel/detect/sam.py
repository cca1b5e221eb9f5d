"""Instance masks from boxes with SAM (Segment Anything, via ``transformers``): box in, mask out.

For each box SAM proposes three masks (part, object, whole) with a predicted IoU each; the one with the highest
predicted IoU is kept, as SAM's own automatic pipeline does. The image is encoded once; boxes are decoded in
chunks against that embedding. Masks are not clipped to their box: SAM may extend a box that cut an object.

``model`` is a hub id (``facebook/sam-vit-base``; needs internet once, then the Hugging Face cache) or a local
directory holding the model and processor (what offline users pass).

>>> sam = BoxPromptSegmenter("/models/sam-vit-base")  # doctest: +SKIP
>>> [m.shape for m in sam.segment(Image.open("pets.jpg"), [(12, 40, 230, 310)])]  # doctest: +SKIP
[(480, 640)]
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from PIL import Image

from pixlabel.detect.hf_pretrained import load_pretrained
from pixlabel.errors import InputError


def _load_sam(source: str, local_only: bool) -> tuple[Any, Any]:
    from transformers import SamModel, SamProcessor

    processor = SamProcessor.from_pretrained(source, local_files_only=local_only)
    model = SamModel.from_pretrained(source, local_files_only=local_only).float().eval()
    return processor, model


def _check_boxes(boxes: Sequence[Sequence[float]]) -> list[list[float]]:
    if isinstance(boxes, str | bytes) or not isinstance(boxes, Sequence | np.ndarray):
        raise InputError(f"boxes: expected a list of (x1, y1, x2, y2), got {type(boxes).__name__}")
    out = []
    for i, box in enumerate(boxes):
        try:
            values = [float(v) for v in box]
        except (TypeError, ValueError):
            values = []
        if len(values) != 4 or not all(math.isfinite(v) for v in values) \
                or values[2] <= values[0] or values[3] <= values[1]:
            raise InputError(f"box {i}: expected finite (x1, y1, x2, y2) with x2 > x1 and y2 > y1, got {box!r}")
        out.append(values)
    return out


class BoxPromptSegmenter:
    """SAM masks for boxes given in original-image pixels."""

    def __init__(self, model: str, *, device: str = "cpu"):
        self.model_id = model
        self.device = torch.device(device)
        self.processor, self.model = load_pretrained(model, what="SAM segmenter", model_types=("sam",),
                                                     load=_load_sam)
        self.model.to(self.device)

    def segment(self, image: Image.Image, boxes: Sequence[Sequence[float]], *, batch_size: int = 16
                ) -> list[np.ndarray]:
        """One ``(h, w)`` bool mask per box, in box order; ``h, w`` are the image's own. ``batch_size`` boxes are
        decoded and upsampled at a time (each holds an ``(h, w)`` float map while upsampling)."""
        if not isinstance(image, Image.Image):
            raise InputError(f"segment expects a PIL image, got {type(image).__name__}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise InputError(f"batch_size must be a positive integer, got {batch_size!r}")
        checked = _check_boxes(boxes)
        if not checked:
            return []
        image = image.convert("RGB")
        masks: list[np.ndarray] = []
        # the processor resizes the image (longest side) and rescales the boxes into that frame
        encoded = self.processor(images=image, input_boxes=[checked], return_tensors="pt")
        prompts = encoded["input_boxes"].to(self.device, torch.float32)  # (1, n, 4)
        with torch.inference_mode():
            embedding = self.model.get_image_embeddings(encoded["pixel_values"].to(self.device))  # (1, C, e, e)
            for start in range(0, len(checked), batch_size):
                out = self.model(image_embeddings=embedding, input_boxes=prompts[:, start:start + batch_size],
                                 multimask_output=True)
                # choose before upsampling: (b, 3) predicted IoU → (b, 1, m, m) low-res logits of the best
                best = out.iou_scores[0].argmax(dim=-1)  # (b,) the proposal SAM trusts most
                low = out.pred_masks[0, torch.arange(len(best), device=best.device), best][:, None].cpu()
                full = self.processor.image_processor.post_process_masks(
                    [low], encoded["original_sizes"], encoded["reshaped_input_sizes"])[0]  # (b, 1, h, w) bool
                masks.extend(full[:, 0].numpy().astype(bool))
        return masks
