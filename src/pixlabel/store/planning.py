"""The overwrite rules of ``LabelStore.put_labels``, as a pure function over what is stored and what arrives.

* Class labels (no box, no mask): one current label per image, upserted. A model or synthetic label never
  replaces a human one (counted in ``kept_human``); a human label replaces anything.
* Box/mask labels: a model/synthetic batch for an image replaces that image's model/synthetic regions;
  human regions are kept, and a human region is added unless the same one is already stored.
* A reviewed image (``plan_review``: an annotation brought back from Label Studio or CVAT) gets exactly the
  reviewed regions: stored regions that say the same stay (a model one becomes human), the rest are deleted.

>>> from pixlabel.records import Label, Provenance
>>> human = Stored(1, 7, snapshot(Label("a.png", "cat")))
>>> plan = plan_put({7: [human]}, [(7, Label("a.png", "dog", 0.9, Provenance(source="model")))])
>>> plan.kept_human, plan.updates
(1, [])
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pixlabel.records import Label
from pixlabel.store.convert import is_class_label, snapshot


@dataclass(frozen=True)
class Stored:
    """A label row as the planner sees it: its id, image and snapshot (see ``convert.snapshot``)."""

    id: int
    image_id: int
    snapshot: dict[str, Any]

    @property
    def source(self) -> str:
        return str(self.snapshot["source"])

    @property
    def is_region(self) -> bool:
        return self.snapshot["box"] is not None or self.snapshot["mask"] is not None


@dataclass
class PutPlan:
    inserts: list[tuple[int, Label]] = field(default_factory=list)  # (image_id, label)
    updates: list[tuple[Stored, Label]] = field(default_factory=list)  # (old row, its replacement)
    deletes: list[Stored] = field(default_factory=list)
    unchanged: int = 0
    kept_human: int = 0


def plan_put(stored: Mapping[int, Sequence[Stored]], incoming: Sequence[tuple[int, Label]], *,
             force: bool = False) -> PutPlan:
    """What to insert, update and delete so ``incoming`` (image_id, label) pairs land by the rules above.

    ``force`` records a class label even when it equals the stored one (a reviewer confirming a label is
    an event the audit trail should show).
    """
    by_image: dict[int, list[Label]] = {}
    for image_id, label in incoming:
        by_image.setdefault(image_id, []).append(label)
    plan = PutPlan()
    for image_id, labels in by_image.items():
        rows = stored.get(image_id, ())
        class_rows = [r for r in rows if not r.is_region]
        _plan_class(plan, image_id, class_rows[0] if class_rows else None,
                    [x for x in labels if is_class_label(x)], force=force)
        _plan_regions(plan, image_id, [r for r in rows if r.is_region],
                      [x for x in labels if not is_class_label(x)])
    return plan


def _plan_class(plan: PutPlan, image_id: int, old: Stored | None, incoming: list[Label], *,
                force: bool) -> None:
    final: Label | None = None
    current_source = old.source if old is not None else None
    for label in incoming:  # in order, so within one batch the later label wins by the same rule
        if label.source != "human" and current_source == "human":
            plan.kept_human += 1
            continue
        final, current_source = label, label.source
    if final is None:
        return
    if old is None:
        plan.inserts.append((image_id, final))
    elif not force and old.snapshot == snapshot(final):
        plan.unchanged += 1
    else:
        plan.updates.append((old, final))


def _plan_regions(plan: PutPlan, image_id: int, old: list[Stored], incoming: list[Label]) -> None:
    human_snaps = [r.snapshot for r in old if r.source == "human"]
    machine_new: list[Label] = []
    for label in incoming:
        if label.source != "human":
            machine_new.append(label)
            continue
        snap = snapshot(label)
        if snap in human_snaps:
            plan.unchanged += 1
        else:
            plan.inserts.append((image_id, label))
            human_snaps.append(snap)
    if not machine_new:
        return
    machine_old = [r for r in old if r.source != "human"]
    if _canonical(r.snapshot for r in machine_old) == _canonical(snapshot(x) for x in machine_new):
        plan.unchanged += len(machine_new)  # the same predictions again: no churn in the audit trail
        return
    plan.deletes.extend(machine_old)
    plan.inserts.extend((image_id, label) for label in machine_new)


def _canonical(snaps: Any) -> list[str]:
    return sorted(json.dumps(s, sort_keys=True) for s in snaps)


def plan_review(stored: Mapping[int, Sequence[Stored]], incoming: Sequence[tuple[int, Label]],
                reviewed: Sequence[int]) -> PutPlan:
    """What to write so each ``reviewed`` image holds exactly its ``incoming`` human labels.

    A reviewer's annotation is the truth for its image: a stored region with the same class, geometry and
    attributes is kept (a human one unchanged, a model one becomes human), every other stored region of the
    image is deleted, and new ones are inserted. The class label is replaced when the review gives one and
    it differs from a stored human label; without one the stored class label stays. Re-importing the same
    review therefore changes nothing.
    """
    by_image: dict[int, list[Label]] = {image_id: [] for image_id in reviewed}
    for image_id, label in incoming:
        by_image.setdefault(image_id, []).append(label)
    plan = PutPlan()
    for image_id, labels in by_image.items():
        rows = stored.get(image_id, ())
        class_rows = [r for r in rows if not r.is_region]
        classes = [x for x in labels if is_class_label(x)]
        if classes:
            _review_class(plan, image_id, class_rows[0] if class_rows else None, classes[-1])
        _review_regions(plan, image_id, [r for r in rows if r.is_region],
                        [x for x in labels if not is_class_label(x)])
    return plan


def _review_class(plan: PutPlan, image_id: int, old: Stored | None, new: Label) -> None:
    if old is None:
        plan.inserts.append((image_id, new))
    elif old.source == "human" and _content(old.snapshot) == _content(snapshot(new)):
        plan.unchanged += 1
    else:
        plan.updates.append((old, new))


def _review_regions(plan: PutPlan, image_id: int, old: Sequence[Stored], incoming: Sequence[Label]) -> None:
    left = list(old)
    for label in incoming:
        key = _content(snapshot(label))
        same = next((r for r in left if _content(r.snapshot) == key), None)
        if same is None:
            plan.inserts.append((image_id, label))
            continue
        left.remove(same)
        if same.source == "human":
            plan.unchanged += 1
        else:
            plan.updates.append((same, label))
    plan.deletes.extend(left)


_PROVENANCE_KEYS = frozenset({"confidence", "source", "status", "labeler", "model_version", "round"})


def _content(snap: Mapping[str, Any]) -> str:
    """What a label says about the image (class, geometry, attributes), with coordinates to 1/1000 px: a box
    that went through a tool's percent coordinates and back is the same box."""
    def rounded(value: Any) -> Any:
        if isinstance(value, float):
            return round(value, 3)
        if isinstance(value, list | tuple):
            return [rounded(v) for v in value]
        if isinstance(value, dict):
            return {k: rounded(v) for k, v in value.items()}
        return value

    return json.dumps({k: rounded(v) for k, v in snap.items() if k not in _PROVENANCE_KEYS}, sort_keys=True)
