"""Box-prompted masks (SAM): loading, best-of-three selection, mask size and box order on a tiny local checkpoint.

The checkpoint is a randomly initialised SAM (64 px input) saved with save_pretrained and loaded back through
the segmenter, so nothing is downloaded. Random weights segment nothing meaningful: these tests prove the
plumbing (loading, prompts, mask post-processing, selection, errors), not mask quality.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import SamConfig, SamImageProcessor, SamModel, SamProcessor

from pixlabel.datasets import default_dataset
from pixlabel.detect.sam import BoxPromptSegmenter
from pixlabel.detect.scenes import make_scenes
from pixlabel.errors import InputError


def save_tiny_sam(out: Path, *, seed: int = 2) -> Path:
    """Random SAM: 64 px input, 16 px patches (4×4 embedding, 16×16 low-res masks), width 32."""
    config = SamConfig(
        vision_config=dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, image_size=64,
                           patch_size=16, output_channels=32, window_size=2, global_attn_indexes=[1], mlp_dim=64,
                           num_pos_feats=16),
        prompt_encoder_config=dict(hidden_size=32, image_size=64, patch_size=16, mask_input_channels=4),
        mask_decoder_config=dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, mlp_dim=64,
                                 iou_head_hidden_dim=32),
    )
    torch.manual_seed(seed)
    SamModel(config).save_pretrained(out / "sam")
    # pad_size must equal the model's input size: masks are upsampled to it before the padding is cut off
    processor = SamProcessor(image_processor=SamImageProcessor(size={"longest_edge": 64},
                                                               pad_size={"height": 64, "width": 64}))
    processor.save_pretrained(out / "sam")
    return out / "sam"


@pytest.fixture(scope="module")
def sam_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_sam(tmp_path_factory.mktemp("sam"))


@pytest.fixture(scope="module")
def segmenter(sam_dir: Path) -> BoxPromptSegmenter:
    return BoxPromptSegmenter(str(sam_dir))


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Image.Image:
    """A real scene cropped to 128 wide × 80 high: Fashion-MNIST items on a procedural background."""
    out = tmp_path_factory.mktemp("scenes")
    make_scenes(default_dataset(), out, n=1, seed=5)
    return Image.open(out / "scene_00000.png").convert("RGB").crop((0, 0, 128, 80))


BOXES = [(10.0, 8.0, 60.0, 50.0), (70, 20, 125, 78), (0, 0, 128, 80), (40.5, 30.5, 41.5, 31.5)]


def test_one_bool_mask_per_box_at_the_image_size(segmenter, scene, one_torch_thread):
    masks = segmenter.segment(scene, BOXES)
    assert len(masks) == len(BOXES)
    for m in masks:
        assert isinstance(m, np.ndarray) and m.dtype == bool and m.shape == (80, 128)
    assert len({m.tobytes() for m in masks}) > 1, "different boxes must reach the decoder"
    assert segmenter.segment(scene, []) == []


def test_keeps_the_proposal_with_the_best_predicted_iou(segmenter, sam_dir, scene, one_torch_thread):
    processor = SamProcessor.from_pretrained(sam_dir)
    model = SamModel.from_pretrained(sam_dir).eval()
    inputs = processor(images=scene, input_boxes=[[list(map(float, b)) for b in BOXES]], return_tensors="pt")
    inputs["input_boxes"] = inputs["input_boxes"].float()
    with torch.inference_mode():
        out = model(**inputs, multimask_output=True)
    every = processor.image_processor.post_process_masks(
        out.pred_masks, inputs["original_sizes"], inputs["reshaped_input_sizes"])[0]  # (n, 3, h, w)
    best = out.iou_scores[0].argmax(-1)
    assert len(set(best.tolist())) > 1, "the seed must make different boxes prefer different proposals"
    assert not torch.equal(every[:, 0], every[:, 1]), "and the proposals must differ"
    got = segmenter.segment(scene, BOXES)
    for i, m in enumerate(got):
        np.testing.assert_array_equal(m, every[i, best[i]].numpy())


def test_box_order_and_chunking_do_not_change_masks(segmenter, scene, one_torch_thread):
    together = segmenter.segment(scene, BOXES)
    one_at_a_time = segmenter.segment(scene, BOXES, batch_size=1)
    backwards = segmenter.segment(scene, BOXES[::-1], batch_size=3)
    for a, b, c in zip(together, one_at_a_time, backwards[::-1], strict=True):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, c)


def test_bad_input_is_an_input_error(segmenter, scene):
    with pytest.raises(InputError, match=r"box 1: expected finite \(x1, y1, x2, y2\) with x2 > x1"):
        segmenter.segment(scene, [(0, 0, 10, 10), (10, 10, 5, 20)])
    with pytest.raises(InputError, match="box 0"):
        segmenter.segment(scene, [(0, 0, 10)])
    with pytest.raises(InputError, match="box 0"):
        segmenter.segment(scene, [(0, 0, float("nan"), 10)])
    with pytest.raises(InputError, match="PIL image"):
        segmenter.segment(np.zeros((8, 8, 3), np.uint8), [(0, 0, 4, 4)])
    with pytest.raises(InputError, match="batch_size"):
        segmenter.segment(scene, BOXES, batch_size=0)


def test_unloadable_models_are_actionable_input_errors(tmp_path):
    with pytest.raises(InputError, match=r"SAM segmenter 'pixlabel-test/no-such-sam'.*local directory"):
        BoxPromptSegmenter("pixlabel-test/no-such-sam")
    with pytest.raises(InputError, match="no such directory"):
        BoxPromptSegmenter("./missing/sam-dir")
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "owlv2"}))
    with pytest.raises(InputError, match="is a 'owlv2' model, expected 'sam'"):
        BoxPromptSegmenter(str(tmp_path))
