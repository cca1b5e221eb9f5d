"""Zero-shot class probabilities from class names with open_clip, for ``pixlabel label --zero-shot``.

They enter the run as one more candidate labeler: cross-validation on the seeds (which zero-shot never
trained on, so every seed is held out) decides whether they beat the seed-trained labelers; classes without
any seed can only be labeled this way.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pixlabel.backbones.embed import embed_files
from pixlabel.io.images import ImageFile
from pixlabel.pipeline.config import LabelConfig


def zero_shot_probs(config: LabelConfig, files: list[ImageFile], classes: list[str], *, cache_dir: Path
                    ) -> np.ndarray:
    """(N, K) probabilities for ``files`` (images that already decoded once) over ``classes``."""
    from pixlabel.backbones.open_clip_models import load_open_clip
    from pixlabel.errors import PixlabelError
    from pixlabel.labelers.zero_shot import ZeroShotLabeler, class_prompts, read_prompts_yaml

    clip = load_open_clip(config.clip_arch, pretrained=config.clip_pretrained)
    extra = read_prompts_yaml(config.prompts, classes=classes) if config.prompts else None
    prompts = class_prompts(classes, extra=extra)
    emb = embed_files(files, clip.as_backbone(), cache_dir=cache_dir, batch_size=config.batch_size,
                      workers=config.workers, precision="fp32", max_pixels=config.max_pixels)
    if len(emb.files) != len(files):
        raise PixlabelError(f"{len(files) - len(emb.files)} image(s) decoded for the backbone but not for CLIP")
    return ZeroShotLabeler(clip, prompts).predict_proba(emb.embeddings)
