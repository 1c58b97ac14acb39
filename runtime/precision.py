"""Precision plugins: which dtype the steps run in, and how backward/step are scaled.

Autocast wraps only the ``*_step`` methods (as Lightning does); backward, the optimizer step
and the other hooks run outside it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import torch

from runtime.errors import MisconfigurationException
from runtime.rank_zero import rank_zero_warn

PRECISIONS = ("16-true", "16-mixed", "bf16-true", "bf16-mixed", "32-true", "64-true")
_LEGACY = {
    16: "16-mixed",
    "16": "16-mixed",
    "bf16": "bf16-mixed",
    32: "32-true",
    "32": "32-true",
    64: "64-true",
    "64": "64-true",
}


def normalize_precision(value: Any) -> str:
    """Maps every spelling Lightning accepts to its 2.x string (``16`` -> ``'16-mixed'``)."""
    if value is None:
        return "32-true"
    if isinstance(value, str) and value in PRECISIONS:
        return value
    if isinstance(value, (int, str)) and not isinstance(value, bool) and value in _LEGACY:
        if value in (16, "16", "bf16"):
            rank_zero_warn(
                f"`precision={value!r}` is supported for historical reasons but its usage is "
                f"discouraged. Please set your precision to {_LEGACY[value]!r} instead!"
            )
        return _LEGACY[value]
    allowed = ", ".join(repr(p) for p in PRECISIONS + (16, 32, 64, "16", "32", "64", "bf16"))
    raise ValueError(
        f"Precision {value!r} is invalid. Allowed precision values: {allowed}. "
        "For mixed precision on a GPU use '16-mixed' or 'bf16-mixed'."
    )


class Precision:
    """Full precision (``32-true``): every method is a pass-through."""

    name = "32-true"

    def step_context(self) -> contextlib.AbstractContextManager:
        return contextlib.nullcontext()

    def convert_module(self, module: torch.nn.Module) -> torch.nn.Module:
        return module

    def convert_input(self, batch: Any) -> Any:
        return batch

    def scale_loss(self, loss: torch.Tensor) -> torch.Tensor:
        return loss

    def optimizer_step(
        self, optimizer: Any, closure: Callable, after_closure: Callable, **kwargs: Any
    ) -> Any:
        def wrapped() -> Any:
            out = closure()
            after_closure(optimizer)
            return out

        return optimizer.step(closure=wrapped, **kwargs)

    def unscale(self, optimizer: Any) -> None: ...

    def module_init_context(self) -> contextlib.AbstractContextManager:
        """Where parameters are created (``Trainer.init_module``): the default dtype."""
        return contextlib.nullcontext()

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None: ...

    @property
    def state_key(self) -> str:
        return type(self).__qualname__


class MixedPrecision(Precision):
    """``16-mixed`` / ``bf16-mixed``: autocast around the steps; a GradScaler for fp16."""

    def __init__(self, name: str, device_type: str) -> None:
        self.name = name
        self.device_type = device_type
        self.dtype = torch.float16 if name == "16-mixed" else torch.bfloat16
        self.scaler = torch.amp.GradScaler(device_type) if name == "16-mixed" else None

    def step_context(self) -> contextlib.AbstractContextManager:
        return torch.autocast(self.device_type, dtype=self.dtype)

    def scale_loss(self, loss: torch.Tensor) -> torch.Tensor:
        return self.scaler.scale(loss) if self.scaler is not None else loss

    def optimizer_step(
        self, optimizer: Any, closure: Callable, after_closure: Callable, **kwargs: Any
    ) -> Any:
        scaler = self.scaler
        if scaler is None:
            return super().optimizer_step(optimizer, closure, after_closure, **kwargs)
        if isinstance(optimizer, torch.optim.LBFGS):
            raise MisconfigurationException(
                "AMP (precision='16-mixed') and the LBFGS optimizer are not compatible: LBFGS "
                "re-evaluates the closure, which a GradScaler cannot scale. Use '32-true' or "
                "'bf16-mixed'."
            )
        out = closure()
        if out is None:  # training_step returned None: no backward happened
            return None
        scaler.unscale_(optimizer)
        after_closure(optimizer)
        result = scaler.step(optimizer, **kwargs)
        scaler.update()
        return result

    def unscale(self, optimizer: Any) -> None:
        if self.scaler is not None:
            self.scaler.unscale_(optimizer)

    def state_dict(self) -> dict:
        return self.scaler.state_dict() if self.scaler is not None else {}

    def load_state_dict(self, state: dict) -> None:
        if self.scaler is not None and state:
            self.scaler.load_state_dict(state)


class HalfPrecision(Precision):
    """``16-true`` / ``bf16-true`` / ``64-true``: module and floating inputs in one dtype."""

    _DTYPES = {"16-true": torch.float16, "bf16-true": torch.bfloat16, "64-true": torch.float64}

    def __init__(self, name: str) -> None:
        self.name = name
        self.dtype = self._DTYPES[name]

    def convert_module(self, module: torch.nn.Module) -> torch.nn.Module:
        return module.to(dtype=self.dtype)

    def convert_input(self, batch: Any) -> Any:
        return _cast_floats(batch, self.dtype)

    def module_init_context(self) -> contextlib.AbstractContextManager:
        return self.step_context()

    @contextlib.contextmanager
    def step_context(self) -> Any:
        previous = torch.get_default_dtype()
        torch.set_default_dtype(self.dtype)
        try:
            yield
        finally:
            torch.set_default_dtype(previous)


DoublePrecision = HalfPrecision


def _cast_floats(data: Any, dtype: torch.dtype) -> Any:
    if isinstance(data, torch.Tensor):
        return data.to(dtype) if data.is_floating_point() else data
    if isinstance(data, (list, tuple)) and not hasattr(data, "_fields"):
        return type(data)(_cast_floats(d, dtype) for d in data)
    if isinstance(data, dict):
        return {k: _cast_floats(v, dtype) for k, v in data.items()}
    return data


def make_precision(name: str, device_type: str) -> Precision:
    if name == "16-mixed" and device_type == "cpu":
        rank_zero_warn(
            "You passed `Trainer(accelerator='cpu', precision='16-mixed')` but AMP with fp16 is "
            "not supported on CPU. Using `precision='bf16-mixed'` instead."
        )
        name = "bf16-mixed"
    if name == "32-true":
        return Precision()
    if name in ("16-mixed", "bf16-mixed"):
        return MixedPrecision(name, device_type)
    return HalfPrecision(name)
