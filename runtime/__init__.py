"""runtime: a light, Lightning-compatible trainer. ``import runtime as L`` mirrors ``import lightning as L``.

Importing this package costs little on top of ``import torch``: loggers, tensorboard,
torchmetrics and yaml are imported only when used.
"""

from __future__ import annotations

from typing import Any

from runtime.callbacks.base import Callback
from runtime.datamodule import LightningDataModule
from runtime.module import LightningModule
from runtime.seed import seed_everything
from runtime.trainer import Trainer

__version__ = "0.1.0"

__all__ = [
    "Callback",
    "LightningDataModule",
    "LightningModule",
    "Trainer",
    "seed_everything",
    "__version__",
]


def __getattr__(name: str) -> Any:
    # `L.pytorch.callbacks...` as written against `import lightning as L`
    if name == "pytorch":
        import runtime

        return runtime
    if name in ("callbacks", "loggers", "strategies", "utilities", "cli", "profilers", "tuner"):
        import importlib

        return importlib.import_module(f"runtime.{name}")
    if name == "metrics":
        raise AttributeError(
            "`pl.metrics` was removed in Lightning 1.5; metrics live in the `torchmetrics` "
            "package: `pip install torchmetrics` and use e.g. `torchmetrics.Accuracy`."
        )
    raise AttributeError(f"module 'runtime' has no attribute {name!r}")
