"""Make a backbone fast for CPU inference without changing what it computes: fold BatchNorm into the
convolution before it, lay tensors out channels-last and, on CPUs with native bf16, run in bfloat16.

Every step is checked on a probe batch against the original module and skipped if it changes the output,
so an unusual architecture is at worst as fast as before, never wrong.

>>> fast = prepare_module(backbone.module, image_size=96, bf16=True)  # doctest: +SKIP
>>> fast(uint8_batch_as_float).dtype  # doctest: +SKIP
torch.float32
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable
from typing import cast

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

log = logging.getLogger(__name__)

FOLD_ATOL = 1e-3  # relative: fp32 folding changes outputs by ~1e-6; more means a conv output had 2 consumers
BF16_MIN_COSINE = 0.98  # per-row cosine of bf16 weights to fp32 on the probe; below it: autocast instead


def _is_plain_bn(m: nn.Module) -> bool:
    """BatchNorm whose forward we know: torch's own, or timm's BatchNormAct2d (BN, then drop, then act)."""
    if type(m) is nn.BatchNorm2d:
        return True
    return type(m).__name__ == "BatchNormAct2d" and hasattr(m, "drop") and hasattr(m, "act")


def _set_submodule(root: nn.Module, name: str, new: nn.Module) -> None:
    parent, _, leaf = name.rpartition(".")
    setattr(root.get_submodule(parent) if parent else root, leaf, new)


def fold_batchnorm(
    module: nn.Module, probe: torch.Tensor, *, expected: torch.Tensor | None = None
) -> tuple[nn.Module, int]:
    """A copy of ``module`` (eval) with every BatchNorm that directly consumes a Conv2d output folded into
    that conv, and the number of pairs folded. ``probe`` is a small input batch used to find the pairs (the
    order modules run in) and to check the result: if nothing folds or the output changes, ``(module, 0)``
    comes back with ``module`` itself untouched. ``expected`` is ``module(probe)`` if the caller has it.

    >>> folded, n = fold_batchnorm(backbone.module, torch.randn(2, 3, 96, 96))  # doctest: +SKIP
    >>> n  # every conv+BN pair of EfficientNet-Lite0  # doctest: +SKIP
    49
    """
    original = module.eval()
    folded = copy.deepcopy(original)
    names = {id(m): n for n, m in folded.named_modules()}
    calls: list[tuple[str, nn.Module, object, object]] = []  # (name, module, first input, output) in run order

    def record(m: nn.Module, args: tuple[object, ...], out: object) -> None:
        calls.append((names[id(m)], m, args[0] if args else None, out))

    hooks = [m.register_forward_hook(record) for m in folded.modules()
             if isinstance(m, nn.Conv2d) or _is_plain_bn(m)]
    try:
        with torch.no_grad():
            folded(probe)
    finally:
        for h in hooks:
            h.remove()
    runs: dict[str, int] = {}
    for name, *_ in calls:
        runs[name] = runs.get(name, 0) + 1
    pairs = [
        (conv_name, conv, bn_name, bn)
        for (conv_name, conv, _, conv_out), (bn_name, bn, bn_in, _) in zip(calls, calls[1:], strict=False)
        if isinstance(conv, nn.Conv2d) and _is_plain_bn(bn) and bn_in is conv_out
        and runs[conv_name] == 1 and runs[bn_name] == 1  # a shared module cannot be rewritten for one use
        and bn.track_running_stats and bn.running_mean is not None
    ]
    for conv_name, conv, bn_name, bn in pairs:
        _set_submodule(folded, conv_name, fuse_conv_bn_eval(conv, bn))  # type: ignore[arg-type]
        rest: nn.Module = nn.Identity()
        if hasattr(bn, "act"):  # timm BatchNormAct2d: keep what it does after the normalisation
            rest = nn.Sequential(cast(nn.Module, bn.drop), cast(nn.Module, bn.act))
        _set_submodule(folded, bn_name, rest)
    if not pairs:
        return original, 0
    with torch.no_grad():
        if expected is None:
            expected = original(probe)
        diff = (folded(probe) - expected).abs().max().item() / max(1.0, expected.abs().max().item())
    if not diff <= FOLD_ATOL:  # also catches NaN
        log.debug("BatchNorm folding changed the output by %.2g; keeping the model as it is", diff)
        return original, 0
    return folded, len(pairs)


def _rowwise_cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(nn.functional.cosine_similarity(a.float(), b.float(), dim=1).min())


def prepare_module(module: nn.Module, *, image_size: int, bf16: bool) -> Callable[[torch.Tensor], torch.Tensor]:
    """A fast stand-in for ``module``: takes a normalised float32 batch ``(B, 3, S, S)``, returns float32
    ``(B, D)``. ``module`` itself is not modified."""
    saved = torch.get_num_threads()
    # the probe batch is tiny: one thread does it in ~0.3 s, while a thread team on cores other processes
    # are using waited ~11 s at every layer's barrier (measured on 2 shared cores)
    torch.set_num_threads(1)
    try:
        return _prepare(module, image_size=image_size, bf16=bf16)
    finally:
        torch.set_num_threads(saved)


def _prepare(module: nn.Module, *, image_size: int, bf16: bool) -> Callable[[torch.Tensor], torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    # smooth random images (upsampled 8x8 noise): pixel noise would exercise numerics real photos never do
    coarse = torch.rand(2, 3, 8, 8, generator=generator) * 4 - 2
    probe = nn.functional.interpolate(coarse, size=(image_size, image_size), mode="bilinear")  # (2, 3, S, S)
    with torch.no_grad():
        reference = module.eval()(probe)
    if not bf16:
        return _runner(_fast_fp32(module, probe, reference), torch.float32)
    # bf16 weights beat autocast (no per-call cast of every weight); checked against fp32 on the probe.
    # Converted in place: the fp32 copy is rebuilt only in the rare case bf16 is refused.
    run = _runner(_fast_fp32(module, probe, reference).to(torch.bfloat16), torch.bfloat16)
    try:
        cos = _rowwise_cosine(run(probe), reference)
    except RuntimeError as exc:  # an op without a bf16 CPU kernel
        log.debug("bf16 weights do not run (%s); using autocast", exc)
        cos = -1.0
    if cos >= BF16_MIN_COSINE:
        return run
    log.debug("bf16 weights give cosine %.4f to fp32; using autocast", cos)
    return _autocast_runner(_fast_fp32(module, probe, reference))


def _fast_fp32(module: nn.Module, probe: torch.Tensor, reference: torch.Tensor) -> nn.Module:
    """A copy of ``module`` with BatchNorm folded (when it checks out) in channels-last memory."""
    fast, n_folded = fold_batchnorm(module, probe, expected=reference)
    log.debug("folded %d BatchNorm layers into convolutions", n_folded)
    if fast is module:
        fast = copy.deepcopy(module)
    return fast.to(memory_format=torch.channels_last)  # matches oneDNN's fast convolution layout


def _runner(module: nn.Module, dtype: torch.dtype) -> Callable[[torch.Tensor], torch.Tensor]:
    def run(x: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return module(x.to(dtype).contiguous(memory_format=torch.channels_last)).float()

    return run


def _autocast_runner(module: nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    def run(x: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
            return module(x.contiguous(memory_format=torch.channels_last)).float()

    return run
