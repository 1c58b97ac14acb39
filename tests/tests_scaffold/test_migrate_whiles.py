"""The count-endless-loops pass: ``while True:`` training loops become ``for _ in
itertools.count():`` (the same passes), and nothing else does."""

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


def test_loops_that_are_not_endless_or_not_training_stay():
    assert _count("while step < 5:\n" + BODY) is None  # a real test: evaluated every pass
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
    assert migrate_source(source.replace("while True:", "while step < 5:")).status == NOT_CONVERTED
