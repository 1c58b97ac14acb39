"""A training function in a module of its own (``engine.py``), called by a script beside it
(``train.py``, which builds the model and the optimizer): the analysis reads the callers in the
script's folder to tell which model the optimizer it receives trains. The module is converted
when every caller agrees; otherwise it is refused with a reason that is true for it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from scaffold.migrate.engine import MIGRATED, NOT_CONVERTED, UNCHANGED, migrate_source

ROOT = Path(__file__).resolve().parents[2]

ENGINE = '''\
"""Training and evaluation steps, as a project keeps them apart from its entry script."""
import torch


def train_step(model, loader, loss_fn, optimizer, device):
    model.train()
    total = 0.0
    for x, y in loader:
        x, y = x.to(device), y.to(device)
        loss = loss_fn(model(x), y)
        total += loss.item()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return total / len(loader)


def test_step(model, loader, loss_fn, device):
    model.eval()
    total = 0.0
    with torch.inference_mode():
        for x, y in loader:
            x, y = x.to(device), y.to(device)
            total += loss_fn(model(x), y).item()
    return total / len(loader)


def train(model, train_loader, test_loader, optimizer, loss_fn, epochs, device):
    results = {"train_loss": [], "test_loss": []}
    model.to(device)
    for epoch in range(epochs):
        train_loss = train_step(model, train_loader, loss_fn, optimizer, device)
        test_loss = test_step(model, test_loader, loss_fn, device)
        results["train_loss"].append(train_loss)
        results["test_loss"].append(test_loss)
    return results
'''

CALLER = """\
import torch
from torch.utils.data import DataLoader, TensorDataset

{import_line}

torch.manual_seed(0)
model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
head = torch.nn.Linear(1, 1)
optimizer = torch.optim.SGD({params}, lr=0.05, momentum=0.9)
{after}
data = TensorDataset(torch.randn(48, 4), torch.randn(48, 1))
train_loader = DataLoader(data, batch_size=8, shuffle=True)
test_loader = DataLoader(data, batch_size=16)
device = "cuda" if torch.cuda.is_available() else "cpu"
results = {call}(model=model, train_loader=train_loader, test_loader=test_loader,
    optimizer=optimizer, loss_fn=torch.nn.MSELoss(), epochs=3, device=device)
print("FINAL", [round(v, 6) for v in results["train_loss"] + results["test_loss"]],
      sum(p.double().sum().item() for p in model.parameters()))
"""


def project(
    tmp_path, import_line="import engine", call="engine.train", params=None, after=""
) -> Path:
    (tmp_path / "engine.py").write_text(ENGINE)
    (tmp_path / "train.py").write_text(
        CALLER.format(
            import_line=import_line, call=call, params=params or "model.parameters()", after=after
        )
    )
    return tmp_path / "engine.py"


@pytest.mark.parametrize(
    "import_line, call",
    [
        ("import engine", "engine.train"),
        ("import engine as eng", "eng.train"),
        ("from engine import train", "train"),
        ("from engine import train as fit", "fit"),
    ],
)
def test_a_training_module_called_from_a_script_beside_it_is_converted(tmp_path, import_line, call):
    path = project(tmp_path, import_line, call)
    result = migrate_source(path.read_text(), origin=path)
    assert result.status == MIGRATED, result.findings
    assert "configure_optimizers" in result.code and "trainer.fit(" in result.code
    # the caller put the model on its device: the Trainer keeps it there
    assert "accelerator=next(model.parameters()).device.type" in result.code


def test_without_the_callers_folder_the_module_is_refused_as_before(tmp_path):
    path = project(tmp_path)
    result = migrate_source(path.read_text())  # the text alone: no folder to read callers in
    assert result.status == NOT_CONVERTED
    assert "SCF311" in {f.code for f in result.findings}
    assert any("never calls" in f.message for f in result.findings), result.findings


def test_a_caller_whose_optimizer_trains_another_model_is_refused(tmp_path):
    path = project(tmp_path, params="head.parameters()")
    result = migrate_source(path.read_text(), origin=path)
    assert result.status == NOT_CONVERTED, result.code
    assert result.code == path.read_text()


@pytest.mark.parametrize(
    "after, converts",
    [
        ("model = model.to('cpu')", True),
        ("model = torch.nn.DataParallel(model)", True),
        ("if amp is not None:\n    model, optimizer = amp.initialize(model, optimizer)", True),
        ("model = torch.nn.Linear(4, 1)", False),
        ("if amp is not None:\n    optimizer = torch.optim.Adam(head.parameters())", False),
        ("if amp is not None:\n    optimizer, model = amp.initialize(model, optimizer)", False),
    ],
)
def test_what_the_caller_does_between_building_and_passing_is_read(tmp_path, after, converts):
    """Bindings that keep the objects (a device move, a DataParallel wrapper over the same
    parameters, apex's in-place amp.initialize) leave the pairing as built; any other
    rebinding of the model or the optimizer refuses."""
    path = project(tmp_path, after="amp = None\n" + after)
    result = migrate_source(path.read_text(), origin=path)
    assert (result.status == MIGRATED) == converts, result.findings


_HEAD = (
    "import torch\nimport engine\n\n"
    "model = torch.nn.Linear(4, 1)\n"
    "optimizer = torch.optim.SGD(model.parameters(), lr=0.1)\n"
)
_CALL = "engine.train(model, None, None, optimizer, torch.nn.MSELoss(), 1, 'cpu')"


@pytest.mark.parametrize(
    "other",
    [
        # disagrees: its optimizer trains another module than the one it passes
        CALLER.format(
            import_line="import engine", call="engine.train", params="head.parameters()", after=""
        ),
        # rebinds the optimizer after the call, in the loop that calls it again
        _HEAD
        + f"for lr in (0.1, 0.01):\n    {_CALL}\n"
        + "    optimizer = torch.optim.SGD(torch.nn.Linear(4, 1).parameters(), lr=lr)\n",
        # rebinds it later in the loop whose `if` makes the call
        _HEAD
        + f"for lr in (0.1, 0.01):\n    if lr > 0:\n        {_CALL}\n"
        + "    optimizer = torch.optim.SGD(torch.nn.Linear(4, 1).parameters(), lr=lr)\n",
        # calls it outside a statement line (an `if` test)
        _HEAD + f"if {_CALL}:\n    print('done')\n",
    ],
    ids=["disagrees", "rebinds-in-loop", "rebinds-in-loop-around-if", "call-in-if-test"],
)
def test_a_second_caller_that_cannot_be_followed_refuses(tmp_path, other):
    path = project(tmp_path)
    (tmp_path / "other.py").write_text(other)
    result = migrate_source(path.read_text(), origin=path)
    assert result.status == NOT_CONVERTED, result.code
    assert result.code == path.read_text()


@pytest.mark.slow
@pytest.mark.parametrize("engine", ["runtime", "lightning"])
def test_the_converted_module_computes_what_the_original_did(tmp_path, engine):
    if engine == "lightning":
        pytest.importorskip("lightning")
    original = tmp_path / "original"
    original.mkdir()
    path = project(original)
    migrated = tmp_path / "migrated"
    migrated.mkdir()
    project(migrated)
    result = migrate_source(path.read_text(), engine=engine, origin=path)
    assert result.status == MIGRATED, result.findings
    (migrated / "engine.py").write_text(result.code)

    def final(folder: Path) -> str:
        proc = subprocess.run(
            [sys.executable, "train.py"],
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=300,
            env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"},
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        return [ln for ln in proc.stdout.splitlines() if ln.startswith("FINAL")][-1]

    assert final(migrated) == final(original)


@pytest.mark.parametrize(
    "import_line, call",
    [
        ("import engine", "engine.train"),
        ("from engine import train", "train"),
        ("from engine import train as fit", "fit"),
    ],
)
def test_the_entry_script_points_at_the_module_that_holds_its_loop(tmp_path, import_line, call):
    project(tmp_path, import_line, call)
    script = tmp_path / "train.py"
    result = migrate_source(script.read_text(), origin=script)
    assert result.status == UNCHANGED and result.code == script.read_text()
    hints = [f for f in result.findings if "engine.py" in f.message]
    assert len(hints) == 1, result.findings
    assert "`engine.train()`" in hints[0].message and hints[0].line == 15


def test_a_module_without_a_loop_is_not_pointed_at(tmp_path):
    project(tmp_path)
    (tmp_path / "engine.py").write_text("def train(**kwargs):\n    return {'train_loss': []}\n")
    script = tmp_path / "train.py"
    result = migrate_source(script.read_text(), origin=script)
    assert result.status == UNCHANGED
    assert not [f for f in result.findings if "engine.py" in f.message], result.findings
