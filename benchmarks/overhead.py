#!/usr/bin/env python
"""Per-step overhead of the runtime (and Lightning, if installed) against a hand-written loop.

All contenders train the same model from the same seed on the same in-memory data. They run
interleaved, in a rotating order, inside each repeat; the ratio to the raw loop is taken per
repeat and the median over repeats is reported (the machine is noisy; pairs cancel drift).

Two figures per contender: "step", the steady-state time of one whole iteration (data, hooks,
forward, backward, optimizer step, logging), read from a clock ticked at the start of every
forward pass with the first fifth of the steps dropped as warm-up; and "fit", one whole
`fit` call end to end (construction and set-up included).

Contenders: raw (the hand-written loop), runtime (everything optional off, no self.log),
runtime-log (+ self.log every step), runtime-default (Trainer defaults: logger, checkpoint,
progress bar, summary), and lightning, lightning-log, lightning-default with `import lightning`.

    python benchmarks/overhead.py                         # tiny, small-cnn, medium-mlp
    python benchmarks/overhead.py --cases tiny --repeats 7
    python benchmarks/overhead.py --contenders raw,runtime,lightning
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import io
import logging
import statistics
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


@dataclass(frozen=True)
class Workload:
    name: str
    build: object
    lr: float
    loss: object
    x_shape: tuple
    classes: bool
    batch: int
    steps: int
    per_epoch: int


def _tiny():
    return nn.Sequential(nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 1))


def _cnn():
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(32 * 8 * 8, 10),
    )


def _mlp():
    layers = []
    for _ in range(4):
        layers += [nn.Linear(1024, 1024), nn.ReLU()]
    return nn.Sequential(*layers, nn.Linear(1024, 10))


WORKLOADS = {
    "tiny": Workload("tiny", _tiny, 0.05, F.mse_loss, (32,), False, 64, 1500, 500),
    "small-cnn": Workload("small-cnn", _cnn, 0.01, F.cross_entropy, (3, 32, 32), True, 64, 150, 50),
    "medium-mlp": Workload("medium-mlp", _mlp, 0.01, F.cross_entropy, (1024,), True, 256, 40, 20),
}


def make_loader(w: Workload, seed: int) -> DataLoader:
    g = torch.Generator().manual_seed(seed)
    n = w.per_epoch * w.batch
    x = torch.randn((n, *w.x_shape), generator=g)
    y = torch.randint(0, 10, (n,), generator=g) if w.classes else torch.randn(n, 1, generator=g)
    return DataLoader(
        TensorDataset(x, y),
        batch_size=w.batch,
        shuffle=True,
        generator=torch.Generator().manual_seed(seed + 1),
    )


class StepClock:
    """Ticked at the start of every forward pass; steady-state seconds per step."""

    WARMUP = 0.2

    def __init__(self) -> None:
        self.ticks: list[float] = []

    def tick(self) -> None:
        self.ticks.append(time.perf_counter())

    def per_step(self) -> float:
        first = int(len(self.ticks) * self.WARMUP)
        span = self.ticks[-1] - self.ticks[first]
        return span / max(1, len(self.ticks) - 1 - first)


def run_raw(w: Workload, seed: int) -> tuple[float, float, float]:
    torch.manual_seed(seed)
    net = w.build()
    opt = torch.optim.SGD(net.parameters(), lr=w.lr, momentum=0.9)
    dl = make_loader(w, seed)
    clock = StepClock()
    k = 0
    t0 = time.perf_counter()
    while k < w.steps:
        for x, y in dl:
            clock.tick()
            opt.zero_grad()
            loss = w.loss(net(x), y)
            loss.backward()
            opt.step()
            k += 1
            if k >= w.steps:
                break
    return time.perf_counter() - t0, clock.per_step(), loss.item()


def run_trainer(L, w: Workload, seed: int, config: str) -> tuple[float, float, float]:
    clock = StepClock()

    class Bench(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = w.build()
            self.last = None

        def training_step(self, batch, batch_idx):
            clock.tick()
            x, y = batch
            loss = w.loss(self.net(x), y)
            if config != "bare":
                self.log("train_loss", loss, prog_bar=True)
            self.last = loss
            return loss

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=w.lr, momentum=0.9)

    torch.manual_seed(seed)
    model = Bench()
    dl = make_loader(w, seed)
    with tempfile.TemporaryDirectory() as tmp:
        kw = dict(max_steps=w.steps, accelerator="cpu", devices=1, default_root_dir=tmp)
        if config != "default":
            kw.update(
                logger=False,
                enable_checkpointing=False,
                enable_progress_bar=False,
                enable_model_summary=False,
                num_sanity_val_steps=0,
            )
        trainer = L.Trainer(**kw)
        out = io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            t0 = time.perf_counter()
            trainer.fit(model, dl)
            elapsed = time.perf_counter() - t0
    return elapsed, clock.per_step(), model.last.item()


def contenders(names: list[str]) -> dict:
    table = {"raw": run_raw}
    import runtime

    table["runtime"] = lambda w, s: run_trainer(runtime, w, s, "bare")
    table["runtime-log"] = lambda w, s: run_trainer(runtime, w, s, "log")
    table["runtime-default"] = lambda w, s: run_trainer(runtime, w, s, "default")
    try:
        import lightning

        for name in ("lightning", "lightning.pytorch", "lightning.fabric"):
            logging.getLogger(name).setLevel(logging.ERROR)
        table["lightning"] = lambda w, s: run_trainer(lightning, w, s, "bare")
        table["lightning-log"] = lambda w, s: run_trainer(lightning, w, s, "log")
        table["lightning-default"] = lambda w, s: run_trainer(lightning, w, s, "default")
    except ImportError:
        pass
    missing = [n for n in names if n not in table]
    if missing:
        print(f"skipping (not importable): {', '.join(missing)}", file=sys.stderr)
    return {n: table[n] for n in names if n in table}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--cases", default="tiny,small-cnn,medium-mlp")
    p.add_argument("--contenders", default="raw,runtime,runtime-log,runtime-default,lightning-log")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--seed", type=int, default=1234)
    args = p.parse_args(argv)
    warnings.filterwarnings("ignore")
    names = args.contenders.split(",")
    if "raw" not in names:
        names.insert(0, "raw")
    runners = contenders(names)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.repeats} repeats "
        "(median of per-repeat ratios to raw; min-max in brackets)\n"
    )
    print(
        "| workload | contender | µs/step | step ratio to raw | ms/fit | fit ratio to raw "
        "| final loss = raw |"
    )
    print("|---|---|---:|---:|---:|---:|:---:|")
    for case in args.cases.split(","):
        w = WORKLOADS[case]
        for fn in runners.values():  # warm-up: imports, allocator, first-call caches
            fn(Workload(**{**w.__dict__, "steps": min(w.steps, 20)}), args.seed)
        times: dict[str, list[float]] = {n: [] for n in runners}
        steps: dict[str, list[float]] = {n: [] for n in runners}
        losses: dict[str, float] = {}
        order = list(runners)
        for r in range(args.repeats):
            rot = order[r % len(order) :] + order[: r % len(order)]
            for n in rot:
                gc.collect()
                t, step, loss = runners[n](w, args.seed)
                times[n].append(t)
                steps[n].append(step)
                losses[n] = loss
        for n in runners:
            ratios = [a / b for a, b in zip(times[n], times["raw"])]
            step_ratios = [a / b for a, b in zip(steps[n], steps["raw"])]
            same = (
                "yes"
                if abs(losses[n] - losses["raw"]) <= 1e-5 * max(1.0, abs(losses["raw"]))
                else "no"
            )
            print(
                f"| {case} | {n} | {statistics.median(steps[n]) * 1e6:.0f} | "
                f"{statistics.median(step_ratios):.3f} "
                f"({min(step_ratios):.2f}-{max(step_ratios):.2f}) | "
                f"{statistics.median(times[n]) * 1e3:.0f} | "
                f"{statistics.median(ratios):.3f} ({min(ratios):.2f}-{max(ratios):.2f}) | {same} |"
            )
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
