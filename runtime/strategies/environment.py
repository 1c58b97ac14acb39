"""Where rank, world size and the rendezvous address come from.

torchrun and SLURM start every process themselves (each is one rank; nothing is spawned).
Otherwise this process is the launcher, and the runtime starts the other local ranks.
"""

from __future__ import annotations

import os
import re
import socket
from dataclasses import dataclass

from runtime.errors import MisconfigurationException


@dataclass
class ClusterEnvironment:
    name: str
    creates_processes_externally: bool
    world_size: int
    global_rank: int
    local_rank: int
    node_rank: int
    main_address: str
    main_port: int


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_in_use(address: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((address if address not in ("localhost",) else "127.0.0.1", port))
        except OSError:
            return True
    return False


def _slurm_main_address(nodelist: str) -> str:
    """First host of a SLURM nodelist such as ``gpu[03-05,07],cpu01``."""
    m = re.match(r"([^,\[]+)(\[([^\]]+)\])?", nodelist)
    if not m:
        return "127.0.0.1"
    prefix, _, ranges = m.groups()
    if not ranges:
        return prefix
    first = ranges.split(",")[0].split("-")[0]
    return prefix + first


def detect(num_processes: int, num_nodes: int) -> ClusterEnvironment:
    env = os.environ
    expected = num_processes * num_nodes
    if "TORCHELASTIC_RUN_ID" in env or all(
        k in env for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")
    ):
        cluster = ClusterEnvironment(
            "torchelastic" if "TORCHELASTIC_RUN_ID" in env else "env",
            True,
            int(env["WORLD_SIZE"]),
            int(env["RANK"]),
            int(env["LOCAL_RANK"]),
            int(env.get("GROUP_RANK", env.get("NODE_RANK", 0))),
            env["MASTER_ADDR"],
            int(env["MASTER_PORT"]),
        )
    elif "SLURM_NTASKS" in env and env.get("SLURM_JOB_NAME") not in ("bash", "interactive"):
        port = int(env.get("MASTER_PORT", 15000 + int(env.get("SLURM_JOB_ID", "0")[-4:] or 0)))
        cluster = ClusterEnvironment(
            "slurm",
            True,
            int(env["SLURM_NTASKS"]),
            int(env["SLURM_PROCID"]),
            int(env.get("SLURM_LOCALID", 0)),
            int(env.get("SLURM_NODEID", 0)),
            env.get("MASTER_ADDR") or _slurm_main_address(env.get("SLURM_NODELIST", "127.0.0.1")),
            port,
        )
    else:
        if num_nodes > 1:
            raise MisconfigurationException(
                f"Trainer(num_nodes={num_nodes}) needs a cluster environment that starts one process "
                "per rank on every node: launch the script with `torchrun --nnodes "
                f"{num_nodes} --nproc-per-node {num_processes} ...` or `srun` under SLURM (found "
                "neither: no RANK/WORLD_SIZE/LOCAL_RANK or SLURM_NTASKS in the environment)."
            )
        return ClusterEnvironment(
            "local",
            False,
            expected,
            0,
            0,
            0,
            env.get("MASTER_ADDR", "127.0.0.1"),
            int(env.get("MASTER_PORT", 0)),
        )
    if cluster.world_size != expected:
        raise MisconfigurationException(
            f"The {cluster.name} environment says WORLD_SIZE={cluster.world_size}, but "
            f"Trainer(devices={num_processes}, num_nodes={num_nodes}) expects {expected} processes. "
            f"Set devices={cluster.world_size // max(num_nodes, 1)} and num_nodes to match the launch "
            "command."
        )
    return cluster
