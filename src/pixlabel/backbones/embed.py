"""Turn image files into embeddings ``(N, D)`` and small thumbnails, fast, cached and failure-tolerant.

Speed comes from: decoding and resizing in a thread pool while the model runs (Pillow releases the GIL),
JPEG draft decoding for big photos, and a model prepared by :mod:`pixlabel.backbones.optimize` (BatchNorm
folded into convolutions, channels-last memory, bf16 weights where the CPU has native bf16).

>>> result = embed_files(ingest("photos", decode=False).images, create_backbone())  # doctest: +SKIP
>>> result.embeddings.shape, result.errors  # doctest: +SKIP
((1198, 1280), [('b/broken.jpg', 'truncated image data (image file is truncated)')])
"""

from __future__ import annotations

import itertools
import sys
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from pixlabel.backbones.base import Backbone
from pixlabel.backbones.cache import EmbeddingCache
from pixlabel.backbones.optimize import prepare_module
from pixlabel.io.images import DEFAULT_MAX_PIXELS, ImageDecodeError, ImageFile, load_rgb
from pixlabel.progress import bar

THUMB_SIZE = 32  # thumbnails feed the in-domain representation learner
PRECISIONS = ("auto", "fp32", "bf16")
DECODE_AHEAD = 512  # images decoded per step while the model runs the previous step
MICRO_BATCH_PIXELS = 300_000  # images per model call x pixels per image: 32 at 96 px, 18 at 128, 5 at 224
GIL_SWITCH_S = 0.0005  # Python's default is 0.005; see ModelStreams.__enter__
MAX_STREAMS = 4  # more concurrent batches only add memory: 4 already keep a many-core CPU busy

Decoded = tuple[np.ndarray, np.ndarray] | str  # (model input (S, S, 3), thumbnail) uint8, or why it failed


@dataclass
class EmbedResult:
    files: list[ImageFile]  # the images that decoded, in input order
    embeddings: np.ndarray  # (N, D) float32
    thumbs: np.ndarray  # (N, THUMB_SIZE, THUMB_SIZE, 3) uint8
    errors: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)


def bf16_is_fast() -> bool:
    """True when the CPU has native bf16 (AVX512-BF16/AMX): a bf16 model then runs several times faster."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = f.read()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def decode_for_model(file: ImageFile, size: int, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> Decoded:
    """(S×S×3 model input, thumbnail) as uint8, or the human-readable reason the file cannot be used."""
    try:
        img = load_rgb(file.abs_path, max_pixels=max_pixels, draft=(size, size))
        model_in = np.asarray(img.resize((size, size), Image.Resampling.BILINEAR))
        thumb = np.asarray(img.resize((THUMB_SIZE, THUMB_SIZE), Image.Resampling.BILINEAR))
    except ImageDecodeError as exc:  # every way a file can be unusable; anything else is a bug and surfaces
        return exc.reason
    return model_in, thumb


def _decoded_chunks(files: Sequence[ImageFile], size: int, max_pixels: int, chunk: int, workers: int
                    ) -> Iterator[list[tuple[ImageFile, Decoded]]]:
    """Chunks of decoded files; the next chunk decodes in the pool while the caller runs the model."""
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="pixlabel-decode")
    try:
        pending: list[tuple[ImageFile, Future[Decoded]]] | None = None
        for start in range(0, len(files), chunk):
            part = files[start:start + chunk]
            submitted = [(f, pool.submit(decode_for_model, f, size, max_pixels=max_pixels)) for f in part]
            if pending is not None:
                yield [(f, fut.result()) for f, fut in pending]
            pending = submitted
        if pending is not None:
            yield [(f, fut.result()) for f, fut in pending]
    finally:
        pool.shutdown(wait=True, cancel_futures=True)  # on Ctrl-C do not decode the rest first


def _check_precision(precision: str) -> None:
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")


class Embedder:
    """Runs a backbone over uint8 batches; ``precision``: fp32, bf16 or auto (bf16 where the CPU is fast).

    >>> Embedder(create_backbone(image_size=96))(np.zeros((2, 96, 96, 3), np.uint8)).shape  # doctest: +SKIP
    (2, 1280)
    """

    def __init__(self, backbone: Backbone, *, precision: str = "auto"):
        _check_precision(precision)
        self.backbone = backbone
        self.bf16 = precision == "bf16" or (precision == "auto" and bf16_is_fast())
        # BatchNorm folded, channels-last, bf16 weights where fast: a checked copy, backbone.module untouched
        self.run = prepare_module(backbone.module, image_size=backbone.image_size, bf16=self.bf16)
        # activations of a few hundred thousand pixels stay in a core's cache: at 128 px, 16 images per
        # call ran ~25% faster than 64 on one core; rows are independent, so only speed changes
        self.micro_batch = max(1, MICRO_BATCH_PIXELS // (backbone.image_size**2))
        self.mean = torch.tensor(backbone.mean).view(1, 3, 1, 1) * 255
        self.std = torch.tensor(backbone.std).view(1, 3, 1, 1) * 255

    @torch.inference_mode()
    def __call__(self, batch: np.ndarray) -> np.ndarray:  # (B, S, S, 3) uint8 -> (B, D) float32
        outs = []
        for i in range(0, len(batch), self.micro_batch):
            # permute of NHWC memory is already channels-last: no copy until the normalisation
            x = torch.from_numpy(batch[i:i + self.micro_batch]).permute(0, 3, 1, 2).float()
            outs.append(self.run((x - self.mean) / self.std))
        if not outs:
            return np.zeros((0, self.backbone.dim), np.float32)
        return torch.cat(outs).numpy()


class ModelStreams:
    """Runs batches through an :class:`Embedder` on several threads ("streams") at once, each using a
    share of torch's threads, and puts torch's thread setting back afterwards.

    Why: an OpenMP team waits at every layer's barrier, so when another process (or our own decode
    threads) takes a core, one descheduled thread stalls the whole team; whole batches on single-threaded
    streams keep every core busy instead. Lite0 at 96 px, 2 cores: with other processes running (load ~2)
    371 img/s on 2 streams against 79 img/s for one 2-thread team; on an idle machine the team is ~10%
    faster on the model alone (1079 vs 955 img/s) but no faster inside the decode+model pipeline.

    >>> with ModelStreams(embedder) as streams:  # doctest: +SKIP
    ...     rows = np.concatenate(list(streams.map(batches)))
    """

    def __init__(self, embedder: Embedder, *, max_streams: int = MAX_STREAMS):
        self.embedder = embedder
        self.threads = torch.get_num_threads()
        self.n = max(1, min(max_streams, self.threads))
        self.per_stream = max(1, self.threads // self.n)
        self._pool: ThreadPoolExecutor | None = None
        self._switch = sys.getswitchinterval()

    def __enter__(self) -> ModelStreams:
        self._switch = sys.getswitchinterval()
        # A stream that returns from a torch op waits for the GIL while a decode thread runs Python (PIL's
        # PNG parsing is pure Python); handing the GIL over every 0.5 ms instead of 5 ms made the whole
        # pipeline ~10% faster (Lite0, 96 px, 2 cores). Restored on exit.
        sys.setswitchinterval(min(self._switch, GIL_SWITCH_S))
        if self.n > 1:
            self._pool = ThreadPoolExecutor(max_workers=self.n, thread_name_prefix="pixlabel-model",
                                            initializer=torch.set_num_threads, initargs=(self.per_stream,))
        return self

    def map(self, batches: list[np.ndarray]) -> Iterator[np.ndarray]:
        """Embeddings of each batch, in order, as each finishes."""
        if self._pool is None:
            return (self.embedder(b) for b in batches)
        return self._pool.map(self.embedder, batches)

    def __exit__(self, *exc: object) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            # a worker's set_num_threads also changed torch's process-wide default: restore it
            torch.set_num_threads(self.threads)
        sys.setswitchinterval(self._switch)


def embed_files(
    files: Sequence[ImageFile], backbone: Backbone, *, cache_dir: Path | None = None, batch_size: int = 64,
    workers: int = 2, precision: str = "auto", max_pixels: int = DEFAULT_MAX_PIXELS, chunk: int = 2048,
) -> EmbedResult:
    """Embed ``files`` (cached ones are read back), skipping and reporting those that fail to decode.

    Identical files (same content hash) are decoded and embedded once. With ``cache_dir`` every ``chunk``
    finished images are saved, keyed by content, so a re-run, a renamed file or a killed run costs
    nothing twice. ``workers`` threads decode ahead while the model runs.

    >>> r = embed_files(images, create_backbone(image_size=96), cache_dir=Path("ws/cache"))  # doctest: +SKIP
    >>> r.embeddings.shape, r.thumbs.shape  # doctest: +SKIP
    ((1198, 1280), (1198, 32, 32, 3))
    """
    files = list(files)  # walked twice: to plan the work and to assemble the result
    for option, value in (("batch_size", batch_size), ("workers", workers), ("chunk", chunk)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{option} must be a positive integer, got {value!r}")
    _check_precision(precision)
    cache = EmbeddingCache(cache_dir / backbone.cache_key) if cache_dir is not None else None
    todo_by_hash = files_to_embed(files, cache)
    fresh: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    failed: dict[str, str] = {}
    if todo_by_hash:  # when everything is cached the model is not even prepared
        # the model is prepared (~0.3 s on one core) while the first images decode
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="pixlabel-prepare") as prep:
            embedder = prep.submit(Embedder, backbone, precision=precision)
            fresh, failed = _compute(list(todo_by_hash.values()), embedder, backbone, cache,
                                     batch_size=batch_size, workers=workers, max_pixels=max_pixels, chunk=chunk)

    return assemble_result(files, fresh, failed, cache, dim=backbone.dim)


def files_to_embed(files: Sequence[ImageFile], cache: EmbeddingCache | None) -> dict[str, ImageFile]:
    """Content hash -> one file to embed: identical files are embedded once, cached ones not at all."""
    todo: dict[str, ImageFile] = {}
    for f in files:
        if f.content_hash not in todo and not (cache is not None and f.content_hash in cache):
            todo[f.content_hash] = f
    return todo


def assemble_result(files: Sequence[ImageFile], fresh: dict[str, tuple[np.ndarray, np.ndarray]],
                    failed: dict[str, str], cache: EmbeddingCache | None, *, dim: int) -> EmbedResult:
    """Rows in ``files`` order from fresh and cached embeddings; files that failed become errors."""
    kept: list[ImageFile] = []
    embs: list[np.ndarray] = []
    thumbs: list[np.ndarray] = []
    errors: list[tuple[str, str]] = []
    for f in files:
        h = f.content_hash
        if h in failed:
            errors.append((f.path, failed[h]))
            continue
        e, t = fresh[h] if h in fresh else cache.get(h)  # type: ignore[union-attr]  # planned by files_to_embed
        kept.append(f)
        embs.append(e)
        thumbs.append(t)
    dim = embs[0].shape[0] if embs else dim
    return EmbedResult(
        files=kept,
        embeddings=np.asarray(embs, dtype=np.float32).reshape(len(kept), dim),
        thumbs=np.asarray(thumbs, dtype=np.uint8).reshape(len(kept), THUMB_SIZE, THUMB_SIZE, 3),
        errors=errors,
    )


def _compute(
    todo: list[ImageFile], pending: Future[Embedder], backbone: Backbone, cache: EmbeddingCache | None, *,
    batch_size: int, workers: int, max_pixels: int, chunk: int,
) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], dict[str, str]]:
    """Decode and embed ``todo``: ``({hash: (embedding, thumbnail)}, {hash: why it failed})``.

    ``pending`` is the :class:`Embedder` still being prepared; decoding starts without waiting for it.
    """
    fresh: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    failed: dict[str, str] = {}
    unsaved: list[str] = []  # hashes embedded since the last cache shard

    def save() -> None:
        if cache is not None and unsaved:
            cache.add(unsaved, np.stack([fresh[h][0] for h in unsaved]), np.stack([fresh[h][1] for h in unsaved]))
        unsaved.clear()

    # decode-ahead pieces are smaller than cache chunks so the model starts (and overlaps) early
    piece = min(chunk, DECODE_AHEAD)
    chunks = _decoded_chunks(todo, backbone.image_size, max_pixels, piece, workers)
    progress = bar(desc=f"embed {backbone.name}", total=len(todo), unit="img")
    with progress:
        first = next(chunks)  # todo is not empty; this starts decoding the first two pieces
        with ModelStreams(pending.result()) as streams:
            for decoded in itertools.chain([first], chunks):
                ok = [(f, r) for f, r in decoded if not isinstance(r, str)]
                failed.update({f.content_hash: r for f, r in decoded if isinstance(r, str)})
                progress.update(len(decoded) - len(ok))
                if not ok:
                    continue
                inputs = np.stack([r[0] for _, r in ok])  # (n, S, S, 3) uint8
                batches = [inputs[i:i + batch_size] for i in range(0, len(ok), batch_size)]
                start = 0
                for emb in streams.map(batches):  # (b, D) each, in order
                    for j, (f, (_, thumb)) in enumerate(ok[start:start + len(emb)]):
                        fresh[f.content_hash] = (emb[j], thumb)
                        unsaved.append(f.content_hash)
                    start += len(emb)
                    progress.update(len(emb))
                if len(unsaved) >= chunk:
                    save()
            save()
    return fresh, failed
