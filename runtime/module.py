"""``LightningModule``: a ``torch.nn.Module`` with training hooks, logging and checkpoint I/O.

Owns what the user's model sees (``self.log``, ``self.optimizers()``, ``self.device`` ...).
Does not own when hooks run (``runtime.loops``) nor how values are reduced (``results.py``).
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator, Mapping
from typing import Any

import torch
from torch import nn

from runtime.errors import MisconfigurationException
from runtime.hooks import CheckpointHooks, DataHooks, ModelHooks
from runtime.hparams import HyperparametersMixin
from runtime.rank_zero import rank_zero_warn, warn_once


class _ClassOnly:
    """A classmethod that refuses to be called on an instance (its result would be lost)."""

    def __init__(self, fn: Any) -> None:
        self.fn = fn

    def __get__(self, instance: Any, owner: type) -> Any:
        if instance is not None:

            def refuse(*args: Any, **kwargs: Any) -> Any:
                raise TypeError(
                    f"The classmethod `{owner.__name__}.{self.fn.__name__}` cannot be called on an "
                    "instance. Call it on the class and use the return value: "
                    f"`model = {owner.__name__}.{self.fn.__name__}(path)`."
                )

            return refuse
        return self.fn.__get__(owner, type(owner))


def _check_loggable(name: str, value: Any) -> None:
    """What ``self.log`` accepts: a number, a scalar tensor or a torchmetrics ``Metric``
    (Lightning's wording, checked before anything else, with or without a Trainer)."""
    if isinstance(value, (int, float, torch.Tensor)):
        return
    tm = sys.modules.get("torchmetrics")
    if tm is not None and isinstance(value, tm.Metric):
        return
    if isinstance(value, dict) and any(isinstance(v, dict) for v in value.values()):
        raise ValueError(
            f"`self.log({name}, {value})` was called, but nested dictionaries cannot be logged"
        )
    bad = value
    if isinstance(value, (dict, list, tuple)):
        items = value.values() if isinstance(value, dict) else value
        bad = next((v for v in items if not isinstance(v, (int, float, torch.Tensor))), value)
    raise ValueError(
        f"`self.log({name}, {value})` was called, but `{type(bad).__name__}` values cannot be "
        "logged. Log a number, a scalar tensor or a torchmetrics Metric (`self.log_dict` for "
        "several values)."
    )


class LightningModule(HyperparametersMixin, ModelHooks, DataHooks, CheckpointHooks, nn.Module):
    """A ``torch.nn.Module`` that also says how it is trained: ``training_step``,
    ``configure_optimizers`` and, optionally, validation/test/predict steps and hooks.

    The same class runs on ``runtime.Trainer`` and on Lightning's; checkpoints are in
    Lightning's format (``state_dict``, ``hyper_parameters``, loops, callbacks)."""

    # checkpoint keys, as Lightning names them
    CHECKPOINT_HYPER_PARAMS_KEY = "hyper_parameters"
    CHECKPOINT_HYPER_PARAMS_NAME = "hparams_name"
    CHECKPOINT_HYPER_PARAMS_TYPE = "hparams_type"

    __jit_unused_properties__: list[str] = [
        "example_input_array",
        "on_gpu",
        "current_epoch",
        "global_step",
        "global_rank",
        "local_rank",
        "logger",
        "loggers",
        "automatic_optimization",
        "trainer",
        "fabric",
        "strict_loading",
        "device_mesh",
        "hparams",
        "hparams_initial",
        "dtype",
        "device",
        "_current_fx_name",
    ]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._trainer: Any = None
        self._automatic_optimization = True
        self._strict_loading: bool | None = None
        self._example_input_array: Any = None
        self._device = torch.device("cpu")
        self._dtype = torch.get_default_dtype()
        self._log_hyperparams = False  # save_hyperparameters(logger=True) turns it on
        self._param_requires_grad_state: dict[int, bool] = {}  # set by toggle_optimizer

    # ------------------------------------------------------------------ properties
    @property
    def _current_fx_name(self) -> str | None:
        """The hook running now (Lightning's attribute); None outside a running stage."""
        results = getattr(self._trainer, "_results", None)
        if results is None:
            return self.__dict__.get("_fx_name_set")
        return results.fx

    @_current_fx_name.setter
    def _current_fx_name(self, name: str | None) -> None:
        # tests and some user code set it by hand (Lightning's is a plain attribute)
        results = getattr(self._trainer, "_results", None)
        if results is not None:
            results.fx = name
        else:
            self.__dict__["_fx_name_set"] = name

    @property
    def trainer(self) -> Any:
        if self._trainer is None and not torch.jit.is_scripting():
            raise RuntimeError(f"{type(self).__name__} is not attached to a `Trainer`.")
        return self._trainer

    @trainer.setter
    def trainer(self, trainer: Any) -> None:
        """Also for the LightningModules nested inside (an ensemble's members), as Lightning."""
        for module in self.modules():
            if isinstance(module, LightningModule):
                module._trainer = trainer

    @property
    def device(self) -> torch.device:
        return self._device

    @property
    def dtype(self) -> torch.dtype:
        return self._dtype

    @property
    def on_gpu(self) -> bool:
        return self._device.type == "cuda"

    @property
    def automatic_optimization(self) -> bool:
        return self._automatic_optimization

    @automatic_optimization.setter
    def automatic_optimization(self, value: bool) -> None:
        self._automatic_optimization = bool(value)

    @property
    def strict_loading(self) -> bool:
        return True if self._strict_loading is None else self._strict_loading

    @strict_loading.setter
    def strict_loading(self, value: bool) -> None:
        self._strict_loading = value

    @property
    def example_input_array(self) -> Any:
        return self._example_input_array

    @example_input_array.setter
    def example_input_array(self, value: Any) -> None:
        self._example_input_array = value

    @property
    def current_epoch(self) -> int:
        return self._trainer.current_epoch if self._trainer is not None else 0

    @property
    def global_step(self) -> int:
        return self._trainer.global_step if self._trainer is not None else 0

    @property
    def global_rank(self) -> int:
        return self._trainer.global_rank if self._trainer is not None else 0

    @property
    def local_rank(self) -> int:
        return self._trainer.local_rank if self._trainer is not None else 0

    @property
    def logger(self) -> Any:
        return self._trainer.logger if self._trainer is not None else None

    @property
    def loggers(self) -> list:
        return self._trainer.loggers if self._trainer is not None else []

    def __dir__(self) -> list[str]:
        # torch.jit.trace probes every name in dir(); `trainer` raises when no trainer is attached
        names = super().__dir__()
        return names if self._trainer is not None else [n for n in names if n != "trainer"]

    # nn.Module.to/cuda/cpu/half... keep device and dtype in sync
    def _apply(self, fn: Any, *args: Any, **kwargs: Any) -> LightningModule:
        out = super()._apply(fn, *args, **kwargs)
        for t in self.parameters():
            self._device, self._dtype = t.device, t.dtype if t.is_floating_point() else self._dtype
            break
        else:
            for t in self.buffers():
                self._device = t.device
                break
        return out

    # ------------------------------------------------------------------ steps
    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return super().forward(*args, **kwargs)

    def training_step(self, *args: Any, **kwargs: Any) -> Any:
        raise MisconfigurationException(
            f"{type(self).__name__} defines no `training_step`. Add "
            "`def training_step(self, batch, batch_idx): ...` returning the loss."
        )

    def validation_step(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError

    def test_step(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError

    def predict_step(self, *args: Any, **kwargs: Any) -> Any:
        batch = kwargs.get("batch", args[0] if args else None)
        return self(batch)

    def configure_optimizers(self) -> Any:
        raise MisconfigurationException(
            f"{type(self).__name__} defines no `configure_optimizers`. Add one that returns an "
            "optimizer, e.g. `return torch.optim.Adam(self.parameters(), lr=1e-3)`."
        )

    def configure_callbacks(self) -> Any:
        return []

    # ------------------------------------------------------------------ logging
    def log(
        self,
        name: str,
        value: Any,
        prog_bar: bool = False,
        logger: bool | None = None,
        on_step: bool | None = None,
        on_epoch: bool | None = None,
        reduce_fx: Any = "mean",
        enable_graph: bool = False,
        sync_dist: bool = False,
        sync_dist_group: Any = None,
        add_dataloader_idx: bool = True,
        batch_size: int | None = None,
        metric_attribute: str | None = None,
        rank_zero_only: bool = False,
    ) -> None:
        """Records ``value`` under ``name`` for the progress bar, loggers and callbacks."""
        _check_loggable(name, value)
        trainer = self._trainer
        results = trainer._results if trainer is not None else None
        if results is None:
            if trainer is None:
                warn_once(
                    "You are trying to `self.log()` but the `self.trainer` reference is not "
                    "registered on the model yet (the module is not attached to a `Trainer`); "
                    "the call is ignored."
                )
            elif trainer.barebones:  # each call (Python's filter shows it once per place)
                rank_zero_warn(
                    "You are trying to `self.log()` but `Trainer(barebones=True)` is configured. "
                    "Logging can impact raw speed so it is disabled under this setting."
                )
            else:
                raise MisconfigurationException(
                    f"You are trying to `self.log({name!r})` but the loop's result collection is "
                    "not registered yet: no fit/validate/test stage is running (`predict` and its "
                    "hooks cannot log). Log from a training, validation or test hook."
                )
            return
        if not isinstance(name, str):
            raise ValueError(f"self.log: `name` must be a str, got {type(name).__name__}.")
        if add_dataloader_idx and "/dataloader_idx_" in name:
            raise MisconfigurationException(
                f"You called `self.log` with the key `{name}` but it should not contain "
                "information about `dataloader_idx` when `add_dataloader_idx=True`"
            )
        if metric_attribute is None:
            self._check_metric_attribute(name, value)
        if logger and not trainer.loggers:
            rank_zero_warn(
                f"You called `self.log({name!r}, ..., logger=True)` but have no logger configured. "
                "You can enable one by doing `Trainer(logger=ALogger(...))`"
            )
        results.log(
            name,
            value,
            prog_bar,
            logger,
            on_step,
            on_epoch,
            reduce_fx,
            enable_graph,
            sync_dist,
            add_dataloader_idx,
            batch_size,
            self._device,
        )

    def _check_metric_attribute(self, name: str, value: Any) -> None:
        """A logged torchmetrics ``Metric`` must be an attribute of the module (its state is
        reset and saved through it), as Lightning requires."""
        import sys

        tm = sys.modules.get("torchmetrics")
        if tm is None or not isinstance(value, tm.Metric):
            return
        attributes = self.__dict__.get("_metric_attributes")
        if attributes is None or id(value) not in attributes:  # metrics added since (setup)
            attributes = {id(m): n for n, m in self.named_modules() if isinstance(m, tm.Metric)}
            self.__dict__["_metric_attributes"] = attributes
        if not attributes:
            raise MisconfigurationException(
                "Could not find the `LightningModule` attribute for the `torchmetrics.Metric` "
                "logged. You can fix this by setting an attribute for the metric in your "
                "`LightningModule`."
            )
        if id(value) not in attributes:
            raise MisconfigurationException(
                "Could not find the `LightningModule` attribute for the `torchmetrics.Metric` "
                f"logged. You can fix this by calling `self.log({name}, ..., "
                f"metric_attribute=name)` where `name` is one of {list(attributes.values())}"
            )

    def log_dict(
        self,
        dictionary: Mapping[str, Any],
        prog_bar: bool = False,
        logger: bool | None = None,
        on_step: bool | None = None,
        on_epoch: bool | None = None,
        reduce_fx: Any = "mean",
        enable_graph: bool = False,
        sync_dist: bool = False,
        sync_dist_group: Any = None,
        add_dataloader_idx: bool = True,
        batch_size: int | None = None,
        rank_zero_only: bool = False,
    ) -> None:
        tm = __import__("sys").modules.get("torchmetrics")
        if tm is not None and isinstance(dictionary, tm.MetricCollection):
            # as Lightning: metrics sharing a compute group keep sharing their state (a copy per
            # metric would undo the group and compute each one again)
            grouped = bool(getattr(dictionary, "_enable_compute_groups", False))
            dictionary = dict(dictionary.items(keep_base=False, copy_state=not grouped))
        if any(isinstance(v, dict) for v in dictionary.values()):
            raise ValueError(
                f"`self.log_dict({dictionary})` was called, but nested dictionaries cannot be logged"
            )
        for k, v in dictionary.items():
            self.log(
                k,
                v,
                prog_bar=prog_bar,
                logger=logger,
                on_step=on_step,
                on_epoch=on_epoch,
                reduce_fx=reduce_fx,
                enable_graph=enable_graph,
                sync_dist=sync_dist,
                add_dataloader_idx=add_dataloader_idx,
                batch_size=batch_size,
            )

    def print(self, *args: Any, **kwargs: Any) -> None:
        if self.trainer.is_global_zero:
            progress = self.trainer._progress_bar_callback
            if progress is not None and hasattr(progress, "print"):
                progress.print(*args, **kwargs)
            else:
                print(*args, **kwargs)

    # ------------------------------------------------------------------ optimization
    def optimizers(self, use_pl_optimizer: bool = True) -> Any:
        opts = self.trainer._lightning_optimizers if use_pl_optimizer else self.trainer.optimizers
        if isinstance(opts, list) and len(opts) == 1:
            return opts[0]
        return opts

    def lr_schedulers(self) -> Any:
        configs = self.trainer.lr_scheduler_configs
        if not configs:
            return None
        scheds = [c.scheduler for c in configs]
        return scheds[0] if len(scheds) == 1 else scheds

    def manual_backward(self, loss: torch.Tensor, *args: Any, **kwargs: Any) -> None:
        trainer = self.trainer
        if self._automatic_optimization:
            raise MisconfigurationException(
                "`manual_backward` is for manual optimization only. Set "
                "`self.automatic_optimization = False` in `__init__`, or return the loss from "
                "`training_step` and let the Trainer call backward."
            )
        trainer.strategy.backward(loss, None, *args, **kwargs)

    def backward(self, loss: torch.Tensor, *args: Any, **kwargs: Any) -> None:
        loss.backward(*args, **kwargs)

    def optimizer_step(
        self, epoch: int, batch_idx: int, optimizer: Any, optimizer_closure: Any = None
    ) -> None:
        optimizer.step(closure=optimizer_closure)

    def optimizer_zero_grad(self, epoch: int, batch_idx: int, optimizer: Any) -> None:
        optimizer.zero_grad()

    def lr_scheduler_step(self, scheduler: Any, metric: Any) -> None:
        if metric is None:
            scheduler.step()
        else:
            scheduler.step(metric)

    def configure_gradient_clipping(
        self,
        optimizer: Any,
        gradient_clip_val: float | None = None,
        gradient_clip_algorithm: str | None = None,
    ) -> None:
        self.clip_gradients(
            optimizer,
            gradient_clip_val=gradient_clip_val,
            gradient_clip_algorithm=gradient_clip_algorithm,
        )

    def clip_gradients(
        self,
        optimizer: Any,
        gradient_clip_val: float | None = None,
        gradient_clip_algorithm: str | None = None,
    ) -> None:
        trainer = self._trainer
        if trainer is not None and self._automatic_optimization:
            t_val, t_alg = trainer.gradient_clip_val, trainer.gradient_clip_algorithm
            if gradient_clip_val is None:
                gradient_clip_val = t_val
            elif t_val is not None and t_val != gradient_clip_val:
                raise MisconfigurationException(
                    f"You have set `Trainer(gradient_clip_val={t_val!r})` and have passed "
                    f"`clip_gradients(gradient_clip_val={gradient_clip_val!r})`. Please use only one "
                    "of them."
                )
            if gradient_clip_algorithm is None:
                gradient_clip_algorithm = t_alg
            elif t_alg is not None and t_alg != gradient_clip_algorithm:
                raise MisconfigurationException(
                    f"You have set `Trainer(gradient_clip_algorithm={t_alg!r})` and have passed "
                    f"`clip_gradients(gradient_clip_algorithm={gradient_clip_algorithm!r})`. "
                    "Please use only one of them."
                )
        if not gradient_clip_val:
            return
        algorithm = gradient_clip_algorithm or "norm"
        if algorithm not in ("norm", "value"):
            raise MisconfigurationException(
                f"gradient_clip_algorithm={algorithm!r} is not supported; use 'norm' or 'value'."
            )
        params = [p for g in optimizer.param_groups for p in g["params"] if p.grad is not None]
        if algorithm == "norm":
            torch.nn.utils.clip_grad_norm_(params, gradient_clip_val)
        else:
            torch.nn.utils.clip_grad_value_(params, gradient_clip_val)

    def toggle_optimizer(self, optimizer: Any) -> None:
        """Freezes (``requires_grad=False``) parameters that only other optimizers own. The
        ``requires_grad`` of every optimizer's parameters is recorded (Lightning's
        ``_param_requires_grad_state``) and put back by ``untoggle_optimizer``."""
        state: dict[int, bool] = {}
        for opt in self.trainer.optimizers:
            for g in opt.param_groups:
                for p in g["params"]:
                    if id(p) not in state:
                        state[id(p)] = p.requires_grad
                        p.requires_grad = False
        for g in optimizer.param_groups:
            for p in g["params"]:
                p.requires_grad = state.get(id(p), p.requires_grad)
        self._param_requires_grad_state = state

    def untoggle_optimizer(self, optimizer: Any) -> None:
        state = self._param_requires_grad_state
        for opt in self.trainer.optimizers:
            for g in opt.param_groups:
                for p in g["params"]:
                    if id(p) in state:
                        p.requires_grad = state[id(p)]
        self._param_requires_grad_state = {}

    @contextlib.contextmanager
    def toggled_optimizer(self, optimizer: Any) -> Iterator[None]:
        self.toggle_optimizer(optimizer)
        try:
            yield
        finally:
            self.untoggle_optimizer(optimizer)

    def all_gather(self, data: Any, group: Any = None, sync_grads: bool = False) -> Any:
        if self._trainer is None:
            return data
        return self._trainer.strategy.all_gather(data, group=group, sync_grads=sync_grads)

    # ------------------------------------------------------------------ utilities
    def freeze(self) -> LightningModule:
        """No gradients for any parameter, and eval mode; returns the module (as Lightning 2.6)."""
        for p in self.parameters():
            p.requires_grad = False
        return self.eval()

    def unfreeze(self) -> LightningModule:
        """Undoes ``freeze``: gradients on, train mode; returns the module."""
        for p in self.parameters():
            p.requires_grad = True
        return self.train()

    @torch.no_grad()
    def to_torchscript(
        self,
        file_path: str | os.PathLike | None = None,
        method: str = "script",
        example_inputs: Any = None,
        **kwargs: Any,
    ) -> Any:
        mode = self.training
        self.eval()
        try:
            if method == "script":
                script = torch.jit.script(self, **kwargs)
            elif method == "trace":
                inputs = self.example_input_array if example_inputs is None else example_inputs
                if inputs is None:
                    raise ValueError(
                        "to_torchscript(method='trace') needs inputs: pass `example_inputs=` or set "
                        "`self.example_input_array`."
                    )
                script = torch.jit.trace(self, inputs, **kwargs)
            else:
                raise ValueError(
                    f"to_torchscript: method={method!r}; allowed are 'script', 'trace'."
                )
        finally:
            self.train(mode)
        if file_path is not None:
            torch.jit.save(script, file_path)
        return script

    @torch.no_grad()
    def to_onnx(
        self, file_path: str | os.PathLike | None = None, input_sample: Any = None, **kwargs: Any
    ) -> Any:
        try:
            import onnx  # noqa: F401
        except ImportError as e:
            raise ModuleNotFoundError(
                f"`{type(self).__name__}.to_onnx()` requires `onnx`: `pip install onnx`."
            ) from e
        sample = self.example_input_array if input_sample is None else input_sample
        if sample is None:
            raise ValueError("to_onnx needs `input_sample=` or `self.example_input_array`.")
        mode = self.training
        self.eval()
        try:
            args = sample if isinstance(sample, tuple) else (sample,)
            return torch.onnx.export(self, args, file_path, **kwargs)
        finally:
            self.train(mode)

    @_ClassOnly
    def load_from_checkpoint(
        cls,
        checkpoint_path: Any,
        map_location: Any = None,
        hparams_file: Any = None,
        strict: bool | None = None,
        weights_only: bool | None = None,
        **kwargs: Any,
    ) -> Any:
        """Rebuilds the module from the saved hyper-parameters (``kwargs`` override them)."""
        from runtime.checkpoint import load_module_from_checkpoint

        return load_module_from_checkpoint(
            cls, checkpoint_path, map_location, hparams_file, strict, weights_only, kwargs
        )
