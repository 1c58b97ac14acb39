"""The run state: progress counters, owned by the loop objects (``runtime.loops.fit``'s
``FitLoop``/``TrainingEpochLoop``, ``runtime.loops.evaluation.EvaluationLoop``,
``runtime.loops.prediction.PredictionLoop``).

One owner: every count the loops keep (epochs, batches, optimizer and scheduler steps, zero_grad
calls, validation batches) is one of these objects, in the shape and under the names Lightning 2.x uses
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


def steps_optimizer(batch_idx: int, accumulate: int, is_last: bool) -> bool:
    """Whether the batch ``batch_idx`` (0-based, within its epoch) ends a gradient
    accumulation and so steps the optimizer: every ``accumulate`` batches and the last one."""
    return accumulate == 1 or (batch_idx + 1) % accumulate == 0 or is_last


_STAGES = ("ready", "started", "processed", "completed")


class Tracker:
    """Counts of one item kind by stage; ``stages`` says which stages this kind records."""

    __slots__ = ("ready", "started", "processed", "completed", "stages")

    def __init__(self, stages: tuple[str, ...] = _STAGES) -> None:
        self.stages = stages
        self.ready = self.started = self.processed = self.completed = 0

    def reset(self) -> None:
        self.ready = self.started = self.processed = self.completed = 0

    def reset_on_restart(self) -> None:
        """Restarting from a checkpoint: what was fetched or started but not completed is
        fetched again (Lightning's rule)."""
        self.ready = self.started = self.processed = self.completed

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

    def increment_by(self, n: int) -> None:
        """``n`` items done at once (every stage, both trackers)."""
        for tracker in (self.total, self.current):
            for stage in tracker.stages:
                setattr(tracker, stage, getattr(tracker, stage) + n)

    def reset(self) -> None:
        self.total.reset()
        self.current.reset()

    def reset_on_run(self) -> None:
        """A new run of the enclosing loop (epoch, validation run): ``current`` starts over."""
        self.current.reset()

    def reset_on_restart(self) -> None:
        self.current.reset_on_restart()

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

    def reset_on_restart(self) -> None:
        self.step.reset_on_restart()
        self.zero_grad.reset_on_restart()

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

    def reset_on_restart(self) -> None:
        self.optimizer.reset_on_restart()

    def state_dict(self) -> dict[str, Any]:
        return {"optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(state.get("optimizer") or {})


class _AutomaticOptimization:
    """``fit_loop.epoch_loop.automatic_optimization``: its optimizer counters, and one step
    run by hand (``run``, ``_make_closure``) as Lightning's loop object."""

    __slots__ = ("optim_progress", "restarting", "trainer")

    def __init__(self) -> None:
        self.optim_progress = OptimizationProgress()
        self.restarting = False
        self.trainer: Any = None

    def run(self, optimizer: Any, batch_idx: int, kwargs: dict[str, Any]) -> dict:
        from runtime.loops.optimization import run_automatic

        return run_automatic(self.trainer, optimizer, batch_idx, kwargs)

    def _make_closure(self, kwargs: dict[str, Any], optimizer: Any, batch_idx: int) -> Any:
        from runtime.loops.optimization import make_closure

        return make_closure(self.trainer, kwargs, optimizer, batch_idx)


class _ManualOptimization:
    __slots__ = ("optim_step_progress", "restarting")

    def __init__(self) -> None:
        self.optim_step_progress = Progress(_READY_COMPLETED)
        self.restarting = False
