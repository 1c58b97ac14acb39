"""``ModelCheckpoint``: save the last / the k best checkpoints while training.

File naming, directory resolution, top-k bookkeeping and checkpoint state follow
Lightning 2.x so the files and the ``callbacks`` entry read the same on both engines.
"""

# no `from __future__ import annotations`: the signature's annotations are real types, which
# jsonargparse/argparse use to parse e.g. `--save_last link` (Lightning's tests do this too)
import math
import os
import re
import shutil
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

import torch

from runtime.callbacks.base import Checkpoint
from runtime.errors import MisconfigurationException
from runtime.rank_zero import rank_zero_info, rank_zero_warn


class ModelCheckpoint(Checkpoint):
    """Saves checkpoints while training: the ``save_top_k`` best by ``monitor`` (or the latest
    without one), ``last.ckpt`` with ``save_last``, every ``every_n_epochs`` /
    ``every_n_train_steps`` / ``train_time_interval``, and on an exception with
    ``save_on_exception``. File names follow ``filename`` (``"{epoch}-{step}"`` by default) as
    Lightning formats them; ``best_model_path``/``best_model_score`` and the top-k bookkeeping are
    saved in the checkpoint, so a resumed run goes on where it stopped."""

    CHECKPOINT_JOIN_CHAR = "-"
    CHECKPOINT_EQUALS_CHAR = "="
    CHECKPOINT_NAME_LAST = "last"
    FILE_EXTENSION = ".ckpt"
    STARTING_VERSION = 1

    def __init__(
        self,
        dirpath: str | os.PathLike | None = None,
        filename: str | None = None,
        monitor: str | None = None,
        verbose: bool = False,
        save_last: bool | Literal["link"] | None = None,
        save_top_k: int = 1,
        save_on_exception: bool = False,
        save_weights_only: bool = False,
        mode: str = "min",
        auto_insert_metric_name: bool = True,
        every_n_train_steps: int | None = None,
        train_time_interval: timedelta | None = None,
        every_n_epochs: int | None = None,
        save_on_train_epoch_end: bool | None = None,
        enable_version_counter: bool = True,
    ) -> None:
        if mode not in ("min", "max"):
            raise MisconfigurationException(
                f"`mode` can be min, max but got {mode} (ModelCheckpoint)."
            )
        if save_top_k < -1:
            raise MisconfigurationException(
                f"Invalid value for save_top_k={save_top_k}. Must be >= -1 (-1: all, 0: none, "
                "k: the k best)."
            )
        if monitor is None and save_top_k not in (-1, 0, 1):
            raise MisconfigurationException(
                f"ModelCheckpoint(save_top_k={save_top_k}, monitor=None) is not a valid "
                "configuration. No quantity for top_k to track: set `monitor=` to a logged metric."
            )
        if save_last not in (None, True, False, "link"):
            raise MisconfigurationException(
                f"ModelCheckpoint(save_last={save_last!r}): allowed are None, True, False, 'link'."
            )
        for name, value in (
            ("every_n_train_steps", every_n_train_steps),
            ("every_n_epochs", every_n_epochs),
        ):
            if value is not None and value < 0:
                raise MisconfigurationException(f"Invalid value for {name}={value}. Must be >= 0")
        if bool(every_n_train_steps) + bool(every_n_epochs) + bool(train_time_interval) > 1:
            raise MisconfigurationException(
                f"Combination of parameters every_n_train_steps={every_n_train_steps}, "
                f"every_n_epochs={every_n_epochs} and train_time_interval={train_time_interval} "
                "should be mutually exclusive: set only one."
            )
        if dirpath and _is_local(os.fspath(dirpath)):
            dirpath = os.path.realpath(os.path.expanduser(dirpath))
        self.dirpath = os.fspath(dirpath) if dirpath else None
        self.filename = filename
        self.monitor = monitor
        self.verbose = verbose
        self.save_last = save_last
        self.save_top_k = save_top_k
        self.save_on_exception = save_on_exception
        self.save_weights_only = save_weights_only
        self.mode = mode
        self.auto_insert_metric_name = auto_insert_metric_name
        self._every_n_train_steps = every_n_train_steps or 0
        self._train_time_interval = train_time_interval
        self._every_n_epochs = (
            every_n_epochs if every_n_epochs is not None else (0 if every_n_train_steps else 1)
        )
        self._save_on_train_epoch_end = save_on_train_epoch_end
        self._enable_version_counter = enable_version_counter
        self.best_k_models: dict[str, torch.Tensor] = {}
        self.kth_best_model_path = ""
        self.best_model_score: torch.Tensor | None = None
        self.best_model_path = ""
        self.last_model_path = ""
        self.current_score: torch.Tensor | None = None
        self.kth_value = torch.tensor(math.inf if mode == "min" else -math.inf)
        self._last_global_step_saved = 0
        self._last_checkpoint_saved = ""  # the file the latest save wrote (a link points at it)

    @property
    def state_key(self) -> str:
        return self._generate_state_key(
            monitor=self.monitor,
            mode=self.mode,
            every_n_train_steps=self._every_n_train_steps,
            every_n_epochs=self._every_n_epochs,
            train_time_interval=self._train_time_interval,
        )

    @property
    def every_n_epochs(self) -> int:
        return self._every_n_epochs

    # ------------------------------------------------------------------ hooks
    def setup(self, trainer: Any, pl_module: Any, stage: str) -> None:
        self.dirpath = trainer.strategy.broadcast(self._resolve_dir(trainer))
        if (
            stage == "fit"
            and trainer.is_global_zero
            and os.path.isdir(self.dirpath)
            and os.listdir(self.dirpath)
            and not trainer._resuming_from(self.dirpath)
        ):
            rank_zero_warn(f"Checkpoint directory {self.dirpath} exists and is not empty.")
        if self.save_last == "link" and not _is_local(self.dirpath):
            raise ValueError(
                "`ModelCheckpoint(save_last='link')` is only supported for local file paths, got "
                f"`dirpath={self.dirpath}`."
            )

    def on_train_batch_end(
        self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        n = self._every_n_train_steps
        if n and not self._skip(trainer) and trainer.global_step % n == 0:
            self._save_due(trainer, on_batch=True)

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        if self._should_save_on_train_epoch_end(trainer) and self._epoch_due(trainer):
            self._save_due(trainer)

    def on_validation_end(self, trainer: Any, pl_module: Any) -> None:
        if not self._should_save_on_train_epoch_end(trainer) and self._epoch_due(trainer):
            self._save_due(trainer)

    def on_train_end(self, trainer: Any, pl_module: Any) -> None:
        if self.save_last and not self.last_model_path and not self._skip(trainer):
            self._save_last_checkpoint(trainer, self._metrics(trainer))

    def on_exception(self, trainer: Any, pl_module: Any, exception: BaseException) -> None:
        """``save_on_exception=True``: the state at the exception, under this callback's own
        ``filename`` pattern (plus ``last`` with ``save_last``), unless this step is saved."""
        if (
            not self.save_on_exception
            or not self.dirpath
            or trainer.fast_dev_run
            or trainer.sanity_checking
            or self._last_global_step_saved == trainer.global_step
        ):
            return
        metrics = self._metrics(trainer)
        path = self.format_checkpoint_name(metrics)
        self._write(trainer, path)
        self._save_last_checkpoint(trainer, metrics)
        self._last_global_step_saved = trainer.global_step
        rank_zero_info(
            f"An {type(exception).__name__} was raised with message: {exception}, saved "
            f"checkpoint to {path}"
        )

    def state_dict(self) -> dict[str, Any]:
        return {
            "monitor": self.monitor,
            "best_model_score": self.best_model_score,
            "best_model_path": self.best_model_path,
            "current_score": self.current_score,
            "dirpath": self.dirpath,
            "best_k_models": dict(self.best_k_models),
            "kth_best_model_path": self.kth_best_model_path,
            "kth_value": self.kth_value,
            "last_model_path": self.last_model_path,
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        dirpath = state_dict.get("dirpath", self.dirpath)
        if dirpath == self.dirpath:
            self.best_model_score = state_dict["best_model_score"]
            self.kth_best_model_path = state_dict.get("kth_best_model_path", "")
            self.kth_value = state_dict.get("kth_value", self.kth_value)
            self.best_k_models = dict(state_dict.get("best_k_models", {}))
            self.last_model_path = state_dict.get("last_model_path", "")
        else:
            rank_zero_warn(
                f"The dirpath has changed from {dirpath!r} to {self.dirpath!r}, therefore "
                "`best_model_score`, `kth_best_model_path`, `kth_value`, `last_model_path` and "
                "`best_k_models` won't be reloaded. Only `best_model_path` will be reloaded."
            )
        self.best_model_path = state_dict["best_model_path"]

    # ------------------------------------------------------------------ decisions
    def _skip(self, trainer: Any) -> bool:
        return (
            trainer.sanity_checking
            or trainer.fast_dev_run
            or trainer.state.fn != "fit"
            or self._last_global_step_saved == trainer.global_step
        )

    def _epoch_due(self, trainer: Any) -> bool:
        n = self._every_n_epochs
        return not self._skip(trainer) and n >= 1 and (trainer.current_epoch + 1) % n == 0

    def _should_save_on_train_epoch_end(self, trainer: Any) -> bool:
        if self._save_on_train_epoch_end is not None:
            return self._save_on_train_epoch_end
        if trainer._val_check_time_interval is not None:
            return False  # time-based validation: save when validation runs
        if trainer.check_val_every_n_epoch != 1:
            return False
        if not trainer._has_val_batches():
            return True
        return trainer.val_check_interval == 1.0

    def _metrics(self, trainer: Any) -> dict[str, Any]:
        metrics = dict(trainer.callback_metrics)
        metrics["epoch"] = torch.tensor(trainer.current_epoch)
        metrics["step"] = torch.tensor(trainer.global_step)
        return metrics

    def _save_due(self, trainer: Any, on_batch: bool = False) -> None:
        metrics = self._metrics(trainer)
        if self.monitor is not None and self.monitor not in metrics:
            available = sorted(k for k in trainer.callback_metrics)
            if on_batch and not trainer._validation_ran:
                rank_zero_warn(
                    f"ModelCheckpoint(monitor={self.monitor!r}) could not find the monitored key "
                    f"yet; available keys: {available}. Skipping this save."
                )
                return
            raise MisconfigurationException(
                f"ModelCheckpoint(monitor={self.monitor!r}) could not find the monitored key in the "
                f"returned metrics: {available}. HINT: Did you call `log({self.monitor!r}, value)` "
                "in the `LightningModule`?"
            )
        self._save_topk_checkpoint(trainer, metrics)
        self._save_last_checkpoint(trainer, metrics)
        self._last_global_step_saved = trainer.global_step

    def _save_topk_checkpoint(self, trainer: Any, metrics: dict[str, Any]) -> None:
        """The top-k save (nothing with ``save_top_k=0``): the latest file without a monitor,
        else the file if ``metrics[monitor]`` is among the k best."""
        if self.save_top_k == 0:
            return
        if self.monitor is None:
            self._save_none_monitor_checkpoint(trainer, metrics)
        else:
            self._save_monitor_checkpoint(trainer, metrics)

    def _save_none_monitor_checkpoint(self, trainer: Any, metrics: dict[str, Any]) -> None:
        path = self._unique_path(self.format_checkpoint_name(metrics), trainer)
        # set before the save, as Lightning: the file's own callback state names it as the best
        previous, self.best_model_path = self.best_model_path, path
        self.best_k_models = {}
        self._write(trainer, path)
        if self.save_top_k == 1 and previous and previous != path:
            self._remove(trainer, previous)

    def _save_monitor_checkpoint(self, trainer: Any, metrics: dict[str, Any]) -> None:
        current = torch.as_tensor(metrics[self.monitor]).detach().cpu().squeeze()
        if torch.isnan(current):
            current = torch.tensor(math.inf if self.mode == "min" else -math.inf)
        self.current_score = current
        better = torch.lt if self.mode == "min" else torch.gt
        k = len(self.best_k_models)
        full = self.save_top_k != -1 and k >= self.save_top_k
        # all ranks must agree (unsynced metrics differ per rank): a save is collective
        if full and not trainer.strategy.reduce_boolean_decision(
            bool(better(current, self.kth_value))
        ):
            if self.verbose:
                rank_zero_info(
                    f"Epoch {trainer.current_epoch}, global step {trainer.global_step}: "
                    f"{self.monitor!r} was not in top {self.save_top_k}"
                )
            return
        path = self._unique_path(self.format_checkpoint_name(metrics), trainer)
        del_path = None
        if self.save_top_k != -1 and k >= self.save_top_k:
            del_path = self.kth_best_model_path
            self.best_k_models.pop(del_path, None)
        self.best_k_models[path] = current
        pick = max if self.mode == "min" else min
        if self.save_top_k == -1 or len(self.best_k_models) >= self.save_top_k:
            self.kth_best_model_path = pick(
                self.best_k_models, key=lambda p: float(self.best_k_models[p])
            )
            self.kth_value = self.best_k_models[self.kth_best_model_path]
        best = min if self.mode == "min" else max
        self.best_model_path = best(self.best_k_models, key=lambda p: float(self.best_k_models[p]))
        self.best_model_score = self.best_k_models[self.best_model_path]
        if self.verbose:
            rank_zero_info(
                f"Epoch {trainer.current_epoch}, global step {trainer.global_step}: "
                f"{self.monitor!r} reached {float(current):.5f} (best "
                f"{float(self.best_model_score):.5f}), saving model to {path!r} as top "
                f"{self.save_top_k}"
            )
        self._write(trainer, path)
        if del_path and del_path != path:
            self._remove(trainer, del_path)

    def _save_last_checkpoint(self, trainer: Any, metrics: dict[str, Any]) -> None:
        """``last.ckpt`` (``CHECKPOINT_NAME_LAST`` formatted with ``metrics``); with
        ``save_last="link"`` a relative symlink to the file the latest save wrote."""
        if not self.save_last:
            return
        name = self.format_checkpoint_name(metrics, self.CHECKPOINT_NAME_LAST)
        if self._enable_version_counter:
            # another run's `last` file is never overwritten (Lightning): the next free version
            version = self.STARTING_VERSION
            resumed = trainer._resumed_ckpt_path
            while (
                os.path.exists(name)
                and name != self.last_model_path
                and not (resumed and os.path.realpath(name) == resumed)
            ):
                name = self.format_checkpoint_name(metrics, self.CHECKPOINT_NAME_LAST, ver=version)
                version += 1
        # set before the save, as Lightning: the file's own callback state names it
        previous, self.last_model_path = self.last_model_path, name
        target = self._last_checkpoint_saved
        if self.save_last == "link" and target and self.save_top_k != 0:
            self._link_checkpoint(trainer, target, name)
        else:
            self._write(trainer, name)
        if previous and previous != name:
            self._remove(trainer, previous)

    @staticmethod
    def _link_checkpoint(trainer: Any, filepath: str, linkpath: str) -> None:
        """Makes ``linkpath`` a relative symlink to ``filepath`` (replacing a file, link or
        folder there); a copy where symlinks cannot be made. Rank 0 only, then a barrier."""
        if trainer.is_global_zero and os.path.abspath(filepath) != os.path.abspath(linkpath):
            if os.path.islink(linkpath) or os.path.isfile(linkpath):
                os.remove(linkpath)
            elif os.path.isdir(linkpath):
                shutil.rmtree(linkpath)
            try:
                os.symlink(os.path.relpath(filepath, os.path.dirname(linkpath)), linkpath)
            except OSError:  # e.g. Windows without the privilege: a copy
                if os.path.isdir(filepath):
                    shutil.copytree(filepath, linkpath)
                else:
                    shutil.copy(filepath, linkpath)
        trainer.strategy.barrier()

    # ------------------------------------------------------------------ names and files
    def _find_last_checkpoints(self, trainer: Any) -> set[str]:
        """The ``last`` checkpoints in this callback's folder: files with its extension whose
        name starts with ``CHECKPOINT_NAME_LAST`` (``last.ckpt``, ``last-v1.ckpt``), never a
        per-epoch, exception or partial file (as Lightning)."""
        folder = self.dirpath or self._resolve_dir(trainer)
        if not folder or not os.path.isdir(folder):
            return set()
        pattern = re.compile(rf"^{re.escape(self.CHECKPOINT_NAME_LAST)}(-(\d+))?")
        return {
            os.path.normpath(os.path.join(folder, f))
            for f in os.listdir(folder)
            if Path(f).suffix == self.FILE_EXTENSION and pattern.match(Path(f).stem)
        }

    def format_checkpoint_name(
        self,
        metrics: dict[str, Any],
        filename: str | None = None,
        ver: int | None = None,
        prefix: str | None = None,
    ) -> str:
        """The checkpoint's path for ``metrics``: ``dirpath/[prefix-]<filename>[-v<ver>].ckpt``."""
        name = self._format_checkpoint_name(filename or self.filename, metrics, prefix=prefix)
        if ver is not None:
            name = self.CHECKPOINT_JOIN_CHAR.join([name, f"v{ver}"])
        return os.path.join(self.dirpath or "", name + self.FILE_EXTENSION)

    def _format_checkpoint_name(
        self,
        filename: str | None,
        metrics: dict[str, Any],
        prefix: str | None = None,
        auto_insert_metric_name: bool | None = None,
    ) -> str:
        """The file name (no folder, no extension) for ``filename`` filled with ``metrics``:
        ``"{epoch}-{val_loss:.2f}"`` gives ``epoch=3-val_loss=0.12`` (Lightning's format)."""
        template = filename or f"{{epoch}}{self.CHECKPOINT_JOIN_CHAR}{{step}}"
        insert = (
            self.auto_insert_metric_name
            if auto_insert_metric_name is None
            else auto_insert_metric_name
        )
        name = self._format(template, metrics, insert)
        return self.CHECKPOINT_JOIN_CHAR.join([prefix, name]) if prefix else name

    def _format(self, template: str, metrics: dict[str, Any], insert_names: bool = True) -> str:
        """``template`` filled with ``metrics``; a metric name may hold ``/``, ``.`` or ``@``
        (``{val/mAP@0.50:.4f}``): each field is renamed to a plain placeholder before
        ``str.format`` (which would read a dot as attribute access)."""
        values: dict[str, Any] = {}
        for i, group in enumerate(re.findall(r"(\{.*?)[:\}]", template)):
            key, slot = group[1:], f"_m{i}"
            label = key + self.CHECKPOINT_EQUALS_CHAR if insert_names else ""
            template = template.replace(group, label + "{" + slot, 1)
            value = metrics.get(key, 0)
            if isinstance(value, torch.Tensor) and value.numel() == 1:
                value = value.item()
            values[slot] = value
        return template.format(**values)

    def _unique_path(self, path: str, trainer: Any) -> str:
        if not self._enable_version_counter:
            return path
        stem, ext = os.path.splitext(path)
        version = self.STARTING_VERSION
        candidate = path
        while os.path.exists(candidate) and candidate not in (self.best_model_path,):
            if (
                trainer._resumed_ckpt_path
                and os.path.realpath(candidate) == trainer._resumed_ckpt_path
            ):
                break
            candidate = f"{stem}{self.CHECKPOINT_JOIN_CHAR}v{version}{ext}"
            version += 1
        return candidate

    def _write(self, trainer: Any, path: str) -> None:
        trainer.save_checkpoint(path, self.save_weights_only)
        self._last_checkpoint_saved = path

    def _remove(self, trainer: Any, path: str) -> None:
        if not trainer.is_global_zero or not path:
            return
        if trainer._resumed_ckpt_path and os.path.realpath(path) == trainer._resumed_ckpt_path:
            return
        if self.dirpath and not os.path.realpath(path).startswith(os.path.realpath(self.dirpath)):
            return
        if os.path.lexists(path):
            os.remove(path)

    def _resolve_dir(self, trainer: Any) -> str:
        if self.dirpath:
            return self.dirpath
        loggers = trainer.loggers
        if loggers:
            first = loggers[0]
            save_dir = first.save_dir or trainer.default_root_dir
            version = (
                first.version if isinstance(first.version, str) else f"version_{first.version}"
            )
            parts = [save_dir, str(first.name), version] if first.name else [save_dir, version]
            path = os.path.join(*parts, "checkpoints")
        else:
            path = os.path.join(trainer.default_root_dir, "checkpoints")
        return os.path.realpath(path)

    def to_yaml(self, filepath: str | os.PathLike | None = None) -> None:
        import yaml

        best = {k: float(v) for k, v in self.best_k_models.items()}
        path = filepath or os.path.join(self.dirpath or ".", "best_k_models.yaml")
        Path(path).write_text(yaml.safe_dump(best))


def _is_local(path: str | None) -> bool:
    """Whether ``path`` is on the local file system (no ``scheme://`` other than ``file://``)."""
    return not path or "://" not in path or path.startswith("file://")
