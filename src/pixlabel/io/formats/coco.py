"""COCO instances JSON: ``images``, ``categories``, ``annotations`` with ``bbox`` ``[x, y, w, h]`` in pixels.

Category ids in a file are arbitrary; classes are kept by name, ordered by id. An annotation with a ``score``
is a model prediction (``source="model"``, confidence = score); written model labels carry ``score`` again.
Crowd annotations (``iscrowd=1``) mark a region of many objects rather than one instance and are skipped, as
Ultralytics' converter does. Label attributes (an OCR transcript ``text``, …) travel as an annotation's
``attributes`` object, the place CVAT's and Datumaro's COCO exports give them; image attributes (colours,
sharpness, …) as an image entry's.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pixlabel.errors import InputError
from pixlabel.io.formats._common import all_images, json_number, safe_relpath, warn
from pixlabel.io.formats._masks import compress_rle, label_box, mask_area, mask_box
from pixlabel.records import Box, Dataset, ImageInfo, Label, Mask, Ontology, Provenance


def parse_coco(data: Mapping[str, Any], *, origin: str) -> Dataset:
    """Parse a decoded COCO instances file; ``origin`` (usually the file name) starts every error message.

    >>> ds = parse_coco({"images": [{"id": 7, "file_name": "a.jpg", "width": 40, "height": 30}],
    ...                  "categories": [{"id": 3, "name": "cat"}],
    ...                  "annotations": [{"id": 1, "image_id": 7, "category_id": 3, "bbox": [1, 2, 10, 5]}]},
    ...                 origin="instances.json")
    >>> ds.labels[0].label, ds.labels[0].box.xywh, ds.images[0].image_size
    ('cat', (1.0, 2.0, 10.0, 5.0), (30, 40))
    """
    if not isinstance(data, Mapping):
        raise InputError(f"{origin}: expected a JSON object with images, categories and annotations, "
                         f"got {type(data).__name__}")
    images = _parse_images(_list(data, "images", origin=origin), origin=origin)
    names = _parse_categories(_list(data, "categories", origin=origin), origin=origin)
    labels: list[Label] = []
    crowd = 0
    for index, ann in enumerate(_list(data, "annotations", origin=origin, required=False)):
        if isinstance(ann, Mapping) and ann.get("iscrowd"):
            crowd += 1
            continue
        label = _parse_annotation(ann, index=index, images=images, names=names, origin=origin)
        if label is not None:
            labels.append(label)
    if crowd:
        warn(f"{origin}: skipped {crowd} crowd annotation(s) (iscrowd=1): they mark groups, not one object")
    return Dataset(list(images.values()), labels, Ontology(tuple(dict.fromkeys(names.values()))))


def _list(data: Mapping[str, Any], key: str, *, origin: str, required: bool = True) -> list[Any]:
    value = data.get(key, None if required else [])
    if not isinstance(value, list):
        got = "nothing" if value is None else type(value).__name__
        raise InputError(f"{origin}: '{key}' must be a list, got {got}")
    return value


def _int(value: object) -> int | None:
    number = json_number(value)
    return int(number) if number is not None and number.is_integer() else None


def _parse_images(items: list[Any], *, origin: str) -> dict[int, ImageInfo]:
    images: dict[int, ImageInfo] = {}
    for index, item in enumerate(items):
        image_id = _int(item.get("id")) if isinstance(item, Mapping) else None
        where = f"{origin} image id {image_id}" if image_id is not None else f"{origin} images[{index}]"
        if not isinstance(item, Mapping) or image_id is None:
            raise InputError(f"{where}: expected an object with an integer id, file_name, width and height")
        name, width, height = item.get("file_name"), _int(item.get("width")), _int(item.get("height"))
        if not isinstance(name, str) or not name:
            raise InputError(f"{where}: file_name must be a non-empty string, got {name!r}")
        name = safe_relpath(name, origin=where)  # no absolute paths or '..': images come from the image root
        if width is None or height is None or width <= 0 or height <= 0:
            raise InputError(f"{where}: width and height must be whole numbers > 0, "
                             f"got {item.get('width')!r} and {item.get('height')!r}")
        if image_id in images:
            raise InputError(f"{where}: the id is used by two images ({images[image_id].path} and {name})")
        attributes = item.get("attributes") or {}
        if not isinstance(attributes, Mapping) or not all(
                isinstance(v, str | int | float | bool) for v in attributes.values()):
            raise InputError(f"{where}: attributes must be an object of strings, numbers or booleans")
        images[image_id] = ImageInfo(name, (height, width), image_id, dict(attributes))
    return images


def _parse_categories(items: list[Any], *, origin: str) -> dict[int, str]:
    names: dict[int, str] = {}
    for index, item in enumerate(items):
        cat_id = _int(item.get("id")) if isinstance(item, Mapping) else None
        name = item.get("name") if isinstance(item, Mapping) else None
        if cat_id is None or not isinstance(name, str) or not name:
            raise InputError(f"{origin} categories[{index}]: expected an integer id and a non-empty name, "
                             f"got {item!r}")
        if cat_id in names:
            raise InputError(f"{origin} category id {cat_id}: used twice ({names[cat_id]} and {name})")
        names[cat_id] = name
    return dict(sorted(names.items()))


def _parse_annotation(ann: Any, *, index: int, images: Mapping[int, ImageInfo], names: Mapping[int, str],
                      origin: str) -> Label | None:
    ann_id = ann.get("id") if isinstance(ann, Mapping) else None
    where = f"{origin} annotation id {ann_id}" if ann_id is not None else f"{origin} annotations[{index}]"
    if not isinstance(ann, Mapping):
        raise InputError(f"{where}: expected an object, got {ann!r}")
    image_id, category_id = _int(ann.get("image_id")), _int(ann.get("category_id"))
    image = images.get(image_id) if image_id is not None else None
    if image is None or image.image_size is None:
        raise InputError(f"{where}: unknown image_id {ann.get('image_id')!r}")
    name = names.get(category_id) if category_id is not None else None
    if name is None:
        known = ", ".join(str(k) for k in names)
        raise InputError(f"{where}: unknown category_id {ann.get('category_id')!r}; known: {known}")
    size = image.image_size
    mask = _parse_segmentation(ann.get("segmentation"), image_size=size, where=where)
    box = _parse_bbox(ann, image_size=size, mask=mask, where=where)
    clipped = box.clipped()
    if clipped.area <= 0:
        warn(f"{where}: dropped, its box has zero area inside the image ({_show(box.xywh)})")
        return None
    if clipped != box:
        warn(f"{where}: bbox {_show(box.xywh)} clipped to the {size[1]}x{size[0]} image")
    provenance, confidence = Provenance(source="human"), 1.0
    if "score" in ann:
        score = json_number(ann["score"])
        if score is None or not 0.0 <= score <= 1.0:
            raise InputError(f"{where}: score must be a number from 0 to 1, got {ann['score']!r}")
        provenance, confidence = Provenance(source="model"), score
    attributes = ann.get("attributes") or {}
    if not isinstance(attributes, Mapping) or not all(
            isinstance(v, str | int | float | bool) for v in attributes.values()):
        raise InputError(f"{where}: attributes must be an object of strings, numbers or booleans, "
                         f"got {attributes!r}")
    return Label(image.path, name, confidence, provenance, box=clipped, mask=mask, attributes=dict(attributes))


def _show(values: tuple[float, ...]) -> str:
    return "[" + ", ".join(f"{v:g}" for v in values) + "]"


def _parse_bbox(ann: Mapping[str, Any], *, image_size: tuple[int, int], mask: Mask | None, where: str) -> Box:
    raw = ann.get("bbox")
    if raw is None:
        if mask is None:
            raise InputError(f"{where}: needs a bbox [x, y, w, h] or a segmentation")
        return mask_box(mask)
    values = [json_number(v) for v in raw] if isinstance(raw, list) else []
    if len(values) != 4 or any(v is None for v in values):
        raise InputError(f"{where}: bbox must be 4 numbers [x, y, w, h], got {raw!r}")
    x, y, w, h = (float(v or 0.0) for v in values)
    if w < 0 or h < 0:
        raise InputError(f"{where}: bbox width and height must be >= 0, got {raw!r}")
    return Box.from_xywh(x, y, w, h, image_size=image_size)


def _parse_segmentation(seg: Any, *, image_size: tuple[int, int], where: str) -> Mask | None:
    if seg is None or seg == []:
        return None
    if isinstance(seg, list):
        polygons = []
        for i, poly in enumerate(seg):
            values = [json_number(v) for v in poly] if isinstance(poly, list) else []
            if len(values) < 6 or len(values) % 2 or any(v is None for v in values):
                raise InputError(f"{where}: segmentation polygon {i} must be an even number (>= 6) of "
                                 "coordinates x0, y0, x1, y1, …")
            polygons.append(tuple(float(v or 0.0) for v in values))
        return Mask(image_size, polygons=tuple(polygons))
    if isinstance(seg, Mapping):
        counts, size = seg.get("counts"), seg.get("size")
        if size != list(image_size):
            raise InputError(f"{where}: RLE size {size!r} differs from the image [h, w] {list(image_size)}")
        if isinstance(counts, list):
            ints = [_int(c) for c in counts]
            pixels = image_size[0] * image_size[1]
            if any(c is None or c < 0 for c in ints) or sum(c or 0 for c in ints) != pixels:
                raise InputError(f"{where}: uncompressed RLE counts must be whole numbers >= 0 "
                                 f"summing to h*w = {pixels}")
        elif not isinstance(counts, str) or not counts:
            raise InputError(f"{where}: RLE counts must be a list of run lengths or a compressed string")
        return Mask(image_size, rle=compress_rle(seg, image_size))
    raise InputError(f"{where}: segmentation must be a list of polygons or an RLE object, "
                     f"got {type(seg).__name__}")


def format_coco(dataset: Dataset) -> dict[str, Any]:
    """A COCO instances dict. Image ids read from a COCO file are kept; categories are 1..K in ontology order.

    Every image needs a known size and every label a box or mask (COCO has no image-level class).

    >>> box = Box(1, 2, 11, 7, image_size=(30, 40))
    >>> out = format_coco(Dataset([ImageInfo("a.jpg", (30, 40))], [Label("a.jpg", "cat", box=box)],
    ...                           Ontology(("cat",))))
    >>> out["annotations"][0]["bbox"], out["categories"]
    ([1.0, 2.0, 10.0, 5.0], [{'id': 1, 'name': 'cat'}])
    """
    images = all_images(dataset)
    taken = [i.image_id for i in images if i.image_id is not None]
    if len(set(taken)) != len(taken):
        raise InputError("image ids must be unique to write COCO; drop the ids to have them renumbered")
    next_id = max(taken, default=0) + 1
    ids: dict[str, int] = {}
    out_images = []
    for info in images:
        if info.image_size is None:
            raise InputError(f"{info.path}: image size unknown; COCO needs width and height")
        if info.image_id is None:
            ids[info.path], next_id = next_id, next_id + 1
        else:
            ids[info.path] = info.image_id
        h, w = info.image_size
        entry: dict[str, Any] = {"id": ids[info.path], "file_name": info.path, "width": w, "height": h}
        if info.attributes:
            entry["attributes"] = dict(info.attributes)
        out_images.append(entry)
    annotations = [_format_annotation(lab, i, image_id=ids[lab.image], ontology=dataset.ontology)
                   for i, lab in enumerate(dataset.labels, start=1)]
    categories = [{"id": i, "name": name} for i, name in enumerate(dataset.ontology.classes, start=1)]
    return {"info": {"description": "written by pixlabel"}, "licenses": [], "images": out_images,
            "categories": categories, "annotations": annotations}


def _format_annotation(lab: Label, ann_id: int, *, image_id: int, ontology: Ontology) -> dict[str, Any]:
    try:
        category_id = ontology.index(lab.label) + 1
    except (KeyError, ValueError):
        raise InputError(f"{lab.image}: {ontology.describe_unknown(lab.label)}") from None
    box = label_box(lab)
    if box is None:
        raise InputError(f"{lab.image}: label {lab.label!r} has no box or mask and COCO annotations need "
                         "one; write class labels with --to imagefolder or --to csv")
    segmentation: Any = []
    if lab.mask is not None and lab.mask.rle is not None:
        segmentation = compress_rle(lab.mask.rle, lab.mask.image_size)
    elif lab.mask is not None:
        segmentation = [list(p) for p in lab.mask.polygons]
    ann: dict[str, Any] = {
        "id": ann_id, "image_id": image_id, "category_id": category_id,
        "bbox": [float(v) for v in box.xywh],
        "area": mask_area(lab.mask) if lab.mask is not None else float(box.area),
        "iscrowd": 0, "segmentation": segmentation,
    }
    if lab.source == "model":
        ann["score"] = lab.confidence
    if lab.attributes:
        ann["attributes"] = dict(lab.attributes)
    return ann


def read_coco(path: Path | str) -> Dataset:
    """Read a COCO instances JSON file; errors name the file and the annotation id."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"{path}: cannot read COCO file: {exc}") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not valid JSON: {exc}") from exc
    return parse_coco(data, origin=str(path))


def write_coco(dataset: Dataset, path: Path | str) -> None:
    """Write :func:`format_coco` output as JSON to ``path``, creating its folder."""
    path = Path(path)
    data = format_coco(dataset)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data), encoding="utf-8")
