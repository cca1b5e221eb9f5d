"""Pascal VOC XML: one ``Annotations/<name>.xml`` per image, images in ``JPEGImages/`` (or beside the XML).

VOC pixel coordinates are 1-based and inclusive: a box over a whole W x H image is ``xmin=1, xmax=W``. Our
boxes are 0-based continuous corners, as in COCO, where that box is ``(0, 0, W, H)``. So parsing subtracts 1
from ``xmin`` and ``ymin`` and formatting adds it back: round trips are exact and COCO boxes line up. VOC has
no class list, no confidence and no masks; ``difficult`` and ``truncated`` flags are read past.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path, PurePosixPath

from PIL import Image

from pixlabel.errors import InputError
from pixlabel.io.formats._common import (
    copy_images,
    fmt_num,
    list_images,
    safe_relpath,
    text_number,
    warn,
    with_image_sizes,
)
from pixlabel.io.formats._masks import label_box
from pixlabel.records import Box, Dataset, ImageInfo, Label, Ontology, Provenance

try:  # defusedxml refuses entity-expansion bombs and external entities in untrusted files
    from defusedxml.ElementTree import fromstring as _fromstring
except ImportError:
    from xml.etree.ElementTree import fromstring as _fromstring  # type: ignore[assignment]

_CORNERS = ("xmin", "ymin", "xmax", "ymax")


def parse_voc_xml(text: str, *, origin: str) -> tuple[ImageInfo, list[Label]]:
    """The image and its labels from one VOC annotation; objects without ``bndbox`` become class labels.

    >>> info, labels = parse_voc_xml(
    ...     "<annotation><filename>a.jpg</filename><size><width>40</width><height>30</height></size>"
    ...     "<object><name>cat</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>40</xmax><ymax>30</ymax>"
    ...     "</bndbox></object></annotation>", origin="a.xml")
    >>> info.path, info.image_size, labels[0].box.xywh
    ('a.jpg', (30, 40), (0.0, 0.0, 40.0, 30.0))
    """
    try:
        root = _fromstring(text)
    except (ET.ParseError, ValueError) as exc:
        raise InputError(f"{origin}: not valid XML: {exc}") from exc
    if root.tag != "annotation":
        raise InputError(f"{origin}: expected an <annotation> root element, got <{root.tag}>")
    filename = (root.findtext("filename") or "").strip()
    if not filename:
        raise InputError(f"{origin}: missing <filename>")
    path = safe_relpath(filename, origin=origin)
    width, height = (text_number(root.findtext(f"size/{k}")) for k in ("width", "height"))
    if width is None or height is None or width <= 0 or height <= 0 or not (width.is_integer()
                                                                            and height.is_integer()):
        raise InputError(f"{origin}: <size> needs <width> and <height> as whole numbers > 0, got "
                         f"{root.findtext('size/width')!r} and {root.findtext('size/height')!r}")
    size = (int(height), int(width))
    labels = []
    for number, obj in enumerate(root.findall("object"), start=1):
        where = f"{origin} object {number}"
        name = (obj.findtext("name") or "").strip()
        if not name:
            raise InputError(f"{where}: missing <name>")
        bndbox = obj.find("bndbox")
        box = None if bndbox is None else _parse_bndbox(bndbox, image_size=size, where=where)
        if bndbox is not None and box is None:
            continue  # zero area: already warned
        labels.append(Label(path, name, provenance=Provenance(source="human"), box=box))
    return ImageInfo(path, size), labels


def _parse_bndbox(bndbox: ET.Element, *, image_size: tuple[int, int], where: str) -> Box | None:
    values = []
    for corner in _CORNERS:
        raw = bndbox.findtext(corner)
        value = text_number(raw)
        if value is None:
            raise InputError(f"{where}: bndbox/{corner} must be a number, got {raw!r}")
        values.append(value)
    xmin, ymin, xmax, ymax = values
    if xmax < xmin - 1 or ymax < ymin - 1:
        raise InputError(f"{where}: bndbox corners out of order: xmin={xmin:g} ymin={ymin:g} "
                         f"xmax={xmax:g} ymax={ymax:g}")
    box = Box(xmin - 1, ymin - 1, xmax, ymax, image_size=image_size)
    clipped = box.clipped()
    if clipped.area <= 0:
        warn(f"{where}: dropped, its box has zero area inside the image")
        return None
    if clipped != box:
        warn(f"{where}: bndbox clipped to the {image_size[1]}x{image_size[0]} image")
    return clipped


def format_voc_xml(image: ImageInfo, labels: Iterable[Label], *, depth: int = 3) -> str:
    """One VOC annotation for ``image`` (its size must be known); every label needs a box or a mask.

    >>> xml = format_voc_xml(ImageInfo("a.jpg", (30, 40)), [Label("a.jpg", "cat", box=Box(0, 0, 40, 30,
    ...                      image_size=(30, 40)))])
    >>> "<xmin>1</xmin>" in xml and "<xmax>40</xmax>" in xml
    True
    """
    if image.image_size is None:
        raise InputError(f"{image.path}: image size unknown; VOC needs width and height")
    h, w = image.image_size
    root = ET.Element("annotation")
    _sub(root, "folder", "JPEGImages")
    _sub(root, "filename", image.path)
    size = _sub(root, "size")
    for key, value in (("width", w), ("height", h), ("depth", depth)):
        _sub(size, key, str(value))
    _sub(root, "segmented", "0")
    for lab in labels:
        box = label_box(lab)
        if box is None:
            raise InputError(f"{lab.image}: label {lab.label!r} has no box and VOC objects need one; "
                             "write class labels with --to imagefolder or --to csv")
        obj = _sub(root, "object")
        for key, text in (("name", lab.label), ("pose", "Unspecified"), ("truncated", "0"),
                          ("difficult", "0")):
            _sub(obj, key, text)
        bndbox = _sub(obj, "bndbox")
        for key, corner in zip(_CORNERS, (box.x1 + 1, box.y1 + 1, box.x2, box.y2), strict=True):
            _sub(bndbox, key, fmt_num(corner))
    ET.indent(root)
    return ET.tostring(root, encoding="unicode") + "\n"


def _sub(parent: ET.Element, tag: str, text: str | None = None) -> ET.Element:
    element = ET.SubElement(parent, tag)
    element.text = text
    return element


def voc_image_root(root: Path | str) -> Path:
    """The folder VOC image paths are relative to: ``JPEGImages/`` beside ``Annotations/``, else ``root``."""
    root = Path(root)
    both = (root / "Annotations").is_dir() and (root / "JPEGImages").is_dir()
    return root / "JPEGImages" if both else root


def read_voc(root: Path | str) -> Dataset:
    """Read ``Annotations/**/*.xml`` with images in ``JPEGImages/`` (else ``root``), or XML beside images.

    Images without an XML file are unlabeled. Dataset paths are relative to the image folder.
    """
    root = Path(root)
    annotations = root / "Annotations"
    beside = not annotations.is_dir()
    xml_root = root if beside else annotations
    image_root = voc_image_root(root)
    xml_files = sorted(xml_root.rglob("*.xml")) if root.is_dir() else []
    if not xml_files:
        raise InputError(f"{root}: no VOC annotations found (expected Annotations/*.xml, or .xml files "
                         "beside the images)")
    images: dict[str, ImageInfo] = {}
    labels: list[Label] = []
    source_of: dict[str, Path] = {}
    for xml_file in xml_files:
        origin = xml_file.relative_to(root).as_posix()
        try:
            text = xml_file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"{origin}: cannot read: {exc}") from exc
        info, found = parse_voc_xml(text, origin=origin)
        if beside:  # a LabelImg-style file names its image relative to its own folder
            folder = xml_file.parent.relative_to(root).as_posix()
            path = PurePosixPath(folder, info.path).as_posix() if folder != "." else info.path
            info, found = ImageInfo(path, info.image_size), [replace(lab, image=path) for lab in found]
        if info.path in source_of:
            raise InputError(f"{origin}: image {info.path} is also annotated by {source_of[info.path]}")
        source_of[info.path] = xml_file.relative_to(root)
        images[info.path] = info
        labels += found
    for rel in list_images(image_root):
        images.setdefault(rel, ImageInfo(rel))
    return Dataset(list(images.values()), labels, Ontology.from_labels(lab.label for lab in labels))


def _depth(path: Path) -> int:
    try:
        with Image.open(path) as im:
            return len(im.getbands())
    except OSError:
        return 3  # the size was read, so this is a header quirk; 3 is what VOC itself nearly always says


def write_voc(dataset: Dataset, src_root: Path | str, out_dir: Path | str) -> None:
    """Write ``out/Annotations/*.xml``, images in ``out/JPEGImages/``, ``ImageSets/Main/trainval.txt``.

    Only labelled images get an XML file (an image without one reads back as unlabeled). Image paths with
    folders keep them under both ``Annotations/`` and ``JPEGImages/``.
    """
    src, out = Path(src_root), Path(out_dir)
    ds = with_image_sizes(dataset, src)
    by_image = ds.labels_by_image()
    documents: dict[str, str] = {}  # annotation id (path without suffix) -> XML, all built before writing
    owner: dict[str, str] = {}
    for info in ds.images:
        if not by_image.get(info.path):
            continue
        stem = PurePosixPath(info.path).with_suffix("").as_posix()
        if owner.setdefault(stem, info.path) != info.path:
            raise InputError(f"images {owner[stem]} and {info.path} would share Annotations/{stem}.xml")
        documents[stem] = format_voc_xml(info, by_image[info.path], depth=_depth(src / info.path))
    copy_images([i.path for i in ds.images], src, out / "JPEGImages")
    for stem, text in documents.items():
        target = out / "Annotations" / f"{stem}.xml"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    (out / "ImageSets" / "Main").mkdir(parents=True, exist_ok=True)
    (out / "ImageSets" / "Main" / "trainval.txt").write_text("".join(f"{s}\n" for s in documents))
