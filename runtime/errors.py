"""Errors raised by the runtime.

Every error subclasses a builtin so code written for Lightning (which raises
``MisconfigurationException(Exception)`` subclasses) keeps catching what it caught.
Messages say what was received, what is allowed, and how to fix it.
"""

from __future__ import annotations


class MisconfigurationException(ValueError):
    """A Trainer flag, hook or return value that the runtime cannot work with."""


MisconfigurationError = MisconfigurationException


class CheckpointError(ValueError):
    """A file that is not a checkpoint the runtime (or Lightning) wrote."""


def removed_api(name: str, replacement: str) -> MisconfigurationException:
    return MisconfigurationException(
        f"`{name}` was removed in Lightning 2.0 and is not supported. Use {replacement} instead."
    )


class _TunerExitException(Exception):
    """Ends the ``fit`` a tuner ran in once its search is done (the Trainer ends the stage
    quietly; see ``runtime.tuner``)."""
