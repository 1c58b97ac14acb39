"""``TQDMProgressBar``: a tqdm bar in a terminal, one line per epoch anywhere else.

The per-step cost is one counter increment and one clock read: the bar and its metrics
are only redrawn when ``refresh_rate`` batches *and* ``min_interval`` seconds have passed,
so tensors are turned into floats a few times a second at most.
"""

from __future__ import annotations

import sys
import time
from typing import Any

import torch

from runtime.callbacks.base import Callback


def _fmt(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        value = value.item()
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1e-3 or abs(value) >= 1e4 else f"{value:.4f}"
    return str(value)


class ProgressBar(Callback):
    """Base of progress bars: subclass it (or ``TQDMProgressBar``) to draw progress your way.

    Gives what a bar needs: ``self.trainer`` (after ``setup``), the batch totals of the running
    stage, the stage descriptions and ``get_metrics`` (what ``self.log(..., prog_bar=True)``
    recorded, plus the logger version as ``v_num``)."""

    def __init__(self) -> None:
        self._trainer: Any = None
        self._current_eval_dataloader_idx: int | None = None

    @property
    def trainer(self) -> Any:
        if self._trainer is None:
            raise TypeError(f"The `{type(self).__name__}._trainer` reference has not been set yet.")
        return self._trainer

    sanity_check_description = "Sanity Checking"
    train_description = "Training"
    validation_description = "Validation"
    test_description = "Testing"
    predict_description = "Predicting"

    @property
    def total_train_batches(self) -> int | float:
        """Batches in one training epoch (``inf`` for a loader without length)."""
        return self.trainer.num_training_batches

    def _current(self, counts: list) -> int | float:
        idx = self._current_eval_dataloader_idx or 0
        return counts[idx] if idx < len(counts) else 0

    @property
    def total_val_batches_current_dataloader(self) -> int | float:
        t = self.trainer
        counts = t.num_sanity_val_batches if t.sanity_checking else t.num_val_batches
        return self._current(counts)

    @property
    def total_test_batches_current_dataloader(self) -> int | float:
        return self._current(self.trainer.num_test_batches)

    @property
    def total_predict_batches_current_dataloader(self) -> int | float:
        return self._current(self.trainer.num_predict_batches)

    @property
    def total_val_batches(self) -> int | float:
        """Validation batches of one validation run in ``fit`` (0 where this epoch has none)."""
        t = self.trainer
        if not t.fit_loop.epoch_loop._should_check_val_epoch():
            return 0
        return sum(t.num_val_batches)

    def has_dataloader_changed(self, dataloader_idx: int) -> bool:
        old = self._current_eval_dataloader_idx
        self._current_eval_dataloader_idx = dataloader_idx
        return old != dataloader_idx

    def reset_dataloader_idx_tracker(self) -> None:
        self._current_eval_dataloader_idx = None

    def disable(self) -> None:
        """Called on ranks other than 0 (and by ``enable_progress_bar=False``): draw nothing."""

    def enable(self) -> None:
        """Undoes ``disable``."""

    def print(self, *args: Any, **kwargs: Any) -> None:
        print(*args, **kwargs)

    def setup(self, trainer: Any, pl_module: Any, stage: str) -> None:
        self._trainer = trainer
        if not trainer.is_global_zero:
            self.disable()

    def get_metrics(self, trainer: Any, pl_module: Any) -> dict[str, Any]:
        metrics = dict(trainer.progress_bar_metrics)
        version = getattr(trainer.logger, "version", None) if trainer.loggers else None
        if version is not None:
            metrics["v_num"] = version[-4:] if isinstance(version, str) else version
        return metrics


class _Switchable:
    """``refresh_rate`` and the enable/disable switch the drawn bars share (0 draws nothing)."""

    _refresh_rate: int
    _enabled: bool

    @property
    def refresh_rate(self) -> int:
        return self._refresh_rate

    @property
    def is_enabled(self) -> bool:
        return self._enabled and self._refresh_rate > 0

    @property
    def is_disabled(self) -> bool:
        return not self.is_enabled

    def disable(self) -> None:
        self._enabled = False

    def enable(self) -> None:
        self._enabled = True


class TQDMProgressBar(_Switchable, ProgressBar):
    """The default progress bar: a tqdm bar per epoch in a terminal, one line per epoch with
    the logged ``prog_bar`` values anywhere else (logs, CI)."""

    def __init__(
        self,
        refresh_rate: int = 1,
        process_position: int = 0,
        leave: bool = False,
        min_interval: float = 0.2,
    ) -> None:
        super().__init__()
        if refresh_rate < 0:
            raise ValueError(f"TQDMProgressBar(refresh_rate={refresh_rate}) must be >= 0.")
        self._refresh_rate = refresh_rate
        self._position = process_position
        self._leave = leave
        self._min_interval = min_interval
        self._enabled = True
        self._bar: Any = None
        self._eval_bar: Any = None
        self._count = 0
        self._last_draw = 0.0
        self._epoch_t0 = 0.0
        self.is_tty = bool(getattr(sys.stdout, "isatty", lambda: False)())

    def print(self, *args: Any, sep: str = " ", **kwargs: Any) -> None:
        bar = self._eval_bar or self._bar
        if bar is not None:
            from tqdm import tqdm

            tqdm.write(sep.join(map(str, args)), **kwargs)
        else:
            print(*args, sep=sep, **kwargs)

    def _new_bar(self, total: Any, desc: str, leave: bool) -> Any:
        from tqdm import tqdm

        total = total if isinstance(total, int) else None
        return tqdm(
            total=total,
            desc=desc,
            leave=leave,
            position=self._position,
            dynamic_ncols=True,
            file=sys.stdout,
            smoothing=0,
            mininterval=0,
            bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}, "
            "{rate_fmt}]{postfix}",
        )

    # ------------------------------------------------------------------ training
    def on_train_epoch_start(self, trainer: Any, pl_module: Any) -> None:
        self._count = 0
        self._epoch_t0 = self._last_draw = time.monotonic()
        if self.is_enabled and self.is_tty and trainer.is_global_zero:
            if self._bar is not None:
                self._bar.close()
            self._bar = self._new_bar(
                trainer._num_training_batches_int(), f"Epoch {trainer.current_epoch}", True
            )

    def on_train_batch_end(
        self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        self._count += 1
        bar = self._bar
        if bar is None or self._count % self._refresh_rate:
            return
        now = time.monotonic()
        if now - self._last_draw >= self._min_interval:
            self._last_draw = now
            self._draw(bar, self._count, trainer, pl_module)

    def _draw(self, bar: Any, n: int, trainer: Any, pl_module: Any) -> None:
        bar.n = n
        bar.set_postfix_str(
            ", ".join(f"{k}={_fmt(v)}" for k, v in self.get_metrics(trainer, pl_module).items()),
            refresh=False,
        )
        bar.refresh()

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        if not self.is_enabled or not trainer.is_global_zero:
            return
        if self._bar is not None:
            self._draw(self._bar, self._count, trainer, pl_module)
            if not self._leave:
                self._bar.close()
                self._bar = None
        elif not self.is_tty:
            elapsed = max(time.monotonic() - self._epoch_t0, 1e-9)
            total = trainer._num_training_batches_int()
            metrics = ", ".join(
                f"{k}={_fmt(v)}" for k, v in self.get_metrics(trainer, pl_module).items()
            )
            print(
                f"Epoch {trainer.current_epoch}: {self._count}/{total if total else '?'} "
                f"[{elapsed:.1f}s, {self._count / elapsed:.2f}it/s]"
                + (f" {metrics}" if metrics else ""),
                flush=True,
            )

    def on_train_end(self, trainer: Any, pl_module: Any) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    # ------------------------------------------------------------------ evaluation
    def _eval_start(self, trainer: Any, desc: str) -> None:
        if self.is_enabled and self.is_tty and trainer.is_global_zero:
            total = trainer._num_eval_batches_int()
            self._eval_bar = self._new_bar(total, desc, False)
            self._eval_count = 0

    def _eval_step(self) -> None:
        bar = self._eval_bar
        if bar is not None:
            self._eval_count += 1
            now = time.monotonic()
            if now - self._last_draw >= self._min_interval:
                self._last_draw = now
                bar.n = self._eval_count
                bar.refresh()

    def _eval_end(self) -> None:
        if self._eval_bar is not None:
            self._eval_bar.close()
            self._eval_bar = None

    def on_sanity_check_start(self, trainer: Any, pl_module: Any) -> None:
        self._eval_start(trainer, "Sanity Checking")

    def on_sanity_check_end(self, trainer: Any, pl_module: Any) -> None:
        self._eval_end()

    def on_validation_start(self, trainer: Any, pl_module: Any) -> None:
        if not trainer.sanity_checking:
            self._eval_start(trainer, "Validation")

    def on_validation_batch_end(self, *args: Any, **kwargs: Any) -> None:
        self._eval_step()

    def on_validation_end(self, trainer: Any, pl_module: Any) -> None:
        if not trainer.sanity_checking:
            self._eval_end()
        if self._bar is not None and trainer.state.fn == "fit":
            self._draw(self._bar, self._count, trainer, pl_module)

    def on_test_start(self, trainer: Any, pl_module: Any) -> None:
        self._eval_start(trainer, "Testing")

    def on_test_batch_end(self, *args: Any, **kwargs: Any) -> None:
        self._eval_step()

    def on_test_end(self, trainer: Any, pl_module: Any) -> None:
        self._eval_end()

    def on_predict_start(self, trainer: Any, pl_module: Any) -> None:
        self._eval_start(trainer, "Predicting")

    def on_predict_batch_end(self, *args: Any, **kwargs: Any) -> None:
        self._eval_step()

    def on_predict_end(self, trainer: Any, pl_module: Any) -> None:
        self._eval_end()

    def on_exception(self, trainer: Any, pl_module: Any, exception: BaseException) -> None:
        self._eval_end()
        if self._bar is not None:
            self._bar.close()
            self._bar = None
