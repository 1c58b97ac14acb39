"""One contender of benchmarks/ddp.py, run under torchrun (2 processes). Prints a JSON line on rank 0."""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import os
import time
import warnings

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset


def small_cnn() -> nn.Module:
    from overhead import WORKLOADS  # the same model as the single-process benchmark

    return WORKLOADS["small-cnn"].build()


def dataset(steps: int, batch: int) -> TensorDataset:
    g = torch.Generator().manual_seed(0)
    n = steps * batch * 2
    return TensorDataset(
        torch.randn(n, 3, 32, 32, generator=g), torch.randint(0, 10, (n,), generator=g)
    )


TICKS: list[float] = []


def per_step() -> float:
    """Steady-state seconds per step: the first 10 steps (warm-up, lazy imports) are dropped."""
    ts = TICKS[10:]
    return (ts[-1] - ts[0]) / (len(ts) - 1)


def raw(args) -> float:
    dist.init_process_group("gloo")
    torch.manual_seed(0)
    model = nn.parallel.DistributedDataParallel(small_cnn())
    ds = dataset(args.steps, args.batch)
    loader = DataLoader(ds, batch_size=args.batch, sampler=DistributedSampler(ds, shuffle=False))
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    for x, y in loader:
        TICKS.append(time.perf_counter())
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
    return per_step()


def trainer(args, L) -> float:
    class Bench(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = small_cnn()

        def training_step(self, batch, batch_idx):
            TICKS.append(time.perf_counter())
            x, y = batch
            return F.cross_entropy(self.net(x), y)

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.01, momentum=0.9)

    torch.manual_seed(0)
    model = Bench()
    ds = dataset(args.steps, args.batch)
    t = L.Trainer(
        accelerator="cpu",
        devices=2,
        strategy="ddp",
        max_epochs=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )
    with contextlib.redirect_stdout(io.StringIO()):
        t.fit(model, DataLoader(ds, batch_size=args.batch))
    return per_step()


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--contender", choices=("raw", "runtime", "lightning"), required=True)
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--batch", type=int, default=64)
    args = p.parse_args()
    warnings.filterwarnings("ignore")
    torch.set_num_threads(1)
    if args.contender == "raw":
        elapsed = raw(args)
    else:
        import importlib

        L = importlib.import_module(args.contender)
        for name in ("lightning", "lightning.pytorch", "lightning.fabric"):
            logging.getLogger(name).setLevel(logging.ERROR)
        elapsed = trainer(args, L)
    if int(os.environ.get("RANK", 0)) == 0:
        print(json.dumps({"contender": args.contender, "seconds": elapsed}), flush=True)


if __name__ == "__main__":
    main()
