"""The labeling suite's datasets: real folders that differ the way users' folders do.

| name | colour | files | balance | classes |
|---|---|---|---|---|
| fashion-mnist | grey | 28 px | balanced | fine (10 garments) |
| mnist | grey | 28 px | balanced | fine (10 digits) |
| digits | grey | 8 px | balanced | fine (sklearn's 1,797 scans) |
| clipart-broad | colour, RGBA/palette/grey+alpha | 16-6,000 px | 5.7:1 | broad (8 top-level categories) |
| clipart-fine | colour, same files | same | 5.5:1 | finer (14 sub-categories) |
| icons | colour, RGBA | 22-256 px | 19:1 | broad (7 icon contexts) |

The colour sets are files no one here drew: Debian's ``openclipart-png`` (public-domain clip art sorted into
category folders) and ``oxygen-icon-theme`` (KDE's icons, sorted by context). Each set is a folder on disk plus
the truth per relative path; the grey sets are written once as PNG files so every set goes through the same
file pipeline as a user's folder.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

CLIPART = Path("/usr/share/openclipart/png")
OXYGEN = Path("/usr/share/icons/oxygen/base")
DEBIAN_PACKAGES = {"clipart-broad": "openclipart-png", "clipart-fine": "openclipart-png",
                   "icons": "oxygen-icon-theme", "fashion-mnist": "dataset-fashion-mnist"}

CLIPART_BROAD = ("animals", "buildings", "food", "geography", "office", "people", "plants", "transportation")
CLIPART_FINE = ("animals/birds", "animals/bugs", "animals/mammals", "animals/fish", "food/fruit", "food/desserts",
                "food/beverages", "food/breads_and_carbs", "food/meats_and_eggs", "people/clothing",
                "people/smilies", "transportation/vehicles", "recreation/music", "recreation/sports")
ICON_CONTEXTS = ("actions", "apps", "categories", "devices", "mimetypes", "places", "status")
ICON_SIZES = ("22x22", "32x32", "48x48", "64x64", "128x128", "256x256")


@dataclass(frozen=True)
class SuiteSet:
    name: str
    root: Path
    paths: list[str]  # relative to root
    labels: np.ndarray  # (N,) class index
    classes: tuple[str, ...]
    traits: dict[str, str] = field(default_factory=dict)

    def truth(self) -> dict[str, int]:
        return dict(zip(self.paths, self.labels.tolist(), strict=True))


def _folder_set(name: str, root: Path, class_dirs: tuple[str, ...], traits: dict[str, str]) -> SuiteSet:
    paths, labels = [], []
    for k, sub in enumerate(class_dirs):
        for p in sorted((root / sub).rglob("*.png")):
            paths.append(str(p.relative_to(root)))
            labels.append(k)
    return SuiteSet(name, root, paths, np.asarray(labels, np.int64), tuple(d.split("/")[-1] for d in class_dirs),
                    traits)


def clipart_broad() -> SuiteSet:
    return _folder_set("clipart-broad", CLIPART, CLIPART_BROAD,
                       {"colour": "colour", "size": "16-6000 px", "balance": "5.7:1", "granularity": "broad"})


def clipart_fine() -> SuiteSet:
    return _folder_set("clipart-fine", CLIPART, CLIPART_FINE,
                       {"colour": "colour", "size": "16-6000 px", "balance": "5.5:1", "granularity": "fine"})


def icons(seed: int = 0) -> SuiteSet:
    """Every icon name of a context once, at a size drawn at random from the sizes the theme ships it in."""
    rng = np.random.default_rng(seed)
    paths, labels = [], []
    for k, ctx in enumerate(ICON_CONTEXTS):
        for name in sorted(p.name for p in (OXYGEN / "48x48" / ctx).glob("*.png")):
            have = [s for s in ICON_SIZES if (OXYGEN / s / ctx / name).is_file()]
            paths.append(f"{rng.choice(have)}/{ctx}/{name}")
            labels.append(k)
    return SuiteSet("icons", OXYGEN, paths, np.asarray(labels, np.int64), ICON_CONTEXTS,
                    {"colour": "colour", "size": "22-256 px", "balance": "19:1", "granularity": "broad"})


def _grey_set(name: str, images: np.ndarray, labels: np.ndarray, classes: tuple[str, ...], work: Path,
              traits: dict[str, str]) -> SuiteSet:
    from PIL import Image

    root = work / name
    root.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, img in enumerate(images):
        rel = f"{i:05d}.png"
        if not (root / rel).exists():
            Image.fromarray(img).save(root / rel)
        paths.append(rel)
    return SuiteSet(name, root, paths, labels.astype(np.int64), classes, traits)


def fashion_mnist(work: Path, n: int = 5_000) -> SuiteSet:
    from pixlabel.datasets import fashion_mnist as load
    from pixlabel.datasets import subsample

    ds = subsample(load(), n, seed=0)
    return _grey_set("fashion-mnist", ds.images, ds.labels, ds.classes, work,
                     {"colour": "grey", "size": "28 px", "balance": "1:1", "granularity": "fine"})


def mnist(work: Path) -> SuiteSet:
    from pixlabel.datasets import mnist_5k

    ds = mnist_5k()
    return _grey_set("mnist", ds.images, ds.labels, ds.classes, work,
                     {"colour": "grey", "size": "28 px", "balance": "1:1", "granularity": "fine"})


def digits(work: Path) -> SuiteSet:
    from sklearn.datasets import load_digits

    d = load_digits()
    images = np.rint(d.images * (255 / 16)).astype(np.uint8)  # (1797, 8, 8), 17 grey levels
    return _grey_set("digits", images, d.target, tuple(str(i) for i in range(10)), work,
                     {"colour": "grey", "size": "8 px", "balance": "1:1", "granularity": "fine"})


def load(name: str, work: Path) -> SuiteSet:
    loaders = {"fashion-mnist": lambda: fashion_mnist(work), "mnist": lambda: mnist(work),
               "digits": lambda: digits(work), "clipart-broad": clipart_broad, "clipart-fine": clipart_fine,
               "icons": icons}
    if name not in loaders:
        raise SystemExit(f"unknown suite set {name!r}; known: {', '.join(loaders)}")
    return loaders[name]()


ALL_SETS = ("fashion-mnist", "mnist", "digits", "clipart-broad", "clipart-fine", "icons")
