"""The open-progress-blocks pass: a tqdm ``with`` block around a training loop is written out
(``bar = tqdm(...)``, the block, ``bar.close()``), and only where that is exact."""

from __future__ import annotations

import libcst as cst

from scaffold.migrate.engine import MIGRATED, migrate_source
from scaffold.migrate.progress import open_progress_blocks

HEAD = """import torch
from tqdm import tqdm, trange
import tqdm as tq

"""


def _open(body: str):
    return open_progress_blocks(cst.parse_module(HEAD + body))


def test_a_bar_block_around_a_training_loop_is_written_out_with_its_close():
    opened = _open(
        "for epoch in range(3):\n"
        "    with tqdm(total=10) as bar:  # samples\n"
        "        for x in loader:\n"
        "            loss = model(x)\n"
        "            loss.backward()\n"
        "            bar.update(1)\n"
        "        print('done')\n"
    )
    assert opened is not None and opened.bars == ("bar",)
    code = opened.module.code
    assert "with " not in code
    assert "    bar = tqdm(total=10)  # samples\n    for x in loader:" in code
    assert code.index("print('done')") < code.index("bar.close()")


def test_module_spellings_and_trange_are_bars_too():
    for header in ("tq.tqdm(total=3)", "trange(3)", "tq.auto.tqdm(total=3)"):
        opened = _open(f"with {header} as b:\n    for x in xs:\n        x.backward()\n")
        assert opened is not None, header


def test_blocks_that_are_not_exact_to_open_stay():
    cases = {
        "break": "for e in range(2):\n    with tqdm() as b:\n        for x in xs:\n            x.backward()\n        break\n",
        "continue": "for e in range(2):\n    with tqdm() as b:\n        for x in xs:\n            x.backward()\n        if e:\n            continue\n",
        "return": "def f():\n    with tqdm() as b:\n        for x in xs:\n            x.backward()\n        return 1\n",
        "two items": "with tqdm() as b, torch.no_grad():\n    for x in xs:\n        x.backward()\n",
        "not a bar": "with open('f') as b:\n    for x in xs:\n        x.backward()\n",
        "no training": "with tqdm() as b:\n    for x in xs:\n        print(x)\n",
    }
    for why, body in cases.items():
        assert _open(body) is None, why


def test_a_break_of_a_loop_inside_the_block_does_not_keep_it():
    opened = _open(
        "with tqdm() as b:\n    for x in xs:\n        x.backward()\n        if x:\n            break\n"
    )
    assert opened is not None


def test_a_bar_without_a_name_gets_one_that_is_free():
    opened = _open("pbar = 1\nwith tqdm(total=3):\n    for x in xs:\n        x.backward()\n")
    assert opened is not None and opened.bars == ("pbar2",)
    assert "pbar2 = tqdm(total=3)" in opened.module.code and "pbar2.close()" in opened.module.code


def test_the_batch_loop_in_a_bar_block_converts_and_reports_the_rewrite():
    from pathlib import Path

    source = (Path(__file__).parent / "migrate_repros" / "progress_bar_block.py").read_text()
    result = migrate_source(source)
    assert result.status == MIGRATED, result.findings
    assert "SCF025" in {f.code for f in result.findings}
    assert "self.pbar.close()" in result.code and "with progress(" not in result.code
    line = next(f.line for f in result.findings if f.code == "SCF025")
    assert source.splitlines()[line - 1].lstrip().startswith("with progress(")


def test_a_bar_the_script_iterates_or_reads_stays_a_block():
    # the Trainer iterates the loader, not the bar: its counters would read 0
    iterated = "for e in range(2):\n    with tqdm(loader) as bar:\n        for x in bar:\n            x.backward()\n"
    read = (
        "for e in range(2):\n    with tqdm(total=3) as bar:\n        for x in xs:\n"
        "            x.backward()\n            bar.update(1)\n        seen.append(bar.n)\n"
    )
    handed = (
        "for e in range(2):\n    with tqdm(total=3) as bar:\n        for x in xs:\n"
        "            x.backward()\n            log(bar)\n"
    )
    for body in (iterated, read, handed):
        assert _open(body) is None, body
