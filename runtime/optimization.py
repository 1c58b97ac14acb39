"""``configure_optimizers`` parsing, LR-scheduler configs and the optimizer wrapper.

Owns the six return forms Lightning accepts and the scheduler dict keys; the loops own
when schedulers step.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch.optim import Optimizer

from runtime.errors import MisconfigurationException

_SCHED_KEYS = {
    "scheduler",
    "name",
    "interval",
    "frequency",
    "reduce_on_plateau",
    "monitor",
    "strict",
    "opt_idx",
}
_OPT_KEYS = {"optimizer", "lr_scheduler", "monitor"}
_FORMS = (
    "Output from `configure_optimizers` should be one of: a single optimizer; a list/tuple of "
    "optimizers; two lists (optimizers, schedulers); a dict with 'optimizer' and optionally "
    "'lr_scheduler' and 'monitor'; a list/tuple of such dicts; or None."
)


@dataclasses.dataclass
class LRSchedulerConfig:
    scheduler: Any
    name: str | None = None
    interval: str = "epoch"
    frequency: int = 1
    reduce_on_plateau: bool = False
    monitor: str | None = None
    strict: bool = True
    opt_idx: int | None = None


def _is_plateau(s: Any) -> bool:
    return isinstance(s, torch.optim.lr_scheduler.ReduceLROnPlateau)


def _sched_config(item: Any, monitor: str | None) -> LRSchedulerConfig:
    if isinstance(item, Mapping):
        if "scheduler" not in item:
            raise MisconfigurationException(
                'The lr scheduler dict must have the key "scheduler" with its item being an lr '
                f"scheduler; got keys {sorted(item)}. Example: "
                "{'scheduler': StepLR(opt, 10), 'interval': 'epoch'}."
            )
        extra = set(item) - _SCHED_KEYS
        if extra:
            warnings.warn(
                f"Found unsupported keys in the lr scheduler dict: {set(extra)}. HINT: remove them "
                "from the output of `configure_optimizers`; "
                f"allowed are {sorted(_SCHED_KEYS)}.",
                RuntimeWarning,
                stacklevel=5,
            )
        kw = {k: v for k, v in item.items() if k in _SCHED_KEYS}
        interval = kw.get("interval", "epoch")
        if interval not in ("step", "epoch"):
            raise MisconfigurationException(
                'The "interval" key in lr scheduler dict must be "step" or "epoch" but is '
                f'"{interval}".'
            )
        cfg = LRSchedulerConfig(**kw)
        cfg.reduce_on_plateau = kw.get("reduce_on_plateau", _is_plateau(cfg.scheduler))
        if cfg.reduce_on_plateau and cfg.monitor is None:
            cfg.monitor = monitor
    else:
        cfg = LRSchedulerConfig(item, reduce_on_plateau=_is_plateau(item))
        if cfg.reduce_on_plateau:
            cfg.monitor = monitor
    if cfg.reduce_on_plateau and cfg.monitor is None:
        raise MisconfigurationException(
            "`configure_optimizers` must include a monitor when a `ReduceLROnPlateau` scheduler is "
            "used: return "
            "{'optimizer': opt, 'lr_scheduler': {'scheduler': sched, 'monitor': 'val_loss'}} "
            "from `configure_optimizers`."
        )
    if isinstance(cfg.scheduler, torch.optim.lr_scheduler.OneCycleLR) and cfg.interval == "epoch":
        warnings.warn(
            "A `OneCycleLR` scheduler is stepped once per epoch (interval='epoch'); it "
            "is usually meant to step every batch: set 'interval': 'step'.",
            RuntimeWarning,
            stacklevel=5,
        )
    return cfg


def _manual_sched_config(item: Any) -> LRSchedulerConfig:
    """Manual optimization: the user steps the scheduler, so nothing about *when* or *on what* it
    steps is checked; ``interval``/``name`` stay for ``LearningRateMonitor``."""
    if not isinstance(item, Mapping):
        return LRSchedulerConfig(item)
    if "scheduler" not in item:
        raise MisconfigurationException(
            'The lr scheduler dict must have the key "scheduler" with its item being an lr '
            f"scheduler; got keys {sorted(item)}."
        )
    ignored = [k for k in item if k in ("reduce_on_plateau", "monitor", "strict")]
    if ignored:
        warnings.warn(
            f"The lr scheduler dict contains the key(s) {ignored}, but the keys will be ignored."
            " You need to call `lr_scheduler.step()` manually in manual optimization.",
            RuntimeWarning,
            stacklevel=5,
        )
    kw = {k: v for k, v in item.items() if k in _SCHED_KEYS and k not in ignored}
    return LRSchedulerConfig(**kw)


def parse_configure_optimizers(
    out: Any, automatic: bool = True
) -> tuple[list[Optimizer], list[LRSchedulerConfig]]:
    """Normalises every return form of ``configure_optimizers`` to (optimizers, scheduler configs).

    With ``automatic=False`` (manual optimization) scheduler entries are only recorded: the
    Trainer never steps them, so a ReduceLROnPlateau needs no monitor."""
    monitor = None
    scheds: list[Any] = []
    if out is None:
        warnings.warn(
            "`LightningModule.configure_optimizers` returned `None`, this fit will run "
            "with no optimizer",
            UserWarning,
            stacklevel=4,
        )
        return [], []
    if isinstance(out, Optimizer):
        opts = [out]
    elif isinstance(out, Mapping):
        opts, scheds, monitor = _from_dict(out)
    elif (
        isinstance(out, Sequence)
        and len(out) == 2
        and isinstance(out[0], list)
        and all(isinstance(o, Optimizer) for o in out[0])
    ):
        opts = list(out[0])
        scheds = list(out[1]) if isinstance(out[1], (list, tuple)) else [out[1]]
    elif isinstance(out, Sequence) and out and all(isinstance(d, Mapping) for d in out):
        opts = []
        for d in out:
            o, s, m = _from_dict(d)
            opts += o
            scheds += [(x, m) for x in s]
    elif isinstance(out, Sequence) and out and all(isinstance(o, Optimizer) for o in out):
        opts = list(out)
    else:
        raise MisconfigurationException(
            f"Unknown configuration for model optimizers: got {type(out).__name__} {out!r:.200}. "
            + _FORMS
        )
    configs = []
    for item in scheds:
        item, mon = item if isinstance(item, tuple) else (item, monitor)
        configs.append(_sched_config(item, mon) if automatic else _manual_sched_config(item))
    for cfg in configs:
        sched_opt = getattr(cfg.scheduler, "optimizer", None)
        if sched_opt is not None and not any(sched_opt is o for o in opts):
            raise MisconfigurationException(
                "Some schedulers are attached with an optimizer that wasn't returned from "
                "`configure_optimizers`. Build each scheduler from one of the returned optimizers."
            )
        if not hasattr(cfg.scheduler, "state_dict"):
            raise MisconfigurationException(
                f"The lr scheduler {type(cfg.scheduler).__name__} has no `state_dict`; schedulers "
                "must implement `state_dict`/`load_state_dict` to be checkpointed."
            )
    return opts, configs


def _from_dict(d: Mapping[str, Any]) -> tuple[list[Optimizer], list[Any], str | None]:
    if "optimizer" not in d:
        raise MisconfigurationException(
            f"`configure_optimizers` returned a dict without an 'optimizer' key (keys: {sorted(d)}). "
            + _FORMS
        )
    extra = set(d) - _OPT_KEYS
    if extra:
        warnings.warn(
            f"Found unsupported keys in the optimizer configuration: {sorted(extra)}",
            RuntimeWarning,
            stacklevel=5,
        )
    sched = d.get("lr_scheduler")
    return [d["optimizer"]], ([] if sched is None else [sched]), d.get("monitor")


class LightningOptimizer:
    """Wraps a torch optimizer so ``step`` runs through the trainer's precision and hooks.

    The instance's class is a generated subclass of both this wrapper and the optimizer's
    class (named ``Lightning<Optimizer>``), so ``isinstance(opt, torch.optim.SGD)`` holds.
    """

    def __init__(self, optimizer: Optimizer, trainer: Any = None) -> None:
        # nothing of the optimizer's own state is copied: attributes the wrapper lacks are read
        # from the optimizer (``__getattr__``), so ``param_groups`` and ``state`` stay the
        # optimizer's even after ``optimizer.load_state_dict`` replaces them
        self._optimizer = optimizer
        self._trainer = trainer
        self.__class__ = type(
            f"Lightning{type(optimizer).__name__}", (LightningOptimizer, type(optimizer)), {}
        )

    @property
    def optimizer(self) -> Optimizer:
        return self._optimizer

    def step(self, closure: Any = None, **kwargs: Any) -> Any:
        """Steps the wrapped optimizer; in manual optimization this counts toward ``global_step``."""
        trainer = self._trainer
        if closure is None:
            closure = _noop_closure
        elif not callable(closure):
            raise MisconfigurationException(
                "When `optimizer.step(closure)` is called, the closure should be callable (got a "
                f"{type(closure).__name__})."
            )
        if trainer is None:  # a wrapper built by hand, outside a run: a plain step
            return self._optimizer.step(closure, **kwargs)
        # ready before the step (its closure runs training_step), completed after: a step cut
        # short by an exception is counted as Lightning counts it
        progress = trainer.fit_loop.epoch_loop.step_progress
        progress.increment_ready()
        out = trainer.strategy.precision_plugin.optimizer_step(
            self._optimizer, closure, trainer._after_closure, **kwargs
        )
        progress.increment_completed()
        return out

    def zero_grad(self, set_to_none: bool = True) -> None:
        self._optimizer.zero_grad(set_to_none=set_to_none)

    def state_dict(self) -> dict:
        return self._optimizer.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self._optimizer.load_state_dict(state)

    def __getattr__(self, name: str) -> Any:
        if name == "_optimizer":  # not set yet (copy/unpickle): no recursion into the lookup
            raise AttributeError(name)
        return getattr(self._optimizer, name)

    # copies carry the wrapper's own fields (the optimizer's __getstate__ would copy only the
    # optimizer's state and leave a wrapper without the optimizer it wraps)
    def __getstate__(self) -> dict:
        return dict(self.__dict__)

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)

    def __repr__(self) -> str:
        return f"Lightning{self._optimizer!r}"


def _noop_closure() -> None:
    return None
