"""What the server runs: an exported ``.onnx`` file, or a model directory exported to ONNX on start.

A model directory is exported to a temporary ONNX file (checked against PyTorch on synthetic images) so the
server always runs ONNX Runtime; if the export fails the directory is served with PyTorch instead, and
``ServedModel.runtime`` says which.

Example::

    served = open_served_model("runs/fmnist")     # or "fmnist.onnx"
    served.runtime, served.spec.classes
    probs = served.predict_proba(images)          # (N, K)
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from pixlabel.errors import InputError
from pixlabel.models.spec import SPEC_FILE, ModelSpec

log = logging.getLogger(__name__)
MAX_DIFF = 1e-3  # softmax difference above which an on-the-fly export is not trusted


@dataclass
class ServedModel:
    predictor: Any  # OnnxPredictor or TorchPredictor
    runtime: str  # "onnxruntime" or "pytorch"
    source: str  # what the user passed
    _tmp: Any = None  # keeps a temporary export directory alive as long as the model

    @property
    def spec(self) -> ModelSpec:
        spec: ModelSpec = self.predictor.spec
        return spec

    def predict_proba(self, images: Sequence[Image.Image]) -> np.ndarray:
        probs: np.ndarray = self.predictor.predict_proba(images)
        return probs


def open_served_model(path: Path | str, *, threads: int | None = None, prefer_onnx: bool = True) -> ServedModel:
    """Load ``path`` (``.onnx`` file or model directory) for serving; see the module doc."""
    from pixlabel.export.onnx_runtime import OnnxPredictor

    p = Path(path)
    if p.is_file() and p.suffix.lower() == ".onnx":
        return ServedModel(OnnxPredictor(p, threads=threads, spin=False), "onnxruntime", str(p))
    if not (p.is_dir() and (p / SPEC_FILE).is_file()):
        raise InputError(f"{p}: expected an .onnx file or a model directory with {SPEC_FILE}")
    from pixlabel.models.spec import TorchPredictor

    if prefer_onnx:
        tmp = tempfile.TemporaryDirectory(prefix="pixlabel-serve-")
        try:
            from pixlabel.export.pipeline import ExportOptions, export_model

            rep = export_model(p, Path(tmp.name) / "model.onnx", ExportOptions(verify_count=16))
            if rep.max_abs_diff <= MAX_DIFF:
                log.info("serving %s as ONNX (max |p diff| vs PyTorch %.1e)", p, rep.max_abs_diff)
                return ServedModel(OnnxPredictor(rep.out, threads=threads, spin=False), "onnxruntime", str(p), tmp)
            log.warning("ONNX export of %s differs from PyTorch by %.1e; serving with PyTorch", p, rep.max_abs_diff)
        except InputError:
            tmp.cleanup()
            raise
        except Exception as exc:  # an arch the exporter cannot handle still serves, just slower
            log.warning("ONNX export of %s failed (%s: %s); serving with PyTorch", p, type(exc).__name__, exc)
        tmp.cleanup()
    if threads is not None:
        import torch

        torch.set_num_threads(threads)
    return ServedModel(TorchPredictor(p), "pytorch", str(p))
