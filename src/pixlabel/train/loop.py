"""The training loop: cached uint8 tensors → augmented batches → optimiser steps, with validation,
early stopping, best checkpoint, curves and an every-epoch ``last.pt`` to resume from.

Determinism: the split, every epoch's sample order and every image's augmentation are seeded from
``config.seed`` (per epoch and per position, not from a running RNG), so an interrupted run resumed from
``last.pt`` ends with the same weights as an uninterrupted one.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from torch.utils.data import DataLoader, Dataset

from pixlabel.errors import InputError
from pixlabel.models.checkpoint import load_weights_only
from pixlabel.models.spec import ModelSpec, save_model
from pixlabel.progress import bar
from pixlabel.train.attacks import PixelSpace, perturb
from pixlabel.train.augment import erase_batch, flip_shift_batch, make_batch_mix, make_transform, shift_pad
from pixlabel.train.config import RESUME_FREE_KEYS, TrainConfig
from pixlabel.train.losses import balanced_class_weights, soft_loss

log = logging.getLogger("pixlabel.train")
LAST = "last.pt"
CURVE_COLUMNS = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "seconds")


@dataclass(frozen=True)
class Arrays:
    """What the loop trains on: ``x`` uint8 ``(N, C, h, w)``, ``y`` class indices, ``w`` loss weights."""

    x: np.ndarray
    y: np.ndarray
    w: np.ndarray | None = None


@dataclass(frozen=True)
class TrainResult:
    out: Path
    spec: ModelSpec
    epochs_run: int
    best_epoch: int
    best_val_acc: float | None
    stopped_early: bool
    history: list[dict[str, float]]
    seconds: float


class _EpochView(Dataset):
    """Position ``p`` of this epoch's order → (augmented image, example index); seeded per position."""

    def __init__(self, x: torch.Tensor, order: np.ndarray, transform: Any, seed: int) -> None:
        self.x, self.order, self.transform, self.seed = x, order, transform, seed

    def __len__(self) -> int:
        return len(self.order)

    def __getitem__(self, pos: int) -> tuple[torch.Tensor, int]:
        i = int(self.order[pos])
        if self.transform is None:
            return self.x[i], i
        # Same image, same epoch -> same augmentation, in any worker. Only the CPU generator (which the
        # transforms draw from): torch.manual_seed also seeds accelerators and costs ~100x more per call.
        torch.default_generator.manual_seed(self.seed + pos)
        return self.transform(self.x[i]), i


def use_bf16(precision: str) -> bool:
    from pixlabel.backbones.embed import bf16_is_fast

    return precision == "bf16" or (precision == "auto" and bf16_is_fast())


def _autocast(bf16: bool) -> Any:
    return torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else nullcontext()


def _optimizer(config: TrainConfig, net: nn.Module, lr: float) -> torch.optim.Optimizer:
    decay: list[nn.Parameter] = []
    no_decay: list[nn.Parameter] = []
    for p in net.parameters():
        if p.requires_grad:
            (no_decay if p.ndim <= 1 else decay).append(p)  # no weight decay on biases and norm scales
    groups = [{"params": decay, "weight_decay": config.decay()}, {"params": no_decay, "weight_decay": 0.0}]
    if config.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=0.9, nesterov=True)
    if config.optimizer == "adam":
        return torch.optim.Adam(groups, lr=lr)
    return torch.optim.AdamW(groups, lr=lr)


def _ema(net: nn.Module, decay: float) -> AveragedModel | None:
    """An exponential moving average of ``net``'s weights and batch-norm statistics, updated after every
    step (torch's ``AveragedModel``); it smooths out the last steps' noise for evaluation. None when off."""
    if decay <= 0:
        return None
    return AveragedModel(net, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)


def _scheduler(config: TrainConfig, opt: torch.optim.Optimizer, lr: float, total: int) -> Any:
    from torch.optim import lr_scheduler

    if config.schedule == "onecycle":
        return lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=total, pct_start=0.2)
    if config.schedule == "cosine":
        return lr_scheduler.CosineAnnealingLR(opt, T_max=total)
    if config.schedule == "step":  # x0.1 after each third of the run
        return lr_scheduler.StepLR(opt, step_size=max(1, total // 3), gamma=0.1)
    return lr_scheduler.LambdaLR(opt, lambda _: 1.0)


def _freeze_backbone(net: nn.Module) -> None:
    """Only the classifier head keeps learning (timm's ``get_classifier`` or a ``head`` attribute)."""
    get_classifier: Any = getattr(net, "get_classifier", None)
    head = get_classifier() if callable(get_classifier) else getattr(net, "head", None)
    if not isinstance(head, nn.Module):
        raise InputError("--freeze-backbone: this arch has no separate classifier head")
    for p in net.parameters():
        p.requires_grad = False
    for p in head.parameters():
        p.requires_grad = True


def _train_mode(model: nn.Module, *, frozen: bool) -> None:
    """Train mode; with a frozen backbone its batch-norm layers stay in eval mode so their ImageNet
    statistics are kept, not re-estimated from small batches of new data."""
    model.train()
    if frozen:
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm) and not any(p.requires_grad for p in m.parameters()):
                m.eval()


def _order(y: np.ndarray, *, oversample: bool, rng: np.random.Generator) -> np.ndarray:
    """This epoch's sample order: a permutation, or with ``oversample`` a class-balanced draw with replacement
    (what ``WeightedRandomSampler`` does, drawn from our seeded generator so it is reproducible)."""
    if not oversample:
        return rng.permutation(len(y))
    counts = np.bincount(y)
    p = 1.0 / counts[y]
    return rng.choice(len(y), size=len(y), replace=True, p=p / p.sum())


def _batches(loader: DataLoader, *, single_thread: bool) -> Iterator[Any]:
    """The loader's batches; augmenting in this process runs on one thread, because per-image ops are far too
    small for a thread pool (2 threads made them ~50x slower on a busy 2-core machine)."""
    it = iter(loader)
    while True:
        threads = torch.get_num_threads()
        if single_thread:
            torch.set_num_threads(1)
        try:
            batch = next(it)
        except StopIteration:
            return
        finally:
            torch.set_num_threads(threads)
        yield batch


def _epoch_batches(x: torch.Tensor, order: np.ndarray, transform: Any, config: TrainConfig, *, seed: int,
                   drop_last: bool, pad: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """(float images in [0, 1], example indices) for each batch of this epoch's ``order``. Per-image transforms
    go through a DataLoader (optionally in worker processes); ``none`` and ``basic`` slice the cached tensor a
    batch at a time, ``basic`` augmenting it with a generator seeded per (epoch, batch) so resuming stays exact.
    ``--erase`` then works on each batch, drawing from the same per-batch generator."""
    bs = config.batch_size
    if transform is not None:
        loader = DataLoader(_EpochView(x, order, transform, seed), batch_size=bs, shuffle=False,
                            drop_last=drop_last, num_workers=config.workers)
        for b, (xb, ib) in enumerate(_batches(loader, single_thread=config.workers == 0)):
            if config.erase > 0:  # past every position's seed (seed + pos): no stream shared with the transforms
                gen = torch.Generator().manual_seed(seed + len(order) + b * bs)
                xb = erase_batch(xb, p=config.erase, generator=gen)
            yield xb, ib
        return
    end = len(order) - len(order) % bs if drop_last else len(order)
    for start in range(0, end, bs):
        ib = torch.from_numpy(order[start:start + bs])
        gen = torch.Generator().manual_seed(seed + start)
        xb = flip_shift_batch(x[ib], pad=pad, generator=gen) if config.augment == "basic" else x[ib].float().div_(255)
        if config.erase > 0:
            xb = erase_batch(xb, p=config.erase, generator=gen)
        yield xb, ib


@torch.inference_mode()
def predict_logits(model: nn.Module, x: np.ndarray, *, bf16: bool, tta: str = "none", batch: int = 1024
                   ) -> np.ndarray:
    """Logits for uint8 images ``(N, C, h, w)`` through a :class:`PixelSpace` model. With ``tta="flip"``: the
    log of the softmax averaged over the image and its mirror, i.e. what the saved predictor returns, as logits."""
    model.eval()
    out = []
    for i in range(0, len(x), batch):
        xb = torch.from_numpy(x[i:i + batch]).float().div_(255).contiguous(memory_format=torch.channels_last)
        with _autocast(bf16):
            logits = model(xb).float()
            if tta == "flip":
                probs = (logits.softmax(1) + model(xb.flip(3)).float().softmax(1)) / 2
                logits = probs.clamp_min(torch.finfo(torch.float32).tiny).log()  # no -inf loss from an underflow
        out.append(logits)
    return torch.cat(out).numpy() if out else np.zeros((0, 0), np.float32)


def _validate(model: nn.Module, val: Arrays | None, *, bf16: bool, tta: str) -> tuple[float, float]:
    if val is None or len(val.y) == 0:
        return math.nan, math.nan
    logits = torch.from_numpy(predict_logits(model, val.x, bf16=bf16, tta=tta))
    y = torch.from_numpy(val.y)
    return float(F.cross_entropy(logits, y)), float((logits.argmax(1) == y).float().mean())


def _config_key(config: TrainConfig) -> dict[str, Any]:
    return {k: v for k, v in dataclasses.asdict(config).items() if k not in RESUME_FREE_KEYS}


def _stored_keys(state: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """A checkpoint's (config key, spec dict) with options added since it was written read as their defaults,
    so a run interrupted before an upgrade (e.g. before ``--tta``/``--erase`` existed) still resumes."""
    defaults = {f.name: f.default for f in dataclasses.fields(TrainConfig)
                if f.default is not dataclasses.MISSING and f.name not in RESUME_FREE_KEYS}
    return {**defaults, **state["config"]}, ModelSpec.from_dict(state["spec"]).to_dict()


def _save_last(path: Path, state: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    tmp.replace(path)


def fit(
    net: nn.Module, spec: ModelSpec, train: Arrays, val: Arrays | None, config: TrainConfig, *,
    on_epoch: Callable[[int, dict[str, float]], None] | None = None,
) -> TrainResult:
    """Train ``net`` (built for ``spec``) and keep the best epoch in ``config.out`` as a model directory.

    ``on_epoch(epoch, row)`` runs after each finished epoch (checkpoints are already written).
    """
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    torch.manual_seed(config.seed)
    bf16 = use_bf16(config.precision)
    k = len(spec.classes)
    if config.freeze_backbone:
        _freeze_backbone(net)
    model = PixelSpace(net, spec.mean, spec.std).to(memory_format=torch.channels_last)
    ema = _ema(net, config.ema)
    # validated and saved: the moving average of the weights when --ema is on, else the trained net itself
    kept = ema.module if ema is not None else net
    kept_model = PixelSpace(kept, spec.mean, spec.std) if ema is not None else model
    lr = config.learning_rate(pretrained_timm=spec.arch.startswith("timm:") and config.pretrained)
    n = len(train.y)
    drop_last = n > config.batch_size  # a final batch of one image would break batch norm
    steps = n // config.batch_size if drop_last else 1
    opt = _optimizer(config, net, lr)
    sched = _scheduler(config, opt, lr, steps * config.epochs)
    transform = make_transform(config.augment, size=spec.image_size)
    pad = shift_pad(spec.image_size)
    mix = make_batch_mix(mixup=config.mixup, cutmix=config.cutmix, num_classes=k)
    class_w = balanced_class_weights(train.y, k) if config.imbalance == "weights" else None
    gamma = config.focal_gamma if config.imbalance == "focal" else 0.0
    x_t = torch.from_numpy(train.x)
    y_t = torch.from_numpy(train.y.astype(np.int64))
    w_t = torch.from_numpy(train.w.astype(np.float32)) if train.w is not None else None

    history: list[dict[str, float]] = []
    best = {"epoch": 0, "val_acc": -1.0, "val_loss": math.inf}
    bad_epochs, start_epoch = 0, 0
    last_path = out / LAST
    if last_path.is_file() and not config.restart:
        # data only: a crafted last.pt must not run code (every value saved below is a tensor or plain data)
        state = load_weights_only(last_path, what="training checkpoint (pass --restart to start over)")
        stored_config, stored_spec = _stored_keys(state)
        if stored_config != _config_key(config) or stored_spec != spec.to_dict():
            changed = sorted(key for key in set(stored_config) | set(_config_key(config))
                             if stored_config.get(key) != _config_key(config).get(key))
            raise InputError(f"{last_path}: this folder holds a run with other settings (changed: "
                             f"{', '.join(changed) or 'data or model spec'}); pass --restart to start over "
                             "or choose another --out")
        net.load_state_dict(state["net"])
        if ema is not None:
            ema.load_state_dict(state["ema"])
        opt.load_state_dict(state["opt"])
        sched.load_state_dict(state["sched"])
        history, best, bad_epochs, start_epoch = state["history"], state["best"], state["bad_epochs"], state["epoch"]
        if state.get("done"):
            log.info("%s: training already finished (epoch %d); nothing to do (--restart trains again)",
                     out, start_epoch)
            return _result(out, spec, history, best, state.get("stopped", False), started)
        log.info("resuming %s after epoch %d", out, start_epoch)

    stopped = False
    has_val = val is not None and len(val.y) > 0
    for epoch in range(start_epoch + 1, config.epochs + 1):
        t0 = time.perf_counter()
        epoch_seed = config.seed * 1_000_003 + epoch * 10_007
        torch.manual_seed(epoch_seed)
        order = _order(train.y, oversample=config.imbalance == "oversample",
                       rng=np.random.default_rng([config.seed, epoch]))
        _train_mode(model, frozen=config.freeze_backbone)
        loss_sum, correct, seen = 0.0, 0, 0
        with bar(desc=f"epoch {epoch}/{config.epochs}", total=steps, unit="batch") as pbar:
            for xb, ib in _epoch_batches(x_t, order, transform, config, seed=epoch_seed * 1009,
                                         drop_last=drop_last, pad=pad):
                yb = y_t[ib]
                target = F.one_hot(yb, k).float()
                if mix is not None:
                    xb, target = mix(xb, yb)
                if config.adversarial != "none":
                    model.eval()  # attack the current weights without moving batch-norm statistics
                    xb = perturb(model, xb, yb, kind=config.adversarial, eps=config.eps, steps=config.attack_steps,
                                 bf16=bf16)
                    _train_mode(model, frozen=config.freeze_backbone)
                xb = xb.contiguous(memory_format=torch.channels_last)
                with _autocast(bf16):
                    logits = model(xb)
                loss = soft_loss(logits, target, smoothing=config.label_smoothing, gamma=gamma,
                                 class_weights=class_w, sample_weight=w_t[ib] if w_t is not None else None)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                if ema is not None:
                    ema.update_parameters(net)
                loss_sum += loss.item() * len(yb)
                correct += int((logits.argmax(1) == yb).sum())
                seen += len(yb)
                pbar.update(1)
                pbar.set_postfix(loss=f"{loss_sum / seen:.3f}", acc=f"{correct / seen:.3f}")
        val_loss, val_acc = _validate(kept_model, val, bf16=bf16, tta=spec.tta)
        row = {"epoch": epoch, "train_loss": loss_sum / max(seen, 1), "train_acc": correct / max(seen, 1),
               "val_loss": val_loss, "val_acc": val_acc, "lr": opt.param_groups[0]["lr"],
               "seconds": time.perf_counter() - t0}
        history.append(row)
        improved = (not has_val) or val_acc > best["val_acc"] or (
            val_acc == best["val_acc"] and val_loss < best["val_loss"])
        if improved:
            best = {"epoch": epoch, "val_acc": val_acc, "val_loss": val_loss}
            bad_epochs = 0
            save_model(out, kept, spec)
        else:
            bad_epochs += 1
        stopped = has_val and bad_epochs >= config.patience and epoch < config.epochs
        log.info("epoch %d/%d  loss %.4f  acc %.4f  val_loss %.4f  val_acc %.4f  (%.0f s)%s", epoch, config.epochs,
                 row["train_loss"], row["train_acc"], val_loss, val_acc, row["seconds"],
                 "  best" if improved else "")
        _save_last(last_path, {
            "epoch": epoch, "net": net.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(),
            "history": history, "best": best, "bad_epochs": bad_epochs, "config": _config_key(config),
            "spec": spec.to_dict(), "rng": torch.get_rng_state(), "done": stopped or epoch == config.epochs,
            "stopped": stopped, **({"ema": ema.state_dict()} if ema is not None else {}),
        })
        if on_epoch is not None:
            on_epoch(epoch, row)
        if stopped:
            log.info("early stop: no better validation accuracy for %d epochs; best epoch %d",
                     config.patience, best["epoch"])
            break
    return _result(out, spec, history, best, stopped, started)


def _result(out: Path, spec: ModelSpec, history: list[dict[str, float]], best: dict[str, float], stopped: bool,
            started: float) -> TrainResult:
    val_acc = best["val_acc"]
    return TrainResult(out, spec, len(history), int(best["epoch"]),
                       None if val_acc is None or val_acc < 0 or math.isnan(val_acc) else float(val_acc),
                       stopped, history, time.perf_counter() - started)
