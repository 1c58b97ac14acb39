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


class Sized(L.LightningDataModule):
    """Knows a size only once built, as a data module that reads a file does."""

    def __init__(self, width: int = 3):
        super().__init__()
        self.width = width

    @property
    def num_features(self) -> int:
        return self.width + 1

    def train_dataloader(self):
        return loader(n=16, batch_size=8)


class Linked(L.LightningModule):
    def __init__(self, num_features: int = 0, lr: float = 0.1):
        super().__init__()
        self.save_hyperparameters()
        self.layer = __import__("torch").nn.Linear(num_features, 1)


class LinkingCLI(LightningCLI):
    calls: list[str] = []

    def add_arguments_to_parser(self, parser):
        parser.link_arguments("data.num_features", "model.num_features", apply_on="instantiate")

    def before_instantiate_classes(self):
        self.calls.append("before")

    def after_instantiate_classes(self):
        self.calls.append(f"after:{type(self.model).__name__}")


def test_add_arguments_to_parser_links_on_instantiate_and_hooks_run():
    c = LinkingCLI(Linked, Sized, args={"data": {"width": 5}}, run=False)
    assert c.model.hparams.num_features == 6 and c.model.layer.in_features == 6
    assert LinkingCLI.calls == ["before", "after:Linked"]
    with pytest.raises(SystemExit):  # a linked target is not a free argument any more
        LinkingCLI(Linked, Sized, args=["--model.num_features", "2"], run=False)


def test_per_subcommand_parser_kwargs_default_config_files(tmp_path):
    cfg = tmp_path / "fit_defaults.yaml"
    cfg.write_text("model:\n  lr: 0.25\n")
    c = LightningCLI(
        RegModel,
        Data,
        args=["fit", "--trainer.fast_dev_run", "true", "--trainer.default_root_dir", str(tmp_path)],
        parser_kwargs={"fit": {"default_config_files": [str(cfg)]}},
        trainer_defaults={"enable_progress_bar": False, "enable_model_summary": False},
    )
    assert c.model.hparams.lr == 0.25


def test_short_logger_class_names_resolve(tmp_path):
    c = cli(
        [
            "fit",
            "--trainer.max_steps",
            "1",
            "--trainer.default_root_dir",
            str(tmp_path),
            "--trainer.logger",
            '[{"class_path": "CSVLogger", "init_args": {"save_dir": "' + str(tmp_path) + '"}}]',
        ]
    )
    assert type(c.trainer.loggers[0]).__name__ == "CSVLogger"
    assert (tmp_path / "lightning_logs" / "version_0" / "metrics.csv").exists()
