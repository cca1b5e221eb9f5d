"""Convert a labelled image dataset from one format to another, images copied along.

Each entry of :data:`FORMATS` is ``(read, write)``. ``read(src, labels_file)`` returns the dataset and the
folder its image paths are relative to; ``write(dataset, images_root, out)`` writes a self-contained dataset
into the new folder ``out``. For csv, coco, label-studio and cvat the annotation file is ``labels_file`` and
``src`` is the image root; for yolo, voc and imagefolder ``src`` is the dataset root.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from pixlabel.errors import InputError
from pixlabel.io.formats._common import copy_images, list_images, warn, with_image_sizes
from pixlabel.io.formats.coco import format_coco, read_coco
from pixlabel.io.formats.csvfmt import read_labels_csv, write_labels_csv
from pixlabel.io.formats.cvat import format_cvat, read_cvat
from pixlabel.io.formats.imagefolder import read_imagefolder, write_imagefolder
from pixlabel.io.formats.labelstudio import read_labelstudio, write_labelstudio
from pixlabel.io.formats.voc import read_voc, voc_image_root, write_voc
from pixlabel.io.formats.yolo import all_masked, read_yolo, write_yolo
from pixlabel.records import Dataset

Reader = Callable[[Path, Path | None], tuple[Dataset, Path]]
Writer = Callable[[Dataset, Path, Path], None]


class FormatIO(NamedTuple):
    read: Reader
    write: Writer


def _read_imagefolder(src: Path, labels_file: Path | None) -> tuple[Dataset, Path]:
    return read_imagefolder(src), src


def _read_csv(src: Path, labels_file: Path | None) -> tuple[Dataset, Path]:
    return read_labels_csv(_required(labels_file, "csv")), src


def _read_coco(src: Path, labels_file: Path | None) -> tuple[Dataset, Path]:
    return read_coco(_required(labels_file, "coco")), src


def _read_yolo(src: Path, labels_file: Path | None) -> tuple[Dataset, Path]:
    return read_yolo(src), src / "images"


def _read_voc(src: Path, labels_file: Path | None) -> tuple[Dataset, Path]:
    return read_voc(src), voc_image_root(src)


def _read_labelstudio(src: Path, labels_file: Path | None) -> tuple[Dataset, Path]:
    # Task URLs name images the way Label Studio served them: resolved against the files under SRC.
    known = dict.fromkeys(list_images(src))
    return read_labelstudio(_required(labels_file, "label-studio"), known=known).dataset, src


def _read_cvat(src: Path, labels_file: Path | None) -> tuple[Dataset, Path]:
    return read_cvat(_required(labels_file, "cvat"), known=dict.fromkeys(list_images(src))), src


def _required(labels_file: Path | None, fmt: str) -> Path:
    if labels_file is None:
        raise InputError(f"--from {fmt} needs --labels FILE (the annotation file); SRC is the image folder")
    return labels_file


def _write_csv(dataset: Dataset, images_root: Path, out: Path) -> None:
    copy_images([i.path for i in dataset.images], images_root, out / "images")
    write_labels_csv(dataset.labels, out / "labels.csv", images=dataset.images)


def _write_coco(dataset: Dataset, images_root: Path, out: Path) -> None:
    data = format_coco(with_image_sizes(dataset, images_root))  # before copying: a bad label copies nothing
    copy_images([i["file_name"] for i in data["images"]], images_root, out / "images")
    (out / "annotations.json").write_text(json.dumps(data), encoding="utf-8")


def _write_labelstudio(dataset: Dataset, images_root: Path, out: Path) -> None:
    sized = with_image_sizes(dataset, images_root)
    copy_images([i.path for i in sized.images], images_root, out / "images")
    write_labelstudio(sized, out / "tasks.json", url_prefix="/data/local-files/?d=images/")


def _write_cvat(dataset: Dataset, images_root: Path, out: Path) -> None:
    sized = with_image_sizes(dataset, images_root)
    text = format_cvat(sized)  # before copying: a bad label copies nothing
    copy_images([i.path for i in sized.images], images_root, out / "images")
    (out / "annotations.xml").write_text(text, encoding="utf-8")


FORMATS: dict[str, FormatIO] = {
    "imagefolder": FormatIO(_read_imagefolder, write_imagefolder),
    "csv": FormatIO(_read_csv, _write_csv),
    "coco": FormatIO(_read_coco, _write_coco),
    "yolo": FormatIO(_read_yolo, write_yolo),
    "voc": FormatIO(_read_voc, write_voc),
    "label-studio": FormatIO(_read_labelstudio, _write_labelstudio),
    "cvat": FormatIO(_read_cvat, _write_cvat),
}

FORMAT_HELP: dict[str, str] = {
    "imagefolder": "one sub-folder per class (cat/001.jpg); class labels only. Writes OUT/<class>/…",
    "csv": "labels.csv with path,label[,confidence,source,status,…] (+ x1,y1,x2,y2 boxes); --labels is the "
           "CSV, SRC the image folder. Writes OUT/labels.csv and OUT/images/",
    "coco": "COCO instances JSON (bbox, polygon or RLE masks, score); --labels is the JSON, SRC the image "
            "folder. Writes OUT/annotations.json and OUT/images/",
    "yolo": "Ultralytics layout: data.yaml, images/, labels/*.txt (boxes, or one polygon per object when every "
            "label has a mask); SRC is the dataset folder. Writes the same layout",
    "voc": "Pascal VOC: Annotations/*.xml with JPEGImages/ (or XML beside the images); SRC is the dataset "
           "folder. Writes Annotations/, JPEGImages/, ImageSets/Main/trainval.txt",
    "label-studio": "Label Studio JSON export (annotations, else predictions: choices, rectangles, polygons, "
                    "per-region text); --labels is the JSON, SRC the image folder its URLs point into. Writes "
                    "OUT/tasks.json (served from /data/local-files/?d=images/…), OUT/tasks.config.xml, OUT/images/",
    "cvat": "CVAT for images 1.1 XML (tags, boxes, polygons, masks, attributes); --labels is the XML, SRC the "
            "image folder. Writes OUT/annotations.xml and OUT/images/",
}

_FILE_FORMATS = ("csv", "coco", "label-studio", "cvat")  # an annotation file beside an image folder

# What each target keeps, so a lossy conversion says what it leaves behind.
_KEEPS: dict[str, frozenset[str]] = {
    "imagefolder": frozenset(),
    "csv": frozenset({"boxes", "confidences"}),
    "coco": frozenset({"boxes", "masks", "confidences"}),
    "yolo": frozenset({"boxes", "masks"}),
    "voc": frozenset({"boxes"}),
    "label-studio": frozenset({"boxes", "masks", "confidences"}),
    "cvat": frozenset({"boxes", "masks"}),
}


def convert(src: Path | str, *, src_format: str, labels_file: Path | str | None = None, dst_format: str,
            out: Path | str) -> Dataset:
    """Read ``src`` as ``src_format`` and write it as ``dst_format`` into the new or empty folder ``out``.

    Returns the dataset as read. Repairs (clipped boxes, skipped images) are reported as ``FormatWarning``.

    >>> convert("data", src_format="coco", labels_file="data/instances.json", dst_format="yolo",
    ...         out="data-yolo")  # doctest: +SKIP
    """
    for name in (src_format, dst_format):
        if name not in FORMATS:
            raise InputError(f"unknown format {name!r}; known: {', '.join(FORMATS)}")
    src, out = Path(src), Path(out)
    labels = Path(labels_file) if labels_file is not None else None
    if not src.is_dir():
        raise InputError(f"{src}: SRC must be a folder (the dataset or image root)")
    if labels is not None and src_format not in _FILE_FORMATS:
        raise InputError(f"--labels is only for --from {', '.join(_FILE_FORMATS[:-1])} or {_FILE_FORMATS[-1]}; "
                         f"a {src_format} dataset is the SRC folder")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InputError(f"{out}: the output folder must be new or empty (nothing is overwritten)")
    dataset, images_root = FORMATS[src_format].read(src, labels)
    _warn_losses(dataset, dst_format)
    out.mkdir(parents=True, exist_ok=True)
    FORMATS[dst_format].write(dataset, images_root, out)
    return dataset


def _warn_losses(dataset: Dataset, dst_format: str) -> None:
    counts = {
        "boxes": sum(lab.box is not None for lab in dataset.labels),
        "masks": sum(lab.mask is not None for lab in dataset.labels),
        "confidences": sum(lab.source == "model" for lab in dataset.labels),
    }
    keeps = _KEEPS[dst_format]
    if dst_format == "yolo" and not all_masked(dataset.labels):
        keeps = keeps - {"masks"}  # one YOLO dataset holds boxes or polygons: masks only when every label has one
    for what, count in counts.items():
        if count and what not in keeps:
            warn(f"{dst_format} cannot store {what}: {count} label(s) lose theirs")
