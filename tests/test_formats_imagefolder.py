import pytest
from PIL import Image

from pixlabel.errors import InputError
from pixlabel.io.formats._common import FormatWarning
from pixlabel.io.formats.imagefolder import parse_imagefolder, read_imagefolder, write_imagefolder
from pixlabel.records import Box, Dataset, ImageInfo, Label, Ontology


def test_parse_class_is_first_folder_and_root_images_are_unlabeled():
    ds = parse_imagefolder(["dog/x/2.jpg", "cat/1.jpg", "3.jpg"])
    assert [(lab.image, lab.label, lab.source) for lab in ds.labels] == [
        ("dog/x/2.jpg", "dog", "human"), ("cat/1.jpg", "cat", "human")]
    assert [i.path for i in ds.images] == ["dog/x/2.jpg", "cat/1.jpg", "3.jpg"]
    assert ds.ontology.classes == ("cat", "dog")


def test_read_skips_hidden_and_non_images(tmp_path):
    for rel in ("cat/1.png", "cat/.hidden.png", ".cache/dog.png", "dog/2.png", "free.png"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (4, 4)).save(tmp_path / rel)
    (tmp_path / "cat" / "notes.txt").write_text("not an image")
    ds = read_imagefolder(tmp_path)
    assert sorted(i.path for i in ds.images) == ["cat/1.png", "dog/2.png", "free.png"]
    assert sorted((lab.image, lab.label) for lab in ds.labels) == [("cat/1.png", "cat"), ("dog/2.png", "dog")]


def test_write_then_read_round_trip_and_multi_class_images(tmp_path):
    src = tmp_path / "src"
    for rel in ("a.png", "deep/b.png", "c.png"):
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (4, 4)).save(src / rel)
    box = Box(0, 0, 1, 1, image_size=(4, 4))
    ds = Dataset(
        [ImageInfo("a.png"), ImageInfo("deep/b.png"), ImageInfo("c.png")],
        [Label("a.png", "cat"), Label("deep/b.png", "dog", box=box), Label("deep/b.png", "cat", box=box)],
        Ontology(("cat", "dog")),
    )
    with pytest.warns(FormatWarning, match="1 image"):
        write_imagefolder(ds, src, tmp_path / "out")
    back = read_imagefolder(tmp_path / "out")
    assert sorted((lab.image, lab.label) for lab in back.labels) == [
        ("cat/a.png", "cat"), ("cat/deep/b.png", "cat"), ("dog/deep/b.png", "dog")]
    assert "c.png" in {i.path for i in back.images}  # unlabeled stays at the root


def test_write_keeps_class_folder_without_nesting_it_again(tmp_path):
    src = tmp_path / "src"
    (src / "cat").mkdir(parents=True)
    Image.new("RGB", (4, 4)).save(src / "x.png")
    Image.new("RGB", (4, 4)).save(src / "cat" / "1.png")
    write_imagefolder(read_imagefolder(src), src, tmp_path / "out")
    assert sorted(p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*.png")) == [
        "cat/1.png", "x.png"]


def test_write_refuses_class_names_that_are_not_folder_names(tmp_path):
    ds = Dataset([ImageInfo("a.png")], [Label("a.png", "../up")], Ontology(("../up",)))
    with pytest.raises(InputError, match="a.png: class '../up' cannot be a folder name"):
        write_imagefolder(ds, tmp_path, tmp_path / "out")


def test_write_lists_missing_images(tmp_path):
    ds = Dataset([ImageInfo("gone.png")], [Label("gone.png", "cat")], Ontology(("cat",)))
    with pytest.raises(InputError, match="1 image.* not under .*: gone.png"):
        write_imagefolder(ds, tmp_path, tmp_path / "out")
