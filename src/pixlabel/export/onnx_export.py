"""PyTorch module + :class:`ModelSpec` → an ``.onnx`` file whose metadata says how to feed it.

The metadata key ``pixlabel.spec`` holds ``ModelSpec.to_dict()`` as JSON (arch, classes, image_size (h, w),
in_chans, mean, std, arch_options); ``pixlabel.classes`` repeats the class list as JSON for tools that only
want labels. The graph maps a normalised batch ``input`` ``(N, C, h, w)`` float32 to ``logits`` ``(N, K)``;
the batch dimension is dynamic.

Example::

    write_onnx(net, spec, "model.onnx")
    spec_again = read_onnx_spec("model.onnx")
"""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path
from typing import Any

from pixlabel.errors import InputError
from pixlabel.models.spec import ModelSpec

log = logging.getLogger(__name__)
SPEC_KEY = "pixlabel.spec"
CLASSES_KEY = "pixlabel.classes"
INPUT_NAME = "input"
OUTPUT_NAME = "logits"
OPSET = 18  # what torch's dynamo exporter emits natively; onnxruntime >= 1.17 runs it


def write_onnx(module: Any, spec: ModelSpec, out: Path | str, *, exporter: str = "dynamo") -> Path:
    """Export ``module`` (eval mode, CPU) to ``out`` with ``spec`` in the metadata; returns ``out``.

    ``exporter``: ``dynamo`` (torch.export based, torch's default since 2.9; needs ``onnxscript``) or
    ``torchscript`` (the legacy tracer). If dynamo fails on an exotic module we fall back to the tracer
    rather than refusing, and log it.
    """
    import torch

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    module = module.eval().cpu()
    h, w = spec.image_size
    example = torch.zeros(2, spec.in_chans, h, w)
    tmp = out.with_name(out.name + ".tmp")
    if exporter not in ("dynamo", "torchscript"):
        raise ValueError(f"exporter must be dynamo or torchscript, got {exporter!r}")
    try:
        if exporter == "dynamo":
            _export_dynamo(module, example, tmp)
        else:
            _export_torchscript(module, example, tmp)
    except Exception as exc:  # dynamo cannot trace some modules; the tracer usually can
        if exporter != "dynamo":
            raise
        log.warning("dynamo ONNX export failed (%s: %s); using the TorchScript exporter",
                    type(exc).__name__, str(exc)[:200])
        _export_torchscript(module, example, tmp)
    set_metadata(tmp, spec, out=tmp)
    tmp.replace(out)
    return out


def _export_dynamo(module: Any, example: Any, path: Path) -> None:
    import torch

    for name in ("onnxscript", "onnx_ir"):  # their INFO lines about graph passes are not for our users
        logging.getLogger(name).setLevel(logging.WARNING)

    batch = torch.export.Dim("batch", min=1, max=1 << 16)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(module, (example,), dynamo=True, input_names=[INPUT_NAME],
                                    output_names=[OUTPUT_NAME], dynamic_shapes=({0: batch},),
                                    opset_version=OPSET, verbose=False, optimize=True)
    assert program is not None  # dynamo=True always returns the program  (not user input)
    # one self-contained file even for big models (< 2 GB): no weights.onnx.data beside it
    program.save(str(path), external_data=False)


def _export_torchscript(module: Any, example: Any, path: Path) -> None:
    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # its deprecation warning is for us, not for users
        torch.onnx.export(module, (example,), str(path), dynamo=False, input_names=[INPUT_NAME],
                          output_names=[OUTPUT_NAME], opset_version=OPSET,
                          dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}})


def set_metadata(path: Path | str, spec: ModelSpec, *, out: Path | str | None = None) -> None:
    """Write ``spec`` into the metadata_props of the ONNX file at ``path`` (in place unless ``out``)."""
    import onnx

    model = onnx.load(str(path))
    keep = [p for p in model.metadata_props if p.key not in (SPEC_KEY, CLASSES_KEY)]
    del model.metadata_props[:]
    model.metadata_props.extend(keep)
    for key, value in ((SPEC_KEY, json.dumps(spec.to_dict())), (CLASSES_KEY, json.dumps(list(spec.classes)))):
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    model.producer_name = "pixlabel"
    onnx.save(model, str(out or path))


def spec_from_metadata(meta: dict[str, str], *, where: str) -> ModelSpec:
    """Rebuild the :class:`ModelSpec` from an ONNX file's metadata (a ``{key: value}`` mapping)."""
    if SPEC_KEY not in meta:
        raise InputError(f"{where}: no {SPEC_KEY!r} in the ONNX metadata; export it with "
                         "`pixlabel export MODEL_DIR --format onnx` so class names and preprocessing travel "
                         "with the model")
    try:
        data = json.loads(meta[SPEC_KEY])
    except json.JSONDecodeError as exc:
        raise InputError(f"{where}: ONNX metadata {SPEC_KEY!r} is not valid JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise InputError(f"{where}: ONNX metadata {SPEC_KEY!r} should be a JSON object")
    return ModelSpec.from_dict(data, where=f"{where} metadata {SPEC_KEY}")


def read_onnx_spec(path: Path | str) -> ModelSpec:
    """The :class:`ModelSpec` stored in an exported ``.onnx`` file (reads only the header, not a session)."""
    import onnx

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # a truncated or foreign file: say which
        raise InputError(f"{path}: not a readable ONNX model ({type(exc).__name__}: {exc})") from exc
    return spec_from_metadata({p.key: p.value for p in model.metadata_props}, where=str(path))
