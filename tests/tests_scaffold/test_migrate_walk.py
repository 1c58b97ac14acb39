"""scaffold.migrate.walk: the fast traversal sees exactly what libcst's visitors see."""

from __future__ import annotations

from pathlib import Path

import libcst as cst
import pytest

from scaffold.migrate.walk import children, run_visitor, walk

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = sorted(
    [
        *(ROOT / "examples" / "legacy").glob("*.py"),
        *(ROOT / "tests" / "tests_scaffold" / "migrate_repros").glob("*.py"),
        *(ROOT / "scaffold" / "migrate").glob("*.py"),
    ]
)

# constructs whose fields libcst visits only when set, or in an order other than the
# dataclass's: f-string format specs, decorators before a def's name, parentheses, lambdas,
# star-args, walrus, match, async, type hints, global/nonlocal, try/except*/finally
TRICKY = """
@decorator(arg)
@other
def f(a, /, b: int = 1, *args, c, d=2, **kw) -> "T":
    global g
    x = f"{a!r:>{b}} {c=} {d:{'x'}}"
    y = (lambda p, *q, **r: (p, q, r))(1)
    z = len(x)
    try:
        pass
    except* ValueError as e:
        raise
    finally:
        del x[1:2, ::3], y
    match z:
        case [1, *rest] | {"k": _} if rest:
            return {k: v for k, v in kw.items()}
        case Point(x=0) as p:
            yield from (p for p in range(3) if p)
    return [*args], {1, 2}, (1,), not a, -b, a @ b, a if b else c


async def g(x):
    if (z := len(x)) > 2:
        async with ctx() as (u, v), other():
            async for i in aiter():
                await h(i, z)


class C(Base, metaclass=M):
    attr: int = 0

    def m(self):
        nonlocal_value = 1

        def inner():
            nonlocal nonlocal_value
            nonlocal_value += 1

        return inner
"""


class _Record(cst.CSTVisitor):
    def __init__(self) -> None:
        self.seen: list[cst.CSTNode] = []

    def on_visit(self, node: cst.CSTNode) -> bool:
        self.seen.append(node)
        return True


def _trees():
    yield "tricky", cst.parse_module(TRICKY)
    for path in SCRIPTS:
        yield path.name, cst.parse_module(path.read_text())


@pytest.mark.parametrize(
    ("name", "tree"), list(_trees()), ids=lambda v: v if isinstance(v, str) else ""
)
def test_walk_yields_every_node_a_visitor_sees_in_the_same_order(name, tree) -> None:
    recorder = _Record()
    tree.visit(recorder)
    walked = list(walk(tree))
    assert len(walked) == len(recorder.seen), name
    first_difference = next(
        (i for i, (a, b) in enumerate(zip(walked, recorder.seen, strict=True)) if a is not b), None
    )
    assert first_difference is None, (name, first_difference)


def test_children_match_libcsts_children_property() -> None:
    tree = cst.parse_module(TRICKY)
    for node in walk(tree):
        assert [id(c) for c in children(node)] == [id(c) for c in node.children]


class _Calls(cst.CSTVisitor):
    """A visitor of the kind migrate runs: typed visit/leave methods, one skipping a subtree."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
        self.calls.append(("visit", node.name.value))
        return node.name.value != "inner"  # skip what is inside `inner`

    def leave_FunctionDef(self, original_node: cst.FunctionDef) -> None:
        self.calls.append(("leave", original_node.name.value))

    def visit_Name(self, node: cst.Name) -> None:
        self.calls.append(("name", node.value))

    def leave_For(self, original_node: cst.For) -> None:
        self.calls.append(("leave-for", cst.Module([]).code_for_node(original_node.target)))


def test_run_visitor_makes_the_same_calls_as_libcst() -> None:
    tree = cst.parse_module(TRICKY + "\nfor a, b in pairs:\n    def inner():\n        hidden = 1\n")
    expected, fast = _Calls(), _Calls()
    tree.visit(expected)
    run_visitor(tree, fast)
    assert fast.calls == expected.calls
    assert ("name", "hidden") not in fast.calls  # the skipped subtree stayed skipped
    assert ("leave", "inner") in fast.calls  # leave_ runs even when visit_ returned False


def test_run_visitor_falls_back_to_libcst_for_generic_hooks() -> None:
    class Generic(cst.CSTVisitor):
        def __init__(self) -> None:
            self.count = 0

        def on_visit(self, node: cst.CSTNode) -> bool:
            self.count += 1
            return True

    tree = cst.parse_module(TRICKY)
    visitor = Generic()
    run_visitor(tree, visitor)
    assert visitor.count == len(list(walk(tree)))
