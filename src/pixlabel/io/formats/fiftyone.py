"""FiftyOne's serialized dataset directory: ``metadata.json`` + ``samples.json`` of ``Sample.to_dict()`` records.

``fo.Dataset.from_dir(DIR, dataset_type=fo.types.FiftyOneDataset)`` loads it: a ``metadata.json`` without a
``version`` key sends FiftyOne to its JSON-only reader (``LegacyFiftyOneDatasetImporter``), which builds each
sample with ``Sample.from_dict`` and needs nothing but these two files. Images are not copied: ``filepath``
is absolute, as in FiftyOne's own exports with ``export_media=False``.

Per sample: ``classification`` (``Classification``: the class label), ``detections`` (``Detections``: boxes,
``bounding_box`` = relative ``[x, y, w, h]``), ``segmentations`` (``Polylines``: masks as closed, filled
relative polygons), ``pixlabel_path`` (the path in the workspace), ``tags`` (``review`` when a label
awaits review) and the image's attributes (``colors``, ``sharpness``, … from ``ingest --properties``).
Every label carries ``confidence`` and its provenance — ``source``, ``labeler``,
``model_version``, ``round``, ``status`` — plus its attributes (an OCR transcript is ``text``) as fields.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from pixlabel.errors import InputError
from pixlabel.io.formats._common import all_images
from pixlabel.io.formats._masks import label_box, mask_bitmap, mask_outlines
from pixlabel.records import Dataset, Label

FIELDS = {"classification": "Classification", "detections": "Detections", "segmentations": "Polylines"}
_RESERVED = frozenset({"id", "filepath", "tags", "metadata", "media_type", "created_at", "last_modified_at",
                       "pixlabel_path", *FIELDS})


def format_fiftyone(dataset: Dataset, images_root: Path | str, *, name: str = "pixlabel") -> dict[str, Any]:
    """``{"metadata.json": …, "samples.json": …}`` as dicts; boxes and masks need the image size.

    >>> from pixlabel.records import Box, ImageInfo, Ontology, Provenance
    >>> ds = Dataset([ImageInfo("a.jpg", (50, 100))], [Label("a.jpg", "cat", 0.75, Provenance(source="model"),
    ...               box=Box(10, 5, 30, 25, image_size=(50, 100)))], Ontology(("cat",)))
    >>> det = format_fiftyone(ds, "/data")["samples.json"]["samples"][0]["detections"]["detections"][0]
    >>> det["bounding_box"], det["confidence"], det["source"]
    ([0.1, 0.1, 0.2, 0.4], 0.75, 'model')
    """
    root = Path(images_root).absolute()
    by_image = dataset.labels_by_image()
    samples = []
    for info in all_images(dataset):
        labels = by_image.get(info.path, [])
        sample: dict[str, Any] = {k: v for k, v in info.attributes.items() if k not in _RESERVED}
        sample |= {"filepath": str(root / info.path), "pixlabel_path": info.path,
                   "tags": ["review"] if any(x.status == "review" for x in labels) else []}
        if info.image_size is not None:
            h, w = info.image_size
            sample["metadata"] = {"_cls": "ImageMetadata", "width": w, "height": h}
        detections, polylines = [], []
        for lab in labels:
            if lab.box is None and lab.mask is None:
                if "classification" in sample:
                    raise InputError(f"{info.path}: two class labels; FiftyOne's classification field holds one")
                sample["classification"] = {"_cls": "Classification", "label": lab.label, **_fields(lab)}
            elif lab.mask is not None:
                polylines.append(_polyline(lab))
            else:
                detections.append(_detection(lab))
        if detections:
            sample["detections"] = {"_cls": "Detections", "detections": detections}
        if polylines:
            sample["segmentations"] = {"_cls": "Polylines", "polylines": polylines}
        samples.append(sample)
    metadata = {"name": name, "media_type": "image", "info": {"classes": list(dataset.ontology.classes)},
                "default_classes": list(dataset.ontology.classes)}
    return {"metadata.json": metadata, "samples.json": {"samples": samples}}


def _fields(lab: Label) -> dict[str, Any]:
    p = lab.provenance
    return {"confidence": lab.confidence, "tags": [], "source": p.source, "labeler": p.labeler,
            "model_version": p.model_version, "round": p.round, "status": lab.status, **lab.attributes}


def _detection(lab: Label) -> dict[str, Any]:
    box = label_box(lab)
    assert box is not None
    h, w = box.image_size
    x, y, bw, bh = box.xywh
    return {"_cls": "Detection", "label": lab.label, "bounding_box": [x / w, y / h, bw / w, bh / h],
            "attributes": {}, **_fields(lab)}


def _polyline(lab: Label) -> dict[str, Any]:
    mask = lab.mask
    assert mask is not None
    h, w = mask.image_size
    if mask.polygons:
        loops = [np.asarray(p, dtype=np.float64).reshape(-1, 2) for p in mask.polygons]
    else:
        loops = mask_outlines(mask_bitmap(mask))  # parts and holes; FiftyOne fills them even-odd like COCO
    points = [[[float(x) / w, float(y) / h] for x, y in loop] for loop in loops]
    return {"_cls": "Polyline", "label": lab.label, "points": points, "closed": True, "filled": True,
            "attributes": {}, **_fields(lab)}


def write_fiftyone(dataset: Dataset, images_root: Path | str, out: Path | str) -> None:
    """Write ``metadata.json`` and ``samples.json`` into the new or empty folder ``out``."""
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InputError(f"{out}: the FiftyOne dataset folder must be new or empty (nothing is overwritten)")
    files = format_fiftyone(dataset, images_root, name=out.name or "pixlabel")
    out.mkdir(parents=True, exist_ok=True)
    for filename, data in files.items():
        (out / filename).write_text(json.dumps(data), encoding="utf-8")
