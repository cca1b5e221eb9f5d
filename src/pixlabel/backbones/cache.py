"""Embedding cache keyed by image content hash and backbone, in append-only shards.

A killed run keeps every finished shard, so re-running resumes where it stopped; a moved or renamed file
keeps its cached embedding because the key is its content, not its path.

>>> cache = EmbeddingCache(Path("ws/cache/tf_efficientnet_lite0-224px-0123abcd"))  # doctest: +SKIP
>>> cache.add(["9f86d0…"], emb, thumbs); "9f86d0…" in cache  # doctest: +SKIP
True
"""

from __future__ import annotations

import logging
import os
import uuid
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)


class EmbeddingCache:
    """Rows ``content hash -> (embedding (D,) float16, thumbnail (32, 32, 3) uint8)`` in one folder."""

    def __init__(self, directory: Path):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._rows: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for shard in sorted(self.directory.glob("part-*.npz")):
            try:
                with np.load(shard) as data:
                    hashes, emb, thumbs = data["hashes"], data["emb"], data["thumbs"]
            except Exception as exc:  # a damaged shard only costs recomputing its images, never the run
                log.warning("ignoring unreadable cache shard %s: %s", shard, exc)
                continue
            for i, h in enumerate(hashes.tolist()):
                self._rows[h] = (emb[i], thumbs[i])

    def __contains__(self, content_hash: str) -> bool:
        return content_hash in self._rows

    def __len__(self) -> int:
        return len(self._rows)

    def __bool__(self) -> bool:  # an empty cache is still a cache: `if cache:` must not skip writing to it
        return True

    def get(self, content_hash: str) -> tuple[np.ndarray, np.ndarray]:
        return self._rows[content_hash]

    def add(self, hashes: list[str], emb: np.ndarray, thumbs: np.ndarray) -> None:
        """Append one shard. Written to a temp name then renamed, so a shard is whole or absent.

        Shard names are unique (not counters) so two runs sharing a cache never overwrite each other.
        """
        if not hashes:
            return
        if len(hashes) != len(emb) or len(hashes) != len(thumbs):
            raise ValueError(f"{len(hashes)} hashes but {len(emb)} embeddings and {len(thumbs)} thumbnails")
        name = f"part-{uuid.uuid4().hex}.npz"
        tmp = self.directory / f".tmp-{name}"  # outside the part-*.npz pattern until it is complete
        emb16 = np.asarray(emb, dtype=np.float16)  # halves the cache; cosine to float32 stays > 0.9999
        with open(tmp, "wb") as fh:
            np.savez(fh, hashes=np.array(hashes), emb=emb16, thumbs=np.asarray(thumbs, dtype=np.uint8))
        os.replace(tmp, self.directory / name)
        for i, h in enumerate(hashes):
            self._rows[h] = (emb16[i], thumbs[i])
