"""RichProgressBar / RichModelSummary (rich is optional): what they draw, that they replace the
default bar and summary, and that they change no number."""

from __future__ import annotations

import io

import pytest
import torch

import runtime as L
from tests.helpers.models import RegModel, loader, params_of, quiet

pytest.importorskip("rich")

from runtime.callbacks import (  # noqa: E402 (after the skip)
    ModelSummary,
    ProgressBar,
    RichModelSummary,
    RichProgressBar,
    RichProgressBarTheme,
    TQDMProgressBar,
)


def _console(buffer: io.StringIO) -> dict:
    return {"file": buffer, "force_terminal": False, "width": 240}


def _fit(callbacks, **kw):
    torch.manual_seed(0)
    model = RegModel()
    trainer = L.Trainer(
        **{
            **quiet(max_epochs=2, enable_progress_bar=True, enable_model_summary=True),
            **kw,
            "callbacks": callbacks,
        }
    )
    trainer.fit(model, loader(n=32), loader(n=16))
    return trainer, model


def test_rich_bar_draws_epochs_batches_and_metrics():
    out = io.StringIO()
    bar = RichProgressBar(leave=True, console_kwargs=_console(out))
    trainer, _ = _fit([bar])
    text = out.getvalue()
    assert "Epoch 0" in text and "Epoch 1" in text
    assert "4/4" in text  # 32 samples in batches of 8
    assert "train_loss_step" in text and "val_loss" in text
    assert [c for c in trainer.callbacks if isinstance(c, ProgressBar)] == [bar]
    assert bar.progress is None  # stopped at the end of fit


def test_rich_bar_refresh_rate_zero_draws_nothing_and_keeps_numbers():
    out = io.StringIO()
    _, silent = _fit([RichProgressBar(refresh_rate=0, console_kwargs=_console(out))])
    assert out.getvalue() == ""
    _, plain = _fit([TQDMProgressBar(refresh_rate=0)])
    for a, b in zip(params_of(silent), params_of(plain), strict=True):
        assert torch.equal(a, b)


def test_rich_bar_theme_and_validation_task():
    out = io.StringIO()
    theme = RichProgressBarTheme(metrics_format=".1e", metrics_text_delimiter=" | ")
    trainer, model = _fit([RichProgressBar(leave=True, theme=theme, console_kwargs=_console(out))])
    assert " | " in out.getvalue() and "e+" in out.getvalue()
    out.truncate(0)
    trainer.test(model, loader(n=16), verbose=False)  # a test run after fit starts a new bar


def test_rich_summary_replaces_the_default_summary():
    out = io.StringIO()
    summary = RichModelSummary(max_depth=1, file=out, force_terminal=False, width=120)
    trainer, _ = _fit([summary])
    text = out.getvalue()
    assert "Name" in text and "Sequential" in text and "161" in text
    assert "Trainable params: 161" in text
    assert [c for c in trainer.callbacks if isinstance(c, ModelSummary)] == [summary]


def test_import_path_and_a_missing_rich_says_how_to_install(monkeypatch):
    assert L.pytorch.callbacks.RichProgressBar is RichProgressBar
    import builtins

    real_import = builtins.__import__

    def no_rich(name, *args, **kwargs):
        if name == "rich" or name.startswith("rich."):
            raise ModuleNotFoundError("No module named 'rich'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_rich)
    with pytest.raises(ModuleNotFoundError, match="pip install -U rich"):
        RichProgressBar()
    with pytest.raises(ModuleNotFoundError, match="RichModelSummary.*pip install -U rich"):
        RichModelSummary()
