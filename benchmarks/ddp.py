#!/usr/bin/env python
"""DDP overhead: a hand-written DDP loop vs the runtime (strategy='ddp') vs Lightning, 2 CPU processes.

Every contender is started the same way (torchrun, 2 processes, 1 thread each) and reports its
steady-state time per step on rank 0 (the first 10 steps, where lazy imports and DDP's bucket
rebuild happen, are dropped). Contenders are interleaved; the median of
the per-repeat ratios to the raw loop is reported.

    python benchmarks/ddp.py --repeats 5
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import socket
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(contender: str, steps: int) -> float:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")
    }
    env["OMP_NUM_THREADS"] = "1"
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc-per-node",
            "2",
            "--master-port",
            str(_free_port()),
            os.path.join(HERE, "ddp_worker.py"),
            "--contender",
            contender,
            "--steps",
            str(steps),
        ],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        timeout=300,
    )
    line = [x for x in out.stdout.splitlines() if x.startswith("{")][-1]
    return json.loads(line)["seconds"]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--steps", type=int, default=60)
    args = p.parse_args(argv)
    names = ["raw", "runtime"] + (["lightning"] if importlib.util.find_spec("lightning") else [])
    times: dict[str, list[float]] = {n: [] for n in names}
    for r in range(args.repeats):
        for n in names[r % len(names) :] + names[: r % len(names)]:
            times[n].append(run(n, args.steps))
    print(
        f"small CNN, 2 CPU processes (gloo), {args.steps} steps per rank, {args.repeats} repeats\n"
    )
    print("| contender | median ms/step | ratio to raw DDP loop (min-max) |")
    print("|---|---:|---:|")
    for n in names:
        ratios = [a / b for a, b in zip(times[n], times["raw"])]
        print(
            f"| {n} | {statistics.median(times[n]) * 1e3:.1f} | {statistics.median(ratios):.3f} "
            f"({min(ratios):.2f}-{max(ratios):.2f}) |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
