"""Small helpers shared by the trainer: batch movement, batch-size inference, overrides."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping, Sequence
from typing import Any

import torch

from runtime.combined_loader import CombinedLoader  # noqa: F401  (lightning.pytorch.utilities)
from runtime.errors import MisconfigurationException
from runtime.rank_zero import (  # noqa: F401  (re-exported: `from lightning.pytorch.utilities import rank_zero_only`)
    rank_zero_debug,
    rank_zero_info,
    rank_zero_only,
    rank_zero_warn,
)


class AttributeDict(dict):
    """A dict whose keys are also attributes (``hparams.lr`` and ``hparams["lr"]``)."""

    def __getattr__(self, key: str) -> Any:
        try:
            return self[key]
        except KeyError as e:
            raise AttributeError(f"'AttributeDict' object has no attribute '{key}'") from e

    def __setattr__(self, key: str, value: Any) -> None:
        self[key] = value

    def __delattr__(self, key: str) -> None:
        del self[key]

    def __repr__(self) -> str:
        if not self:
            return ""
        width = max(len(str(k)) for k in self)
        return "\n".join(
            f'"{k}":{" " * (width - len(str(k)))} {v}' for k, v in sorted(self.items())
        )


def is_overridden(name: str, obj: Any, base: type) -> bool:
    """True when ``type(obj)`` (or an instance patch) defines ``name`` differently from ``base``.

    A hook set to None (``model.validation_step = None``, a way older tutorials switch a loop
    off) counts as not defined, as in Lightning."""
    if obj is None:
        return False
    patched = getattr(obj, "__dict__", {})
    if name in patched:
        attr = patched[name]
        if attr is None:
            return False
        # a wrapper around the inherited hook (functools.wraps/update_wrapper, partial) does not
        # override it; only new code does
        attr = getattr(attr, "__wrapped__", attr)
        if isinstance(attr, functools.partial):
            attr = attr.func
        if attr is None:  # a wrapper around a hook set to None
            return False
        code = getattr(getattr(attr, "__func__", attr), "__code__", None)
        base_code = getattr(getattr(base, name, None), "__code__", None)
        return code is None or base_code is None or code is not base_code
    impl = getattr(type(obj), name, None)
    base_impl = getattr(base, name, None)
    if impl is None or base_impl is None:
        return impl is not None
    return getattr(impl, "__code__", impl) is not getattr(base_impl, "__code__", base_impl)


def move_data_to_device(batch: Any, device: torch.device) -> Any:
    """Moves every tensor (and object with a ``.to``) in a nested collection to ``device``."""
    if isinstance(batch, torch.Tensor):
        if batch.device == device:
            return batch
        return batch.to(device, non_blocking=device.type == "cuda")
    if isinstance(batch, (list, tuple)):
        moved = [move_data_to_device(b, device) for b in batch]
        if type(batch) is list or type(batch) is tuple:
            return moved if type(batch) is list else tuple(moved)
        if hasattr(batch, "_fields"):  # namedtuple
            return type(batch)(*moved)
        return type(batch)(moved)
    if isinstance(batch, Mapping):
        out = {k: move_data_to_device(v, device) for k, v in batch.items()}
        try:
            return type(batch)(out)
        except TypeError:
            return out
    if dataclasses.is_dataclass(batch) and not isinstance(batch, type):
        changes = {
            f.name: move_data_to_device(getattr(batch, f.name), device)
            for f in dataclasses.fields(batch)
            if f.init
        }
        return dataclasses.replace(batch, **changes)
    to = getattr(batch, "to", None)
    if callable(to) and not isinstance(batch, (str, bytes, type)):
        try:
            return to(device)
        except TypeError:
            return batch
    return batch


def _first_tensor_size(batch: Any) -> int | None:
    if isinstance(batch, torch.Tensor):
        return 1 if batch.ndim == 0 else int(batch.size(0))
    if isinstance(batch, (str, bytes)):
        return None
    if isinstance(batch, Mapping):
        items: Any = batch.values()
    elif dataclasses.is_dataclass(batch) and not isinstance(batch, type):
        items = (getattr(batch, f.name) for f in dataclasses.fields(batch))
    elif isinstance(batch, Sequence) or hasattr(batch, "__iter__") and not hasattr(batch, "to"):
        items = batch
    else:
        return None
    for item in items:
        size = _first_tensor_size(item)
        if size is not None:
            return size
    return None


def extract_batch_size(batch: Any) -> int:
    """Size of the first dimension of the first tensor found in ``batch``."""
    size = _first_tensor_size(batch)
    if size is None:
        raise MisconfigurationException(
            "Could not infer the batch size for `self.log(..., on_epoch=True)`: the batch "
            f"(a {type(batch).__name__}) holds no tensor. Pass `batch_size=` to `self.log`."
        )
    return size


def convert_tensors_to_scalars(metrics: Mapping[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in metrics.items():
        out[k] = v.item() if isinstance(v, torch.Tensor) else v
    return out


def has_len(loader: Any) -> bool:
    try:
        n = len(loader)
    except (TypeError, NotImplementedError):
        return False
    return n is not None


def is_picklable(obj: object) -> bool:
    """Whether ``obj`` survives ``pickle.dumps`` (what a hyperparameter needs for some loggers)."""
    import pickle

    try:
        pickle.dumps(obj)
    except (pickle.PicklingError, TypeError, AttributeError):
        return False
    return True
