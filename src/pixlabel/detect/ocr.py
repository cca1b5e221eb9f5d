"""Text boxes and transcripts from RapidOCR: PP-OCR's small detector and recognizer as ONNX models that ship
inside the ``rapidocr`` wheel, so reading text needs no download.

>>> reader = TextReader()                       # doctest: +SKIP
>>> [(t.text, round(t.score, 2)) for t in reader.read(pixels)]  # doctest: +SKIP
[('EXIT 42', 1.0)]
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

ENGINE = "rapidocr"


@dataclass(frozen=True)
class TextBox:
    """One line of text: its quadrilateral ``(4, 2)`` in pixels (x, y), transcript and recognizer score."""

    quad: np.ndarray  # (4, 2) float, clockwise from top-left
    text: str
    score: float

    @property
    def xyxy(self) -> tuple[float, float, float, float]:
        """The upright box around the quadrilateral."""
        x, y = self.quad[:, 0], self.quad[:, 1]
        return float(x.min()), float(y.min()), float(x.max()), float(y.max())


class TextReader:
    """RapidOCR with its bundled PP-OCR models, built on first use; ``threads`` caps ONNX Runtime's pool.

    ``min_score`` drops lines the recognizer is less sure of (RapidOCR's own default is 0.5). ``max_side``:
    the detector sees the image with its longer side at most this many pixels and never enlarged; None keeps
    RapidOCR's default, which enlarges the shorter side to 736 px (a 480x260 image becomes 1359x736: about
    6x the detector's work; bench/ocr_text.py measures both).
    """

    def __init__(self, *, min_score: float = 0.5, threads: int = 2, max_side: int | None = None) -> None:
        self.min_score = min_score
        self.threads = threads
        self.max_side = max_side
        self._engine: Any = None

    @property
    def version(self) -> str:
        from rapidocr._version import __version__

        return f"{ENGINE} {__version__} PP-OCR small"

    def _load(self) -> Any:
        if self._engine is None:
            from rapidocr import RapidOCR

            quiet = logging.getLogger("pixlabel").getEffectiveLevel() > logging.DEBUG
            params: dict[str, Any] = {
                # "error": its warning for an image without text is not news in a folder of photos
                "Global.log_level": "error" if quiet else "info",
                "Global.text_score": self.min_score,
                "EngineConfig.onnxruntime.intra_op_num_threads": self.threads,
                "EngineConfig.onnxruntime.inter_op_num_threads": 1,
            }
            if self.max_side is not None:
                params |= {"Det.limit_type": "max", "Det.limit_side_len": self.max_side}
            self._engine = RapidOCR(params=params)
        return self._engine

    def read(self, rgb: np.ndarray) -> list[TextBox]:
        """Text lines in an ``(h, w, 3)`` uint8 RGB image, top to bottom as RapidOCR orders them."""
        # RapidOCR takes ndarrays as OpenCV's BGR.
        out = self._load()(np.ascontiguousarray(rgb[:, :, ::-1]))
        if out.boxes is None or out.txts is None or out.scores is None:
            return []
        return [TextBox(np.asarray(quad, dtype=np.float64).reshape(4, 2), str(text), float(score))
                for quad, text, score in zip(out.boxes, out.txts, out.scores, strict=True)
                if str(text).strip()]
