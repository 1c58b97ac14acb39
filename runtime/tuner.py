"""The learning-rate finder: ``Tuner(trainer).lr_find(model, ...)`` and the
``LearningRateFinder`` callback, as in Lightning 2.x.

The range test trains from the model's current weights for ``num_training`` optimizer steps,
raising the learning rate of the (single) optimizer from ``min_lr`` to ``max_lr`` after each
step (exponentially or linearly), and records the smoothed training loss at each rate; it stops
early once the smoothed loss exceeds ``early_stop_threshold`` times the best seen. Afterwards
the model's weights, the optimizer's state, the loop counters, callbacks, loggers and
schedulers are put back as they were (the global random state is not, as in Lightning), and the
suggestion (the rate where the loss falls fastest) is written to the module's ``lr`` /
``learning_rate`` attribute (or ``hparams``) when ``update_attr`` is set.

``Tuner.scale_batch_size`` runs the batch-size finder (``runtime.callbacks.batch_size_finder``).
"""

from __future__ import annotations

import copy
import logging
import math
from typing import Any

import torch

from runtime.callbacks.base import Callback
from runtime.errors import MisconfigurationException, _TunerExitException
from runtime.rank_zero import rank_zero_warn

log = logging.getLogger("runtime.tuner")

__all__ = ["LearningRateFinder", "Tuner"]


# ------------------------------------------------------------------------------ schedules
class _RangeSchedule(torch.optim.lr_scheduler.LRScheduler):
    """The finder's schedule: ``min_lr`` for the first step, then towards ``end_lr`` over
    ``num_iter`` steps (the ``k``-th rate is ``min_lr * (end_lr / min_lr) ** ((k + 1) / n)``
    exponentially, ``min_lr + (k + 1) / n * (end_lr - min_lr)`` linearly)."""

    def __init__(self, optimizer: Any, end_lr: float, num_iter: int, exponential: bool) -> None:
        self.end_lr = end_lr
        self.num_iter = num_iter
        self.exponential = exponential
        super().__init__(optimizer, -1)

    def get_lr(self) -> list[float]:
        if self.last_epoch <= 0:
            return list(self.base_lrs)
        share = (self.last_epoch + 1) / self.num_iter
        if self.exponential:
            return [base * (self.end_lr / base) ** share for base in self.base_lrs]
        return [base + share * (self.end_lr - base) for base in self.base_lrs]


# ------------------------------------------------------------------------------ recording
class _RangeRecorder(Callback):
    """Records the rate and the bias-corrected moving average of the loss at each step."""

    beta = 0.98

    def __init__(self, early_stop_threshold: float | None) -> None:
        self.early_stop_threshold = early_stop_threshold
        self.lrs: list[float] = []
        self.losses: list[float] = []
        self._avg = 0.0
        self._best = math.inf

    def _steps_here(self, trainer: Any, batch_idx: int) -> bool:
        return (batch_idx + 1) % trainer.accumulate_grad_batches == 0

    def on_train_batch_start(
        self, trainer: Any, pl_module: Any, batch: Any, batch_idx: int
    ) -> None:
        if self._steps_here(trainer, batch_idx):
            self.lrs.append(trainer.lr_scheduler_configs[0].scheduler.get_last_lr()[0])

    def on_train_batch_end(
        self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if not self._steps_here(trainer, batch_idx):
            return
        if not outputs:
            self.losses.append(float("nan"))  # a step that returned no loss
            return
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        value = float(loss.item() if isinstance(loss, torch.Tensor) else loss)
        step = trainer.global_step
        self._avg = self.beta * self._avg + (1 - self.beta) * value
        smoothed = self._avg / (1 - self.beta ** (step + 1))
        threshold = self.early_stop_threshold
        if threshold is not None and step > 1 and smoothed > threshold * self._best:
            trainer.should_stop = True  # diverging: stop the search
        if smoothed < self._best or step == 1:
            self._best = smoothed
        self.losses.append(smoothed)


# ------------------------------------------------------------------------------ results
class _LRFinder:
    """What the range test found: ``results`` (``{"lr": [...], "loss": [...]}``),
    ``suggestion()`` and ``plot()``."""

    def __init__(self, mode: str, lr_min: float, lr_max: float, num_training: int) -> None:
        self.mode = mode
        self.lr_min = lr_min
        self.lr_max = lr_max
        self.num_training = num_training
        self.results: dict[str, list[float]] = {}
        self._optimal_idx: int | None = None

    def suggestion(self, skip_begin: int = 10, skip_end: int = 1) -> float | None:
        """The rate where the recorded loss falls fastest (the most negative gradient of the
        loss with respect to the rate), leaving out the first ``skip_begin`` and last
        ``skip_end`` points; None (and an error logged) with fewer than two finite points."""
        losses_all, lrs_all = self.results.get("loss", []), self.results.get("lr", [])
        end = len(losses_all) - skip_end if skip_end > 0 else len(losses_all)
        index = [i for i in range(skip_begin, max(skip_begin, end)) if math.isfinite(losses_all[i])]
        if len(index) < 2:
            log.error(
                "Failed to compute suggestion for learning rate because there are not enough "
                "points. Increase the loop iteration limits or the size of your dataset/"
                "dataloader."
            )
            self._optimal_idx = None
            return None
        losses = torch.tensor([losses_all[i] for i in index], dtype=torch.float64)
        lrs = torch.tensor([lrs_all[i] for i in index], dtype=torch.float64)
        gradients = torch.gradient(losses, spacing=[lrs])[0]
        self._optimal_idx = index[int(torch.argmin(gradients).item())]
        return lrs_all[self._optimal_idx]

    def plot(self, suggest: bool = False, show: bool = False, ax: Any = None) -> Any:
        """The loss against the rate (log scale for the exponential mode) with matplotlib;
        ``suggest`` marks the suggestion. Returns the figure."""
        try:
            import matplotlib.pyplot as plt
        except ModuleNotFoundError as err:
            raise ModuleNotFoundError(
                "LRFinder.plot needs matplotlib: `pip install matplotlib`."
            ) from err
        lrs, losses = self.results["lr"], self.results["loss"]
        if ax is None:
            fig, ax = plt.subplots()
        else:
            fig = ax.figure
        ax.plot(lrs, losses)
        if self.mode == "exponential":
            ax.set_xscale("log")
        ax.set_xlabel("Learning rate")
        ax.set_ylabel("Loss")
        if suggest:
            self.suggestion()
            if self._optimal_idx is not None:
                ax.plot(lrs[self._optimal_idx], losses[self._optimal_idx], markersize=10,
                        marker="o", color="red")  # fmt: skip
        if show:
            plt.show()
        return fig


# ------------------------------------------------------------------------------ search state
class _SearchState:
    """What a tuner's search changes, put back when it ends: the weights, every optimizer's
    and scheduler's state (and the scheduler list), the callbacks (the search runs with its own
    only, and no loggers), the batch limits and ``max_steps``, the metrics and results, and the
    fit loop's counters. Shared by the learning-rate and batch-size finders."""

    _LIMITS = ("limit_train_batches", "limit_val_batches", "limit_test_batches",
               "limit_predict_batches")  # fmt: skip

    def __init__(self, trainer: Any, callbacks: list[Any]) -> None:
        self.trainer = trainer
        self.callbacks = callbacks

    def __enter__(self) -> _SearchState:
        from runtime.loops.dispatch import build_callback_table

        t = self.trainer
        self.saved = {
            "model": copy.deepcopy(t.lightning_module.state_dict()),
            "optimizers": [copy.deepcopy(o.state_dict()) for o in t.optimizers],
            "configs": t.lr_scheduler_configs,
            "schedulers": [copy.deepcopy(c.scheduler.state_dict()) for c in t.lr_scheduler_configs],
            "callbacks": (t.callbacks, t._cb),
            "loggers": t.loggers,
            "limits": {k: getattr(t, k) for k in self._LIMITS},
            "max_steps": t.fit_loop.max_steps,
            "metrics": (t._callback_metrics, t._logged_metrics, t._pbar_metrics),
            "results": t._results,
            "fit_loop": copy.deepcopy(t.fit_loop.state_dict()),
        }
        t.callbacks = list(self.callbacks)
        build_callback_table(t)
        t.loggers = []
        return self

    def reset_fit_loop(self) -> None:
        """The fit loop's counters as they were when the search started (not restarting)."""
        loop = self.trainer.fit_loop
        loop.load_state_dict(copy.deepcopy(self.saved["fit_loop"]))
        inner = loop.epoch_loop
        for owner in (loop, inner, inner.automatic_optimization, inner.manual_optimization):
            owner.restarting = False

    def __exit__(self, *exc: Any) -> None:
        t, saved = self.trainer, self.saved
        t.lightning_module.load_state_dict(saved["model"])
        for optimizer, state in zip(t.optimizers, saved["optimizers"]):
            optimizer.load_state_dict(state)
        t.lr_scheduler_configs = saved["configs"]
        for config, state in zip(t.lr_scheduler_configs, saved["schedulers"]):
            config.scheduler.load_state_dict(state)
        t.callbacks, t._cb = saved["callbacks"]
        t.loggers = saved["loggers"]
        for key, value in saved["limits"].items():
            setattr(t, key, value)
        t.fit_loop.max_steps = saved["max_steps"]
        t._callback_metrics, t._logged_metrics, t._pbar_metrics = saved["metrics"]
        t._results = saved["results"]
        self.reset_fit_loop()
        t.should_stop = False


# ------------------------------------------------------------------------------ the search
_LR_ATTRS = ("lr", "learning_rate")


def _lr_attribute(model: Any, attr_name: str) -> str:
    """Where the module keeps its learning rate: ``attr_name``, or ``lr``/``learning_rate``
    on the module or in its ``hparams``."""
    hparams = getattr(model, "hparams", None) or {}
    if attr_name:
        if hasattr(model, attr_name) or attr_name in hparams:
            return attr_name
        raise AttributeError(
            f"The attribute name for the learning rate was set to {attr_name!r}, but the "
            "model has no such attribute (or hparams entry)."
        )
    for name in _LR_ATTRS:
        if hasattr(model, name) or name in hparams:
            return name
    raise AttributeError(
        "When using the learning rate finder either specify in `attr_name` the name of the "
        "attribute of the model that holds the learning rate, or give the model a `lr` or "
        "`learning_rate` attribute (or hparams entry)."
    )


def _set_lr_attribute(model: Any, name: str, value: float) -> None:
    if name in (getattr(model, "hparams", None) or {}):
        model.hparams[name] = value
    if hasattr(model, name):
        setattr(model, name, value)


def lr_find(
    trainer: Any,
    model: Any,
    min_lr: float = 1e-8,
    max_lr: float = 1.0,
    num_training: int = 100,
    mode: str = "exponential",
    early_stop_threshold: float | None = 4.0,
    update_attr: bool = False,
    attr_name: str = "",
) -> _LRFinder | None:
    """Runs the range test inside a ``fit`` that has configured its optimizers (see the module
    docstring); returns the results, or None under ``fast_dev_run``."""
    from runtime.loops.fit import fit_loop
    from runtime.optimization import LRSchedulerConfig

    if trainer.fast_dev_run:
        rank_zero_warn("Skipping learning rate finder since `fast_dev_run` is enabled.")
        return None
    if update_attr:
        attr_name = _lr_attribute(model, attr_name)
    if len(trainer.optimizers) != 1:
        raise MisconfigurationException(
            f"`model.configure_optimizers()` returned {len(trainer.optimizers)} optimizers, but "
            "the learning rate finder only works with a single optimizer."
        )
    optimizer = trainer.optimizers[0]
    finder = _LRFinder(mode, min_lr, max_lr, num_training)
    recorder = _RangeRecorder(early_stop_threshold)
    start_step = trainer.global_step
    with _SearchState(trainer, callbacks=[recorder]):
        for group in optimizer.param_groups:
            group["lr"] = min_lr
            group["initial_lr"] = min_lr
        schedule = _RangeSchedule(optimizer, max_lr, num_training, exponential=mode != "linear")
        trainer.lr_scheduler_configs = [LRSchedulerConfig(schedule, interval="step")]
        trainer.fit_loop.max_steps = num_training + start_step
        trainer.limit_val_batches = num_training
        fit_loop(trainer)
        if trainer.global_step != num_training + start_step:
            log.info(
                f"LR finder stopped early after {trainer.global_step} steps due to diverging loss."
            )
        finder.results = {"lr": recorder.lrs, "loss": recorder.losses}
    if update_attr:
        lr = finder.suggestion()
        if lr is not None:
            _set_lr_attribute(model, attr_name, lr)
            for group in optimizer.param_groups:  # the run that follows trains at that rate
                group["lr"] = lr
            log.info(f"Learning rate set to {lr}")
    return finder


class LearningRateFinder(Callback):
    """Runs the range test when ``fit`` starts (before the sanity check), then trains on from
    the model's original weights (with the suggested rate when ``update_attr``)."""

    SUPPORTED_MODES = ("linear", "exponential")

    def __init__(
        self,
        min_lr: float = 1e-8,
        max_lr: float = 1.0,
        num_training_steps: int = 100,
        mode: str = "exponential",
        early_stop_threshold: float | None = 4.0,
        update_attr: bool = True,
        attr_name: str = "",
    ) -> None:
        mode = mode.lower()
        if mode not in self.SUPPORTED_MODES:
            raise ValueError(f"`mode` should be either of {self.SUPPORTED_MODES}")
        self._min_lr = min_lr
        self._max_lr = max_lr
        self._num_training_steps = num_training_steps
        self._mode = mode
        self._early_stop_threshold = early_stop_threshold
        self._update_attr = update_attr
        self._attr_name = attr_name
        self._early_exit = False
        self.optimal_lr: _LRFinder | None = None

    def lr_find(self, trainer: Any, pl_module: Any) -> None:
        self.optimal_lr = lr_find(
            trainer,
            pl_module,
            min_lr=self._min_lr,
            max_lr=self._max_lr,
            num_training=self._num_training_steps,
            mode=self._mode,
            early_stop_threshold=self._early_stop_threshold,
            update_attr=self._update_attr,
            attr_name=self._attr_name,
        )
        if self._early_exit:
            raise _TunerExitException()

    def on_fit_start(self, trainer: Any, pl_module: Any) -> None:
        self.lr_find(trainer, pl_module)


class Tuner:
    """``Tuner(trainer).lr_find(model, ...)`` (the learning-rate range test, ``fit`` only) and
    ``Tuner(trainer).scale_batch_size(model, ...)`` (the largest batch size that fits in memory,
    for ``fit``, ``validate``, ``test`` or ``predict``), with the trainer's settings."""

    def __init__(self, trainer: Any) -> None:
        self._trainer = trainer

    def lr_find(
        self,
        model: Any,
        train_dataloaders: Any = None,
        val_dataloaders: Any = None,
        dataloaders: Any = None,
        datamodule: Any = None,
        method: str = "fit",
        min_lr: float = 1e-8,
        max_lr: float = 1.0,
        num_training: int = 100,
        mode: str = "exponential",
        early_stop_threshold: float | None = 4.0,
        update_attr: bool = True,
        attr_name: str = "",
    ) -> _LRFinder | None:
        if method != "fit":
            raise MisconfigurationException(
                "method='fit' is the only valid configuration to run lr finder."
            )
        if dataloaders is not None:
            raise MisconfigurationException(
                "`Tuner.lr_find(dataloaders=...)` is for other methods than fit; pass "
                "`train_dataloaders=` (and `val_dataloaders=`) or a `datamodule=`."
            )
        finder = LearningRateFinder(
            min_lr=min_lr,
            max_lr=max_lr,
            num_training_steps=num_training,
            mode=mode,
            early_stop_threshold=early_stop_threshold,
            update_attr=update_attr,
            attr_name=attr_name,
        )
        self._search(finder, "fit", model, train_dataloaders, val_dataloaders, None, datamodule)
        return finder.optimal_lr

    def _search(
        self, finder: Any, method: str, model: Any, train: Any, val: Any, loaders: Any, dm: Any
    ) -> None:
        """Runs ``method`` with ``finder`` first among the callbacks; it searches when the stage
        starts and ends the stage once done. Refuses a Trainer that has such a callback."""
        trainer = self._trainer
        kind = type(finder)
        if any(isinstance(cb, kind) for cb in trainer.callbacks):
            raise ValueError(
                f"Trainer is already configured with a `{kind.__name__}` callback. Please "
                "remove it if you want to use the Tuner."
            )
        finder._early_exit = True
        trainer.callbacks = [finder, *trainer.callbacks]
        try:
            if method == "fit":
                trainer.fit(model, train, val, dm)
            else:
                getattr(trainer, method)(model, loaders, datamodule=dm)
        finally:
            trainer.callbacks = [cb for cb in trainer.callbacks if cb is not finder]

    def scale_batch_size(
        self,
        model: Any,
        train_dataloaders: Any = None,
        val_dataloaders: Any = None,
        dataloaders: Any = None,
        datamodule: Any = None,
        method: str = "fit",
        mode: str = "power",
        steps_per_trial: int = 3,
        init_val: int = 2,
        max_trials: int = 25,
        batch_arg_name: str = "batch_size",
        margin: float = 0.05,
        max_val: int = 8192,
    ) -> int | None:
        """The largest batch size that fits in memory for ``method`` (see
        ``runtime.callbacks.batch_size_finder``); it is also set on the module (or datamodule)
        where ``batch_arg_name`` lives. Returns None under ``fast_dev_run``."""
        from runtime.callbacks.batch_size_finder import BatchSizeFinder
        from runtime.strategies.ddp import DDPStrategy

        _check_method(method, train_dataloaders, val_dataloaders, dataloaders)
        trainer = self._trainer
        if isinstance(trainer.strategy, DDPStrategy):
            raise ValueError(
                "Tuning the batch size is not supported with distributed strategies; tune "
                "on one device and set the batch size for the distributed run."
            )
        finder = BatchSizeFinder(
            mode=mode,
            steps_per_trial=steps_per_trial,
            init_val=init_val,
            max_trials=max_trials,
            batch_arg_name=batch_arg_name,
            margin=margin,
            max_val=max_val,
        )
        self._search(
            finder, method, model, train_dataloaders, val_dataloaders, dataloaders, datamodule
        )
        return finder.optimal_batch_size


_METHODS = ("fit", "validate", "test", "predict")


def _check_method(method: str, train: Any, val: Any, dataloaders: Any) -> None:
    if method not in _METHODS:
        raise ValueError(f"method {method!r} is invalid. Should be one of {_METHODS}.")
    if method == "fit" and dataloaders is not None:
        raise MisconfigurationException(
            "In tuner with method='fit', `dataloaders` argument should be None, please consider "
            "setting `train_dataloaders` and `val_dataloaders` instead."
        )
    if method != "fit" and (train is not None or val is not None):
        raise MisconfigurationException(
            f"In tuner with `method`={method!r}, `train_dataloaders` and `val_dataloaders` "
            "arguments should be None, please consider setting `dataloaders` instead."
        )
