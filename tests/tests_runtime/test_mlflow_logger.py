"""MLFlowLogger against a recording stand-in for the mlflow client (mlflow is optional).

The stand-in implements the few MlflowClient calls the logger makes and records them, so the
test checks what reaches MLflow: experiment and run creation, params, metric names and steps,
and the terminal status.
"""

from __future__ import annotations

import os
import sys
import types
from collections import namedtuple

import pytest

import runtime as L
from runtime.loggers import MLFlowLogger
from tests.helpers.models import RegModel, loader, quiet

Param = namedtuple("Param", "key value")
Metric = namedtuple("Metric", "key value timestamp step")


class FakeClient:
    instances: list[FakeClient] = []

    def __init__(self, tracking_uri=None):
        self.tracking_uri = tracking_uri
        self.experiments: dict[str, str] = {}
        self.params: dict[str, str] = {}
        self.metrics: list[Metric] = []
        self.status = None
        FakeClient.instances.append(self)

    def get_experiment_by_name(self, name):
        if name not in self.experiments:
            return None
        return types.SimpleNamespace(experiment_id=self.experiments[name])

    def create_experiment(self, name, artifact_location=None):
        self.experiments[name] = str(len(self.experiments) + 1)
        return self.experiments[name]

    def create_run(self, experiment_id, run_name=None, tags=None):
        self.run_tags = tags
        return types.SimpleNamespace(info=types.SimpleNamespace(run_id="run-1"))

    def log_batch(self, run_id, metrics=(), params=()):
        assert run_id == "run-1"
        self.params.update({p.key: p.value for p in params})
        self.metrics.extend(metrics)

    def set_terminated(self, run_id, status):
        self.status = status


@pytest.fixture
def fake_mlflow(monkeypatch):
    FakeClient.instances.clear()
    root = types.ModuleType("mlflow")
    tracking = types.ModuleType("mlflow.tracking")
    tracking.MlflowClient = FakeClient
    entities = types.ModuleType("mlflow.entities")
    entities.Param, entities.Metric = Param, Metric
    for name, module in (
        ("mlflow", root),
        ("mlflow.tracking", tracking),
        ("mlflow.entities", entities),
    ):
        monkeypatch.setitem(sys.modules, name, module)
    return FakeClient


def test_fit_logs_params_metrics_and_finishes(fake_mlflow, tmp_path):
    logger = MLFlowLogger(experiment_name="exp", run_name="first", tracking_uri=f"file:{tmp_path}")
    model = RegModel(lr=0.05)
    trainer = L.Trainer(max_epochs=2, log_every_n_steps=1, **quiet(logger=logger))
    trainer.fit(model, loader(n=32, batch_size=8), loader(n=16, batch_size=8))
    client = fake_mlflow.instances[0]
    assert client.tracking_uri == f"file:{tmp_path}" and client.experiments == {"exp": "1"}
    assert client.run_tags["mlflow.runName"] == "first"
    assert client.params["lr"] == "0.05"
    names = {m.key for m in client.metrics}
    assert {"train_loss_step", "train_loss_epoch", "val_loss", "epoch"} <= names
    assert (
        max(m.step for m in client.metrics if m.key == "train_loss_step") == trainer.global_step - 1
    )
    assert client.status == "FINISHED"
    assert logger.name == "1" and logger.version == "run-1" and logger.save_dir == str(tmp_path)


def test_invalid_metric_names_are_cleaned_and_strings_dropped(fake_mlflow):
    logger = MLFlowLogger(prefix="p")
    with pytest.warns(UserWarning):
        logger.log_metrics({"acc@1": 0.5, "note": "text"}, step=3)
    assert [(m.key, m.value, m.step) for m in fake_mlflow.instances[0].metrics] == [
        ("p-acc1", 0.5, 3)
    ]


def test_missing_mlflow_names_the_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "mlflow", None)
    monkeypatch.setitem(sys.modules, "mlflow.tracking", None)
    with pytest.raises(ModuleNotFoundError, match="pip install mlflow"):
        _ = MLFlowLogger().experiment


def test_real_mlflow_run_with_checkpoint_artifact(tmp_path, monkeypatch):
    pytest.importorskip("mlflow")
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3 gates the file store
    logger = MLFlowLogger(
        experiment_name="e", tracking_uri=f"file:{tmp_path}/mlruns", log_model=True
    )
    kw = quiet(logger=logger)
    kw["enable_checkpointing"] = True
    trainer = L.Trainer(max_epochs=2, log_every_n_steps=1, default_root_dir=tmp_path, **kw)
    trainer.fit(RegModel(lr=0.05), loader(n=32, batch_size=8), loader(n=16, batch_size=8))
    run = logger.experiment.get_run(logger.run_id)
    assert run.info.status == "FINISHED" and run.data.params["lr"] == "0.05"
    assert run.data.metrics["val_loss"] == pytest.approx(
        float(trainer.callback_metrics["val_loss"])
    )
    best = trainer.checkpoint_callback.best_model_path
    assert f"/{logger.experiment_id}/{logger.run_id}/checkpoints/" in best
    artifacts = [a.path for a in logger.experiment.list_artifacts(logger.run_id, "checkpoints")]
    assert artifacts == [f"checkpoints/{os.path.basename(best)}"]
