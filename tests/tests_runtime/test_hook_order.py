"""Hook call order equals Lightning's, recorded live from the installed Lightning (a dev
dependency) and from ``runtime`` by the same script (``tests/helpers/hook_order.py``): every
module, data module and callback hook, over fit (sanity check, 2 epochs, checkpointing),
validate, test and predict."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _record(engine: str, out: str) -> dict:
    proc = subprocess.run(
        [sys.executable, "-m", "tests.helpers.hook_order", engine, out],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": ROOT},
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    with open(out) as handle:
        return json.load(handle)


@pytest.mark.skipif(
    importlib.util.find_spec("lightning") is None,
    reason="lightning is not installed (pip install -e '.[dev]')",
)
def test_hook_order_matches_lightning(tmp_path):
    with ThreadPoolExecutor(max_workers=2) as pool:
        lightning, runtime = pool.map(
            _record,
            ["lightning", "runtime"],
            [str(tmp_path / "pl.json"), str(tmp_path / "rt.json")],
        )
    assert list(runtime) == ["fit", "validate", "test", "predict"]
    for stage, expected in lightning.items():
        got = runtime[stage]
        if got != expected:
            i = next(
                (i for i, (a, b) in enumerate(zip(expected, got)) if a != b),
                min(len(expected), len(got)),
            )
            pytest.fail(
                f"[{stage}] first difference at call {i}:\n"
                f"  lightning: {expected[max(0, i - 2) : i + 3]}\n"
                f"  runtime:   {got[max(0, i - 2) : i + 3]}"
            )
    # the recording sees the whole run, not an empty list on both sides
    assert len(lightning["fit"]) > 100 and "LightningModule.backward()" in lightning["fit"]
