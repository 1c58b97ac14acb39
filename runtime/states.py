"""What a Trainer is doing: the entry point called (``fn``), its status, and the running stage.

The values are ``str`` enums with Lightning's values, so ``trainer.state.fn == "fit"``,
``trainer.state.fn == TrainerFn.FITTING`` and ``trainer.state.fn.value`` all work.
"""

from __future__ import annotations

from enum import Enum


class _StrEnum(str, Enum):
    def __str__(self) -> str:
        return self.value

    def __hash__(self) -> int:
        return hash(self.value)


class TrainerFn(_StrEnum):
    """The ``Trainer`` method running: ``fit``, ``validate``, ``test`` or ``predict``."""

    FITTING = "fit"
    VALIDATING = "validate"
    TESTING = "test"
    PREDICTING = "predict"


class TrainerStatus(_StrEnum):
    INITIALIZING = "initializing"
    RUNNING = "running"
    FINISHED = "finished"
    INTERRUPTED = "interrupted"


class RunningStage(_StrEnum):
    """The loop running now; ``fit`` alternates between training, validating and (once)
    sanity checking."""

    TRAINING = "train"
    SANITY_CHECKING = "sanity_check"
    VALIDATING = "validate"
    TESTING = "test"
    PREDICTING = "predict"


class TrainerState:
    """``trainer.state``: ``fn`` (a ``TrainerFn``), ``status`` and ``stage``."""

    __slots__ = ("fn", "status", "stage")

    def __init__(self) -> None:
        self.fn: TrainerFn | None = None
        self.status = TrainerStatus.INITIALIZING
        self.stage: RunningStage | None = None

    @property
    def finished(self) -> bool:
        return self.status == TrainerStatus.FINISHED

    def __repr__(self) -> str:
        return f"TrainerState(fn={self.fn!s}, status={self.status!s}, stage={self.stage!s})"


def stage_flag(stage: RunningStage, doc: str) -> property:
    """A boolean Trainer attribute (``training``, ``validating`` ...) that reads and sets
    ``state.stage``; setting one to True clears the others, as in Lightning."""

    def get(self) -> bool:
        return self.state.stage == stage

    def set_(self, value: bool) -> None:
        if value:
            self.state.stage = stage
        elif self.state.stage == stage:
            self.state.stage = None

    return property(get, set_, doc=doc)
