"""``TensorBoardLogger`` on ``torch.utils.tensorboard`` (needs the ``tensorboard`` package)."""

from __future__ import annotations

import os
from typing import Any

import torch

from runtime.loggers.base import FolderLogger, flatten_params
from runtime.rank_zero import rank_zero_only


def tensorboard_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("tensorboard") is not None


class TensorBoardLogger(FolderLogger):
    """Writes TensorBoard event files (scalars and hyper-parameters) to
    ``<save_dir>/<name>/version_<n>`` through ``torch.utils.tensorboard``."""

    NAME_HPARAMS_FILE = "hparams.yaml"

    def __init__(
        self,
        save_dir: str | os.PathLike,
        name: str | None = "lightning_logs",
        version: int | str | None = None,
        log_graph: bool = False,
        default_hp_metric: bool = True,
        prefix: str = "",
        sub_dir: str | None = None,
        **kwargs: Any,
    ) -> None:
        if not tensorboard_available():
            raise ModuleNotFoundError(
                "TensorBoardLogger needs the `tensorboard` package: `pip install tensorboard`, or "
                "use `CSVLogger` instead."
            )
        self._save_dir = os.fspath(save_dir)
        self._name = name or ""
        self._version = version
        self._log_graph = log_graph
        self._default_hp_metric = default_hp_metric
        self._prefix = prefix
        self._sub_dir = sub_dir
        self._kwargs = kwargs
        self._writer: Any = None
        self._hparams: dict[str, Any] = {}

    @property
    def log_dir(self) -> str:
        path = super().log_dir
        return os.path.join(path, self._sub_dir) if self._sub_dir else path

    @property
    @rank_zero_only
    def experiment(self) -> Any:
        if self._writer is None:
            from torch.utils.tensorboard import SummaryWriter

            os.makedirs(self.log_dir, exist_ok=True)
            self._writer = SummaryWriter(log_dir=self.log_dir, **self._kwargs)
        return self._writer

    @rank_zero_only
    def log_metrics(self, metrics: dict[str, Any], step: int | None = None) -> None:
        writer = self.experiment
        for k, v in metrics.items():
            if isinstance(v, torch.Tensor):
                v = v.item()
            key = f"{self._prefix}-{k}" if self._prefix else k
            if isinstance(v, dict):
                writer.add_scalars(key, v, step)
            else:
                writer.add_scalar(key, v, step)

    @rank_zero_only
    def log_hyperparams(
        self,
        params: Any = None,
        metrics: Any = None,
        step: int | None = None,
        *args: Any,
        **kwargs: Any,
    ) -> None:
        import yaml

        from runtime.hparams import to_safe

        self._hparams.update(flatten_params(params) if params is not None else {})
        safe = {}
        for k, v in self._hparams.items():
            ok, conv = to_safe(v)
            safe[k] = (conv.tolist() if isinstance(conv, torch.Tensor) else conv) if ok else str(v)
        os.makedirs(self.log_dir, exist_ok=True)
        with open(os.path.join(self.log_dir, self.NAME_HPARAMS_FILE), "w") as f:
            yaml.safe_dump(safe, f)
        if not safe:
            return
        from torch.utils.tensorboard.summary import hparams

        hp = {k: (v if isinstance(v, (int, float, str, bool)) else str(v)) for k, v in safe.items()}
        if metrics is not None and not isinstance(metrics, dict):
            metrics = {"hp_metric": metrics}
        metric = metrics or ({"hp_metric": -1} if self._default_hp_metric else {})
        if metric:
            # through log_metrics, as Lightning (a subclass or a mock sees the hp_metric call)
            self.log_metrics(metric, step)
        exp, ssi, sei = hparams(hp, metric)
        writer = self.experiment
        writer.file_writer.add_summary(exp)
        writer.file_writer.add_summary(ssi)
        writer.file_writer.add_summary(sei)

    @rank_zero_only
    def log_graph(self, model: Any, input_array: Any = None) -> None:
        if not self._log_graph:
            return
        sample = (
            input_array if input_array is not None else getattr(model, "example_input_array", None)
        )
        if sample is not None:
            self.experiment.add_graph(model, sample)

    @rank_zero_only
    def save(self) -> None:
        if self._writer is not None:
            self._writer.flush()

    @rank_zero_only
    def finalize(self, status: str) -> None:
        if self._writer is not None:
            self._writer.flush()
            self._writer.close()
            self._writer = None
