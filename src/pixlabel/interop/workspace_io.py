"""Export a workspace's labels for an annotation tool, and bring the reviews made there back as human labels.

>>> sorted(EXPORT_TOOLS), sorted(IMPORT_TOOLS)
(['coco', 'cvat', 'fiftyone', 'label-studio'], ['cvat', 'label-studio'])
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pixlabel.errors import InputError
from pixlabel.io.formats import coco, cvat, fiftyone, labelstudio
from pixlabel.records import Dataset, Label, Ontology
from pixlabel.store import LabelStore
from pixlabel.store.results import PutResult


@dataclass(frozen=True)
class ExportResult:
    images: int
    labels: int
    files: list[Path] = field(default_factory=list)  # what was written, the main file first
    hint: str = ""  # what to do with it in the tool


@dataclass(frozen=True)
class ImportResult:
    reviewed: int  # images whose review was applied
    labels: int  # human labels those reviews hold
    skipped_tasks: int  # images in the file nobody reviewed (predictions only, or cancelled)
    new_classes: list[str]
    put: PutResult


def workspace_dataset(store: LabelStore) -> Dataset:
    """Every readable image of the store with its current labels (all statuses and sources)."""
    labels = store.labels()
    classes = list(dict.fromkeys([*store.classes(), *(x.label for x in labels)]))
    return Dataset(store.images(), labels, Ontology(tuple(classes)))


def _export_labelstudio(ds: Dataset, out: Path, options: Mapping[str, Any]) -> ExportResult:
    prefix = options.get("image_url") or labelstudio.LOCAL_FILES
    config = labelstudio.write_labelstudio(ds, out, url_prefix=prefix)
    hint = (f"create a project with the labeling config in {config}, then import {out}")
    if prefix == labelstudio.LOCAL_FILES:
        root = options.get("images_root")
        hint += ("; serve the images with LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED=true and "
                 f"LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT={root or 'IMAGES'} (or pass --image-url PREFIX)")
    return ExportResult(len(ds.images), len(ds.labels), [out, config], hint)


def _export_cvat(ds: Dataset, out: Path, options: Mapping[str, Any]) -> ExportResult:
    cvat.write_cvat(ds, out)
    return ExportResult(len(ds.images), len(ds.labels), [out],
                        "in CVAT: create a task with the same images, then Actions > Upload annotations > "
                        "CVAT 1.1")


def _export_fiftyone(ds: Dataset, out: Path, options: Mapping[str, Any]) -> ExportResult:
    root = options.get("images_root")
    if root is None:
        raise InputError("--to fiftyone needs the image folder: pass --images FOLDER (WS/config.yaml has none)")
    fiftyone.write_fiftyone(ds, Path(root), out)
    return ExportResult(len(ds.images), len(ds.labels), [out],
                        f"in Python: fo.Dataset.from_dir('{out}', dataset_type=fo.types.FiftyOneDataset)")


def _export_coco(ds: Dataset, out: Path, options: Mapping[str, Any]) -> ExportResult:
    regions = Dataset(ds.images, [x for x in ds.labels if x.box is not None or x.mask is not None], ds.ontology)
    coco.write_coco(regions, out)
    return ExportResult(len(ds.images), len(regions.labels), [out])


Exporter = Callable[[Dataset, Path, Mapping[str, Any]], ExportResult]
EXPORT_TOOLS: dict[str, Exporter] = {
    "label-studio": _export_labelstudio,
    "cvat": _export_cvat,
    "fiftyone": _export_fiftyone,
    "coco": _export_coco,
}


def export_workspace(store: LabelStore, tool: str, out: Path | str, **options: Any) -> ExportResult:
    """Write the store's labels for ``tool`` to ``out`` (a file; a new or empty folder for fiftyone)."""
    if tool not in EXPORT_TOOLS:
        raise InputError(f"unknown export target {tool!r}; known: {', '.join(EXPORT_TOOLS)}")
    return EXPORT_TOOLS[tool](workspace_dataset(store), Path(out), options)


def _read_labelstudio(path: Path, known: Mapping[str, tuple[int, int] | None]) -> tuple[Dataset, list[str]]:
    parsed = labelstudio.read_labelstudio(path, known=known)
    return parsed.dataset, parsed.reviewed


def _read_cvat(path: Path, known: Mapping[str, tuple[int, int] | None]) -> tuple[Dataset, list[str]]:
    ds = cvat.read_cvat(path, known=known)
    # CVAT's XML does not say which frames someone looked at: every image in the file counts as reviewed.
    return ds, [i.path for i in ds.images]


Importer = Callable[[Path, Mapping[str, tuple[int, int] | None]], tuple[Dataset, list[str]]]
IMPORT_TOOLS: dict[str, Importer] = {"label-studio": _read_labelstudio, "cvat": _read_cvat}


def import_review(store: LabelStore, tool: str, path: Path | str, *, actor: str = "") -> ImportResult:
    """Store the reviewed annotations in ``path`` as human labels (``LabelStore.put_reviewed``, history kept).

    Each reviewed image gets exactly the reviewed regions; images nobody reviewed are left alone. Classes the
    reviewers added are added to the store.
    """
    if tool not in IMPORT_TOOLS:
        raise InputError(f"unknown import source {tool!r}; known: {', '.join(IMPORT_TOOLS)}")
    path = Path(path)
    known = {i.path: i.image_size for i in store.images()}
    if not known:
        raise InputError(f"{store.url}: the label store has no images; label or ingest the images first")
    dataset, reviewed = IMPORT_TOOLS[tool](path, known)
    was_reviewed, classes = set(reviewed), set(store.classes())
    humans: list[Label] = [x for x in dataset.labels if x.source == "human" and x.image in was_reviewed]
    new = [c for c in dict.fromkeys(x.label for x in humans) if c not in classes]
    if new:
        store.ensure_classes(new)
    put = store.put_reviewed(humans, reviewed=reviewed, actor=actor or tool,
                             reason=f"review imported from {tool} ({path.name})")
    return ImportResult(len(reviewed), len(humans), len(dataset.images) - len(reviewed), new, put)
