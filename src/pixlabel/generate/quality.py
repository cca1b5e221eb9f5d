"""How good are generated images? Four numbers, each computed on backbone features (default: the offline
EfficientNet-Lite0), so they work for any image domain without downloads:

- **FID** (Heusel et al. 2017): Fréchet distance between Gaussians fitted to real and synthetic features.
  Computed with Lite0 features, not Inception's, so values are only comparable with other pixlabel runs.
- **class fidelity**: a logistic regression trained on real images' backbone features plus 16-px pixels
  (80% of the real images; its accuracy on the other 20% is reported as the ceiling) recognises the
  intended class of each synthetic image.
  Its probability of the intended class is also each synthetic image's ``confidence`` in labels.csv.
- **per-class diversity**: mean pairwise feature distance among a class's synthetic images divided by the
  same among its real images; well under 1 means mode collapse.
- **CAS** (classification accuracy score, Ravuri & Vinyals 2019): a logistic regression trained only on
  synthetic features, tested on the 20% of real images held out above.

>>> q = measure_quality(real, real_y, fake, fake_y, classes=("0", "1"))  # doctest: +SKIP
>>> q.fidelity, q.cas  # doctest: +SKIP
(0.97, 0.91)
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

QUALITY_IMAGE_SIZE = 64  # backbone input: 28-64 px images upsampled; Lite0 is fast at this size
MAX_PAIRS_PER_CLASS = 300  # images per class for the pairwise-distance diversity estimate


@dataclass
class Quality:
    fid: float
    fidelity: float  # fraction of synthetic images whose predicted class is the intended one
    fidelity_ceiling: float  # the same classifier's accuracy on held-out real images
    cas: float  # train on synthetic, test on held-out real
    real_test_accuracy: float  # = fidelity_ceiling; kept for symmetry with CAS in reports
    per_class: dict[str, dict[str, float]] = field(default_factory=dict)  # fidelity, diversity, n_real, n_fake
    n_real: int = 0
    n_fake: int = 0

    @property
    def min_diversity(self) -> float:
        vals = [v["diversity"] for v in self.per_class.values() if not np.isnan(v["diversity"])]
        return float(min(vals)) if vals else float("nan")

    def to_dict(self) -> dict[str, Any]:
        return {"fid": self.fid, "fidelity": self.fidelity, "fidelity_ceiling": self.fidelity_ceiling,
                "cas": self.cas, "min_diversity": self.min_diversity, "n_real": self.n_real,
                "n_fake": self.n_fake, "per_class": self.per_class}


class FeatureExtractor:
    """uint8 images (N, C, S, S), C = 1 or 3 -> backbone features (N, D) float64."""

    def __init__(self, backbone: str | None = None, *, image_size: int = QUALITY_IMAGE_SIZE) -> None:
        from pixlabel.backbones import create_backbone
        from pixlabel.backbones.embed import Embedder

        bb = create_backbone(backbone, image_size=image_size) if backbone else create_backbone(image_size=image_size)
        self.embedder = Embedder(bb, precision="fp32")  # fp32: FID subtracts large similar numbers
        self.size = image_size

    def __call__(self, images: np.ndarray, *, batch_size: int = 256) -> np.ndarray:
        import torch
        import torch.nn.functional as F

        out = []
        for i in range(0, len(images), batch_size):
            x = torch.from_numpy(images[i:i + batch_size]).float()
            if x.shape[1] == 1:
                x = x.expand(-1, 3, -1, -1)
            x = F.interpolate(x, size=(self.size, self.size), mode="bilinear", align_corners=False,
                              antialias=x.shape[-1] > self.size)
            batch = x.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous().numpy()
            out.append(self.embedder(batch))
        if not out:
            return np.zeros((0, 0))
        return np.concatenate(out).astype(np.float64)


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """FID between feature sets ``a`` (N, D) and ``b`` (M, D): |mu_a - mu_b|^2 + Tr(Sa + Sb - 2 (Sa Sb)^1/2)."""
    from scipy import linalg

    mu_a, mu_b = a.mean(0), b.mean(0)
    sa, sb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    with warnings.catch_warnings():
        # fewer samples than feature dimensions make the covariances singular; the square root is still fine
        warnings.simplefilter("ignore", linalg.LinAlgWarning)
        covmean = linalg.sqrtm(sa @ sb)
        if not np.isfinite(covmean).all():  # nudge the diagonals, as pytorch-fid does
            eps = 1e-6 * np.eye(len(sa))
            covmean = linalg.sqrtm((sa + eps) @ (sb + eps))
    covmean = np.real(covmean)
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(sa) + np.trace(sb) - 2.0 * np.trace(covmean))


def mean_pairwise_distance(feats: np.ndarray, *, rng: np.random.Generator) -> float:
    if len(feats) < 2:
        return float("nan")
    if len(feats) > MAX_PAIRS_PER_CLASS:
        feats = feats[rng.choice(len(feats), MAX_PAIRS_PER_CLASS, replace=False)]
    sq = (feats**2).sum(1)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2.0 * feats @ feats.T, 0.0)
    n = len(feats)
    return float(np.sqrt(d2)[np.triu_indices(n, 1)].mean())


def _probe() -> Any:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=500))


def split_real(labels: np.ndarray, *, seed: int, test_fraction: float = 0.2) -> tuple[np.ndarray, np.ndarray]:
    """Stratified train/test positions; every class keeps at least one training image."""
    rng = np.random.default_rng(seed)
    train, test = [], []
    for k in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == k))
        n_test = min(int(round(len(idx) * test_fraction)), len(idx) - 1)
        test.append(idx[:n_test])
        train.append(idx[n_test:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


@dataclass
class FidelityJudge:
    """The classifier trained on real features; ``prob_of(feats, y)`` is P(intended class) per image."""

    model: Any
    classes_seen: np.ndarray
    ceiling: float

    def prob_of(self, feats: np.ndarray, y: np.ndarray) -> np.ndarray:
        probs = self.model.predict_proba(feats)
        col = {int(c): i for i, c in enumerate(self.classes_seen)}
        out = np.zeros(len(y))
        for i, k in enumerate(np.asarray(y).tolist()):
            if k in col:
                out[i] = probs[i, col[k]]
        return out


def fit_judge(real_feats: np.ndarray, real_y: np.ndarray, train: np.ndarray, test: np.ndarray) -> FidelityJudge:
    model = _probe().fit(real_feats[train], real_y[train])
    ceiling = float((model.predict(real_feats[test]) == real_y[test]).mean()) if len(test) else float("nan")
    return FidelityJudge(model, model.classes_, ceiling)


def judge_features(feats: np.ndarray, images: np.ndarray) -> np.ndarray:
    """What the fidelity and CAS classifiers see: backbone features plus 16-px pixels.

    ImageNet features of tiny grey images are weak class evidence (a linear probe on Lite0 features reaches
    92.5% on MNIST-5k); the raw pixels add the shape information they miss.
    """
    import torch
    import torch.nn.functional as F

    small = F.adaptive_avg_pool2d(torch.from_numpy(images).float(), 16).flatten(1).numpy() / 255.0
    return np.hstack([feats, small.astype(np.float64)])


def measure_quality(real_feats: np.ndarray, real_y: np.ndarray, fake_feats: np.ndarray, fake_y: np.ndarray, *,
                    classes: tuple[str, ...], seed: int = 0, judge: FidelityJudge | None = None,
                    split: tuple[np.ndarray, np.ndarray] | None = None,
                    judge_real: np.ndarray | None = None, judge_fake: np.ndarray | None = None) -> Quality:
    """All four metrics (see the module docstring). ``fake_y`` are the intended classes. FID and diversity use
    ``*_feats``; fidelity and CAS use ``judge_real``/``judge_fake`` when given (see :func:`judge_features`)."""
    jr = real_feats if judge_real is None else judge_real
    jf = fake_feats if judge_fake is None else judge_fake
    train, test = split if split is not None else split_real(real_y, seed=seed)
    judge = judge or fit_judge(jr, real_y, train, test)
    p_intended = judge.prob_of(jf, fake_y)
    pred = judge.classes_seen[judge.model.predict_proba(jf).argmax(1)]
    hit = pred == fake_y
    cas = float("nan")
    if len(np.unique(fake_y)) >= 2 and len(test):
        cas_model = _probe().fit(jf, fake_y)
        cas = float((cas_model.predict(jr[test]) == real_y[test]).mean())
    rng = np.random.default_rng(seed)
    per_class: dict[str, dict[str, float]] = {}
    for k, name in enumerate(classes):
        fr, ff = real_feats[real_y == k], fake_feats[fake_y == k]
        if not len(ff):
            continue
        d_real = mean_pairwise_distance(fr, rng=rng)
        d_fake = mean_pairwise_distance(ff, rng=rng)
        per_class[name] = {"n_real": int(len(fr)), "n_fake": int(len(ff)),
                           "fidelity": float(hit[fake_y == k].mean()),
                           "mean_confidence": float(p_intended[fake_y == k].mean()),
                           "diversity": float(d_fake / d_real) if d_real > 0 else float("nan")}
    fid = frechet_distance(real_feats, fake_feats) if len(fake_feats) > 1 else float("nan")
    return Quality(fid=fid, fidelity=float(hit.mean()) if len(hit) else float("nan"),
                   fidelity_ceiling=judge.ceiling, cas=cas, real_test_accuracy=judge.ceiling,
                   per_class=per_class, n_real=len(real_feats), n_fake=len(fake_feats))
