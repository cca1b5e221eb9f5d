"""Open-vocabulary detection (OWLv2): loading, prompt→class mapping and box geometry on a tiny local checkpoint.

The checkpoint is a randomly initialised OWLv2 with a handful-token CLIP tokenizer, saved with save_pretrained
and loaded back through the detector, so nothing is downloaded. Random weights detect nothing meaningful:
these tests prove the plumbing (loading, prompts, post-processing, coordinates, errors), not accuracy.
"""

from __future__ import annotations

import json
import string
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.ops import box_iou
from transformers import (
    CLIPTokenizer,
    Owlv2Config,
    Owlv2ForObjectDetection,
    Owlv2ImageProcessor,
    Owlv2Processor,
)

from pixlabel.datasets import default_dataset
from pixlabel.detect.open_vocab import Detection, OpenVocabDetector, detector_prompts
from pixlabel.detect.scenes import make_scenes
from pixlabel.errors import InputError

CLASSES = ["t-shirt", "trouser"]
PROMPTS = {"t-shirt": ["a t-shirt.", "a tee."]}  # two prompts for class 0; class 1 gets the default prompt
TEXTS = ["a t-shirt.", "a tee.", "a photo of a trouser."]  # what the detector must send, in class order


def save_tiny_owlv2(out: Path, *, seed: int = 0) -> Path:
    """Random OWLv2: 64 px input, 16 px patches (16 boxes), 1-layer towers of width 32, 32-token text (real
    OWLv2 reads 16 BPE tokens; with no merges here every character is a token)."""
    chars = list(string.ascii_lowercase + string.digits + ".-,'")
    tokens = ["!"] + chars + [c + "</w>" for c in chars] + ["<|startoftext|>", "<|endoftext|>"]  # real CLIP
    tok_dir = out / "tokenizer-src"  # layout: pad "!" is 0, start/end the two largest ids (text pools at argmax)
    tok_dir.mkdir(parents=True)
    (tok_dir / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(tokens)}))
    (tok_dir / "merges.txt").write_text("#version: 0.2\n")  # no merges: every character is a token
    tokenizer = CLIPTokenizer.from_pretrained(tok_dir, pad_token="!", model_max_length=32)
    n = len(tokens)
    config = Owlv2Config(
        text_config=dict(vocab_size=n, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                         num_attention_heads=2, max_position_embeddings=32, pad_token_id=0, bos_token_id=n - 2,
                         eos_token_id=n - 1),
        vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                           image_size=64, patch_size=16),
        projection_dim=32,
    )
    torch.manual_seed(seed)
    model = Owlv2ForObjectDetection(config)
    with torch.no_grad():  # trained-model scale: default init here saturates every box to 0 or 1
        for layer in model.modules():
            if isinstance(layer, torch.nn.Linear):
                layer.weight.normal_(0, 0.02)
                if layer.bias is not None:
                    layer.bias.zero_()
        model.box_head.dense2.bias[2:] = 1.5  # boxes 0.6 of the side, centred on the patch grid: they overlap
    model.save_pretrained(out / "owlv2")
    processor = Owlv2Processor(image_processor=Owlv2ImageProcessor(size={"height": 64, "width": 64}),
                               tokenizer=tokenizer)
    processor.save_pretrained(out / "owlv2")
    return out / "owlv2"


@pytest.fixture(scope="module")
def owl_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_owlv2(tmp_path_factory.mktemp("owl"))


@pytest.fixture(scope="module")
def detector(owl_dir: Path) -> OpenVocabDetector:
    return OpenVocabDetector(str(owl_dir), CLASSES, prompts=PROMPTS)


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Image.Image:
    """A real 128×128 scene: Fashion-MNIST items pasted on a procedural background."""
    out = tmp_path_factory.mktemp("scenes")
    make_scenes(default_dataset(), out, n=1, seed=3)
    return Image.open(out / "scene_00000.png").convert("RGB")


def _all(det: OpenVocabDetector, images: list[Image.Image], **kw) -> list[list[Detection]]:
    return det.predict(images, score_threshold=0.0, nms_iou=None, max_detections=1000, **kw)


def test_detections_are_typed_sorted_and_inside_the_image(detector, scene, one_torch_thread):
    images = [scene, scene.crop((0, 0, 128, 80)), scene.crop((20, 0, 92, 128))]  # square, wide, tall
    results = _all(detector, images)
    assert len(results) == 3
    for image, dets in zip(images, results, strict=True):
        assert dets, "threshold 0 keeps every patch box that overlaps the image"
        for d in dets:
            assert isinstance(d, Detection) and isinstance(d.class_index, int) and isinstance(d.score, float)
            assert 0 <= d.x1 < d.x2 <= image.width and 0 <= d.y1 < d.y2 <= image.height
            assert d.class_index in (0, 1) and 0 < d.score < 1
        scores = [d.score for d in dets]
        assert scores == sorted(scores, reverse=True)
    with pytest.raises(AttributeError):
        results[0][0].score = 1.0  # frozen


def _reference(owl_dir: Path, image: Image.Image, threshold: float) -> list[tuple[int, float, list[float]]]:
    """What the detector must return, computed from the raw model: sigmoid per prompt, max over each class's
    prompts, normalised (cx, cy, w, h) on the bottom/right-padded square scaled by the longer side, clipped."""
    processor = Owlv2Processor.from_pretrained(owl_dir)
    model = Owlv2ForObjectDetection.from_pretrained(owl_dir).eval()
    with torch.inference_mode():
        out = model(**processor(text=[TEXTS], images=[image], return_tensors="pt"))
    probs = out.logits[0].sigmoid()  # (P, 3)
    class_scores = torch.stack([probs[:, :2].max(1).values, probs[:, 2]], dim=1)  # (P, 2)
    assert ((probs[:, 1] > probs[:, 0]) & (probs[:, 1] > probs[:, 2])).any(), "seed must let the 2nd prompt win"
    score, cls = class_scores.max(1)
    side = max(image.width, image.height)
    cx, cy, w, h = (out.pred_boxes[0] * side).unbind(-1)
    boxes = torch.stack([(cx - w / 2).clamp(0, image.width), (cy - h / 2).clamp(0, image.height),
                         (cx + w / 2).clamp(0, image.width), (cy + h / 2).clamp(0, image.height)], dim=1)
    keep = (score > threshold) & (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
    rows = [(int(c), float(s), b.tolist()) for c, s, b, k in zip(cls, score, boxes, keep, strict=True) if k]
    return sorted(rows, key=lambda r: -r[1])


@pytest.mark.parametrize("crop", [(0, 0, 128, 128), (0, 0, 128, 80), (30, 0, 100, 128)])
def test_prompts_map_to_classes_and_boxes_to_original_pixels(detector, owl_dir, scene, crop, one_torch_thread):
    image = scene.crop(crop)
    expected = _reference(owl_dir, image, threshold=0.3)
    got = detector.predict([image], score_threshold=0.3, nms_iou=None, max_detections=1000)[0]
    assert [d.class_index for d in got] == [r[0] for r in expected]
    np.testing.assert_allclose([d.score for d in got], [r[1] for r in expected], rtol=1e-5)
    np.testing.assert_allclose([d.box for d in got], [r[2] for r in expected], atol=1e-3)


@pytest.mark.parametrize("size", [(128, 80), (72, 128)])  # (w, h): wide and tall
def test_non_square_image_matches_the_same_image_padded_by_hand(detector, scene, size, one_torch_thread):
    """OWLv2 pads bottom/right with black: a black-padded square copy is the same model input, so its boxes,
    clipped to the original frame, must equal the non-square image's boxes."""
    w, h = size
    image = scene.crop((0, 0, w, h))
    side = max(w, h)
    padded = Image.new("RGB", (side, side))
    padded.paste(image, (0, 0))
    got, on_square = _all(detector, [image, padded])
    expected = []
    for d in on_square:
        box = (min(d.x1, w), min(d.y1, h), min(d.x2, w), min(d.y2, h))
        if box[2] > box[0] and box[3] > box[1]:
            expected.append((*box, d.class_index, round(d.score, 6)))
    assert len(got) == len(expected) > 0
    np.testing.assert_allclose([(*d.box, d.class_index, d.score) for d in got], expected, atol=1e-3)
    assert any(d.y2 > h or d.x2 > w for d in on_square), "some box must reach the padding for this to test it"


def test_batching_and_order_do_not_change_results(detector, scene, one_torch_thread):
    images = [scene, scene.crop((0, 0, 128, 80)), scene.transpose(Image.Transpose.FLIP_LEFT_RIGHT)]
    one_by_one = _all(detector, images, batch_size=1)
    together = _all(detector, images, batch_size=3)
    for a, b in zip(one_by_one, together, strict=True):
        np.testing.assert_allclose([(*d.box, d.class_index, d.score) for d in a],
                                   [(*d.box, d.class_index, d.score) for d in b], atol=1e-4)
    assert one_by_one[0] != one_by_one[2]  # the model does look at the pixels


def test_threshold_nms_and_max_detections(detector, scene, one_torch_thread):
    everything = _all(detector, [scene])[0]
    scores = sorted(d.score for d in everything)
    threshold = scores[len(scores) // 2]
    above = detector.predict([scene], score_threshold=threshold, nms_iou=None, max_detections=1000)[0]
    assert above == [d for d in everything if d.score > threshold]
    nms = detector.predict([scene], score_threshold=0.0, nms_iou=0.3, max_detections=1000)[0]
    assert 0 < len(nms) < len(everything)
    for k in (0, 1):
        boxes = torch.tensor([d.box for d in nms if d.class_index == k]).reshape(-1, 4)
        iou = box_iou(boxes, boxes).fill_diagonal_(0)
        assert (iou <= 0.3 + 1e-6).all()
    assert detector.predict([scene], score_threshold=0.0, nms_iou=None, max_detections=2)[0] == everything[:2]
    assert detector.predict([], score_threshold=0.0) == []


def test_default_prompts_and_prompt_validation():
    assert detector_prompts(["golden_retriever", "cat"], {"cat": ["a cat.", "a kitten.", "a cat."]}) == {
        "golden_retriever": ["a photo of a golden retriever."], "cat": ["a cat.", "a kitten."]}
    with pytest.raises(InputError, match="unknown class 'dog'; known: cat"):
        detector_prompts(["cat"], {"dog": ["a dog."]})
    with pytest.raises(InputError, match="'an animal.' is given for both 'cat' and 'dog'"):
        detector_prompts(["cat", "dog"], {"cat": ["an animal."], "dog": ["an animal."]})
    with pytest.raises(InputError, match="prompts of class 'cat'"):
        detector_prompts(["cat"], {"cat": []})
    with pytest.raises(InputError, match="duplicate class names: cat"):
        detector_prompts(["cat", "cat"])


def test_bad_arguments_are_input_errors(detector, owl_dir, scene):
    with pytest.raises(InputError, match=r"is \d\d tokens; .* reads at most 32"):
        OpenVocabDetector(str(owl_dir), ["cat"], prompts={"cat": ["a long description of a cat asleep on a sofa."]})
    with pytest.raises(InputError, match="list of PIL images"):
        detector.predict(scene)
    with pytest.raises(InputError, match="score_threshold"):
        detector.predict([scene], score_threshold=1.5)
    with pytest.raises(InputError, match="nms_iou"):
        detector.predict([scene], nms_iou=0)


def test_unloadable_models_are_actionable_input_errors(tmp_path, monkeypatch):
    # not on the hub (online: 401/404) or the hub unreachable (here): either way, name it and say what to pass
    with pytest.raises(InputError, match=r"'pixlabel-test/no-such-owlv2'.*local directory"):
        OpenVocabDetector("pixlabel-test/no-such-owlv2", CLASSES)
    with pytest.raises(InputError, match="no such directory"):
        OpenVocabDetector(str(tmp_path / "missing" / "owlv2"), CLASSES)
    (tmp_path / "weights.bin").write_bytes(b"x")
    with pytest.raises(InputError, match="is a file"):
        OpenVocabDetector(str(tmp_path / "weights.bin"), CLASSES)
    with pytest.raises(InputError, match="cannot load it .*save_pretrained"):
        OpenVocabDetector(str(tmp_path), CLASSES)  # a directory without config.json
    sam_dir = tmp_path / "sam"
    sam_dir.mkdir()
    (sam_dir / "config.json").write_text(json.dumps({"model_type": "sam"}))
    with pytest.raises(InputError, match="is a 'sam' model, expected 'owlv2'"):
        OpenVocabDetector(str(sam_dir), CLASSES)
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(InputError, match="HF_HUB_OFFLINE is set; pass a local directory"):
        OpenVocabDetector("google/owlv2-base-patch16-ensemble", CLASSES)
