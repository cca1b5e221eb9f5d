"""The settings of ``pixlabel label``; saved as ``config.yaml`` beside its outputs."""

from __future__ import annotations

from dataclasses import dataclass

from pixlabel.backbones.registry import DEFAULT_BACKBONE
from pixlabel.io.images import DEFAULT_MAX_PIXELS


@dataclass(frozen=True)
class LabelConfig:
    images: str
    out: str
    labels: str | None = None  # SEED.csv (path,label); None: ImageFolder layout
    db: str | None = None  # database URL; None: WS/pixlabel.db
    backbone: str = DEFAULT_BACKBONE
    weights: str | None = None
    image_size: int | None = None  # backbone input; None: from the images (backbones.sizing), 96-224 px
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
    task: str = "classify"  # classify | detect | segment | ocr (text boxes + transcripts, pipeline/ocr_label.py)
    detector: str = "fcos"  # fcos | retinanet | fasterrcnn (segment: maskrcnn)
    detector_size: int = 320  # shorter side the detector sees; 128 suits 128-px scenes, 512+ fine detail
    teacher_steps: int = 700
    student_steps: int = 400
    rounds: int = 2  # teacher-student rounds after the teacher (stops when held-out mAP stops improving)
    pseudo_threshold: float = 0.5  # calibrated P(correct) a pseudo-box needs
    flip_tta: bool = True  # final boxes also from the mirrored image (merged by NMS); off if flips change classes
    tta_scales: str = "1"  # comma-separated input scales merged for the final boxes, e.g. "1,1.25"
    open_vocab: str | None = None  # OWLv2 hub id or local dir: class-name boxes warm-start the teacher
    segmenter: str | None = None  # sam:MODEL: masks from box prompts (--task segment) instead of Mask R-CNN

    def __post_init__(self) -> None:
        if not 0.0 < self.target_precision < 1.0:
            raise ValueError(f"target_precision must be in (0, 1), got {self.target_precision}")
        if self.engine not in ("local", "ray"):
            raise ValueError(f"engine must be local or ray, got {self.engine!r}")
        if self.task not in ("classify", "detect", "segment", "ocr"):
            raise ValueError(f"task must be classify, detect, segment or ocr, got {self.task!r}")
        if not all(0.25 <= x <= 4 for x in self.tta_scale_list):
            raise ValueError(f"tta_scales must be numbers in [0.25, 4], got {self.tta_scales!r}")
        if self.image_size is not None and self.image_size < 16:
            raise ValueError(f"image_size must be at least 16, got {self.image_size}")

    @property
    def tta_scale_list(self) -> tuple[float, ...]:
        try:
            return tuple(float(x) for x in str(self.tta_scales).split(",") if x.strip()) or (1.0,)
        except ValueError:
            raise ValueError(f"tta_scales must be comma-separated numbers, got {self.tta_scales!r}") from None
