"""WandbLogger: a real offline W&B run (wandb installed) holds the same rows and config as
Lightning's WandbLogger writes for the same training, and the same rows as the CSV logger;
checkpoints become model artifacts; errors say what to do."""

from __future__ import annotations

import sys

import pytest
import torch
from torch import nn

import runtime as L
from runtime.errors import MisconfigurationException
from runtime.loggers import CSVLogger, WandbLogger
from tests.helpers.models import loader, make_net, quiet

wandb = pytest.importorskip("wandb")
from tests.helpers.wandb_runs import config, history, run_file  # noqa: E402


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_CONSOLE", "off")
    yield
    wandb.finish()


def _module_class(engine):
    class Model(engine.LightningModule):
        def __init__(self, lr: float = 0.05, act=torch.relu, sizes=(8, 1)):
            super().__init__()
            self.save_hyperparameters()
            self.net = make_net(8)

        def training_step(self, batch, batch_idx):
            loss = nn.functional.mse_loss(self.net(batch[0]), batch[1])
            self.log("train_loss", loss)
            self.log("train_loss_epoch_mean", loss, on_step=False, on_epoch=True)
            return loss

        def validation_step(self, batch, batch_idx):
            self.log("val_loss", nn.functional.mse_loss(self.net(batch[0]), batch[1]))

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)

    return Model


def _train(engine, logger_cls, save_dir, extra_loggers=()):
    torch.manual_seed(0)
    logger = logger_cls(project="demo", offline=True, save_dir=str(save_dir))
    trainer = engine.Trainer(
        **quiet(max_epochs=2, log_every_n_steps=3, logger=[logger, *extra_loggers])
    )
    trainer.fit(_module_class(engine)(), loader(n=64), loader(n=32, seed=1))
    run_id = logger.version
    wandb.finish()
    path = run_file(str(save_dir), run_id)
    return logger, history(path), config(path)


def test_rows_and_config_match_lightning(tmp_path):
    lightning = pytest.importorskip("lightning")
    from lightning.pytorch.loggers import WandbLogger as LightningWandbLogger

    ours, rows, cfg = _train(L, WandbLogger, tmp_path / "ours")
    _, their_rows, their_cfg = _train(lightning, LightningWandbLogger, tmp_path / "theirs")
    assert len(rows) == len(their_rows) > 4
    for row, theirs in zip(rows, their_rows, strict=True):
        assert row.keys() == theirs.keys()
        assert row == pytest.approx(theirs, rel=1e-6)
    assert cfg == their_cfg == {"lr": 0.05, "act": "relu", "sizes": [8, 1]}
    assert ours.name == "demo" and ours.save_dir == str(tmp_path / "ours")


def test_rows_match_the_csv_logger(tmp_path):
    csv = CSVLogger(str(tmp_path / "csv"), name="")
    _, rows, _ = _train(L, WandbLogger, tmp_path, extra_loggers=[csv])
    import csv as csvlib

    with open(tmp_path / "csv" / "version_0" / "metrics.csv") as fh:
        csv_rows = [
            {k: float(v) for k, v in row.items() if v != ""} for row in csvlib.DictReader(fh)
        ]
    assert len(rows) == len(csv_rows)
    for row, csv_row in zip(rows, csv_rows, strict=True):
        step = row.pop("trainer/global_step")
        assert csv_row.pop("step") == step
        assert row == pytest.approx(csv_row, rel=1e-6)


def test_checkpoint_folder_uses_the_run_id(tmp_path):
    torch.manual_seed(0)
    logger = WandbLogger(project="demo", offline=True, save_dir=str(tmp_path))
    trainer = L.Trainer(**quiet(max_epochs=1, logger=logger, enable_checkpointing=True))
    trainer.fit(_module_class(L)(), loader(n=16))
    assert logger.version and len(logger.version) >= 8
    folder = tmp_path / "demo" / logger.version / "checkpoints"
    assert trainer.checkpoint_callback.best_model_path.startswith(str(folder))


class _Run:
    """Stands for a W&B run where a test looks at the calls (artifacts need a network)."""

    id = "run123"

    def __init__(self):
        self.logged: list = []
        self.artifacts: list = []
        self.config = {}

    def log(self, row):
        self.logged.append(row)

    def define_metric(self, *args, **kwargs):
        pass

    def log_artifact(self, artifact, aliases):
        self.artifacts.append((artifact.name, artifact.metadata["original_filename"], aliases))


@pytest.mark.parametrize("log_model", ["all", True])
def test_checkpoints_become_model_artifacts(tmp_path, log_model):
    from runtime.callbacks import ModelCheckpoint

    run = _Run()
    logger = WandbLogger(experiment=run, log_model=log_model, save_dir=str(tmp_path))
    ckpt = ModelCheckpoint(dirpath=tmp_path / "ck", monitor="val_loss", save_top_k=1)
    trainer = L.Trainer(
        **quiet(max_epochs=3, logger=logger, callbacks=[ckpt], enable_checkpointing=True)
    )
    trainer.fit(_module_class(L)(), loader(n=16), loader(n=16, seed=1))
    names = [a[1] for a in run.artifacts]
    assert {a[0] for a in run.artifacts} == {"model-run123"}
    best = ckpt.best_model_path.rsplit("/", 1)[-1]
    assert run.artifacts[-1][1:] == (best, ["latest", "best"])
    if log_model == "all":  # each save as it happens (val_loss improves in every epoch here)
        assert names == [f"epoch={e}-step={2 * (e + 1)}.ckpt" for e in range(3)]
        assert all(a[2] == ["latest", "best"] for a in run.artifacts)
    else:  # at the end, the files that exist then
        assert names == [best]


def test_media_and_hyperparameters_go_to_the_run(tmp_path):
    run = _Run()
    run.config = type(
        "Cfg", (), {"update": lambda self, d, allow_val_change: run.logged.append(d)}
    )()
    logger = WandbLogger(experiment=run, prefix="p")
    logger.log_hyperparams({"net": {"width": 8}, "fn": torch.tanh, "obj": object})
    assert run.logged[-1]["net"] == {"width": 8} and run.logged[-1]["fn"] == "tanh"
    logger.log_image(
        "samples", [torch.rand(3, 4, 4), torch.rand(3, 4, 4)], step=2, caption=["a", "b"]
    )
    row = run.logged[-1]
    assert row["trainer/global_step"] == 2 and [im._caption for im in row["p-samples"]] == [
        "a",
        "b",
    ]
    logger.log_text("t", columns=["x"], data=[["hello"]])
    assert isinstance(run.logged[-1]["p-t"], wandb.Table)
    with pytest.raises(ValueError, match="Expected 2 items but only found 1 for caption"):
        logger.log_image("samples", [torch.rand(3, 4, 4)] * 2, caption=["a"])
    with pytest.raises(TypeError, match='Expected a list as "images"'):
        logger.log_image("samples", torch.rand(3, 4, 4))


def test_errors_say_what_to_do(monkeypatch):
    with pytest.raises(MisconfigurationException, match="cannot be uploaded in offline mode"):
        WandbLogger(offline=True, log_model=True)
    with pytest.raises(ValueError, match="`log_model` should be True, False or 'all'"):
        WandbLogger(log_model="best")
    monkeypatch.setitem(sys.modules, "wandb", None)
    with pytest.raises(ModuleNotFoundError, match="pip install wandb"):
        _ = WandbLogger(offline=True).experiment
