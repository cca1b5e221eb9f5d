"""Seed boxes/masks for ``pixlabel label --task detect|segment``: COCO JSON, a YOLO or VOC dataset, or a
labels.csv with box columns — plus every human box already in the store (earlier runs, reviews)."""

from __future__ import annotations

from pathlib import Path

from pixlabel.errors import InputError
from pixlabel.io.formats.coco import read_coco
from pixlabel.io.formats.csvfmt import read_labels_csv
from pixlabel.io.formats.voc import read_voc
from pixlabel.io.formats.yolo import read_yolo
from pixlabel.records import Dataset, Label


def read_box_seeds(path: Path) -> Dataset:
    """Parse the seed file by its shape; which images it lists (even with no boxes) marks them as labeled."""
    if path.is_file() and path.suffix.lower() == ".json":
        return read_coco(path)
    if path.is_file() and path.suffix.lower() == ".csv":
        return read_labels_csv(path)
    if path.is_dir() and (path / "data.yaml").is_file():
        return read_yolo(path)
    if path.is_dir() and (path / "Annotations").is_dir():
        return read_voc(path)
    raise InputError(f"{path}: expected seed boxes as a COCO .json file, a labels .csv with box columns, a YOLO "
                     "dataset folder (data.yaml) or a VOC folder (Annotations/)")


def seed_boxes(dataset: Dataset, known: set[str], *, origin: str, bad: dict[str, str]
               ) -> tuple[dict[str, list[Label]], list[str]]:
    """``{image: [labels with a box]}`` for every seed image, and the class list (ontology order).

    An image the seed file names but the folder lacks is an error naming it; an unreadable one is skipped
    (it is already in errors.csv). A label without a box is an error: boxes are what is being learned.
    """
    by_image: dict[str, list[Label]] = {}
    images = [i.path for i in dataset.images] or sorted({lab.image for lab in dataset.labels})
    for path in images:
        if path in bad:
            continue
        if path not in known:
            raise InputError(f"{origin}: image {path!r} not found under the image folder (paths are relative "
                             "to IMAGES)")
        by_image[path] = []
    for lab in dataset.labels:
        if lab.image in bad:
            continue
        if lab.box is None and lab.mask is None:
            raise InputError(f"{origin}: image {lab.image!r} has a class label {lab.label!r} without a box; "
                             "--task detect needs boxes")
        by_image[lab.image].append(lab)
    used = {lab.label for labs in by_image.values() for lab in labs}
    classes = [c for c in dataset.ontology.classes if c in used]
    unused = [c for c in dataset.ontology.classes if c not in used]
    if unused:
        raise InputError(f"{origin}: no seed boxes for class(es) {', '.join(unused)}; box a few of each or "
                         "remove the category")
    if not classes:
        raise InputError(f"{origin}: no seed boxes at all")
    return by_image, classes
