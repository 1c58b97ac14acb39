"""``DDPStrategy``: one process per device, gradients all-reduced by torch's DistributedDataParallel."""

from __future__ import annotations

import atexit
import contextlib
import os
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist

from runtime.errors import MisconfigurationException
from runtime.rank_zero import rank_zero_only
from runtime.strategies.environment import ClusterEnvironment
from runtime.strategies.single import Strategy

_STATE = {"failed": False}


def _leave_process_group() -> None:
    """At interpreter exit: meet the other ranks (bounded wait, skipped after a failure), then
    leave the group. A process that exits while gloo work threads still hold Python objects can
    abort with "terminate called without an active exception"."""
    if not dist.is_initialized():
        return
    try:
        if not _STATE["failed"] and dist.get_backend() == "gloo":
            dist.monitored_barrier(timeout=timedelta(seconds=30))
    except Exception:  # noqa: BLE001 - a peer already gone: just leave
        pass
    try:
        dist.destroy_process_group()
    except Exception:  # noqa: BLE001 - best effort at interpreter exit
        pass


_REDUCE_OPS = {"sum": "SUM", "max": "MAX", "min": "MIN", "mean": "SUM"}


class DDPStrategy(Strategy):
    """Data-parallel training over processes with ``torch.distributed`` and
    ``DistributedDataParallel``: one process per device, started by the runtime (``ddp``:
    the script again for each rank; ``ddp_spawn``/``ddp_fork``: the trainer call in fresh
    processes) or by torchrun/SLURM. Holds the process group, the wrapped model and the
    reductions (``reduce``, ``all_gather``, ``broadcast``, ``barrier``)."""

    strategy_name = "ddp"

    def __init__(
        self,
        accelerator: Any = None,
        parallel_devices: Any = None,
        cluster_environment: ClusterEnvironment | None = None,
        process_group_backend: str | None = None,
        timeout: timedelta | None = timedelta(minutes=30),
        start_method: str = "popen",
        find_unused_parameters: bool = False,
        **ddp_kwargs: Any,
    ) -> None:
        super().__init__()
        if start_method not in ("popen", "spawn", "fork", "forkserver"):
            raise MisconfigurationException(
                f"DDPStrategy(start_method={start_method!r}): allowed are 'popen', 'spawn', 'fork', "
                "'forkserver'."
            )
        self.process_group_backend = process_group_backend
        self.timeout = timeout
        self.start_method = start_method
        self.find_unused_parameters = find_unused_parameters
        self.ddp_kwargs = ddp_kwargs
        self.cluster: ClusterEnvironment | None = cluster_environment
        self.num_processes = 1
        self.num_nodes = 1
        self.accelerator = "cpu"
        self.device_ids: list[int] = [0]
        self.sync_batchnorm = False
        self._launcher: Any = None
        self._spawned = False
        self._module: Any = None

    # ------------------------------------------------------------------ configuration
    def configure(
        self, accelerator: str, device_ids: list[int], num_nodes: int, cluster: ClusterEnvironment
    ) -> None:
        self.accelerator, self.device_ids, self.num_nodes = accelerator, device_ids, num_nodes
        self.num_processes = len(device_ids)
        self.cluster = cluster

    @property
    def is_spawn(self) -> bool:
        return self.start_method in ("spawn", "fork", "forkserver")

    @property
    def world_size(self) -> int:
        return (
            dist.get_world_size() if dist.is_initialized() else self.num_processes * self.num_nodes
        )

    @property
    def global_rank(self) -> int:
        if dist.is_initialized():
            return dist.get_rank()
        return int(os.environ.get("RANK", 0))

    @property
    def local_rank(self) -> int:
        return int(os.environ.get("LOCAL_RANK", 0))

    @property
    def node_rank(self) -> int:
        return int(os.environ.get("NODE_RANK", os.environ.get("GROUP_RANK", 0)))

    @property
    def root_device(self) -> torch.device:
        if self.accelerator == "cuda":
            return torch.device("cuda", self.device_ids[self.local_rank % len(self.device_ids)])
        return torch.device(self.accelerator)

    @property
    def backend(self) -> str:
        return self.process_group_backend or ("nccl" if self.accelerator == "cuda" else "gloo")

    # ------------------------------------------------------------------ processes
    def needs_launch(self) -> bool:
        return (
            self.world_size > 1
            and not self._spawned
            and self.cluster is not None
            and not self.cluster.creates_processes_externally
            and "LOCAL_RANK" not in os.environ
        )

    def launch_popen(self) -> None:
        from runtime.strategies.launchers import SubprocessLauncher

        self._launcher = SubprocessLauncher(self.cluster, self.num_processes, self.num_nodes)
        self._launcher.launch()

    def setup_environment(self) -> None:
        """Joins the process group (once per process) and makes rank-zero helpers rank-aware."""
        from runtime.strategies.launchers import watch_parent

        if self.needs_launch() and not self.is_spawn:
            self.launch_popen()
        if not dist.is_initialized() and "RANK" not in os.environ and self.world_size == 1:
            # one process under strategy='ddp'/'fsdp': a group of one, on a free local port
            from runtime.strategies.environment import free_port

            os.environ.update(
                {
                    "MASTER_ADDR": "127.0.0.1",
                    "MASTER_PORT": str(free_port()),
                    "RANK": "0",
                    "LOCAL_RANK": "0",
                    "WORLD_SIZE": "1",
                }
            )
        if not dist.is_initialized():
            watch_parent()
            if self.accelerator == "cuda":
                torch.cuda.set_device(self.root_device)
            dist.init_process_group(
                self.backend,
                rank=int(os.environ["RANK"]),
                world_size=int(os.environ["WORLD_SIZE"]),
                timeout=self.timeout,
            )
            atexit.register(_leave_process_group)
        rank_zero_only.rank = self.global_rank

    def setup_module(self, module: torch.nn.Module, stage: str = "fit") -> torch.nn.Module:
        module.to(self.root_device)
        self._module = module
        self.model = module
        if stage != "fit":
            return module
        if self.sync_batchnorm:
            if self.accelerator != "cuda":
                raise MisconfigurationException(
                    "Trainer(sync_batchnorm=True) needs CUDA: torch's SyncBatchNorm only runs on "
                    "GPU modules. Remove the flag for CPU runs."
                )
            module = torch.nn.SyncBatchNorm.convert_sync_batchnorm(module)
        if not any(p.requires_grad for p in module.parameters()):
            self.model = module
            return module
        ids = [self.root_device.index] if self.accelerator == "cuda" else None
        self.model = torch.nn.parallel.DistributedDataParallel(
            module,
            device_ids=ids,
            find_unused_parameters=self.find_unused_parameters,
            **self.ddp_kwargs,
        )
        return self.model

    def training_step(self, module: Any, *args: Any) -> Any:
        return self.run_step(module, "training_step", *args)

    def backward(
        self, closure_loss: torch.Tensor, optimizer: Any, *args: Any, **kwargs: Any
    ) -> Any:
        """With manual optimization ``manual_backward`` runs inside the wrapper's forward,
        possibly several times (GANs, micro-batch loops): each backward is announced to the
        reducer first, as DDP's own forward would do for the one backward it expects."""
        module = self._lightning_module
        ddp = torch.nn.parallel.DistributedDataParallel
        if isinstance(self.model, ddp) and not module.automatic_optimization:
            _announce_backward(self.model, closure_loss)
        return super().backward(closure_loss, optimizer, *args, **kwargs)

    def run_step(self, module: Any, name: str, *args: Any) -> Any:
        """Runs a ``*_step`` through the wrapper's ``forward`` so its hooks (DDP's reducer, FSDP's
        unshard) see the step, as Lightning's forward redirection does."""
        wrapper = self.model
        step = getattr(module, name)
        if wrapper is None or (wrapper is module and not self._hooks_on_root):
            return step(*args)

        def redirected(*a: Any, **k: Any) -> Any:
            module.__dict__.pop("forward", None)
            return step(*a, **k)

        module.__dict__["forward"] = redirected  # bypasses nn.Module.__setattr__ on purpose
        try:
            return wrapper(*args)
        finally:
            module.__dict__.pop("forward", None)

    _hooks_on_root = False

    def load_optimizer_state(self, optimizer: Any, state: dict) -> None:
        optimizer.load_state_dict(state)

    def block_sync(self) -> Any:
        no_sync = getattr(self.model, "no_sync", None)
        return no_sync() if no_sync is not None else contextlib.nullcontext()

    # ------------------------------------------------------------------ collectives
    def reduce(self, tensor: Any, group: Any = None, reduce_op: str | None = "mean") -> Any:
        if not isinstance(tensor, torch.Tensor) or not dist.is_initialized():
            return tensor
        op = (reduce_op or "mean").lower()
        out = tensor.detach().clone()
        dist.all_reduce(out, op=getattr(dist.ReduceOp, _REDUCE_OPS.get(op, "SUM")), group=group)
        if op in ("mean", "avg"):
            out = out / dist.get_world_size(group)
        return out

    def sync_metric(self, value: torch.Tensor, reduce: str) -> torch.Tensor:
        return self.reduce(
            value.to(self.root_device) if self.backend == "nccl" else value, reduce_op=reduce
        )

    def all_gather(self, data: Any, group: Any = None, sync_grads: bool = False) -> Any:
        if isinstance(data, dict):
            return {k: self.all_gather(v, group, sync_grads) for k, v in data.items()}
        if isinstance(data, (list, tuple)):
            return type(data)(self.all_gather(v, group, sync_grads) for v in data)
        if not isinstance(data, torch.Tensor):
            data = torch.tensor(data, device=self.root_device)
        if sync_grads:
            import torch.distributed.nn.functional as dist_fn

            return torch.stack(dist_fn.all_gather(data, group=group or dist.group.WORLD))
        out = [torch.zeros_like(data) for _ in range(dist.get_world_size(group))]
        dist.all_gather(out, data.contiguous(), group=group)
        return torch.stack(out)

    def broadcast(self, obj: Any, src: int = 0) -> Any:
        if not dist.is_initialized():
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=src)
        return box[0]

    def barrier(self, name: str | None = None) -> None:
        if dist.is_initialized():
            dist.barrier()

    def reduce_boolean_decision(self, decision: bool, all: bool = True) -> bool:
        if not dist.is_initialized():
            return decision
        t = torch.tensor(int(decision), device=self.root_device)
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
        return bool(t.item() == self.world_size) if all else bool(t.item() > 0)

    def on_exception(self, exception: BaseException) -> None:
        _STATE["failed"] = True

    def teardown(self) -> None:
        if isinstance(self.model, torch.nn.parallel.DistributedDataParallel):
            self.model = self._module


def _announce_backward(model: Any, loss: Any) -> None:
    """Tell DDP's reducer a backward pass over ``loss`` is coming (the bookkeeping its forward
    does for automatic training): buckets are (re)built outside autograd, and with
    ``find_unused_parameters`` the tensors the graph starts from are handed over."""
    if not (torch.is_grad_enabled() and model.require_backward_grad_sync):
        model.require_forward_param_sync = False
        return
    model.require_forward_param_sync = True
    reducer = model.reducer
    reducer._rebuild_buckets()
    roots: list = []
    if model.find_unused_parameters and not getattr(model, "static_graph", False):
        roots = [t for t in _tensors_in(loss) if t.requires_grad]
    reducer.prepare_for_backward(roots)


def _tensors_in(value: Any) -> list:
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, dict):
        return [t for v in value.values() for t in _tensors_in(v)]
    if isinstance(value, (list, tuple)):
        return [t for v in value for t in _tensors_in(v)]
    return []
