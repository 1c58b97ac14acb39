"""Converts a hand-written training loop into a LightningModule + ``Trainer.fit``.

Supported shapes (the dominant ones in real scripts):

* nested loops: ``for epoch in range(...):`` holding ``for ... in loader:`` with the
  zero_grad/backward/step sequence, at module level or in a function such as ``main()``;
* a ``train(...)`` function holding the batch loop, called once per epoch from such an epoch
  loop (the function is inlined into the LightningModule and removed);
* a single batch loop with no epoch loop (one epoch).

Four stages, each in its own module:

1. detect (``locate``): where the loop is, its epoch loop, the helper it sits in;
2. analyse (``analyse``): a frozen ``LoopPlan``: model/optimizer/scheduler roles, epoch plan,
   carried state, evaluation, distributed set-up; every refusal happens here or in build,
   before anything is written;
3. build (``build``): the class and the lines that replace the loop;
4. splice (``build.splice``): the new lines where the loop was, helpers removed, imports added.
"""

from __future__ import annotations

import libcst as cst
from libcst.metadata import MetadataWrapper, PositionProvider

from scaffold.migrate import names
from scaffold.migrate.analyse import Hints, analyse
from scaffold.migrate.build import build
from scaffold.migrate.findings import CannotConvert, Finding
from scaffold.migrate.helpers import within
from scaffold.migrate.locate import Site, locate

__all__ = ["Hints", "convert"]


def convert(
    module: cst.Module, engine: str = "runtime", hints: Hints | None = None, tooling: bool = True
) -> tuple[cst.Module, list[Finding]]:
    wrapper = MetadataWrapper(module)
    module = wrapper.module
    positions = wrapper.resolve(PositionProvider)
    fallback: list = []

    def position(node):
        # nodes made by a codemod have no position: report them at the loop
        if node in positions:
            return positions[node].start
        return positions[fallback[0]].start if fallback else positions[module].start

    with names.using(wrapper), within(module):
        site = locate(module, position)
        fallback.append(site.epoch_for or site.batch_for)
        try:
            return build(analyse(module, site, position, hints), engine, tooling)
        except CannotConvert:
            if site.train_fn is None or site.epoch_for is None:
                raise
            # a per-epoch helper that one Trainer for all epochs cannot take over: one Trainer
            # per call (the helper converted on its own, as when it is not called per epoch)
            per_call = Site(site.batch_for, None, site.train_fn.body.body)
            try:
                return build(analyse(module, per_call, position, hints), engine, tooling)
            except CannotConvert:
                pass
            raise
