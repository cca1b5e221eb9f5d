"""Training-step throughput of the small CNN per width / depth: what each shape costs before a full run.

One step = forward + backward + SGD-nesterov on a batch of 512 random 28-px greyscale images, bf16 autocast
(where the CPU has it) and channels-last, as ``pixlabel train`` runs it; 2 warm-up steps, then the mean of
``--steps``. Writes ``bench/out/train_step_speed.json``.

    flock /tmp/pixlabel-cpu.lock .venv/bin/python bench/train_step_speed.py
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from pixlabel.models.smallcnn import SmallCNN
from pixlabel.train.loop import use_bf16

OUT = Path(__file__).parent / "out"
SHAPES = ((32, 1), (24, 2), (16, 4), (20, 3), (24, 3), (32, 2))


def step_rate(width: int, depth: int, *, batch: int, steps: int, bf16: bool) -> float:
    """Images per second of training steps for ``SmallCNN(width, depth)``."""
    torch.manual_seed(0)
    net = SmallCNN(in_chans=1, width=width, depth=depth).to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9, nesterov=True)
    x = torch.rand(batch, 1, 28, 28).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (batch,))

    def step() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            logits = net(x)
        loss = F.cross_entropy(logits.float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    step(), step()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    return batch * steps / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--batch", type=int, default=512)
    args = ap.parse_args()
    torch.set_num_threads(2)
    bf16 = use_bf16("auto")  # what `pixlabel train --precision auto` decides
    rows = []
    for width, depth in SHAPES:
        rate = step_rate(width, depth, batch=args.batch, steps=args.steps, bf16=bf16)
        params = sum(p.numel() for p in SmallCNN(in_chans=1, width=width, depth=depth).parameters())
        rows.append({"width": width, "depth": depth, "params": params, "img_per_s": round(rate),
                     "epoch_60k_s": round(60000 / rate, 1)})
        print(rows[-1], flush=True)
    OUT.mkdir(exist_ok=True)
    report = {"batch": args.batch, "steps": args.steps, "bf16": bf16, "threads": torch.get_num_threads(),
              "torch": torch.__version__, "shapes": rows}
    (OUT / "train_step_speed.json").write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
