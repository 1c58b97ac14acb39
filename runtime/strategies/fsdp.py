"""``FSDPStrategy``: fully sharded data parallel on torch's FSDP2 (``fully_shard``).

Parameters, gradients and optimizer state are sharded across ranks; checkpoints hold the
full (gathered) state dict, so they load in single-process runs and in Lightning.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from typing import Any

import torch

from runtime.errors import MisconfigurationException
from runtime.strategies.ddp import DDPStrategy


class FSDPStrategy(DDPStrategy):
    """Fully sharded data parallel (FSDP2 ``fully_shard``): parameters, gradients and optimizer
    state sharded over ranks; checkpoints are gathered to full state dicts, so they load in
    any process count."""

    strategy_name = "fsdp"
    _hooks_on_root = True

    def __init__(
        self,
        auto_wrap_policy: Iterable[type] | None = None,
        cpu_offload: bool = False,
        reshard_after_forward: bool = True,
        state_dict_type: str = "full",
        mixed_precision: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        try:
            from torch.distributed.fsdp import fully_shard  # noqa: F401
        except ImportError as e:
            raise MisconfigurationException(
                f"strategy='fsdp' needs torch's FSDP2 (`torch.distributed.fsdp.fully_shard`, torch "
                f">= 2.6); this is torch {torch.__version__}. Upgrade torch or use strategy='ddp'."
            ) from e
        if state_dict_type != "full":
            raise MisconfigurationException(
                f"FSDPStrategy(state_dict_type={state_dict_type!r}): only 'full' checkpoints are "
                "written by this runtime (they load anywhere)."
            )
        self.auto_wrap_policy = set(auto_wrap_policy or ())
        self.cpu_offload = cpu_offload
        self.reshard_after_forward = reshard_after_forward
        self.mixed_precision = mixed_precision
        self.precision_name = "32-true"

    def _mp_policy(self) -> Any:
        from torch.distributed.fsdp import MixedPrecisionPolicy

        if self.mixed_precision is not None:
            return self.mixed_precision
        dtype = {"bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}.get(self.precision_name)
        return (
            MixedPrecisionPolicy(param_dtype=dtype, reduce_dtype=torch.float32)
            if dtype
            else MixedPrecisionPolicy()
        )

    def setup_module(self, module: torch.nn.Module, stage: str = "fit") -> torch.nn.Module:
        from torch.distributed.fsdp import CPUOffloadPolicy, fully_shard

        module.to(self.root_device)
        self._module = module
        self.model = module
        if stage != "fit" or getattr(module, "_runtime_sharded", False):
            return module
        kw: dict[str, Any] = {
            "reshard_after_forward": self.reshard_after_forward,
            "mp_policy": self._mp_policy(),
        }
        if self.cpu_offload:
            kw["offload_policy"] = CPUOffloadPolicy()
        for sub in module.modules():
            if sub is not module and type(sub) in self.auto_wrap_policy:
                fully_shard(sub, **kw)
        fully_shard(module, **kw)
        module._runtime_sharded = True
        return module

    def block_sync(self) -> Any:
        module = self.model
        setter = getattr(module, "set_requires_gradient_sync", None)
        if setter is None:
            return contextlib.nullcontext()

        @contextlib.contextmanager
        def no_sync() -> Any:
            setter(False)
            try:
                yield
            finally:
                setter(True)

        return no_sync()

    def module_state_dict(self, module: torch.nn.Module) -> dict[str, Any]:
        if not getattr(module, "_runtime_sharded", False):
            return module.state_dict()
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

        return get_model_state_dict(
            module, options=StateDictOptions(full_state_dict=True, cpu_offload=True)
        )

    def optimizer_state(self, optimizer: Any) -> dict[str, Any]:
        from torch.distributed.checkpoint.state_dict import (
            StateDictOptions,
            get_optimizer_state_dict,
        )

        return get_optimizer_state_dict(
            self.model, optimizer, options=StateDictOptions(full_state_dict=True, cpu_offload=True)
        )

    def load_optimizer_state(self, optimizer: Any, state: dict) -> None:
        from torch.distributed.checkpoint.state_dict import (
            StateDictOptions,
            set_optimizer_state_dict,
        )

        set_optimizer_state_dict(
            self.model,
            optimizer,
            state,
            options=StateDictOptions(full_state_dict=True, broadcast_from_rank0=False),
        )
