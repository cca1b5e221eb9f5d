"""``TrainConfig``: every ``pixlabel train`` option in one frozen dataclass, saved as ``MODEL_DIR/config.yaml``.

Example::

    cfg = TrainConfig(images="data/images", labels="ws/labels.csv", out="runs/model", epochs=10)
    result = train_model(cfg)
"""

from __future__ import annotations

from dataclasses import dataclass

from pixlabel.errors import InputError

OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("onecycle", "cosine", "step", "constant")
AUGMENTS = ("none", "basic", "light", "strong")
IMBALANCE = ("none", "weights", "focal", "oversample")
ADVERSARIAL = ("none", "fgsm", "pgd")
PRECISIONS = ("auto", "fp32", "bf16")
FORMATS = ("auto", "csv", "imagefolder", "coco", "yolo", "voc")
TTA_MODES = ("none", "flip")  # = models.spec.TTA_MODES, not imported: `pixlabel --help` must not load numpy/PIL
# Keys that may change between an interrupted run and its resumption without changing the result.
RESUME_FREE_KEYS = frozenset({"out", "workers", "restart"})


@dataclass(frozen=True)
class TrainConfig:
    images: str
    out: str
    labels: str | None = None          # labels.csv / COCO json; None: IMAGES is an ImageFolder (or yolo/voc)
    format: str = "auto"               # how to read labels; auto: .csv -> csv, .json -> coco, none -> imagefolder
    arch: str | None = None            # smallcnn | timm:NAME; None: smallcnn for <= 64 px, else tf_efficientnet_lite0
    pretrained: bool = True            # timm archs start from ImageNet weights (offline for lite0)
    image_size: int | None = None      # side in px; None: the images' own size (<= 64 px) or 224
    width: int | None = None           # smallcnn channel width (default 32)
    depth: int | None = None           # smallcnn residual blocks per stage (default 1)
    epochs: int = 15
    batch_size: int = 256
    optimizer: str = "adamw"
    lr: float | None = None            # None: 0.05 sgd, 1e-3 adam, 2e-3 adamw (a quarter for pretrained timm)
    weight_decay: float | None = None  # None: 5e-4 sgd/adam, 0.05 adamw
    schedule: str = "onecycle"
    augment: str = "light"
    erase: float = 0.0                 # per-image probability of random erasing on each batch; 0 = off
    mixup: float = 0.0                 # Beta(alpha) of MixUp; 0 = off
    cutmix: float = 0.0                # Beta(alpha) of CutMix; 0 = off
    dropout: float | None = None       # before the classifier; None = the arch's default
    label_smoothing: float = 0.1
    ema: float = 0.0                   # per-step decay of a weight average that is validated and saved; 0 = off
    tta: str = "none"                  # flip: the saved model averages image + mirror (validation does too)
    imbalance: str = "none"
    focal_gamma: float = 2.0
    adversarial: str = "none"
    eps: float = 8 / 255               # L-inf radius in [0, 1] pixel space (before mean/std normalisation)
    attack_steps: int = 5              # PGD steps during adversarial training
    freeze_backbone: bool = False      # timm archs: train only the classifier head
    min_confidence: float | None = None
    only_human: bool = False
    accepted_only: bool = False
    confidence_weighted: bool = False  # weight each example's loss by its label confidence
    synthetic: str | None = None       # DIR with labels.csv (+ images/): extra training rows, never validation
    val_fraction: float = 0.1
    patience: int = 5                  # early stopping: epochs without a better validation accuracy
    seed: int = 0
    precision: str = "auto"            # bf16 autocast where the CPU does bf16 natively
    workers: int = 0                   # DataLoader processes for augmentation
    restart: bool = False              # ignore MODEL_DIR/last.pt instead of resuming from it

    def __post_init__(self) -> None:
        choices = {"optimizer": OPTIMIZERS, "schedule": SCHEDULES, "augment": AUGMENTS, "imbalance": IMBALANCE,
                   "adversarial": ADVERSARIAL, "precision": PRECISIONS, "format": FORMATS,
                   "tta": TTA_MODES}
        for key, allowed in choices.items():
            if getattr(self, key) not in allowed:
                raise InputError(f"--{key.replace('_', '-')}: expected one of {', '.join(allowed)}, "
                                 f"got {getattr(self, key)!r}")
        positive = {"epochs": self.epochs, "batch_size": self.batch_size, "attack_steps": self.attack_steps}
        for key, value in positive.items():
            if value < 1:
                raise InputError(f"--{key.replace('_', '-')}: expected a positive integer, got {value}")
        if not 0.0 <= self.val_fraction < 1.0:
            raise InputError(f"--val-fraction: expected a fraction in [0, 1), got {self.val_fraction}")
        if self.min_confidence is not None and not 0.0 <= self.min_confidence <= 1.0:
            raise InputError(f"--min-confidence: expected a probability in [0, 1], got {self.min_confidence}")
        if not 0.0 <= self.eps <= 1.0:
            raise InputError(f"--eps: expected a radius in [0, 1] pixel space, got {self.eps}")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise InputError(f"--label-smoothing: expected [0, 1), got {self.label_smoothing}")
        if not 0.0 <= self.ema < 1.0:
            raise InputError(f"--ema: expected a decay in [0, 1) such as 0.99 (0 = off), got {self.ema}")
        if not 0.0 <= self.erase <= 1.0:
            raise InputError(f"--erase: expected a probability in [0, 1] (0 = off), got {self.erase}")
        if self.lr is not None and self.lr <= 0:
            raise InputError(f"--lr: expected a positive learning rate, got {self.lr}")

    def learning_rate(self, *, pretrained_timm: bool) -> float:
        base = self.lr if self.lr is not None else {"sgd": 0.05, "adam": 1e-3, "adamw": 2e-3}[self.optimizer]
        return base / 4 if pretrained_timm and self.lr is None else base

    def decay(self) -> float:
        if self.weight_decay is not None:
            return self.weight_decay
        return 0.05 if self.optimizer == "adamw" else 5e-4
