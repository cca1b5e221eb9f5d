"""``pixlabel label --task detect`` end to end on generated Fashion-MNIST-style scenes (tiny step counts:
this checks the plumbing and the contracts, the benchmark checks accuracy)."""

from __future__ import annotations

import json

import pytest
from pycocotools.coco import COCO

from detect_shapes import shape_items as _items
from pixlabel.cli.main import main
from pixlabel.detect.scenes import SceneSpec, make_scenes
from pixlabel.io.formats.coco import read_coco, write_coco
from pixlabel.records import Dataset
from pixlabel.store import open_store

FAST = ["--detector-size", "96", "--teacher-steps", "4", "--student-steps", "2", "--rounds", "1"]


class _Result:
    def __init__(self, code: int, out: str, err: str) -> None:
        self.returncode, self.stdout, self.stderr = code, out, err


@pytest.fixture
def _pixlabel(capsys, one_torch_thread):
    def run(*args: str) -> _Result:
        code = main(list(args))
        cap = capsys.readouterr()
        return _Result(code, cap.out, cap.err)
    return run


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    root = tmp_path_factory.mktemp("scenes")
    truth = make_scenes(_items(), root / "images", 24, seed=0, spec=SceneSpec(size=96, max_item=40))
    seeds = truth.images[:8]
    keep = {i.path for i in seeds}
    write_coco(Dataset(seeds, [lab for lab in truth.labels if lab.image in keep], truth.ontology),
               root / "seed.coco.json")
    write_coco(truth, root / "truth.coco.json")
    (root / "images" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    return root, truth, keep


@pytest.mark.slow
def test_label_detect_writes_coco_store_and_detector(scenes, tmp_path, _pixlabel):
    root, truth, seed_paths = scenes
    ws = tmp_path / "ws"
    r = _pixlabel("label", str(root / "images"), "--task", "detect", "--labels", str(root / "seed.coco.json"),
                  "--out", str(ws), *FAST)
    assert r.returncode == 0, r.stderr
    assert "boxed 16 images from 8 seed images" in r.stdout
    out = read_coco(ws / "labels.coco.json")
    coco = COCO(str(ws / "labels.coco.json"))  # other tools read it
    assert len(coco.getImgIds()) == 24 and {c["name"] for c in coco.loadCats(coco.getCatIds())} == {"disc", "bar"}
    raw = json.loads((ws / "labels.coco.json").read_text())
    human = [a for a in raw["annotations"] if "score" not in a]
    assert len(human) == sum(lab.image in seed_paths for lab in truth.labels)  # every seed box, unscored
    by_truth = {(lab.image, lab.box.xywh) for lab in truth.labels if lab.image in seed_paths}
    assert {(lab.image, lab.box.xywh) for lab in out.labels if lab.source == "human"} == by_truth
    assert all(lab.image not in seed_paths for lab in out.labels if lab.source == "model")
    assert "broken.png" in (ws / "errors.csv").read_text()
    assert (ws / "detector" / "detector.yaml").is_file() and "Teacher" in (ws / "report.html").read_text()
    # a second run keeps every human box and replaces (not piles up) model boxes
    with open_store(ws / "pixlabel.db") as store:
        n_model = sum(lab.source == "model" for lab in store.labels())
    r = _pixlabel("label", str(root / "images"), "--task", "detect", "--labels", str(root / "seed.coco.json"),
                  "--out", str(ws), *FAST)
    assert r.returncode == 0, r.stderr
    with open_store(ws / "pixlabel.db") as store:
        labels = store.labels()
    assert {(lab.image, lab.box.xywh) for lab in labels if lab.source == "human"} == by_truth
    assert sum(lab.source == "model" for lab in labels) <= n_model + 50 * 16


def test_seed_file_naming_a_missing_image_is_an_error(scenes, tmp_path, _pixlabel):
    root, truth, _ = scenes
    bad = Dataset(truth.images[:2] + [type(truth.images[0])("nope.png", (96, 96))], [], truth.ontology)
    write_coco(bad, tmp_path / "seed.json")
    r = _pixlabel("label", str(root / "images"), "--task", "detect", "--labels", str(tmp_path / "seed.json"),
                  "--out", str(tmp_path / "ws"), *FAST)
    assert r.returncode != 0 and "nope.png" in r.stderr and "not found under the image folder" in r.stderr


def test_unknown_category_id_names_the_file_and_annotation(scenes, tmp_path, _pixlabel):
    root, _, _ = scenes
    data = json.loads((root / "seed.coco.json").read_text())
    data["annotations"][0]["category_id"] = 99
    (tmp_path / "seed.json").write_text(json.dumps(data))
    r = _pixlabel("label", str(root / "images"), "--task", "detect", "--labels", str(tmp_path / "seed.json"),
                  "--out", str(tmp_path / "ws"), *FAST)
    assert r.returncode != 0 and "seed.json" in r.stderr and f"annotation id {data['annotations'][0]['id']}" \
        in r.stderr


def test_class_without_seed_boxes_is_an_error(scenes, tmp_path, _pixlabel):
    root, truth, seed_paths = scenes
    only = [lab for lab in truth.labels if lab.image in seed_paths and lab.label == "disc"]
    write_coco(Dataset(truth.images[:8], only, truth.ontology), tmp_path / "seed.json")
    r = _pixlabel("label", str(root / "images"), "--task", "detect", "--labels", str(tmp_path / "seed.json"),
                  "--out", str(tmp_path / "ws"), *FAST)
    assert r.returncode != 0 and "no seed boxes for class(es) bar" in r.stderr


@pytest.mark.slow
def test_open_vocab_warm_start_and_sam_masks_run_from_the_cli(scenes, tmp_path, _pixlabel):
    """Tiny random OWLv2/SAM checkpoints saved locally: proves the wiring (flags -> loaders -> pipeline ->
    COCO masks), not their accuracy."""
    from test_open_vocab import save_tiny_owlv2
    from test_sam import save_tiny_sam

    root, _, seed_paths = scenes
    owl, sam = save_tiny_owlv2(tmp_path / "owl"), save_tiny_sam(tmp_path / "sam")
    ws = tmp_path / "ws"
    r = _pixlabel("label", str(root / "images"), "--task", "segment", "--labels", str(root / "seed.coco.json"),
                  "--out", str(ws), "--open-vocab", str(owl), "--segmenter", f"sam:{sam}",
                  "--pseudo-threshold", "0.0", *FAST)
    assert r.returncode == 0, r.stderr
    assert "open-vocabulary" in r.stdout  # the stage ran and was timed
    raw = json.loads((ws / "labels.coco.json").read_text())
    model = [a for a in raw["annotations"] if "score" in a]
    assert model and all(a["segmentation"] and "counts" in a["segmentation"] for a in model)
    r = _pixlabel("label", str(root / "images"), "--task", "segment", "--labels", str(root / "seed.coco.json"),
                  "--out", str(tmp_path / "ws2"), "--segmenter", "sam2:x", *FAST)
    assert r.returncode == 2 and "expected sam:MODEL" in r.stderr


@pytest.mark.slow
def test_label_segment_trains_mask_rcnn_and_eval_scores_its_masks(scenes, tmp_path, _pixlabel):
    """Without --segmenter the masks come from a Mask R-CNN head trained on the seed masks; `pixlabel eval
    --iou-type segm` scores them against the truth masks."""
    root, _, seed_paths = scenes
    ws = tmp_path / "ws"
    r = _pixlabel("label", str(root / "images"), "--task", "segment", "--labels", str(root / "seed.coco.json"),
                  "--out", str(ws), *FAST)
    assert r.returncode == 0, r.stderr
    assert "arch: maskrcnn" in (ws / "detector" / "detector.yaml").read_text()
    raw = json.loads((ws / "labels.coco.json").read_text())
    sizes = {i["id"]: [i["height"], i["width"]] for i in raw["images"]}
    model = [a for a in raw["annotations"] if "score" in a]
    assert model and all(isinstance(a["segmentation"], dict) and a["segmentation"]["size"] == sizes[a["image_id"]]
                         and isinstance(a["segmentation"]["counts"], str) for a in model)  # compressed RLE
    r = _pixlabel("eval", str(ws / "labels.coco.json"), str(root / "images"), "--labels",
                  str(root / "truth.coco.json"), "--iou-type", "segm", "--out", str(tmp_path / "eval"))
    assert r.returncode == 0, r.stderr
    m = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert m["iou_type"] == "segm" and m["n_images"] == 24 - len(seed_paths)
    assert m["n_pred"] == len(model) and 0.0 <= m["map50"] <= 1.0


def test_yolo_seed_folder_works_like_coco(scenes, tmp_path, _pixlabel):
    """The same seed boxes as a YOLO dataset (data.yaml + labels/*.txt) train the same way."""
    from pixlabel.io.formats.coco import read_coco as _read
    from pixlabel.io.formats.yolo import write_yolo

    root, truth, seed_paths = scenes
    seeds = _read(root / "seed.coco.json")
    write_yolo(Dataset(seeds.images, [lab for lab in seeds.labels], seeds.ontology), root / "images",
               tmp_path / "yolo")
    ws = tmp_path / "ws"
    r = _pixlabel("label", str(root / "images"), "--task", "detect", "--labels", str(tmp_path / "yolo"),
                  "--out", str(ws), "--rounds", "0", *FAST[:-2])
    assert r.returncode == 0, r.stderr
    human = [lab for lab in read_coco(ws / "labels.coco.json").labels if lab.source == "human"]
    assert {lab.image for lab in human} == {p for p in seed_paths if any(x.image == p for x in truth.labels)}
    assert len(human) == sum(lab.image in seed_paths for lab in truth.labels)
