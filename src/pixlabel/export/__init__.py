"""Ship a trained model: ONNX export with its preprocessing in the metadata, INT8 quantization, pruning.

A model directory (``model.yaml`` + ``weights.pt``, see :mod:`pixlabel.models`) becomes one ``.onnx`` file
that carries everything a runtime needs: class names, ``image_size``, channels, mean and std as JSON in the
ONNX ``metadata_props``. :class:`pixlabel.export.onnx_runtime.OnnxPredictor` reads them back.

Example::

    from pixlabel.export import ExportOptions, export_model
    report = export_model("runs/model", "model.onnx", ExportOptions(int8=True, calib="images/"))
    print(report.max_abs_diff, report.size_bytes)
"""

from pixlabel.export.pipeline import ExportOptions, ExportReport, export_model

__all__ = ["ExportOptions", "ExportReport", "export_model"]
