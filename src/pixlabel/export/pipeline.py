"""``export_model``: model directory → checked ``.onnx`` (optionally pruned and/or INT8) with a report.

Every export is verified: the ONNX file is run on sample images (the calibration folder, else synthetic
images) beside the PyTorch module it came from and the largest absolute difference of the softmax outputs
is reported; latency (batch 1) and throughput (batch 64) are measured on the written file.

Example::

    rep = export_model("runs/fmnist", "fmnist.int8.onnx",
                       ExportOptions(int8=True, calib=Path("fmnist/train")))
    rep.max_abs_diff, rep.int8_top1_agreement, rep.size_bytes
"""

from __future__ import annotations

import dataclasses
import logging
import statistics
import tempfile
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from pixlabel.errors import InputError
from pixlabel.export.calib import training_images
from pixlabel.export.onnx_export import write_onnx
from pixlabel.export.onnx_runtime import OnnxPredictor, softmax
from pixlabel.export.prune import fine_tune, prune_module, sparsity
from pixlabel.export.quantize import calibration_batches, load_images, quantize_int8
from pixlabel.models.spec import ModelSpec, load_model

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExportOptions:
    int8: bool = False
    # Images for INT8 calibration and for verification (any layout). None with int8: the model's own training
    # images (export/calib.py).
    calib: Path | None = None
    calib_count: int = 256  # calibration images drawn from calib
    prune: float | None = None  # fraction of weights (or channels with structured) set to zero
    structured: bool = False
    labeled: Path | None = None  # ImageFolder (CLASS/img): fine-tunes a pruned model and reports accuracy
    finetune_epochs: int = 0
    exporter: str = "dynamo"  # or torchscript
    verify_count: int = 64
    seed: int = 0

    def __post_init__(self) -> None:
        if self.prune is not None and not 0.0 < self.prune < 1.0:
            raise InputError(f"--prune must be a fraction in (0, 1), got {self.prune}")
        if self.structured and self.prune is None:
            raise InputError("--structured needs --prune AMOUNT")
        if self.finetune_epochs and (self.labeled is None or self.prune is None):
            raise InputError("--finetune-epochs needs --prune AMOUNT and --labeled DIR (CLASS/image layout)")
        if self.calib_count < 1 or self.verify_count < 1 or self.finetune_epochs < 0:
            raise InputError("calib/verify counts must be positive and fine-tune epochs non-negative")


@dataclass
class ExportReport:
    out: str
    size_bytes: int
    compressed_bytes: int  # zlib level 6: what pruning's zeros save in transfer/storage
    max_abs_diff: float  # softmax, exported model vs the PyTorch module it was exported from
    max_abs_diff_logits: float
    top1_agreement: float  # share of sample images where both pick the same class
    verified_on: str  # "N images from DIR" or "N synthetic images"
    latency_ms_b1: float  # median of single-image calls (preprocessed input)
    throughput_b64: float  # images/s at batch 64
    int8: bool = False
    fp32_size_bytes: int | None = None
    fp32_max_abs_diff: float | None = None  # fp32 ONNX vs PyTorch when the output is INT8
    sparsity: float | None = None
    accuracy: dict[str, float] = field(default_factory=dict)  # on --labeled images: pytorch, pruned, onnx

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def lines(self) -> list[str]:
        mb = self.size_bytes / 1e6
        out = [f"wrote {self.out} ({mb:.2f} MB, {self.compressed_bytes / 1e6:.2f} MB compressed"
               f"{', INT8' if self.int8 else ', fp32'})",
               f"verified on {self.verified_on}: max |p_onnx - p_torch| = {self.max_abs_diff:.2e} "
               f"(logits {self.max_abs_diff_logits:.2e}), top-1 agreement {self.top1_agreement:.1%}"]
        if self.fp32_max_abs_diff is not None:
            out.append(f"fp32 ONNX before quantization: max |p diff| = {self.fp32_max_abs_diff:.2e}, "
                       f"{(self.fp32_size_bytes or 0) / 1e6:.2f} MB")
        if self.sparsity is not None:
            out.append(f"pruned: {self.sparsity:.1%} of conv/linear weights are zero")
        out.append(f"speed (ONNX Runtime): {self.latency_ms_b1:.2f} ms/image at batch 1, "
                   f"{self.throughput_b64:.0f} images/s at batch 64")
        if self.accuracy:
            out.append("accuracy on labeled images: " + ", ".join(f"{k} {v:.2%}" for k, v in self.accuracy.items()))
        return out


def synthetic_images(spec: ModelSpec, n: int, *, seed: int = 0) -> list[Image.Image]:
    """Smooth random images at the model's size: no data needed, still exercises every layer."""
    rng = np.random.default_rng(seed)
    h, w = spec.image_size
    small = rng.integers(0, 256, (n, max(2, h // 4), max(2, w // 4), 3), dtype=np.uint8)
    return [Image.fromarray(s).resize((w, h), Image.Resampling.BILINEAR) for s in small]


def labeled_images(root: Path, spec: ModelSpec, *, limit: int | None = None,
                   seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """ImageFolder ``CLASS/img`` under ``root`` → preprocessed ``x`` and class indices ``y`` of the model."""
    from pixlabel.pipeline.seeds import seeds_from_folders

    items = load_images(root, limit=limit, seed=seed)
    labels = seeds_from_folders([p for p, _ in items])
    if not labels:
        raise InputError(f"{root}: expected an ImageFolder layout (CLASS/image files) for labeled images")
    unknown = sorted(set(labels.values()) - set(spec.classes))
    if unknown:
        raise InputError(f"{root}: class folder(s) {', '.join(unknown)} are not classes of the model "
                         f"({', '.join(spec.classes)})")
    kept = [(p, im) for p, im in items if p in labels]
    x = spec.preprocess([im for _, im in kept])
    y = np.array([spec.classes.index(labels[p]) for p, _ in kept], np.int64)
    return x, y


def torch_logits(module: Any, x: np.ndarray, *, batch: int = 256) -> np.ndarray:
    import torch

    with torch.inference_mode():
        outs = [module(torch.from_numpy(x[i:i + batch])).float().numpy() for i in range(0, len(x), batch)]
    return np.concatenate(outs)


def measure_speed(pred: OnnxPredictor, x1: np.ndarray, *, batch: int = 64, repeats: int = 20
                  ) -> tuple[float, float]:
    """(median ms per batch-1 call, images/s at ``batch``) on preprocessed input, after a warm-up."""
    one = x1[:1]
    big = np.repeat(x1[:1], batch, axis=0) if len(x1) < batch else x1[:batch]
    pred.logits(one)
    pred.logits(big)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        pred.logits(one)
        times.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    n_big = max(3, repeats // 4)
    for _ in range(n_big):
        pred.logits(big)
    return statistics.median(times) * 1e3, n_big * len(big) / (time.perf_counter() - t0)


def export_model(model_dir: Path | str, out: Path | str, options: ExportOptions | None = None) -> ExportReport:
    """Export the model directory ``model_dir`` to ``out`` (.onnx) as ``options`` say; see the module doc."""
    opts = options or ExportOptions()
    out = Path(out)
    if out.suffix.lower() != ".onnx":
        raise InputError(f"{out}: the output of --format onnx must end in .onnx")
    module, spec = load_model(model_dir)

    limit = max(opts.calib_count, opts.verify_count)
    if opts.calib is not None:
        sample = [im for _, im in load_images(opts.calib, limit=limit, seed=opts.seed)]
        verified_on = f"{min(len(sample), opts.verify_count)} images from {opts.calib}"
    elif opts.int8:
        root, paths = training_images(model_dir)
        sample = [im for _, im in load_images(root, limit=limit, seed=opts.seed, paths=paths)]
        verified_on = f"{min(len(sample), opts.verify_count)} of the model's training images from {root}"
        log.info("calibrating INT8 on %d of the %d training images under %s", min(len(sample), opts.calib_count),
                 len(paths), root)
    else:
        sample = synthetic_images(spec, opts.verify_count, seed=opts.seed)
        verified_on = f"{len(sample)} synthetic images"
    x_verify = spec.preprocess(sample[:opts.verify_count])

    labeled = labeled_images(opts.labeled, spec, seed=opts.seed) if opts.labeled is not None else None
    accuracy: dict[str, float] = {}
    if labeled is not None:
        accuracy["pytorch"] = float((torch_logits(module, labeled[0]).argmax(1) == labeled[1]).mean())
    sparse = None
    if opts.prune is not None:
        module = prune_module(module, amount=opts.prune, structured=opts.structured)
        if labeled is not None:
            accuracy["pruned"] = float((torch_logits(module, labeled[0]).argmax(1) == labeled[1]).mean())
        if opts.finetune_epochs and labeled is not None:
            module = fine_tune(module, *labeled, epochs=opts.finetune_epochs, seed=opts.seed)
            accuracy["pruned+finetuned"] = float((torch_logits(module, labeled[0]).argmax(1) == labeled[1]).mean())
        sparse = sparsity(module)

    ref = torch_logits(module, x_verify)
    with tempfile.TemporaryDirectory(prefix="pixlabel-export-") as tmp:
        fp32_path = Path(tmp) / "fp32.onnx" if opts.int8 else out
        write_onnx(module, spec, fp32_path, exporter=opts.exporter)
        fp32 = OnnxPredictor(fp32_path)
        fp32_logits = fp32.logits(x_verify)
        fp32_diff = float(np.abs(softmax(fp32_logits) - softmax(ref)).max())
        fp32_size = fp32_path.stat().st_size
        if opts.int8:
            quantize_int8(fp32_path, out, calibration_batches(spec, sample[:opts.calib_count]), spec)
    final = OnnxPredictor(out)
    logits = final.logits(x_verify)
    if labeled is not None:
        accuracy["onnx-int8" if opts.int8 else "onnx"] = float((final.logits(labeled[0]).argmax(1)
                                                                 == labeled[1]).mean())
    latency, throughput = measure_speed(final, x_verify)
    data = out.read_bytes()
    return ExportReport(
        out=str(out), size_bytes=len(data), compressed_bytes=len(zlib.compress(data, 6)),
        max_abs_diff=float(np.abs(softmax(logits) - softmax(ref)).max()),
        max_abs_diff_logits=float(np.abs(logits - ref).max()),
        top1_agreement=float((logits.argmax(1) == ref.argmax(1)).mean()), verified_on=verified_on,
        latency_ms_b1=latency, throughput_b64=throughput, int8=opts.int8,
        fp32_size_bytes=fp32_size if opts.int8 else None, fp32_max_abs_diff=fp32_diff if opts.int8 else None,
        sparsity=sparse, accuracy=accuracy,
    )
