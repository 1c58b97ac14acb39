#!/usr/bin/env python
"""Import cost: ``import torch`` vs ``import torch; import runtime`` (and lightning, if installed).

Each command runs in a fresh process, interleaved, N times; the median wall time is reported
together with what ``import runtime`` adds on top of torch.

    python benchmarks/startup.py --repeats 7
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import subprocess
import sys
import time

COMMANDS = {
    "torch": "import torch",
    "runtime": "import torch; import runtime",
    "scaffold": "import scaffold.cli",
    "lightning": "import torch; import lightning",
}


def timed(code: str) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True)
    return time.perf_counter() - t0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args(argv)
    names = [n for n in COMMANDS if n != "lightning" or importlib.util.find_spec("lightning")]
    times: dict[str, list[float]] = {n: [] for n in names}
    for n in names:
        timed(COMMANDS[n])  # warm the file cache
    for r in range(args.repeats):
        for n in names[r % len(names) :] + names[: r % len(names)]:
            times[n].append(timed(COMMANDS[n]))
    torch_s = statistics.median(times["torch"])
    print("| command | median s | added to `import torch` |")
    print("|---|---:|---:|")
    for n in names:
        med = statistics.median(times[n])
        added = f"{med - torch_s:+.3f} s" if "torch" in COMMANDS[n] and n != "torch" else ""
        print(f"| `{COMMANDS[n]}` | {med:.3f} | {added} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
