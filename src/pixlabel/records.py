"""The typed core every layer speaks: labels, boxes, masks, provenance, ontology.

Glossary: ``N`` images, ``K`` classes, ``D`` embedding size; ``image_size`` is always ``(h, w)``;
``probs`` is ``(N, K)``. Paths are POSIX paths relative to the image root.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

Source = Literal["human", "model", "synthetic"]
AttributeValue = str | int | float | bool
Status = Literal["accepted", "review"]
SOURCES: tuple[str, ...] = ("human", "model", "synthetic")
STATUSES: tuple[str, ...] = ("accepted", "review")

# The export contract (issue 2): these columns first, in this order; more may follow.
LABELS_CSV_COLUMNS: tuple[str, ...] = ("path", "label", "confidence", "source", "status")
ERRORS_CSV_COLUMNS: tuple[str, ...] = ("path", "reason")


def utcnow() -> _dt.datetime:
    return _dt.datetime.now(_dt.UTC)


@dataclass(frozen=True)
class Box:
    """Axis-aligned box in absolute pixels, corners ``(x1, y1)``–``(x2, y2)``, on an image of ``image_size``.

    >>> Box(10, 20, 30, 60, image_size=(100, 200)).xywh
    (10, 20, 20, 40)
    """

    x1: float
    y1: float
    x2: float
    y2: float
    image_size: tuple[int, int]  # (h, w)

    def __post_init__(self) -> None:
        if not (self.x2 >= self.x1 and self.y2 >= self.y1):
            raise ValueError(f"box corners out of order: ({self.x1}, {self.y1}, {self.x2}, {self.y2})")

    @property
    def xywh(self) -> tuple[float, float, float, float]:
        return (self.x1, self.y1, self.x2 - self.x1, self.y2 - self.y1)

    @property
    def area(self) -> float:
        return (self.x2 - self.x1) * (self.y2 - self.y1)

    @classmethod
    def from_xywh(cls, x: float, y: float, w: float, h: float, *, image_size: tuple[int, int]) -> Box:
        return cls(x, y, x + w, y + h, image_size=image_size)

    def clipped(self) -> Box:
        """This box clipped to the image; the caller decides whether a change deserves a warning."""
        h, w = self.image_size
        return Box(
            min(max(self.x1, 0.0), w),
            min(max(self.y1, 0.0), h),
            min(max(self.x2, 0.0), w),
            min(max(self.y2, 0.0), h),
            image_size=self.image_size,
        )


@dataclass(frozen=True)
class Mask:
    """Instance mask as polygons (flat ``x0, y0, x1, y1, …`` lists in pixels) or COCO RLE, not both."""

    image_size: tuple[int, int]  # (h, w)
    polygons: tuple[tuple[float, ...], ...] = ()
    rle: Mapping[str, object] | None = None

    def __post_init__(self) -> None:
        if bool(self.polygons) == (self.rle is not None):
            raise ValueError("a Mask needs exactly one of polygons or rle")


@dataclass(frozen=True)
class Provenance:
    """Where a label came from. ``round`` is the self-training round it was accepted in (0 = seed/first)."""

    source: Source = "model"
    labeler: str = ""
    model_version: str = ""
    round: int = 0
    created_at: _dt.datetime = field(default_factory=utcnow)

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise ValueError(f"unknown provenance source {self.source!r}; expected one of {', '.join(SOURCES)}")


HUMAN = Provenance(source="human", labeler="human")


@dataclass(frozen=True)
class Label:
    """One label on one image: a class tag, optionally with a box and/or mask.

    ``attributes`` are JSON scalars that describe the object beyond its class, e.g. ``{"text": "EXIT"}`` for
    an OCR text box (the transcript). Formats that have a place for them write them; the others drop them.
    """

    image: str  # path relative to the image root, POSIX separators
    label: str  # class name
    confidence: float = 1.0  # calibrated probability that ``label`` is right
    provenance: Provenance = HUMAN
    status: Status = "accepted"
    box: Box | None = None
    mask: Mask | None = None
    attributes: Mapping[str, AttributeValue] = field(default_factory=dict)
    # Boxes only. 0: one of the model's answers (shown for review, counted when an image is "done");
    # >= 1: an alternative it also scored (another class where a more confident box already is, or a box too
    # unlikely to be worth a reviewer's look), kept in exports because ranking metrics (mAP) reward it.
    rank: int = 0

    def __post_init__(self) -> None:
        if self.rank < 0:
            raise ValueError(f"{self.image}: rank must be >= 0, got {self.rank}")
        for key, value in self.attributes.items():
            if not isinstance(key, str) or not key or not isinstance(value, str | int | float | bool):
                raise ValueError(f"{self.image}: attribute {key!r} must be a non-empty name with a string, "
                                 f"number or boolean value, got {value!r}")
        if not 0.0 <= self.confidence <= 1.0:
            raise ValueError(f"{self.image}: confidence {self.confidence} is not in [0, 1]")
        if self.status not in STATUSES:
            raise ValueError(f"{self.image}: unknown status {self.status!r}; expected accepted or review")

    @property
    def source(self) -> str:
        return self.provenance.source


@dataclass(frozen=True)
class ImageInfo:
    """An image known to a dataset: its relative path and, when known, its ``(h, w)``."""

    path: str
    image_size: tuple[int, int] | None = None
    image_id: int | None = None  # the id in a COCO file, kept so round trips preserve it
    attributes: Mapping[str, AttributeValue] = field(default_factory=dict)  # e.g. {"colors": "red", "grey": False}


@dataclass(frozen=True)
class Ontology:
    """Explicit class list; several aliases (prompts, synonyms, old names) may map to one class.

    >>> Ontology(("cat", "dog"), aliases={"kitty": "cat"}).resolve("kitty")
    'cat'
    """

    classes: tuple[str, ...]
    aliases: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if len(set(self.classes)) != len(self.classes):
            dupes = sorted({c for c in self.classes if self.classes.count(c) > 1})
            raise ValueError(f"duplicate class names: {', '.join(dupes)}")
        for alias, target in self.aliases.items():
            if target not in self.classes:
                raise ValueError(f"alias {alias!r} maps to unknown class {target!r}")

    @classmethod
    def from_labels(cls, names: Iterable[str]) -> Ontology:
        """Classes in sorted order, so the class index is stable across runs."""
        return cls(tuple(sorted(set(names))))

    def resolve(self, name: str) -> str:
        if name in self.classes:
            return name
        if name in self.aliases:
            return self.aliases[name]
        raise KeyError(name)

    def index(self, name: str) -> int:
        return self.classes.index(self.resolve(name))

    def __len__(self) -> int:
        return len(self.classes)

    def describe_unknown(self, name: str) -> str:
        return f"unknown class {name!r}; known: {', '.join(self.classes)}"


@dataclass
class Dataset:
    """What a format adapter parses into and formats from: images, labels and the class list."""

    images: list[ImageInfo]
    labels: list[Label]
    ontology: Ontology

    def labels_by_image(self) -> dict[str, list[Label]]:
        out: dict[str, list[Label]] = {i.path: [] for i in self.images}
        for lab in self.labels:
            out.setdefault(lab.image, []).append(lab)
        return out


def class_index(labels: Sequence[str], ontology: Ontology) -> list[int]:
    return [ontology.index(x) for x in labels]
