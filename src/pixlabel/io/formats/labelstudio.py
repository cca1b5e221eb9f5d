"""Label Studio tasks JSON: ``data.image`` plus ``predictions``/``annotations`` whose ``result`` regions hold
coordinates in percent of ``original_width``/``original_height``.

Written: one task per image; every label goes into one prediction (``choices`` for a class label,
``rectanglelabels`` for a box, ``polygonlabels`` for a polygon mask, ``brushlabels`` for a bitmap (RLE) mask,
a per-region ``textarea`` for a ``text`` attribute such as an OCR transcript), with ``score`` = calibrated
confidence and ``model_version`` from provenance. Human labels go there too (score 1): an ``annotation``
would look reviewed and, brought back, would wipe the model's boxes of its image. ``data.pixlabel_path``
keeps the image's own path so a round trip finds it whatever URL the images were served under.
:func:`format_labelstudio_config` writes the matching labeling config.

Read: Label Studio's JSON export (``[{"data": …, "annotations": […], "predictions": […]}]``). A task's latest
annotation that was not cancelled is its review (human labels, ``labeler`` = the annotator); a task without
one contributes its first prediction as model labels. Rotated rectangles become the boxes around them; brush
regions become bitmap masks (``_lsrle.py``); keypoint and ellipse regions are skipped with a warning.
"""

from __future__ import annotations

import json
import math
import re
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any, NamedTuple
from urllib.parse import parse_qs, quote, unquote, urlsplit

from pixlabel.errors import InputError
from pixlabel.io.formats._common import PathResolver, all_images, json_number, safe_relpath, warn
from pixlabel.io.formats._lsrle import decode_brush, encode_brush
from pixlabel.io.formats._masks import bitmap_mask, label_box, mask_bitmap, mask_polygon
from pixlabel.records import Box, Dataset, ImageInfo, Label, Mask, Ontology, Provenance

LOCAL_FILES = "/data/local-files/?d="  # Label Studio's local-storage URL; ?d= is relative to its document root
PATH_KEY = "pixlabel_path"
TEXT = "text"  # the attribute a per-region TextArea edits (OCR transcripts)
# from_name of each control in the labeling config we write.
CHOICE, RECT, POLY, BRUSH, TRANSCRIPT = "choice", "label", "polygon", "brush", "transcription"
_GEOMETRY_KEYS = ("x", "y", "width", "height", "rotation", "points")
_LABEL_KEYS = ("rectanglelabels", "polygonlabels", "labels", "brushlabels", "keypointlabels", "ellipselabels")


class ParsedTasks(NamedTuple):
    """What a Label Studio export says: its labels and the images a person reviewed (maybe to empty)."""

    dataset: Dataset
    reviewed: list[str]


# -- writing ------------------------------------------------------------------------------------------------

def image_url(path: str, *, prefix: str = LOCAL_FILES) -> str:
    """The URL Label Studio loads ``path`` from: ``prefix`` + the path, percent-encoded except ``/``.

    >>> image_url("cats/a b.jpg"), image_url("a.jpg", prefix="s3://bucket/imgs/")
    ('/data/local-files/?d=cats/a%20b.jpg', 's3://bucket/imgs/a.jpg')
    """
    return prefix + quote(path, safe="/")


def format_labelstudio(dataset: Dataset, *, url_prefix: str = LOCAL_FILES) -> list[dict[str, Any]]:
    """Label Studio tasks, one per image, every label as a prediction region.

    >>> box = Box(10, 5, 30, 25, image_size=(50, 100))
    >>> tasks = format_labelstudio(Dataset([ImageInfo("a.jpg", (50, 100))],
    ...     [Label("a.jpg", "cat", 0.8, Provenance(source="model", model_version="v1"), box=box)],
    ...     Ontology(("cat",))))
    >>> region = tasks[0]["predictions"][0]["result"][0]
    >>> region["type"], region["value"]["x"], region["value"]["width"], region["score"]
    ('rectanglelabels', 10.0, 20.0, 0.8)
    """
    tasks = []
    by_image = dataset.labels_by_image()
    for info in all_images(dataset):
        # Image attributes become data columns, which Label Studio's Data Manager filters and sorts on.
        extra = {k: v for k, v in info.attributes.items() if k not in ("image", PATH_KEY)}
        task: dict[str, Any] = {"data": {"image": image_url(info.path, prefix=url_prefix), PATH_KEY: info.path,
                                         **extra}}
        labels = by_image.get(info.path, [])
        if labels:
            result = [r for n, lab in enumerate(labels) for r in _regions(lab, f"{_region_id(info.path)}-{n}")]
            versions = Counter(lab.provenance.model_version or lab.provenance.labeler or lab.source
                               for lab in labels if lab.source != "human")
            task["predictions"] = [{
                "model_version": versions.most_common(1)[0][0] if versions else "human",
                "score": min(lab.confidence for lab in labels),
                "result": result,
            }]
        tasks.append(task)
    return tasks


def _region_id(path: str) -> str:
    return re.sub(r"[^A-Za-z0-9]", "", PurePosixPath(path).stem)[:8] or "img"


def _regions(lab: Label, region_id: str) -> list[dict[str, Any]]:
    base: dict[str, Any] = {"id": region_id, "to_name": "image", "score": lab.confidence}
    if lab.box is None and lab.mask is None:
        return [{**base, "from_name": CHOICE, "type": "choices", "value": {"choices": [lab.label]}}]
    geometry = lab.box or lab.mask
    assert geometry is not None
    h, w = geometry.image_size
    base |= {"original_width": w, "original_height": h, "image_rotation": 0}
    regions = []
    if lab.mask is not None and lab.mask.rle is not None:
        regions.append({**base, "from_name": BRUSH, "type": "brushlabels", "value": {
            "format": "rle", "rle": encode_brush(mask_bitmap(lab.mask)), "brushlabels": [lab.label]}})
    elif lab.mask is not None:
        flat = mask_polygon(lab.mask)
        if flat is None:
            warn(f"{lab.image}: a {lab.label!r} mask has no pixels; written as its box")
        else:
            points = [[x / w * 100, y / h * 100] for x, y in zip(flat[0::2], flat[1::2], strict=True)]
            value: dict[str, Any] = {"points": points, "closed": True}
            regions.append({**base, "from_name": POLY, "type": "polygonlabels",
                            "value": {**value, "polygonlabels": [lab.label]}})
    if not regions:
        box = label_box(lab)
        assert box is not None  # a mask always has a box around it
        value = {"x": box.x1 / w * 100, "y": box.y1 / h * 100, "width": (box.x2 - box.x1) / w * 100,
                 "height": (box.y2 - box.y1) / h * 100, "rotation": 0}
        regions.append({**base, "from_name": RECT, "type": "rectanglelabels",
                        "value": {**value, "rectanglelabels": [lab.label]}})
    text = lab.attributes.get(TEXT)
    if text is not None:
        shape = {k: v for k, v in regions[0]["value"].items() if k in _GEOMETRY_KEYS}
        regions.append({**base, "from_name": TRANSCRIPT, "type": "textarea", "value": {**shape, "text": [str(text)]}})
    return regions


def format_labelstudio_config(dataset: Dataset) -> str:
    """The labeling config (XML) whose controls match :func:`format_labelstudio`'s regions.

    >>> print(format_labelstudio_config(Dataset([], [Label("a.jpg", "cat")], Ontology(("cat", "dog")))))
    <View>
      <Image name="image" value="$image" />
      <Choices name="choice" toName="image" choice="single" showInline="true">
        <Choice value="cat" />
        <Choice value="dog" />
      </Choices>
    </View>
    """
    labels = dataset.labels
    has_class = any(x.box is None and x.mask is None for x in labels) or not labels
    view = ET.Element("View")
    ET.SubElement(view, "Image", name="image", value="$image")
    if has_class:
        choices = ET.SubElement(view, "Choices", name=CHOICE, toName="image", choice="single", showInline="true")
        for name in dataset.ontology.classes:
            ET.SubElement(choices, "Choice", value=name)
    # Boxes always: a reviewer may draw one on any image, and masks that have no pixels fall back to boxes.
    kinds = [("RectangleLabels", RECT)] if not has_class or any(x.box or x.mask for x in labels) else []
    if any(x.mask is not None and x.mask.rle is None for x in labels):
        kinds.append(("PolygonLabels", POLY))
    if any(x.mask is not None and x.mask.rle is not None for x in labels):
        kinds.append(("BrushLabels", BRUSH))
    for tag, name in kinds:
        control = ET.SubElement(view, tag, name=name, toName="image")
        for cls in dataset.ontology.classes:
            ET.SubElement(control, "Label", value=cls)
    if any(TEXT in x.attributes for x in labels):
        ET.SubElement(view, "TextArea", name=TRANSCRIPT, toName="image", editable="true", perRegion="true",
                      displayMode="region-list", placeholder="transcript")
    ET.indent(view)
    return ET.tostring(view, encoding="unicode")


def write_labelstudio(dataset: Dataset, path: Path | str, *, url_prefix: str = LOCAL_FILES) -> Path:
    """Write the tasks to ``path`` and the labeling config beside it (``<stem>.config.xml``); returns that."""
    path = Path(path)
    tasks = format_labelstudio(dataset, url_prefix=url_prefix)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(tasks, indent=1), encoding="utf-8")
    config = path.with_name(f"{path.stem}.config.xml")
    config.write_text(format_labelstudio_config(dataset) + "\n", encoding="utf-8")
    return config


# -- reading ------------------------------------------------------------------------------------------------

def image_reference(url: str) -> str:
    """The file path inside a Label Studio image URL (local-files ``?d=``, upload, http, s3, or a bare path).

    >>> image_reference("/data/local-files/?d=pets/cat%201.jpg"), image_reference("s3://b/x/y.png")
    ('pets/cat 1.jpg', 'x/y.png')
    """
    parts = urlsplit(url)
    found = parse_qs(parts.query).get("d")
    text = found[0] if found else unquote(parts.path)
    return text.lstrip("/")


def parse_labelstudio(data: Any, *, origin: str, known: Mapping[str, tuple[int, int] | None] | None = None
                      ) -> ParsedTasks:
    """Labels from a Label Studio JSON export (a list of tasks, or one task).

    ``known`` maps the image paths to expect to their ``(h, w)``: task images are resolved against them
    (``PathResolver``: same path, path suffix, or unique file name; an image that matches none is an error)
    and sizes fill in for regions without ``original_width``/``original_height``. Without it the path in the
    URL is taken as it is.

    >>> parsed = parse_labelstudio([{"id": 3, "data": {"image": "/data/local-files/?d=a.jpg"},
    ...     "annotations": [{"completed_by": 1, "result": [{"id": "r", "type": "rectanglelabels",
    ...         "from_name": "label", "to_name": "image", "original_width": 200, "original_height": 100,
    ...         "value": {"x": 10, "y": 20, "width": 50, "height": 50, "rectanglelabels": ["cat"]}}]}]}],
    ...     origin="export.json")
    >>> lab = parsed.dataset.labels[0]
    >>> lab.image, lab.label, lab.box.x1, lab.box.y2, lab.source, parsed.reviewed
    ('a.jpg', 'cat', 20.0, 70.0, 'human', ['a.jpg'])
    """
    tasks = [data] if isinstance(data, Mapping) else data
    if not isinstance(tasks, list):
        raise InputError(f"{origin}: expected a JSON list of Label Studio tasks, got {type(data).__name__}")
    images: dict[str, ImageInfo] = {}
    labels: list[Label] = []
    reviewed: list[str] = []
    resolver = PathResolver(known) if known is not None else None
    for index, task in enumerate(tasks):
        where = f"{origin} task {task.get('id', index) if isinstance(task, Mapping) else index}"
        if not isinstance(task, Mapping) or not isinstance(task.get("data"), Mapping):
            if isinstance(task, Mapping) and ("annotator" in task or "annotation_id" in task):
                raise InputError(f"{where}: this is Label Studio's JSON-MIN export; export the project as "
                                 "JSON (the full format with 'data' and 'annotations')")
            raise InputError(f"{where}: expected a task object with a 'data' object")
        path = _task_path(task["data"], where=where, resolver=resolver)
        size = known.get(path) if known is not None else None
        source = _pick(task, where=where)
        if source is None:
            images.setdefault(path, ImageInfo(path, size))
            continue
        kind, item = source
        found = _parse_result(item.get("result"), path=path, size=size,
                              provenance=_provenance(kind, item, where=where), where=where)
        sizes = [g.image_size for x in found for g in (x.box, x.mask) if g is not None]
        images.setdefault(path, ImageInfo(path, size or (sizes[0] if sizes else None)))
        labels.extend(found)
        if kind == "annotation":
            reviewed.append(path)
    names = dict.fromkeys(x.label for x in labels)
    return ParsedTasks(Dataset(list(images.values()), labels, Ontology(tuple(names))),
                       list(dict.fromkeys(reviewed)))


def _task_path(data: Mapping[str, Any], *, where: str, resolver: PathResolver | None) -> str:
    own = data.get(PATH_KEY)
    if isinstance(own, str) and own and (resolver is None or resolver.resolve(own) == own):
        return safe_relpath(own, origin=where)
    url = data.get("image")
    if not isinstance(url, str):  # a config whose <Image value="$img"> names another key
        url = next((v for k, v in data.items() if k != PATH_KEY and isinstance(v, str)
                    and PurePosixPath(urlsplit(v).path).suffix), None)
    if not isinstance(url, str) or not url:
        raise InputError(f"{where}: data has no image URL (expected data.image)")
    reference = image_reference(url)
    if resolver is None:
        return safe_relpath(reference, origin=where)
    path = resolver.resolve(reference)
    if path is None:
        raise InputError(f"{where}: image {url!r} is not in the workspace (no known path ends with "
                         f"{reference!r} or has its file name)")
    return path


def _pick(task: Mapping[str, Any], *, where: str) -> tuple[str, Mapping[str, Any]] | None:
    """The task's latest annotation that was not cancelled, else its first prediction, else None."""
    annotations = task.get("annotations") or []
    predictions = task.get("predictions") or []
    for key, items in (("annotations", annotations), ("predictions", predictions)):
        if not isinstance(items, list) or not all(isinstance(x, Mapping) for x in items):
            raise InputError(f"{where}: '{key}' must be a list of objects")
    done = [a for a in annotations if not a.get("was_cancelled")]
    if done:
        latest = max(enumerate(done), key=lambda t: (str(t[1].get("updated_at") or t[1].get("created_at") or ""),
                                                     t[0]))
        return "annotation", latest[1]
    return ("prediction", predictions[0]) if predictions else None


def _provenance(kind: str, item: Mapping[str, Any], *, where: str) -> Provenance:
    if kind == "prediction":
        return Provenance(source="model", labeler="label-studio", model_version=str(item.get("model_version") or ""))
    who = item.get("completed_by")
    if isinstance(who, Mapping):
        who = who.get("email") or who.get("id")
    return Provenance(source="human", labeler=f"label-studio:{who}" if who not in (None, "") else "label-studio")


def _parse_result(result: Any, *, path: str, size: tuple[int, int] | None, provenance: Provenance,
                  where: str) -> list[Label]:
    if not isinstance(result, list) or not all(isinstance(r, Mapping) for r in result):
        raise InputError(f"{where}: 'result' must be a list of region objects")
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for n, region in enumerate(result):
        groups.setdefault(str(region.get("id", f"#{n}")), []).append(region)
    labels: list[Label] = []
    image_text: list[str] = []
    for region_id, parts in groups.items():
        label = _parse_region(parts, path=path, size=size, provenance=provenance,
                              where=f"{where} region {region_id}")
        if isinstance(label, str):
            image_text.append(label)
        elif label is not None:
            labels.append(label)
    if image_text:
        class_labels = [i for i, x in enumerate(labels) if x.box is None and x.mask is None]
        if class_labels:
            i = class_labels[0]
            labels[i] = Label(path, labels[i].label, labels[i].confidence, provenance,
                              attributes={**labels[i].attributes, TEXT: "\n".join(image_text)})
        else:
            warn(f"{where}: image-level text without a class label skipped")
    return labels


def _parse_region(parts: list[Mapping[str, Any]], *, path: str, size: tuple[int, int] | None,
                  provenance: Provenance, where: str) -> Label | str | None:
    """One region (the results sharing an id) as a label; a bare image-level text comes back as a str."""
    names: list[str] = []
    texts: list[str] = []
    choices: list[str] = []
    geometry: tuple[str, Mapping[str, Any], Mapping[str, Any]] | None = None
    score: float | None = None
    for part in parts:
        value = part.get("value")
        kind = str(part.get("type", ""))
        if not isinstance(value, Mapping):
            raise InputError(f"{where}: 'value' must be an object, got {value!r}")
        for key in _LABEL_KEYS:
            names.extend(_strings(value.get(key), where=f"{where} {key}"))
        choices.extend(_strings(value.get("choices"), where=f"{where} choices"))
        texts.extend(_strings(value.get("text"), where=f"{where} text"))
        if kind in ("keypointlabels", "keypoint", "ellipselabels", "ellipse"):
            warn(f"{where}: {kind} regions are not supported and were skipped")
            return None
        if geometry is None and "rle" in value:
            geometry = ("brush", value, part)
        elif geometry is None and ("points" in value or "width" in value):
            geometry = ("polygon" if "points" in value else "rectangle", value, part)
        if "score" in part:
            score = json_number(part["score"])
    if geometry is None:
        if len(choices) > 1:
            raise InputError(f"{where}: {len(choices)} choices ({', '.join(choices)}); pixlabel keeps one class "
                             "label per image")
        if choices:
            return Label(path, choices[0], _confidence(score, provenance, where=where), provenance,
                         attributes={TEXT: "\n".join(texts)} if texts else {})
        return "\n".join(texts) if texts else None
    kind, value, part = geometry
    image_size = _region_size(part, size, where=where)
    label = names[0] if names else (TEXT if texts else "")
    if len(set(names)) > 1:
        raise InputError(f"{where}: a region has {len(set(names))} labels ({', '.join(names)}); expected one")
    if not label:
        warn(f"{where}: a {kind} without a label was skipped")
        return None
    attrs: dict[str, str] = {TEXT: "\n".join(texts)} if texts else {}
    if choices:
        attrs[str(part.get("from_name") or "choice")] = ",".join(choices)
    confidence = _confidence(score, provenance, where=where)
    if kind == "polygon":
        mask = _polygon(value.get("points"), image_size, where=where)
        return Label(path, label, confidence, provenance, mask=mask, attributes=attrs)
    if kind == "brush":
        brush = _brush(value, image_size, where=where)
        return None if brush is None else Label(path, label, confidence, provenance, mask=brush, attributes=attrs)
    return Label(path, label, confidence, provenance, box=_rectangle(value, image_size, where=where),
                 attributes=attrs)


def _strings(value: Any, *, where: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InputError(f"{where}: expected a list of strings, got {value!r}")
    return list(value)


def _confidence(score: float | None, provenance: Provenance, *, where: str) -> float:
    if provenance.source == "human" or score is None:
        return 1.0
    if not 0.0 <= score <= 1.0:
        raise InputError(f"{where}: score must be a number from 0 to 1, got {score}")
    return score


def _region_size(part: Mapping[str, Any], size: tuple[int, int] | None, *, where: str) -> tuple[int, int]:
    w, h = json_number(part.get("original_width")), json_number(part.get("original_height"))
    if w is not None and h is not None and w > 0 and h > 0:
        return (int(h), int(w))
    if size is None:
        raise InputError(f"{where}: needs original_width and original_height (pixels) to place the region")
    return size


def _pixels(percent: float, side: int) -> float:
    """Percent of a side in pixels, to a millionth of a pixel: a box that went to percent and back is the box
    it was (10 px, not 9.999999999999998)."""
    return round(percent * side / 100, 6)


def _percent(value: Mapping[str, Any], key: str, *, where: str) -> float:
    number = json_number(value.get(key))
    if number is None:
        raise InputError(f"{where}: value.{key} must be a number (percent of the image), got {value.get(key)!r}")
    return number


def _rectangle(value: Mapping[str, Any], size: tuple[int, int], *, where: str) -> Box:
    h, w = size
    x, y = _pixels(_percent(value, "x", where=where), w), _pixels(_percent(value, "y", where=where), h)
    bw, bh = _pixels(_percent(value, "width", where=where), w), _pixels(_percent(value, "height", where=where), h)
    if bw < 0 or bh < 0:
        raise InputError(f"{where}: width and height must be >= 0")
    angle = json_number(value.get("rotation")) or 0.0
    if angle % 360:
        # Label Studio turns a rectangle clockwise about its top-left corner; keep the box around it.
        c, s = math.cos(math.radians(angle)), math.sin(math.radians(angle))
        xs = [x + dx * c - dy * s for dx, dy in ((0, 0), (bw, 0), (bw, bh), (0, bh))]
        ys = [y + dx * s + dy * c for dx, dy in ((0, 0), (bw, 0), (bw, bh), (0, bh))]
        warn(f"{where}: rectangle rotated {angle:g} degrees; kept as the upright box around it")
        box = Box(min(xs), min(ys), max(xs), max(ys), image_size=size)
    else:
        box = Box(x, y, round(x + bw, 6), round(y + bh, 6), image_size=size)
    clipped = box.clipped()
    if clipped != box:
        warn(f"{where}: rectangle clipped to the {w}x{h} image")
    return clipped


def _polygon(points: Any, size: tuple[int, int], *, where: str) -> Mask:
    h, w = size
    if not isinstance(points, list) or len(points) < 3:
        raise InputError(f"{where}: polygon points must be a list of at least 3 [x, y] percent pairs")
    flat: list[float] = []
    for point in points:
        pair = [json_number(v) for v in point] if isinstance(point, list) else []
        if len(pair) != 2 or pair[0] is None or pair[1] is None:
            raise InputError(f"{where}: polygon point {point!r} must be [x, y] in percent")
        flat.extend((_pixels(min(max(pair[0], 0.0), 100.0), w), _pixels(min(max(pair[1], 0.0), 100.0), h)))
    return Mask(size, polygons=(tuple(flat),))


def _brush(value: Mapping[str, Any], size: tuple[int, int], *, where: str) -> Mask | None:
    if value.get("format", "rle") != "rle" or not isinstance(value.get("rle"), list):
        raise InputError(f"{where}: a brush region needs value.format 'rle' and value.rle, a list of bytes")
    try:
        bitmap = decode_brush(value["rle"], size)
    except ValueError as exc:
        raise InputError(f"{where}: cannot decode the brush mask: {exc}") from exc
    if not bitmap.any():
        warn(f"{where}: dropped, the brush mask has no pixels")
        return None
    return bitmap_mask(bitmap)


def read_labelstudio(path: Path | str, *, known: Mapping[str, tuple[int, int] | None] | None = None
                     ) -> ParsedTasks:
    """Read a Label Studio JSON export; errors name the file and the task id."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"{path}: cannot read the Label Studio export: {exc}") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not valid JSON: {exc}") from exc
    return parse_labelstudio(data, origin=str(path), known=known)
