"""Semi-supervised GAN labeler (Salimans et al. 2016, "Improved Techniques for Training GANs").

The discriminator is a K-class classifier whose K logits ``l`` also say "real vs generated": with
``Z = sum_k exp(l_k)``, ``D(x) = Z / (Z + 1)`` — the K+1-th class has its logit fixed at 0, so no
parameters are wasted on it. Three losses train it together: cross-entropy on the seed labels, "real" on the
unlabeled pool and "fake" on generated images. The generator uses *feature matching* (match the mean of the
discriminator's last hidden layer on real data), which is what makes the discriminator a good classifier
rather than the generator a good artist. The paper's MNIST anchor is 99.07% with 100 labels and 60k
unlabeled images after 300 epochs; here the same MLP architecture is trained for a CPU budget of a few
thousand steps on the pool's 32-px thumbnails (grey when all thumbnails are grey).

>>> lab = SGANLabeler(steps=300).fit(Pool(emb, thumbs, 0), labeled_idx, y, n_classes=10)  # doctest: +SKIP
>>> lab.probs_.shape  # doctest: +SKIP
(5000, 10)
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from pixlabel.errors import PixlabelError
from pixlabel.labelers.protocol import Pool, check_fit_args
from pixlabel.progress import bar

log = logging.getLogger(__name__)


def thumbs_to_vectors(thumbs: np.ndarray) -> np.ndarray:
    """(N, t, t, 3) uint8 -> (N, t*t*C) float32 in [0, 1]; one channel when every thumbnail is grey."""
    grey = bool((thumbs[..., 0] == thumbs[..., 1]).all() and (thumbs[..., 1] == thumbs[..., 2]).all())
    x = thumbs[..., :1] if grey else thumbs
    return x.reshape(len(x), -1).astype(np.float32) / 255.0


PAPER_HIDDEN = (1000, 500, 250, 250, 250)  # the paper's MNIST discriminator


def _build(in_dim: int, n_classes: int, *, z_dim: int, hidden: tuple[int, ...]) -> tuple[Any, Any]:
    """The paper's MNIST pair: D = MLP with Gaussian noise and weight norm, G = MLP with batch norm."""
    import torch
    from torch import nn
    from torch.nn.utils.parametrizations import weight_norm

    class Noise(nn.Module):
        def __init__(self, std: float) -> None:
            super().__init__()
            self.std = std

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x + self.std * torch.randn_like(x) if self.training else x

    class Discriminator(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            dims = [in_dim, *hidden]
            layers: list[nn.Module] = [Noise(0.3)]
            for i, o in zip(dims[:-1], dims[1:], strict=True):
                layers += [weight_norm(nn.Linear(i, o)), nn.ReLU(), Noise(0.5)]
            self.body = nn.Sequential(*layers)
            self.head = weight_norm(nn.Linear(hidden[-1], n_classes))

        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            h = self.body(x)  # (B, hidden[-1]): the features the generator matches
            return self.head(h), h

    gen = nn.Sequential(
        nn.Linear(z_dim, 500, bias=False), nn.BatchNorm1d(500), nn.Softplus(),
        nn.Linear(500, 500, bias=False), nn.BatchNorm1d(500), nn.Softplus(),
        weight_norm(nn.Linear(500, in_dim)), nn.Sigmoid(),
    )
    return Discriminator(), gen


class SGANLabeler:
    """Semi-supervised GAN on the pool's thumbnails; ``probs_`` is the discriminator's K-class softmax.

    ``steps`` discriminator+generator updates of ``batch_size`` labeled, unlabeled and generated images each;
    ``history_`` keeps (step, supervised loss, unsupervised loss, feature-matching loss) every 100 steps.
    """

    name = "sgan"

    def __init__(self, *, steps: int = 2000, batch_size: int = 100, lr: float = 3e-3, z_dim: int = 100,
                 unlabeled_weight: float = 1.0, hidden: tuple[int, ...] = PAPER_HIDDEN) -> None:
        self.steps = steps
        self.batch_size = batch_size
        self.lr = lr
        self.z_dim = z_dim
        self.unlabeled_weight = unlabeled_weight
        self.hidden = tuple(hidden)

    def fit(self, pool: Pool, labeled_idx: np.ndarray, y: np.ndarray, *, n_classes: int) -> SGANLabeler:
        import torch
        import torch.nn.functional as F

        check_fit_args(pool, labeled_idx, y, n_classes)
        if pool.thumbs is None:
            raise PixlabelError("the sgan labeler trains on image thumbnails, but this pool has none")
        torch.manual_seed(pool.seed)
        gen = torch.Generator().manual_seed(pool.seed)
        x_all = torch.from_numpy(thumbs_to_vectors(pool.thumbs))  # (N, P)
        x_lab = x_all[torch.from_numpy(np.asarray(labeled_idx, np.int64))]
        y_lab = torch.from_numpy(np.asarray(y, np.int64))
        disc, netg = _build(x_all.shape[1], n_classes, z_dim=self.z_dim, hidden=self.hidden)
        opt_d = torch.optim.Adam(disc.parameters(), lr=self.lr, betas=(0.5, 0.999))
        opt_g = torch.optim.Adam(netg.parameters(), lr=self.lr, betas=(0.5, 0.999))
        # linear decay over the last third, as the paper anneals its learning rate
        decay = lambda s: min(1.0, 3.0 * (1.0 - s / self.steps))  # noqa: E731
        sched = [torch.optim.lr_scheduler.LambdaLR(o, decay) for o in (opt_d, opt_g)]
        b = self.batch_size
        self.history_: list[tuple[int, float, float, float]] = []
        progress = bar(desc="sgan", total=self.steps, unit="step")
        disc.train()
        netg.train()
        for step in range(self.steps):
            li = torch.randint(0, len(x_lab), (b,), generator=gen)
            xl, yl = x_lab[li], y_lab[li]
            xu = x_all[torch.randint(0, len(x_all), (b,), generator=gen)]
            z = torch.rand(b, self.z_dim, generator=gen)
            fake = netg(z)
            logit_l, _ = disc(xl)
            logit_u, _ = disc(xu)
            logit_f, _ = disc(fake.detach())
            loss_sup = F.cross_entropy(logit_l, yl)
            lse_u = torch.logsumexp(logit_u, dim=1)
            lse_f = torch.logsumexp(logit_f, dim=1)
            # -log D(real) - log(1 - D(fake)) with D = Z/(Z+1): softplus forms are exact and stable
            loss_unsup = (-lse_u + F.softplus(lse_u)).mean() + F.softplus(lse_f).mean()
            opt_d.zero_grad(set_to_none=True)
            (loss_sup + self.unlabeled_weight * loss_unsup).backward()
            opt_d.step()

            # feature matching: the generator matches the mean hidden features of a fresh real batch
            xu2 = x_all[torch.randint(0, len(x_all), (b,), generator=gen)]
            z = torch.rand(b, self.z_dim, generator=gen)
            _, h_real = disc(xu2)
            _, h_fake = disc(netg(z))
            loss_fm = (h_real.detach().mean(0) - h_fake.mean(0)).pow(2).mean()
            opt_g.zero_grad(set_to_none=True)
            loss_fm.backward()
            opt_g.step()
            for s in sched:
                s.step()
            if step % 100 == 0 or step == self.steps - 1:
                self.history_.append((step, loss_sup.item(), loss_unsup.item(), loss_fm.item()))
            progress.update(1)
        progress.close()
        disc.eval()
        with torch.inference_mode():
            logits = torch.cat([disc(x_all[i:i + 2048])[0] for i in range(0, len(x_all), 2048)])
        self.probs_ = torch.softmax(logits.double(), dim=1).numpy()
        return self
