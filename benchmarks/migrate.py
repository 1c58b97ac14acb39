"""`scaffold migrate` throughput vs the floor: libcst's own parse + codegen of the same files.

Two workloads, each timed as whole processes (start to exit), interleaved, median of N:
  * one ~300-line script (a legacy training script plus the helper code real scripts carry);
  * a folder of 100 scripts (the examples/legacy corpus, repeated up to 100 files), migrated in place.
The floor is a process that imports libcst, parses every file and prints it back.

    python benchmarks/migrate.py --repeats 5
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LEGACY = sorted((ROOT / "examples" / "legacy").glob("*.py"))

FLOOR = """
import sys
from pathlib import Path
import libcst
for path in sys.argv[1:]:
    files = [path] if path.endswith(".py") else sorted(Path(path).rglob("*.py"))
    for f in files:
        libcst.parse_module(Path(f).read_text()).code
"""


def helper_block(i: int) -> str:
    return f'''

def augment_{i}(batch, scale={i}.0):
    """Helper {i}: the kind of utility code training scripts carry."""
    # keep the batch on its device
    noise = torch.randn_like(batch) * 0.0
    return batch * scale / (scale + 1.0) + noise


class Meter{i}:
    def __init__(self):
        self.total, self.count = 0.0, 0

    def update(self, value, n=1):
        self.total += value * n
        self.count += n

    @property
    def mean(self):
        return self.total / max(1, self.count)
'''


def make_big_script(folder: Path) -> Path:
    base = (ROOT / "examples/legacy/mnist_style.py").read_text()
    head, tail = base.split("\n\ndef train(", 1)
    text = head + "".join(helper_block(i) for i in range(12)) + "\n\ndef train(" + tail
    path = folder / "big_train.py"
    path.write_text(text)
    return path


def timed(cmd: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode not in (0,):
        raise SystemExit(f"{cmd} failed ({proc.returncode}): {proc.stderr[-500:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-migrate-"))
    try:
        big = make_big_script(root)
        big_lines = len(big.read_text().splitlines())
        hundred = [LEGACY[n % len(LEGACY)] for n in range(100)]
        corpus_lines = sum(len(p.read_text().splitlines()) for p in hundred)
        results: dict[str, list[float]] = {k: [] for k in ("one", "one-floor", "100", "100-floor")}
        for i in range(args.repeats):
            folder = root / f"corpus{i}"
            for n, p in enumerate(hundred):
                target = folder / f"copy{n // len(LEGACY)}"
                target.mkdir(parents=True, exist_ok=True)
                shutil.copy(p, target / p.name)
            migrate = [sys.executable, "-m", "scaffold", "migrate"]
            runs = [
                ("one", [*migrate, str(big), "-o", str(root / f"out{i}.py")]),
                ("one-floor", [sys.executable, "-c", FLOOR, str(big)]),
                ("100", [*migrate, str(folder)]),
                ("100-floor", [sys.executable, "-c", FLOOR, str(folder)]),
            ]
            for name, cmd in runs[i % 4 :] + runs[: i % 4]:
                if name == "100-floor":
                    cmd = [*cmd[:-1], str(folder)]
                results[name].append(timed(cmd, root))
                if name == "100":  # restore the originals for the floor run of this repeat
                    for orig in folder.rglob("*.py.orig"):
                        orig.replace(orig.with_suffix(""))
        med = {k: statistics.median(v) for k, v in results.items()}
        print(f"{'workload':<28} {'median s':>9} {'lines/s':>9} {'floor s':>8} {'x floor':>8}")
        print(
            f"{f'one script ({big_lines} lines)':<28} {med['one']:>9.3f} "
            f"{big_lines / med['one']:>9.0f} {med['one-floor']:>8.3f} {med['one'] / med['one-floor']:>7.2f}x"
        )
        print(
            f"{f'100 scripts ({corpus_lines} lines)':<28} {med['100']:>9.3f} "
            f"{corpus_lines / med['100']:>9.0f} {med['100-floor']:>8.3f} {med['100'] / med['100-floor']:>7.2f}x"
        )
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
