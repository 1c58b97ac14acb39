"""The README's first command (`python examples/demo.py`): it must visibly learn and say where
its logs and checkpoint are."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

DEMO = Path(__file__).resolve().parents[2] / "examples" / "demo.py"


def test_demo_learns_and_says_where_its_outputs_are(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("demo", DEMO)
    demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo)
    test_acc = demo.main(["--epochs", "4", "--root", str(tmp_path)])
    out = capsys.readouterr().out
    epochs = re.findall(
        r"epoch\s+(\d+)\s+train_loss ([\d.]+)\s+val_loss ([\d.]+)\s+val_acc ([\d.]+)", out
    )
    assert [int(e[0]) for e in epochs] == [0, 1, 2, 3]
    val_loss = [float(e[2]) for e in epochs]
    val_acc = [float(e[3]) for e in epochs]
    # learning, not a plateau from the first epoch on: each epoch better than the one before
    assert all(b < a for a, b in zip(val_loss, val_loss[1:])), val_loss
    assert all(b > a for a, b in zip(val_acc, val_acc[1:])), val_acc
    assert val_acc[-1] - val_acc[0] > 0.15 and test_acc > 0.7
    checkpoint = re.search(r"^best checkpoint: (\S+)", out, re.M).group(1)
    metrics = re.search(r"metrics per epoch \(CSV\): (\S+)", out).group(1)
    assert Path(checkpoint).is_file() and "epoch=03" in checkpoint
    assert Path(metrics).is_file() and "val_acc" in Path(metrics).read_text()
