"""``Strategy`` base and ``SingleDeviceStrategy``: one process, one device, no communication."""

from __future__ import annotations

import contextlib
from typing import Any

import torch

from runtime.loops.dispatch import call_cb, call_lm


class Strategy:
    """What the trainer asks of a strategy. The single-device answers are the defaults.

    A strategy owns what runs where: the ``LightningModule`` it was connected to
    (``trainer.lightning_module``), the model it wraps (``model``: DDP/FSDP wrappers), and the
    precision plugin (``precision_plugin``: autocast, loss scaling, optimizer step), as
    Lightning's and Fabric's strategies do; ``backward`` is the one place a loss is
    back-propagated (automatic and manual optimization alike)."""

    launcher: Any = None

    def __init__(self, device: torch.device | str | None = None) -> None:
        self._root_device = torch.device(device) if device is not None else torch.device("cpu")
        self.model: Any = None
        self._lightning_module: Any = None
        self.precision_plugin: Any = None  # set by the Trainer (``precision=`` flag)

    @property
    def lightning_module(self) -> Any:
        """The ``LightningModule`` this strategy runs (unwrapped)."""
        return self._lightning_module

    def connect(self, model: Any) -> None:
        """Attach the ``LightningModule`` to run (``trainer.lightning_module`` reads it)."""
        self._lightning_module = model
        self.model = model

    def backward(
        self, closure_loss: torch.Tensor, optimizer: Any, *args: Any, **kwargs: Any
    ) -> Any:
        """``on_before_backward`` hooks, the precision plugin's loss scaling, the module's
        ``backward`` hook, ``on_after_backward`` hooks; ``optimizer`` is None in manual mode."""
        trainer = self._lightning_module.trainer
        call_cb(trainer, "on_before_backward", closure_loss)
        call_lm(trainer, "on_before_backward", closure_loss)
        scaled = self.precision_plugin.scale_loss(closure_loss)
        call_lm(trainer, "backward", scaled, *args, **kwargs)
        call_cb(trainer, "on_after_backward")
        call_lm(trainer, "on_after_backward")
        return closure_loss

    @contextlib.contextmanager
    def tensor_init_context(self, empty_init: bool | None = None) -> Any:
        """Tensors created inside land on this strategy's device, in the precision's dtype
        (``Trainer.init_module``)."""
        with self._root_device, self.precision_plugin.module_init_context():
            yield

    @property
    def root_device(self) -> torch.device:
        return self._root_device

    @property
    def world_size(self) -> int:
        return 1

    @property
    def global_rank(self) -> int:
        return 0

    @property
    def local_rank(self) -> int:
        return 0

    @property
    def node_rank(self) -> int:
        return 0

    @property
    def is_global_zero(self) -> bool:
        return self.global_rank == 0

    def setup_environment(self) -> None: ...

    def training_step(self, module: Any, *args: Any) -> Any:
        return module.training_step(*args)

    def run_step(self, module: Any, name: str, *args: Any) -> Any:
        return getattr(module, name)(*args)

    def load_optimizer_state(self, optimizer: Any, state: dict) -> None:
        optimizer.load_state_dict(state)

    def reduce_boolean_decision(self, decision: bool, all: bool = True) -> bool:
        return decision

    def setup_module(self, module: torch.nn.Module, stage: str = "fit") -> torch.nn.Module:
        """Moves the module to the device; returns what the trainer calls (``trainer.model``)."""
        module.to(self.root_device)
        self.model = module
        return module

    def module_state_dict(self, module: torch.nn.Module) -> dict[str, Any]:
        return module.state_dict()

    def optimizer_state(self, optimizer: Any) -> dict[str, Any]:
        return optimizer.state_dict()

    def block_sync(self) -> contextlib.AbstractContextManager:
        """Context for accumulating batches (DDP's ``no_sync``); nothing to block here."""
        return contextlib.nullcontext()

    def reduce(self, tensor: Any, group: Any = None, reduce_op: str | None = "mean") -> Any:
        return tensor

    def all_gather(self, data: Any, group: Any = None, sync_grads: bool = False) -> Any:
        return data

    def broadcast(self, obj: Any, src: int = 0) -> Any:
        return obj

    def barrier(self, name: str | None = None) -> None: ...

    def on_exception(self, exception: BaseException) -> None: ...

    def teardown(self) -> None: ...


class SingleDeviceStrategy(Strategy):
    """One process on one device (cpu, cuda:N or mps)."""
