"""The settings of ``pixlabel label``; saved as ``config.yaml`` beside its outputs."""

from __future__ import annotations

from dataclasses import dataclass

from pixlabel.backbones.registry import DEFAULT_BACKBONE
from pixlabel.budget import Effort
from pixlabel.errors import InputError
from pixlabel.io.images import DEFAULT_MAX_PIXELS


@dataclass(frozen=True)
class LabelConfig:
    images: str
    out: str
    labels: str | None = None  # SEED.csv (path,label); None: ImageFolder layout
    db: str | None = None  # database URL; None: WS/pixlabel.db
    backbone: str = DEFAULT_BACKBONE
    weights: str | None = None
    image_size: int = 96  # small inputs keep CPU runs fast; raise it for big photos with fine detail
    method: str = "auto"
    target_precision: float = 0.97
    seed: int = 0
    engine: str = "local"  # local | ray (embedding on Ray Data; see pixlabel.engines)
    ray_address: str | None = None  # Ray cluster address; None with engine ray starts a local Ray
    batch_size: int = 64
    workers: int = 2
    precision: str = "auto"  # fp32 | bf16 | auto
    max_pixels: int = DEFAULT_MAX_PIXELS
    cv_folds: int = 5
    classes: str | None = None  # comma-separated class list; with --zero-shot, classes need no seeds
    zero_shot: bool = False  # add open_clip zero-shot labels from class names as a candidate
    clip_arch: str = "ViT-B-32"
    clip_pretrained: str = "laion2b_s34b_b79k"  # a tag (downloads when online) or a local checkpoint file
    prompts: str | None = None  # YAML {class: [prompt, ...]}
    # --task detect|segment (boxes / instance masks; see pixlabel.detect)
    task: str = "classify"  # classify | detect | segment
    detector: str = "fcos"  # fcos | retinanet | fasterrcnn (segment: maskrcnn)
    detector_size: int | None = None  # shorter side the detector sees; None: from the images (never upsampled)
    teacher_steps: int | None = None  # None: as many as the time budget allows
    student_steps: int | None = None
    rounds: int | None = None  # student rounds after the teacher (None: by effort; stops when held-out mAP drops)
    # How much work (shared with classification): --time-budget minutes for the whole run, else minutes from
    # --effort and the image count (pixlabel.budget, pixlabel.detect.plan).
    effort: str = "balanced"  # fast | balanced | thorough
    time_budget: float | None = None  # minutes
    pseudo_threshold: float = 0.5  # calibrated P(correct) a pseudo-box needs
    flip_tta: bool = True  # final boxes also from the mirrored image (merged by NMS); off if flips change classes
    tta_scales: str = "1,1.25"  # input scales merged for the final boxes (1.25: +0.009 mAP@0.5 on the scenes)
    open_vocab: str | None = None  # OWLv2 hub id or local dir: class-name boxes warm-start the teacher
    segmenter: str | None = None  # sam:MODEL: masks from box prompts (--task segment) instead of Mask R-CNN

    def __post_init__(self) -> None:
        if not 0.0 < self.target_precision < 1.0:
            raise ValueError(f"target_precision must be in (0, 1), got {self.target_precision}")
        if self.engine not in ("local", "ray"):
            raise ValueError(f"engine must be local or ray, got {self.engine!r}")
        if self.task not in ("classify", "detect", "segment"):
            raise ValueError(f"task must be classify, detect or segment, got {self.task!r}")
        if not all(0.25 <= x <= 4 for x in self.tta_scale_list):
            raise ValueError(f"tta_scales must be numbers in [0.25, 4], got {self.tta_scales!r}")
        Effort.parse(self.effort)
        if self.time_budget is not None and not self.time_budget > 0:
            raise InputError(f"time_budget must be > 0 minutes, got {self.time_budget}")
        for name in ("detector_size", "teacher_steps", "student_steps", "rounds"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                      or value < (0 if name == "rounds" else 1)):
                raise InputError(f"{name} must be a whole number >= {0 if name == 'rounds' else 1}, got {value!r}")
        if self.image_size < 16:
            raise ValueError(f"image_size must be at least 16, got {self.image_size}")

    @property
    def tta_scale_list(self) -> tuple[float, ...]:
        try:
            return tuple(float(x) for x in str(self.tta_scales).split(",") if x.strip()) or (1.0,)
        except ValueError:
            raise ValueError(f"tta_scales must be comma-separated numbers, got {self.tta_scales!r}") from None
