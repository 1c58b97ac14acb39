"""``LearningRateMonitor``: log each optimizer's learning rate (and momentum)."""

from __future__ import annotations

from typing import Any

from runtime.callbacks.base import Callback
from runtime.errors import MisconfigurationException


class LearningRateMonitor(Callback):
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

    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        if not trainer.loggers:
            raise MisconfigurationException(
                "Cannot use `LearningRateMonitor` callback with `Trainer(logger=False)`: give the "
                "Trainer a logger or remove the callback."
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

    def _log(self, trainer: Any, interval: str) -> None:
        stats: dict[str, float] = {}
        for name, opt, sched_interval in self._names(trainer):
            if self.logging_interval is None and sched_interval not in (interval, "any"):
                continue
            groups = opt.param_groups
            for i, g in enumerate(groups):
                key = name if len(groups) == 1 else f"{name}/pg{i + 1}"
                stats[key] = float(g["lr"])
                self.lrs.setdefault(key, []).append(stats[key])
                if self.log_momentum:
                    m = g.get("momentum", g.get("betas", (0.0,))[0] if "betas" in g else 0.0)
                    stats[f"{key.replace(name, name + '-momentum', 1)}"] = float(m)
                if self.log_weight_decay:
                    stats[f"{key.replace(name, name + '-weight_decay', 1)}"] = float(
                        g.get("weight_decay", 0.0)
                    )
        if stats:
            step = trainer._batches_that_stepped
            for logger in trainer.loggers:
                logger.log_metrics(stats, step=step)
