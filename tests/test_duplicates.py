"""Duplicates are part of labeling: exact copies (same bytes) get one label, near copies are reported.

Pure functions on arrays first, then `pixlabel label` on real Fashion-MNIST files with copied duplicates.
"""

from __future__ import annotations

import csv
import io
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, PngImagePlugin
from sklearn.datasets import load_digits

from pixlabel.cli.main import main
from pixlabel.datasets import fashion_mnist
from pixlabel.pipeline.duplicates import (
    Duplicates,
    centered_unit,
    exact_groups,
    find_duplicates,
    near_pairs,
    seed_conflicts,
    seeds_by_content,
    unique_rows,
    write_duplicates_csv,
)


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


# ---------------------------------------------------------------- arrays


def test_exact_groups_and_unique_rows() -> None:
    hashes = ["h1", "h2", "h1", "h3", "h2", "h1"]
    assert exact_groups(hashes) == [[0, 2, 5], [1, 4]]
    reps, inverse = unique_rows(hashes)
    assert reps.tolist() == [0, 1, 3]
    assert inverse.tolist() == [0, 1, 0, 2, 1, 0]
    assert exact_groups(["a", "b"]) == []


def test_seeds_collapse_onto_contents_and_disagreements_are_set_aside() -> None:
    inverse = np.array([0, 1, 0, 2, 1, 3])  # rows 0/2 are one image, rows 1/4 another
    seed_rows = np.array([0, 2, 1, 4, 3])
    seed_y = np.array([5, 5, 1, 2, 0])  # rows 0 and 2 agree (5); rows 1 and 4 disagree (1 vs 2)
    checkable = np.array([True, False, True, True, True])
    c = seeds_by_content(inverse, seed_rows, seed_y, checkable)
    assert c.labeled.tolist() == [0, 2] and c.y.tolist() == [5, 0]
    assert c.rows.tolist() == [0, 3]  # a seed's own row stands for its content
    assert c.checkable.tolist() == [False, True]  # one copy is a review correction: never held out
    assert c.conflicts == [[1, 4]]
    assert seed_conflicts([[0, 2], [1, 4]], {0: "a", 2: "a", 1: "b", 4: "c"}) == [[1, 4]]


def test_near_pairs_match_brute_force_cosine_on_real_images() -> None:
    """Candidate search (PCA-64 + kNN) then full cosine finds exactly what an N x N product finds."""
    x = load_digits().data.astype(np.float32)[:600]  # (600, 64) real handwritten digits
    rng = np.random.default_rng(0)
    planted = [(3, 600), (77, 601), (400, 602)]
    copies = np.stack([x[i] + rng.normal(0, 0.3, x.shape[1]).astype(np.float32) for i, _ in planted])
    emb = np.concatenate([x, copies])  # a slightly noisy copy of three digits
    unit = centered_unit(emb)
    sim = unit @ unit.T
    np.fill_diagonal(sim, -1)
    natural = max(sim[i, j] for i in range(600) for j in range(i + 1, 600))  # the closest distinct pair
    copy_sim = min(sim[i, j] for i, j in planted)
    assert copy_sim > natural  # the fixture is what the test says
    threshold = (natural + copy_sim) / 2
    assert near_pairs(emb, threshold=threshold).tolist() == [list(p) for p in planted]
    # at a loose threshold many same-digit pairs qualify; the candidate search may skip edges inside a dense
    # cluster, but the groups (connected components) must be the brute-force ones
    brute = np.argwhere(np.triu(sim >= 0.9, 1))
    assert len(brute) > 50
    assert _components(near_pairs(emb, threshold=0.9), len(emb)) == _components(brute, len(emb))


def _components(pairs: np.ndarray, n: int) -> list[list[int]]:
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    _, comp = connected_components(coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n)))
    groups: dict[int, list[int]] = {}
    for i, c in enumerate(comp.tolist()):
        groups.setdefault(c, []).append(i)
    return sorted(g for g in groups.values() if len(g) > 1)


def test_find_duplicates_lists_near_groups_with_their_exact_copies(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    base = rng.normal(size=(6, 32)).astype(np.float32)
    emb = np.stack([base[0], base[1], base[0], base[2], base[1] + 0.01, base[3]])
    hashes = ["a", "b", "a", "c", "d", "e"]  # rows 0/2 identical files; row 4 a near copy of row 1
    dups = find_duplicates(hashes, emb, threshold=0.99)
    assert dups.exact == [[0, 2]] and dups.near == [[1, 4]] and dups.exact_rows() == 1
    emb[2] = emb[0]
    emb[5] = base[0] * 1.001  # near row 0: the near group carries row 0's exact copy (row 2) along
    dups = find_duplicates(hashes, emb, threshold=0.99)
    assert dups.near == [[0, 2, 5], [1, 4]]
    out = tmp_path / "duplicates.csv"
    write_duplicates_csv(dups, [f"f{i}.png" for i in range(6)], out)
    assert out.read_text().splitlines() == [
        "group,path,kind", "1,f0.png,exact", "1,f2.png,exact",
        "2,f0.png,near", "2,f2.png,near", "2,f5.png,near", "3,f1.png,near", "3,f4.png,near"]
    write_duplicates_csv(Duplicates([], [], 0.97), [], out)
    assert out.read_text() == "group,path,kind\n"  # always written, so a script can rely on it


# ---------------------------------------------------------------- a real run


def _resaved(src: Path, dest: Path) -> None:
    """The same pixels saved again with a text chunk: other bytes, identical picture (a near duplicate)."""
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "re-saved by an image viewer")
    Image.open(src).save(dest, pnginfo=info)


@pytest.fixture(scope="module")
def fashion_folder(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """300 real Fashion-MNIST images as PNG (classes hidden in ``truth``)."""
    ds = fashion_mnist()
    root = tmp_path_factory.mktemp("fm") / "images"
    root.mkdir()
    truth = {}
    for i in range(300):
        name = f"{i:04d}.png"
        Image.fromarray(ds.images[i]).save(root / name)
        truth[name] = ds.classes[ds.labels[i]]
    return root, truth


@pytest.mark.slow
def test_exact_copies_share_the_seed_label_and_duplicates_are_reported(fashion_folder, tmp_path: Path,
                                                                       capsys) -> None:
    source, truth = fashion_folder
    images = tmp_path / "images"
    shutil.copytree(source, images)
    by_class: dict[str, list[str]] = {}
    for p, c in sorted(truth.items()):
        by_class.setdefault(c, []).append(p)
    seeds = {p: c for c, ps in by_class.items() for p in ps[:4]}
    seeded = next(iter(seeds))
    unseeded = next(p for p in sorted(truth) if p not in seeds)
    shutil.copy(images / seeded, images / "copy_of_seed.png")
    shutil.copy(images / seeded, images / "sub_copy_of_seed.png")
    shutil.copy(images / unseeded, images / "copy_of_unseeded.png")
    _resaved(images / unseeded, images / "resaved.png")
    table = tmp_path / "seeds.csv"
    table.write_text("path,label\n" + "".join(f"{p},{c}\n" for p, c in seeds.items()))
    ws = tmp_path / "ws"
    assert main(["label", str(images), "--labels", str(table), "--out", str(ws), "--image-size", "32",
                 "--method", "poisson"]) == 0
    out = capsys.readouterr().out
    assert "2 group(s) of byte-identical files (3 extra copies)" in out
    labels = {r["path"]: r for r in _rows(ws / "labels.csv")}
    for copy in ("copy_of_seed.png", "sub_copy_of_seed.png"):  # copies of a seed take the seed's label
        assert labels[copy]["label"] == seeds[seeded] and labels[copy]["status"] == "accepted"
        assert labels[copy]["source"] == "model" and labels[copy]["labeler"] == "copy-of-seed"
    assert labels[seeded]["source"] == "human"
    a, b = labels[unseeded], labels["copy_of_unseeded.png"]  # unseeded copies: one label, one confidence
    assert (a["label"], a["confidence"], a["status"]) == (b["label"], b["confidence"], b["status"])
    groups: dict[tuple[str, str], set[str]] = {}
    for r in _rows(ws / "duplicates.csv"):
        groups.setdefault((r["group"], r["kind"]), set()).add(r["path"])
    assert sorted(g for (_, k), g in groups.items() if k == "exact") == sorted(
        [{seeded, "copy_of_seed.png", "sub_copy_of_seed.png"}, {unseeded, "copy_of_unseeded.png"}], key=sorted)
    near = [g for (_, k), g in groups.items() if k == "near"]
    assert {unseeded, "copy_of_unseeded.png", "resaved.png"} in near  # same pixels, other bytes


@pytest.mark.slow
def test_imagefolder_seeds_that_disagree_on_one_image_are_listed(fashion_folder, tmp_path: Path,
                                                                 capsys) -> None:
    source, truth = fashion_folder
    root = tmp_path / "imgs"
    for i, (p, c) in enumerate(sorted(truth.items())):
        folder = root / (c if i < 120 else "unlabeled")
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copy(source / p, folder / p)
    first = sorted(truth)[0]
    other = next(c for c in sorted(set(truth.values())) if c != truth[first])
    (root / other).mkdir(exist_ok=True)
    shutil.copy(source / first, root / other / "same_picture.png")  # one image in two class folders
    shutil.copy(source / first, root / "unlabeled" / "third_copy.png")
    ws = tmp_path / "ws"
    assert main(["label", str(root), "--out", str(ws), "--image-size", "32", "--method", "poisson"]) == 0
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if "human seeds disagree on one image (byte-identical files)" in x)
    assert f"{truth[first]}/{first} ({truth[first]})" in line and f"{other}/same_picture.png ({other})" in line
    labels = {r["path"]: r for r in _rows(ws / "labels.csv")}
    assert labels[f"{truth[first]}/{first}"]["label"] == truth[first]  # human labels stay as given
    assert labels[f"{other}/same_picture.png"]["label"] == other
    assert labels["unlabeled/third_copy.png"]["status"] == "review"  # a person decides


def test_png_text_chunk_changes_bytes_not_pixels(tmp_path: Path) -> None:
    """The near-duplicate fixture above is what it claims: different files, the same pixels."""
    src = tmp_path / "a.png"
    Image.fromarray(load_digits().images[0].astype(np.uint8) * 16).save(src)
    _resaved(src, tmp_path / "b.png")
    assert src.read_bytes() != (tmp_path / "b.png").read_bytes()
    assert np.array_equal(np.asarray(Image.open(src)), np.asarray(Image.open(io.BytesIO((tmp_path / "b.png")
                                                                                       .read_bytes()))))
