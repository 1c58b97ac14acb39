"""The data-flow facts the converter decides with (``scaffold.migrate.dataflow``), on small blocks."""

from __future__ import annotations

import libcst as cst
import pytest

from scaffold.migrate import dataflow
from scaffold.migrate.memo import by_identity
from scaffold.migrate.walk import walk


def body(code: str) -> list:
    return list(cst.parse_module(code).body)


@pytest.mark.parametrize(
    ("code", "reads", "writes"),
    [
        ("total = total + loss\n", {"total", "loss"}, {"total"}),
        ("x = 1\ny = x + z\n", {"z"}, {"x", "y"}),
        ("n += 1\n", {"n"}, {"n"}),
        # names of inner scopes are not the block's; their free names are reads
        ("s = sum(v * w for v in values)\n", {"sum", "values", "w"}, {"s"}),
        ("f = lambda a: a + bias\n", {"bias"}, {"f"}),
        ("def g(p):\n    q = p + k\n    return q\n", {"k"}, {"g"}),
        # a walrus binds in the block's scope, also from a comprehension
        ("if (n := len(xs)) > 0:\n    pass\n", {"len", "xs"}, {"n"}),
        ("ys = [last := v for v in xs]\n", {"xs"}, {"ys", "last"}),
        (
            "for i, (a, b) in enumerate(pairs):\n    acc = a\n",
            {"enumerate", "pairs"},
            {"i", "a", "b", "acc"},
        ),
        ("obj.attr = value\n", {"obj", "value"}, set()),
    ],
)
def test_reads_and_writes_of_a_block(code, reads, writes):
    stmts = body(code)
    assert dataflow.incoming(stmts) == reads
    assert dataflow.written(stmts) == writes


def test_definitely_bound_follows_every_path():
    stmts = body("if c:\n    a = 1\n    b = 2\nelse:\n    a = 3\nfor i in xs:\n    d = i\n")
    assert dataflow.definitely_bound(stmts) == {"a"}
    assert dataflow.written(stmts) == {"a", "b", "i", "d"}


def test_inner_name_ids_finds_comprehension_targets_only_when_there_is_an_inner_scope():
    flat = body("x = y + 1\n")
    assert dataflow.inner_name_ids(flat) == set()
    nested = body("x = [x for x in y]\n")
    inner = dataflow.inner_name_ids(nested)
    names = [n for n in walk(nested[0]) if isinstance(n, cst.Name) and n.value == "x"]
    assert len(names) == 3
    assert [id(n) in inner for n in names] == [False, True, True]


def test_scope_analysis_is_cached_per_block_and_stays_right():
    stmts = body("a = b\n")
    first = dataflow.block_names(stmts)
    assert dataflow.block_names(list(stmts)) is first  # same statements, same analysis
    other = body("a = b\n")  # equal text, other nodes: analysed on its own
    assert dataflow.block_names(other) is not first
    assert dataflow.incoming(other) == {"b"}


def test_by_identity_caches_on_the_object_not_on_equality():
    calls = []

    @by_identity(maxsize=2)
    def size(node):
        calls.append(node)
        return len(node.body)

    one, two, three = (cst.parse_module("x = 1\n") for _ in range(3))
    assert size(one) == 1 and size(one) == 1
    assert len(calls) == 1
    size(two)
    size(three)  # evicts `one`, the oldest
    size(one)
    assert len(calls) == 4


def test_a_branch_that_raises_or_returns_does_not_leave_names_unbound():
    chain = (
        "if m == 'a':\n    loss = f(x)\nelif m == 'b':\n    loss = g(x)\nelse:\n"
        "    raise ValueError(m)\nrecord(loss)\n"
    )
    assert dataflow.definitely_bound(body(chain)) == {"loss"}
    assert "loss" not in dataflow.incoming(body(chain))
    # a path that takes no branch (no else) or a branch that falls through still can
    open_chain = chain.replace("else:\n    raise ValueError(m)\n", "")
    assert "loss" in dataflow.incoming(body(open_chain))
    early = "if bad:\n    return None\nelse:\n    y = 1\nz = y\n"
    assert dataflow.definitely_bound(body("def f():\n    pass\n")) == {"f"}
    assert "y" not in dataflow.incoming(body(early))
    both = "if c:\n    raise E\nelse:\n    raise F\n"
    assert dataflow.definitely_bound(body(both)) == set()
