"""``MLFlowLogger``: metrics, hyperparameters and (optionally) checkpoints in an MLflow run.

Lightning's constructor and properties (``experiment`` is an ``MlflowClient``, ``name`` the
experiment id, ``version`` the run id); mlflow is imported only when the run is first used.
"""

from __future__ import annotations

import os
import re
import time
from typing import Any

from runtime.loggers.base import Logger, flatten_params
from runtime.rank_zero import rank_zero_only, rank_zero_warn

_INVALID_KEY = re.compile(r"[^a-zA-Z0-9_/. -]+")
_FILE_SCHEME = "file:"


class MLFlowLogger(Logger):
    """Logs metrics, hyper-parameters and (optionally) checkpoints to an MLflow tracking server
    or a local ``mlruns`` folder (needs ``mlflow-skinny``)."""

    def __init__(
        self,
        experiment_name: str = "lightning_logs",
        run_name: str | None = None,
        tracking_uri: str | None = None,
        tags: dict[str, Any] | None = None,
        save_dir: str | None = "./mlruns",
        log_model: bool | str = False,
        prefix: str = "",
        artifact_location: str | None = None,
        run_id: str | None = None,
    ) -> None:
        if tracking_uri is None:
            # Read when the logger is made (Lightning reads it at import time).
            tracking_uri = os.getenv("MLFLOW_TRACKING_URI") or (
                f"{_FILE_SCHEME}{save_dir}" if save_dir else None
            )
        self._experiment_name = experiment_name
        self._run_name = run_name
        self._tracking_uri = tracking_uri
        self._tags = dict(tags or {})
        self._log_model = log_model
        self._prefix = prefix
        self._artifact_location = artifact_location
        self._run_id = run_id
        self._experiment_id: str | None = None
        self._client: Any = None
        self._logged_checkpoints: set[str] = set()
        self._checkpoint_callback: Any = None

    # ------------------------------------------------------------------ the run
    @property
    @rank_zero_only
    def experiment(self) -> Any:
        """The ``MlflowClient``; creates the experiment and the run on first use."""
        if self._client is not None:
            return self._client
        try:
            from mlflow.tracking import MlflowClient
        except ImportError:
            raise ModuleNotFoundError(
                "MLFlowLogger needs mlflow: `pip install mlflow-skinny` (or mlflow)."
            ) from None
        client = MlflowClient(self._tracking_uri)
        if self._run_id is not None:
            self._experiment_id = client.get_run(self._run_id).info.experiment_id
        else:
            found = client.get_experiment_by_name(self._experiment_name)
            if found is None:
                self._experiment_id = client.create_experiment(
                    self._experiment_name, artifact_location=self._artifact_location
                )
            else:
                self._experiment_id = found.experiment_id
            tags = {str(k): str(v) for k, v in self._tags.items()}
            if self._run_name is not None:
                tags.setdefault("mlflow.runName", self._run_name)
            run = client.create_run(self._experiment_id, run_name=self._run_name, tags=tags)
            self._run_id = run.info.run_id
        self._client = client
        return client

    @property
    def run_id(self) -> str | None:
        _ = self.experiment
        return self._run_id

    @property
    def experiment_id(self) -> str | None:
        _ = self.experiment
        return self._experiment_id

    @property
    def name(self) -> str | None:
        return self.experiment_id

    @property
    def version(self) -> str | None:
        return self.run_id

    @property
    def save_dir(self) -> str | None:
        uri = self._tracking_uri or ""
        return uri[len(_FILE_SCHEME) :] if uri.startswith(_FILE_SCHEME) else None

    # ------------------------------------------------------------------ logging
    @rank_zero_only
    def log_hyperparams(self, params: Any, *args: Any, **kwargs: Any) -> None:
        from mlflow.entities import Param

        flat = flatten_params(params)
        # MLflow caps a param value at 6000 characters and a batch at 100 params.
        items = [Param(k, str(v)[:6000]) for k, v in flat.items()]
        for start in range(0, len(items), 100):
            self.experiment.log_batch(self.run_id, params=items[start : start + 100])

    @rank_zero_only
    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        batch = []
        for key, value in metrics.items():
            if isinstance(value, str):
                rank_zero_warn(f"MLFlowLogger: discarding metric {key!r} with a string value")
                continue
            clean = _INVALID_KEY.sub("", key)
            if clean != key:
                rank_zero_warn(f"MLFlowLogger: metric {key!r} renamed to {clean!r} for MLflow")
            name = f"{self._prefix}-{clean}" if self._prefix else clean
            batch.append(Metric(name, float(value), now, step or 0))
        if batch:
            self.experiment.log_batch(self.run_id, metrics=batch)

    def after_save_checkpoint(self, checkpoint_callback: Any) -> None:
        # As Lightning: log_model="all" uploads every checkpoint when it is written; True
        # uploads the checkpoints that exist when training ends.
        self._checkpoint_callback = checkpoint_callback
        if self._log_model == "all":
            self._log_checkpoints(checkpoint_callback)

    def _log_checkpoints(self, checkpoint_callback: Any) -> None:
        paths = [getattr(checkpoint_callback, "best_model_path", "") or ""]
        paths.append(getattr(checkpoint_callback, "last_model_path", "") or "")
        paths += list(getattr(checkpoint_callback, "best_k_models", {}) or {})
        for path in paths:
            if path and os.path.isfile(path) and path not in self._logged_checkpoints:
                self.experiment.log_artifact(self.run_id, path, artifact_path="checkpoints")
                self._logged_checkpoints.add(path)

    @rank_zero_only
    def finalize(self, status: str = "success") -> None:
        if self._client is None:
            return
        if self._log_model is True and self._checkpoint_callback is not None:
            self._log_checkpoints(self._checkpoint_callback)
        mapped = {"success": "FINISHED", "failed": "FAILED", "finished": "FINISHED"}
        self._client.set_terminated(self._run_id, mapped.get(status, "FINISHED"))
