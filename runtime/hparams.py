"""``save_hyperparameters`` / ``hparams``: the init arguments a module can be rebuilt from."""

from __future__ import annotations

import copy
import enum
import inspect
import pathlib
import types
from argparse import Namespace
from collections.abc import Mapping, Sequence
from typing import Any

from runtime.rank_zero import warn_once
from runtime.utilities import AttributeDict, is_picklable

_PRIMITIVES = (bool, int, float, str, type(None))


def _init_args(frame: types.FrameType) -> dict[str, Any]:
    """The arguments of the ``__init__`` running in ``frame`` (defaults included, **kwargs merged)."""
    code = frame.f_code
    local_vars = frame.f_locals
    n_args = code.co_argcount + code.co_kwonlyargcount
    names = list(code.co_varnames[:n_args])
    out: dict[str, Any] = {}
    for name in names[1:]:  # drop self
        if name in local_vars:
            out[name] = local_vars[name]
    flags = code.co_flags
    idx = n_args
    if flags & inspect.CO_VARARGS:
        idx += 1
    if flags & inspect.CO_VARKEYWORDS:
        extra = local_vars.get(code.co_varnames[idx], {})
        if isinstance(extra, Mapping):
            out.update(extra)
    return out


def _init_frames(obj: Any, start: types.FrameType | None) -> list[types.FrameType]:
    """Every ``__init__`` frame for ``obj`` up the super() chain, innermost (the base class that
    called ``save_hyperparameters``) first: updating a dict in this order lets the subclass's
    value win where both take the same argument, as in Lightning."""
    frames = []
    frame = start
    while frame is not None:
        code = frame.f_code
        # the instance is the first argument, whatever it is called (``def __init__(obj, ...)``)
        first = code.co_varnames[0] if code.co_argcount else None
        if code.co_name == "__init__" and first and frame.f_locals.get(first) is obj:
            frames.append(frame)
        elif frames:
            break
        frame = frame.f_back
    # as Lightning: the __init__ of another object with hyper-parameters that is building this
    # one (a parent module making its child) lends its arguments too, up to the first frame
    # that is no such __init__
    while frame is not None and frames:
        code = frame.f_code
        first = code.co_varnames[0] if code.co_argcount else None
        owner = frame.f_locals.get(first) if first else None
        if code.co_name != "__init__" or not isinstance(owner, HyperparametersMixin):
            break
        if owner is not obj:
            frames.append(frame)
        frame = frame.f_back
    return frames


def rebuild_kwargs(
    cls: type, hparams: dict[str, Any], hparams_name: str | None, overrides: dict[str, Any]
) -> dict[str, Any]:
    """The keyword arguments that rebuild ``cls`` from a checkpoint's hyper-parameters, as
    Lightning: a dict saved through one init argument (``save_hyperparameters(hparams)``) goes
    back as that argument; names the class does not take are dropped unless it takes
    ``**kwargs``; ``overrides`` (given to ``load_from_checkpoint``) win."""
    try:
        params = inspect.signature(cls.__init__).parameters
    except (TypeError, ValueError):
        return {**hparams, **overrides}
    if hparams_name and hparams_name != "kwargs" and hparams_name in params:
        kwargs = {hparams_name: dict(hparams)}
    else:
        kwargs = dict(hparams)
    kwargs.update(overrides)
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        kwargs = {k: v for k, v in kwargs.items() if k in params}
    return kwargs


def to_safe(value: Any) -> tuple[bool, Any]:
    """(ok, value converted to plain types) for a checkpoint that ``weights_only`` can read."""
    if isinstance(value, _PRIMITIVES):
        return True, value
    if isinstance(value, enum.Enum):
        return to_safe(value.value)
    if isinstance(value, pathlib.PurePath):
        return True, str(value)
    if isinstance(value, Namespace):
        value = vars(value)
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            ok, conv = to_safe(v)
            if not ok or not isinstance(k, _PRIMITIVES):
                return False, value
            out[k] = conv
        return True, out
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
        items = []
        for v in value:
            ok, conv = to_safe(v)
            if not ok:
                return False, value
            items.append(conv)
        return True, items if isinstance(value, list) else tuple(items)
    import torch

    if isinstance(value, torch.Tensor):
        return True, value.detach().cpu()
    if isinstance(value, (torch.dtype, torch.device)):
        return True, str(value)
    return False, value


def safe_hparams(hparams: Mapping[str, Any], owner: str) -> dict[str, Any]:
    out = {}
    for key, value in hparams.items():
        ok, conv = to_safe(value)
        if ok:
            out[key] = conv
        elif not is_picklable(value):
            warn_once(
                f"Attribute '{key}' removed from hparams because it cannot be pickled. You can "
                f"suppress this warning by setting `self.save_hyperparameters(ignore=['{key}'])` "
                f"({owner}; pass it again to `load_from_checkpoint(..., {key}=...)`)."
            )
        else:
            warn_once(
                f"{owner}: hyperparameter {key!r} (a {type(value).__name__}) is not a plain value, so it "
                f"is left out of the checkpoint to keep it loadable with `weights_only=True`. Pass it "
                f"again to `load_from_checkpoint(..., {key}=...)`, or use "
                f"`save_hyperparameters(ignore=[{key!r}])` to silence this."
            )
    return out


class HyperparametersMixin:
    __jit_unused_properties__: list[str] = ["hparams", "hparams_initial"]

    def save_hyperparameters(
        self,
        *args: Any,
        ignore: Sequence[str] | str | None = None,
        frame: types.FrameType | None = None,
        logger: bool = True,
    ) -> None:
        """Stores init arguments (or the given dict/Namespace/names) in ``self.hparams``."""
        self._log_hyperparams = logger
        ignore = [ignore] if isinstance(ignore, str) else list(ignore or [])
        caller = frame or inspect.currentframe().f_back  # type: ignore[union-attr]
        init_args: dict[str, Any] = {}
        for f in _init_frames(self, caller) or [caller]:
            init_args.update(_init_args(f))
        if len(args) == 1 and isinstance(args[0], (Mapping, Namespace)):
            given = args[0]
            hp = dict(vars(given) if isinstance(given, Namespace) else given)
            # the init argument that holds it: load_from_checkpoint passes the dict back as that
            # argument (`Model(hparams={...})`), as Lightning
            self._hparams_name = next(
                (
                    k
                    for k, v in init_args.items()
                    if v is given or (isinstance(v, (Mapping, Namespace)) and v == given)
                ),
                None,
            )
        else:
            if args:
                if any(isinstance(a, (bool, int, float, complex)) for a in args):
                    raise ValueError(
                        f"Primitives {(bool, int, float, complex, str)} are not allowed. Pass the "
                        "names of init arguments (strings), or one dict/Namespace."
                    )
                missing = [a for a in args if not isinstance(a, str) or a not in init_args]
                if missing:
                    raise ValueError(
                        f"save_hyperparameters: {missing!r} are not arguments of "
                        f"{type(self).__name__}.__init__; allowed are {sorted(init_args)}."
                    )
                hp = {a: init_args[a] for a in args}
            else:
                hp = init_args
            self._hparams_name = "kwargs"
        current = self.__dict__.get("_hparams")
        for key in ignore:
            hp.pop(key, None)
            # a subclass that ignores what its base class saved removes it (as Lightning)
            if isinstance(current, dict):
                current.pop(key, None)
        import torch.nn as nn

        for key, value in hp.items():
            if isinstance(value, nn.Module):
                warn_once(
                    f"Attribute {key!r} is an instance of `nn.Module` and is already saved during "
                    f"checkpointing. It is recommended to ignore them using "
                    f"`self.save_hyperparameters(ignore=[{key!r}])`."
                )
        self._set_hparams(hp)
        self._hparams_initial = copy.deepcopy(self._hparams)

    def _set_hparams(self, hp: Mapping[str, Any]) -> None:
        # a second call (a subclass saving after its parent did) adds to what is there, as
        # Lightning: the parent's arguments are not lost when the child forwards **kwargs
        current = self.__dict__.get("_hparams")
        if isinstance(current, dict):
            current.update(hp)
        else:
            self._hparams = AttributeDict(hp)

    @property
    def hparams(self) -> AttributeDict:
        if not hasattr(self, "_hparams"):
            self._hparams = AttributeDict()
        return self._hparams

    @property
    def hparams_initial(self) -> AttributeDict:
        if not hasattr(self, "_hparams_initial"):
            return AttributeDict()
        return copy.deepcopy(self._hparams_initial)
