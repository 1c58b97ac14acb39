"""``ModelSummary``: a table of the module's layers and parameter counts at fit start."""

from __future__ import annotations

import sys
from typing import Any

import torch

from runtime.callbacks.base import Callback


def _count(n: int) -> str:
    for unit, size in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return str(n)


def summarize(module: torch.nn.Module, max_depth: int = 1) -> tuple[list[tuple], dict[str, Any]]:
    rows = []
    for name, mod in module.named_modules():
        if not name or name.count(".") >= max_depth:
            continue
        params = sum(p.numel() for p in mod.parameters())
        rows.append((name, type(mod).__name__, params, "train" if mod.training else "eval"))
    params = list(module.parameters())
    trainable = sum(p.numel() for p in params if p.requires_grad)
    total = sum(p.numel() for p in params)
    size_mb = sum(p.numel() * p.element_size() for p in params) / 1e6
    modes = [m.training for m in module.modules()]
    return rows, {
        "trainable": trainable,
        "non_trainable": total - trainable,
        "total": total,
        "size_mb": size_mb,
        "train_modules": sum(modes),
        "eval_modules": len(modes) - sum(modes),
    }


def format_summary(rows: list[tuple], totals: dict[str, Any]) -> str:
    header = ("", "Name", "Type", "Params", "Mode")
    body = [(str(i), n, t, _count(p), m) for i, (n, t, p, m) in enumerate(rows)]
    widths = [max(len(r[c]) for r in [header, *body]) for c in range(5)]
    line = lambda r: "  " + " | ".join(v.ljust(w) for v, w in zip(r, widths))  # noqa: E731
    sep = "-" * (sum(widths) + 3 * 4 + 2)
    out = [line(header), sep, *[line(r) for r in body], sep]
    out += [
        f"{_count(totals['trainable']):<10}Trainable params",
        f"{_count(totals['non_trainable']):<10}Non-trainable params",
        f"{_count(totals['total']):<10}Total params",
        f"{totals['size_mb']:<10.3f}Total estimated model params size (MB)",
        f"{totals['train_modules']:<10}Modules in train mode",
        f"{totals['eval_modules']:<10}Modules in eval mode",
    ]
    return "\n".join(out)


class ModelSummary(Callback):
    """Prints the module's layers (to ``max_depth``) with parameter counts when ``fit`` starts."""

    def __init__(self, max_depth: int = 1) -> None:
        self._max_depth = max_depth

    def on_fit_start(self, trainer: Any, pl_module: Any) -> None:
        if self._max_depth == 0 or not trainer.is_global_zero:
            return
        rows, totals = summarize(pl_module, self._max_depth)
        # like Lightning (its INFO log goes to stderr): a script's own stdout stays its own
        print(format_summary(rows, totals), file=sys.stderr, flush=True)
