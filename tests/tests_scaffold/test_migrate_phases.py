"""The phase-loop pass (scaffold/migrate/phases.py): what it writes out and what it leaves."""

from __future__ import annotations

import textwrap

import libcst as cst

from scaffold.migrate.phases import unroll_phase_loop

LOOP = """
import torch
def run(model, loaders, optimizer):
    for epoch in range(2):
        for phase in {phases}:
            if phase == "train":
                model.train()
            else:
                model.eval()
            for x, y in loaders[phase]:
                loss = model(x).sum()
                if phase == "train":
                    optimizer.zero_grad()
                    loss.backward()
                    optimizer.step()
{extra}
"""


def _unroll(phases='["train", "val"]', extra=""):
    source = textwrap.dedent(LOOP).format(phases=phases, extra=textwrap.indent(extra, " " * 12))
    return unroll_phase_loop(cst.parse_module(source))


def test_each_phase_gets_its_own_folded_copy():
    done = _unroll()
    assert done is not None and done.phases == ('"train"', '"val"')
    code = done.module.code
    assert "for phase" not in code and "phase ==" not in code
    assert 'loaders["train"]' in code and 'loaders["val"]' in code
    assert code.count("loss.backward()") == 1  # the evaluation copy takes no step
    assert code.index("model.train()") < code.index('loaders["train"]') < code.index("model.eval()")
    assert "phase =" not in code  # nothing reads it any more


def test_a_copy_that_still_reads_the_phase_keeps_its_assignment():
    code = _unroll(extra='print(f"{phase} done")\n').module.code
    assert code.count('phase = "train"') == 1 and code.count('phase = "val"') == 1
    assert 'f"{phase} done"' in code


def test_membership_and_negation_are_folded():
    code = _unroll(extra='if phase not in ("val",):\n    print("trained")\n').module.code
    assert code.count('print("trained")') == 1


def test_loops_that_leave_early_or_rebind_the_phase_are_left_alone():
    assert _unroll(extra="break\n") is None
    assert _unroll(extra="continue\n") is None
    assert _unroll(extra='phase = "test"\n') is None
    assert _unroll(phases="phase_names") is None  # not bound to a literal in the scope
    assert _unroll(phases='["train", 1]') is None


def test_a_phase_list_bound_once_to_a_literal_is_followed():
    source = textwrap.dedent(LOOP).format(phases="PHASES", extra="")
    source = source.replace("import torch\n", 'import torch\nPHASES = ("train", "val")\n')
    # the list is a module global; the loop's scope is the function: not followed
    assert unroll_phase_loop(cst.parse_module(source)) is None
    inside = source.replace(
        "    for epoch in range(2):", '    PHASES = ("train", "val")\n    for epoch in range(2):'
    )
    assert unroll_phase_loop(cst.parse_module(inside)) is not None


def test_a_loop_without_training_is_not_touched():
    source = 'for phase in ["a", "b"]:\n    if phase == "a":\n        print(1)\n'
    assert unroll_phase_loop(cst.parse_module(source)) is None
