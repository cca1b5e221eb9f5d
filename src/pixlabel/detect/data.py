"""Images and box targets for detector training: decoded once, shrunk to the detector's scale, augmented
per step with torchvision transforms v2 (boxes and masks move with the pixels)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torchvision import tv_tensors
from torchvision.transforms import v2

from pixlabel.io.images import load_rgb


@dataclass
class DetImage:
    """One image at working scale: ``pixels`` (3, h, w) uint8; ``scale`` = working / original size;
    ``size`` the original ``(h, w)``."""

    path: str
    pixels: torch.Tensor
    scale: float
    size: tuple[int, int]


@dataclass
class DetTarget:
    """Boxes (n, 4) xyxy in *working* pixels, class indices (n,) and optional masks (n, h, w) bool."""

    boxes: np.ndarray
    labels: np.ndarray
    masks: np.ndarray | None = None


def load_image(root: Path, path: str, *, max_side: int, max_pixels: int) -> DetImage:
    """Decode (safely) and shrink so the longer side is at most ``max_side``; never enlarge."""
    im = load_rgb(root / path, max_pixels=max_pixels, draft=(max_side, max_side))
    w, h = im.size
    scale = min(1.0, max_side / max(w, h))
    if scale < 1.0:
        im = im.resize((max(1, round(w * scale)), max(1, round(h * scale))), resample=2)
        scale = im.size[0] / w
    arr = torch.from_numpy(np.asarray(im, np.uint8).copy()).permute(2, 0, 1).contiguous()
    return DetImage(path, arr, scale, (h, w))


def strong_augment(size: int) -> v2.Compose:
    """Colour jitter, zoom out, shift/scale and flips: the 'strong' view of STAC / Unbiased Teacher for boxes.

    Not ``RandomIoUCrop``: it retries forever on an image without boxes (a pseudo-labelled empty scene).
    """
    return v2.Compose([
        v2.RandomPhotometricDistort(p=0.5),
        v2.RandomGrayscale(p=0.2),  # classes rarely hinge on hue; pasted/tinted objects certainly do not
        v2.RandomApply([v2.RandomZoomOut(fill=0.5 * 255, side_range=(1.0, 1.6))], p=0.3),
        v2.RandomApply([v2.RandomAffine(degrees=0, translate=(0.1, 0.1), scale=(0.8, 1.25))], p=0.5),
        v2.Resize(size, antialias=True),
        v2.RandomHorizontalFlip(),
        v2.SanitizeBoundingBoxes(min_size=2),
    ])


class DetectionSet(torch.utils.data.Dataset):
    """``(image float [0,1] (3,h,w), target dict)`` pairs as torchvision detectors take them."""

    def __init__(self, images: Sequence[DetImage], targets: Sequence[DetTarget], *, augment: v2.Transform | None,
                 label_offset: int) -> None:
        self.images, self.targets, self.augment, self.offset = list(images), list(targets), augment, label_offset

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        img, t = self.images[i], self.targets[i]
        h, w = img.pixels.shape[1:]
        sample: dict[str, object] = {
            "boxes": tv_tensors.BoundingBoxes(torch.from_numpy(t.boxes).float(), format="XYXY", canvas_size=(h, w)),
            "labels": torch.from_numpy(t.labels) + self.offset,
        }
        if t.masks is not None:
            sample["masks"] = tv_tensors.Mask(torch.from_numpy(t.masks).to(torch.uint8))
        pixels = tv_tensors.Image(img.pixels)
        if self.augment is not None:
            pixels, sample = self.augment(pixels, sample)
        target = {"boxes": torch.as_tensor(sample["boxes"]).float().reshape(-1, 4),
                  "labels": torch.as_tensor(sample["labels"]).long()}
        if "masks" in sample:
            target["masks"] = torch.as_tensor(sample["masks"]).to(torch.uint8)
        return torch.as_tensor(pixels).float() / 255.0, target


def collate(batch: list[tuple[torch.Tensor, dict[str, torch.Tensor]]]) -> tuple[list, list]:
    return [b[0] for b in batch], [b[1] for b in batch]
