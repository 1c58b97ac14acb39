"""``EarlyStopping``: stop when a monitored metric stops improving."""

from __future__ import annotations

import logging
import math
from enum import Enum
from typing import Any

import torch

from runtime.callbacks.base import Callback
from runtime.errors import MisconfigurationException
from runtime.rank_zero import rank_zero_warn

log = logging.getLogger(__name__)


class EarlyStoppingReason(Enum):
    """Why ``EarlyStopping`` stopped the run (``early_stopping.stopping_reason``); the values
    are Lightning's, and are what a checkpoint stores."""

    NOT_STOPPED = 0
    STOPPING_THRESHOLD = 1
    DIVERGENCE_THRESHOLD = 2
    PATIENCE_EXHAUSTED = 3
    NON_FINITE_METRIC = 4


class EarlyStopping(Callback):
    """Stops ``fit`` when ``monitor`` has not improved by ``min_delta`` for ``patience`` checks,
    crosses ``stopping_threshold``/``divergence_threshold``, or is not finite. Checks run at the
    end of validation (or of the training epoch where there is no validation).
    ``stopping_reason`` and ``stopping_reason_message`` say why it stopped."""

    mode_dict = {"min": torch.lt, "max": torch.gt}

    def __init__(
        self,
        monitor: str,
        min_delta: float = 0.0,
        patience: int = 3,
        verbose: bool = False,
        mode: str = "min",
        strict: bool = True,
        check_finite: bool = True,
        stopping_threshold: float | None = None,
        divergence_threshold: float | None = None,
        check_on_train_epoch_end: bool | None = None,
        log_rank_zero_only: bool = False,
    ) -> None:
        if mode not in self.mode_dict:
            raise MisconfigurationException(
                f"`mode` can be {', '.join(self.mode_dict)}, got {mode} (EarlyStopping)."
            )
        if patience < 0:
            raise MisconfigurationException(f"EarlyStopping(patience={patience}) must be >= 0.")
        self.monitor = monitor
        self.min_delta = torch.tensor(abs(min_delta) if mode == "max" else -abs(min_delta))
        self.patience = patience
        self.verbose = verbose
        self.mode = mode
        self.strict = strict
        self.check_finite = check_finite
        self.stopping_threshold = stopping_threshold
        self.divergence_threshold = divergence_threshold
        self._check_on_train_epoch_end = check_on_train_epoch_end
        self.log_rank_zero_only = log_rank_zero_only
        self.wait_count = 0
        self.stopped_epoch = 0
        self.best_score = torch.tensor(math.inf if mode == "min" else -math.inf)
        self.stopping_reason = EarlyStoppingReason.NOT_STOPPED
        self.stopping_reason_message: str | None = None

    @property
    def state_key(self) -> str:
        return self._generate_state_key(monitor=self.monitor, mode=self.mode)

    @property
    def monitor_op(self) -> Any:
        return self.mode_dict[self.mode]

    def setup(self, trainer: Any, pl_module: Any, stage: str) -> None:
        if self._check_on_train_epoch_end is None:
            self._check_on_train_epoch_end = (
                trainer.val_check_interval == 1.0
                and trainer.check_val_every_n_epoch == 1
                and not trainer._has_val_batches()
            )

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        if self._check_on_train_epoch_end and not self._skip(trainer):
            self._run_early_stopping_check(trainer)

    def on_validation_end(self, trainer: Any, pl_module: Any) -> None:
        if not self._check_on_train_epoch_end and not self._skip(trainer):
            self._run_early_stopping_check(trainer)

    def state_dict(self) -> dict[str, Any]:
        return {
            "wait_count": self.wait_count,
            "stopped_epoch": self.stopped_epoch,
            "best_score": self.best_score,
            "patience": self.patience,
            "stopping_reason": self.stopping_reason.value,
            "stopping_reason_message": self.stopping_reason_message,
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.wait_count = state_dict["wait_count"]
        self.stopped_epoch = state_dict["stopped_epoch"]
        self.best_score = state_dict["best_score"]
        self.patience = state_dict["patience"]
        self.stopping_reason = EarlyStoppingReason(state_dict.get("stopping_reason", 0))
        self.stopping_reason_message = state_dict.get("stopping_reason_message")

    def _skip(self, trainer: Any) -> bool:
        return trainer.state.fn != "fit" or trainer.sanity_checking

    def _run_early_stopping_check(self, trainer: Any) -> None:
        metrics = trainer.callback_metrics
        if trainer.fast_dev_run:
            return
        if self.monitor not in metrics:
            message = (
                f"Early stopping conditioned on metric {self.monitor!r} which is not "
                f"available. Pass in or modify your `EarlyStopping` callback to use any of "
                f"the following: {', '.join(sorted(metrics)) or '(none logged)'}"
            )
            if self.strict:
                raise MisconfigurationException(message)
            rank_zero_warn(message)
            return
        current = torch.as_tensor(metrics[self.monitor]).detach().cpu().squeeze()
        should_stop, reason = self._evaluate_stopping_criteria(current)
        # every rank stops if any rank decides to (ranks whose metrics differ would otherwise
        # part ways: one leaves the loop, the others wait for it in a collective forever)
        should_stop = trainer.strategy.reduce_boolean_decision(should_stop, all=False)
        trainer.should_stop = trainer.should_stop or should_stop
        if should_stop:
            self.stopped_epoch = trainer.current_epoch
            self.stopping_reason_message = reason
        if reason and self.verbose:
            self._log_info(trainer, reason, self.log_rank_zero_only)

    @staticmethod
    def _log_info(trainer: Any, message: str, log_rank_zero_only: bool) -> None:
        """Logs ``message`` (prefixed with the rank when there are several); with
        ``log_rank_zero_only`` only rank 0 logs."""
        rank = trainer.global_rank if trainer is not None and trainer.world_size > 1 else None
        if rank is not None:
            message = f"[rank: {rank}] {message}"
        if rank is None or not log_rank_zero_only or rank == 0:
            log.info(message)

    def _evaluate_stopping_criteria(self, current: torch.Tensor) -> tuple[bool, str | None]:
        op = self.monitor_op
        if self.check_finite and not torch.isfinite(current):
            self.stopping_reason = EarlyStoppingReason.NON_FINITE_METRIC
            return True, (
                f"Monitored metric {self.monitor} = {float(current)} is not finite. "
                f"Previous best value was {float(self.best_score):.3f}. Signaling Trainer "
                "to stop."
            )
        if self.stopping_threshold is not None and op(current, self.stopping_threshold):
            self.stopping_reason = EarlyStoppingReason.STOPPING_THRESHOLD
            return True, (
                f"Stopping threshold reached: {self.monitor} = {float(current)} "
                f"{'<' if self.mode == 'min' else '>'} {self.stopping_threshold}. "
                "Signaling Trainer to stop."
            )
        if self.divergence_threshold is not None and op(-current, -self.divergence_threshold):
            self.stopping_reason = EarlyStoppingReason.DIVERGENCE_THRESHOLD
            return True, (
                f"Divergence threshold reached: {self.monitor} = {float(current)} "
                f"{'>' if self.mode == 'min' else '<'} {self.divergence_threshold}. "
                "Signaling Trainer to stop."
            )
        if op(current - self.min_delta.to(current.dtype), self.best_score.to(current.dtype)):
            improved = torch.isfinite(self.best_score)
            delta = abs(float(self.best_score) - float(current)) if improved else None
            self.best_score = current
            self.wait_count = 0
            return False, (
                f"Metric {self.monitor} improved by {delta:.3f} >= min_delta = "
                f"{abs(float(self.min_delta))}. New best score: {float(current):.3f}"
                if delta is not None
                else f"Metric {self.monitor} improved. New best score: {float(current):.3f}"
            )
        self.wait_count += 1
        if self.wait_count >= self.patience:
            self.stopping_reason = EarlyStoppingReason.PATIENCE_EXHAUSTED
            return True, (
                f"Monitored metric {self.monitor} did not improve in the last "
                f"{self.wait_count} records. Best score: {float(self.best_score):.3f}. "
                "Signaling Trainer to stop."
            )
        return False, None
