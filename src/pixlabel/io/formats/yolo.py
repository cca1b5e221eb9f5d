"""Ultralytics YOLO: ``images/``, ``labels/`` with one ``.txt`` per image, ``data.yaml`` naming the classes.

A label line is ``class cx cy w h`` (detection; a sixth number is a confidence, as Ultralytics' ``save_conf``
writes it) or ``class x1 y1 x2 y2 x3 y3 …`` (a segmentation polygon of 3+ points), all normalised to the image
width and height as displayed. Dataset image paths are relative to ``images/``, so split folders such as
``train/`` and ``val/`` survive a round trip. A segment is one polygon per object: RLE masks are traced and
masks of several parts merged into one outline (:func:`pixlabel.io.formats._masks.mask_polygon`).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path, PurePosixPath
from typing import Any, Literal

import yaml

from pixlabel.errors import InputError
from pixlabel.io.formats._common import (
    copy_images,
    fmt_num,
    list_images,
    read_image_size,
    text_number,
    warn,
    with_image_sizes,
)
from pixlabel.io.formats._masks import label_box, mask_polygon
from pixlabel.records import Box, Dataset, ImageInfo, Label, Mask, Ontology, Provenance

_DECIMALS = 8
SPLITS = {"train": "train", "val": "val", "valid": "val", "test": "test"}  # folder -> data.yaml key


def parse_yolo_lines(lines: Iterable[str], *, image: str, image_size: tuple[int, int], ontology: Ontology,
                     origin: str) -> list[Label]:
    """Labels for ``image`` (``image_size`` is ``(h, w)``) from its YOLO lines; class ids index ``ontology``.

    Boxes poking out of the image are clipped and zero-area boxes dropped, each with a warning.

    >>> [lab.box.xywh for lab in parse_yolo_lines(["0 0.5 0.5 0.2 0.4"], image="a.jpg", image_size=(100, 200),
    ...                                           ontology=Ontology(("cat",)), origin="labels/a.txt")]
    [(80.0, 30.0, 40.0, 40.0)]
    """
    h, w = image_size
    labels: list[Label] = []
    for number, line in enumerate(lines, start=1):
        tokens = line.split()
        if not tokens:
            continue
        where = f"{origin} line {number}"
        values = [text_number(t) for t in tokens]
        bad = [t for t, v in zip(tokens, values, strict=True) if v is None]
        if bad:
            raise InputError(f"{where}: {bad[0]!r} is not a number")
        cls, *coords = (float(v or 0.0) for v in values)
        if not cls.is_integer() or not 0 <= cls < len(ontology):
            raise InputError(f"{where}: class {tokens[0]} is not in data.yaml names (0..{len(ontology) - 1})")
        name = ontology.classes[int(cls)]
        provenance, confidence, mask = Provenance(source="human"), 1.0, None
        if len(coords) in (4, 5):
            cx, cy, bw, bh = coords[:4]
            if bw < 0 or bh < 0:
                raise InputError(f"{where}: box width and height must be >= 0, got {bw:g} and {bh:g}")
            x1, y1, x2, y2 = (cx - bw / 2) * w, (cy - bh / 2) * h, (cx + bw / 2) * w, (cy + bh / 2) * h
            box = Box(x1, y1, x2, y2, image_size=image_size)
            if len(coords) == 5:
                if not 0.0 <= coords[4] <= 1.0:
                    raise InputError(f"{where}: confidence must be from 0 to 1, got {tokens[5]}")
                provenance, confidence = Provenance(source="model"), coords[4]
        elif len(coords) >= 6 and len(coords) % 2 == 0:
            polygon = tuple(v * (w if i % 2 == 0 else h) for i, v in enumerate(coords))
            mask = Mask(image_size, polygons=(polygon,))
            box = Box(min(polygon[0::2]), min(polygon[1::2]), max(polygon[0::2]), max(polygon[1::2]),
                      image_size=image_size)
        else:
            raise InputError(f"{where}: expected 5 numbers (class cx cy w h) or a polygon "
                             f"(class x1 y1 x2 y2 x3 y3 …), got {len(tokens)}")
        clipped = box.clipped()
        if clipped.area <= 0:
            warn(f"{where}: dropped, its box has zero area inside the image")
            continue
        if clipped != box:
            warn(f"{where}: box clipped to the image")
        labels.append(Label(image, name, confidence, provenance, box=clipped, mask=mask))
    return labels


def format_yolo_lines(labels: Iterable[Label], *, image_size: tuple[int, int], ontology: Ontology,
                      segments: bool = False) -> list[str]:
    """YOLO label lines for one image's labels, normalised and rounded to 8 decimals (trailing zeros cut).

    Rounding moves a corner by at most ``0.75e-8 * width`` pixels, so a COCO -> YOLO -> COCO round trip
    keeps boxes within 1e-3 px on images up to 100k px wide (6 decimals would already miss at 1334 px).
    ``segments=True`` writes each label's mask as one polygon instead of its box; an empty mask is dropped
    with a warning.

    >>> format_yolo_lines([Label("a.jpg", "cat", box=Box(80, 30, 120, 70, image_size=(100, 200)))],
    ...                   image_size=(100, 200), ontology=Ontology(("cat",)))
    ['0 0.5 0.5 0.2 0.4']
    """
    h, w = image_size
    lines = []
    for lab in labels:
        try:
            cls = ontology.index(lab.label)
        except (KeyError, ValueError):
            raise InputError(f"{lab.image}: {ontology.describe_unknown(lab.label)}") from None
        if segments:
            if lab.mask is None:
                raise InputError(f"{lab.image}: label {lab.label!r} needs a mask to be written as a YOLO "
                                 "segment; write boxes (detection) instead")
            polygon = mask_polygon(lab.mask)
            if polygon is None:
                warn(f"{lab.image}: label {lab.label!r} dropped, its mask is empty")
                continue
            coords = (v / (w if i % 2 == 0 else h) for i, v in enumerate(polygon))
            lines.append(" ".join([str(cls), *(fmt_num(v, decimals=_DECIMALS) for v in coords)]))
            continue
        box = label_box(lab)
        if box is None:
            raise InputError(f"{lab.image}: label {lab.label!r} has a class but no box, and YOLO detection "
                             "needs boxes; write class labels with --to imagefolder or --to csv")
        if box.clipped() != box:
            warn(f"{lab.image}: box ({box.x1:g}, {box.y1:g}, {box.x2:g}, {box.y2:g}) of {lab.label!r} "
                 "clipped to the image")
            box = box.clipped()
        cx, cy = (box.x1 + box.x2) / 2 / w, (box.y1 + box.y2) / 2 / h
        values = (cx, cy, (box.x2 - box.x1) / w, (box.y2 - box.y1) / h)
        lines.append(" ".join([str(cls), *(fmt_num(v, decimals=_DECIMALS) for v in values)]))
    return lines


def parse_data_yaml(text: str, *, origin: str) -> Ontology:
    """The classes of a data.yaml: ``names`` as a list, or a mapping ``{0: name, 1: name, …}``.

    >>> parse_data_yaml("names: {0: cat, 1: dog}", origin="data.yaml").classes
    ('cat', 'dog')
    """
    try:
        data = yaml.safe_load(text)
    except (yaml.YAMLError, ValueError, RecursionError) as exc:  # ValueError: a date like 0000-00-00
        raise InputError(f"{origin}: not valid YAML: {exc}") from exc
    names = data.get("names") if isinstance(data, dict) else None
    if isinstance(names, dict):
        by_id = {k: str(v) for k, v in names.items() if isinstance(k, int) and not isinstance(k, bool)}
        if sorted(by_id) != list(range(len(names))):
            raise InputError(f"{origin}: names keys must be the class ids 0..{len(names) - 1}, got "
                             f"{', '.join(str(k) for k in names)}")
        names = [by_id[i] for i in range(len(by_id))]
    if not isinstance(names, list) or not names:
        raise InputError(f"{origin}: needs 'names', a list of class names or a mapping {{0: name, …}}")
    try:
        return Ontology(tuple(str(n) for n in names))
    except ValueError as exc:
        raise InputError(f"{origin}: {exc}") from exc


def read_yolo(root: Path | str) -> Dataset:
    """Read an Ultralytics dataset: ``data.yaml``, every image under ``images/``, labels under ``labels/``.

    ``images/train/a.jpg`` takes its labels from ``labels/train/a.txt``; an image without a label file is
    unlabeled. Image sizes come from the file headers. Unreadable images are skipped with a warning.
    """
    root = Path(root)
    yaml_path = next((root / n for n in ("data.yaml", "data.yml") if (root / n).is_file()), None)
    if yaml_path is None or not (root / "images").is_dir():
        raise InputError(f"{root}: a YOLO dataset needs data.yaml (with names) and an images/ folder")
    ontology = parse_data_yaml(_read_text(yaml_path), origin=str(yaml_path))
    images: list[ImageInfo] = []
    labels: list[Label] = []
    used: set[Path] = set()
    for rel in list_images(root / "images"):
        txt = (root / "labels" / rel).with_suffix(".txt")
        lines = _read_text(txt).splitlines() if txt.is_file() else []
        used.add(txt)
        if not any(line.strip() for line in lines):
            images.append(ImageInfo(rel))
            continue
        try:
            size = read_image_size(root / "images" / rel)
        except OSError as exc:
            warn(f"{root / 'images' / rel}: skipped with its labels, cannot read the image: {exc}")
            continue
        images.append(ImageInfo(rel, size))
        origin = txt.relative_to(root).as_posix()
        labels += parse_yolo_lines(lines, image=rel, image_size=size, ontology=ontology, origin=origin)
    orphans = sorted(p for p in (root / "labels").rglob("*.txt") if p not in used)
    if orphans:
        example = orphans[0].relative_to(root)
        warn(f"{root / 'labels'}: {len(orphans)} label file(s) have no image, e.g. {example}")
    return Dataset(images, labels, ontology)


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read: {exc}") from exc


def write_yolo(dataset: Dataset, src_images_root: Path | str, out_dir: Path | str, *,
               task: Literal["auto", "detect", "segment"] = "auto") -> None:
    """Write an Ultralytics dataset: images copied to ``out/images/``, ``labels/*.txt``, ``data.yaml``.

    ``task="auto"`` writes segments when every label has a mask (polygons or RLE), boxes otherwise.
    Images without labels get no label file (Ultralytics treats them as background).
    """
    src_root, out = Path(src_images_root), Path(out_dir)
    ds = with_image_sizes(dataset, src_root)
    segments = task == "segment" or (task == "auto" and all_masked(ds.labels))
    by_image = ds.labels_by_image()
    files: dict[str, str] = {}
    for info in ds.images:
        txt = PurePosixPath(info.path).with_suffix(".txt").as_posix()
        if files.setdefault(txt, info.path) != info.path:
            raise InputError(f"images {files[txt]} and {info.path} would share the label file labels/{txt}")
    sizes = {i.path: i.image_size for i in ds.images}
    contents: dict[str, list[str]] = {}  # formatted before anything is written, so a bad label writes nothing
    for txt, path in files.items():
        size = sizes[path]
        if by_image.get(path) and size is not None:
            contents[txt] = format_yolo_lines(by_image[path], image_size=size, ontology=ds.ontology,
                                              segments=segments)
    copy_images([i.path for i in ds.images], src_root, out / "images")
    for txt, lines in contents.items():
        target = out / "labels" / txt
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    (out / "data.yaml").write_text(yaml.safe_dump(_data_yaml(ds, out), sort_keys=False), encoding="utf-8")


def all_masked(labels: list[Label]) -> bool:
    """True when every label has a mask, so the whole dataset can be written as YOLO segments."""
    return bool(labels) and all(lab.mask is not None for lab in labels)


def _data_yaml(ds: Dataset, out: Path) -> dict[str, Any]:
    tops = {PurePosixPath(i.path).parts[0] for i in ds.images if len(PurePosixPath(i.path).parts) > 1}
    splits = {key: f"images/{folder}" for folder, key in SPLITS.items() if folder in tops}
    data: dict[str, Any] = {"path": str(out.resolve())}
    data["train"] = splits.get("train", "images")
    data["val"] = splits.get("val", data["train"])
    if "test" in splits:
        data["test"] = splits["test"]
    data["names"] = list(ds.ontology.classes)
    return data
