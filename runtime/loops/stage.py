"""One ``fit`` / ``validate`` / ``test`` / ``predict`` call from start to end: set-up hooks,
checkpoint restore, the stage's loop, teardown, and what happens on an exception or Ctrl-C.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any

import torch

from runtime.checkpoint import (
    load_file,
    restore_module_state,
    take_rng_state,
)
from runtime.errors import _TunerExitException
from runtime.loops.dispatch import (
    _prepare_step_fns,
    build_callback_table,
    call_cb,
    call_lm,
    overridden,
    profiled,
)
from runtime.loops.evaluation import run_eval_stage
from runtime.loops.fit import _fit, resolve_limits
from runtime.loops.optimization import configure_optimizers
from runtime.rank_zero import rank_zero_info, rank_zero_warn
from runtime.results import Results
from runtime.states import TrainerFn, TrainerStatus


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
    model_provided: bool = True,
) -> Any:
    """One ``fit``/``validate``/``test``/``predict`` call. ``model_provided`` is False for an
    evaluation call without a model (it runs the fitted one; ``ckpt_path=None`` then means the
    best checkpoint, as Lightning)."""
    t = trainer
    t.state.fn, t.state.status = TrainerFn(fn), TrainerStatus.RUNNING
    # as Lightning: the stage is known from the start (setup hooks read trainer.state.stage)
    setattr(t, {"fit": "training", "validate": "validating"}.get(fn, f"{fn}ing"), True)
    t.interrupted = False
    if fn == "fit":
        t.should_stop = False
    t.strategy.setup_environment()
    t.lightning_module = model
    model.trainer = t  # and the LightningModules nested in it
    t._data_connector.attach_data(
        model,
        **{f"{k}_dataloaders": v for k, v in given.items()},
        datamodule=datamodule,
    )
    t._callback_metrics, t._logged_metrics, t._pbar_metrics = {}, {}, {}
    t._eval_steps = {}  # (stage, dataloader index) -> step of the next eval step logged
    # predict keeps no results (as Lightning: self.log in its hooks raises)
    t._results = None if t.barebones or fn == "predict" else Results("setup")
    anomaly = (
        torch.autograd.set_detect_anomaly(True)
        if t.detect_anomaly and fn == "fit"
        else contextlib.nullcontext()
    )
    from runtime.profilers import PassThroughProfiler

    profiler = t.profiler
    profiler.setup(stage=fn, local_rank=t.local_rank, log_dir=t.log_dir)
    profiler._lightning_module = model
    t._active_profiler = None if type(profiler) is PassThroughProfiler else profiler
    try:
        with anomaly:
            out = _run(t, fn, ckpt_path, weights_only, verbose, return_predictions, model_provided)
        t.state.status = TrainerStatus.FINISHED
        return out
    except _TunerExitException:
        # a tuner's search ran in this fit and is done: the stage ends quietly (as Lightning)
        _teardown_hooks(t, t.state.fn)
        t.state.status = TrainerStatus.FINISHED
        return None
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
        t._active_profiler = None
        profiler.describe()  # as Lightning: the report of the stage, also after an error


def _interrupt(t: Any, exception: BaseException) -> None:
    t.state.status = TrainerStatus.INTERRUPTED
    if t._results is not None:
        t._results.fx = "on_exception"  # no self.log in it (as Lightning)
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
    model_provided: bool,
) -> Any:
    from runtime.connector import merge_model_callbacks

    model, dm, strategy = t.lightning_module, t.datamodule, t.strategy
    if fn == "fit":
        resolve_limits(t)
    model_cbs = call_lm(t, "configure_callbacks")
    if model_cbs:
        t.callbacks = merge_model_callbacks(t.callbacks, model_cbs)
    build_callback_table(t)
    for cb in t.callbacks:
        # as Lightning: a callback logs with `self.log(...)` / `self.log_dict(...)` through the
        # module (the rules of the hook that is running apply)
        cb.log, cb.log_dict = model.log, model.log_dict
    t._data_connector.prepare_data()
    model._device = strategy.root_device
    stage = t.state.fn  # as Lightning: the TrainerFn enum (a str: `stage == "fit"` holds)
    for lg in t.loggers:
        # as Lightning: the loggers start their runs before any setup hook, so a checkpoint
        # folder made of a logger's name and version sees the run's id (W&B, MLflow)
        getattr(lg, "experiment", None)
    if dm is not None:
        with profiled(t, f"[LightningDataModule]{type(dm).__name__}.setup"):
            dm.setup(stage=stage)
    call_cb(t, "setup", stage=stage)
    call_lm(t, "setup", stage=stage)
    if overridden(model, "configure_model"):
        call_lm(t, "configure_model")
    ckpt = rng = None
    # which file ckpt_path names (None: the model as passed, the best checkpoint of the previous
    # fit for an evaluation without a model, the last one under an OnExceptionCheckpoint)
    path = t._checkpoint_connector._parse_ckpt_path(
        t.state.fn, ckpt_path, model_provided=model_provided, model_connected=True
    )
    if path is not None:
        ckpt = load_file(path, map_location=strategy.root_device, weights_only=weights_only)
        rng = take_rng_state(ckpt)  # the runtime's own: hooks see Lightning's keys only
        t.ckpt_path = path
        t._resumed_ckpt_path = os.path.realpath(path) if fn == "fit" else None
        restore_module_state(t, ckpt)
    model = t.strategy.precision_plugin.convert_module(model)
    strategy.setup_module(model, fn)
    if fn == "fit":
        configure_optimizers(t)
    _log_hyperparams(t)
    _prepare_step_fns(t)
    if fn == "fit":
        result = _fit(t, ckpt, rng)
    else:
        call_lm(t, "zero_grad")
        result = (
            run_eval_stage(t, fn, verbose)
            if fn != "predict"
            else t.predict_loop.run(t, return_predictions)
        )
    _teardown_hooks(t, stage)
    for lg in t.loggers:
        lg.finalize("success")
    return result


def _teardown_hooks(t: Any, stage: Any) -> None:
    if t.datamodule is not None:
        t.datamodule.teardown(stage=stage)
    call_cb(t, "teardown", stage=stage)
    call_lm(t, "teardown", stage=stage)


def _log_hyperparams(t: Any) -> None:
    """The hyper-parameters of the module and the data module that saved theirs (merged; a key
    both have with different values is an error), then the graph, as Lightning."""
    if not t.loggers or not t.enable_autolog_hparams:
        return
    model, dm = t.lightning_module, t.datamodule
    from_model = getattr(model, "_log_hyperparams", False)
    from_dm = dm is not None and getattr(dm, "_log_hyperparams", False)
    hp: dict[str, Any] | None = None
    if from_model and from_dm:
        mine, theirs = model.hparams_initial, dm.hparams_initial
        clash = [
            k
            for k in mine.keys() & theirs.keys()
            if k != "_class_path"
            and (
                type(mine[k]) is not type(theirs[k])
                or (isinstance(mine[k], torch.Tensor) and mine[k] is not theirs[k])
                or (not isinstance(mine[k], torch.Tensor) and mine[k] != theirs[k])
            )
        ]
        if clash:
            raise RuntimeError(
                f"Error while merging hparams: the keys {clash} are present in both the "
                "LightningModule's and LightningDataModule's hparams but have different values."
            )
        hp = {**mine, **theirs}
    elif from_model:
        hp = dict(model.hparams_initial)
    elif from_dm:
        hp = dict(dm.hparams_initial)
    for lg in t.loggers:
        if hp is not None:
            lg.log_hyperparams(hp)
        lg.log_graph(model)
        lg.save()
