"""``Timer``: stop training after a wall-clock budget; ``Trainer(max_time=...)`` adds one."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

from runtime.callbacks.base import Callback
from runtime.errors import MisconfigurationException
from runtime.rank_zero import rank_zero_info

_STAGES = ("train", "validate", "test")
_INTERVALS = ("step", "epoch")


def parse_duration(value: Any, name: str = "duration") -> float | None:
    """Seconds from a ``timedelta``, a dict of ``timedelta`` arguments or ``"DD:HH:MM:SS"``."""
    if value is None:
        return None
    usage = "use 'DD:HH:MM:SS', a datetime.timedelta or a dict such as {'minutes': 5}."
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0:
        return float(value)  # seconds (how the Trainer hands max_time over)
    if isinstance(value, dict):
        try:
            return timedelta(**value).total_seconds()
        except TypeError as e:
            raise MisconfigurationException(f"{name}={value!r}: {e}; {usage}") from e
    if isinstance(value, str):
        try:
            parts = [int(p) for p in value.split(":")]
        except ValueError:
            parts = []
        if len(parts) != 4:
            raise MisconfigurationException(f"{name}={value!r}: {usage}")
        d, h, m, s = parts
        return timedelta(days=d, hours=h, minutes=m, seconds=s).total_seconds()
    raise MisconfigurationException(f"{name}={value!r}: {usage}")


class Timer(Callback):
    """Stops ``fit`` once training has run for ``duration`` (checked after every batch with
    ``interval="step"``, after every epoch with ``"epoch"``) and keeps the time spent in each stage
    (``time_elapsed("train")``, ``time_remaining()``). Its state is checkpointed, so a resumed run
    gets only what is left of the budget.

    Args:
        duration: ``"DD:HH:MM:SS"``, a ``timedelta``, a dict of ``timedelta`` arguments, or None
            (measure only).
        interval: ``"step"`` or ``"epoch"``.
        verbose: print when the limit is reached.
    """

    def __init__(self, duration: Any = None, interval: str = "step", verbose: bool = True) -> None:
        if interval not in _INTERVALS:
            raise MisconfigurationException(
                f"Unsupported parameter value `Timer(interval={interval})`. Possible values are: "
                f"{', '.join(_INTERVALS)}."
            )
        seconds = parse_duration(duration, "Timer(duration)")
        self._duration = seconds
        self._interval = interval
        self._verbose = verbose
        self._start: dict[str, float | None] = dict.fromkeys(_STAGES)
        self._end: dict[str, float | None] = dict.fromkeys(_STAGES)
        self._offset = 0.0  # training time of the run this one resumed

    @property
    def duration(self) -> float | None:
        return self._duration

    def start_time(self, stage: str = "train") -> float | None:
        return self._start[stage]

    def end_time(self, stage: str = "train") -> float | None:
        return self._end[stage]

    def time_elapsed(self, stage: str = "train") -> float:
        """Seconds spent in ``stage`` (training: including the run this one resumed)."""
        start, end = self._start[stage], self._end[stage]
        offset = self._offset if stage == "train" else 0.0
        if start is None:
            return offset
        return offset + ((end if end is not None else time.monotonic()) - start)

    def time_remaining(self, stage: str = "train") -> float | None:
        if self._duration is None:
            return None
        return self._duration - self.time_elapsed(stage)

    # ------------------------------------------------------------------ hooks
    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        self._start["train"], self._end["train"] = time.monotonic(), None

    def on_train_end(self, trainer: Any, pl_module: Any) -> None:
        self._end["train"] = time.monotonic()

    def on_validation_start(self, trainer: Any, pl_module: Any) -> None:
        self._start["validate"], self._end["validate"] = time.monotonic(), None

    def on_validation_end(self, trainer: Any, pl_module: Any) -> None:
        self._end["validate"] = time.monotonic()

    def on_test_start(self, trainer: Any, pl_module: Any) -> None:
        self._start["test"], self._end["test"] = time.monotonic(), None

    def on_test_end(self, trainer: Any, pl_module: Any) -> None:
        self._end["test"] = time.monotonic()

    def on_fit_start(self, trainer: Any, pl_module: Any) -> None:
        # already over budget (a resumed run that used it all): do not start at all
        if self._duration is not None and self.time_elapsed("train") >= self._duration:
            trainer.should_stop = True

    def on_train_batch_end(
        self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if self._interval == "step":
            self._check(trainer)

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        if self._interval == "epoch":
            self._check(trainer)

    def _check(self, trainer: Any) -> None:
        if self._duration is None:
            return
        up = self.time_elapsed("train") >= self._duration
        up = trainer.strategy.reduce_boolean_decision(up, all=False)  # every rank stops together
        if up:
            trainer.should_stop = True
            if self._verbose:
                elapsed = timedelta(seconds=int(self.time_elapsed("train")))
                rank_zero_info(
                    f"Time limit reached. Elapsed time is {elapsed}. Signaling Trainer to stop."
                )

    def state_dict(self) -> dict[str, Any]:
        return {"time_elapsed": {stage: self.time_elapsed(stage) for stage in _STAGES}}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._offset = float((state_dict.get("time_elapsed") or {}).get("train", 0.0))
