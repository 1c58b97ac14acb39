"""``CSVLogger``: ``metrics.csv`` and ``hparams.yaml`` in ``save_dir/name/version_N``.

Columns are the sorted union of every key logged so far (``epoch``, ``step`` and the
metric names), as Lightning writes them; a new key rewrites the header once.
"""

from __future__ import annotations

import csv
import os
from typing import Any

import torch

from runtime.loggers.base import FolderLogger
from runtime.rank_zero import rank_zero_only, rank_zero_warn


class ExperimentWriter:
    """The files of one CSV run in ``log_dir``: metric rows buffered and written to
    ``metrics.csv`` on ``save`` (columns are the sorted union of the keys seen; a new key
    rewrites the header once), hyper-parameters to ``hparams.yaml``. ``CSVLogger.experiment``."""

    NAME_METRICS_FILE = "metrics.csv"
    NAME_HPARAMS_FILE = "hparams.yaml"

    def __init__(self, log_dir: str) -> None:
        self.log_dir = log_dir
        self.metrics: list[dict[str, Any]] = []  # rows logged and not written yet
        self.metrics_keys: list[str] = []
        self.hparams: dict[str, Any] = {}
        if os.path.isfile(self.metrics_file_path):
            # only an earlier run's metrics are replaced: a config.yaml the CLI saved into
            # this run's folder, or its checkpoints, are not "previous log files"
            rank_zero_warn(
                f"Experiment logs directory {log_dir} exists and is not empty. Previous log "
                f"files in this directory will be deleted when the new ones are saved! (It holds "
                f"{self.NAME_METRICS_FILE} from an earlier run, which this run's replaces.)"
            )
            os.remove(self.metrics_file_path)
        os.makedirs(log_dir, exist_ok=True)

    @property
    def metrics_file_path(self) -> str:
        return os.path.join(self.log_dir, self.NAME_METRICS_FILE)

    def log_hparams(self, params: dict[str, Any]) -> None:
        """Record ``params`` (merged with earlier ones) and rewrite ``hparams.yaml``."""
        import yaml

        from runtime.hparams import to_safe

        self.hparams.update(params)
        safe = {}
        for k, v in self.hparams.items():
            ok, conv = to_safe(v)
            safe[k] = (conv.tolist() if isinstance(conv, torch.Tensor) else conv) if ok else str(v)
        with open(os.path.join(self.log_dir, self.NAME_HPARAMS_FILE), "w") as f:
            yaml.safe_dump(safe, f) if safe else f.write("{}\n")

    def log_metrics(self, metrics: dict[str, Any], step: int | None = None) -> None:
        """Buffer one row (tensors as Python numbers); ``step`` defaults to the row count."""
        row = {k: (v.item() if isinstance(v, torch.Tensor) else v) for k, v in metrics.items()}
        row["step"] = len(self.metrics) if step is None else step
        self.metrics.append(row)

    def save(self) -> None:
        """Append the buffered rows to ``metrics.csv`` (a new column rewrites the file once)."""
        if not self.metrics:
            return
        path = self.metrics_file_path
        new = set().union(*self.metrics) - set(self.metrics_keys)
        exists = os.path.isfile(path)
        if new:
            self.metrics_keys = sorted(set(self.metrics_keys) | new)
            if exists:
                with open(path, newline="") as f:
                    old = list(csv.DictReader(f))
                with open(path, "w", newline="") as f:
                    w = csv.DictWriter(f, fieldnames=self.metrics_keys)
                    w.writeheader()
                    w.writerows(old)
        with open(path, "a" if exists else "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=self.metrics_keys)
            if not exists:
                w.writeheader()
            w.writerows(self.metrics)
        self.metrics = []


class CSVLogger(FolderLogger):
    """Writes logged metrics to ``<save_dir>/<name>/version_<n>/metrics.csv`` (one row per
    step, columns added as new keys appear) and hyper-parameters to ``hparams.yaml``, through
    its ``experiment`` (an :class:`ExperimentWriter`)."""

    NAME_METRICS_FILE = ExperimentWriter.NAME_METRICS_FILE
    NAME_HPARAMS_FILE = ExperimentWriter.NAME_HPARAMS_FILE

    def __init__(
        self,
        save_dir: str | os.PathLike,
        name: str | None = "lightning_logs",
        version: int | str | None = None,
        prefix: str = "",
        flush_logs_every_n_steps: int = 100,
    ) -> None:
        self._save_dir = os.fspath(save_dir)
        self._name = name or ""
        self._version = version
        self._prefix = prefix
        self._flush_every = flush_logs_every_n_steps
        self._experiment: ExperimentWriter | None = None

    @property
    def experiment(self) -> Any:
        """The run's writer; made (and the run's folder prepared) on first use on rank 0, as
        Lightning's; other ranks get an experiment that does nothing."""
        if rank_zero_only.rank != 0:  # type: ignore[attr-defined]
            from runtime.loggers.base import _NullExperiment

            return _NullExperiment()
        if self._experiment is None:
            self._experiment = ExperimentWriter(self.log_dir)
        return self._experiment

    @property
    def metrics(self) -> list[dict[str, Any]]:
        """Rows logged and not written yet."""
        return self.experiment.metrics if self._experiment is not None else []

    @property
    def metrics_file_path(self) -> str:
        return os.path.join(self.log_dir, self.NAME_METRICS_FILE)

    @rank_zero_only
    def log_hyperparams(self, params: Any = None, *args: Any, **kwargs: Any) -> None:
        self.experiment.log_hparams(_as_dict(params))

    @rank_zero_only
    def log_metrics(self, metrics: dict[str, Any], step: int | None = None) -> None:
        if self._prefix:
            metrics = {f"{self._prefix}-{k}": v for k, v in metrics.items()}
        self.experiment.log_metrics(metrics, step)
        step = self.experiment.metrics[-1]["step"]
        if self._flush_every and (step + 1) % self._flush_every == 0:
            self.save()  # as Lightning: written every flush_logs_every_n_steps steps

    @rank_zero_only
    def save(self) -> None:
        if self._experiment is not None:
            self._experiment.save()

    @rank_zero_only
    def finalize(self, status: str) -> None:
        self.save()


def _as_dict(params: Any) -> dict[str, Any]:
    from argparse import Namespace

    if params is None:
        return {}
    if isinstance(params, Namespace):
        return vars(params)
    return dict(params)
