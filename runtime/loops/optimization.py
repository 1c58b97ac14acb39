"""One training batch: ``configure_optimizers``, the closure (training_step, zero_grad,
backward) stepped by the optimizer in automatic optimization, the manual path, and the
learning-rate schedulers.
"""

from __future__ import annotations

import inspect
from typing import Any

import torch

from runtime.errors import MisconfigurationException
from runtime.loops.dispatch import (
    SKIP_EPOCH,
    _send_to_loggers,
    call_cb,
    call_lm,
    overridden,
    profiled_step,
    transfer,
)
from runtime.loops.progress import steps_optimizer
from runtime.optimization import LightningOptimizer, parse_configure_optimizers
from runtime.rank_zero import rank_zero_warn, warn_once


def configure_optimizers(t: Any) -> None:
    model = t.lightning_module
    out = call_lm(t, "configure_optimizers")
    opts, configs = parse_configure_optimizers(out, automatic=model._automatic_optimization)
    if model._automatic_optimization and len(opts) > 1:
        raise RuntimeError(
            "Training with multiple optimizers is only supported with manual optimization. Set "
            "`self.automatic_optimization = False` in `__init__`, then call `self.optimizers()`, "
            "`self.manual_backward(loss)` and `opt.step()` in `training_step`."
        )
    if model._automatic_optimization and _accepts_optimizer_idx(model):
        raise RuntimeError(
            "Training with multiple optimizers is only supported with manual optimization. Remove "
            "the `optimizer_idx` argument from `training_step` (removed in Lightning 2.0). "
            "Switch to manual optimization (`self.automatic_optimization = False`)."
        )
    if not model._automatic_optimization:
        if t.accumulate_grad_batches != 1:
            raise MisconfigurationException(
                "Automatic gradient accumulation is not supported for manual optimization. Remove "
                "`Trainer(accumulate_grad_batches=...)` and accumulate in `training_step`."
            )
        if t.gradient_clip_val:
            raise MisconfigurationException(
                "Automatic gradient clipping is not supported for manual optimization. Remove "
                "`Trainer(gradient_clip_val=...)` and call `self.clip_gradients(opt, "
                "gradient_clip_val=..., gradient_clip_algorithm=...)` in `training_step`."
            )
    for cfg in configs:
        if (
            model._automatic_optimization
            and not isinstance(
                cfg.scheduler,
                (torch.optim.lr_scheduler.LRScheduler, torch.optim.lr_scheduler.ReduceLROnPlateau),
            )
            and not overridden(model, "lr_scheduler_step")
        ):
            raise MisconfigurationException(
                f"The provided lr scheduler `{type(cfg.scheduler).__name__}` doesn't follow "
                "PyTorch's LRScheduler API. Override `LightningModule.lr_scheduler_step` to step it."
            )
    if not opts:
        opts = [_NoOptimizer()]
    t.optimizers = opts
    t._lightning_optimizers = [LightningOptimizer(o, t) for o in opts]
    t.lr_scheduler_configs = configs


def _accepts_optimizer_idx(model: Any) -> bool:
    try:
        return "optimizer_idx" in inspect.signature(model.training_step).parameters
    except (TypeError, ValueError):
        return False


class _NoOptimizer(torch.optim.Optimizer):
    """Stands in when ``configure_optimizers`` returns None: steps run the closure only."""

    def __init__(self) -> None:
        super().__init__([torch.zeros(1)], {})

    def step(self, closure: Any = None) -> Any:
        return closure() if closure is not None else None

    def zero_grad(self, set_to_none: bool = True) -> None: ...


def train_batch(t: Any, batch: Any, batch_idx: int, is_last: bool) -> Any:
    """Runs one batch; returns whether the optimizer stepped (or ``SKIP_EPOCH``)."""
    progress = t.fit_loop.epoch_loop.batch_progress
    progress.increment_ready()
    if batch is None:
        return _none_batch(t, batch_idx, is_last)
    progress.increment_started()  # started, not processed: an exception here re-runs it
    batch = transfer(t, batch, 0)
    results = t._results
    if results is not None:
        results.batch = batch
        results.batch_size = None
    call_cb(t, "on_train_batch_start", batch, batch_idx)
    model = t.lightning_module
    if call_lm(t, "on_train_batch_start", batch, batch_idx) == -1:
        progress.increment_processed()
        return SKIP_EPOCH
    if model._automatic_optimization:
        outputs, stepped = _automatic_step(t, batch, batch_idx, is_last)
    else:
        outputs, stepped = _manual_step(t, batch, batch_idx), True
    _finish_batch(t, outputs, batch, batch_idx, stepped, is_last)
    if stepped and results is not None and t._logger_should_update():
        cb, logged, pb = results.step_metrics()
        t._logged_metrics.update(logged)
        _send_to_loggers(t, logged, step=t._batches_that_stepped)
    return stepped


def _none_batch(t: Any, batch_idx: int, is_last: bool) -> bool:
    """A train loader that yielded ``None``: no batch-start hooks and no step, the batch-end
    hooks see ``None`` outputs; the counters and schedulers move on (as Lightning)."""
    warn_once("train_dataloader yielded None. If this was on purpose, ignore this warning...")
    stepped = steps_optimizer(batch_idx, t.accumulate_grad_batches, is_last)
    _finish_batch(t, None, None, batch_idx, stepped, is_last)
    return stepped


def _finish_batch(t: Any, outputs: Any, batch: Any, batch_idx: int, stepped: bool, is_last: bool):
    """After a batch's step: processed, the schedulers due, the batch-end hooks, completed."""
    progress = t.fit_loop.epoch_loop.batch_progress
    progress.increment_processed()
    if stepped:
        step_schedulers(t, "step")
    if is_last:
        step_schedulers(t, "epoch")
    call_cb(t, "on_train_batch_end", outputs, batch, batch_idx)
    call_lm(t, "on_train_batch_end", outputs, batch, batch_idx)
    progress.increment_completed()


def make_closure(t: Any, kwargs: dict[str, Any], optimizer: Any, batch_idx: int) -> _Closure:
    """A closure over ``kwargs["batch"]``: training_step -> zero_grad -> backward; calling it
    returns the (detached) loss, or None when training_step returned None."""
    closure = _Closure(t)
    closure.batch, closure.batch_idx = kwargs["batch"], kwargs.get("batch_idx", batch_idx)
    closure.optimizer = _lightning_optimizer(t, optimizer)
    closure.zero_grad, closure.output, closure.ran = True, None, False
    return closure


def run_automatic(t: Any, optimizer: Any, batch_idx: int, kwargs: dict[str, Any]) -> dict:
    """One automatic-optimization step on ``kwargs["batch"]`` through ``optimizer_step``: the
    step's outputs (``{"loss": ..., **extras}``, ``{}`` when training_step returned None)."""
    closure = make_closure(t, kwargs, optimizer, batch_idx)
    call_lm(t, "optimizer_step", t.current_epoch, batch_idx, closure.optimizer, closure)
    _check_ran(closure)
    return closure.output or {}


def _check_ran(closure: _Closure) -> None:
    """Lightning's check after each automatic step: an ``optimizer_step`` override, or an
    optimizer whose ``step(closure)`` never calls the closure, would step on gradients that
    ``training_step`` never computed."""
    if not closure.ran:
        raise MisconfigurationException(
            "The closure hasn't been executed. HINT: did you call `optimizer_closure()` in your "
            "`optimizer_step` hook? It could also happen because the "
            "`optimizer.step(optimizer_closure)` call did not execute it internally."
        )


def _lightning_optimizer(t: Any, optimizer: Any) -> Any:
    for lo in t._lightning_optimizers:
        if lo is optimizer or lo.optimizer is optimizer:
            return lo
    return optimizer


class _Closure:
    """``training_step`` -> zero_grad (window start) -> backward, as one re-runnable callable."""

    __slots__ = ("t", "batch", "batch_idx", "zero_grad", "output", "ran", "optimizer")

    def __init__(self, t: Any) -> None:
        self.t = t

    def __call__(self) -> Any:
        t = self.t
        model = t.lightning_module
        results = t._results
        if results is not None:
            results.fx = "training_step"
        args = (self.batch, self.batch_idx) if t._ts_takes_idx else (self.batch,)
        with t.strategy.precision_plugin.step_context(), profiled_step(t, "training_step"):
            out = t.strategy.training_step(model, *args)
        loss, extra = _parse_training_output(out)
        self.ran = True
        if self.zero_grad:
            call_cb(t, "on_before_zero_grad", self.optimizer)
            call_lm(t, "on_before_zero_grad", self.optimizer)
            call_lm(t, "optimizer_zero_grad", t.current_epoch, self.batch_idx, self.optimizer)
            zero_grad = t.fit_loop.epoch_loop.automatic_optimization.optim_progress.optimizer
            zero_grad = zero_grad.zero_grad
            zero_grad.increment_ready()
            zero_grad.increment_started()
            zero_grad.increment_completed()
        if loss is None:
            self.output = None
            return None
        k = t.accumulate_grad_batches
        if k > 1:
            loss = loss / k
        t.strategy.backward(loss, self.optimizer)
        detached = loss.detach()
        self.output = {"loss": detached, **extra} if extra else {"loss": detached}
        return detached


def _parse_training_output(out: Any) -> tuple[Any, dict]:
    if isinstance(out, torch.Tensor):
        return out, {}
    if out is None:
        warn_once("`training_step` returned `None`. If this was on purpose, ignore this warning...")
        return None, {}
    if isinstance(out, dict):
        if "loss" not in out:
            raise MisconfigurationException(
                "In automatic_optimization, when `training_step` returns a dict, the 'loss' key "
                f"needs to be present (got keys {sorted(out)})."
            )
        extra = {k: v for k, v in out.items() if k != "loss"}
        return out["loss"], extra
    raise MisconfigurationException(
        f"`training_step` returned a {type(out).__name__}; in automatic optimization it must "
        "return the loss tensor, a dict with a 'loss' key, or None (to skip the batch)."
    )


def _automatic_step(t: Any, batch: Any, batch_idx: int, is_last: bool) -> tuple[Any, bool]:
    closure = t._closure
    if closure is None:
        closure = t._closure = _Closure(t)
    k = t.accumulate_grad_batches
    opt = t._lightning_optimizers[0]
    closure.batch, closure.batch_idx, closure.optimizer = batch, batch_idx, opt
    closure.zero_grad = batch_idx % k == 0
    closure.output, closure.ran = None, False
    should_step = steps_optimizer(batch_idx, k, is_last)
    if should_step:
        call_lm(t, "optimizer_step", t.current_epoch, batch_idx, opt, closure)
        _check_ran(closure)
    else:
        with t.strategy.block_sync():
            closure()
    return closure.output, should_step


def _manual_step(t: Any, batch: Any, batch_idx: int) -> Any:
    model = t.lightning_module
    results = t._results
    if results is not None:
        results.fx = "training_step"
    with t.strategy.precision_plugin.step_context():
        args = (batch, batch_idx) if t._ts_takes_idx else (batch,)
        with profiled_step(t, "training_step"):
            out = t.strategy.training_step(model, *args)
    if out is not None and not isinstance(out, (torch.Tensor, dict)):
        raise MisconfigurationException(
            "In manual optimization, `training_step` must either return a Tensor, a dict, or have "
            f"no return (got {type(out).__name__})."
        )
    return out


def after_closure(t: Any, optimizer: Any) -> None:
    """Between the closure and the real step: hooks, then clipping (automatic mode only)."""
    call_cb(t, "on_before_optimizer_step", optimizer)
    call_lm(t, "on_before_optimizer_step", optimizer)
    if t.lightning_module._automatic_optimization:
        call_lm(
            t,
            "configure_gradient_clipping",
            optimizer,
            gradient_clip_val=t.gradient_clip_val,
            gradient_clip_algorithm=t.gradient_clip_algorithm,
        )


def step_schedulers(t: Any, interval: str, plateau: bool = False) -> None:
    """Automatic optimization only: with manual optimization the user steps the schedulers
    (Lightning never does), so stepping here too would step them twice."""
    configs = t.lr_scheduler_configs
    if not configs or not t.lightning_module._automatic_optimization:
        return
    loop = t.fit_loop.epoch_loop
    for cfg in configs:
        if cfg.interval != interval or cfg.reduce_on_plateau != plateau:
            continue
        count = loop.batch_progress.current.ready if interval == "step" else t.current_epoch + 1
        if count % cfg.frequency:
            continue
        metric = None
        if plateau:
            metric = loop._get_monitor_value(cfg.monitor)
            if metric is None:
                if cfg.strict:
                    raise MisconfigurationException(
                        f"ReduceLROnPlateau conditioned on metric {cfg.monitor!r} which is not "
                        f"available. Available metrics are: {sorted(t.callback_metrics)}. Condition "
                        "can be set using `monitor` key in lr scheduler dict."
                    )
                rank_zero_warn(
                    f"ReduceLROnPlateau conditioned on metric {cfg.monitor!r} which is "
                    "not available but strict is set to `False`. Skipping learning rate "
                    "update.",
                    category=RuntimeWarning,
                )
                continue
        call_lm(t, "lr_scheduler_step", cfg.scheduler, metric)
        loop.scheduler_progress.increment_ready()
        loop.scheduler_progress.increment_completed()


def step_plateau_epoch(t: Any) -> None:
    if any(c.reduce_on_plateau and c.interval == "epoch" for c in t.lr_scheduler_configs):
        step_schedulers(t, "epoch", plateau=True)
