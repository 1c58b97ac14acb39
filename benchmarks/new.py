"""`scaffold new --defaults` end to end vs `copier copy` of the same template (copier's CLI).

Both are timed as whole processes (start to exit), interleaved, in one run, with a private HOME
holding the bundled template's git repository (built once, before timing, as any earlier
`scaffold` call leaves it). scaffold does more than copier here: name and destination checks,
an atomic move into place, and `git init` + first commit.

    python benchmarks/new.py --repeats 15
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def timed(cmd: list[str], env: dict, cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, env=env, cwd=cwd, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--template", default="tabular")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-new-"))
    env = {**os.environ, "HOME": str(root / "home")}
    (root / "home").mkdir()
    scaffold = [sys.executable, "-m", "scaffold"]
    copier = [shutil.which("copier") or "copier"]
    try:
        # Warm-up: builds ~/.cache/torch-scaffold/templates and the OS file cache.
        subprocess.run(
            [*scaffold, "new", "warm", "-t", args.template, "--defaults"],
            env=env,
            cwd=root,
            check=True,
            capture_output=True,
        )
        import scaffold as pkg

        src = "~/.cache/torch-scaffold/templates"
        times: dict[str, list[float]] = {
            "scaffold new": [],
            "copier copy": [],
            "python -c pass": [],
        }
        for i in range(args.repeats):
            runs = [
                ("scaffold new", [*scaffold, "new", f"s{i}", "-t", args.template, "--defaults"]),
                (
                    "copier copy",
                    [
                        *copier,
                        "copy",
                        "-q",
                        "--defaults",
                        "-r",
                        f"v{pkg.__version__}",
                        "-d",
                        f"project_name=c{i}",
                        "-d",
                        f"kind={args.template}",
                        src,
                        f"c{i}",
                    ],
                ),
                ("python -c pass", [sys.executable, "-c", "pass"]),
            ]
            for name, cmd in runs[i % 3 :] + runs[: i % 3]:  # rotate the order
                times[name].append(timed(cmd, env, root))
        base = statistics.median(times["copier copy"])
        print(f"{'command':<16} {'median s':>9} {'min s':>7} {'vs copier':>10}")
        for name, values in times.items():
            med = statistics.median(values)
            print(f"{name:<16} {med:>9.3f} {min(values):>7.3f} {med / base:>9.2f}x")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
