"""Rank-zero helpers: run or print only on the process with global rank 0.

The rank is read from the environment at import (RANK, LOCAL_RANK, SLURM_PROCID) and
updated by the strategy once the process group exists.
"""

from __future__ import annotations

import functools
import logging
import os
import warnings
from collections.abc import Callable
from typing import Any

log = logging.getLogger("runtime")


def _rank_from_env() -> int:
    for key in ("RANK", "LOCAL_RANK", "SLURM_PROCID", "JSM_NAMESPACE_RANK"):
        value = os.environ.get(key)
        if value is not None:
            return int(value)
    return 0


def rank_zero_only(fn: Callable | None = None, default: Any = None) -> Callable:
    """Decorator: call ``fn`` on global rank 0 only; other ranks get ``default``."""
    if fn is None:
        return functools.partial(rank_zero_only, default=default)

    @functools.wraps(fn)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if rank_zero_only.rank == 0:
            return fn(*args, **kwargs)
        return default

    return wrapped


rank_zero_only.rank = _rank_from_env()  # type: ignore[attr-defined]


@rank_zero_only
def rank_zero_info(message: str, *args: Any, **kwargs: Any) -> None:
    log.info(message, *args, **kwargs)


@rank_zero_only
def rank_zero_debug(message: str, *args: Any, **kwargs: Any) -> None:
    log.debug(message, *args, **kwargs)


@rank_zero_only
def rank_zero_warn(
    message: str, category: type[Warning] = UserWarning, stacklevel: int = 4
) -> None:
    warnings.warn(message, category, stacklevel=stacklevel)


class PossibleUserWarning(UserWarning):
    """A warning about a set-up that is probably, but not certainly, a mistake."""


_warned: set[str] = set()


def warn_once(message: str, category: type[Warning] = UserWarning) -> None:
    if message not in _warned:
        _warned.add(message)
        rank_zero_warn(message, category, stacklevel=5)
