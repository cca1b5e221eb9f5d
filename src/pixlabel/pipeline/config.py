"""The settings of ``pixlabel label``; saved as ``config.yaml`` beside its outputs."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from pixlabel.backbones.registry import DEFAULT_BACKBONE, MIN_IMAGE_SIZE
from pixlabel.budget import Effort
from pixlabel.errors import InputError
from pixlabel.io.images import DEFAULT_MAX_PIXELS

MAX_IMAGE_SIZE = 1024  # a batch of 64 at 1024 px is already ~10 GB of CNN activations on the CPU
CHOICES: dict[str, tuple[str, ...]] = {
    "engine": ("local", "ray"),
    "precision": ("auto", "fp32", "bf16"),
    "task": ("classify", "detect", "segment", "ocr"),
    "detector": ("fcos", "retinanet", "fasterrcnn", "maskrcnn"),
    "effort": tuple(e.value for e in Effort),
}
# Inclusive ranges of the numbers a user may give (None: unbounded). Checked when the config is built, so a
# bad flag or config-file value fails before any image is read.
RANGES: dict[str, tuple[float | None, float | None]] = {
    "image_size": (MIN_IMAGE_SIZE, MAX_IMAGE_SIZE),
    "seed": (0, 2**32 - 1),  # numpy's seeding range
    "batch_size": (1, 4096),
    "workers": (1, 256),
    "max_pixels": (1, None),
    "cv_folds": (2, 20),  # one fold holds nothing out
    "detector_size": (32, 4096),
    "teacher_steps": (1, None),
    "student_steps": (0, None),
    "rounds": (0, 20),
    "pseudo_threshold": (0.0, 1.0),
}
# ends excluded; a time budget of over a week is a typo, not a plan
OPEN_RANGES: dict[str, tuple[float, float]] = {"target_precision": (0.0, 1.0), "time_budget": (0.0, 10_080.0)}


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
        check_label_config(self)

    @property
    def tta_scale_list(self) -> tuple[float, ...]:
        try:
            return tuple(float(x) for x in str(self.tta_scales).split(",") if x.strip()) or (1.0,)
        except ValueError:
            raise InputError(f"{_name('tta_scales')} must be comma-separated numbers, e.g. 1,1.25; "
                             f"got {self.tta_scales!r}") from None


def _name(key: str) -> str:
    """How a setting is named to the user: its flag, and the config-file key it also comes from."""
    flag = {"flip_tta": "--no-flip-tta"}.get(key, "--" + key.replace("_", "-"))
    return f"{flag} (config key {key})"


def _check_type(config: LabelConfig, f: dataclasses.Field) -> None:
    """Coerce or refuse a value of the wrong type: YAML gives ``image_size: big`` or ``seed: 1.5`` as is."""
    value = getattr(config, f.name)
    kind = str(f.type).split("|")[0].strip()
    if value is None:
        if "None" not in str(f.type):
            raise InputError(f"{_name(f.name)} needs a value")
        return
    if kind == "bool":
        ok = isinstance(value, bool)
        what = "true or false"
    elif kind == "int":
        if isinstance(value, float) and value.is_integer():
            object.__setattr__(config, f.name, int(value))
            return
        ok = isinstance(value, int) and not isinstance(value, bool)
        what = "a whole number"
    elif kind == "float":
        ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
        what = "a number"
        if ok:
            object.__setattr__(config, f.name, float(value))
            return
    elif kind == "str":
        if isinstance(value, int | float) and not isinstance(value, bool):  # YAML reads ``tta_scales: 1`` as 1
            object.__setattr__(config, f.name, str(value))
            return
        ok = isinstance(value, str)
        what = "text"
    else:
        return
    if not ok:
        raise InputError(f"{_name(f.name)} must be {what}, got {value!r}")


def _one_of(names: list[str] | tuple[str, ...]) -> str:
    """``('a', 'b', 'c')`` -> ``'one of a, b or c'``; two names read ``'a or b'``."""
    text = " or ".join([", ".join(names[:-1]), names[-1]]) if len(names) > 1 else names[0]
    return text if len(names) <= 2 else f"one of {text}"


def _fmt(x: float | None) -> str:
    return "" if x is None else f"{x:g}"


def check_label_config(config: LabelConfig) -> None:
    """Every setting's type, choice and range, named as the user gave it; raises ``InputError`` (exit 2).

    >>> LabelConfig(images="i", out="o", target_precision=1.5)  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    InputError: --target-precision (config key target_precision) must be between 0 and 1 (both excluded), got 1.5
    """
    for f in dataclasses.fields(config):
        _check_type(config, f)
    for key, allowed in CHOICES.items():
        value = getattr(config, key)
        if value not in allowed:
            raise InputError(f"{_name(key)} must be {_one_of(allowed)}, got {value!r}")
    kinds = {f.name: str(f.type) for f in dataclasses.fields(config)}
    for key, (lo, hi) in RANGES.items():
        value = getattr(config, key)
        if value is None:  # e.g. a size left to be chosen from the images
            continue
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            what = "a whole number" if kinds[key].startswith("int") else "a number"
            span = f"from {_fmt(lo)} to {_fmt(hi)}" if hi is not None else f"of at least {_fmt(lo)}"
            raise InputError(f"{_name(key)} must be {what} {span}, got {value!r}")
    for key, (lo, hi) in OPEN_RANGES.items():
        value = getattr(config, key)
        if value is not None and not lo < value < hi:
            raise InputError(f"{_name(key)} must be between {_fmt(lo)} and {_fmt(hi)} (both excluded), got {value!r}")
    if not config.images.strip():
        raise InputError("IMAGES: give the folder of images to label")
    if not config.out.strip():
        raise InputError("--out (config key out): give a workspace directory")
    if config.method != "auto":
        from pixlabel.labelers.registry import available

        known = ["auto", *available()]
        if config.method not in known:
            raise InputError(f"{_name('method')} must be {_one_of(known)}, got {config.method!r}")
    if config.classes is not None and len({c.strip() for c in config.classes.split(",") if c.strip()}) < 2:
        raise InputError(f"{_name('classes')} must list at least two comma-separated classes, got {config.classes!r}")
    if not all(0.25 <= x <= 4 for x in config.tta_scale_list):
        raise InputError(f"{_name('tta_scales')} must be numbers from 0.25 to 4, got {config.tta_scales!r}")
