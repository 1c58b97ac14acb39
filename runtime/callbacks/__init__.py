"""Callbacks: ``from runtime.callbacks import ModelCheckpoint, EarlyStopping, ...``."""

from runtime.callbacks.base import Callback, Checkpoint
from runtime.callbacks.early_stopping import EarlyStopping
from runtime.callbacks.lr_monitor import LearningRateMonitor
from runtime.callbacks.model_checkpoint import ModelCheckpoint
from runtime.callbacks.model_summary import ModelSummary
from runtime.callbacks.on_exception_checkpoint import OnExceptionCheckpoint
from runtime.callbacks.prediction_writer import BasePredictionWriter
from runtime.callbacks.progress import ProgressBar, TQDMProgressBar
from runtime.callbacks.timer import Timer


def __getattr__(name: str):
    # rich is optional: its callbacks are imported when asked for
    if name in ("RichProgressBar", "RichModelSummary", "RichProgressBarTheme"):
        from runtime.callbacks import rich

        return getattr(rich, name)
    if name == "BatchSizeFinder":
        from runtime.callbacks.batch_size_finder import BatchSizeFinder

        return BatchSizeFinder
    if name == "LearningRateFinder":
        from runtime.tuner import LearningRateFinder

        return LearningRateFinder
    raise AttributeError(f"module 'runtime.callbacks' has no attribute {name!r}")


__all__ = [
    "BasePredictionWriter",
    "BatchSizeFinder",
    "Callback",
    "Checkpoint",
    "EarlyStopping",
    "LearningRateFinder",
    "LearningRateMonitor",
    "ModelCheckpoint",
    "ModelSummary",
    "OnExceptionCheckpoint",
    "ProgressBar",
    "RichModelSummary",
    "RichProgressBar",
    "RichProgressBarTheme",
    "TQDMProgressBar",
    "Timer",
]
