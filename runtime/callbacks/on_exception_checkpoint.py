"""``OnExceptionCheckpoint``: a checkpoint of the run as it stood when an exception ended it."""

from __future__ import annotations

import os
from typing import Any

from runtime.callbacks.base import Checkpoint


class OnExceptionCheckpoint(Checkpoint):
    """Saves ``dirpath/filename.ckpt`` when ``fit`` (or another stage) raises, and removes it
    when the stage ends normally. ``fit(ckpt_path="last")`` considers it beside
    ``ModelCheckpoint``'s last file (the newer one wins), so a crashed run resumes from it.

    Args:
        dirpath: folder of the checkpoint, known up front since an exception can come any time.
        filename: file name without the ``.ckpt`` extension.
    """

    FILE_EXTENSION = ".ckpt"

    def __init__(self, dirpath: str | os.PathLike, filename: str = "on_exception") -> None:
        if not filename:
            raise ValueError(
                "OnExceptionCheckpoint(filename=''): the filename cannot be empty; give a name "
                "without extension, e.g. 'on_exception'."
            )
        self.dirpath = os.fspath(dirpath)
        self.filename = filename

    @property
    def ckpt_path(self) -> str:
        return os.path.join(self.dirpath, self.filename + self.FILE_EXTENSION)

    def on_exception(self, trainer: Any, pl_module: Any, exception: BaseException) -> None:
        trainer.save_checkpoint(self.ckpt_path)

    def teardown(self, trainer: Any, pl_module: Any, stage: str) -> None:
        # reached only when the stage ended without an exception: the file is stale now
        if trainer.is_global_zero and os.path.isfile(self.ckpt_path):
            os.remove(self.ckpt_path)
