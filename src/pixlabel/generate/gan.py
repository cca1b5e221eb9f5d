"""A class-conditional GAN small enough for 2 CPU cores: DCGAN generator with class-conditional batch
norm, a spectrally normalised projection discriminator (Miyato & Koyama 2018) with an auxiliary classifier
head (ACGAN, Odena et al. 2017), hinge loss, DiffAugment (translation + cutout) on everything the
discriminator sees, Adam(0, 0.9) with TTUR (discriminator learns 2x faster), and an exponential moving
average of the generator's weights, which is what samples are drawn from (it removes most of the
step-to-step jitter of GAN training for free).

Training state lives in one checkpoint file so a run can stop and resume; the checkpoint records the class
list, image size and channels it was made for and refuses any other.

>>> cfg = GanConfig(classes=("0", "1"), image_size=32, channels=1)
>>> state = new_state(cfg, seed=0)  # doctest: +SKIP
>>> train(state, images, labels, steps=3000, checkpoint=Path("out/checkpoint.pt"))  # doctest: +SKIP
>>> sample(state, np.array([0, 1]), seed=1).shape  # doctest: +SKIP
(2, 1, 32, 32)
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import spectral_norm

from pixlabel.errors import InputError
from pixlabel.generate.diffaugment import POLICIES, diff_augment
from pixlabel.models.checkpoint import load_weights_only
from pixlabel.progress import bar

log = logging.getLogger(__name__)
CHECKPOINT_VERSION = 2  # 2: DiffAugment and the auxiliary classifier head


@dataclass(frozen=True)
class GanConfig:
    """What a checkpoint is made for (``classes``, ``image_size``, ``channels``) and how big its nets are."""

    classes: tuple[str, ...]
    image_size: int = 32  # square, a power of two from 16 to 128
    channels: int = 1  # 1 = grey, 3 = RGB
    z_dim: int = 64
    g_width: int = 32  # generator channels at the last block; x2 per block towards the 4x4 input
    d_width: int = 32
    batch_size: int = 64
    lr_g: float = 5e-4
    lr_d: float = 1e-3  # TTUR (Heusel et al. 2017); 1e-4/4e-4 left G stuck for 200+ steps on MNIST
    ema: float = 0.999
    augment: tuple[str, ...] = ("translation", "cutout")  # DiffAugment on real and fake before D; () = off
    # > 0: an auxiliary classifier head on D (ACGAN) that G must also satisfy; 0.5 doubled class fidelity at
    # 800 steps on MNIST-5k (19% -> 40%, docs/results.md)
    ac_weight: float = 0.5

    def __post_init__(self) -> None:
        s = self.image_size
        if s < 16 or s > 128 or s & (s - 1):
            raise InputError(f"--image-size must be a power of two from 16 to 128 (16, 32, 64, 128), got {s}")
        if self.channels not in (1, 3):
            raise ValueError(f"channels must be 1 or 3, got {self.channels}")
        unknown = [a for a in self.augment if a not in POLICIES]
        if unknown:
            raise ValueError(f"unknown DiffAugment policy {unknown}; known: {', '.join(POLICIES)}")

    @property
    def n_blocks(self) -> int:
        return int(math.log2(self.image_size // 4))


class CondBatchNorm(nn.Module):
    """Batch norm whose scale and shift come from the class (de Vries et al. 2017; SNGAN's generator)."""

    def __init__(self, ch: int, n_classes: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(ch, affine=False)
        self.gain = nn.Embedding(n_classes, ch)
        self.bias = nn.Embedding(n_classes, ch)
        nn.init.ones_(self.gain.weight)
        nn.init.zeros_(self.bias.weight)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.bn(x) * self.gain(y)[:, :, None, None] + self.bias(y)[:, :, None, None]


class Generator(nn.Module):
    """DCGAN generator: z -> 4x4 -> (4x4 transposed conv, stride 2, class-conditional BN, ReLU)* -> tanh."""

    def __init__(self, cfg: GanConfig) -> None:
        super().__init__()
        k, w, n = len(cfg.classes), cfg.g_width, cfg.n_blocks
        chans = [w * 2 ** (n - 1 - i) for i in range(n)]  # 32 px, w=32: 128 (4x4), 64 (8x8), 32 (16x16)
        self.fc = nn.Linear(cfg.z_dim, 16 * chans[0])
        self.bn0 = CondBatchNorm(chans[0], k)
        self.ups = nn.ModuleList(nn.ConvTranspose2d(a, b, 4, stride=2, padding=1, bias=False)
                                 for a, b in zip(chans[:-1], chans[1:], strict=True))
        self.bns = nn.ModuleList(CondBatchNorm(b, k) for b in chans[1:])
        self.out = nn.ConvTranspose2d(chans[-1], cfg.channels, 4, stride=2, padding=1)

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:  # (B, z), (B,) -> (B, C, S, S) in [-1, 1]
        h = F.relu(self.bn0(self.fc(z).view(len(z), -1, 4, 4), y))
        for up, bn in zip(self.ups, self.bns, strict=True):
            h = F.relu(bn(up(h), y))
        return torch.tanh(self.out(h))


class Discriminator(nn.Module):
    """SN conv stack (4x4 stride 2 per block, a 3x3 at the end) -> sum-pooled features h;
    score = w.h + <embed(y), h> (the projection discriminator)."""

    def __init__(self, cfg: GanConfig) -> None:
        super().__init__()
        w, n = cfg.d_width, cfg.n_blocks
        chans = [cfg.channels] + [w * 2**i for i in range(n)]  # 32 px, w=32: C, 32, 64, 128
        layers: list[nn.Module] = []
        for a, b in zip(chans[:-1], chans[1:], strict=True):
            layers += [spectral_norm(nn.Conv2d(a, b, 4, stride=2, padding=1)), nn.LeakyReLU(0.1)]
        layers += [spectral_norm(nn.Conv2d(chans[-1], chans[-1], 3, padding=1)), nn.LeakyReLU(0.1)]
        self.body = nn.Sequential(*layers)
        self.linear = spectral_norm(nn.Linear(chans[-1], 1))
        self.embed = spectral_norm(nn.Embedding(len(cfg.classes), chans[-1]))
        self.classify = nn.Linear(chans[-1], len(cfg.classes)) if cfg.ac_weight > 0 else None

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:  # -> (B,) realness scores
        return self.score_and_logits(x, y)[0]

    def score_and_logits(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Realness (B,) and, with an auxiliary classifier head, class logits (B, K) from the same features."""
        h = self.body(x).sum(dim=(2, 3))  # (B, ch)
        score = self.linear(h).squeeze(1) + (self.embed(y) * h).sum(1)
        return score, (self.classify(h) if self.classify is not None else None)


@dataclass
class GanState:
    """Everything training needs to continue exactly where it stopped."""

    cfg: GanConfig
    gen: Generator
    disc: Discriminator
    gen_ema: Generator
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    step: int = 0
    seed: int = 0
    history: list[dict[str, float]] = dataclasses.field(default_factory=list)


def new_state(cfg: GanConfig, *, seed: int) -> GanState:
    torch.manual_seed(seed)
    gen, disc = Generator(cfg), Discriminator(cfg)
    gen_ema = copy.deepcopy(gen).eval()
    for p in gen_ema.parameters():
        p.requires_grad_(False)
    opt_g = torch.optim.Adam(gen.parameters(), lr=cfg.lr_g, betas=(0.0, 0.9))
    opt_d = torch.optim.Adam(disc.parameters(), lr=cfg.lr_d, betas=(0.0, 0.9))
    return GanState(cfg, gen, disc, gen_ema, opt_g, opt_d, 0, seed)


def _ema_update(state: GanState) -> None:
    # early on the EMA would mostly average the random init: ramp the decay up over the first steps
    decay = min(state.cfg.ema, (1 + state.step) / (10 + state.step))
    with torch.no_grad():
        for pe, p in zip(state.gen_ema.parameters(), state.gen.parameters(), strict=True):
            pe.lerp_(p, 1.0 - decay)
        for be, b in zip(state.gen_ema.buffers(), state.gen.buffers(), strict=True):
            be.copy_(b)  # batch-norm running statistics follow the live generator


def train(state: GanState, images: np.ndarray, labels: np.ndarray, *, steps: int,
          checkpoint: Path | None = None, every: int = 500,
          on_step: Callable[[int], None] | None = None) -> GanState:
    """Train until ``state.step == steps``. ``images`` (N, C, S, S) uint8, ``labels`` (N,) class indices.

    Batches sample every class equally often, so a rare class is learned as well as a frequent one (the point
    of generating for minorities). Saves ``checkpoint`` every ``every`` steps and at the end.
    With ``cfg.ac_weight > 0`` the discriminator also learns to classify real images (cross-entropy) and the
    generator is penalised when its image is classified as another class: it makes class identity explicit,
    where the projection term alone left similar digits (2/7, 3/5) ambiguous.
    """
    cfg = state.cfg
    if images.shape[1:] != (cfg.channels, cfg.image_size, cfg.image_size):
        raise ValueError(f"images {images.shape[1:]} do not match the GAN's "
                         f"{(cfg.channels, cfg.image_size, cfg.image_size)}")
    x = torch.from_numpy(images).float().div_(127.5).sub_(1.0)  # (N, C, S, S) in [-1, 1]
    y = torch.from_numpy(np.asarray(labels, np.int64))
    by_class = [torch.from_numpy(np.flatnonzero(labels == k)) for k in range(len(cfg.classes))]
    present = [k for k, idx in enumerate(by_class) if len(idx)]
    counts = torch.tensor([len(idx) for idx in by_class], dtype=torch.float32)
    gen = torch.Generator()
    b = cfg.batch_size
    progress = bar(desc="train GAN", total=steps, unit="step")
    progress.update(state.step)
    state.gen.train()
    state.disc.train()
    while state.step < steps:
        # one random stream per step: a resumed run continues exactly as an uninterrupted one would
        gen.manual_seed(state.seed * 1_000_003 + state.step)
        ks = torch.tensor(present)[torch.randint(0, len(present), (b,), generator=gen)]
        # a uniform position inside each drawn class
        pos = (torch.rand(b, generator=gen) * counts[ks]).long()
        idx = torch.stack([by_class[k][p] for k, p in zip(ks.tolist(), pos.tolist(), strict=True)])
        xr, yr = x[idx], y[idx]
        z = torch.randn(b, cfg.z_dim, generator=gen)
        yf = yr  # the same class mix for real and fake keeps the projection term balanced
        fake = state.gen(z, yf)
        score_r, logits_r = state.disc.score_and_logits(diff_augment(xr, cfg.augment, generator=gen), yr)
        score_f = state.disc(diff_augment(fake.detach(), cfg.augment, generator=gen), yf)
        loss_d = F.relu(1.0 - score_r).mean() + F.relu(1.0 + score_f).mean()
        if logits_r is not None:
            loss_d = loss_d + cfg.ac_weight * F.cross_entropy(logits_r, yr)
        state.opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        state.opt_d.step()

        z = torch.randn(b, cfg.z_dim, generator=gen)
        score_g, logits_g = state.disc.score_and_logits(
            diff_augment(state.gen(z, yf), cfg.augment, generator=gen), yf)
        loss_g = -score_g.mean()
        if logits_g is not None:
            loss_g = loss_g + cfg.ac_weight * F.cross_entropy(logits_g, yf)
        state.opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        state.opt_g.step()
        state.step += 1
        _ema_update(state)
        if state.step % 100 == 0:
            state.history.append({"step": state.step, "loss_d": loss_d.item(), "loss_g": loss_g.item()})
        if checkpoint is not None and (state.step % every == 0 or state.step == steps):
            save_checkpoint(state, checkpoint)
        if on_step is not None:
            on_step(state.step)
        progress.update(1)
    progress.close()
    if checkpoint is not None and not checkpoint.is_file():
        save_checkpoint(state, checkpoint)  # --steps 0 still leaves a checkpoint that later runs resume
    return state


@torch.inference_mode()
def sample(state: GanState, classes: np.ndarray, *, seed: int, batch_size: int = 256,
           truncation: float | None = None) -> np.ndarray:
    """Images of the given class indices (M,) from the EMA generator as uint8 (M, C, S, S).

    ``truncation`` t: redraw every latent component with |z| > t (BigGAN's truncation trick), trading
    diversity for class fidelity; None samples the full prior.
    """
    if truncation is not None and truncation <= 0:
        raise ValueError(f"truncation must be > 0, got {truncation}")
    gen = torch.Generator().manual_seed(seed)
    net = state.gen_ema.eval()
    out = []
    y_all = torch.from_numpy(np.asarray(classes, np.int64))
    for i in range(0, len(y_all), batch_size):
        y = y_all[i:i + batch_size]
        z = torch.randn(len(y), state.cfg.z_dim, generator=gen)
        while truncation is not None and (far := z.abs() > truncation).any():
            z[far] = torch.randn(int(far.sum()), generator=gen)
        out.append(((net(z, y) + 1.0) * 127.5).round().clamp_(0, 255).to(torch.uint8))
    if not out:
        s = state.cfg.image_size
        return np.zeros((0, state.cfg.channels, s, s), np.uint8)
    return torch.cat(out).numpy()


def save_checkpoint(state: GanState, path: Path) -> None:
    """Atomic: write a temp file beside ``path`` then rename, so a kill never leaves half a checkpoint."""
    blob: dict[str, Any] = {
        "version": CHECKPOINT_VERSION, "config": dataclasses.asdict(state.cfg), "step": state.step,
        "seed": state.seed, "history": state.history,
        "gen": state.gen.state_dict(), "disc": state.disc.state_dict(), "gen_ema": state.gen_ema.state_dict(),
        "opt_g": state.opt_g.state_dict(), "opt_d": state.opt_d.state_dict(),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(blob, tmp)
    tmp.replace(path)


def load_checkpoint(path: Path, cfg: GanConfig) -> GanState:
    """Resume from ``path``; refuse a checkpoint made for another class list, image size or channel count."""
    blob = load_weights_only(path, what="pixlabel GAN checkpoint")  # data only: never runs code a file carries
    if isinstance(blob, dict) and isinstance(blob.get("version"), int) and blob["version"] < CHECKPOINT_VERSION:
        raise InputError(f"{path}: checkpoint from an older pixlabel (version {blob['version']}, this one reads "
                         f"{CHECKPOINT_VERSION}); use another --out folder or delete the checkpoint")
    if not isinstance(blob, dict) or blob.get("version") != CHECKPOINT_VERSION or "config" not in blob:
        raise InputError(f"{path}: not a pixlabel GAN checkpoint (version {CHECKPOINT_VERSION})")
    saved = dict(blob["config"])
    saved["classes"] = tuple(saved["classes"])
    saved["augment"] = tuple(saved.get("augment", ()))
    if saved["classes"] != cfg.classes:
        raise InputError(
            f"{path}: this checkpoint was trained for classes [{', '.join(saved['classes'])}] but the labels now "
            f"have classes [{', '.join(cfg.classes)}]; use another --out folder or delete the checkpoint")
    for key in ("image_size", "channels"):
        if saved[key] != getattr(cfg, key):
            raise InputError(f"{path}: checkpoint made for {key} {saved[key]}, this run uses {getattr(cfg, key)}; "
                             "use another --out folder or delete the checkpoint")
    known = {f.name for f in dataclasses.fields(GanConfig)}
    state = new_state(GanConfig(**{k: v for k, v in saved.items() if k in known}), seed=int(blob["seed"]))
    state.gen.load_state_dict(blob["gen"])
    state.disc.load_state_dict(blob["disc"])
    state.gen_ema.load_state_dict(blob["gen_ema"])
    state.opt_g.load_state_dict(blob["opt_g"])
    state.opt_d.load_state_dict(blob["opt_d"])
    state.step = int(blob["step"])
    state.history = list(blob.get("history", []))
    return state
