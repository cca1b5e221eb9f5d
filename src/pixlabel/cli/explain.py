"""``pixlabel explain MODEL IMAGE... --method gradcam|ig|lime|shap --out PATH``: heat-map overlays.

Example::

    pixlabel explain runs/m data/test/00012.png --method gradcam --out cam.png
    pixlabel explain runs/m data/test/*.png --method shap --out explanations/
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from pixlabel.cli.argtypes import positive_int


def register(sub: Any) -> None:
    p = sub.add_parser(
        "explain", help="show which pixels drive a model's prediction",
        description="Write one PNG per IMAGE with an attribution heat map over it: gradcam (LayerGradCam), "
                    "ig (IntegratedGradients), lime or shap (KernelShap over an 8x8 grid of super-pixels). "
                    "--out is a folder, or a .png file when there is one image.")
    p.add_argument("model", help="model directory (model.yaml + weights.pt)")
    p.add_argument("images", nargs="+", type=Path, metavar="IMAGE")
    p.add_argument("--method", choices=("gradcam", "ig", "lime", "shap"), default="gradcam")
    p.add_argument("--out", required=True, type=Path, help="output folder, or a .png file for one image")
    p.add_argument("--target", help="explain this class instead of the predicted one")
    p.add_argument("--samples", type=positive_int, default=200, help="model evaluations for lime/shap (200)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pixlabel.explain import explain_images

    done, errors = explain_images(args.model, args.images, method=args.method, out=args.out, target=args.target,
                                  n_samples=args.samples)
    for e in done:
        print(f"{e.image}: {e.predicted} ({e.probability:.0%}) -> {e.png}")
    if errors:
        print(f"{len(errors)} image(s) could not be read and were skipped")
    return 0
