"""Turns Trainer flags into objects: device, strategy, precision plugin, loggers, callbacks.

Everything here runs once at ``Trainer(...)``; bad values fail here, before any work.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import torch

from runtime.callbacks.base import Callback, Checkpoint
from runtime.errors import MisconfigurationException
from runtime.rank_zero import rank_zero_info, rank_zero_warn

ACCELERATORS = ("auto", "cpu", "gpu", "cuda", "mps")
STRATEGY_ALIASES: dict[str, tuple[str, dict[str, Any]]] = {
    "ddp": ("ddp", {}),
    "ddp_find_unused_parameters_false": ("ddp", {"find_unused_parameters": False}),
    "ddp_find_unused_parameters_true": ("ddp", {"find_unused_parameters": True}),
    "ddp_spawn": ("ddp", {"start_method": "spawn"}),
    "ddp_spawn_find_unused_parameters_false": ("ddp", {"start_method": "spawn"}),
    "ddp_spawn_find_unused_parameters_true": (
        "ddp",
        {"start_method": "spawn", "find_unused_parameters": True},
    ),
    "ddp_fork": ("ddp", {"start_method": "fork"}),
    "ddp_notebook": ("ddp", {"start_method": "fork"}),
    "fsdp": ("fsdp", {}),
    "fsdp_cpu_offload": ("fsdp", {"cpu_offload": True}),
}


def interactive() -> bool:
    import sys

    main = sys.modules.get("__main__")
    return hasattr(sys, "ps1") or not hasattr(main, "__file__")


REMOVED_TRAINER_ARGS = {
    "gpus": "`accelerator='gpu', devices=N`",
    "tpu_cores": "`accelerator='tpu', devices=N`",
    "ipus": "`accelerator='ipu', devices=N`",
    "num_processes": "`accelerator='cpu', devices=N`",
    "progress_bar_refresh_rate": "`callbacks=[TQDMProgressBar(refresh_rate=N)]`",
    "resume_from_checkpoint": "`trainer.fit(model, ckpt_path=...)`",
    "auto_lr_find": "a learning-rate finder run before `fit`",
    "auto_scale_batch_size": "a batch-size search run before `fit`",
    "amp_backend": "`precision='16-mixed'` (torch.amp is the only backend)",
    "amp_level": "`precision='16-mixed'`",
    "track_grad_norm": "logging `torch.nn.utils.clip_grad_norm_(...)` in `on_before_optimizer_step`",
    "weights_summary": "`enable_model_summary=` or `callbacks=[ModelSummary(max_depth=N)]`",
    "checkpoint_callback": "`enable_checkpointing=`",
    "flush_logs_every_n_steps": "`CSVLogger(flush_logs_every_n_steps=N)`",
    "replace_sampler_ddp": "`use_distributed_sampler=`",
    "multiple_trainloader_mode": "a `CombinedLoader` of your own",
    "move_metrics_to_cpu": "nothing (metrics stay where they are computed)",
    "stochastic_weight_avg": "`torch.optim.swa_utils` in your module",
    "terminate_on_nan": "`detect_anomaly=True` or `EarlyStopping(check_finite=True)`",
    "auto_select_gpus": "`devices=N` (free GPUs are picked by CUDA_VISIBLE_DEVICES)",
    "prepare_data_per_node": "`LightningDataModule.prepare_data_per_node = ...`",
    "log_gpu_memory": "the `DeviceStatsMonitor` callback",
    "truncated_bptt_steps": "manual optimization with your own sequence splitting",
}


def removed_args_error(kwargs: dict[str, Any]) -> Exception:
    for name in kwargs:
        if name in REMOVED_TRAINER_ARGS:
            return MisconfigurationException(
                f"Trainer({name}=...) was removed in Lightning 2.0. Use "
                f"{REMOVED_TRAINER_ARGS[name]} instead."
            )
    import difflib

    from runtime.trainer import Trainer

    known = [
        p
        for p in Trainer.__init__.__code__.co_varnames[
            1 : Trainer.__init__.__code__.co_argcount + Trainer.__init__.__code__.co_kwonlyargcount
        ]
    ]
    name = next(iter(kwargs))
    close = difflib.get_close_matches(name, known, n=3)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    return TypeError(f"Trainer.__init__() got an unexpected keyword argument {name!r}.{hint}")


def _cuda_count() -> int:
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def resolve_accelerator(accelerator: Any) -> str:
    if not isinstance(accelerator, str) or accelerator not in ACCELERATORS:
        hint = (
            " ('dp' was removed in 2.0; use strategy='ddp')" if accelerator in ("dp", "ddp") else ""
        )
        raise MisconfigurationException(
            f"You selected an invalid accelerator name: `accelerator={accelerator!r}`{hint}. "
            f"Available names are: {', '.join(ACCELERATORS)}."
        )
    if accelerator == "auto":
        if _cuda_count():
            return "cuda"
        return "mps" if _mps_available() else "cpu"
    if accelerator == "gpu":
        if _cuda_count():
            return "cuda"
        if _mps_available():
            return "mps"
        raise MisconfigurationException(
            "Trainer(accelerator='gpu') but no supported GPU backend was found (CUDA is not "
            "available). Use accelerator='cpu' or 'auto'."
        )
    if accelerator == "cuda" and not _cuda_count():
        raise MisconfigurationException(
            "Trainer(accelerator='cuda') but CUDA is not available on this machine "
            f"(torch {torch.__version__}). Use accelerator='cpu' or 'auto'."
        )
    if accelerator == "mps" and not _mps_available():
        raise MisconfigurationException(
            "Trainer(accelerator='mps') but MPS is not available. Use accelerator='cpu' or 'auto'."
        )
    return accelerator


def resolve_devices(accelerator: str, devices: Any) -> list[int]:
    """Device indices for this run; raises when the machine has fewer than asked."""
    available = (
        _cuda_count()
        if accelerator == "cuda"
        else (1 if accelerator == "mps" else os.cpu_count() or 1)
    )
    if devices == "auto":
        return list(range(available)) if accelerator == "cuda" else [0]
    if isinstance(devices, str):
        text = devices.strip()
        if text == "-1":
            devices = -1
        elif "," in text or text.endswith(","):
            devices = [int(x) for x in text.split(",") if x.strip()]
        elif text.isdigit():
            devices = int(text)
        else:
            raise MisconfigurationException(
                f"Trainer(devices={devices!r}) is not understood. Use an int, a list of indices, "
                "'-1' or 'auto'."
            )
    if isinstance(devices, bool) or not isinstance(devices, (int, list, tuple)):
        raise MisconfigurationException(
            f"Trainer(devices={devices!r}) is not understood. Use an int, a list of indices, -1 or "
            "'auto'."
        )
    if isinstance(devices, int):
        if devices == -1:
            return list(range(available if accelerator in ("cuda", "cpu") else 1))
        if devices < 1:
            raise MisconfigurationException(
                f"Trainer(devices={devices}) must be >= 1, -1 (all) or 'auto'."
            )
        if accelerator == "cpu":
            return list(range(devices))
        indices = list(range(devices))
    else:
        indices = [int(d) for d in devices]
        if accelerator == "cpu":
            return list(range(len(indices)))
    if accelerator == "cuda" and max(indices) >= available:
        raise MisconfigurationException(
            f"Trainer(devices={devices!r}) asks for GPU index {max(indices)} but this machine has "
            f"{available} CUDA device(s). Use devices<={available} or devices='auto'."
        )
    if accelerator == "mps" and len(indices) > 1:
        raise MisconfigurationException("MPS supports a single device: use devices=1.")
    return indices


def root_device(accelerator: str, indices: list[int]) -> torch.device:
    if accelerator == "cuda":
        return torch.device("cuda", indices[0])
    return torch.device(accelerator)


def default_logger(root: str) -> Any:
    from runtime.loggers.csv_logs import CSVLogger
    from runtime.loggers.tensorboard import TensorBoardLogger, tensorboard_available

    if tensorboard_available():
        return TensorBoardLogger(save_dir=root, version=os.environ.get("SLURM_JOB_ID") or None)
    return CSVLogger(save_dir=root)


def resolve_loggers(logger: Any, root: str) -> list[Any]:
    from runtime.loggers.base import Logger

    if logger is None or logger is True:
        return [default_logger(root)]
    if logger is False:
        return []
    loggers = list(logger) if isinstance(logger, Iterable) else [logger]
    for lg in loggers:
        if not isinstance(lg, Logger) and not hasattr(lg, "log_metrics"):
            raise MisconfigurationException(
                f"Trainer(logger=...) got a {type(lg).__name__}; allowed are True, False, a Logger "
                "(e.g. CSVLogger, TensorBoardLogger) or a list of them."
            )
    return loggers


def build_callbacks(
    callbacks: Any,
    enable_checkpointing: bool,
    enable_progress_bar: bool,
    enable_model_summary: bool,
    max_time: Any = None,
) -> list[Callback]:
    from runtime.callbacks.model_checkpoint import ModelCheckpoint
    from runtime.callbacks.model_summary import ModelSummary
    from runtime.callbacks.progress import ProgressBar, TQDMProgressBar

    if callbacks is None:
        cbs: list[Callback] = []
    elif isinstance(callbacks, Callback):
        cbs = [callbacks]
    else:
        cbs = list(callbacks)
    for cb in cbs:
        if not isinstance(cb, Callback):
            raise MisconfigurationException(
                f"Trainer(callbacks=...) got a {type(cb).__name__}; every callback must subclass "
                "`runtime.Callback` (or `runtime.callbacks.Callback`)."
            )
    has_ckpt = any(isinstance(c, Checkpoint) for c in cbs)
    if has_ckpt and not enable_checkpointing:
        raise MisconfigurationException(
            "Trainer was configured with `enable_checkpointing=False` but found `ModelCheckpoint` "
            "in callbacks list. Remove one of the two."
        )
    if enable_checkpointing and not has_ckpt:
        cbs.append(ModelCheckpoint())
    if enable_progress_bar and not any(isinstance(c, ProgressBar) for c in cbs):
        cbs.append(TQDMProgressBar())
    if not enable_progress_bar:
        bars = [c for c in cbs if isinstance(c, ProgressBar)]
        if bars:
            raise MisconfigurationException(
                "Trainer was configured with `enable_progress_bar=False` but found "
                f"`{type(bars[0]).__name__}` in callbacks list. Remove one of the two."
            )
    if enable_model_summary and not any(isinstance(c, ModelSummary) for c in cbs):
        cbs.append(ModelSummary())
    if max_time is not None:
        from runtime.callbacks.timer import Timer

        if any(isinstance(c, Timer) for c in cbs):
            rank_zero_info(
                "Ignoring `Trainer(max_time=...)`, callbacks list already contains a Timer."
            )
        else:
            # as Lightning: max_time is a Timer checked after every batch
            cbs.append(Timer(duration=max_time, interval="step"))
    validate_callbacks_list(cbs)
    return reorder_callbacks(cbs)


def validate_callbacks_list(cbs: list[Callback]) -> None:
    """Two callbacks that keep a state (their class defines ``state_dict``) under one
    ``state_key`` would write one entry of the checkpoint: an error, as Lightning."""
    seen: set[str] = set()
    for cb in cbs:
        if type(cb).state_dict is Callback.state_dict:
            continue
        key = cb.state_key
        if key in seen:
            name = type(cb).__name__
            raise RuntimeError(
                f"Found more than one stateful callback of type `{name}`. In the current "
                "configuration, this callback does not support being saved alongside other "
                f"instances of the same type. Please consult the documentation of `{name}` "
                "regarding valid settings for the callback state to be checkpointable. HINT: The "
                "`callback.state_key` must be unique among all callbacks in the Trainer."
            )
        seen.add(key)


def reorder_callbacks(cbs: list[Callback]) -> list[Callback]:
    """Checkpoint callbacks last, so they see what every other callback did this step."""
    return [c for c in cbs if not isinstance(c, Checkpoint)] + [
        c for c in cbs if isinstance(c, Checkpoint)
    ]


def merge_model_callbacks(trainer_cbs: list[Callback], model_cbs: Any) -> list[Callback]:
    if not model_cbs:
        return trainer_cbs
    model_cbs = [model_cbs] if isinstance(model_cbs, Callback) else list(model_cbs)
    types = tuple(type(c) for c in model_cbs)
    kept = [c for c in trainer_cbs if not isinstance(c, types)]
    return reorder_callbacks(kept + model_cbs)


# ---------------------------------------------------------------------- flag resolution
@dataclass
class Flags:
    """The ``Trainer(...)`` flags as a run uses them: values checked, and the modes that override
    others applied (``barebones``, ``fast_dev_run``, ``overfit_batches``). Built from every
    argument of ``Trainer.__init__``, whose signature is the one place the defaults live."""

    accelerator: Any
    strategy: Any
    devices: Any
    num_nodes: int
    precision: Any
    logger: Any
    callbacks: Any
    fast_dev_run: int | bool
    max_epochs: int | None
    min_epochs: int | None
    max_steps: int
    min_steps: int | None
    max_time: Any
    limit_train_batches: int | float | None
    limit_val_batches: int | float | None
    limit_test_batches: int | float | None
    limit_predict_batches: int | float | None
    overfit_batches: int | float
    val_check_interval: Any
    check_val_every_n_epoch: int | None
    num_sanity_val_steps: int | float | None
    log_every_n_steps: int | None
    enable_checkpointing: bool | None
    enable_progress_bar: bool | None
    enable_model_summary: bool | None
    accumulate_grad_batches: int
    gradient_clip_val: int | float | None
    gradient_clip_algorithm: str | None
    deterministic: bool | str | None
    benchmark: bool | None
    inference_mode: bool
    use_distributed_sampler: bool
    profiler: Any
    detect_anomaly: bool
    barebones: bool
    plugins: Any
    sync_batchnorm: bool
    reload_dataloaders_every_n_epochs: int
    default_root_dir: Any
    enable_autolog_hparams: bool
    model_registry: str | None
    # derived
    val_check_time_interval: float | None = field(default=None, init=False)


# flags the Trainer keeps as attributes of the same name, as resolved
TRAINER_ATTRIBUTES = (
    "barebones",
    "fast_dev_run",
    "num_nodes",
    "sync_batchnorm",
    "use_distributed_sampler",
    "plugins",
    "profiler",
    "overfit_batches",
    "limit_train_batches",
    "limit_val_batches",
    "limit_test_batches",
    "limit_predict_batches",
    "val_check_interval",
    "check_val_every_n_epoch",
    "num_sanity_val_steps",
    "log_every_n_steps",
    "accumulate_grad_batches",
    "gradient_clip_val",
    "gradient_clip_algorithm",
    "deterministic",
    "benchmark",
    "inference_mode",
    "detect_anomaly",
    "reload_dataloaders_every_n_epochs",
    "enable_autolog_hparams",
    "enable_checkpointing",
    "default_root_dir",
)


def resolve_flags(given: dict[str, Any]) -> Flags:
    """Every check and default of ``Trainer(...)``, in Lightning's order of messages."""
    from runtime.callbacks.timer import parse_duration

    f = Flags(**given)
    _apply_barebones(f)
    _check_flags(f)
    root = os.fspath(f.default_root_dir) if f.default_root_dir else os.getcwd()
    if isinstance(root, str) and "://" not in root:
        root = os.path.abspath(os.path.expanduser(root))
    f.default_root_dir = root
    from runtime.profilers import resolve_profiler

    f.profiler = resolve_profiler(f.profiler)
    for name in ("plugins", "model_registry"):
        value = getattr(f, name)
        if value is not None:
            rank_zero_warn(
                f"Trainer({name}={value!r}) is accepted for compatibility but has no effect in "
                f"this runtime; remove it (or use `import lightning` for {name} support)."
            )
    _apply_fast_dev_run(f)
    f.max_time = parse_duration(f.max_time, "Trainer(max_time)")
    _resolve_limits(f)
    if f.enable_checkpointing is None:
        f.enable_checkpointing = not f.barebones
    f.gradient_clip_algorithm = f.gradient_clip_algorithm or (
        "norm" if f.gradient_clip_val else None
    )
    return f


def _apply_barebones(f: Flags) -> None:
    if not f.barebones:
        return
    f.barebones = True
    for name in (
        "enable_checkpointing",
        "enable_progress_bar",
        "enable_model_summary",
        "log_every_n_steps",
        "num_sanity_val_steps",
        "fast_dev_run",
        "detect_anomaly",
        "profiler",
    ):
        value = getattr(f, name)
        if value not in (None, False, 0):
            raise ValueError(
                f"`Trainer(barebones=True, {name}={value!r})` was passed. Barebones turns "
                f"{name} off (it can impact raw speed); drop one of the two."
            )
    if f.logger not in (None, False):
        raise ValueError(
            f"`Trainer(barebones=True, logger={f.logger!r})` was passed. Barebones has no "
            "logger; drop one of the two."
        )
    f.logger, f.enable_checkpointing, f.enable_progress_bar = False, False, False
    f.enable_model_summary, f.log_every_n_steps, f.num_sanity_val_steps = False, 0, 0
    rank_zero_info(
        "You are running in `Trainer(barebones=True)` mode. All features that may impact raw "
        "speed have been disabled to facilitate analyzing the Trainer overhead."
    )


def check_int(name: str, value: Any, minimum: int) -> None:
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


def _check_flags(f: Flags) -> None:
    check_int("max_steps", f.max_steps, minimum=-1)
    check_int("accumulate_grad_batches", f.accumulate_grad_batches, minimum=1)
    check_int("num_nodes", f.num_nodes, minimum=1)
    check_int("reload_dataloaders_every_n_epochs", f.reload_dataloaders_every_n_epochs, 0)
    if f.max_epochs is not None:
        check_int("max_epochs", f.max_epochs, minimum=-1)
    if f.check_val_every_n_epoch is not None:
        check_int("check_val_every_n_epoch", f.check_val_every_n_epoch, minimum=1)
    if f.gradient_clip_algorithm not in (None, "norm", "value"):
        raise MisconfigurationException(
            f"`gradient_clip_algorithm` {f.gradient_clip_algorithm} is invalid. Allowed "
            "algorithms: ['value', 'norm']."
        )
    clip = f.gradient_clip_val
    if clip is not None and not isinstance(clip, (int, float)):
        raise TypeError(f"`gradient_clip_val` should be an int or a float. Got {clip}.")
    if clip is not None and clip < 0:
        raise MisconfigurationException(
            f"`gradient_clip_val` should be a non-negative number, got {clip!r}."
        )
    if f.deterministic not in (None, True, False, "warn"):
        raise MisconfigurationException(
            f"`deterministic` must be True, False, None or 'warn', got {f.deterministic!r}."
        )


def _apply_fast_dev_run(f: Flags) -> None:
    if not f.fast_dev_run:
        return
    n = 1 if f.fast_dev_run is True else f.fast_dev_run
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise MisconfigurationException(
            f"fast_dev_run={f.fast_dev_run!r} is invalid: use True or a positive int."
        )
    f.fast_dev_run = n
    f.limit_train_batches = f.limit_val_batches = f.limit_test_batches = n
    f.limit_predict_batches = n
    f.max_steps, f.max_epochs, f.num_sanity_val_steps = n, 1, 0
    f.val_check_interval, f.check_val_every_n_epoch = 1.0, 1
    f.log_every_n_steps = 1
    rank_zero_info(
        f"Running in `fast_dev_run` mode: will run the requested loop using {n} "
        f"batch(es). Logging and checkpointing is suppressed."
    )


def _resolve_limits(f: Flags) -> None:
    from datetime import timedelta

    from runtime.callbacks.timer import parse_duration

    f.overfit_batches = batch_limit("overfit_batches", f.overfit_batches, 0.0)
    if f.overfit_batches:
        f.limit_train_batches = f.limit_val_batches = f.overfit_batches
    # the "was configured" notice is for values the user passed (not fast_dev_run's/overfit's)
    quiet = bool(f.fast_dev_run)
    quiet_fit = quiet or bool(f.overfit_batches)
    for name in ("limit_train_batches", "limit_val_batches"):
        setattr(f, name, batch_limit(name, getattr(f, name), announce=not quiet_fit))
    for name in ("limit_test_batches", "limit_predict_batches"):
        setattr(f, name, batch_limit(name, getattr(f, name), announce=not quiet))
    # a duration ("00:00:15:00", dict, timedelta) validates on wall-clock time instead
    given = f.val_check_interval
    if isinstance(given, (str, dict, timedelta)):
        f.val_check_time_interval = parse_duration(given, "Trainer(val_check_interval)")
    else:
        f.val_check_interval = batch_limit("val_check_interval", given, announce=not quiet)
        if isinstance(given, float) and f.check_val_every_n_epoch is None:
            raise MisconfigurationException(
                "`val_check_interval` should be an integer or a time-based duration (str "
                "'DD:HH:MM:SS', datetime.timedelta, or dict kwargs for timedelta) when "
                f"`check_val_every_n_epoch=None`. Got val_check_interval={given!r}: a fraction "
                "of an epoch needs epochs to validate in."
            )
        if isinstance(f.val_check_interval, float) and f.val_check_interval > 1.0:
            raise MisconfigurationException(
                f"`val_check_interval` ({given}) must be <= 1.0 as a float (fraction of an "
                "epoch) or an int (number of batches)."
            )
    f.num_sanity_val_steps = 2 if f.num_sanity_val_steps is None else f.num_sanity_val_steps
    if f.num_sanity_val_steps == -1:
        f.num_sanity_val_steps = math.inf
    f.log_every_n_steps = 50 if f.log_every_n_steps is None else f.log_every_n_steps
    check_int("log_every_n_steps", f.log_every_n_steps, minimum=0)


def batch_limit(name: str, value: Any, default: float = 1.0, announce: bool = True) -> Any:
    """A ``limit_*_batches``-like flag: a fraction in [0.0, 1.0] or a number of batches."""
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


def set_determinism(deterministic: Any, benchmark: bool | None) -> None:
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=deterministic == "warn")
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.backends.cudnn.benchmark = False
    elif benchmark is not None:
        torch.backends.cudnn.benchmark = benchmark


def select_strategy(f: Flags) -> tuple[Any, str, list[int]]:
    """(strategy with its precision plugin, accelerator, device indices) for the flags."""
    from runtime.precision import make_precision, normalize_precision
    from runtime.strategies import DDPStrategy, FSDPStrategy, SingleDeviceStrategy, Strategy
    from runtime.strategies.environment import detect

    acc = resolve_accelerator(f.accelerator)
    indices = resolve_devices(acc, f.devices)
    strategy, num_nodes = f.strategy, f.num_nodes
    many = len(indices) > 1 or num_nodes > 1
    if isinstance(strategy, Strategy):
        chosen = strategy
    elif strategy in ("auto", "single_device") and not many:
        chosen = SingleDeviceStrategy(root_device(acc, indices))
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
    elif strategy in STRATEGY_ALIASES or strategy == "auto":
        kind, kw = STRATEGY_ALIASES.get(strategy, ("ddp", {}))
        if strategy == "auto" and interactive():
            kw = {"start_method": "fork"}
        chosen = FSDPStrategy(**kw) if kind == "fsdp" else DDPStrategy(**kw)
    else:
        names = ", ".join(["auto", "single_device", *STRATEGY_ALIASES])
        raise MisconfigurationException(
            f"You selected an invalid strategy name: `strategy={strategy!r}`. Available names "
            f"are: {names}; or pass a strategy object such as `DDPStrategy(...)`."
        )
    if isinstance(chosen, DDPStrategy):
        chosen.configure(acc, indices, num_nodes, detect(len(indices), num_nodes))
    precision = make_precision(normalize_precision(f.precision), acc)
    if precision.name == "bf16-mixed" and acc == "cuda" and not torch.cuda.is_bf16_supported():
        raise MisconfigurationException(
            "precision='bf16-mixed' needs a GPU with bfloat16 support (Ampere or newer); use "
            "'16-mixed' on this GPU."
        )
    chosen.precision_plugin = precision
    if hasattr(chosen, "sync_batchnorm"):
        chosen.sync_batchnorm = f.sync_batchnorm
    if hasattr(chosen, "precision_name"):
        chosen.precision_name = precision.name
        if getattr(precision, "scaler", None) is not None:
            # FSDP's gradients are DTensor shards: they need the sharded scaler
            from torch.distributed.fsdp.sharded_grad_scaler import ShardedGradScaler

            precision.scaler = ShardedGradScaler(acc)
    return chosen, acc, indices
