import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pixlabel.cli.main import main
from pixlabel.errors import InputError
from pixlabel.io.convert import convert
from pixlabel.io.formats._common import FormatWarning
from pixlabel.io.formats._masks import mask_bitmap
from pixlabel.io.formats.coco import read_coco
from pixlabel.io.formats.cvat import format_cvat, parse_cvat, read_cvat
from pixlabel.records import Box, Dataset, ImageInfo, Label, Mask, Ontology, Provenance
from pixlabel.store import open_store

INTEROP = Path(__file__).parent / "data" / "interop"


def doc(body, meta=""):
    return f'<?xml version="1.0"?><annotations><version>1.1</version><meta>{meta}</meta>{body}</annotations>'


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # pycocotools under numpy 2
def test_parse_tags_boxes_polygons_masks_and_attributes():
    xml = doc(
        '<image id="3" name="sub/a.jpg" width="10" height="8">'
        '<tag label="street" source="manual"></tag>'
        '<box label="car" source="auto" occluded="0" xtl="1.5" ytl="2" xbr="6" ybr="7.25" z_order="0">'
        '<attribute name="text">EXIT</attribute></box>'
        '<polygon label="car" points="1,1;5,1;5,4" occluded="0" z_order="0"/>'
        '<mask label="car" rle="1, 2, 2, 1" left="2" top="3" width="3" height="2" z_order="0"/>'
        '</image>',
        meta="<task><labels><label><name>bike</name></label><label><name>car</name></label></labels></task>")
    ds = parse_cvat(xml, origin="task.xml")
    assert ds.ontology.classes == ("bike", "car", "street")  # the task's label list first, in its order
    assert ds.images == [ImageInfo("sub/a.jpg", (8, 10))]
    tag, box, polygon, mask = ds.labels
    assert (tag.label, tag.box, tag.mask, tag.source) == ("street", None, None, "human")
    assert box.box == Box(1.5, 2, 6, 7.25, image_size=(8, 10)) and box.attributes == {"text": "EXIT"}
    assert polygon.mask.polygons == ((1.0, 1.0, 5.0, 1.0, 5.0, 4.0),)
    bitmap = mask_bitmap(mask.mask)
    # runs 1 off, 2 on, 2 off, 1 on over the 3x2 box at (2, 3), row by row
    assert np.argwhere(bitmap).tolist() == [[3, 3], [3, 4], [4, 4]]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('<image id="4" name="a.jpg" width="0" height="3"/>', "image id 4: width and height must be numbers > 0"),
        ('<image id="4" width="3" height="3"/>', "image id 4: <image> needs a name"),
        ('<image id="4" name="a.jpg" width="9" height="9"><box label="c" xtl="5" ytl="1" xbr="2" ybr="3"/></image>',
         r"image id 4 <box> 1: corners out of order"),
        ('<image id="4" name="a.jpg" width="9" height="9"><box label="c" xtl="x" ytl="1" xbr="2" ybr="3"/></image>',
         r"image id 4 <box> 1: xtl must be a number, got 'x'"),
        ('<image id="4" name="a.jpg" width="9" height="9"><box xtl="1" ytl="1" xbr="2" ybr="3"/></image>',
         r"image id 4 <box> 1: missing label"),
        ('<image id="4" name="a.jpg" width="9" height="9"><polygon label="c" points="1;2"/></image>',
         r"image id 4 <polygon> 1: points must be 'x0,y0;x1,y1;…'"),
        ('<image id="4" name="a.jpg" width="9" height="9"><mask label="c" rle="3,3" left="0" top="0" width="2" '
         'height="2"/></image>', r"image id 4 <mask> 1: rle runs must be >= 0 and sum to width\*height = 4"),
        ('<image id="4" name="a.jpg" width="9" height="9"><mask label="c" rle="0,4" left="8" top="0" width="2" '
         'height="2"/></image>', r"image id 4 <mask> 1: mask box left=8 top=0 width=2 height=2 leaves the 9x9 image"),
        ('<image id="4" name="../x.jpg" width="9" height="9"/>', "image id 4: image path '../x.jpg' must be relative"),
    ],
)
def test_malformed_shapes_name_the_image_and_shape(body, message):
    with pytest.raises(InputError, match="task.xml " + message):
        parse_cvat(doc(body), origin="task.xml")


def test_not_cvat_xml():
    with pytest.raises(InputError, match="task.xml: expected CVAT's <annotations> root element, got <annotation>"):
        parse_cvat("<annotation/>", origin="task.xml")
    with pytest.raises(InputError, match="task.xml: not valid XML"):
        parse_cvat("<annotations><image>", origin="task.xml")


def test_unsupported_and_rotated_shapes_warn():
    body = ('<image id="0" name="a.jpg" width="100" height="100">'
            '<polyline label="lane" points="1,1;5,5"/><points label="eye" points="3,3"/>'
            '<box label="car" xtl="40" ytl="45" xbr="60" ybr="55" rotation="90"/></image>')
    with pytest.warns(FormatWarning) as record:
        ds = parse_cvat(doc(body), origin="t.xml")
    messages = " ".join(str(w.message) for w in record)
    assert "polyline shapes are not supported" in messages and "points shapes are not supported" in messages
    assert "box rotated 90 degrees" in messages
    assert ds.labels[0].box.xywh == pytest.approx((45.0, 40.0, 10.0, 20.0))  # turned about its centre


def test_names_resolve_against_known_workspace_paths():
    xml = doc('<image id="0" name="a.png" width="4" height="4"><tag label="x"/></image>')
    ds = parse_cvat(xml, origin="t.xml", known={"street/a.png": (4, 4), "b.png": (4, 4)})
    assert ds.labels[0].image == "street/a.png"
    with pytest.raises(InputError, match="t.xml image id 0: image 'a.png' is not in the workspace"):
        parse_cvat(xml, origin="t.xml", known={"b.png": (4, 4)})


def dataset():
    size = (30, 40)
    model = Provenance(source="model", labeler="ocr")
    square = np.zeros(size, np.uint8, order="F")
    square[5:9, 10:20] = 1
    square[20:25, 30:33] = 1  # two parts: written as a <mask>, not a polygon
    from pycocotools import mask as cocomask
    rle = cocomask.encode(square)
    rle["counts"] = rle["counts"].decode("ascii")
    return Dataset([ImageInfo("a.png", size), ImageInfo("sub/b.png", size)], [
        Label("a.png", "street"),
        Label("a.png", "sign", 0.7, model, box=Box(1.25, 2, 11, 7.5, image_size=size),
              attributes={"text": "Ein & Aus"}),
        Label("sub/b.png", "car", mask=Mask(size, polygons=((1.0, 1.0, 9.5, 1.0, 9.5, 6.0),))),
        Label("sub/b.png", "car", mask=Mask(size, rle=rle)),
    ], Ontology(("car", "sign", "street")))


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # pycocotools' decode under numpy 2, not our code
def test_format_then_parse_is_the_same_dataset():
    ds = dataset()
    xml = format_cvat(ds)
    assert '<box label="sign" source="auto"' in xml and '<attribute name="text">Ein &amp; Aus</attribute>' in xml
    assert '<mask label="car" source="manual"' in xml and '<polygon label="car"' in xml
    back = parse_cvat(xml, origin="t.xml")
    assert back.ontology == ds.ontology and back.images == ds.images
    for before, after in zip(ds.labels, back.labels, strict=True):
        assert (after.image, after.label, after.box, after.attributes) == (before.image, before.label, before.box,
                                                                          before.attributes)
        if before.mask is not None:
            assert np.array_equal(mask_bitmap(after.mask), mask_bitmap(before.mask))


def test_reads_the_cvat_xml_fiftyone_writes():
    """fiftyone_export.xml was written by FiftyOne's CVATImageDatasetExporter (scripts/interop/check_fiftyone.py):
    its own meta block, basenames as image names, attributes in the label spec."""
    known = {"street/a.png": (60, 80), "b.png": (40, 50)}
    ds = read_cvat(INTEROP / "cvat" / "fiftyone_export.xml", known=known)
    assert ds.ontology.classes == ("car", "sign", "street")
    got = [(x.image, x.label, x.box.xywh if x.box else None, x.attributes) for x in ds.labels if x.mask is None]
    assert got == [("street/a.png", "street", None, {}), ("street/a.png", "sign", (10, 12, 20, 10), {"text": "EXIT"}),
                   ("street/a.png", "car", (40, 30, 38, 28), {})]
    assert [x.mask.polygons for x in ds.labels if x.mask] == [((5.0, 5.0, 30.0, 5.0, 30.0, 20.0, 5.0, 20.0),)]


def test_our_cvat_file_is_the_one_fiftyone_read():
    """tests/data/interop/pixlabel/annotations.xml was read by FiftyOne's CVAT importer
    (bench/out/interop_fiftyone.json); writing the same dataset today must give the same file."""
    from test_formats_labelstudio import sample

    assert format_cvat(sample()) == (INTEROP / "pixlabel" / "annotations.xml").read_text()
    checked = json.loads((Path(__file__).parents[1] / "bench" / "out" / "interop_fiftyone.json").read_text())
    by_image = {e["image"]: e for e in checked["pixlabel_cvat_read_by_fiftyone"]}
    assert by_image["a.png"]["detections"] == [["sign", [0.125, 0.2, 0.25, 0.1667]],
                                               ["car", [0.5, 0.5, 0.475, 0.4667]]]
    assert by_image["a.png"]["classifications"] == ["street"] and by_image["b.png"]["polylines"] == [["car", 4]]


@pytest.fixture
def coco_dataset(tmp_path):
    src = tmp_path / "photos"
    sizes = {"a.png": (64, 48), "sub/b.png": (30, 90)}
    for rel, (w, h) in sizes.items():
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (w, h), (10, 20, 30)).save(src / rel)
    data = {"images": [{"id": i, "file_name": rel, "width": w, "height": h}
                       for i, (rel, (w, h)) in enumerate(sizes.items(), start=1)],
            "categories": [{"id": 1, "name": "cat"}, {"id": 2, "name": "dog"}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [2.5, 3, 20, 10.75]},
                            {"id": 2, "image_id": 2, "category_id": 2, "segmentation": [[1, 1, 20, 1, 20, 15, 1, 15]]}]}
    (tmp_path / "instances.json").write_text(json.dumps(data))
    return src, tmp_path / "instances.json"


def test_coco_to_cvat_to_label_studio_to_coco_round_trip(coco_dataset, tmp_path, capsys):
    src, instances = coco_dataset
    assert main(["convert", str(src), "--from", "coco", "--labels", str(instances), "--to", "cvat",
                 "--out", str(tmp_path / "cvat")]) == 0
    assert (tmp_path / "cvat" / "images" / "sub" / "b.png").is_file()
    assert main(["convert", str(tmp_path / "cvat" / "images"), "--from", "cvat", "--labels",
                 str(tmp_path / "cvat" / "annotations.xml"), "--to", "label-studio",
                 "--out", str(tmp_path / "ls")]) == 0
    assert (tmp_path / "ls" / "tasks.config.xml").is_file()
    assert main(["convert", str(tmp_path / "ls" / "images"), "--from", "label-studio", "--labels",
                 str(tmp_path / "ls" / "tasks.json"), "--to", "coco", "--out", str(tmp_path / "coco")]) == 0
    assert "converted label-studio -> coco: 2 images, 2 labels (1 box, 1 mask)" in capsys.readouterr().out
    before, after = read_coco(instances), read_coco(tmp_path / "coco" / "annotations.json")
    assert [(x.image, x.label) for x in after.labels] == [(x.image, x.label) for x in before.labels]
    assert after.labels[0].box.xywh == pytest.approx(before.labels[0].box.xywh)
    assert after.labels[1].mask.polygons[0] == pytest.approx(before.labels[1].mask.polygons[0])


def test_convert_from_cvat_needs_the_xml(tmp_path):
    (tmp_path / "imgs").mkdir()
    with pytest.raises(InputError, match="--from cvat needs --labels FILE"):
        convert(tmp_path / "imgs", src_format="cvat", dst_format="coco", out=tmp_path / "out")


def test_cvat_import_into_a_workspace_replaces_the_model_boxes_of_each_image(tmp_path, capsys):
    size = (30, 40)
    ws = tmp_path / "ws"
    ws.mkdir()
    with open_store(ws / "pixlabel.db") as store:
        store.sync_images([("a.png", "h-a", size), ("b.png", "h-b", size)])
        store.ensure_classes(["car"])
        store.put_labels([Label("a.png", "car", 0.6, Provenance(source="model"), box=Box(1, 1, 5, 5, image_size=size)),
                          Label("b.png", "car", 0.6, Provenance(source="model"), box=Box(2, 2, 6, 6, image_size=size))])
    xml = doc('<image id="0" name="a.png" width="40" height="30"><box label="bus" xtl="3" ytl="3" xbr="9" ybr="9"/>'
              '</image>')
    (tmp_path / "annotations.xml").write_text(xml)
    assert main(["import", str(ws), "--from", "cvat", str(tmp_path / "annotations.xml"), "--actor", "ana"]) == 0
    assert "(1 added, 0 changed, 1 removed, 0 unchanged; 0 images without a review left alone)" in \
        capsys.readouterr().out
    with open_store(ws / "pixlabel.db") as store:
        got = [(x.image, x.label, x.source, x.box.xywh) for x in store.labels()]
        actors = {h.actor for h in store.history("a.png")[-2:]}
    assert got == [("a.png", "bus", "human", (3, 3, 6, 6)), ("b.png", "car", "model", (2, 2, 4, 4))]
    assert actors == {"ana"}
