"""The loops, by stage, as functions over a ``Trainer`` (Lightning 2.6's hook order, see
``tests/tests_runtime/test_hook_order.py``):

- ``dispatch``: every hook call goes through ``call_cb``/``call_lm``/``call_both``; batch
  transfer hooks; metrics handed to the trainer's dicts and to the loggers.
- ``stage``: one ``fit``/``validate``/``test``/``predict`` call, set-up to teardown,
  checkpoint restore (``runtime.checkpoint``), exceptions and Ctrl-C.
- ``fit``: sanity check, epochs, the batches of an epoch, validation inside ``fit``.
- ``optimization``: one training batch (closure, automatic and manual optimization, schedulers).
- ``evaluation``: validation and test.
- ``prediction``: ``trainer.predict_loop``.
- ``progress``: the counters and the loop objects that own them.

The run state (every counter, in Lightning's progress shape) is owned by the loop objects of
``progress`` (``trainer.fit_loop``, ``validate_loop``, ``test_loop``, ``predict_loop``);
``runtime.checkpoint`` writes and reads them in Lightning's checkpoint layout.
"""

from runtime.checkpoint import resolve_ckpt_path, rng_checkpoint_state
from runtime.loops.dispatch import call_both, call_cb, call_lm, overridden
from runtime.loops.optimization import after_closure
from runtime.loops.stage import run_stage

__all__ = [
    "after_closure",
    "call_both",
    "call_cb",
    "call_lm",
    "overridden",
    "resolve_ckpt_path",
    "rng_checkpoint_state",
    "run_stage",
]
