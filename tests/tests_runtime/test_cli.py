"""LightningCLI: subcommands, YAML configs with overrides, class_path callbacks, saved config."""

from __future__ import annotations

import os

import pytest
import yaml

import runtime as L
from runtime.cli import LightningCLI
from tests.helpers.models import RegModel, loader

pytest.importorskip("jsonargparse")


class Data(L.LightningDataModule):
    def __init__(self, n: int = 64, batch_size: int = 8):
        super().__init__()
        self.n, self.batch_size = n, batch_size

    def train_dataloader(self):
        return loader(n=self.n, batch_size=self.batch_size)

    def val_dataloader(self):
        return loader(n=16)

    def test_dataloader(self):
        return loader(n=16)


def cli(args, **kw):
    kw.setdefault("trainer_defaults", {"enable_progress_bar": False, "enable_model_summary": False})
    return LightningCLI(RegModel, Data, args=args, **kw)


def test_fit_with_config_file_and_overrides(tmp_path):
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(
        yaml.safe_dump(
            {
                "seed_everything": 3,
                "trainer": {
                    "max_epochs": 2,
                    "default_root_dir": str(tmp_path),
                    "callbacks": [
                        {
                            "class_path": "EarlyStopping",
                            "init_args": {"monitor": "val_loss", "patience": 4},
                        }
                    ],
                },
                "model": {"lr": 0.01},
                "data": {"batch_size": 16},
            }
        )
    )
    c = cli(["fit", "--config", str(cfg), "--trainer.max_epochs", "3", "--model.optimizer", "adam"])
    assert c.subcommand == "fit" and c.trainer.max_epochs == 3 and c.trainer.global_step == 12
    assert c.model.hparams.lr == 0.01 and c.model.hparams.optimizer == "adam"
    assert c.trainer.early_stopping_callback.patience == 4
    with open(os.path.join(c.trainer.log_dir, "config.yaml")) as f:
        saved = yaml.safe_load(f)
    assert saved["trainer"]["max_epochs"] == 3 and saved["seed_everything"] == 3
    ckpt = c.trainer.checkpoint_callback.best_model_path
    t = cli(["test", "--config", str(cfg), "--ckpt_path", ckpt])
    assert t.subcommand == "test" and "test_loss" in t.result[0]


def test_unknown_argument_is_an_error(capsys):
    with pytest.raises(SystemExit):
        cli(["fit", "--model.lrr", "3"])
    assert "lrr" in capsys.readouterr().err
