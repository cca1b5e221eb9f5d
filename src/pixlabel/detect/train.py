"""Fit a torchvision detector: AdamW, linear warm-up then cosine decay, gradient clipping, a time budget.

With ``seconds`` the step count comes from the clock: the first steps are timed and the schedule is set to
fit the rest in the time given (at most ``steps``). ``save(state)`` receives everything needed to resume
(weights, optimizer, schedule, step, planned steps) every ``save_every`` seconds; ``resume`` continues from
such a state (the data order after a resume differs from an uninterrupted run's).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from pixlabel.budget import Budget
from pixlabel.detect.data import DetectionSet, collate
from pixlabel.progress import bar as progress_bar

log = logging.getLogger(__name__)
PROBE_STEPS = 6  # steps timed (after the first, which pays for allocation) before the schedule is fixed


@dataclass(frozen=True)
class DetTrainConfig:
    steps: int = 600  # the step count; with ``seconds``, the most steps the clock may allow
    batch_size: int = 16
    lr: float = 2e-3
    weight_decay: float = 1e-4
    warmup: int = 50
    seed: int = 0
    max_seconds: float | None = None  # stop early (cleanly, at a step boundary) past this wall time
    seconds: float | None = None  # plan the step count to fit this wall time
    min_steps: int = 50  # with ``seconds``: however small the budget, a detector needs a few steps to be one


def fit_detector(model: nn.Module, data: DetectionSet, cfg: DetTrainConfig, *, desc: str = "train detector",
                 budget: Budget | None = None, resume: dict[str, Any] | None = None,
                 save: Callable[[dict[str, Any]], None] | None = None, save_every: float = 60.0
                 ) -> dict[str, float]:
    """Train ``model`` in place; returns the final smoothed loss, the steps taken and the seconds."""
    if len(data) == 0:
        raise ValueError("no training images with boxes")
    g = torch.Generator().manual_seed(cfg.seed + (resume or {}).get("step", 0))
    loader = torch.utils.data.DataLoader(data, batch_size=min(cfg.batch_size, len(data)), shuffle=True,
                                         collate_fn=collate, generator=g, drop_last=len(data) > cfg.batch_size)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    planned = {"steps": cfg.steps if cfg.seconds is None else max(cfg.min_steps, min(cfg.steps, 10_000)),
               "warmup": cfg.warmup, "fixed": cfg.seconds is None}
    step = 0
    if resume is not None:
        model.load_state_dict(resume["model"])
        opt.load_state_dict(resume["opt"])
        step = int(resume["step"])
        planned.update(steps=int(resume["steps"]), warmup=int(resume["warmup"]), fixed=True)

    def lr_at(s: int) -> float:
        if s < planned["warmup"]:
            return (s + 1) / planned["warmup"]
        return 0.5 * (1 + math.cos(math.pi * min(1.0, (s - planned["warmup"]) /
                                                 max(1, planned["steps"] - planned["warmup"]))))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_at, last_epoch=step - 1) if step else \
        torch.optim.lr_scheduler.LambdaLR(opt, lr_at)
    model.train()
    t0 = last_save = time.perf_counter()
    smooth, first = float("nan"), step
    probe_start: float | None = None
    bar = progress_bar(total=planned["steps"], desc=desc, unit="step")
    bar.update(step)

    def state() -> dict[str, Any]:
        return {"model": model.state_dict(), "opt": opt.state_dict(), "step": step, "steps": planned["steps"],
                "warmup": planned["warmup"]}

    done = False
    while not done:
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
            if step == first + 1:
                probe_start = time.perf_counter()
            elif not planned["fixed"] and step == first + 1 + PROBE_STEPS and probe_start is not None:
                per_step = (time.perf_counter() - probe_start) / PROBE_STEPS
                assert cfg.seconds is not None
                planned["steps"] = int(max(cfg.min_steps, min(cfg.steps, cfg.seconds / per_step)))
                planned["warmup"] = max(1, min(cfg.warmup, planned["steps"] // 10))
                planned["fixed"] = True
                bar.total = planned["steps"]
                log.info("%s: %d steps at %.2f s/step to fit %.0f s%s", desc, planned["steps"], per_step,
                         cfg.seconds, f" ({budget.describe()})" if budget else "")
            bar.update(1)
            bar.set_postfix(loss=f"{smooth:.3f}", **({"left": budget.describe().split(" left")[0]} if budget else {}))
            now = time.perf_counter()
            if save is not None and now - last_save > save_every:
                save(state())
                last_save = now
            # the clock plan is a plan: a machine that slows down mid-stage must not eat the rest of the run
            over = cfg.seconds is not None and step >= cfg.min_steps and now - t0 > 1.25 * cfg.seconds
            if step >= planned["steps"] or (cfg.max_seconds and now - t0 > cfg.max_seconds) or over:
                done = True
                break
    if step < planned["steps"]:
        log.info("%s: time limit reached after %d of %d steps", desc, step, planned["steps"])
    bar.close()
    model.eval()
    return {"loss": smooth, "steps": step, "seconds": round(time.perf_counter() - t0, 1)}
