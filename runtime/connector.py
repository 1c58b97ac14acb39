"""Turns Trainer flags into objects: device, strategy, precision plugin, loggers, callbacks.

Everything here runs once at ``Trainer(...)``; bad values fail here, before any work.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

import torch

from runtime.callbacks.base import Callback, Checkpoint
from runtime.errors import MisconfigurationException
from runtime.rank_zero import rank_zero_info

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
    return reorder_callbacks(cbs)


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
