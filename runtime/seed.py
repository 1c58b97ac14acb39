"""Seeding and RNG isolation (``seed_everything``, ``isolate_rng``, checkpointable RNG state)."""

from __future__ import annotations

import contextlib
import os
import random
import sys
from collections.abc import Iterator
from typing import Any

import torch

from runtime.rank_zero import rank_zero_info

_MAX_SEED = 2**32 - 1


def seed_everything(seed: int | None = None, workers: bool = False, verbose: bool = True) -> int:
    """Seeds python, numpy (if installed) and torch; sets ``PL_GLOBAL_SEED`` for child processes.

    ``workers=True`` also sets ``PL_SEED_WORKERS=1`` so DataLoader workers derive distinct seeds.
    """
    if seed is None:
        env = os.environ.get("PL_GLOBAL_SEED")
        seed = int(env) if env is not None else random.randint(0, _MAX_SEED)
    if not isinstance(seed, int):
        try:
            seed = int(seed)
        except (TypeError, ValueError) as e:
            raise ValueError(f"seed_everything: seed must be an integer, got {seed!r}") from e
    if not (0 <= seed <= _MAX_SEED):
        raise ValueError(
            f"seed_everything: seed {seed} is out of range; allowed is 0..{_MAX_SEED}. Pick another seed."
        )
    if verbose:
        rank_zero_info(f"Seed set to {seed}")
    os.environ["PL_GLOBAL_SEED"] = str(seed)
    os.environ["PL_SEED_WORKERS"] = str(int(workers))
    random.seed(seed)
    np = sys.modules.get("numpy")
    if np is None:
        try:
            import numpy as np  # noqa: PLC0415
        except ImportError:
            np = None
    if np is not None:
        np.random.seed(seed)
    torch.manual_seed(seed)
    return seed


def seed_worker(worker_id: int) -> None:
    """DataLoader ``worker_init_fn`` set by ``seed_everything(workers=True)``.

    torch already gives each worker its own torch seed (base seed + worker id); this derives
    python's and numpy's from it too, and mixes in the global rank so ranks differ.
    """
    rank = int(os.environ.get("RANK", os.environ.get("LOCAL_RANK", 0)))
    seed = (torch.initial_seed() + 1_000_003 * rank) % 2**32
    torch.manual_seed(seed)
    random.seed(seed)
    np = sys.modules.get("numpy")
    if np is not None:
        np.random.seed(seed)


def add_worker_seeding(loader: Any) -> Any:
    """Installs ``seed_worker`` on a multi-worker DataLoader that has no ``worker_init_fn``."""
    if os.environ.get("PL_SEED_WORKERS") != "1":
        return loader
    if getattr(loader, "num_workers", 0) > 0 and getattr(loader, "worker_init_fn", 1) is None:
        loader.worker_init_fn = seed_worker
    return loader


def reset_seed() -> None:
    seed = os.environ.get("PL_GLOBAL_SEED")
    if seed is not None:
        seed_everything(
            int(seed), workers=bool(int(os.environ.get("PL_SEED_WORKERS", "0"))), verbose=False
        )


def collect_rng_states() -> dict[str, Any]:
    """RNG states as plain tensors/lists (loadable with ``torch.load(weights_only=True)``)."""
    states: dict[str, Any] = {"torch": torch.get_rng_state(), "python": _py_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["torch.cuda"] = torch.cuda.get_rng_state_all()
    np = sys.modules.get("numpy")
    if np is not None:
        kind, keys, pos, has_gauss, cached = np.random.get_state()
        states["numpy"] = [
            kind,
            torch.from_numpy(keys.astype("int64")),
            int(pos),
            int(has_gauss),
            float(cached),
        ]
    return states


def set_rng_states(states: dict[str, Any]) -> None:
    torch.set_rng_state(states["torch"])
    if "torch.cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["torch.cuda"])
    version, internal, gauss = states["python"]
    random.setstate((version, tuple(internal), gauss))
    np = sys.modules.get("numpy")
    if np is not None and "numpy" in states:
        kind, keys, pos, has_gauss, cached = states["numpy"]
        np.random.set_state((kind, keys.numpy().astype("uint32"), pos, has_gauss, cached))


def _py_state() -> list:
    version, internal, gauss = random.getstate()
    return [version, list(internal), gauss]


@contextlib.contextmanager
def isolate_rng() -> Iterator[None]:
    """Runs the block and restores every global RNG afterwards (the sanity check uses it)."""
    states = collect_rng_states()
    try:
        yield
    finally:
        set_rng_states(states)
