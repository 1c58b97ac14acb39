"""The count-endless-loops pass: ``while True:`` training loops become ``for _ in
itertools.count():`` (the same passes), ``while <test>:`` loops the same with the test before
the first pass and at the end of each, and nothing else changes."""

from __future__ import annotations

import libcst as cst

from scaffold.migrate.engine import MIGRATED, NOT_CONVERTED, migrate_source
from scaffold.migrate.whiles import count_endless_loops

BODY = """    x = make_batch()
    loss = model(x)
    opt.zero_grad()
    loss.backward()
    opt.step()
    step += 1
    if step >= 5:
        break
"""


def _count(code: str):
    return count_endless_loops(cst.parse_module(code))


def test_an_endless_training_loop_becomes_a_count_loop_with_the_same_body():
    counted = _count("step = 0\n# train\nwhile True:\n" + BODY)
    assert counted is not None and counted.loops == 1
    assert counted.module.code == "step = 0\n# train\nfor _ in itertools.count():\n" + BODY


def test_a_tested_loop_checks_its_test_before_the_first_pass_and_after_each():
    counted = _count("step = 0\n# train\nwhile step < 5:\n" + BODY)
    assert counted is not None and counted.loops == 1
    inner = "".join("    " + line + "\n" for line in BODY.splitlines())
    assert counted.module.code == (
        "step = 0\n# train\nif step < 5:\n    for _ in itertools.count():\n"
        + inner
        + "        if not (step < 5):\n            break\n"
    )


def test_a_tested_loop_with_its_own_continue_or_an_else_stays():
    with_continue = BODY.replace(
        "    x = make_batch()\n", "    x = make_batch()\n    if x is None:\n        continue\n"
    )
    assert _count("while step < 5:\n" + with_continue) is None
    assert _count("while step < 5:\n" + BODY + "else:\n    done = True\n") is None
    # a `continue` of a nested loop is that loop's own
    nested = BODY + "    for k in range(2):\n        if k:\n            continue\n"
    assert _count("while step < 5:\n" + nested) is not None


def test_loops_that_are_not_endless_or_not_training_stay():
    assert _count("while True:\n    x = next(it)\n    if x:\n        break\n") is None
    assert _count("while 1:\n" + BODY) is not None
    # `itertools` is the script's own name, `_` and `_step` both taken: left alone
    assert _count("itertools = None\nwhile True:\n" + BODY) is None
    assert _count("_ = _step = 1\nwhile True:\n" + BODY) is None


def test_the_import_is_added_and_findings_keep_the_scripts_lines():
    source = (
        "import torch\n\nmodel = torch.nn.Linear(2, 1)\nopt = torch.optim.SGD(model.parameters(), lr=0.1)\n"
        "step = 0\nwhile True:\n"
        + BODY.replace("make_batch()", "torch.randn(4, 2)").replace("model(x)", "model(x).sum()")
    )
    result = migrate_source(source)
    assert result.status == MIGRATED, result.findings
    assert "import itertools" in result.code and "itertools.count()" in result.code
    assert {f.code: f.line for f in result.findings}["SCF026"] == 6
    tested = migrate_source(source.replace("while True:", "while step < 5:"))
    assert tested.status == MIGRATED, tested.findings
    with_else = source.replace("while True:", "while step < 5:") + "else:\n    step = -1\n"
    refused = migrate_source(with_else)
    assert refused.status == NOT_CONVERTED
    assert any("`else:` block" in f.message for f in refused.findings if f.code == "SCF330")
