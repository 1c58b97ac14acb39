"""Hook dispatch, shared by every loop: which callbacks override which hook (computed once
per run), calling callbacks and the LightningModule (setting the ``self.log`` context), batch
transfer hooks, and handing logged metrics to the trainer's dicts and the loggers.

Every hook a loop runs goes through ``call_cb`` / ``call_lm`` / ``call_both``.
"""

from __future__ import annotations

import contextlib
import inspect
from typing import Any

from runtime.callbacks.base import Callback, Checkpoint
from runtime.rank_zero import warn_once
from runtime.utilities import convert_tensors_to_scalars, is_overridden

SKIP_EPOCH = object()


def overridden(module: Any, name: str) -> bool:
    from runtime.module import LightningModule

    return is_overridden(name, module, LightningModule)


def _accepts(fn: Any, name: str, min_args: int) -> bool:
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return True
    if name in params or any(p.kind == p.VAR_POSITIONAL for p in params.values()):
        return True
    return len(params) >= min_args


def calls(cb: Any, name: str) -> bool:
    """Whether callback hook ``name`` of ``cb`` has to be called. Lightning calls every callback
    hook; skipping inherited no-ops is only a shortcut, so a hook set on the instance (a wrapper
    that records calls) is always called."""
    return is_overridden(name, cb, Callback) or vars(cb).get(name) is not None


def build_callback_table(trainer: Any) -> None:
    """For every hook, the bound methods of the callbacks that override it (computed once)."""
    from runtime.callbacks.early_stopping import EarlyStopping

    table: dict[str, list] = {}
    names = [n for n in vars(Callback) if n.startswith(("on_", "setup", "teardown"))]
    for name in names:
        table[name] = [getattr(cb, name) for cb in trainer.callbacks if calls(cb, name)]
    monitoring = (Checkpoint, EarlyStopping)
    table["on_train_epoch_end:plain"] = [
        cb.on_train_epoch_end
        for cb in trainer.callbacks
        if not isinstance(cb, monitoring) and calls(cb, "on_train_epoch_end")
    ]
    table["on_train_epoch_end:monitor"] = [
        cb.on_train_epoch_end
        for cb in trainer.callbacks
        if isinstance(cb, monitoring) and calls(cb, "on_train_epoch_end")
    ]
    trainer._cb = table


def call_cb(trainer: Any, name: str, *args: Any, **kwargs: Any) -> None:
    fns = trainer._cb[name]
    if fns:
        results = trainer._results
        hook = name.split(":")[0]
        if results is not None:
            results.fx = hook
        module = trainer.lightning_module
        profiler = trainer._active_profiler
        for fn in fns:
            if profiler is None:
                fn(trainer, module, *args, **kwargs)
                continue
            owner = getattr(fn, "__self__", None)
            key = getattr(owner, "state_key", type(owner).__name__)
            with profiler.profile(f"[Callback]{key}.{hook}"):
                fn(trainer, module, *args, **kwargs)


def call_lm(trainer: Any, name: str, *args: Any, **kwargs: Any) -> Any:
    results = trainer._results
    if results is not None:
        results.fx = name
    module = trainer.lightning_module
    profiler = trainer._active_profiler
    if profiler is None:
        return getattr(module, name)(*args, **kwargs)
    with profiler.profile(f"[LightningModule]{type(module).__name__}.{name}"):
        return getattr(module, name)(*args, **kwargs)


_NOTHING = contextlib.nullcontext()


def profiled(trainer: Any, action: str) -> Any:
    """``with profiled(trainer, "run_training_epoch"):`` records the block with the trainer's
    profiler (a shared no-op context without one)."""
    profiler = trainer._active_profiler
    return _NOTHING if profiler is None else profiler.profile(action)


def profiled_step(trainer: Any, step: str) -> Any:
    """``profiled`` for the strategy's ``training_step``/``validation_step``/...: the action
    name (``[Strategy]SingleDeviceStrategy.training_step``) is only built when profiling."""
    profiler = trainer._active_profiler
    if profiler is None:
        return _NOTHING
    return profiler.profile(f"[Strategy]{type(trainer.strategy).__name__}.{step}")


def call_both(trainer: Any, name: str, *args: Any) -> None:
    call_cb(trainer, name, *args)
    call_lm(trainer, name, *args)


def _prepare_step_fns(t: Any) -> None:
    """Per-fit facts the per-step path would otherwise recompute (signatures, hook owners)."""
    model, dm = t.lightning_module, t.datamodule
    t._ts_takes_idx = _accepts(model.training_step, "batch_idx", 2)
    owner = {}
    for hook in ("on_before_batch_transfer", "transfer_batch_to_device", "on_after_batch_transfer"):
        if dm is not None and _dm_overrides(dm, hook):
            if overridden(model, hook):
                warn_once(
                    f"You have overridden `{hook}` in both the LightningModule and the "
                    "LightningDataModule. The DataModule's is used."
                )
            owner[hook] = getattr(dm, hook)
        else:
            owner[hook] = None
    t._transfer_owner = owner


def transfer(t: Any, batch: Any, dataloader_idx: int) -> Any:
    owner = t._transfer_owner
    results = t._results
    batch = t.strategy.precision_plugin.convert_input(batch)
    fn = owner["on_before_batch_transfer"]
    if results is not None:
        results.fx = "on_before_batch_transfer"
    model = t.lightning_module
    batch = (fn or model.on_before_batch_transfer)(batch, dataloader_idx)
    fn = owner["transfer_batch_to_device"]
    if results is not None:
        results.fx = "transfer_batch_to_device"
    batch = (fn or model.transfer_batch_to_device)(batch, t.strategy.root_device, dataloader_idx)
    fn = owner["on_after_batch_transfer"]
    if results is not None:
        results.fx = "on_after_batch_transfer"
    return (fn or model.on_after_batch_transfer)(batch, dataloader_idx)


def _publish_epoch(t: Any, results: Any) -> dict[str, Any]:
    """Moves the train results into the trainer's metric dicts; returns the logger's share."""
    if results is None:
        return {}
    for view in (results.step_metrics(), results.epoch_metrics()):
        cb, lg, pb = view
        t._callback_metrics.update(cb)
        t._logged_metrics.update(lg)
        t._pbar_metrics.update(pb)
    return lg


def _send_to_loggers(t: Any, metrics: dict[str, Any], step: int, epoch: bool = True) -> None:
    if not t.loggers or not metrics:
        return
    scalars = convert_tensors_to_scalars(metrics)
    if "step" in scalars:
        step = int(scalars.pop("step"))
    elif epoch:
        scalars.setdefault("epoch", t.current_epoch)
    for lg in t.loggers:
        lg.log_metrics(metrics=scalars, step=step)
        lg.save()


def _dm_overrides(dm: Any, name: str) -> bool:
    from runtime.datamodule import LightningDataModule

    return is_overridden(name, dm, LightningDataModule)
