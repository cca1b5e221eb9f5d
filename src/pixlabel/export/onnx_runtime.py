"""Run an exported ``.onnx`` classifier with ONNX Runtime behind the :class:`pixlabel.models.Predictor` API.

Example::

    pred = OnnxPredictor("model.onnx")
    pred.spec.classes               # from the ONNX metadata
    probs = pred.predict_proba([Image.open("shoe.png")])   # (1, K)

The graph is one forward pass; test-time augmentation (``tta: flip`` in the spec metadata) is applied here,
by running the graph on the batch and on its mirror and averaging the softmax. Other runtimes reading the
file should do the same when the metadata says ``"tta": "flip"``; :meth:`OnnxPredictor.logits` is one pass.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from pixlabel.errors import InputError
from pixlabel.export.onnx_export import spec_from_metadata
from pixlabel.models.spec import ModelSpec, average_views


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)


class OnnxPredictor:
    """An ONNX Runtime session plus the :class:`ModelSpec` rebuilt from the file's metadata.

    ``threads``: intra-op threads (default: ONNX Runtime's choice, one per core). ``batch_size`` bounds the
    memory of one call; results do not depend on it. ``spin=False`` stops idle intra-op threads from
    busy-waiting for the next call: slower for back-to-back batch work, but a server sharing the CPU with
    its event loop (and other processes) keeps those cycles.
    """

    def __init__(self, path: Path | str, *, threads: int | None = None, batch_size: int = 256,
                 spin: bool = True) -> None:
        import onnxruntime as ort

        self.path = Path(path)
        if not self.path.is_file():
            raise InputError(f"{self.path}: ONNX file not found")
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if not spin:
            opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        if threads is not None:
            opts.intra_op_num_threads = threads
            opts.inter_op_num_threads = 1
        try:
            self.session = ort.InferenceSession(str(self.path), sess_options=opts,
                                                providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph types for bad files
            raise InputError(f"{self.path}: ONNX Runtime cannot load it ({type(exc).__name__}: "
                             f"{str(exc)[:300]})") from exc
        meta = self.session.get_modelmeta().custom_metadata_map
        self.spec: ModelSpec = spec_from_metadata(dict(meta), where=str(self.path))
        self.input_name = self.session.get_inputs()[0].name
        self.batch_size = batch_size

    def logits(self, x: np.ndarray) -> np.ndarray:
        """Raw outputs for a preprocessed batch ``(N, C, h, w)`` float32 → ``(N, K)``."""
        outs = [self.session.run(None, {self.input_name: np.ascontiguousarray(x[i:i + self.batch_size],
                                                                              dtype=np.float32)})[0]
                for i in range(0, len(x), self.batch_size)]
        return np.concatenate(outs) if outs else np.zeros((0, len(self.spec.classes)), np.float32)

    def predict_array(self, x: np.ndarray) -> np.ndarray:
        """Softmax probabilities ``(N, K)`` for a preprocessed batch, averaged over the spec's test-time views."""
        return average_views(lambda v: softmax(self.logits(v)), x, tta=self.spec.tta)

    def predict_proba(self, images: Sequence[Image.Image]) -> np.ndarray:
        """PIL images → ``(N, K)`` probabilities, preprocessed exactly as the model was trained."""
        out = [self.predict_array(self.spec.preprocess(images[i:i + self.batch_size]))
               for i in range(0, len(images), self.batch_size)]
        return np.concatenate(out) if out else np.zeros((0, len(self.spec.classes)), np.float32)
