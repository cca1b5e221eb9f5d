"""Embedding on Ray Data: ``map_batches`` over an actor pool, each actor holding one prepared backbone.

The driver plans the work exactly like the local engine (identical files once, cached files not at all),
ships the backbone once through Ray's object store, and assembles the result in input order, so labels
from ``--engine ray`` and ``--engine local`` agree. Workers read images by absolute path: on a multi-node
cluster the image folder must be mounted at the same path on every node (NFS, a bucket mount).

Example::

    engine = RayEngine(address=None)          # starts a local Ray (2 CPUs, no dashboard, 127.0.0.1)
    result = engine.embed(files, create_backbone(image_size=96))
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pixlabel.backbones.base import Backbone
from pixlabel.backbones.cache import EmbeddingCache
from pixlabel.backbones.embed import THUMB_SIZE, EmbedResult, assemble_result, decode_for_model, files_to_embed
from pixlabel.errors import InputError
from pixlabel.io.images import DEFAULT_MAX_PIXELS, ImageFile

log = logging.getLogger(__name__)


class EmbedActor:
    """One Ray actor: decodes a batch of files and embeds them with its own copy of the backbone."""

    def __init__(self, backbone_ref: Any, precision: str, max_pixels: int, threads: int) -> None:
        import ray
        import torch

        from pixlabel.backbones.embed import Embedder

        torch.set_num_threads(threads)  # an actor owns its CPUs; more threads than that only contend
        self.backbone: Backbone = ray.get(backbone_ref[0])  # wrapped in a list so Ray does not resolve it early
        self.embedder = Embedder(self.backbone, precision=precision)
        self.size = self.backbone.image_size
        self.max_pixels = max_pixels

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        n = len(batch["hash"])
        dim = self.embedder(np.zeros((1, self.size, self.size, 3), np.uint8)).shape[1] if n else 0
        emb = np.zeros((n, dim), np.float32)
        thumbs = np.zeros((n, THUMB_SIZE, THUMB_SIZE, 3), np.uint8)
        errors = np.full(n, "", dtype=object)
        inputs, rows = [], []
        for i in range(n):
            f = ImageFile(str(batch["path"][i]), Path(str(batch["abs_path"][i])), 0, str(batch["hash"][i]))
            decoded = decode_for_model(f, self.size, max_pixels=self.max_pixels)
            if isinstance(decoded, str):
                errors[i] = decoded
                continue
            inputs.append(decoded[0])
            thumbs[i] = decoded[1]
            rows.append(i)
        if rows:
            emb[rows] = self.embedder(np.stack(inputs))
        return {"hash": batch["hash"], "emb": emb, "thumb": thumbs, "error": errors.astype(str)}


def ensure_ray(address: str | None, *, num_cpus: int | None = None) -> None:
    """Connect to ``address`` or start a private local Ray bound to 127.0.0.1 (no dashboard)."""
    import ray

    if ray.is_initialized():
        return
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no usage reports from an offline box
    for name in ("ray", "ray.data"):  # Ray's per-dataset INFO lines are not for our users; -v shows them
        if not log.isEnabledFor(logging.DEBUG):
            logging.getLogger(name).setLevel(logging.WARNING)
    try:
        if address:
            ray.init(address=address, log_to_driver=False, logging_level=logging.WARNING)
        else:
            ray.init(num_cpus=num_cpus or os.cpu_count() or 1, include_dashboard=False,
                     _node_ip_address="127.0.0.1", log_to_driver=False, logging_level=logging.WARNING)
    except ConnectionError as exc:
        raise InputError(f"cannot connect to the Ray cluster at {address!r}: {exc}") from exc


class RayEngine:
    name = "ray"

    def __init__(self, *, address: str | None = None, actors: int | None = None) -> None:
        self.address = address
        self.actors = actors

    def embed(self, files: Sequence[ImageFile], backbone: Backbone, *, cache_dir: Path | None = None,
              batch_size: int = 64, workers: int = 2, precision: str = "auto",
              max_pixels: int = DEFAULT_MAX_PIXELS) -> EmbedResult:
        files = list(files)
        cache = EmbeddingCache(cache_dir / backbone.cache_key) if cache_dir is not None else None
        todo = files_to_embed(files, cache)
        fresh: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        failed: dict[str, str] = {}
        if todo:
            fresh, failed = self._compute(list(todo.values()), backbone, batch_size=batch_size,
                                          precision=precision, max_pixels=max_pixels)
            if cache is not None and fresh:
                hashes = list(fresh)
                cache.add(hashes, np.stack([fresh[h][0] for h in hashes]), np.stack([fresh[h][1] for h in hashes]))
        return assemble_result(files, fresh, failed, cache, dim=backbone.dim)

    def _compute(self, todo: list[ImageFile], backbone: Backbone, *, batch_size: int, precision: str,
                 max_pixels: int) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], dict[str, str]]:
        import ray
        import ray.data

        from pixlabel.progress import bar

        ensure_ray(self.address)
        cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))
        actors = self.actors or cpus
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = False  # our own bar below; Ray's would interleave with it
        items = [{"path": f.path, "abs_path": str(f.abs_path), "hash": f.content_hash} for f in todo]
        # blocks of a few batches each: enough blocks for every actor, few enough to keep overhead low
        ds = ray.data.from_items(items, override_num_blocks=max(actors, min(len(items) // batch_size + 1, 4 * actors)))
        out = ds.map_batches(
            EmbedActor, batch_size=batch_size, batch_format="numpy", compute=ray.data.ActorPoolStrategy(size=actors),
            num_cpus=1, fn_constructor_kwargs={"backbone_ref": [ray.put(backbone)], "precision": precision,
                                               "max_pixels": max_pixels, "threads": max(1, cpus // actors)})
        fresh: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        failed: dict[str, str] = {}
        with bar(desc=f"embed {backbone.name} (ray, {actors} actors)", total=len(todo), unit="img") as progress:
            for batch in out.iter_batches(batch_size=None, batch_format="numpy"):
                for h, e, t, err in zip(batch["hash"], batch["emb"], batch["thumb"], batch["error"], strict=True):
                    if err:
                        failed[str(h)] = str(err)
                    else:
                        fresh[str(h)] = (np.asarray(e, np.float32), np.asarray(t, np.uint8))
                progress.update(len(batch["hash"]))
        return fresh, failed
