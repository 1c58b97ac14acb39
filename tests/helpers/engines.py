"""Tests that run the same code on the runtime and, where installed, on Lightning."""

from __future__ import annotations

import importlib
from types import ModuleType

# where each engine keeps what the tests reach beyond `import <engine> as L`
_PLACES = {
    "callbacks": ("runtime.callbacks", "lightning.pytorch.callbacks"),
    "loggers": ("runtime.loggers", "lightning.pytorch.loggers"),
    "errors": ("runtime.errors", "lightning.fabric.utilities.exceptions"),
    "warnings": ("runtime.rank_zero", "lightning.fabric.utilities.warnings"),
}


def engines() -> list[str]:
    """``["runtime"]``, plus ``"lightning"`` when it is installed."""
    try:
        importlib.import_module("lightning")
    except ImportError:
        return ["runtime"]
    return ["runtime", "lightning"]


def engine_module(engine: str, place: str) -> ModuleType:
    """The engine's module for ``place`` (``callbacks``, ``loggers``, ``errors``, ``warnings``)."""
    runtime_name, lightning_name = _PLACES[place]
    return importlib.import_module(runtime_name if engine == "runtime" else lightning_name)
