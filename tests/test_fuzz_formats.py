"""Property-based fuzzing of every annotation parser (CSV, COCO, YOLO lines + data.yaml, VOC XML): whatever the
input, the parser returns a dataset whose paths stay inside the image root and whose boxes lie in their images,
or raises InputError. Nothing else (no KeyError, TypeError, ZeroDivisionError, RecursionError, hang).

Examples per property: tests/fuzzing.py (200 in CI; bench/fuzz.py runs thousands).
"""

from __future__ import annotations

import csv
import io
import json
import math
import warnings
from collections.abc import Callable
from pathlib import PurePosixPath
from typing import Any
from xml.sax.saxutils import escape

from hypothesis import example, given
from hypothesis import strategies as st

from fuzzing import FUZZ, only, tried
from pixlabel.errors import InputError
from pixlabel.io.formats.coco import parse_coco
from pixlabel.io.formats.csvfmt import parse_labels_csv
from pixlabel.io.formats.voc import parse_voc_xml
from pixlabel.io.formats.yolo import parse_data_yaml, parse_yolo_lines
from pixlabel.records import Dataset, Ontology

# Cells a hostile or broken file is made of: numbers at the edges of float, paths that try to leave the root,
# words the parsers look for, control characters.
EDGY = ["", " ", "0", "-0", "1", "-1", "0.5", "1.0000001", "nan", "NaN", "inf", "-inf", "1e309", "-1e309",
        "1e-320", "9" * 40, "0x10", "1_000", "../x.png", "/etc/passwd", "a/../../b.png", "C:\\x.png", "C:x.png",
        "./a.png", "a//b.png", "\x00", "\ufeff", "cat", "dog", "human", "model", "synthetic", "accepted",
        "review", "2024-02-30T25:00:00", "2024-01-01T00:00:00+00:00", "True", "null", "[]", "{}", "é/ü.png"]
COLUMNS = ["path", "label", "confidence", "source", "status", "labeler", "model_version", "round", "created_at",
           "x1", "y1", "x2", "y2", "image_width", "image_height", "extra", ""]
cells = st.one_of(st.sampled_from(EDGY), st.text(max_size=12), st.floats().map(repr),
                  st.integers(-2**70, 2**70).map(str))
json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(), st.sampled_from(EDGY),
              st.text(max_size=8)),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=5),
    max_leaves=20)


def _check(ds: Dataset, *, clipped: bool = True) -> None:
    """What every successful parse must give: contained paths, finite ordered boxes, and for COCO/YOLO/VOC
    (which clip with a warning) boxes inside their images; labels.csv keeps a box as written."""
    for path in [i.path for i in ds.images] + [lab.image for lab in ds.labels]:
        pure = PurePosixPath(path)
        assert path and not pure.is_absolute() and ".." not in pure.parts, path
    for lab in ds.labels:
        assert 0.0 <= lab.confidence <= 1.0 and lab.label
        if lab.box is not None:
            h, w = lab.box.image_size
            b = lab.box
            assert all(math.isfinite(v) for v in (b.x1, b.y1, b.x2, b.y2))
            assert b.x1 <= b.x2 and b.y1 <= b.y2, b
            if clipped:
                assert 0 <= b.x1 <= b.x2 <= w and 0 <= b.y1 <= b.y2 <= h, (b, lab.box.image_size)


def _quiet(fn: Callable[[], Any]) -> Callable[[], Any]:
    def run() -> Any:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # FormatWarning for clipped/dropped boxes is the documented outcome
            return fn()
    return run


def _mutate(text: str, edits: list[tuple[int, int, str]]) -> str:
    for op, pos, piece in edits:
        i = pos % (len(text) + 1)
        if op == 0:
            text = text[:i] + piece + text[i:]  # insert
        elif op == 1:
            text = text[:i] + text[i + len(piece):]  # delete
        elif op == 2:
            text = text[:i] + piece + text[i + len(piece):]  # overwrite
        else:
            text = text[:i]  # truncate
    return text


edits = st.lists(st.tuples(st.integers(0, 3), st.integers(0, 10**6), st.sampled_from(EDGY) | st.text(max_size=6)),
                 min_size=1, max_size=6)

VALID_CSV = ("path,label,confidence,source,status,x1,y1,x2,y2,image_width,image_height\n"
             "a.png,cat,0.9,model,accepted,1,2,30,40,64,48\n"
             "b/c.png,dog,1,human,accepted,,,,,,\n"
             "d.png,,,,,,,,,,\n")


@FUZZ
@given(header=st.lists(st.sampled_from(COLUMNS), min_size=0, max_size=8),
       rows=st.lists(st.lists(cells, max_size=9), max_size=6), raw=st.booleans(), known=st.booleans())
def test_fuzz_csv_rows(header: list[str], rows: list[list[str]], raw: bool, known: bool) -> None:
    if raw:  # cells joined by hand: stray quotes and newlines included
        text = "\n".join(",".join(r) for r in [header, *rows])
    else:
        buf = io.StringIO()
        csv.writer(buf).writerows([header, *rows])
        text = buf.getvalue()
    ontology = Ontology(("cat", "dog")) if known else None
    with tried("csv"):
        only((InputError,), _quiet(lambda: _check(parse_labels_csv(text, origin="labels.csv", ontology=ontology),
                                                         clipped=False)))


@FUZZ
@given(text=st.text(max_size=400) | edits.map(lambda e: _mutate(VALID_CSV, e)))
@example(text="path,label,x1,y1,x2,y2,image_width,image_height\na,0,1,2,30,2,2,2")  # a box kept as written
@example(text="\r0")  # found by bench/fuzz.py: csv.Error (bare CR in a cell) escaped as a traceback
@example(text="path,label\n" + "x" * 200_000 + ",cat\n")  # a cell over csv's 128 KB field limit
def test_fuzz_csv_text(text: str) -> None:
    with tried("csv"):
        only((InputError,), _quiet(lambda: _check(parse_labels_csv(text, origin="labels.csv"), clipped=False)))


VALID_COCO: dict[str, Any] = {
    "images": [{"id": 1, "file_name": "a.png", "width": 64, "height": 48},
               {"id": 2, "file_name": "sub/b.png", "width": 10, "height": 10}],
    "categories": [{"id": 1, "name": "cat"}, {"id": 7, "name": "dog"}],
    "annotations": [
        {"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 2, 30, 20], "iscrowd": 0},
        {"id": 2, "image_id": 2, "category_id": 7, "bbox": [0, 0, 5, 5], "score": 0.7,
         "segmentation": [[0, 0, 5, 0, 5, 5]]},
        {"id": 3, "image_id": 1, "category_id": 7, "segmentation": {"size": [48, 64], "counts": [100, 20, 2952]}},
    ]}


def _replace(node: Any, path: list[int], value: Any) -> Any:
    """``node`` with the element chosen by ``path`` (indices taken modulo each container's size) replaced."""
    if not path or not isinstance(node, dict | list) or not node:
        return value
    if isinstance(node, dict):
        key = sorted(node)[path[0] % len(node)]
        return {**node, key: _replace(node[key], path[1:], value)}
    i = path[0] % len(node)
    return [*node[:i], _replace(node[i], path[1:], value), *node[i + 1:]]


@FUZZ
@given(changes=st.lists(st.tuples(st.lists(st.integers(0, 50), max_size=5), json_values), min_size=1, max_size=5))
def test_fuzz_coco_mutated(changes: list[tuple[list[int], Any]]) -> None:
    data: Any = VALID_COCO
    for path, value in changes:
        data = _replace(data, path, value)
    with tried("coco"):
        only((InputError,), _quiet(lambda: _check(parse_coco(data, origin="instances.json"))))


@FUZZ
@given(data=json_values, text=edits.map(lambda e: _mutate(json.dumps(VALID_COCO), e)))
def test_fuzz_coco_any_json(data: Any, text: str) -> None:
    with tried("coco"):
        only((InputError,), _quiet(lambda: _check(parse_coco(data, origin="instances.json"))))
    try:
        decoded = json.loads(text)
    except ValueError:
        return
    with tried("coco"):
        only((InputError,), _quiet(lambda: _check(parse_coco(decoded, origin="instances.json"))))


@FUZZ
@given(lines=st.lists(st.lists(cells, max_size=12).map(" ".join) | st.text(max_size=30), max_size=6),
       size=st.tuples(st.integers(1, 5000), st.integers(1, 5000)), k=st.integers(1, 3))
def test_fuzz_yolo_lines(lines: list[str], size: tuple[int, int], k: int) -> None:
    ontology = Ontology(("cat", "dog", "fox")[:k])
    with tried("yolo"):
        only((InputError,), _quiet(lambda: _check(Dataset(
            [], parse_yolo_lines(lines, image="a.png", image_size=size, ontology=ontology, origin="labels/a.txt"),
            ontology))))


@FUZZ
@given(text=st.text(max_size=200) | json_values.map(lambda v: "names: " + json.dumps(v))
       | edits.map(lambda e: _mutate("path: /data\ntrain: images/train\nnames:\n  0: cat\n  1: dog\n", e)))
@example(text="0000-0-0T0:00:00")  # found by bench/fuzz.py: PyYAML's ValueError for year 0 escaped
@example(text="names: " + "[" * 1000 + "]" * 1000)  # RecursionError inside PyYAML
def test_fuzz_yolo_data_yaml(text: str) -> None:
    with tried("yolo"):
        only((InputError,), lambda: parse_data_yaml(text, origin="data.yaml"))


VALID_VOC = ("<annotation><folder>x</folder><filename>a.png</filename><size><width>64</width><height>48</height>"
             "<depth>3</depth></size><object><name>cat</name><bndbox><xmin>1</xmin><ymin>2</ymin><xmax>30</xmax>"
             "<ymax>40</ymax></bndbox></object><object><name>dog</name></object></annotation>")


@FUZZ
@given(text=st.text(max_size=300) | edits.map(lambda e: _mutate(VALID_VOC, e)),
       values=st.lists(cells, min_size=7, max_size=7))
def test_fuzz_voc(text: str, values: list[str]) -> None:
    with tried("voc"):
        only((InputError,), _quiet(lambda: _check(Dataset([], parse_voc_xml(text, origin="a.xml")[1],
                                                           Ontology(("x",))))))
    filled = ("<annotation><filename>{}</filename><size><width>{}</width><height>{}</height></size><object>"
              "<name>{}</name><bndbox><xmin>{}</xmin><ymin>{}</ymin><xmax>{}</xmax><ymax>0</ymax></bndbox></object>"
              "</annotation>").format(*(escape(v) for v in values))
    with tried("voc"):
        only((InputError,), _quiet(lambda: _check(Dataset([], parse_voc_xml(filled, origin="a.xml")[1],
                                                           Ontology(("x",))))))
