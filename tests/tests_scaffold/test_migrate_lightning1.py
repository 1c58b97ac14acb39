"""Lightning 1.x -> 2.x upgrade: imports, Trainer arguments, *_epoch_end(outputs) hooks."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from scaffold.migrate.engine import migrate_source

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples" / "lightning1").glob("*.py"))


def _final(path: Path) -> float:
    proc = subprocess.run(
        [sys.executable, str(path)], capture_output=True, text=True, cwd=path.parent
    )
    assert proc.returncode == 0, proc.stderr[-1500:]
    return float(re.search(r"^FINAL (\S+)", proc.stdout, re.M).group(1))


@pytest.mark.slow
@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_upgraded_script_runs_the_same_on_both_engines(tmp_path, example):
    finals = {}
    for engine in ("runtime", "lightning"):
        result = migrate_source(example.read_text(), engine)
        assert result.status == "migrated", result.findings
        assert "import pytorch_lightning" not in result.code
        assert "from pytorch_lightning" not in result.code
        assert "_epoch_end(self, outputs)" not in result.code
        script = tmp_path / f"upgraded_{engine}.py"
        script.write_text(result.code)
        finals[engine] = _final(script)
        assert migrate_source(result.code, engine).status == "unchanged"
    assert finals["runtime"] == pytest.approx(finals["lightning"], rel=1e-6)


def _upgrade(snippet: str, engine: str = "runtime"):
    result = migrate_source(snippet, engine)
    return result.code, {(f.code, f.status) for f in result.findings}, result.findings


def test_trainer_arguments():
    code, found, _ = _upgrade(
        "import pytorch_lightning as pl\n"
        "trainer = pl.Trainer(gpus=2, precision=16,\n"
        "                     replace_sampler_ddp=False, accelerator='ddp', auto_lr_find=True,\n"
        "                     resume_from_checkpoint='last.ckpt')\n"
        "trainer.fit(model, loader)\n",
        "lightning",
    )
    assert "import lightning.pytorch as pl" in code
    assert 'accelerator="gpu", devices=2' in code and 'precision="16-mixed"' in code
    assert "use_distributed_sampler=False" in code and "strategy='ddp'" in code
    assert "trainer.fit(model, loader, ckpt_path='last.ckpt')" in code
    assert "resume_from_checkpoint" not in code
    assert "auto_lr_find=True" in code and ("SCF207", "manual") in found


def test_bf16_and_cpu_and_refresh_rate():
    code, found, _ = _upgrade(
        "from pytorch_lightning import Trainer\n"
        "t = Trainer(gpus=0, precision='bf16', progress_bar_refresh_rate=20)\n"
    )
    assert "from runtime import Trainer" in code
    assert 'accelerator="cpu"' in code and 'precision="bf16-mixed"' in code
    assert "enable_progress_bar=True" in code and ("SCF204", "manual") in found


def test_runtime_engine_reports_modules_it_lacks():
    code, found, findings = _upgrade(
        "from pytorch_lightning.tuner.tuning import Tuner\nimport pytorch_lightning as pl\n"
    )
    assert "from pytorch_lightning.tuner.tuning import Tuner" in code
    assert ("SCF211", "manual") in found and findings[0].line == 1


def test_epoch_end_without_step_is_left_with_a_note():
    code, found, _ = _upgrade(
        "import pytorch_lightning as pl\n\n\nclass M(pl.LightningModule):\n"
        "    def validation_epoch_end(self, outputs):\n        pass\n"
    )
    assert "def validation_epoch_end(self, outputs)" in code and ("SCF208", "manual") in found


def test_module_without_init_gets_one_for_the_buffers(tmp_path):
    code, _, _ = _upgrade(
        "import pytorch_lightning as pl\n\n\nclass M(pl.LightningModule):\n"
        "    def test_step(self, batch, batch_idx):\n        return batch\n\n"
        "    def test_epoch_end(self, outs):\n        print(len(outs))\n"
    )
    assert "def __init__(self, *args, **kwargs):" in code and "self.test_step_outputs = []" in code
    assert "def on_test_epoch_end(self):" in code and "outs, self.test_step_outputs = " in code
    namespace: dict = {}
    exec(compile(code, "m.py", "exec"), namespace)
    module = namespace["M"]()
    module.test_step(1, 0)
    module.test_step(2, 1)
    module.on_test_epoch_end()
    assert module.test_step_outputs == []


def test_spellings_removed_in_2_0():
    source = (ROOT / "examples" / "lightning1" / "checkpoint_hparams_pl1.py").read_text()
    result = migrate_source(source)
    code = result.code
    assert "self.save_hyperparameters(hparams)" in code and "self.hparams = " not in code
    assert 'ModelCheckpoint(dirpath="ckpts", filename="{epoch}", every_n_epochs=1' in code
    assert "def on_train_epoch_end(self):" in code and "def on_epoch_end" not in code
    assert "train_dataloaders=DataLoader(" in code and "train_dataloader=" not in code
    codes = {f.code for f in result.findings}
    assert {"SCF213", "SCF215", "SCF216", "SCF217"} <= codes


def test_removed_argparse_helpers_are_reported():
    source = (
        "import pytorch_lightning as pl\n"
        "parser = pl.Trainer.add_argparse_args(parser)\n"
        "trainer = pl.Trainer.from_argparse_args(args)\n"
    )
    result = migrate_source(source)
    manual = [f for f in result.findings if f.code == "SCF214"]
    assert len(manual) == 2 and all(f.status == "manual" for f in manual)


@pytest.mark.parametrize("engine", ["runtime", "lightning"])
def test_modules_that_moved_in_2x_are_importable_after_the_upgrade(engine):
    """1.x paths that 2.x moved (`utilities.cli`, `core.lightning`, ...) point where the names
    live now (opacus's mnist_lightning.py imported LightningCLI from `utilities.cli`)."""
    source = (
        "from pytorch_lightning.utilities.cli import LightningCLI\n"
        "from pytorch_lightning.core.lightning import LightningModule\n"
        "from pytorch_lightning.core.datamodule import LightningDataModule\n"
        "from pytorch_lightning.callbacks.base import Callback\n"
        "from pytorch_lightning.utilities.seed import seed_everything\n"
    )
    upgraded = migrate_source(source, engine=engine).code
    assert "pytorch_lightning" not in upgraded
    namespace: dict = {}
    exec(compile(upgraded, "<upgraded>", "exec"), namespace)
    assert {"LightningCLI", "LightningModule", "Callback", "seed_everything"} <= set(namespace)
