"""``Trainer``: stores and validates flags, exposes Lightning's public attributes, and runs stages.

What happens when a stage runs lives in ``runtime.loops`` (one module per stage; every hook call
goes through ``runtime.loops.dispatch``); what a checkpoint holds and how a run is restored
from it, in ``runtime.checkpoint``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from typing import Any

import torch

from runtime import connector, loops
from runtime.callbacks.base import Callback, Checkpoint
from runtime.checkpoint import _CheckpointConnector
from runtime.data import DataConnector
from runtime.errors import MisconfigurationException
from runtime.loggers.base import Logger
from runtime.loops.evaluation import EvaluationLoop
from runtime.loops.fit import FitLoop
from runtime.loops.prediction import PredictionLoop
from runtime.states import RunningStage, TrainerState, stage_flag

_REMOVED_HOOKS = {
    "training_epoch_end": "on_train_epoch_end",
    "validation_epoch_end": "on_validation_epoch_end",
    "test_epoch_end": "on_test_epoch_end",
    "training_step_end": "training_step (do the reduction there)",
    "validation_step_end": "validation_step (do the reduction there)",
    "test_step_end": "test_step (do the reduction there)",
}
_REMOVED_CB_HOOKS = {
    "on_epoch_start": "on_train_epoch_start / on_validation_epoch_start",
    "on_epoch_end": "on_train_epoch_end / on_validation_epoch_end",
    "on_batch_start": "on_train_batch_start",
    "on_batch_end": "on_train_batch_end",
    "on_init_start": "__init__ of your callback",
    "on_init_end": "__init__ of your callback",
    "on_pretrain_routine_start": "on_fit_start",
    "on_pretrain_routine_end": "on_fit_start",
}


class _AcceleratorConnector:
    """``trainer._accelerator_connector``: where Lightning keeps the strategy the Trainer
    runs with; setting ``strategy`` here replaces ``trainer.strategy``."""

    def __init__(self, trainer: Any) -> None:
        self._trainer = trainer

    @property
    def strategy(self) -> Any:
        return self._trainer.strategy

    @strategy.setter
    def strategy(self, strategy: Any) -> None:
        if getattr(strategy, "precision_plugin", None) is None:
            from runtime.precision import Precision

            strategy.precision_plugin = Precision()  # as Lightning: full precision by default
        self._trainer.strategy = strategy


class Trainer:
    """Runs a ``LightningModule``: ``fit``, ``validate``, ``test``, ``predict``.

    The flags are Lightning 2.6's, with its defaults (``max_epochs``, ``max_steps``,
    ``limit_*_batches``, ``val_check_interval``, ``accumulate_grad_batches``,
    ``gradient_clip_val``, ``precision``, ``accelerator``/``devices``/``strategy``/``num_nodes``,
    ``callbacks``, ``logger``, ``fast_dev_run``, ``max_time``, ...); flags are checked when the
    Trainer is built, so a wrong value fails before any work. The run state is in
    ``trainer.fit_loop`` (and ``validate_loop``/``test_loop``/``predict_loop``);
    ``current_epoch``, ``global_step``, ``callback_metrics``, ``checkpoint_callback``,
    ``logger``, ``state`` read as in Lightning. See the README for where the runtime
    deliberately differs.
    """

    training = stage_flag(RunningStage.TRAINING, "True while the training loop runs.")
    validating = stage_flag(RunningStage.VALIDATING, "True while validation runs.")
    testing = stage_flag(RunningStage.TESTING, "True while testing runs.")
    predicting = stage_flag(RunningStage.PREDICTING, "True while prediction runs.")
    sanity_checking = stage_flag(
        RunningStage.SANITY_CHECKING, "True during the validation sanity check before fitting."
    )

    def __init__(
        self,
        *,
        accelerator: str = "auto",
        strategy: Any = "auto",
        devices: Any = "auto",
        num_nodes: int = 1,
        precision: Any = None,
        logger: Logger | Iterable[Logger] | bool | None = None,
        callbacks: list[Callback] | Callback | None = None,
        fast_dev_run: int | bool = False,
        max_epochs: int | None = None,
        min_epochs: int | None = None,
        max_steps: int = -1,
        min_steps: int | None = None,
        max_time: Any = None,
        limit_train_batches: int | float | None = None,
        limit_val_batches: int | float | None = None,
        limit_test_batches: int | float | None = None,
        limit_predict_batches: int | float | None = None,
        overfit_batches: int | float = 0.0,
        val_check_interval: int | float | None = None,
        check_val_every_n_epoch: int | None = 1,
        num_sanity_val_steps: int | None = None,
        log_every_n_steps: int | None = None,
        enable_checkpointing: bool | None = None,
        enable_progress_bar: bool | None = None,
        enable_model_summary: bool | None = None,
        accumulate_grad_batches: int = 1,
        gradient_clip_val: int | float | None = None,
        gradient_clip_algorithm: str | None = None,
        deterministic: bool | str | None = None,
        benchmark: bool | None = None,
        inference_mode: bool = True,
        use_distributed_sampler: bool = True,
        profiler: Any = None,
        detect_anomaly: bool = False,
        barebones: bool = False,
        plugins: Any = None,
        sync_batchnorm: bool = False,
        reload_dataloaders_every_n_epochs: int = 0,
        default_root_dir: str | os.PathLike | None = None,
        enable_autolog_hparams: bool = True,
        model_registry: str | None = None,
        **removed: Any,
    ) -> None:
        if removed:
            raise connector.removed_args_error(removed)
        given = {k: v for k, v in locals().items() if k not in ("self", "removed")}
        # every check and default (wrong values fail here, before any work)
        flags = connector.resolve_flags(given)
        for name in connector.TRAINER_ATTRIBUTES:
            setattr(self, name, getattr(flags, name))
        self._accelerator_flag, self._strategy_flag = accelerator, strategy
        self.strategy, self._accelerator, self._device_ids = connector.select_strategy(flags)
        self._accelerator_connector = _AcceleratorConnector(self)
        # the run state (counters and limits) has one owner: the loop objects; max_epochs=None
        # is resolved when fit starts (1000, or unbounded under max_steps/max_time), as Lightning
        self.fit_loop = FitLoop(
            flags.min_epochs, flags.max_epochs, flags.min_steps, flags.max_steps
        )
        self.validate_loop = EvaluationLoop("val")
        self.test_loop = EvaluationLoop("test")
        self.predict_loop = PredictionLoop()
        for loop in (self.fit_loop, self.validate_loop, self.test_loop, self.predict_loop):
            loop.trainer = self
        self.max_time = flags.max_time
        self._val_check_time_interval = flags.val_check_time_interval
        self._last_val_time = 0.0
        connector.set_determinism(flags.deterministic, flags.benchmark)
        self.loggers = connector.resolve_loggers(flags.logger, self.default_root_dir)
        if self.fast_dev_run and self.loggers:
            from runtime.loggers.base import DummyLogger

            self.loggers = [DummyLogger()]
        self.callbacks: list[Callback] = connector.build_callbacks(
            flags.callbacks,
            self.enable_checkpointing,
            True if flags.enable_progress_bar is None else flags.enable_progress_bar,
            True if flags.enable_model_summary is None else flags.enable_model_summary,
            max_time=self.max_time,
        )
        self._init_run_state()

    def _init_run_state(self) -> None:
        """What a run changes: state, stop flags, module, optimizers, metrics, loaders."""
        self.state = TrainerState()
        self.should_stop = False
        self.interrupted = False
        self.datamodule: Any = None
        self.optimizers: list[Any] = []
        self._lightning_optimizers: list[Any] = []
        self.lr_scheduler_configs: list[Any] = []
        self._results: Any = None
        self._train_results: Any = None
        self._active_profiler: Any = None  # the profiler while a stage runs (None: none)
        self._callback_metrics: dict[str, Any] = {}
        self._logged_metrics: dict[str, Any] = {}
        self._pbar_metrics: dict[str, Any] = {}
        self._data: Any = None
        self._data_connector = DataConnector(self)
        self._checkpoint_connector = _CheckpointConnector(self)
        self._validation_ran = False
        self._told_min_not_met = False
        # per run, set by the loops when a stage starts (declared here so that no run adds
        # attributes to the Trainer): where the step functions are, the optimizer closure,
        # where a resumed epoch goes on, and the step counters of logged evaluation steps
        self._cb: dict[str, Any] = {}  # hook name -> the callbacks overriding it
        self._ts_takes_idx = True  # training_step takes batch_idx
        self._transfer_owner: Any = None  # who moves batches to the device
        self._closure: Any = None  # the automatic-optimization closure, made once
        self._resume_skip = 0  # batches of the resumed epoch already done
        self._resume_rng: Any = None  # the random state to go on from when resuming
        self._eval_steps: dict[tuple[str, int], int] = {}  # (stage, loader) -> next logged step
        self._resumed_ckpt_path: str | None = None
        self._epoch_start_rng: Any = None
        self.ckpt_path: str | None = None
        self.num_training_batches: float = math.inf
        self.num_val_batches: list[float] = []
        self.num_sanity_val_batches: list[float] = []
        self.num_test_batches: list[float] = []
        self.num_predict_batches: list[float] = []

    # ------------------------------------------------------------------ properties
    @property
    def precision(self) -> str:
        return self.strategy.precision_plugin.name

    @property
    def accelerator(self) -> str:
        return self._accelerator

    @property
    def device_ids(self) -> list[int]:
        return self._device_ids

    @property
    def num_devices(self) -> int:
        return len(self._device_ids)

    @property
    def world_size(self) -> int:
        return self.strategy.world_size

    @property
    def global_rank(self) -> int:
        return self.strategy.global_rank

    @property
    def local_rank(self) -> int:
        return self.strategy.local_rank

    @property
    def node_rank(self) -> int:
        return self.strategy.node_rank

    @property
    def is_global_zero(self) -> bool:
        return self.strategy.is_global_zero

    @property
    def lightning_module(self) -> Any:
        """The ``LightningModule`` being run (the strategy's, unwrapped)."""
        return self.strategy.lightning_module

    @lightning_module.setter
    def lightning_module(self, model: Any) -> None:
        self.strategy.connect(model)

    def init_module(self, empty_init: bool | None = None) -> Any:
        """A context manager: parameters created inside are made on the Trainer's device and in
        its precision's dtype (``"16-true"`` → float16), as Lightning's ``init_module``."""
        return self.strategy.tensor_init_context(empty_init=empty_init)

    @property
    def model(self) -> Any:
        return self.strategy.model if self.strategy.model is not None else self.lightning_module

    @property
    def scaler(self) -> Any:
        return getattr(self.strategy.precision_plugin, "scaler", None)

    @property
    def logger(self) -> Any:
        return self.loggers[0] if self.loggers else None

    @logger.setter
    def logger(self, logger: Any) -> None:
        self.loggers = [] if logger is None else [logger]

    @property
    def log_dir(self) -> str:
        if self.loggers and self.loggers[0].log_dir is not None:
            return self.loggers[0].log_dir
        return self.default_root_dir

    @property
    def checkpoint_callbacks(self) -> list[Any]:
        return [c for c in self.callbacks if isinstance(c, Checkpoint)]

    @property
    def checkpoint_callback(self) -> Any:
        cbs = self.checkpoint_callbacks
        return cbs[0] if cbs else None

    @property
    def early_stopping_callbacks(self) -> list[Any]:
        from runtime.callbacks.early_stopping import EarlyStopping

        return [c for c in self.callbacks if isinstance(c, EarlyStopping)]

    @property
    def early_stopping_callback(self) -> Any:
        cbs = self.early_stopping_callbacks
        return cbs[0] if cbs else None

    @property
    def _progress_bar_callback(self) -> Any:
        from runtime.callbacks.progress import ProgressBar

        return next((c for c in self.callbacks if isinstance(c, ProgressBar)), None)

    @property
    def progress_bar_callback(self) -> Any:
        return self._progress_bar_callback

    @property
    def _automatic(self) -> bool:
        m = self.lightning_module
        return True if m is None else m._automatic_optimization

    @property
    def callback_metrics(self) -> dict[str, Any]:
        """What callbacks monitor: the latest training step values and, once a stage's batch loop
        has ended, its epoch values (read live, as Lightning: ``on_validation_epoch_end`` sees
        this epoch's numbers)."""
        self._merge_live_metrics()
        return self._callback_metrics

    @property
    def logged_metrics(self) -> dict[str, Any]:
        """What goes to the loggers, read live as ``callback_metrics``."""
        self._merge_live_metrics()
        return self._logged_metrics

    @property
    def progress_bar_metrics(self) -> dict[str, float]:
        self._merge_live_metrics()
        return {
            k: (v.item() if isinstance(v, torch.Tensor) else v)
            for k, v in self._pbar_metrics.items()
        }

    def _merge_live_metrics(self) -> None:
        self._merge_live_step_metrics()
        results = self._results
        if results is not None and results.epoch_ended:
            cb, lg, pb = results.epoch_metrics(live=True)
            self._callback_metrics.update(cb)
            self._logged_metrics.update(lg)
            self._pbar_metrics.update(pb)

    def _merge_live_step_metrics(self) -> None:
        """The training step values logged so far, at any time during ``fit`` (also while
        validating) until the epoch ends; never a collective call (step values are reduced
        when logged)."""
        train = self._train_results
        # after the epoch's batch loop the step values are published already, before the epoch
        # values: merging them again would overwrite an epoch value of the same name
        if train is not None and not self.sanity_checking and not train.epoch_ended:
            cb, lg, pb = train.step_metrics()
            self._callback_metrics.update(cb)
            self._logged_metrics.update(lg)
            self._pbar_metrics.update(pb)

    # ------------------------------------------------------------------ run state (views)
    @property
    def max_epochs(self) -> int | None:
        return self.fit_loop.max_epochs

    @property
    def min_epochs(self) -> int | None:
        return self.fit_loop.min_epochs

    @property
    def max_steps(self) -> int:
        return self.fit_loop.max_steps

    @property
    def min_steps(self) -> int | None:
        return self.fit_loop.min_steps

    @property
    def current_epoch(self) -> int:
        """Epochs completed (the epoch running now, counted from 0)."""
        return self.fit_loop.epoch_progress.current.completed

    @property
    def global_step(self) -> int:
        """Optimizer steps taken (with several optimizers in manual optimization: each step)."""
        return self.fit_loop.epoch_loop.global_step

    @global_step.setter
    def global_step(self, value: int) -> None:
        total = self.fit_loop.epoch_loop.step_progress.total
        total.ready = total.completed = value

    @property
    def _batches_that_stepped(self) -> int:
        return self.fit_loop.epoch_loop._batches_that_stepped

    @_batches_that_stepped.setter
    def _batches_that_stepped(self, value: int) -> None:
        self.fit_loop.epoch_loop._batches_that_stepped = value

    @property
    def is_last_batch(self) -> bool:
        return self.fit_loop.epoch_loop.batch_progress.is_last_batch

    @property
    def train_dataloader(self) -> Any:
        return self._data.train_loader if self._data is not None else None

    @property
    def val_dataloaders(self) -> Any:
        return self._data.eval_public("val") if self._data is not None else None

    @property
    def test_dataloaders(self) -> Any:
        return self._data.eval_public("test") if self._data is not None else None

    @property
    def predict_dataloaders(self) -> Any:
        return self._data.eval_public("predict") if self._data is not None else None

    @property
    def estimated_stepping_batches(self) -> int | float:
        max_epochs = self.fit_loop.resolved_max_epochs(self.max_time)
        if self.max_steps != -1 and max_epochs == -1:
            return self.max_steps
        if self._data is not None and self._data.train_loader is None:
            self.fit_loop.setup_data()
        n = self.num_training_batches
        if n == math.inf or max_epochs == -1:
            return self.max_steps if self.max_steps != -1 else math.inf
        total = math.ceil(n / self.accumulate_grad_batches) * max(max_epochs, 1)
        return min(total, self.max_steps) if self.max_steps != -1 else total

    def _num_training_batches_int(self) -> int | None:
        n = self.num_training_batches
        return None if n == math.inf else int(n)

    def _num_eval_batches_int(self) -> int | None:
        counts = self._data.current_eval_counts if self._data is not None else []
        if not counts or any(c == math.inf for c in counts):
            return None
        return int(sum(counts))

    def _has_val_batches(self) -> bool:
        return self._data is not None and self._data.has_val and self.limit_val_batches != 0

    def _logger_should_update(self) -> bool:
        n = self.log_every_n_steps
        return bool(n) and ((self._batches_that_stepped + 1) % n == 0 or self.should_stop)

    def _resuming_from(self, dirpath: str) -> bool:
        p = self._resumed_ckpt_path
        return p is not None and os.path.dirname(p) == os.path.realpath(dirpath)

    # ------------------------------------------------------------------ entry points
    def fit(
        self,
        model: Any,
        train_dataloaders: Any = None,
        val_dataloaders: Any = None,
        datamodule: Any = None,
        ckpt_path: str | os.PathLike | None = None,
        weights_only: bool | None = None,
    ) -> None:
        from runtime.datamodule import LightningDataModule

        if isinstance(train_dataloaders, LightningDataModule):
            if datamodule is not None:
                raise MisconfigurationException(
                    "trainer.fit got a DataModule twice (as `train_dataloaders` and `datamodule`)."
                )
            datamodule, train_dataloaders = train_dataloaders, None
        if datamodule is not None and (
            train_dataloaders is not None or val_dataloaders is not None
        ):
            raise MisconfigurationException(
                "You cannot pass `train_dataloaders` or `val_dataloaders` to "
                "`trainer.fit(datamodule=...)`: put the loaders in the DataModule or drop it."
            )
        self._check_model(model, "fit")
        if self._must_spawn():
            return self._spawn(
                "fit",
                (model, train_dataloaders, val_dataloaders, datamodule, ckpt_path, weights_only),
            )
        loaders = {"train": train_dataloaders, "val": val_dataloaders}
        loops.run_stage(self, "fit", model, datamodule, loaders, ckpt_path, weights_only)

    def validate(
        self,
        model: Any = None,
        dataloaders: Any = None,
        ckpt_path: Any = None,
        verbose: bool = True,
        datamodule: Any = None,
        weights_only: bool | None = None,
    ) -> list[dict[str, float]]:
        return self._evaluate(
            "validate", model, dataloaders, ckpt_path, verbose, datamodule, weights_only
        )

    def test(
        self,
        model: Any = None,
        dataloaders: Any = None,
        ckpt_path: Any = None,
        verbose: bool = True,
        datamodule: Any = None,
        weights_only: bool | None = None,
    ) -> list[dict[str, float]]:
        return self._evaluate(
            "test", model, dataloaders, ckpt_path, verbose, datamodule, weights_only
        )

    def predict(
        self,
        model: Any = None,
        dataloaders: Any = None,
        datamodule: Any = None,
        return_predictions: bool | None = None,
        ckpt_path: Any = None,
        weights_only: bool | None = None,
    ) -> Any:
        model, datamodule, dataloaders, model_provided = self._eval_args(
            "predict", model, dataloaders, datamodule
        )
        if self._must_spawn():
            args = (model, dataloaders, datamodule, return_predictions, ckpt_path, weights_only)
            return self._spawn("predict", args)
        if getattr(self.strategy, "is_spawn", False) and self.strategy.world_size > 1:
            # as Lightning: spawned ranks hand no predictions back (checked in each rank)
            if return_predictions:
                raise MisconfigurationException(
                    "`return_predictions` should be set to `False` when using the strategies "
                    f"that spawn or fork processes. Found {return_predictions} with strategy "
                    f"{type(self.strategy).__name__}(start_method="
                    f"{self.strategy.start_method!r}): pass `return_predictions=False` and write "
                    "the predictions with a `BasePredictionWriter` callback, or use "
                    "strategy='ddp' (one process per rank, launched as a script)."
                )
            return_predictions = False
        key = "predict"
        return loops.run_stage(
            self,
            "predict",
            model,
            datamodule,
            {key: dataloaders},
            ckpt_path,
            weights_only,
            return_predictions=return_predictions is not False,
            model_provided=model_provided,
        )

    def _evaluate(
        self,
        fn: str,
        model: Any,
        dataloaders: Any,
        ckpt_path: Any,
        verbose: bool,
        datamodule: Any,
        weights_only: bool | None,
    ) -> list[dict[str, float]]:
        model, datamodule, dataloaders, model_provided = self._eval_args(
            fn, model, dataloaders, datamodule
        )
        if self._must_spawn():
            args = (model, dataloaders, ckpt_path, verbose, datamodule, weights_only)
            return self._spawn(fn, args)
        key = "val" if fn == "validate" else "test"
        return loops.run_stage(
            self,
            fn,
            model,
            datamodule,
            {key: dataloaders},
            ckpt_path,
            weights_only,
            verbose=verbose,
            model_provided=model_provided,
        )

    def _eval_args(self, fn: str, model: Any, dataloaders: Any, datamodule: Any) -> tuple:
        """The model (the fitted one when none is passed), datamodule and loaders of an
        evaluation call, and whether the model was passed (which ``ckpt_path=None`` means)."""
        from runtime.datamodule import LightningDataModule

        if isinstance(dataloaders, LightningDataModule):
            datamodule, dataloaders = dataloaders, None
        if datamodule is not None and dataloaders is not None:
            raise MisconfigurationException(
                f"You cannot pass both `dataloaders` and `datamodule` to `trainer.{fn}`."
            )
        model_provided = model is not None
        if model is None:
            model = self.lightning_module
            if model is None:
                raise TypeError(
                    f"`Trainer.{fn}()` requires a `LightningModule` when it hasn't been passed in "
                    f"a previous run (no model was fitted with this Trainer): call "
                    f"`trainer.{fn}(model, ...)`."
                )
        self._check_model(model, fn)
        if (
            datamodule is None
            and dataloaders is None
            and self.datamodule is not None
            and model is self.lightning_module
        ):
            datamodule = self.datamodule
        return model, datamodule, dataloaders, model_provided

    def _must_spawn(self) -> bool:
        strategy = self.strategy
        return bool(getattr(strategy, "is_spawn", False) and strategy.needs_launch())

    def _spawn(self, fn: str, args: tuple) -> Any:
        from runtime.strategies.launchers import spawn

        return spawn(self, fn, args, {}, self.strategy.world_size, self.strategy.start_method)

    def _check_model(self, model: Any, fn: str) -> None:
        from runtime.module import LightningModule

        if not isinstance(model, LightningModule):
            kind = type(model).__module__.split(".")[0]
            hint = (
                " It comes from the `lightning` package: use `import runtime as L` in the file "
                "that defines the module too."
                if kind in ("lightning", "pytorch_lightning")
                else ""
            )
            raise TypeError(
                f"`model` must be a `LightningModule` (runtime.LightningModule), got "
                f"`{type(model).__qualname__}`.{hint}"
            )
        for hook, new in _REMOVED_HOOKS.items():
            if callable(getattr(type(model), hook, None)):
                raise NotImplementedError(
                    f"Support for `{hook}` was removed in Lightning 2.0 and `{type(model).__name__}."
                    f"{hook}` would never be called. Move its code to `{new}`; to access step "
                    "outputs, save them in-memory as instance attributes."
                )
        for cb in self.callbacks:
            for hook, new in _REMOVED_CB_HOOKS.items():
                if callable(getattr(type(cb), hook, None)):
                    raise NotImplementedError(
                        f"Callback hook `{type(cb).__name__}.{hook}` was removed in Lightning 2.0 "
                        f"and would never be called. Use `{new}` instead."
                    )
        if fn == "fit" and not loops.overridden(model, "training_step"):
            raise MisconfigurationException(
                f"{type(model).__name__} has no `training_step`, so `trainer.fit` has nothing to "
                "run. Define `training_step(self, batch, batch_idx)` returning the loss."
            )

    # ------------------------------------------------------------------ checkpoints
    def save_checkpoint(
        self, filepath: str | os.PathLike, weights_only: bool = False, storage_options: Any = None
    ) -> None:
        if self.lightning_module is None:
            raise AttributeError(
                "Saving a checkpoint is only possible if a model is attached to "
                "the Trainer: call `trainer.fit(model)` (or validate/test) first."
            )
        from runtime.checkpoint import atomic_save, dump_checkpoint
        from runtime.loops.dispatch import profiled

        with profiled(self, "save_checkpoint"):
            ckpt = dump_checkpoint(self, weights_only)
            if self.is_global_zero:
                atomic_save(ckpt, filepath)
                for lg in self.loggers:
                    lg.after_save_checkpoint(self.checkpoint_callback)
        self.strategy.barrier("save_checkpoint")

    # ------------------------------------------------------------------ internals used by loops
    def _after_closure(self, optimizer: Any) -> None:
        loops.after_closure(self, optimizer)

    def _sync_fn(self) -> Any:
        return getattr(self.strategy, "sync_metric", None)

    def _rng_checkpoint_state(self) -> Any:
        return loops.rng_checkpoint_state(self)

    def print(self, *args: Any, **kwargs: Any) -> None:
        if self.is_global_zero:
            print(*args, **kwargs)

    def __repr__(self) -> str:
        return (
            f"Trainer(accelerator={self.accelerator!r}, devices={self.num_devices}, "
            f"precision={self.precision!r}, max_epochs={self.max_epochs}, "
            f"max_steps={self.max_steps})"
        )
