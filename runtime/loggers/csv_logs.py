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


class CSVLogger(FolderLogger):
    """Writes logged metrics to ``<save_dir>/<name>/version_<n>/metrics.csv`` (one row per
    step, columns added as new keys appear) and hyper-parameters to ``hparams.yaml``."""

    NAME_METRICS_FILE = "metrics.csv"
    NAME_HPARAMS_FILE = "hparams.yaml"

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
        self._rows: list[dict[str, Any]] = []
        self._keys: list[str] = []
        self._hparams: dict[str, Any] = {}
        self._started = False

    @property
    def experiment(self) -> CSVLogger:
        """The logger itself (its ``metrics`` buffer and ``metrics_file_path``); reading it on
        rank 0 prepares the run's folder, as Lightning's experiment writer does."""
        if rank_zero_only.rank == 0:  # type: ignore[attr-defined]
            self._start()
        return self

    @property
    def metrics(self) -> list[dict[str, Any]]:
        """Rows logged and not written yet."""
        return self._rows

    @property
    def metrics_file_path(self) -> str:
        return os.path.join(self.log_dir, self.NAME_METRICS_FILE)

    def _start(self) -> None:
        if self._started:
            return
        self._started = True
        path = os.path.join(self.log_dir, self.NAME_METRICS_FILE)
        if os.path.isfile(path):
            # only an earlier run's metrics are replaced: a config.yaml the CLI saved into this
            # run's folder, or its checkpoints, are not "previous log files"
            rank_zero_warn(
                f"Experiment logs directory {self.log_dir} exists and is not empty. Previous log "
                f"files in this directory will be deleted when the new ones are saved! (It holds "
                f"{self.NAME_METRICS_FILE} from an earlier run, which this run's replaces.)"
            )
            os.remove(path)
        os.makedirs(self.log_dir, exist_ok=True)

    @rank_zero_only
    def log_hyperparams(self, params: Any = None, *args: Any, **kwargs: Any) -> None:
        self._hparams.update(_as_dict(params))
        self._start()
        import yaml

        from runtime.hparams import to_safe

        safe = {}
        for k, v in self._hparams.items():
            ok, conv = to_safe(v)
            safe[k] = (conv.tolist() if isinstance(conv, torch.Tensor) else conv) if ok else str(v)
        with open(os.path.join(self.log_dir, self.NAME_HPARAMS_FILE), "w") as f:
            yaml.safe_dump(safe, f) if safe else f.write("{}\n")

    @rank_zero_only
    def log_metrics(self, metrics: dict[str, Any], step: int | None = None) -> None:
        row = {
            f"{self._prefix}-{k}" if self._prefix else k: (
                v.item() if isinstance(v, torch.Tensor) else v
            )
            for k, v in metrics.items()
        }
        row["step"] = len(self._rows) if step is None else step
        self._rows.append(row)
        if self._flush_every and (row["step"] + 1) % self._flush_every == 0:
            self.save()  # as Lightning: written every flush_logs_every_n_steps steps

    @rank_zero_only
    def save(self) -> None:
        if not self._rows:
            return
        self._start()
        path = os.path.join(self.log_dir, self.NAME_METRICS_FILE)
        new = set().union(*self._rows) - set(self._keys)
        exists = os.path.isfile(path)
        if new:
            self._keys = sorted(set(self._keys) | new)
            if exists:
                with open(path, newline="") as f:
                    old = list(csv.DictReader(f))
                with open(path, "w", newline="") as f:
                    w = csv.DictWriter(f, fieldnames=self._keys)
                    w.writeheader()
                    w.writerows(old)
        with open(path, "a" if exists else "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=self._keys)
            if not exists:
                w.writeheader()
            w.writerows(self._rows)
        self._rows = []

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
