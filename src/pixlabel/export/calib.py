"""Where INT8 calibration images come from when ``--calib`` is not given: the model's own training images.

``pixlabel train`` leaves ``config.yaml`` (``images``: the image root) and ``split.csv`` (``path,label,split,
source``) in MODEL_DIR; the ``train`` rows that are not synthetic are the real images the weights were fitted
to, the distribution the quantization ranges should cover (Ultralytics calibrates on its dataset's images the
same way).
"""

from __future__ import annotations

import csv
from pathlib import Path

import yaml

from pixlabel.errors import InputError

_NEEDS = "--int8 needs calibration images: pass --calib DIR (e.g. the training images)"


def training_images(model_dir: Path | str) -> tuple[Path, list[str]]:
    """``(image root, relative paths)`` of the real training images recorded in ``model_dir``.

    Raises InputError naming what is missing when the directory has no usable training record.
    """
    model_dir = Path(model_dir)
    config_path, split_path = model_dir / "config.yaml", model_dir / "split.csv"
    if not config_path.is_file() or not split_path.is_file():
        raise InputError(f"{_NEEDS}; {model_dir} has no training record (config.yaml and split.csv, as "
                         "pixlabel train writes them) to take them from")
    try:
        config = yaml.safe_load(config_path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise InputError(f"{_NEEDS}; cannot read {config_path}: {exc}") from exc
    root = Path(str(config.get("images", ""))) if isinstance(config, dict) and config.get("images") else None
    if root is None:
        raise InputError(f"{_NEEDS}; {config_path} records no 'images' folder")
    root = root.expanduser()
    if not root.is_dir():
        raise InputError(f"{_NEEDS}; the model was trained on images in {root}, which is not a folder here "
                         "(run from where training ran, or pass --calib)")
    with split_path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    paths = [r["path"] for r in rows if r.get("split") == "train" and r.get("source") != "synthetic"
             and r.get("path")]
    if not paths:
        raise InputError(f"{_NEEDS}; {split_path} lists no real training images")
    return root, paths
