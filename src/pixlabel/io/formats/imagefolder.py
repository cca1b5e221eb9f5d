"""Image folder: one sub-folder per class (``cat/001.jpg``), the torchvision ``ImageFolder`` layout.

Images directly in the root have no class: they are read as unlabeled and unlabeled images are written there.
Only the class survives this format; boxes, masks, confidence and provenance do not.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path, PurePosixPath

from pixlabel.errors import InputError
from pixlabel.io.formats._common import all_images, copy_files, list_images, safe_relpath, warn
from pixlabel.records import Dataset, ImageInfo, Label, Ontology, Provenance


def parse_imagefolder(paths: Iterable[str]) -> Dataset:
    """A dataset whose class is each path's first folder; root-level images are unlabeled.

    >>> ds = parse_imagefolder(["cat/1.jpg", "dog/a/2.jpg", "3.jpg"])
    >>> [(lab.image, lab.label) for lab in ds.labels], ds.ontology.classes
    ([('cat/1.jpg', 'cat'), ('dog/a/2.jpg', 'dog')], ('cat', 'dog'))
    """
    images: list[ImageInfo] = []
    labels: list[Label] = []
    for raw in paths:
        path = safe_relpath(raw, origin="image folder")
        images.append(ImageInfo(path))
        parts = PurePosixPath(path).parts
        if len(parts) > 1:
            labels.append(Label(path, parts[0], provenance=Provenance(source="human")))
    return Dataset(images, labels, Ontology.from_labels(lab.label for lab in labels))


def read_imagefolder(root: Path | str) -> Dataset:
    """Every image under ``root``, labelled with its top folder's name."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"{root}: not a folder; an image folder dataset has one sub-folder per class")
    return parse_imagefolder(list_images(root))


def _target(path: str, label: str) -> str:
    # cat/001.jpg stays cat/001.jpg, not cat/cat/001.jpg; other paths keep their folders under the class.
    parts = PurePosixPath(path).parts
    rest = parts[1:] if len(parts) > 1 and parts[0] == label else parts
    return PurePosixPath(label, *rest).as_posix()


def write_imagefolder(dataset: Dataset, src_root: Path | str, out_dir: Path | str) -> None:
    """Copy each image into ``out_dir/<class>/``; unlabeled images go to ``out_dir`` itself.

    An image labelled with several classes (e.g. a detection dataset) is copied into each class folder.
    """
    src_root, out_dir = Path(src_root), Path(out_dir)
    classes_of: dict[str, list[str]] = {}
    for lab in dataset.labels:
        if "/" in lab.label or "\\" in lab.label or lab.label in ("", ".", ".."):
            raise InputError(f"{lab.image}: class {lab.label!r} cannot be a folder name; rename the class")
        names = classes_of.setdefault(lab.image, [])
        if lab.label not in names:
            names.append(lab.label)
    plan: dict[str, str] = {}  # target -> source
    multi = 0
    for info in all_images(dataset):
        names = classes_of.get(info.path, [])
        multi += len(names) > 1
        for target in [_target(info.path, name) for name in names] or [info.path]:
            if plan.setdefault(target, info.path) != info.path:
                raise InputError(f"images {plan[target]} and {info.path} would both be written to {target}")
    if multi:
        warn(f"{multi} image(s) have labels of several classes and were copied into each class folder")
    copy_files(plan, src_root, out_dir)
