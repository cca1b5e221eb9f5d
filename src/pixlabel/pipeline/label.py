"""``pixlabel label``: ingest -> embed (cached) -> choose a labeler by CV -> calibrate -> store -> export.

Resumable: embeddings are cached by content hash in finished shards, and the store keeps every human label,
so a killed run re-run with the same command picks up where it stopped.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Collection, Container, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from pixlabel.backbones import create_backbone
from pixlabel.backbones.sizing import choose_image_size
from pixlabel.config import save_config
from pixlabel.errors import InputError
from pixlabel.io.images import IMAGE_EXTENSIONS, FoundFile, scan_images
from pixlabel.io.ingest import ingest
from pixlabel.pipeline.config import LabelConfig
from pixlabel.pipeline.duplicates import (
    ContentSeeds,
    Duplicates,
    duplicate_notes,
    find_duplicates,
    seeds_by_content,
    unique_rows,
    write_duplicates_csv,
)
from pixlabel.pipeline.seeds import (
    FolderFiles,
    SeedRow,
    check_identical_seeds,
    check_seed_paths,
    check_seeds,
    drop_unreadable_seeds,
    read_seed_rows,
    seeds_from_folders,
)
from pixlabel.pipeline.suspects import Suspect, suspects, write_suspects_csv
from pixlabel.records import Label, Provenance
from pixlabel.store import LabelStore, open_store
from pixlabel.workspace import Workspace

if TYPE_CHECKING:  # torch, sklearn and cleanlab load after the input checks, not before them (seconds)
    from pixlabel.pipeline.decide import Decision

log = logging.getLogger(__name__)
COPY_LABELER = "copy-of-seed"  # provenance of a model label copied from the seed of a byte-identical file


@dataclass
class LabelRun:
    """What a run produced, for the CLI summary, the demo and benchmarks."""

    workspace: Workspace
    classes: list[str]
    paths: list[str]  # (N,) pool images, embedding order
    seeds: dict[str, str]  # path -> human class
    predicted: np.ndarray  # (N,) class index
    confidence: np.ndarray  # (N,) calibrated
    accepted: np.ndarray  # (N,) bool (seeds count as accepted)
    decision: Decision
    errors: list[tuple[str, str]]
    images_root: str
    thumbs: np.ndarray  # (N, t, t, 3) uint8
    labeled_idx: np.ndarray  # (S,) a pool row per seeded image, aligned with the decision's seed arrays
    y: np.ndarray  # (S,) their class index (copies of one image count once; every seed is in ``seeds``)
    embeddings: np.ndarray  # (N, D)
    timings: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # what the run itself has to say (skipped seeds, duplicates)
    duplicates: Duplicates | None = None
    suspects: list[Suspect] = field(default_factory=list)  # flagged seeds, positions into labeled_idx / y
    copy_of_seed: np.ndarray | None = None  # (N,) bool: not a seed, but byte-identical to one (took its label)


class StageTimer:
    """Wall time per pipeline stage, for the summary, the report and the run record."""

    def __init__(self) -> None:
        self.timings: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        log.info("%s …", name)
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.timings[name] = round(time.perf_counter() - t0, 2)


def _store_for(config: LabelConfig, ws: Workspace) -> LabelStore:
    return open_store(config.db or ws.db_path)


def _seed_labels(config: LabelConfig, paths: Collection[str] | FolderFiles, errors: dict[str, str],
                 store: LabelStore, *, rows: list[SeedRow] | None = None) -> tuple[dict[str, str], set[str], set[str]]:
    """Seeds = SEED.csv (or ImageFolder dirs) + every human label already in the store (review corrections,
    which outrank the seed file). Also returns the paths whose human label is already stored as is, and the
    paths of review corrections (human labels not from the seed file). ``rows``: the seed file already read;
    ``paths``: the image files (a list, a set, or :class:`FolderFiles` that stats each path asked about)."""
    known: Container[str] = paths if isinstance(paths, FolderFiles) else set(paths)
    if config.labels:
        if rows is None:
            rows = read_seed_rows(Path(config.labels))
        listed = known if not errors or isinstance(paths, FolderFiles) else {*paths, *errors}
        check_seed_paths(rows, listed, origin=config.labels, root=config.images)
        seeds = {r.path: r.label for r in rows if r.path not in errors}
    elif isinstance(paths, FolderFiles):
        raise ValueError("the ImageFolder layout needs the listed paths, not FolderFiles")
    else:
        seeds = {p: c for p, c in seeds_from_folders(paths).items() if p not in errors}
    stored, reviewed = set(), set()
    for lab in store.labels(source="human"):
        if lab.box is None and lab.image in known:
            seeds[lab.image] = lab.label
            stored.add(lab.image)
            if lab.provenance.labeler != "seed":
                reviewed.add(lab.image)
    return seeds, stored, reviewed


def _check_trainable(classes: list[str], content: ContentSeeds, paths: list[str], *, zero_shot: bool,
                     origin: str) -> None:
    """Each class still has a seed to learn from once seeds that disagree on one image are set aside."""
    if zero_shot:
        return
    left = {classes[k] for k in content.y.tolist()}
    lost = [c for c in classes if c not in left]
    if lost:
        shown = "; ".join(" = ".join(paths[r] for r in g) for g in content.conflicts[:3])
        raise InputError(f"{origin}: class(es) {', '.join(lost)} have seeds only on images that are also seeded "
                         f"with another class (byte-identical files: {shown}); give each class a seed of its own")


def _check_files(config: LabelConfig) -> None:
    """Files named by flags exist (a typo must not surface after an hour of embedding)."""
    for key, value in (("--labels", config.labels), ("--weights", config.weights),
                       ("--prompts", config.prompts if config.zero_shot else None)):
        if value and not Path(value).is_file():
            raise InputError(f"{key} {value!r}: no such file")


@dataclass
class Preflight:
    """What the checks before ingest found: the validated seeds, and the folder listing when it was needed."""

    listing: tuple[list[FoundFile], list[tuple[str, str]]] | None
    seeds: dict[str, str]
    stored: set[str]
    reviewed: set[str]
    classes: list[str]
    origin: str


def preflight(config: LabelConfig, store: LabelStore) -> Preflight:
    """Every input check that needs no pixels: seed file readable and well-formed, rows naming image files in the
    folder, no byte-identical seeds with two classes, >= 2 classes, each declared class seeded.

    A seed file is checked with one ``stat`` per row, so a bad one fails in about a second on any folder; only the
    ImageFolder layout (where the folders are the seeds) lists the folder here, and ingest reuses that listing.
    No image is hashed or decoded, except seeds that share a file size with a seed of another class."""
    _check_files(config)
    listing = None
    files: Collection[str] | FolderFiles
    if config.labels:
        if not Path(config.images).is_dir():
            scan_images(config.images)  # raises the folder's own InputError (missing / not a folder)
        files = FolderFiles(config.images)
    else:
        listing = scan_images(config.images)  # names and sizes only
        files = [f.path for f in listing[0]]
        if not files:
            raise InputError(f"{config.images}: no image files found (looked for "
                             f"{', '.join(sorted(IMAGE_EXTENSIONS))})")
    rows = read_seed_rows(Path(config.labels)) if config.labels else None
    seeds, stored, reviewed = _seed_labels(config, files, {}, store, rows=rows)
    origin = config.labels or f"{config.images} (ImageFolder layout: CLASS/image files are seeds)"
    classes = check_seeds(seeds, origin=origin, declared=_declared(config), zero_shot=config.zero_shot)
    if rows is not None and isinstance(files, FolderFiles):
        found = {r.path: f for r in rows if (f := files.get(r.path)) is not None}
        check_identical_seeds(rows, found, origin=origin)
    return Preflight(listing, seeds, stored, reviewed, classes, origin)


def _declared(config: LabelConfig) -> list[str]:
    return [c.strip() for c in config.classes.split(",") if c.strip()] if config.classes else []


R = TypeVar("R")
RunBody = Callable[[LabelConfig, Workspace, LabelStore, int, StageTimer], R]


def tracked_run(config: LabelConfig, body: RunBody[R], stats: Callable[[R], dict[str, Any]]) -> R:
    """Create the workspace, record the run in the store (finished, failed or interrupted) around ``body``."""
    ws = Workspace.create(config.out)
    save_config(config, ws.config_yaml)
    timer = StageTimer()
    store = _store_for(config, ws)
    run_id = store.start_run("label", dataclasses.asdict(config))
    try:
        result = body(config, ws, store, run_id, timer)
    except BaseException as exc:
        store.finish_run(run_id, status="interrupted" if isinstance(exc, KeyboardInterrupt) else "failed")
        store.close()
        raise
    store.finish_run(run_id, stats={"timings": timer.timings, **stats(result)})
    store.close()
    return result


def run_label(config: LabelConfig) -> LabelRun:
    return tracked_run(config, _run, lambda r: {"method": r.decision.method, "accepted": int(r.accepted.sum()),
                                                "images": len(r.paths)})


def _run(config: LabelConfig, ws: Workspace, store: LabelStore, run_id: int, timer: StageTimer) -> LabelRun:
    with timer.stage("check"):
        pre = preflight(config, store)
    with timer.stage("ingest"):
        scanned = ingest(config.images, max_pixels=config.max_pixels, decode=False, workers=config.workers,
                         listing=pre.listing)
        if not scanned.images:
            raise InputError(f"{config.images}: no readable images found")
        store.sync_images((f.path, f.content_hash) for f in scanned.images)
    from pixlabel.engines import get_engine
    from pixlabel.labelers.protocol import Pool
    from pixlabel.pipeline.decide import decide

    with timer.stage("embed"):
        image_size = config.image_size
        if image_size is None:
            choice = choose_image_size([f.abs_path for f in scanned.images])
            log.info("%s", choice.describe())
            image_size = choice.size
        backbone = create_backbone(config.backbone, weights=Path(config.weights) if config.weights else None,
                                   image_size=image_size)
        engine = get_engine(config.engine, address=config.ray_address)  # local, or Ray Data actors
        emb = engine.embed(scanned.images, backbone, cache_dir=ws.cache_dir,
                                        batch_size=config.batch_size, workers=config.workers,
                                        precision=config.precision, max_pixels=config.max_pixels)
    errors = sorted(scanned.errors + emb.errors)
    store.record_errors(errors)
    store.export_errors_csv(ws.errors_csv)  # early: a later failure still leaves the list of bad files
    paths = [f.path for f in emb.files]
    if len(paths) < 2:
        raise InputError(f"{config.images}: only {len(paths)} readable image(s); need at least 2")

    seeds, run_notes = drop_unreadable_seeds(pre.seeds, set(paths), pre.classes, origin=pre.origin,
                                             zero_shot=config.zero_shot)
    stored, reviewed, classes = pre.stored, pre.reviewed, pre.classes
    store.ensure_classes(classes)
    store.put_labels([Label(p, c, 1.0, Provenance(source="human", labeler="seed"))
                      for p, c in seeds.items() if p not in stored], run_id=run_id, actor="seed")
    row = {p: i for i, p in enumerate(paths)}
    seed_rows = np.array([row[p] for p in seeds], dtype=np.int64)  # (M,) every human seed
    seed_y = np.array([classes.index(c) for c in seeds.values()], dtype=np.int64)
    # Byte-identical files are one image: the labelers see each content once (no graph clique of copies, no
    # copy of a training seed scored as held out), and every copy gets the one label back.
    with timer.stage("duplicates"):
        hashes = [f.content_hash for f in emb.files]
        reps, inverse = unique_rows(hashes)  # (U,) first row of each content, (N,) content of each row
        dups = find_duplicates(hashes, emb.embeddings, seed=config.seed)
        write_duplicates_csv(dups, paths, ws.root / "duplicates.csv")
    content = seeds_by_content(inverse, seed_rows, seed_y, np.array([p not in reviewed for p in seeds], bool))
    seed_class = {int(r): classes[k] for r, k in zip(seed_rows, seed_y, strict=True)}
    run_notes += duplicate_notes(dups, content.conflicts, paths, seed_class)
    _check_trainable(classes, content, paths, zero_shot=config.zero_shot, origin=pre.origin)
    pool = Pool(emb.embeddings[reps], None if emb.thumbs is None else emb.thumbs[reps], config.seed)

    fixed = {}
    if config.zero_shot:
        with timer.stage("zero-shot"):
            from pixlabel.pipeline.zero_shot import zero_shot_probs

            fixed["zero-shot"] = zero_shot_probs(config, [emb.files[r] for r in reps], classes,
                                                 cache_dir=ws.cache_dir)
    with timer.stage("label"):
        decision = decide(pool, content.labeled, content.y, n_classes=len(classes), method=config.method,
                          target_precision=config.target_precision, seed=config.seed, max_folds=config.cv_folds,
                          fixed=fixed, checkable=content.checkable)
    predicted = decision.probs.argmax(1)[inverse]  # (N,) back to every file
    confidence = decision.confidence[inverse]
    rounds = np.asarray(decision.rounds)[inverse]
    accepted = confidence >= decision.threshold.threshold
    seeded = np.full(len(reps), -1, dtype=np.int64)  # class of each content with agreeing seeds
    seeded[content.labeled] = content.y
    copy_of_seed = seeded[inverse] >= 0  # copies of a seed take the seed's label
    predicted[copy_of_seed], confidence[copy_of_seed], accepted[copy_of_seed] = seeded[inverse][copy_of_seed], 1.0, True
    disputed = np.zeros(len(paths), bool)  # copies of an image the seeds disagree on: a person decides
    disputed[[r for g in content.conflicts for r in g]] = True
    accepted[disputed] = False
    predicted[seed_rows], confidence[seed_rows], accepted[seed_rows] = seed_y, 1.0, True

    with timer.stage("store"):
        version = f"{backbone.cache_key}/{decision.method}"
        seed_set = set(seeds)
        model_labels = [
            Label(p, classes[predicted[i]], float(confidence[i]),
                  Provenance(source="model", labeler=COPY_LABELER if copy_of_seed[i] else decision.method,
                             model_version=version, round=int(rounds[i])),
                  status="accepted" if accepted[i] else "review")
            for i, p in enumerate(paths) if p not in seed_set
        ]
        store.put_labels(model_labels, run_id=run_id)
        store.export_labels_csv(ws.labels_csv)
        store.export_errors_csv(ws.errors_csv)
        flagged = suspects(decision, content.y, content.labeled)
        write_suspects_csv(flagged, [paths[r] for r in content.rows], classes, ws.root / "suspects.csv")
    run = LabelRun(ws, classes, paths, seeds, predicted, confidence, accepted, decision, errors,
                   config.images, emb.thumbs, content.rows, content.y, emb.embeddings, timer.timings, run_notes,
                   dups, flagged, copy_of_seed & ~np.isin(np.arange(len(paths)), seed_rows))
    with timer.stage("report"):
        from pixlabel.pipeline.report import write_run_report

        write_run_report(run)
    return run
