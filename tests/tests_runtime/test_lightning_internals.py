"""Behaviour that Lightning's own tests reach through private members (``ModelCheckpoint``'s
save steps, ``Trainer._checkpoint_connector``, ...): the runtime keeps the same semantics."""

from __future__ import annotations

import os

import pytest
import torch

import runtime as L
from runtime.callbacks import ModelCheckpoint
from tests.helpers.models import RegModel, loader, quiet


class _Score(RegModel):
    """Logs ``score`` = -epoch: the best file by ``mode="max"`` is the first epoch's."""

    def on_train_epoch_end(self):
        self.log("score", -float(self.current_epoch))


def test_checkpoint_file_names_itself_best_and_last(tmp_path):
    """As Lightning: best_model_path / last_model_path are set before the file is written, so
    the callback state inside a file names that very file."""
    cb = ModelCheckpoint(dirpath=tmp_path, save_last=True)
    trainer = L.Trainer(**quiet(max_epochs=2, callbacks=[cb], enable_checkpointing=True))
    trainer.fit(RegModel(), loader(n=16))
    best = torch.load(cb.best_model_path, weights_only=True)["callbacks"][cb.state_key]
    assert best["best_model_path"] == cb.best_model_path
    last = torch.load(cb.last_model_path, weights_only=True)["callbacks"][cb.state_key]
    assert last["last_model_path"] == cb.last_model_path


def test_save_last_link_points_at_the_latest_save(tmp_path):
    """save_last="link": last.ckpt is a relative link to the file the latest save wrote (not
    to the best one), as Lightning."""
    cb = ModelCheckpoint(
        dirpath=tmp_path, monitor="score", mode="max", save_top_k=-1, save_last="link"
    )
    trainer = L.Trainer(**quiet(max_epochs=3, callbacks=[cb], enable_checkpointing=True))
    trainer.fit(_Score(), loader(n=16))
    link = tmp_path / "last.ckpt"
    assert os.path.islink(link) and not os.path.isabs(os.readlink(link))
    assert (
        os.path.realpath(link) == cb._last_checkpoint_saved == str(tmp_path / "epoch=2-step=6.ckpt")
    )
    assert cb.best_model_path == str(tmp_path / "epoch=0-step=2.ckpt")


def test_save_last_link_needs_a_local_dirpath():
    cb = ModelCheckpoint(dirpath="memory://somewhere", save_last="link")
    assert cb.dirpath == "memory://somewhere"  # not turned into a local path
    with pytest.raises(ValueError, match="only supported for local file paths"):
        cb.setup(L.Trainer(**quiet()), RegModel(), stage="fit")
