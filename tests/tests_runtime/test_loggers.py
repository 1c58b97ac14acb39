"""CSVLogger and TensorBoardLogger files, default logger choice and version folders."""

from __future__ import annotations

import importlib
import os

import pytest
import yaml

import runtime as L
from runtime.loggers import CSVLogger, TensorBoardLogger
from tests.helpers.engines import engine_module, engines
from tests.helpers.models import RegModel, loader, quiet


def test_csv_logger_files_and_versions(tmp_path):
    for expected in ("version_0", "version_1"):
        lg = CSVLogger(tmp_path)
        L.Trainer(**quiet(max_epochs=1, logger=lg)).fit(RegModel(lr=0.1), loader(), loader(n=8))
        assert lg.log_dir == str(tmp_path / "lightning_logs" / expected)
    with open(tmp_path / "lightning_logs" / "version_0" / "hparams.yaml") as f:
        assert yaml.safe_load(f)["lr"] == 0.1
    with open(tmp_path / "lightning_logs" / "version_0" / "metrics.csv") as f:
        header = f.readline().strip().split(",")
    # 8 batches < log_every_n_steps=50: no step rows, as in Lightning (which warns about it)
    assert header == ["epoch", "step", "train_loss_epoch", "val_loss"]


def test_tensorboard_logger_writes_events(tmp_path):
    pytest.importorskip("tensorboard")
    lg = TensorBoardLogger(tmp_path, name="tb")
    L.Trainer(**quiet(max_epochs=2, logger=lg, log_every_n_steps=1)).fit(RegModel(), loader())
    files = os.listdir(tmp_path / "tb" / "version_0")
    assert any(f.startswith("events.out.tfevents") for f in files) and "hparams.yaml" in files
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(tmp_path / "tb" / "version_0"))
    acc.Reload()
    assert len(acc.Scalars("train_loss_step")) == 16 and len(acc.Scalars("train_loss_epoch")) == 2


def test_default_logger_is_tensorboard_when_installed(tmp_path):
    pytest.importorskip("tensorboard")
    t = L.Trainer(max_epochs=1, default_root_dir=tmp_path, enable_progress_bar=False)
    assert isinstance(t.logger, TensorBoardLogger)
    t.fit(RegModel(), loader())
    assert t.log_dir == str(tmp_path / "lightning_logs" / "version_0")
    assert os.listdir(tmp_path / "lightning_logs" / "version_0" / "checkpoints") == [
        "epoch=0-step=8.ckpt"
    ]


def test_logger_list_and_bad_logger(tmp_path):
    a, b = CSVLogger(tmp_path, name="a"), CSVLogger(tmp_path, name="b")
    t = L.Trainer(**quiet(max_epochs=1, logger=[a, b]))
    t.fit(RegModel(), loader())
    assert t.logger is a and os.path.exists(tmp_path / "b" / "version_0" / "metrics.csv")
    with pytest.raises(ValueError, match="allowed are True, False, a Logger"):
        L.Trainer(logger="csv")


def test_csv_logger_warns_only_about_an_earlier_runs_metrics(tmp_path):
    """A folder holding this run's config.yaml (saved by the CLI first) is no reason to warn;
    an earlier run's metrics.csv is, and it is replaced."""
    import warnings

    from runtime.loggers import CSVLogger

    logger = CSVLogger(tmp_path, name="", version=0)
    folder = tmp_path / "version_0"
    folder.mkdir(parents=True)
    (folder / "config.yaml").write_text("trainer: {}\n")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        logger.log_metrics({"loss": 1.0}, step=0)
        logger.save()
    assert not [w for w in caught if "logs directory" in str(w.message)]
    again = CSVLogger(tmp_path, name="", version=0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        again.log_metrics({"loss": 2.0}, step=0)
        again.save()
    assert [w for w in caught if "earlier run" in str(w.message)]
    assert (folder / "metrics.csv").read_text().splitlines()[1:] == ["2.0,0"]
    assert (folder / "config.yaml").is_file()


def test_csv_experiment_writer_is_lightnings(tmp_path):
    """``CSVLogger.experiment`` is an ExperimentWriter (Lightning's API): rows buffered by
    ``log_metrics``, written by ``save``, hyper-parameters by ``log_hparams``."""
    import torch

    from runtime.loggers import CSVLogger
    from runtime.loggers.csv_logs import ExperimentWriter

    logger = CSVLogger(tmp_path)
    exp = logger.experiment
    assert isinstance(exp, ExperimentWriter) and exp is logger.experiment
    exp.log_metrics({"loss": torch.tensor(0.5)}, step=3)
    assert exp.metrics == [{"loss": 0.5, "step": 3}]
    exp.save()
    assert not exp.metrics
    path = tmp_path / "lightning_logs" / "version_0" / ExperimentWriter.NAME_METRICS_FILE
    assert path.read_text().splitlines() == ["loss,step", "0.5,3"]
    exp.log_hparams({"lr": 0.1})
    hp = tmp_path / "lightning_logs" / "version_0" / ExperimentWriter.NAME_HPARAMS_FILE
    assert "lr: 0.1" in hp.read_text()


@pytest.mark.parametrize("engine", engines())
def test_csv_logger_writes_no_hparams_yaml_without_saved_hyperparameters(engine, tmp_path):
    """As Lightning 2.6: a module that saved no hyper-parameters logs none (no hparams.yaml)."""
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    Lm = importlib.import_module(engine)
    loggers = engine_module(engine, "loggers")

    class M(Lm.LightningModule):
        def __init__(self):
            super().__init__()
            self.layer = torch.nn.Linear(2, 1)

        def training_step(self, batch, batch_idx):
            loss = self.layer(batch[0]).sum()
            self.log("loss", loss)
            return loss

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    trainer = Lm.Trainer(
        max_epochs=1,
        logger=loggers.CSVLogger(tmp_path),
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        log_every_n_steps=1,
    )
    trainer.fit(M(), DataLoader(TensorDataset(torch.randn(4, 2)), batch_size=2))
    folder = tmp_path / "lightning_logs" / "version_0"
    assert sorted(os.listdir(folder)) == ["metrics.csv"]
