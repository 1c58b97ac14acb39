"""``Logger`` base class and the ``version_N`` folder convention."""

from __future__ import annotations

import os
import re
from argparse import Namespace
from collections.abc import Mapping
from typing import Any

from runtime.rank_zero import rank_zero_only


def next_version(root: str) -> int:
    """1 + the highest ``version_N`` under ``root`` (0 when there is none)."""
    if not os.path.isdir(root):
        return 0
    found = [
        int(m.group(1))
        for d in os.listdir(root)
        if (m := re.fullmatch(r"version_(\d+)", d)) and os.path.isdir(os.path.join(root, d))
    ]
    return max(found) + 1 if found else 0


def flatten_params(params: Mapping[str, Any] | Namespace | None, sep: str = "/") -> dict[str, Any]:
    if params is None:
        return {}
    if isinstance(params, Namespace):
        params = vars(params)
    out: dict[str, Any] = {}
    for k, v in params.items():
        if isinstance(v, Namespace):
            v = vars(v)
        if isinstance(v, Mapping):
            for kk, vv in flatten_params(v, sep).items():
                out[f"{k}{sep}{kk}"] = vv
        else:
            out[str(k)] = v
    return out


class Logger:
    """What the trainer needs from a logger; subclasses write somewhere."""

    @property
    def name(self) -> str | None:
        return None

    @property
    def version(self) -> int | str | None:
        return None

    @property
    def root_dir(self) -> str | None:
        return None

    @property
    def log_dir(self) -> str | None:
        return None

    @property
    def save_dir(self) -> str | None:
        return None

    @property
    def group_separator(self) -> str:
        return "/"

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        raise NotImplementedError

    def log_hyperparams(self, params: Any, *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError

    def log_graph(self, model: Any, input_array: Any = None) -> None: ...

    def save(self) -> None: ...

    def finalize(self, status: str) -> None:
        self.save()

    def after_save_checkpoint(self, checkpoint_callback: Any) -> None: ...


class FolderLogger(Logger):
    """A logger writing into ``save_dir/name/version_N`` (the next free N unless given)."""

    _save_dir: str
    _name: str
    _version: int | str | None

    @property
    def name(self) -> str:
        return self._name

    @property
    def version(self) -> int | str:
        if self._version is None:
            self._version = next_version(self.root_dir)
        return self._version

    @property
    def root_dir(self) -> str:
        return os.path.join(self._save_dir, self._name)

    @property
    def save_dir(self) -> str:
        return self._save_dir

    @property
    def log_dir(self) -> str:
        version = self.version if isinstance(self.version, str) else f"version_{self.version}"
        return os.path.join(self.root_dir, version)


class _NullExperiment:
    """What ``DummyLogger.experiment`` gives: every attribute is a call that does nothing, and
    indexing gives the experiment again, so ``self.logger.experiment.add_image(...)`` in user code
    runs unchanged under ``fast_dev_run``."""

    def _nothing(self, *args: Any, **kwargs: Any) -> None:
        return None

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return self._nothing

    def __getitem__(self, idx: Any) -> _NullExperiment:
        return self

    def __setitem__(self, idx: Any, value: Any) -> None:
        pass


class DummyLogger(Logger):
    """Swallows everything (used by ``fast_dev_run``): any method call is accepted and does
    nothing, and ``experiment`` answers every attribute."""

    def __init__(self) -> None:
        super().__init__()
        self._experiment = _NullExperiment()

    @property
    def experiment(self) -> _NullExperiment:
        return self._experiment

    def __getattr__(self, name: str) -> Any:
        # a logger-specific method (``log_image``, ``log_table`` ...) called on the dummy
        if name.startswith("_"):
            raise AttributeError(name)
        return self._experiment._nothing

    def __getitem__(self, idx: int) -> DummyLogger:
        return self

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None: ...

    def log_hyperparams(self, params: Any, *args: Any, **kwargs: Any) -> None: ...

    @property
    def name(self) -> str:
        return ""

    @property
    def version(self) -> str:
        return ""


__all__ = [
    "DummyLogger",
    "FolderLogger",
    "Logger",
    "flatten_params",
    "next_version",
    "rank_zero_only",
]
