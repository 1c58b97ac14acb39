"""``--verify``: run the original and the migrated script for K optimizer steps each and compare
the parameters the optimizer holds afterwards.

Each script runs in its own process under a small bootstrap that registers a global optimizer
step hook (``torch.optim.optimizer.register_optimizer_step_post_hook``); after the K-th step it
saves the optimizer's parameters and ends the process. Both runs start from the script's own
seeding, so a faithful migration gives identical parameters on CPU.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

BOOTSTRAP = r"""
import os, runpy, sys
import torch
from torch.optim.optimizer import register_optimizer_step_post_hook

_K = int(os.environ["SCAFFOLD_VERIFY_STEPS"])
_OUT = os.environ["SCAFFOLD_VERIFY_OUT"]
_state = {"count": 0, "last": None}


def _save(optimizer, count):
    params = [p.detach().cpu().clone() for g in optimizer.param_groups for p in g["params"]]
    torch.save({"steps": count, "params": params}, _OUT)


def _hook(optimizer, args, kwargs):
    _state["count"] += 1
    _state["last"] = optimizer
    if _state["count"] >= _K:
        _save(optimizer, _state["count"])
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)


register_optimizer_step_post_hook(_hook)
_script = sys.argv[1]
sys.argv = sys.argv[1:]
sys.path.insert(0, os.path.dirname(os.path.abspath(_script)))
runpy.run_path(_script, run_name="__main__")
if _state["last"] is not None:
    _save(_state["last"], _state["count"])
"""


@dataclass(frozen=True)
class Verification:
    ok: bool
    steps: tuple[int, int]
    max_abs_diff: float
    message: str


def _run(script: Path, steps: int, out: Path, args: tuple[str, ...], timeout: float) -> str:
    env = {**os.environ, "SCAFFOLD_VERIFY_STEPS": str(steps), "SCAFFOLD_VERIFY_OUT": str(out)}
    proc = subprocess.run(
        [sys.executable, "-c", BOOTSTRAP, str(script), *args],
        cwd=script.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{script.name} failed: {proc.stderr.strip()[-800:]}")
    return proc.stdout


def _listing(logs: Path) -> set[str] | None:
    return {p.name for p in logs.iterdir()} if logs.is_dir() else None


def _remove_new_logs(folder: Path, before: set[str] | None) -> None:
    """The verification runs' Trainer logs (lightning_logs/version_N) are not the user's."""
    import shutil

    logs = folder / "lightning_logs"
    if not logs.is_dir():
        return
    if before is None:
        shutil.rmtree(logs, ignore_errors=True)
        return
    for entry in logs.iterdir():
        if entry.name not in before:
            shutil.rmtree(entry, ignore_errors=True)


def verify(
    original: Path,
    migrated_code: str,
    steps: int = 3,
    args: tuple[str, ...] = (),
    timeout: float = 600.0,
    rtol: float = 1e-5,
) -> Verification:
    import torch

    from scaffold.migrate.ddp import uses_distributed

    original = original.resolve()
    if uses_distributed(original.read_text()):
        return Verification(
            False,
            (0, 0),
            float("nan"),
            "the script trains in several processes (mp.spawn / torchrun / DDP), and --verify "
            "follows one process: run both scripts under your launcher and compare instead, or "
            "migrate without --verify",
        )
    folder = original.parent
    logs_before = _listing(folder / "lightning_logs")
    fd, tmp_name = tempfile.mkstemp(prefix=f".{original.stem}.migrated-", suffix=".py", dir=folder)
    migrated = Path(tmp_name)
    with tempfile.TemporaryDirectory() as scratch, os.fdopen(fd, "w") as handle:
        handle.write(migrated_code)
        handle.close()
        try:
            outs = [Path(scratch) / "original.pt", Path(scratch) / "migrated.pt"]
            try:
                _run(original, steps, outs[0], args, timeout)
                _run(migrated, steps, outs[1], args, timeout)
            except (RuntimeError, subprocess.TimeoutExpired) as err:
                return Verification(False, (0, 0), float("nan"), str(err))
            if not all(p.exists() for p in outs):
                return Verification(False, (0, 0), float("nan"), "no optimizer step was taken")
            a, b = (torch.load(p, weights_only=True) for p in outs)
        finally:
            migrated.unlink(missing_ok=True)
            _remove_new_logs(folder, logs_before)
    counts = (a["steps"], b["steps"])
    if counts[0] != counts[1] or len(a["params"]) != len(b["params"]):
        return Verification(
            False,
            counts,
            float("nan"),
            f"the runs took {counts[0]} and {counts[1]} optimizer steps",
        )
    worst, ok = 0.0, True
    for x, y in zip(a["params"], b["params"], strict=True):
        if x.shape != y.shape:
            return Verification(False, counts, float("nan"), "parameter shapes differ")
        diff = (x.double() - y.double()).abs()
        worst = max(worst, float(diff.max()) if diff.numel() else 0.0)
        ok = ok and bool(torch.allclose(x.double(), y.double(), rtol=rtol, atol=rtol))
    verdict = "match" if ok else "DIFFER"
    return Verification(
        ok,
        counts,
        worst,
        f"parameters after {counts[0]} optimizer step(s) {verdict}: largest difference {worst:.3g}",
    )
