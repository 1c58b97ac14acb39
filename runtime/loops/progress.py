"""The run state: progress counters and the loop objects that own them.

One owner: every count the loops keep (epochs, batches, optimizer and scheduler steps, zero_grad
calls, validation batches) lives here, in the shape and under the names Lightning 2.x uses
(``trainer.fit_loop.epoch_loop.batch_progress.current.completed`` ...). Checkpoints are written
from ``state_dict`` and read back with ``load_state_dict``, so a checkpoint's ``loops`` entry is
Lightning's and either engine resumes the other's files. ``Trainer.current_epoch``,
``global_step`` and ``is_last_batch`` are views of these counters.

A counter pair moves through up to four stages for every item: *ready* (fetched), *started*,
*processed* (its work done) and *completed* (its hooks done). ``total`` counts over the whole
run, ``current`` within the enclosing loop (an epoch, one validation run).
"""

from __future__ import annotations

from typing import Any

_STAGES = ("ready", "started", "processed", "completed")


class Tracker:
    """Counts of one item kind by stage; ``stages`` says which stages this kind records."""

    __slots__ = ("ready", "started", "processed", "completed", "stages")

    def __init__(self, stages: tuple[str, ...] = _STAGES) -> None:
        self.stages = stages
        self.ready = self.started = self.processed = self.completed = 0

    def reset(self) -> None:
        self.ready = self.started = self.processed = self.completed = 0

    def state_dict(self) -> dict[str, int]:
        return {s: getattr(self, s) for s in self.stages}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for s in self.stages:
            setattr(self, s, int(state.get(s, 0)))

    def __repr__(self) -> str:
        inner = ", ".join(f"{s}={getattr(self, s)}" for s in self.stages)
        return f"Tracker({inner})"


_READY_COMPLETED = ("ready", "completed")
_STARTED = ("ready", "started", "completed")


class Progress:
    """``total`` and ``current`` trackers moved together."""

    __slots__ = ("total", "current")

    def __init__(self, stages: tuple[str, ...] = _STAGES) -> None:
        self.total = Tracker(stages)
        self.current = Tracker(stages)

    def increment_ready(self) -> None:
        self.total.ready += 1
        self.current.ready += 1

    def increment_started(self) -> None:
        self.total.started += 1
        self.current.started += 1

    def increment_processed(self) -> None:
        self.total.processed += 1
        self.current.processed += 1

    def increment_completed(self) -> None:
        self.total.completed += 1
        self.current.completed += 1

    def reset(self) -> None:
        self.total.reset()
        self.current.reset()

    def reset_on_run(self) -> None:
        """A new run of the enclosing loop (epoch, validation run): ``current`` starts over."""
        self.current.reset()

    def state_dict(self) -> dict[str, Any]:
        return {"total": self.total.state_dict(), "current": self.current.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.total.load_state_dict(state.get("total") or {})
        self.current.load_state_dict(state.get("current") or {})

    def __repr__(self) -> str:
        return f"{type(self).__name__}(total={self.total!r}, current={self.current!r})"


class BatchProgress(Progress):
    """Batch counters of an epoch (or an evaluation run), plus whether the batch being
    processed is the loader's last."""

    __slots__ = ("is_last_batch",)

    def __init__(self) -> None:
        super().__init__()
        self.is_last_batch = False

    def reset_on_run(self) -> None:
        super().reset_on_run()
        self.is_last_batch = False

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "is_last_batch": self.is_last_batch}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.is_last_batch = bool(state.get("is_last_batch", False))


class OptimizerProgress:
    """Optimizer steps and ``zero_grad`` calls."""

    __slots__ = ("step", "zero_grad")

    def __init__(self) -> None:
        self.step = Progress(_READY_COMPLETED)
        self.zero_grad = Progress(_STARTED)

    def reset_on_run(self) -> None:
        self.step.reset_on_run()
        self.zero_grad.reset_on_run()

    def state_dict(self) -> dict[str, Any]:
        return {"step": self.step.state_dict(), "zero_grad": self.zero_grad.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.step.load_state_dict(state.get("step") or {})
        self.zero_grad.load_state_dict(state.get("zero_grad") or {})


class OptimizationProgress:
    __slots__ = ("optimizer",)

    def __init__(self) -> None:
        self.optimizer = OptimizerProgress()

    @property
    def optimizer_steps(self) -> int:
        return self.optimizer.step.total.completed

    def reset_on_run(self) -> None:
        self.optimizer.reset_on_run()

    def state_dict(self) -> dict[str, Any]:
        return {"optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(state.get("optimizer") or {})


class _AutomaticOptimization:
    __slots__ = ("optim_progress",)

    def __init__(self) -> None:
        self.optim_progress = OptimizationProgress()


class _ManualOptimization:
    __slots__ = ("optim_step_progress",)

    def __init__(self) -> None:
        self.optim_step_progress = Progress(_READY_COMPLETED)


# ---------------------------------------------------------------------- loops
class EvaluationLoop:
    """State of validation (``fit``'s ``epoch_loop.val_loop``, ``validate_loop``) or testing
    (``test_loop``): batch counters of the current run and in total."""

    def __init__(self) -> None:
        self.batch_progress = BatchProgress()

    def state_dict(self) -> dict[str, Any]:
        return {"state_dict": {}, "batch_progress": self.batch_progress.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.batch_progress.load_state_dict(state.get("batch_progress") or {})


class TrainingEpochLoop:
    """State of the batches of one training epoch: batch, optimizer-step and scheduler counters,
    and the validation loop that runs inside ``fit``."""

    def __init__(self, min_steps: int | None, max_steps: int) -> None:
        self.min_steps = min_steps
        self.max_steps = max_steps
        self.batch_progress = BatchProgress()
        self.scheduler_progress = Progress(_READY_COMPLETED)
        self.automatic_optimization = _AutomaticOptimization()
        self.manual_optimization = _ManualOptimization()
        self.val_loop = EvaluationLoop()
        self._batches_that_stepped = 0
        self.trainer: Any = None  # set by the Trainer that owns this loop

    def _get_monitor_value(self, key: str) -> Any:
        """The value a ReduceLROnPlateau scheduler monitors (a hook point, as in Lightning)."""
        return self.trainer.callback_metrics.get(key)

    @property
    def step_progress(self) -> Progress:
        """The optimizer-step counter of the module's optimization mode (manual optimization has
        its own, as in Lightning)."""
        if self.trainer is None or self.trainer._automatic:
            return self.automatic_optimization.optim_progress.optimizer.step
        return self.manual_optimization.optim_step_progress

    @property
    def global_step(self) -> int:
        """Optimizer steps taken in the whole run."""
        return self.step_progress.total.completed

    @property
    def total_batch_idx(self) -> int:
        """Index of the current batch over all epochs."""
        return self.batch_progress.total.ready - 1

    @property
    def batch_idx(self) -> int:
        """Index of the current batch in this epoch."""
        return self.batch_progress.current.ready - 1

    def new_epoch(self) -> None:
        self.batch_progress.reset_on_run()
        self.scheduler_progress.reset_on_run()
        self.automatic_optimization.optim_progress.reset_on_run()
        self.manual_optimization.optim_step_progress.reset_on_run()
        # as Lightning: validation's total counts the batches of this epoch (it tells how often
        # validation ran within the epoch)
        self.val_loop.batch_progress.total.reset()

    def state_dict(self) -> dict[str, Any]:
        return {
            "state_dict": {"_batches_that_stepped": self._batches_that_stepped},
            "batch_progress": self.batch_progress.state_dict(),
            "scheduler_progress": self.scheduler_progress.state_dict(),
            "automatic_optimization.state_dict": {},
            "automatic_optimization.optim_progress": (
                self.automatic_optimization.optim_progress.state_dict()
            ),
            "manual_optimization.state_dict": {},
            "manual_optimization.optim_step_progress": (
                self.manual_optimization.optim_step_progress.state_dict()
            ),
            "val_loop.state_dict": {},
            "val_loop.batch_progress": self.val_loop.batch_progress.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._batches_that_stepped = int(
            (state.get("state_dict") or {}).get("_batches_that_stepped", 0)
        )
        self.batch_progress.load_state_dict(state.get("batch_progress") or {})
        self.scheduler_progress.load_state_dict(state.get("scheduler_progress") or {})
        self.automatic_optimization.optim_progress.load_state_dict(
            state.get("automatic_optimization.optim_progress") or {}
        )
        self.manual_optimization.optim_step_progress.load_state_dict(
            state.get("manual_optimization.optim_step_progress") or {}
        )
        self.val_loop.batch_progress.load_state_dict(state.get("val_loop.batch_progress") or {})


class FitLoop:
    """``trainer.fit_loop``: epoch counters and limits; ``epoch_loop`` holds the rest.

    ``max_epochs`` may be changed between two ``fit`` calls (``trainer.fit_loop.max_epochs = 4``
    trains on to epoch 4)."""

    def __init__(
        self,
        min_epochs: int | None,
        max_epochs: int | None,
        min_steps: int | None,
        max_steps: int,
    ) -> None:
        self.min_epochs = min_epochs
        self.max_epochs = max_epochs
        self.epoch_progress = Progress()
        self.epoch_loop = TrainingEpochLoop(min_steps, max_steps)

    @property
    def max_steps(self) -> int:
        return self.epoch_loop.max_steps

    @max_steps.setter
    def max_steps(self, value: int) -> None:
        self.epoch_loop.max_steps = value

    @property
    def min_steps(self) -> int | None:
        return self.epoch_loop.min_steps

    @property
    def total_batch_idx(self) -> int:
        return self.epoch_loop.total_batch_idx

    @property
    def batch_idx(self) -> int:
        return self.epoch_loop.batch_idx

    def resolved_max_epochs(self, max_time: float | None) -> int:
        """``max_epochs`` as ``fit`` runs it: ``None`` means 1000, or no limit (-1) when
        ``max_steps`` or ``max_time`` bound the run (Lightning's rule)."""
        if self.max_epochs is not None:
            return self.max_epochs
        return -1 if self.max_steps != -1 or max_time is not None else 1000

    @property
    def max_steps_reached(self) -> bool:
        return self.max_steps != -1 and self.epoch_loop.global_step >= self.max_steps

    @property
    def max_epochs_reached(self) -> bool:
        max_epochs = self.max_epochs
        return max_epochs not in (-1, None) and self.epoch_progress.current.completed >= max_epochs

    @property
    def done(self) -> bool:
        """True once ``max_steps`` or ``max_epochs`` is reached (time and early stopping are
        decided by the loop as it runs)."""
        return self.max_steps_reached or self.max_epochs_reached

    def state_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"state_dict": {}}  # checkpoint.dump_checkpoint adds the RNG here
        for key, value in self.epoch_loop.state_dict().items():
            out[f"epoch_loop.{key}"] = value
        out["epoch_progress"] = self.epoch_progress.state_dict()
        return out

    def load_state_dict(self, state: dict[str, Any]) -> None:
        prefix = "epoch_loop."
        self.epoch_loop.load_state_dict(
            {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
        )
        self.epoch_progress.load_state_dict(state.get("epoch_progress") or {})
