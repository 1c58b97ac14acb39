"""``LearningRateMonitor``: log each optimizer's learning rate (and momentum)."""

from __future__ import annotations

from typing import Any

import torch

from runtime.callbacks.base import Callback
from runtime.errors import MisconfigurationException


class LearningRateMonitor(Callback):
    """Logs the learning rate of every optimizer (``lr-<Optimizer>``, or the scheduler dict's
    ``name``), per step or per epoch as its scheduler steps; optionally momentum (``betas[0]``
    for Adam-like optimizers) and weight decay. Needs a logger."""

    def __init__(
        self,
        logging_interval: str | None = None,
        log_momentum: bool = False,
        log_weight_decay: bool = False,
    ) -> None:
        if logging_interval not in (None, "step", "epoch"):
            raise MisconfigurationException(
                f"LearningRateMonitor(logging_interval={logging_interval!r}): allowed are None, "
                "'step', 'epoch'."
            )
        self.logging_interval = logging_interval
        self.log_momentum = log_momentum
        self.log_weight_decay = log_weight_decay
        self.lrs: dict[str, list[float]] = {}
        self.last_momentum_values: dict[str, float] = {}
        self.last_weight_decay_values: dict[str, float] = {}

    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        if not trainer.loggers:
            raise MisconfigurationException(
                "Cannot use `LearningRateMonitor` callback with `Trainer` that has no logger "
                "(`logger=False`): give the "
                "Trainer a logger or remove the callback."
            )
        optimizers = [cfg.scheduler.optimizer for cfg in trainer.lr_scheduler_configs] or list(
            trainer.optimizers
        )
        if self.log_momentum and any(
            "momentum" not in getattr(o, "defaults", {})
            and "betas" not in getattr(o, "defaults", {})
            for o in optimizers
        ):
            import warnings

            warnings.warn(
                "You have set log_momentum=True, but some optimizers do not have momentum. This "
                "will log a value 0 for the momentum.",
                RuntimeWarning,
                stacklevel=2,
            )
        for opt in trainer.optimizers:
            names = [g["name"] for g in opt.param_groups if g.get("name")]
            duplicates = sorted({n for n in names if names.count(n) > 1})
            if duplicates:
                raise MisconfigurationException(
                    "A single `Optimizer` cannot have multiple parameter groups with identical "
                    f"`name` values. {type(opt).__name__} has duplicated parameter group names "
                    f"{duplicates}"
                )

    def on_train_batch_start(
        self, trainer: Any, pl_module: Any, batch: Any, batch_idx: int
    ) -> None:
        if self.logging_interval != "epoch" and trainer._logger_should_update():
            self._log(trainer, interval="step")

    def on_train_epoch_start(self, trainer: Any, pl_module: Any) -> None:
        if self.logging_interval != "step":
            self._log(trainer, interval="epoch")

    def _names(self, trainer: Any) -> list[tuple[str, Any, int]]:
        out = []
        configs = trainer.lr_scheduler_configs
        seen = set()
        for cfg in configs:
            opt = cfg.scheduler.optimizer
            seen.add(id(opt))
            base = cfg.name or f"lr-{type(opt).__name__}"
            out.append((base, opt, cfg.interval))
        for opt in trainer.optimizers:
            if id(opt) not in seen:
                out.append((f"lr-{type(opt).__name__}", opt, "any"))
        counts: dict[str, int] = {}
        named = []
        for base, opt, interval in out:
            n = counts.get(base, 0)
            counts[base] = n + 1
            named.append((base if n == 0 else f"{base}-{n}", opt, interval))
        return named

    @staticmethod
    def _group_key(name: str, groups: list[dict], i: int) -> str:
        """``name`` for a single group; ``name/pgN`` or ``name/<group's "name">`` otherwise."""
        pg_name = groups[i].get("name")
        if len(groups) > 1:
            return f"{name}/{pg_name or f'pg{i + 1}'}"
        return f"{name}/{pg_name}" if pg_name else name

    def _log(self, trainer: Any, interval: str) -> None:
        stats: dict[str, float] = {}
        for name, opt, sched_interval in self._names(trainer):
            if self.logging_interval is None and sched_interval not in (interval, "any"):
                continue
            groups = opt.param_groups
            betas = "betas" in getattr(opt, "defaults", {})
            for i, g in enumerate(groups):
                key = self._group_key(name, groups, i)
                stats[key] = float(g["lr"])
                self.lrs.setdefault(key, []).append(stats[key])
                if self.log_momentum:
                    momentum = float(g["betas"][0] if betas else g.get("momentum", 0))
                    stats[f"{key}-momentum"] = momentum
                    self.last_momentum_values[f"{key}-momentum"] = momentum
                if self.log_weight_decay:
                    wd = float(g.get("weight_decay", 0.0))
                    stats[f"{key}-weight_decay"] = wd
                    self.last_weight_decay_values[f"{key}-weight_decay"] = wd
        if stats:
            # as Lightning 2.6: the values are also callback metrics (a scheduler or a callback
            # can monitor the learning rate)
            device = trainer.strategy.root_device
            trainer._callback_metrics.update(
                {k: torch.tensor(v, device=device) for k, v in stats.items()}
            )
            step = trainer._batches_that_stepped
            for logger in trainer.loggers:
                logger.log_metrics(metrics=stats, step=step)
