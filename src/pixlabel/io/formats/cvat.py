"""CVAT for images 1.1 XML: ``<annotations>`` with ``<meta>`` (the label list) and one ``<image>`` per image
holding ``<tag>`` (class labels), ``<box>``, ``<polygon>`` and ``<mask>`` shapes in pixels.

Boxes are ``xtl, ytl, xbr, ybr`` with the same 0-based continuous corners as COCO (CVAT's own COCO export
writes ``[xtl, ytl, xbr - xtl, ybr - ytl]``). A polygon is one ring ``x0,y0;x1,y1;…``; a mask is CVAT's
run-length code over the pixels of its box ``left, top, width, height`` (inclusive), row by row, starting
with a run of background. ``source="auto"`` marks model shapes and ``<attribute>`` children become label
attributes (an OCR transcript is ``<attribute name="text">``). CVAT has no confidence: model labels read
back as human ones (the XML is what a reviewer submitted). Rotated boxes become the upright box around
them; polylines, points, ellipses, cuboids and skeletons are skipped with a warning.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from pixlabel.errors import InputError
from pixlabel.io.formats._common import PathResolver, all_images, fmt_num, safe_relpath, text_number, warn
from pixlabel.io.formats._masks import bitmap_mask, mask_bitmap
from pixlabel.records import AttributeValue, Box, Dataset, ImageInfo, Label, Mask, Ontology, Provenance

try:  # defusedxml refuses entity-expansion bombs and external entities in untrusted files
    from defusedxml.ElementTree import fromstring as _fromstring
except ImportError:
    from xml.etree.ElementTree import fromstring as _fromstring  # type: ignore[assignment]

_SKIPPED = ("polyline", "points", "ellipse", "cuboid", "skeleton")


# -- reading ------------------------------------------------------------------------------------------------

def parse_cvat(text: str, *, origin: str, known: Mapping[str, tuple[int, int] | None] | None = None) -> Dataset:
    """A CVAT for images 1.1 XML document as a dataset of human labels.

    ``known`` maps the image paths to expect to their sizes; ``<image name>`` is resolved against them like a
    Label Studio URL (same path, path suffix, or unique file name), and one that matches none is an error.

    >>> ds = parse_cvat('<annotations><version>1.1</version><image id="0" name="a.jpg" width="40" '
    ...                 'height="30"><tag label="street" /><box label="car" xtl="1" ytl="2" xbr="11" ybr="7" />'
    ...                 '</image></annotations>', origin="task.xml")
    >>> [(x.label, x.box.xywh if x.box else None) for x in ds.labels], ds.ontology.classes
    ([('street', None), ('car', (1.0, 2.0, 10.0, 5.0))], ('street', 'car'))
    """
    try:
        root = _fromstring(text)
    except (ET.ParseError, ValueError) as exc:
        raise InputError(f"{origin}: not valid XML: {exc}") from exc
    if root.tag != "annotations":
        raise InputError(f"{origin}: expected CVAT's <annotations> root element, got <{root.tag}>")
    version = (root.findtext("version") or "1.1").strip()
    if version != "1.1":
        warn(f"{origin}: CVAT XML version {version}; read as 1.1")
    # The label list sits under meta/task, meta/job or meta/project depending on what was exported.
    names = [(el.text or "").strip() for el in root.iterfind("meta//labels/label/name")]
    images: list[ImageInfo] = []
    labels: list[Label] = []
    if root.find("track") is not None:
        warn(f"{origin}: <track> elements (CVAT for video) were skipped; export as 'CVAT for images 1.1'")
    resolver = PathResolver(known) if known is not None else None
    for number, el in enumerate(root.findall("image")):
        where = f"{origin} image id {el.get('id', number)}"
        info, found = _parse_image(el, where=where, resolver=resolver)
        images.append(info)
        labels.extend(found)
    classes = list(dict.fromkeys([*(n for n in names if n), *(x.label for x in labels)]))
    return Dataset(images, labels, Ontology(tuple(classes)))


def _parse_image(el: ET.Element, *, where: str, resolver: PathResolver | None) -> tuple[ImageInfo, list[Label]]:
    name = (el.get("name") or "").strip()
    if not name:
        raise InputError(f"{where}: <image> needs a name")
    if resolver is None:
        path = safe_relpath(name, origin=where)
    else:
        found = resolver.resolve(name.lstrip("/"))
        if found is None:
            raise InputError(f"{where}: image {name!r} is not in the workspace (no known path ends with it or "
                             "has its file name)")
        path = found
    width, height = text_number(el.get("width")), text_number(el.get("height"))
    if width is None or height is None or width <= 0 or height <= 0:
        raise InputError(f"{where}: width and height must be numbers > 0, got {el.get('width')!r} and "
                         f"{el.get('height')!r}")
    size = (int(height), int(width))
    labels = []
    for n, shape in enumerate(el, start=1):
        label = _parse_shape(shape, path=path, size=size, where=f"{where} <{shape.tag}> {n}")
        if label is not None:
            labels.append(label)
    return ImageInfo(path, size), labels


def _number(shape: ET.Element, key: str, *, where: str) -> float:
    value = text_number(shape.get(key))
    if value is None:
        raise InputError(f"{where}: {key} must be a number, got {shape.get(key)!r}")
    return value


def _parse_shape(shape: ET.Element, *, path: str, size: tuple[int, int], where: str) -> Label | None:
    if shape.tag in _SKIPPED:
        warn(f"{where}: {shape.tag} shapes are not supported and were skipped")
        return None
    if shape.tag not in ("tag", "box", "polygon", "mask"):
        return None  # unknown children (CVAT adds new ones over time) are read past
    name = (shape.get("label") or "").strip()
    if not name:
        raise InputError(f"{where}: missing label")
    attributes: dict[str, AttributeValue] = {
        str(a.get("name")): (a.text or "") for a in shape.findall("attribute") if a.get("name")}
    provenance = Provenance(source="human", labeler="cvat")
    if shape.tag == "tag":
        return Label(path, name, provenance=provenance, attributes=attributes)
    if shape.tag == "box":
        box = _box(shape, size, where=where)
        return None if box is None else Label(path, name, provenance=provenance, box=box, attributes=attributes)
    mask = _polygon(shape, size, where=where) if shape.tag == "polygon" else _mask(shape, size, where=where)
    return None if mask is None else Label(path, name, provenance=provenance, mask=mask, attributes=attributes)


def _box(shape: ET.Element, size: tuple[int, int], *, where: str) -> Box | None:
    x1, y1, x2, y2 = (_number(shape, k, where=where) for k in ("xtl", "ytl", "xbr", "ybr"))
    if x2 < x1 or y2 < y1:
        raise InputError(f"{where}: corners out of order (xtl {x1:g} > xbr {x2:g} or ytl {y1:g} > ybr {y2:g})")
    angle = text_number(shape.get("rotation")) or 0.0
    if angle % 360:
        # CVAT turns a box clockwise about its centre; keep the upright box around the turned one.
        cx, cy, hw, hh = (x1 + x2) / 2, (y1 + y2) / 2, (x2 - x1) / 2, (y2 - y1) / 2
        c, s = abs(math.cos(math.radians(angle))), abs(math.sin(math.radians(angle)))
        ex, ey = hw * c + hh * s, hw * s + hh * c
        x1, y1, x2, y2 = cx - ex, cy - ey, cx + ex, cy + ey
        warn(f"{where}: box rotated {angle:g} degrees; kept as the upright box around it")
    box = Box(x1, y1, x2, y2, image_size=size)
    clipped = box.clipped()
    if clipped.area <= 0:
        warn(f"{where}: dropped, its box has zero area inside the image")
        return None
    if clipped != box:
        warn(f"{where}: box clipped to the {size[1]}x{size[0]} image")
    return clipped


def _polygon(shape: ET.Element, size: tuple[int, int], *, where: str) -> Mask | None:
    flat: list[float] = []
    for pair in (shape.get("points") or "").split(";"):
        values = [text_number(v) for v in pair.split(",")]
        if len(values) != 2 or values[0] is None or values[1] is None:
            raise InputError(f"{where}: points must be 'x0,y0;x1,y1;…' numbers, got {pair!r}")
        flat.extend((min(max(values[0], 0.0), size[1]), min(max(values[1], 0.0), size[0])))
    if len(flat) < 6:
        warn(f"{where}: dropped, a polygon needs at least 3 points")
        return None
    return Mask(size, polygons=(tuple(flat),))


def _mask(shape: ET.Element, size: tuple[int, int], *, where: str) -> Mask | None:
    left, top, width, height = (int(_number(shape, k, where=where)) for k in ("left", "top", "width", "height"))
    try:
        runs = [int(v) for v in (shape.get("rle") or "").split(",")]
    except ValueError:
        raise InputError(f"{where}: rle must be comma-separated whole numbers") from None
    if any(r < 0 for r in runs) or sum(runs) != width * height or width <= 0 or height <= 0:
        raise InputError(f"{where}: rle runs must be >= 0 and sum to width*height = {width * height}")
    h, w = size
    if left < 0 or top < 0 or left + width > w or top + height > h:
        raise InputError(f"{where}: mask box left={left} top={top} width={width} height={height} leaves the "
                         f"{w}x{h} image")
    values = np.repeat(np.arange(len(runs)) % 2, runs).astype(np.uint8)  # background first, then object, …
    bitmap = np.zeros(size, np.uint8)
    bitmap[top:top + height, left:left + width] = values.reshape(height, width)
    if not bitmap.any():
        warn(f"{where}: dropped, the mask has no pixels")
        return None
    return bitmap_mask(bitmap)


# -- writing ------------------------------------------------------------------------------------------------

def format_cvat(dataset: Dataset) -> str:
    """CVAT for images 1.1 XML for ``dataset`` (every image needs a size).

    >>> box = Box(1, 2, 11, 7, image_size=(30, 40))
    >>> xml = format_cvat(Dataset([ImageInfo("a.jpg", (30, 40))], [Label("a.jpg", "car", box=box)],
    ...                           Ontology(("car",))))
    >>> '<box label="car" source="manual" occluded="0" xtl="1" ytl="2" xbr="11" ybr="7" z_order="0" />' in xml
    True
    """
    root = ET.Element("annotations")
    ET.SubElement(root, "version").text = "1.1"
    task = ET.SubElement(ET.SubElement(root, "meta"), "task")
    images = all_images(dataset)
    ET.SubElement(task, "size").text = str(len(images))
    ET.SubElement(task, "mode").text = "annotation"
    spec = ET.SubElement(task, "labels")
    attribute_names = sorted({k for x in dataset.labels for k in x.attributes})
    for name in dataset.ontology.classes:
        label = ET.SubElement(spec, "label")
        ET.SubElement(label, "name").text = name
        ET.SubElement(label, "type").text = "any"
        attrs = ET.SubElement(label, "attributes")
        for key in attribute_names:
            attr = ET.SubElement(attrs, "attribute")
            for tag, text in (("name", key), ("mutable", "False"), ("input_type", "text"),
                              ("default_value", ""), ("values", "")):
                ET.SubElement(attr, tag).text = text
    by_image = dataset.labels_by_image()
    for n, info in enumerate(images):
        if info.image_size is None:
            raise InputError(f"{info.path}: image size unknown; CVAT needs width and height")
        h, w = info.image_size
        el = ET.SubElement(root, "image", id=str(n), name=info.path, width=str(w), height=str(h))
        for lab in by_image.get(info.path, []):
            _format_shape(el, lab)
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _format_shape(parent: ET.Element, lab: Label) -> None:
    common = {"label": lab.label, "source": "manual" if lab.source == "human" else "auto"}
    if lab.box is None and lab.mask is None:
        shape = ET.SubElement(parent, "tag", common)
    elif lab.mask is None:
        assert lab.box is not None
        b = lab.box
        shape = ET.SubElement(parent, "box", {**common, "occluded": "0", "xtl": fmt_num(b.x1), "ytl": fmt_num(b.y1),
                                              "xbr": fmt_num(b.x2), "ybr": fmt_num(b.y2), "z_order": "0"})
    elif len(lab.mask.polygons) == 1:
        flat = lab.mask.polygons[0]
        points = ";".join(f"{fmt_num(x, decimals=2)},{fmt_num(y, decimals=2)}"
                          for x, y in zip(flat[0::2], flat[1::2], strict=True))
        shape = ET.SubElement(parent, "polygon", {**common, "occluded": "0", "points": points, "z_order": "0"})
    else:
        shape = _format_mask(parent, lab, common)
    for key, value in lab.attributes.items():
        ET.SubElement(shape, "attribute", name=key).text = str(value)


def _format_mask(parent: ET.Element, lab: Label, common: dict[str, str]) -> ET.Element:
    assert lab.mask is not None
    bitmap = mask_bitmap(lab.mask)
    rows, cols = np.nonzero(bitmap)
    if not len(rows):
        raise InputError(f"{lab.image}: a {lab.label!r} mask has no pixels; CVAT cannot store it")
    top, left, bottom, right = rows.min(), cols.min(), rows.max(), cols.max()
    flat = bitmap[top:bottom + 1, left:right + 1].ravel()  # row by row, as CVAT reads it
    edges = np.flatnonzero(np.diff(flat)) + 1
    runs = np.diff(np.concatenate([[0], edges, [flat.size]]))
    if flat[0]:
        runs = np.concatenate([[0], runs])  # the code starts with background
    return ET.SubElement(parent, "mask", {**common, "occluded": "0", "rle": ", ".join(str(int(r)) for r in runs),
                                          "left": str(left), "top": str(top), "width": str(right - left + 1),
                                          "height": str(bottom - top + 1), "z_order": "0"})


def read_cvat(path: Path | str, *, known: Mapping[str, tuple[int, int] | None] | None = None) -> Dataset:
    """Read a CVAT for images 1.1 ``annotations.xml``; errors name the file and the image id."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read the CVAT XML: {exc}") from exc
    return parse_cvat(text, origin=str(path), known=known)


def write_cvat(dataset: Dataset, path: Path | str) -> None:
    path = Path(path)
    text = format_cvat(dataset)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
