"""The stage sequence and the loops, as plain functions over a ``Trainer``.

Hook order follows Lightning 2.6 (``shared/conformance/lightning_hook_order.json``). One
deliberate difference: a train loader is iterated exactly like ``for batch in loader:``
(to exhaustion, no prefetch), so a script moved onto the runtime consumes data and random
numbers in the order its hand-written loop did. Validation that Lightning runs inside the
last batch therefore runs right after the loader is exhausted; hooks see the same order.
"""

from __future__ import annotations

import contextlib
import inspect
import math
import os
import time
from typing import Any

import torch

from runtime.callbacks.base import Callback, Checkpoint
from runtime.checkpoint import RNG_KEY, load_file
from runtime.data import DataSource
from runtime.errors import MisconfigurationException
from runtime.optimization import LightningOptimizer, parse_configure_optimizers
from runtime.rank_zero import rank_zero_info, rank_zero_warn, warn_once
from runtime.results import Results
from runtime.seed import collect_rng_states, isolate_rng, set_rng_states
from runtime.states import TrainerFn, TrainerStatus
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


# ---------------------------------------------------------------------- hook dispatch
def build_callback_table(trainer: Any) -> None:
    """For every hook, the bound methods of the callbacks that override it (computed once)."""
    from runtime.callbacks.early_stopping import EarlyStopping

    table: dict[str, list] = {}
    names = [n for n in vars(Callback) if n.startswith(("on_", "setup", "teardown"))]
    for name in names:
        table[name] = [
            getattr(cb, name) for cb in trainer.callbacks if is_overridden(name, cb, Callback)
        ]
    monitoring = (Checkpoint, EarlyStopping)
    table["on_train_epoch_end:plain"] = [
        cb.on_train_epoch_end
        for cb in trainer.callbacks
        if not isinstance(cb, monitoring) and is_overridden("on_train_epoch_end", cb, Callback)
    ]
    table["on_train_epoch_end:monitor"] = [
        cb.on_train_epoch_end
        for cb in trainer.callbacks
        if isinstance(cb, monitoring) and is_overridden("on_train_epoch_end", cb, Callback)
    ]
    trainer._cb = table


def call_cb(trainer: Any, name: str, *args: Any, **kwargs: Any) -> None:
    fns = trainer._cb[name]
    if fns:
        results = trainer._results
        if results is not None:
            results.fx = name.split(":")[0]
        module = trainer.lightning_module
        for fn in fns:
            fn(trainer, module, *args, **kwargs)


def call_lm(trainer: Any, name: str, *args: Any, **kwargs: Any) -> Any:
    results = trainer._results
    if results is not None:
        results.fx = name
    return getattr(trainer.lightning_module, name)(*args, **kwargs)


def call_both(trainer: Any, name: str, *args: Any) -> None:
    call_cb(trainer, name, *args)
    call_lm(trainer, name, *args)


# ---------------------------------------------------------------------- stage entry
def run_stage(
    trainer: Any,
    fn: str,
    model: Any,
    datamodule: Any,
    given: dict[str, Any],
    ckpt_path: Any,
    weights_only: bool | None,
    verbose: bool = True,
    return_predictions: bool = True,
) -> Any:
    t = trainer
    t.state.fn, t.state.status = TrainerFn(fn), TrainerStatus.RUNNING
    t.interrupted = False
    if fn == "fit":
        t.should_stop = False
    t.strategy.setup_environment()
    t.lightning_module = model
    model._trainer = t
    t.datamodule = datamodule
    if datamodule is not None:
        datamodule.trainer = t
    t._data = DataSource(t, model, datamodule, given)
    t._callback_metrics, t._logged_metrics, t._pbar_metrics = {}, {}, {}
    t._eval_steps = {"val": 0, "test": 0}
    t._start_time = time.monotonic()
    t._results = None if t.barebones else Results("setup")
    anomaly = (
        torch.autograd.set_detect_anomaly(True)
        if t.detect_anomaly and fn == "fit"
        else contextlib.nullcontext()
    )
    try:
        with anomaly:
            out = _run(t, fn, ckpt_path, weights_only, verbose, return_predictions)
        t.state.status = TrainerStatus.FINISHED
        return out
    except KeyboardInterrupt as e:
        rank_zero_info("\nDetected KeyboardInterrupt, attempting graceful shutdown ...")
        _interrupt(t, e)
        t.interrupted = True
        rank_zero_warn(
            f"`trainer.{fn}` was interrupted by the user (KeyboardInterrupt); the last "
            "complete checkpoint is kept. Code after this call runs as usual."
        )
        return [] if fn in ("validate", "test") else None
    except BaseException as e:
        _interrupt(t, e)
        raise
    finally:
        t.state.stage = None
        t._results = None
        t._train_results = None
        t.strategy.teardown()


def _interrupt(t: Any, exception: BaseException) -> None:
    t.state.status = TrainerStatus.INTERRUPTED
    t.strategy.on_exception(exception)
    module = t.lightning_module
    for cb in t.callbacks:
        cb.on_exception(t, module, exception)
    if t.datamodule is not None:
        t.datamodule.on_exception(exception)
    for lg in t.loggers:
        lg.finalize("failed")


def _run(
    t: Any,
    fn: str,
    ckpt_path: Any,
    weights_only: bool | None,
    verbose: bool,
    return_predictions: bool,
) -> Any:
    from runtime.connector import merge_model_callbacks

    model, dm, strategy = t.lightning_module, t.datamodule, t.strategy
    model_cbs = call_lm(t, "configure_callbacks")
    if model_cbs:
        t.callbacks = merge_model_callbacks(t.callbacks, model_cbs)
    build_callback_table(t)
    _prepare_data(t)
    model._device = strategy.root_device
    if dm is not None:
        dm.setup(stage=fn)
    call_cb(t, "setup", stage=fn)
    call_lm(t, "setup", stage=fn)
    if overridden(model, "configure_model"):
        call_lm(t, "configure_model")
    ckpt = None
    if ckpt_path is None and fn == "fit" and _on_exception_callbacks(t):
        ckpt_path = "last"  # as Lightning: a fit with OnExceptionCheckpoint resumes by default
        rank_zero_warn(
            "`.fit(ckpt_path=None)` was called with an `OnExceptionCheckpoint`: the last model of "
            "the previous `fit` call is used if there is one. Pass `fit(ckpt_path=...)` to choose; "
            "passing a value silences this warning."
        )
    if ckpt_path is not None:
        path = resolve_ckpt_path(t, ckpt_path, fn)
        if path is not None:
            ckpt = load_file(path, map_location=strategy.root_device, weights_only=weights_only)
            t.ckpt_path = path
            t._resumed_ckpt_path = os.path.realpath(path) if fn == "fit" else None
            restore_module_state(t, ckpt)
    model = t._precision.convert_module(model)
    strategy.setup_module(model, fn)
    if fn == "fit":
        configure_optimizers(t)
    _log_hyperparams(t)
    _prepare_step_fns(t)
    if fn == "fit":
        result = _fit(t, ckpt)
    else:
        call_lm(t, "zero_grad")
        result = (
            run_eval_stage(t, fn, verbose)
            if fn != "predict"
            else t.predict_loop.run(t, return_predictions)
        )
    if dm is not None:
        dm.teardown(stage=fn)
    call_cb(t, "teardown", stage=fn)
    call_lm(t, "teardown", stage=fn)
    for lg in t.loggers:
        lg.finalize("success")
    return result


def _prepare_data(t: Any) -> None:
    """Once per node (local rank 0), or once in all (global rank 0) with ``prepare_data_per_node=False``."""
    model, dm = t.lightning_module, t.datamodule
    for obj, is_dm in ((dm, True), (model, False)):
        if obj is None or not (
            _dm_overrides(obj, "prepare_data") if is_dm else overridden(obj, "prepare_data")
        ):
            continue
        per_node = getattr(obj, "prepare_data_per_node", True)
        if (t.local_rank if per_node else t.global_rank) == 0:
            obj.prepare_data() if is_dm else call_lm(t, "prepare_data")
    if t.world_size > 1:
        t.strategy.barrier("prepare_data")


def _dm_overrides(dm: Any, name: str) -> bool:
    from runtime.datamodule import LightningDataModule

    return is_overridden(name, dm, LightningDataModule)


def _log_hyperparams(t: Any) -> None:
    if not t.loggers or not t.enable_autolog_hparams:
        return
    model, dm = t.lightning_module, t.datamodule
    hp: dict[str, Any] = {}
    if dm is not None and getattr(dm, "_log_hyperparams", True):
        hp.update(dm.hparams_initial)
    if getattr(model, "_log_hyperparams", True):
        hp.update(model.hparams_initial)
    for lg in t.loggers:
        lg.log_hyperparams(hp)
        lg.log_graph(model)
        lg.save()


# ---------------------------------------------------------------------- optimizers
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
            "`training_step` has an `optimizer_idx` argument, which was removed in Lightning 2.0. "
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


# ---------------------------------------------------------------------- checkpoints
def resolve_ckpt_path(t: Any, ckpt_path: Any, fn: str) -> str | None:
    """The file that ``ckpt_path`` (a path, ``"best"``, ``"last"``) names, or None.

    ``"last"`` is the newest of ``ModelCheckpoint``'s last file(s) and the files of
    ``OnExceptionCheckpoint`` callbacks, so a run that crashed resumes from where it stopped."""
    if ckpt_path == "best":
        cb = t.checkpoint_callback
        if cb is None:
            raise ValueError(
                f'`.{fn}(ckpt_path="best")` is set but `ModelCheckpoint` is not configured. Add one, '
                "or pass a path."
            )
        if not getattr(cb, "best_model_path", ""):
            raise ValueError(
                f"`.{fn}(ckpt_path='best')` is set but `ModelCheckpoint` has not saved any "
                "checkpoint yet. Fit first, or pass a path."
            )
        return cb.best_model_path
    if ckpt_path == "last":
        candidates = {cb.ckpt_path for cb in _on_exception_callbacks(t)}
        for cb in t.checkpoint_callbacks:
            if not hasattr(cb, "last_model_path"):
                continue
            last_name = getattr(cb, "CHECKPOINT_NAME_LAST", "last") or "last"
            folder = cb.dirpath or cb._resolve_dir(t)
            candidates.add(cb.last_model_path or _newest_ckpt(folder, last_name))
        existing = {p: os.path.getmtime(p) for p in candidates if p and os.path.isfile(p)}
        if not existing:
            rank_zero_warn(
                f'.{fn}(ckpt_path="last") is set, but there is no last checkpoint available. No '
                "checkpoint will be loaded. HINT: Set `ModelCheckpoint(..., save_last=True)`."
            )
            return None
        return max(existing, key=existing.__getitem__)
    if ckpt_path == "hpc":
        raise ValueError("ckpt_path='hpc' (SLURM auto-requeue) is not supported; pass a path.")
    return os.fspath(ckpt_path)


def _on_exception_callbacks(t: Any) -> list[Any]:
    from runtime.callbacks.on_exception import OnExceptionCheckpoint

    return [cb for cb in t.callbacks if isinstance(cb, OnExceptionCheckpoint)]


def _newest_ckpt(folder: str, name: str) -> str | None:
    """The newest ``*.ckpt`` in ``folder`` whose name holds ``name`` (``last``, ``last-v1``): as
    Lightning, never a per-epoch, exception or partial file."""
    if not folder or not os.path.isdir(folder):
        return None
    files = [
        os.path.join(folder, f)
        for f in os.listdir(folder)
        if f.endswith(".ckpt") and name in f and not f.startswith(".")
    ]
    return max(files, key=os.path.getmtime) if files else None


def restore_module_state(t: Any, ckpt: dict[str, Any]) -> None:
    model, dm = t.lightning_module, t.datamodule
    call_lm(t, "on_load_checkpoint", ckpt)
    for cb in t.callbacks:
        if is_overridden("on_load_checkpoint", cb, Callback):
            cb.on_load_checkpoint(t, model, ckpt)
    if t.state.fn == "fit":
        states = ckpt.get("callbacks") or {}
        for cb in t.callbacks:
            state = states.get(cb.state_key)
            if state is None and type(cb).__qualname__ in states:
                state = states[type(cb).__qualname__]
            if state:
                cb.load_state_dict(dict(state))
    if dm is not None:
        state = ckpt.get(type(dm).__qualname__)
        if state:
            dm.load_state_dict(state)
        dm.on_load_checkpoint(ckpt)
    result = model.load_state_dict(ckpt["state_dict"], strict=model.strict_loading)
    if result is not None and (result.missing_keys or result.unexpected_keys):
        warn_once(
            f"Checkpoint loaded with missing keys {result.missing_keys} and unexpected keys "
            f"{result.unexpected_keys}."
        )


def restore_training_state(t: Any, ckpt: dict[str, Any]) -> None:
    if "optimizer_states" not in ckpt:
        rank_zero_warn(
            "The checkpoint has no optimizer state (saved with weights_only=True?); "
            "training resumes with fresh optimizers."
        )
    else:
        states = ckpt["optimizer_states"]
        if len(states) != len(t.optimizers):
            raise MisconfigurationException(
                f"The checkpoint holds {len(states)} optimizer state(s) but `configure_optimizers` "
                f"returned {len(t.optimizers)} optimizer(s). Resume with the same optimizer setup."
            )
        for opt, state in zip(t.optimizers, states):
            t.strategy.load_optimizer_state(opt, state)
        for cfg, state in zip(t.lr_scheduler_configs, ckpt.get("lr_schedulers", [])):
            cfg.scheduler.load_state_dict(state)
    precision_state = ckpt.get(t._precision.state_key)
    if precision_state:
        t._precision.load_state_dict(precision_state)
    fit = (ckpt.get("loops") or {}).get("fit_loop") or {}
    epoch_prog = (fit.get("epoch_progress") or {}).get("current") or {}
    batch_prog = fit.get("epoch_loop.batch_progress") or {}
    stepped = (fit.get("epoch_loop.state_dict") or {}).get("_batches_that_stepped", 0)
    t.global_step = int(ckpt.get("global_step", 0))
    epoch = int(ckpt.get("epoch", 0))
    processed = epoch_prog.get("processed", epoch + 1)
    completed = epoch_prog.get("completed", epoch)
    if processed > completed or batch_prog.get("is_last_batch", True):
        t.current_epoch, t._resume_skip = epoch + 1, 0
        t._batches_that_stepped = stepped
    else:
        t.current_epoch = epoch
        t._resume_skip = int((batch_prog.get("current") or {}).get("processed", 0))
        t._batches_that_stepped = stepped + 1
    t._counters.epoch_processed = t.current_epoch
    rng = ckpt.get(RNG_KEY)
    t._resume_rng = rng if rng and rng.get("world_size", 1) == t.world_size else None


def rng_checkpoint_state(t: Any) -> Any:
    if t.state.fn != "fit" or t._data is None or t._data.train_loader is None:
        return None
    now = {"global": collect_rng_states(), "loader": _loader_gen_states(t._data.train_loader)}
    mid_epoch = not t._counters.is_last_batch and t._counters.batches_in_epoch > 0
    return {
        "now": now,
        "epoch_start": t._epoch_start_rng if mid_epoch else None,
        "world_size": t.world_size,
    }


def _loader_generators(loader: Any) -> list[torch.Generator]:
    gens: list[torch.Generator] = []
    for obj in (
        loader,
        getattr(loader, "sampler", None),
        getattr(getattr(loader, "batch_sampler", None), "sampler", None),
    ):
        g = getattr(obj, "generator", None)
        if isinstance(g, torch.Generator) and all(g is not x for x in gens):
            gens.append(g)
    return gens


def _loader_gen_states(loader: Any) -> list[torch.Tensor]:
    return [g.get_state() for g in _loader_generators(loader)]


def _set_rng(state: dict[str, Any], loader: Any) -> None:
    set_rng_states(state["global"])
    gens = _loader_generators(loader)
    if len(gens) == len(state["loader"]):
        for g, s in zip(gens, state["loader"]):
            g.set_state(s)


# ---------------------------------------------------------------------- fit
def _fit(t: Any, ckpt: dict[str, Any] | None) -> None:
    t.training = True
    t._resume_skip = 0
    t._resume_rng = None
    t._validation_ran = False
    call_both(t, "on_fit_start")
    if ckpt is not None:
        restore_training_state(t, ckpt)
    call_lm(t, "zero_grad")
    run_sanity_check(t)
    fit_loop(t)
    call_both(t, "on_train_end")
    call_both(t, "on_fit_end")


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
    batch = t._precision.convert_input(batch)
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


def run_sanity_check(t: Any) -> None:
    n = t.num_sanity_val_steps
    if not n or not t._data.has_val or t.limit_val_batches == 0:
        return
    t.sanity_checking = True
    try:
        with isolate_rng():
            call_cb(t, "on_sanity_check_start")
            loaders = t._data.load_eval("val")
            counts = [min(c, n) for c in t._data.eval_counts["val"]]
            t.num_sanity_val_batches = counts
            run_eval(t, "val", loaders, counts, in_fit=True)
            call_cb(t, "on_sanity_check_end")
    finally:
        t.training = True  # back to the stage the sanity check interrupted
        t._results = t._train_results
        # what the sanity check logged is not a result (Lightning: reset_metrics)
        t._callback_metrics, t._logged_metrics, t._pbar_metrics = {}, {}, {}


def _done(t: Any) -> bool:
    if t.max_steps != -1 and t.global_step >= t.max_steps:
        return True
    if t.max_epochs not in (-1, None) and t.current_epoch >= t.max_epochs:
        return True
    if t._time_is_up():
        return True
    if t.should_stop:
        if _can_stop_early(t):
            return True
        rank_zero_info(
            f"Trainer was signaled to stop but the required `min_epochs="
            f"{t.min_epochs}` or `min_steps={t.min_steps}` has not been met. Training "
            "will continue..."
        )
        t.should_stop = False
    return False


def _can_stop_early(t: Any) -> bool:
    return t.current_epoch >= (t.min_epochs or 0) and t.global_step >= (t.min_steps or 0)


def fit_loop(t: Any) -> None:
    data = t._data
    t._train_results = Results("train", sync=t._sync_fn()) if not t.barebones else None
    t._results = t._train_results
    loader = data.load_train()
    n, every = t.num_training_batches, t.log_every_n_steps
    if t.loggers and every and n != math.inf and n < every and not t.fast_dev_run:
        rank_zero_warn(
            f"The number of training batches ({int(n)}) is smaller than the logging "
            f"interval Trainer(log_every_n_steps={every}). Set a lower value for "
            "log_every_n_steps if you want to see logs for the training epoch."
        )
    cvne = t.check_val_every_n_epoch
    if (
        t._has_val_batches()
        and "val" not in data.eval_loaders
        and (cvne is None or (t.current_epoch + 1) % cvne == 0)
    ):
        # as Lightning: the validation loaders are known before training starts (progress bars
        # and callbacks read their length in on_train_start) even without a sanity check
        t.validating = True
        data.load_eval("val")
        t.training = True
    t._last_val_time = time.monotonic()  # a time-based val_check_interval counts from here
    call_both(t, "on_train_start")
    if t.num_training_batches == 0:
        rank_zero_info("`Trainer.fit` stopped: No training batches.")
        return
    first = True
    while not _done(t):
        reload = t.reload_dataloaders_every_n_epochs
        if not first and reload and t.current_epoch % reload == 0:
            loader = data.load_train()
            if data.has_val and "val" in data.eval_loaders:
                data.eval_loaders.pop("val")
        _set_sampler_epoch(loader, t.current_epoch)
        t._counters.new_epoch()
        call_both(t, "on_train_epoch_start")
        if first and t._resume_rng is not None:
            rng = t._resume_rng
            _set_rng(rng["epoch_start"] or rng["now"], loader)
        t._epoch_start_rng = {"global": collect_rng_states(), "loader": _loader_gen_states(loader)}
        run_train_epoch(t, loader, resume_rng=t._resume_rng if first else None)
        first = False
        _train_epoch_end(t)
    if t.max_steps != -1 and t.global_step >= t.max_steps:
        rank_zero_info(f"`Trainer.fit` stopped: `max_steps={t.max_steps}` reached.")
    elif t.max_epochs not in (-1, None) and t.current_epoch >= t.max_epochs:
        rank_zero_info(f"`Trainer.fit` stopped: `max_epochs={t.max_epochs}` reached.")


def _set_sampler_epoch(loader: Any, epoch: int) -> None:
    for obj in (
        getattr(loader, "sampler", None),
        getattr(getattr(loader, "batch_sampler", None), "sampler", None),
    ):
        set_epoch = getattr(obj, "set_epoch", None)
        if callable(set_epoch):
            set_epoch(epoch)


def _val_check_batch(t: Any) -> float:
    if t._val_check_time_interval is not None:
        return math.inf  # validation is due by the clock (see ``_time_for_val``), not by batches
    n, interval = t.num_training_batches, t.val_check_interval
    if isinstance(interval, int):
        if t.check_val_every_n_epoch is not None and n != math.inf and interval > n:
            raise ValueError(
                f"`val_check_interval` ({interval}) must be less than or equal to the number of "
                f"the training batches ({int(n)}). If you want to disable validation set "
                "`limit_val_batches` to 0.0 instead. If you want to validate based on the total "
                "training batches, set `check_val_every_n_epoch=None`."
            )
        return float(interval)
    if n == math.inf:
        return math.inf
    return float(max(1, int(n * interval)))


def run_train_epoch(t: Any, loader: Any, resume_rng: Any = None) -> None:
    n = t.num_training_batches
    counters = t._counters
    try:
        full = len(loader)
    except (TypeError, NotImplementedError):
        full = math.inf
    early_break = n < full
    val_every = _val_check_batch(t)
    cvne = t.check_val_every_n_epoch
    val_epoch = t._has_val_batches() and (cvne is None or (t.current_epoch + 1) % cvne == 0)
    skip = t._resume_skip
    t._resume_skip = 0
    batch_idx = -1
    pending = None  # the last batch's post-processing, run after the loader is exhausted
    for batch in loader:
        batch_idx += 1
        if batch_idx < skip:
            if batch_idx + 1 == skip and resume_rng is not None:
                _set_rng(resume_rng["now"], loader)
            counters.batches_in_epoch += 1
            continue
        is_last = batch_idx + 1 == n
        counters.is_last_batch = is_last
        stepped = train_batch(t, batch, batch_idx, is_last)
        if stepped is SKIP_EPOCH:
            # As Lightning: the skipped batch is the epoch's last, so epoch schedulers step and
            # epoch-end validation runs.
            counters.is_last_batch = True
            step_schedulers(t, "epoch")
            if val_epoch:
                _run_fit_validation(t)
            return
        total_idx = counters.batches_total - 1
        idx_for_val = total_idx if cvne is None else batch_idx
        check_val = val_epoch and (
            (val_every != math.inf and (idx_for_val + 1) % val_every == 0)
            or (t.should_stop and _can_stop_early(t))
            or _time_for_val(t)
        )
        if is_last:
            pending = (stepped, check_val)
            if early_break:
                break
            continue
        _after_batch(t, stepped, check_val)
        if _done_mid_epoch(t) or (early_break and batch_idx + 1 >= n):
            break
    if pending is None and batch_idx >= 0 and full == math.inf and n == math.inf:
        # no length: the end of the epoch was only known at StopIteration
        counters.is_last_batch = True
        step_schedulers(t, "epoch")
        if val_epoch:
            _run_fit_validation(t)
        return
    if pending is not None:
        by_batches = t._val_check_time_interval is None
        _after_batch(t, *pending, last=val_epoch and by_batches and val_every == math.inf)


def _time_for_val(t: Any) -> bool:
    """Time-based ``val_check_interval``: validate once that long has passed since the last
    validation (or the start of training), at whatever batch that is, as Lightning 2.6."""
    interval = t._val_check_time_interval
    return interval is not None and time.monotonic() - t._last_val_time >= interval


def _after_batch(t: Any, stepped: bool, check_val: bool, last: bool = False) -> None:
    if check_val or last:
        _run_fit_validation(t, zero_grad=stepped)
    step_schedulers(t, "step", plateau=True)
    if stepped:
        t._batches_that_stepped += 1


def _done_mid_epoch(t: Any) -> bool:
    if t.max_steps != -1 and t.global_step >= t.max_steps:
        return True
    if t.should_stop and _can_stop_early(t):
        return True
    return t._time_is_up()


def _run_fit_validation(t: Any, zero_grad: bool = True) -> None:
    data = t._data
    if "val" not in data.eval_loaders:
        data.load_eval("val")
    counts = data.eval_counts["val"]
    if not any(counts):
        return
    if zero_grad:
        call_lm(t, "on_validation_model_zero_grad")
    t.validating = True  # and so no longer training
    try:
        run_eval(t, "val", data.eval_loaders["val"], counts, in_fit=True)
    finally:
        t.training = True
        t._results = t._train_results
    t._validation_ran = True


def _train_epoch_end(t: Any) -> None:
    counters = t._counters
    counters.epoch_processed += 1
    results = t._train_results
    if results is not None:
        results.epoch_ended = True
    _publish_epoch(t, results)
    call_cb(t, "on_train_epoch_end:plain")
    call_lm(t, "on_train_epoch_end")
    # again: LightningModule.on_train_epoch_end may log what the monitoring callbacks read
    logged = _publish_epoch(t, results)
    call_cb(t, "on_train_epoch_end:monitor")
    step_plateau_epoch(t)
    if results is not None:
        _send_to_loggers(t, logged, step=t._batches_that_stepped - 1)
        results.reset()
    t.current_epoch += 1


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
        lg.log_metrics(scalars, step=step)
        lg.save()


# ---------------------------------------------------------------------- one training batch
def train_batch(t: Any, batch: Any, batch_idx: int, is_last: bool) -> Any:
    """Runs one batch; returns whether the optimizer stepped (or ``SKIP_EPOCH``)."""
    counters = t._counters
    counters.batches_total += 1
    counters.batches_in_epoch += 1
    counters.in_step = True
    batch = transfer(t, batch, 0)
    results = t._results
    if results is not None:
        results.batch = batch
        results.batch_size = None
    call_cb(t, "on_train_batch_start", batch, batch_idx)
    model = t.lightning_module
    if call_lm(t, "on_train_batch_start", batch, batch_idx) == -1:
        counters.in_step = False
        return SKIP_EPOCH
    if model._automatic_optimization:
        outputs, stepped = _automatic_step(t, batch, batch_idx, is_last)
    else:
        outputs, stepped = _manual_step(t, batch, batch_idx), True
    counters.in_step = False
    if stepped:
        step_schedulers(t, "step")
    if is_last:
        step_schedulers(t, "epoch")
    counters.in_batch_end = True
    call_cb(t, "on_train_batch_end", outputs, batch, batch_idx)
    call_lm(t, "on_train_batch_end", outputs, batch, batch_idx)
    counters.in_batch_end = False
    if stepped and results is not None and t._logger_should_update():
        cb, logged, pb = results.step_metrics()
        t._logged_metrics.update(logged)
        _send_to_loggers(t, logged, step=t._batches_that_stepped)
    return stepped


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
        with t._precision.step_context():
            if t._ts_takes_idx:
                out = t.strategy.training_step(model, self.batch, self.batch_idx)
            else:
                out = t.strategy.training_step(model, self.batch)
        loss, extra = _parse_training_output(out)
        self.ran = True
        if self.zero_grad:
            call_cb(t, "on_before_zero_grad", self.optimizer)
            call_lm(t, "on_before_zero_grad", self.optimizer)
            call_lm(t, "optimizer_zero_grad", t.current_epoch, self.batch_idx, self.optimizer)
            t._counters.zero_grad_total += 1
            t._counters.zero_grad_cur += 1
        if loss is None:
            self.output = None
            return None
        k = t.accumulate_grad_batches
        if k > 1:
            loss = loss / k
        backward(t, loss)
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
    closure = t.__dict__.get("_closure")
    if closure is None:
        closure = t._closure = _Closure(t)
    k = t.accumulate_grad_batches
    opt = t._lightning_optimizers[0]
    closure.batch, closure.batch_idx, closure.optimizer = batch, batch_idx, opt
    closure.zero_grad = batch_idx % k == 0
    closure.output, closure.ran = None, False
    should_step = k == 1 or (batch_idx + 1) % k == 0 or is_last
    if should_step:
        call_lm(t, "optimizer_step", t.current_epoch, batch_idx, opt, closure)
        if not closure.ran:
            warn_once(
                "`optimizer_step` did not call `optimizer.step(closure=optimizer_closure)`, "
                "so `training_step` did not run. Pass the closure to the optimizer."
            )
    else:
        with t.strategy.block_sync():
            closure()
    return closure.output, should_step


def _manual_step(t: Any, batch: Any, batch_idx: int) -> Any:
    model = t.lightning_module
    results = t._results
    if results is not None:
        results.fx = "training_step"
    with t._precision.step_context():
        args = (batch, batch_idx) if t._ts_takes_idx else (batch,)
        out = t.strategy.training_step(model, *args)
    if out is not None and not isinstance(out, (torch.Tensor, dict)):
        raise MisconfigurationException(
            "In manual optimization, `training_step` must either return a Tensor, a dict, or have "
            f"no return (got {type(out).__name__})."
        )
    return out


def backward(t: Any, loss: torch.Tensor, *args: Any, **kwargs: Any) -> None:
    call_cb(t, "on_before_backward", loss)
    call_lm(t, "on_before_backward", loss)
    scaled = t._precision.scale_loss(loss)
    call_lm(t, "backward", scaled, *args, **kwargs)
    call_cb(t, "on_after_backward")
    call_lm(t, "on_after_backward")


def after_closure(t: Any, optimizer: Any) -> None:
    """Between the closure and the real step: hooks, then clipping (automatic mode only)."""
    call_cb(t, "on_before_optimizer_step", optimizer)
    call_lm(t, "on_before_optimizer_step", optimizer)
    if t.lightning_module._automatic_optimization:
        call_lm(
            t,
            "configure_gradient_clipping",
            optimizer,
            t.gradient_clip_val,
            t.gradient_clip_algorithm,
        )


def step_schedulers(t: Any, interval: str, plateau: bool = False) -> None:
    """Automatic optimization only: with manual optimization the user steps the schedulers
    (Lightning never does), so stepping here too would step them twice."""
    configs = t.lr_scheduler_configs
    if not configs or not t.lightning_module._automatic_optimization:
        return
    counters = t._counters
    for cfg in configs:
        if cfg.interval != interval or cfg.reduce_on_plateau != plateau:
            continue
        count = counters.batches_in_epoch if interval == "step" else t.current_epoch + 1
        if count % cfg.frequency:
            continue
        metric = None
        if plateau:
            metric = t.callback_metrics.get(cfg.monitor)
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
                    "update."
                )
                continue
        call_lm(t, "lr_scheduler_step", cfg.scheduler, metric)
        counters.sched_total += 1
        counters.sched_cur += 1


def step_plateau_epoch(t: Any) -> None:
    if any(c.reduce_on_plateau and c.interval == "epoch" for c in t.lr_scheduler_configs):
        step_schedulers(t, "epoch", plateau=True)


# ---------------------------------------------------------------------- evaluation
_EVAL = {
    "val": ("validation", "on_validation_model_eval", "on_validation_model_train"),
    "test": ("test", "on_test_model_eval", "on_test_model_train"),
}


def run_eval_stage(t: Any, fn: str, verbose: bool) -> list[dict[str, float]]:
    stage = "val" if fn == "validate" else "test"
    data = t._data
    if not overridden(t.lightning_module, "validation_step" if stage == "val" else "test_step"):
        raise MisconfigurationException(
            f"No `{'validation_step' if stage == 'val' else 'test_step'}()` method defined on "
            f"{type(t.lightning_module).__name__} to run `Trainer.{fn}`."
        )
    if (t.limit_val_batches if stage == "val" else t.limit_test_batches) == 0:
        return []  # as Lightning: no dataloader, no hooks
    loaders = data.load_eval(stage)
    setattr(t, "validating" if stage == "val" else "testing", True)
    logged = run_eval(t, stage, loaders, data.eval_counts[stage], in_fit=False)
    out = _results_per_loader(logged, len(loaders))
    if verbose and t.is_global_zero:
        _print_results(out, "Validate" if stage == "val" else "Test")
    return out


def run_eval(t: Any, stage: str, loaders: list, counts: list, in_fit: bool) -> dict[str, Any]:
    """The validation/test block: mode switch, start hooks, batches, epoch-end hooks, metrics.

    All of it (hooks included, as Lightning) runs without autograd: ``no_grad`` inside ``fit``,
    ``inference_mode`` for ``validate``/``test`` unless ``Trainer(inference_mode=False)``."""
    grad_ctx = torch.no_grad if in_fit or not t.inference_mode else torch.inference_mode
    with grad_ctx():
        return _run_eval(t, stage, loaders, counts)


def _run_eval(t: Any, stage: str, loaders: list, counts: list) -> dict[str, Any]:
    prefix, eval_hook, train_hook = _EVAL[stage]
    model = t.lightning_module
    sanity = t.sanity_checking
    results = Results(stage, sync=t._sync_fn()) if not t.barebones else None
    results_multi = len(loaders) > 1
    if results is not None:
        results.multi_dataloader = results_multi
    t._results = results
    t._data.current_eval_counts = counts
    modes = {m: m.training for m in model.modules()}
    call_lm(t, eval_hook)
    call_both(t, f"on_{prefix}_start")
    call_both(t, f"on_{prefix}_epoch_start")
    step_fn = getattr(model, f"{prefix}_step")
    takes_idx = _accepts(step_fn, "batch_idx", 2)
    if results_multi and not _accepts(step_fn, "dataloader_idx", 3):
        raise RuntimeError(
            f"You provided multiple `{stage}_dataloader`, but no `dataloader_idx` argument in "
            f"`{type(model).__name__}.{prefix}_step()`. Try adding `dataloader_idx=0` to its "
            "signature."
        )
    batches = 0
    for dl_idx, (loader, count) in enumerate(zip(loaders, counts)):
        if count == 0:
            continue
        extra = (dl_idx,) if results_multi else ()
        for batch_idx, batch in enumerate(loader):
            batch = transfer(t, batch, dl_idx)
            if results is not None:
                results.batch, results.batch_size, results.dataloader_idx = batch, None, dl_idx
            call_both(t, f"on_{prefix}_batch_start", batch, batch_idx, *extra)
            if results is not None:
                results.fx = f"{prefix}_step"
            with t._precision.step_context():
                args = (batch, batch_idx) if takes_idx else (batch,)
                out = t.strategy.run_step(model, f"{prefix}_step", *args, *extra)
            call_both(t, f"on_{prefix}_batch_end", out, batch, batch_idx, *extra)
            batches += 1
            if results is not None and not sanity:
                _, step_logged, _ = results.step_metrics()
                if step_logged:
                    t._logged_metrics.update(step_logged)
                    _send_to_loggers(t, step_logged, step=t._eval_steps[stage], epoch=False)
                t._eval_steps[stage] += 1
            if batch_idx + 1 >= count:
                break
    if stage == "val":
        t._counters.val_batches = batches
    if results is not None:
        results.epoch_ended = True
    call_both(t, f"on_{prefix}_epoch_end")
    logged: dict[str, Any] = {}
    if results is not None and not sanity:
        cb, logged, pb = results.epoch_metrics()
        t._callback_metrics.update(cb)
        t._logged_metrics.update(logged)
        t._pbar_metrics.update(pb)
    call_both(t, f"on_{prefix}_end")
    if overridden(model, train_hook):
        call_lm(t, train_hook)
    else:
        for m, mode in modes.items():
            m.training = mode
    if logged:
        _send_to_loggers(t, logged, step=t._batches_that_stepped)
    if results is not None:
        results.reset()  # logged torchmetrics start the next epoch empty (Lightning: reset_results)
    t._last_val_time = time.monotonic()
    return logged


def _results_per_loader(logged: dict[str, Any], n: int) -> list[dict[str, float]]:
    scalars = convert_tensors_to_scalars(logged)
    if n <= 1:
        return [scalars]
    out = []
    for i in range(n):
        suffix = f"/dataloader_idx_{i}"
        out.append(
            {k: v for k, v in scalars.items() if k.endswith(suffix) or "/dataloader_idx_" not in k}
        )
    return out


def _print_results(results: list[dict[str, float]], title: str) -> None:
    rows = [(k, v) for d in results for k, v in d.items()]
    if not rows:
        return
    w1 = max(len(f"{title} metric"), *(len(k) for k, _ in rows))
    w2 = max(len("DataLoader 0"), *(len(f"{v:.6g}") for _, v in rows))
    line = "─" * (w1 + w2 + 7)
    print(line)
    print(f"  {title + ' metric':<{w1}}   {'DataLoader 0':>{w2}}")
    print(line)
    for k, v in rows:
        print(f"  {k:<{w1}}   {v:>{w2}.6g}")
    print(line, flush=True)
