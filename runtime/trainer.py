"""``Trainer``: stores and validates flags, exposes Lightning's public attributes, and runs stages.

What happens when a stage runs lives in ``runtime.loops`` (one module per stage; every hook call
goes through ``runtime.loops.dispatch``); what a checkpoint holds and how a run is restored
from it, in ``runtime.checkpoint``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

import torch

from runtime import connector, loops
from runtime.callbacks.base import Callback, Checkpoint
from runtime.callbacks.timer import parse_duration
from runtime.data import DataConnector
from runtime.errors import MisconfigurationException
from runtime.loggers.base import Logger
from runtime.loops.evaluation import EvaluationLoop
from runtime.loops.fit import FitLoop
from runtime.loops.prediction import PredictionLoop
from runtime.precision import make_precision, normalize_precision
from runtime.rank_zero import rank_zero_info, rank_zero_warn
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
        self.barebones = bool(barebones)
        if barebones:
            for name, value in (
                ("enable_checkpointing", enable_checkpointing),
                ("enable_progress_bar", enable_progress_bar),
                ("enable_model_summary", enable_model_summary),
                ("log_every_n_steps", log_every_n_steps),
                ("num_sanity_val_steps", num_sanity_val_steps),
            ):
                if value not in (None, False, 0):
                    raise ValueError(
                        f"`Trainer(barebones=True, {name}={value!r})` was passed. Barebones turns "
                        f"{name} off (it can impact raw speed); drop one of the two."
                    )
            if logger not in (None, False):
                raise ValueError(
                    f"`Trainer(barebones=True, logger={logger!r})` was passed. Barebones has no "
                    "logger; drop one of the two."
                )
            logger, enable_checkpointing, enable_progress_bar = False, False, False
            enable_model_summary, log_every_n_steps, num_sanity_val_steps = False, 0, 0
        self._check_int("max_steps", max_steps, minimum=-1)
        self._check_int("accumulate_grad_batches", accumulate_grad_batches, minimum=1)
        self._check_int("num_nodes", num_nodes, minimum=1)
        self._check_int("reload_dataloaders_every_n_epochs", reload_dataloaders_every_n_epochs, 0)
        if max_epochs is not None:
            self._check_int("max_epochs", max_epochs, minimum=-1)
        if check_val_every_n_epoch is not None:
            self._check_int("check_val_every_n_epoch", check_val_every_n_epoch, minimum=1)
        if gradient_clip_algorithm not in (None, "norm", "value"):
            raise MisconfigurationException(
                f"`gradient_clip_algorithm` {gradient_clip_algorithm} is invalid. Allowed "
                "algorithms: ['value', 'norm']."
            )
        if gradient_clip_val is not None and not isinstance(gradient_clip_val, (int, float)):
            raise TypeError(
                f"`gradient_clip_val` should be an int or a float. Got {gradient_clip_val}."
            )
        if gradient_clip_val is not None and gradient_clip_val < 0:
            raise MisconfigurationException(
                f"`gradient_clip_val` should be a non-negative number, got {gradient_clip_val!r}."
            )
        if deterministic not in (None, True, False, "warn"):
            raise MisconfigurationException(
                f"`deterministic` must be True, False, None or 'warn', got {deterministic!r}."
            )

        self.default_root_dir = os.fspath(default_root_dir) if default_root_dir else os.getcwd()
        if isinstance(self.default_root_dir, str) and "://" not in self.default_root_dir:
            self.default_root_dir = os.path.abspath(os.path.expanduser(self.default_root_dir))

        # devices, strategy, precision
        self._accelerator_flag = accelerator
        acc = connector.resolve_accelerator(accelerator)
        indices = connector.resolve_devices(acc, devices)
        self._device_ids = indices
        self.num_nodes = num_nodes
        self._strategy_flag = strategy
        self.strategy = self._select_strategy(strategy, acc, indices, num_nodes)
        self._accelerator = acc
        self._precision_name = normalize_precision(precision)
        self.strategy.precision_plugin = make_precision(self._precision_name, acc)
        if (
            self.strategy.precision_plugin.name == "bf16-mixed"
            and acc == "cuda"
            and not torch.cuda.is_bf16_supported()
        ):
            raise MisconfigurationException(
                "precision='bf16-mixed' needs a GPU with bfloat16 support (Ampere or newer); use "
                "'16-mixed' on this GPU."
            )
        self.sync_batchnorm = sync_batchnorm
        if hasattr(self.strategy, "sync_batchnorm"):
            self.strategy.sync_batchnorm = sync_batchnorm
        if hasattr(self.strategy, "precision_name"):
            self.strategy.precision_name = self.strategy.precision_plugin.name
            if getattr(self.strategy.precision_plugin, "scaler", None) is not None:
                # FSDP's gradients are DTensor shards: they need the sharded scaler
                from torch.distributed.fsdp.sharded_grad_scaler import ShardedGradScaler

                self.strategy.precision_plugin.scaler = ShardedGradScaler(acc)
        self.use_distributed_sampler = use_distributed_sampler
        self.plugins = plugins
        self.profiler = profiler
        for name, value in (
            ("profiler", profiler),
            ("plugins", plugins),
            ("model_registry", model_registry),
        ):
            if value is not None:
                rank_zero_warn(
                    f"Trainer({name}={value!r}) is accepted for compatibility but has no effect in "
                    f"this runtime; remove it (or use `import lightning` for {name} support)."
                )

        # loop limits
        self.fast_dev_run = fast_dev_run
        if fast_dev_run:
            n = 1 if fast_dev_run is True else fast_dev_run
            if isinstance(n, bool) or not isinstance(n, int) or n < 1:
                raise MisconfigurationException(
                    f"fast_dev_run={fast_dev_run!r} is invalid: use True or a positive int."
                )
            self.fast_dev_run = n
            limit_train_batches = limit_val_batches = limit_test_batches = n
            limit_predict_batches = n
            max_steps, max_epochs, num_sanity_val_steps = n, 1, 0
            val_check_interval, check_val_every_n_epoch = 1.0, 1
            log_every_n_steps = 1
            rank_zero_info(
                f"Running in `fast_dev_run` mode: will run the requested loop using {n} "
                f"batch(es). Logging and checkpointing is suppressed."
            )
        # the run state (counters and limits) has one owner: the loop objects; max_epochs=None
        # is resolved when fit starts (1000, or unbounded under max_steps/max_time), as Lightning
        self.fit_loop = FitLoop(min_epochs, max_epochs, min_steps, max_steps)
        self.validate_loop = EvaluationLoop("val")
        self.test_loop = EvaluationLoop("test")
        self.predict_loop = PredictionLoop()
        for loop in (self.fit_loop, self.validate_loop, self.test_loop, self.predict_loop):
            loop.trainer = self
        self.max_time = parse_duration(max_time, "Trainer(max_time)")
        self.overfit_batches = self._limit("overfit_batches", overfit_batches, 0.0)
        if self.overfit_batches:
            limit_train_batches = limit_val_batches = self.overfit_batches
        # the "was configured" notice is for values the user passed (not fast_dev_run's/overfit's)
        quiet = bool(fast_dev_run)
        quiet_fit = quiet or bool(self.overfit_batches)
        self.limit_train_batches = self._limit(
            "limit_train_batches", limit_train_batches, announce=not quiet_fit
        )
        self.limit_val_batches = self._limit(
            "limit_val_batches", limit_val_batches, announce=not quiet_fit
        )
        self.limit_test_batches = self._limit(
            "limit_test_batches", limit_test_batches, announce=not quiet
        )
        self.limit_predict_batches = self._limit(
            "limit_predict_batches", limit_predict_batches, announce=not quiet
        )
        # a duration ("00:00:15:00", dict, timedelta) validates on wall-clock time instead
        self._val_check_time_interval: float | None = None
        if isinstance(val_check_interval, (str, dict, timedelta)):
            self._val_check_time_interval = parse_duration(
                val_check_interval, "Trainer(val_check_interval)"
            )
            self.val_check_interval = val_check_interval
        else:
            self.val_check_interval = self._limit(
                "val_check_interval", val_check_interval, announce=not quiet
            )
        self._last_val_time = 0.0
        self.check_val_every_n_epoch = check_val_every_n_epoch
        if isinstance(self.val_check_interval, float) and self.val_check_interval > 1.0:
            raise MisconfigurationException(
                f"`val_check_interval` ({val_check_interval}) must be <= 1.0 as a float (fraction "
                "of an epoch) or an int (number of batches)."
            )
        self.num_sanity_val_steps = 2 if num_sanity_val_steps is None else num_sanity_val_steps
        if self.num_sanity_val_steps == -1:
            self.num_sanity_val_steps = math.inf
        self.log_every_n_steps = 50 if log_every_n_steps is None else log_every_n_steps
        self._check_int("log_every_n_steps", self.log_every_n_steps, minimum=0)
        self.accumulate_grad_batches = accumulate_grad_batches
        self.gradient_clip_val = gradient_clip_val
        self.gradient_clip_algorithm = gradient_clip_algorithm or (
            "norm" if gradient_clip_val else None
        )
        self.deterministic = deterministic
        self.benchmark = benchmark
        self.inference_mode = inference_mode
        self.detect_anomaly = detect_anomaly
        self.reload_dataloaders_every_n_epochs = reload_dataloaders_every_n_epochs
        self.enable_autolog_hparams = enable_autolog_hparams
        self._set_determinism()

        # loggers and callbacks
        self.loggers = connector.resolve_loggers(logger, self.default_root_dir)
        if self.fast_dev_run and self.loggers:
            from runtime.loggers.base import DummyLogger

            self.loggers = [DummyLogger()]
        self.enable_checkpointing = (
            (not self.barebones) if enable_checkpointing is None else enable_checkpointing
        )
        self.callbacks: list[Callback] = connector.build_callbacks(
            callbacks,
            self.enable_checkpointing,
            True if enable_progress_bar is None else enable_progress_bar,
            True if enable_model_summary is None else enable_model_summary,
            max_time=self.max_time,
        )

        # run state
        self.state = TrainerState()
        self.should_stop = False
        self.interrupted = False
        self.datamodule: Any = None
        self.optimizers: list[Any] = []
        self._lightning_optimizers: list[Any] = []
        self.lr_scheduler_configs: list[Any] = []
        self._results: Any = None
        self._train_results: Any = None
        self._callback_metrics: dict[str, Any] = {}
        self._logged_metrics: dict[str, Any] = {}
        self._pbar_metrics: dict[str, Any] = {}
        self._data: Any = None
        self._data_connector = DataConnector(self)
        self._validation_ran = False
        self._told_min_not_met = False
        self._resumed_ckpt_path: str | None = None
        self._epoch_start_rng: Any = None
        self.ckpt_path: str | None = None
        self.num_training_batches: float = math.inf
        self.num_val_batches: list[float] = []
        self.num_sanity_val_batches: list[float] = []
        self.num_test_batches: list[float] = []
        self.num_predict_batches: list[float] = []

    # ------------------------------------------------------------------ flag helpers
    @staticmethod
    def _check_int(name: str, value: Any, minimum: int) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            # the first sentence is Lightning's (code matches on it)
            kind = {
                "max_epochs": "`max_epochs` must be a non-negative integer or -1.",
                "max_steps": "`max_steps` must be a non-negative integer or -1 (infinite steps).",
                "check_val_every_n_epoch": "`check_val_every_n_epoch` should be an integer.",
            }.get(name, f"`{name}` must be an integer >= {minimum}.")
            raise MisconfigurationException(
                f"{kind} You passed in {value!r} (Trainer({name}=...) needs an int >= {minimum})."
            )

    @staticmethod
    def _limit(name: str, value: Any, default: float = 1.0, announce: bool = True) -> int | float:
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise MisconfigurationException(
                f"Trainer({name}={value!r}) is invalid: use a float in [0.0, 1.0] (fraction of the "
                "batches) or an int >= 0 (number of batches)."
            )
        if isinstance(value, float) and value > 1.0:
            if value.is_integer():
                raise MisconfigurationException(
                    f"Trainer({name}={value}) is a float > 1.0: for {int(value)} batches pass the "
                    f"int {int(value)}; for a fraction pass a float in [0.0, 1.0]."
                )
            raise MisconfigurationException(
                f"Trainer({name}={value}) must be a float in [0.0, 1.0] or an int."
            )
        if value == 1 and announce:
            # an explicit 1 reads differently as int and float: say which one was understood
            train = name == "limit_train_batches"
            if isinstance(value, int):
                what = "1 batch per epoch will be used" if train else "1 batch will be used"
                if name == "val_check_interval":
                    what = "validation will run after every batch"
            else:
                what = "100% of the batches" + (" per epoch" if train else "") + " will be used"
                if name == "val_check_interval":
                    what = "validation will run at the end of the training epoch"
            rank_zero_info(f"`Trainer({name}={value!r})` was configured so {what}.")
        return value

    def _select_strategy(self, strategy: Any, acc: str, indices: list[int], num_nodes: int) -> Any:
        from runtime.strategies import DDPStrategy, FSDPStrategy, SingleDeviceStrategy, Strategy
        from runtime.strategies.environment import detect

        many = len(indices) > 1 or num_nodes > 1
        if isinstance(strategy, Strategy):
            chosen = strategy
        elif strategy in ("auto", "single_device") and not many:
            return SingleDeviceStrategy(connector.root_device(acc, indices))
        elif strategy == "single_device":
            raise MisconfigurationException(
                f"strategy='single_device' runs one process, but devices={len(indices)} and "
                f"num_nodes={num_nodes} were asked for. Use strategy='ddp' or devices=1."
            )
        elif strategy == "dp":
            raise MisconfigurationException(
                "You selected an invalid strategy name: `strategy='dp'`. DataParallel was removed "
                "in Lightning 2.0; use strategy='ddp'."
            )
        elif strategy in connector.STRATEGY_ALIASES or strategy == "auto":
            kind, kw = connector.STRATEGY_ALIASES.get(strategy, ("ddp", {}))
            if strategy == "auto" and connector.interactive():
                kw = {"start_method": "fork"}
            chosen = FSDPStrategy(**kw) if kind == "fsdp" else DDPStrategy(**kw)
        else:
            names = ", ".join(["auto", "single_device", *connector.STRATEGY_ALIASES])
            raise MisconfigurationException(
                f"You selected an invalid strategy name: `strategy={strategy!r}`. Available names "
                f"are: {names}; or pass a strategy object such as `DDPStrategy(...)`."
            )
        if isinstance(chosen, DDPStrategy):
            chosen.configure(acc, indices, num_nodes, detect(len(indices), num_nodes))
        return chosen

    def _set_determinism(self) -> None:
        if self.deterministic:
            warn_only = self.deterministic == "warn"
            torch.use_deterministic_algorithms(True, warn_only=warn_only)
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
            torch.backends.cudnn.benchmark = False
        elif self.benchmark is not None:
            torch.backends.cudnn.benchmark = self.benchmark

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
        self._merge_live_step_metrics()
        results = self._results
        if results is not None and results.epoch_ended:
            cb, _, _ = results.epoch_metrics(live=True)
            self._callback_metrics.update(cb)
        return self._callback_metrics

    @property
    def logged_metrics(self) -> dict[str, Any]:
        self._merge_live_step_metrics()
        return self._logged_metrics

    @property
    def progress_bar_metrics(self) -> dict[str, float]:
        self._merge_live_step_metrics()
        return {
            k: (v.item() if isinstance(v, torch.Tensor) else v)
            for k, v in self._pbar_metrics.items()
        }

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
        return self._data.val_loaders_public() if self._data is not None else None

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
        model, datamodule, dataloaders, ckpt_path = self._eval_args(
            "predict", model, dataloaders, datamodule, ckpt_path
        )
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
        model, datamodule, dataloaders, ckpt_path = self._eval_args(
            fn, model, dataloaders, datamodule, ckpt_path
        )
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
        )

    def _eval_args(
        self, fn: str, model: Any, dataloaders: Any, datamodule: Any, ckpt_path: Any
    ) -> tuple:
        from runtime.datamodule import LightningDataModule

        if isinstance(dataloaders, LightningDataModule):
            datamodule, dataloaders = dataloaders, None
        if datamodule is not None and dataloaders is not None:
            raise MisconfigurationException(
                f"You cannot pass both `dataloaders` and `datamodule` to `trainer.{fn}`."
            )
        if model is None:
            model = self.lightning_module
            if model is None:
                raise TypeError(
                    f"`Trainer.{fn}()` requires a `LightningModule` when it hasn't been passed in "
                    f"a previous run (no model was fitted with this Trainer): call "
                    f"`trainer.{fn}(model, ...)`."
                )
            cb = self.checkpoint_callback
            if ckpt_path is None and cb is not None and getattr(cb, "best_model_path", ""):
                ckpt_path = "best"
                rank_zero_warn(
                    f"`.{fn}(ckpt_path=None)` was called without a model. The best model of the "
                    f"previous `fit` call will be used ({cb.best_model_path}). You can pass "
                    f"`.{fn}(ckpt_path='best')` to use the best model or `.{fn}(ckpt_path='last')` "
                    "to use the last model. If you pass a value, this warning will be silenced."
                )
        self._check_model(model, fn)
        if (
            datamodule is None
            and dataloaders is None
            and self.datamodule is not None
            and model is self.lightning_module
        ):
            datamodule = self.datamodule
        return model, datamodule, dataloaders, ckpt_path

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
