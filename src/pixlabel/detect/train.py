"""Fit a torchvision detector: AdamW, linear warm-up then cosine decay, gradient clipping, a time budget."""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass

import torch
from torch import nn

from pixlabel.detect.data import DetectionSet, collate
from pixlabel.progress import bar as progress_bar

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DetTrainConfig:
    steps: int = 600
    batch_size: int = 16
    lr: float = 2e-3
    weight_decay: float = 1e-4
    warmup: int = 50
    seed: int = 0
    max_seconds: float | None = None  # stop early (cleanly, at a step boundary) past this wall time


def fit_detector(model: nn.Module, data: DetectionSet, cfg: DetTrainConfig, *, desc: str = "train detector"
                 ) -> dict[str, float]:
    """Train ``model`` in place for ``cfg.steps`` mini-batches; returns the final smoothed loss and steps."""
    if len(data) == 0:
        raise ValueError("no training images with boxes")
    g = torch.Generator().manual_seed(cfg.seed)
    loader = torch.utils.data.DataLoader(data, batch_size=min(cfg.batch_size, len(data)), shuffle=True,
                                         collate_fn=collate, generator=g, drop_last=len(data) > cfg.batch_size)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)

    def lr_at(step: int) -> float:
        if step < cfg.warmup:
            return (step + 1) / cfg.warmup
        return 0.5 * (1 + math.cos(math.pi * (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_at)
    model.train()
    t0, step, smooth = time.perf_counter(), 0, float("nan")
    bar = progress_bar(total=cfg.steps, desc=desc, unit="step")
    while step < cfg.steps:
        for images, targets in loader:
            losses = model(images, targets)
            loss = sum(losses.values())
            if not torch.isfinite(loss):
                log.warning("non-finite detector loss at step %d; skipping the batch", step)
                opt.zero_grad(set_to_none=True)
                continue
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 10.0)
            opt.step()
            sched.step()
            value = loss.item()
            smooth = value if math.isnan(smooth) else 0.9 * smooth + 0.1 * value
            step += 1
            bar.update(1)
            bar.set_postfix(loss=f"{smooth:.3f}")
            if step >= cfg.steps or (cfg.max_seconds and time.perf_counter() - t0 > cfg.max_seconds):
                break
        if cfg.max_seconds and time.perf_counter() - t0 > cfg.max_seconds:
            log.info("%s: time budget reached after %d steps", desc, step)
            break
    bar.close()
    model.eval()
    return {"loss": smooth, "steps": step, "seconds": round(time.perf_counter() - t0, 1)}
