"""Starting the other local ranks when this process was started as plain ``python train.py``.

``popen``: re-runs the same command line for ranks 1..N-1 with the rank environment set (as
Lightning and torchrun do); every rank runs the script from the top. ``spawn`` / ``fork``: runs
the trainer call itself in N fresh processes and brings rank 0's results back. In both, a rank
that dies takes the whole job down with a non-zero exit instead of leaving the others hanging.
"""

from __future__ import annotations

import atexit
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any

from runtime.errors import MisconfigurationException
from runtime.strategies.environment import ClusterEnvironment, free_port, port_in_use


def _script_command() -> list[str]:
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    if spec is not None and spec.name and spec.name != "__main__":
        return [sys.executable, "-m", spec.name.removesuffix(".__main__"), *sys.argv[1:]]
    script = getattr(main, "__file__", None)
    if not script or not os.path.exists(sys.argv[0] if sys.argv else ""):
        raise MisconfigurationException(
            "devices > 1 with strategy='ddp' re-runs the script for every extra rank, but this "
            "process was not started from a script file (a notebook or `python -c`?). Use "
            "strategy='ddp_spawn' (or 'ddp_fork' in a notebook), or launch with torchrun."
        )
    return [sys.executable, os.path.abspath(sys.argv[0]), *sys.argv[1:]]


def check_port(env: ClusterEnvironment) -> int:
    if env.main_port:
        if port_in_use(env.main_address, env.main_port):
            raise MisconfigurationException(
                f"MASTER_PORT={env.main_port} on {env.main_address} is already in use. Unset "
                "MASTER_PORT to let the runtime pick a free port, or choose another one."
            )
        return env.main_port
    return free_port()


class SubprocessLauncher:
    """Rank 0 is this process; ranks 1..N-1 are the same command in child processes."""

    def __init__(self, env: ClusterEnvironment, num_processes: int, num_nodes: int) -> None:
        self.env = env
        self.num_processes = num_processes
        self.num_nodes = num_nodes
        self.children: list[subprocess.Popen] = []

    def launch(self) -> None:
        command = _script_command()
        port = check_port(self.env)
        os.environ.update(
            {
                "MASTER_ADDR": self.env.main_address,
                "MASTER_PORT": str(port),
                "WORLD_SIZE": str(self.num_processes * self.num_nodes),
                "NODE_RANK": "0",
                "LOCAL_RANK": "0",
                "RANK": "0",
                "RUNTIME_LAUNCHER_PID": str(os.getpid()),
            }
        )
        self.env.main_port = port
        for local_rank in range(1, self.num_processes):
            env = {**os.environ, "LOCAL_RANK": str(local_rank), "RANK": str(local_rank)}
            self.children.append(subprocess.Popen(command, env=env))
        self.failed = False
        hook = sys.excepthook

        def excepthook(*info):  # rank 0 dies: the others must not wait for it
            self.failed = True
            hook(*info)

        sys.excepthook = excepthook
        atexit.register(self.finish)
        threading.Thread(target=self._watch, daemon=True, name="runtime-rank-watchdog").start()

    def _watch(self) -> None:
        while True:
            for i, child in enumerate(self.children, start=1):
                code = child.poll()
                if code not in (None, 0):
                    print(
                        f"[runtime] rank {i} exited with code {code}; stopping the job.",
                        file=sys.stderr,
                        flush=True,
                    )
                    self.kill()
                    os._exit(1)
            time.sleep(0.2)

    def finish(self, timeout: float | None = None) -> None:
        """At rank 0's exit: give the other ranks time to run the rest of the script (code after
        ``fit``, their own exit handlers), then kill whatever is still running."""
        if timeout is None:
            timeout = float(os.environ.get("RUNTIME_RANK_EXIT_TIMEOUT", "120"))
        if getattr(self, "failed", False):
            timeout = 0.0
        deadline = time.monotonic() + timeout
        for child in self.children:
            try:
                child.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                break
        self.kill()

    def kill(self) -> None:
        for child in self.children:
            if child.poll() is None:
                child.send_signal(signal.SIGKILL)

    def wait(self) -> None:
        for child in self.children:
            child.wait()


def watch_parent() -> None:
    """In a child rank: exit as soon as the launching process is gone."""
    parent = os.environ.get("RUNTIME_LAUNCHER_PID")
    if not parent or os.getpid() == int(parent):
        return
    ppid = os.getppid()

    def check() -> None:
        while True:
            if os.getppid() != ppid:
                os._exit(1)
            time.sleep(0.5)

    threading.Thread(target=check, daemon=True, name="runtime-parent-watch").start()


# ---------------------------------------------------------------------- spawn / fork
def _spawn_entry(
    rank: int,
    trainer: Any,
    fn: str,
    args: tuple,
    kwargs: dict,
    port: int,
    world: int,
    out_path: str,
) -> None:
    os.environ.update(
        {
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(port),
            "WORLD_SIZE": str(world),
            "RANK": str(rank),
            "LOCAL_RANK": str(rank),
            "NODE_RANK": "0",
        }
    )
    trainer.strategy._spawned = True
    _unshare(args)
    result = getattr(trainer, fn)(*args, **kwargs)
    _finish_spawned(rank, trainer, result, out_path)
    _exit_rank()


def _exit_rank() -> None:
    """End a spawned rank that finished its work: what a normal exit does while the interpreter
    is fully alive (non-daemon threads joined, atexit handlers, streams flushed), then leave
    without interpreter finalization.

    gloo's worker threads drop their last reference to a finished collective a moment after
    the caller sees it complete; when that collective held a tensor Python had let go of, the
    drop needs the GIL. If the main thread is already finalizing by then, the worker thread
    cannot take the GIL and the process aborts ("terminate called without an active
    exception", seen about once in 30 ddp_spawn runs). Skipping finalization removes the race;
    everything a rank owes its parent was written before this point."""
    main = threading.main_thread()
    for t in threading.enumerate():
        if t is not main and not t.daemon:
            t.join()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # noqa: BLE001 - a closed stream: nothing left to write
            pass
    os._exit(0)


def _finish_spawned(rank: int, trainer: Any, result: Any, out_path: str) -> None:
    import torch.distributed as dist

    if rank == 0:
        import torch

        module = trainer.lightning_module
        cb = trainer.checkpoint_callback
        torch.save(
            {
                "state_dict": {k: v.detach().cpu() for k, v in module.state_dict().items()},
                "result": result,
                "callback_metrics": {
                    k: v.detach().cpu() if hasattr(v, "detach") else v
                    for k, v in trainer.callback_metrics.items()
                },
                "fit_loop": trainer.fit_loop.state_dict(),
                "state": (trainer.state.fn, trainer.state.status),
                "best_model_path": getattr(cb, "best_model_path", None),
                "best_model_score": getattr(cb, "best_model_score", None),
                "last_model_path": getattr(cb, "last_model_path", None),
            },
            out_path,
        )
    # leave the process group together: a rank exiting while gloo still talks to it aborts
    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def _unshare(args: tuple) -> None:
    """torch.multiprocessing hands tensors to the workers in shared memory: every rank would
    step the same parameters. Give each rank its own copy of every module's tensors."""
    import torch

    for obj in args:
        if isinstance(obj, torch.nn.Module):
            with torch.no_grad():
                for t in (*obj.parameters(), *obj.buffers()):
                    t.data = t.data.clone()


def _kill_all(processes: list) -> None:
    for p in processes:
        if p.is_alive():
            p.kill()
    for p in processes:
        p.join(timeout=5)


def spawn(trainer: Any, fn: str, args: tuple, kwargs: dict, world: int, start_method: str) -> Any:
    """Runs ``trainer.<fn>(*args, **kwargs)`` on ``world`` fresh processes; returns rank 0's result."""
    import torch
    import torch.multiprocessing as mp

    port = free_port()
    with tempfile.TemporaryDirectory(prefix="runtime-spawn-") as tmp:
        out_path = os.path.join(tmp, "rank0.pt")
        context = mp.start_processes(
            _spawn_entry,
            args=(trainer, fn, args, kwargs, port, world, out_path),
            nprocs=world,
            start_method=start_method,
            join=False,
        )
        try:
            while not context.join():
                pass
        except BaseException:
            # a failing rank (join raises and stops the others itself), Ctrl-C or a test
            # timeout in this process: no rank may outlive the call
            _kill_all(context.processes)
            raise
        payload = torch.load(out_path, weights_only=False)
    module = args[0] if args and hasattr(args[0], "load_state_dict") else trainer.lightning_module
    if module is not None:
        module.load_state_dict(payload["state_dict"])
        trainer.lightning_module = module
    trainer._callback_metrics = payload["callback_metrics"]
    trainer.state.fn, trainer.state.status = payload["state"]  # as rank 0 left it (finished)
    trainer.state.stage = None
    trainer.fit_loop.load_state_dict(payload["fit_loop"])
    cb = trainer.checkpoint_callback
    if cb is not None and payload["best_model_path"] is not None:
        cb.best_model_path = payload["best_model_path"]
        cb.best_model_score = payload["best_model_score"]
        cb.last_model_path = payload["last_model_path"]
    return payload["result"]
