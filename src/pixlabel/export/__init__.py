"""Ship a trained model: ONNX export with its preprocessing in the metadata, INT8 quantization, pruning.

A model directory (``model.yaml`` + ``weights.pt``, see :mod:`pixlabel.models`) becomes one ``.onnx`` file
that carries everything a runtime needs: class names, ``image_size``, channels, mean and std as JSON in the
ONNX ``metadata_props``. :class:`pixlabel.export.onnx_runtime.OnnxPredictor` reads them back.

Example::

    from pixlabel.export import ExportOptions, export_model
    report = export_model("runs/model", "model.onnx", ExportOptions(int8=True, calib="images/"))
    print(report.max_abs_diff, report.size_bytes)
"""

from __future__ import annotations

import importlib
from typing import Any

# Lazy: `pixlabel --help` imports every command's module; torch must not load until a command runs.
_EXPORTS = dict.fromkeys(("ExportOptions", "ExportReport", "export_model"), "pixlabel.export.pipeline")
__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
