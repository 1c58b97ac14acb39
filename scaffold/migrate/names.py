"""What a name in the script resolves to, from libcst's ``QualifiedNameProvider``.

``torch.nn.utils.clip_grad_norm_``, ``from torch.nn.utils import clip_grad_norm_ as clip`` and
``nn.utils.clip_grad_norm_`` after ``import torch.nn as nn`` are one function; a user's own
``my_clip_grad_norm_`` is not. Passes ask ``qualified(expr)`` instead of reading the spelling.

The provider answers for nodes of the module being converted (``using(wrapper)`` makes it
current). Codemods build new nodes (a flattened ``with`` block, a renamed statement): for those,
the import table the provider resolved (local name -> qualified name) gives the answer, so
``nn.DataParallel`` still reads as ``torch.nn.DataParallel``.
"""

from __future__ import annotations

import contextlib
from contextvars import ContextVar
from types import MappingProxyType

import libcst as cst
from libcst.metadata import MetadataWrapper, QualifiedNameProvider, QualifiedNameSource

from scaffold.migrate.memo import by_identity
from scaffold.migrate.walk import run_visitor


class Resolver:
    def __init__(self, wrapper: MetadataWrapper) -> None:
        self._wrapper = wrapper
        self._meta = None  # resolved on first need: it costs ~0.5 s on a 300-line script
        self._imports = import_table(wrapper.module)
        self._rebound = rebound_names(wrapper.module)

    def _lookup(self, node) -> set:
        if self._meta is None:
            self._meta = self._wrapper.resolve(QualifiedNameProvider)
        value = self._meta.get(node)
        if value is None:
            return set()
        return value() if callable(value) else value

    def qualified(self, expr) -> str | None:
        """The dotted name ``expr`` (a Name, an Attribute chain, or a Call's callee) stands
        for; the spelling itself for local names; None for other expressions."""
        if isinstance(expr, cst.Call):
            expr = expr.func
        if not isinstance(expr, (cst.Name, cst.Attribute)):
            return None
        head = expr
        while isinstance(head, cst.Attribute):
            head = head.value
        if not isinstance(head, cst.Name):
            return None  # `f(x).item`, `x[0].sum`: not a dotted name
        if not (head.value in self._rebound and head.value in self._imports):
            # bound by imports only, or never by an import: the import table (or the spelling,
            # for the script's own names) is what the provider would answer
            return self._by_imports(expr)
        found = {q.name for q in self._lookup(expr) if q.source is not QualifiedNameSource.LOCAL}
        if len(found) == 1:
            return found.pop()
        return self._by_imports(expr)

    def _by_imports(self, expr) -> str | None:
        text = _code(expr)
        head, _, rest = text.partition(".")
        if not all(part.isidentifier() for part in text.split(".")):
            return None
        if head in self._imports:
            return self._imports[head] + (f".{rest}" if rest else "")
        return text


def _code(node) -> str:
    return cst.Module(body=[]).code_for_node(node)


def _names_in(node) -> list:
    if isinstance(node, cst.Name):
        return [node]
    if isinstance(node, (cst.Tuple, cst.List)):
        return [n for e in node.elements for n in _names_in(e.value)]
    if isinstance(node, cst.StarredElement):
        return _names_in(node.value)
    return []


def rebound_names(module: cst.Module) -> frozenset[str]:
    """Names the script binds other than by importing (assignments, defs, parameters, loop and
    with targets): where one of these shadows an import, only the scope analysis can tell."""
    return _scan(module)[1]


def import_table(module: cst.Module) -> MappingProxyType[str, str]:
    """{local name: qualified name} for what the script's imports bind (``nn`` ->
    ``torch.nn`` for ``import torch.nn as nn``; ``clip`` -> ``torch.nn.utils.clip_grad_norm_``
    for ``from torch.nn.utils import clip_grad_norm_ as clip``); relative imports are local."""
    return _scan(module)[0]


@by_identity()
def _scan(module: cst.Module) -> tuple[MappingProxyType[str, str], frozenset[str]]:
    """One walk of the module for both: the import table and the names bound otherwise."""
    table: dict[str, str] = {}
    names: set[str] = set()

    def bind(target) -> None:
        names.update(n.value for n in _names_in(target))

    class Finder(cst.CSTVisitor):
        def visit_Import(self, node: cst.Import) -> None:
            for alias in node.names:
                full = _code(alias.name)
                if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
                    table.setdefault(alias.asname.name.value, full)
                else:
                    head = full.split(".")[0]
                    table.setdefault(head, head)

        def visit_ImportFrom(self, node: cst.ImportFrom) -> None:
            if isinstance(node.names, cst.ImportStar) or node.relative or node.module is None:
                return
            base = _code(node.module)
            for alias in node.names:
                name = _code(alias.name)
                local = name
                if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
                    local = alias.asname.name.value
                table.setdefault(local, f"{base}.{name}")

        def visit_AssignTarget(self, node) -> None:
            bind(node.target)

        def visit_AnnAssign(self, node) -> None:
            bind(node.target)

        def visit_AugAssign(self, node) -> None:
            bind(node.target)

        def visit_For(self, node) -> None:
            bind(node.target)

        def visit_CompFor(self, node) -> None:
            bind(node.target)

        def visit_AsName(self, node) -> None:
            if not isinstance(node.name, cst.Name):
                bind(node.name)

        def visit_WithItem(self, node) -> None:
            if node.asname is not None:
                bind(node.asname.name)

        def visit_FunctionDef(self, node) -> None:
            names.add(node.name.value)

        def visit_ClassDef(self, node) -> None:
            names.add(node.name.value)

        def visit_Param(self, node) -> None:
            names.add(node.name.value)

        def visit_NamedExpr(self, node) -> None:
            bind(node.target)

        def visit_Global(self, node) -> None:
            names.update(n.name.value for n in node.names)

    run_visitor(module, Finder())
    return MappingProxyType(table), frozenset(names)


_current: ContextVar[Resolver | None] = ContextVar("scaffold_migrate_resolver", default=None)


@contextlib.contextmanager
def using(wrapper: MetadataWrapper):
    """Makes ``wrapper``'s qualified names the ones ``qualified`` answers from."""
    token = _current.set(Resolver(wrapper))
    try:
        yield
    finally:
        _current.reset(token)


def resolving() -> bool:
    """Whether a ``using`` block is active (``qualified`` answers from metadata)."""
    return _current.get() is not None


def qualified(expr) -> str | None:
    """What ``expr`` resolves to (see ``Resolver.qualified``); outside ``using`` (a pass run on
    its own), the spelling."""
    resolver = _current.get()
    if resolver is not None:
        return resolver.qualified(expr)
    if isinstance(expr, cst.Call):
        expr = expr.func
    return _code(expr) if isinstance(expr, (cst.Name, cst.Attribute)) else None


def resolves_to(expr, *names: str) -> bool:
    return qualified(expr) in names


# names the passes look for, as they resolve
PROGRESS_BARS = frozenset(
    f"tqdm.{m}tqdm" for m in ("", "auto.", "notebook.", "std.", "rich.", "autonotebook.")
)
# what a batch loop may wrap its loader in (``iter`` starts the loader's sampler: never dropped)
PROGRESS_WRAPPERS = PROGRESS_BARS | {"builtins.iter", "iter"}
NO_GRAD = frozenset(
    {
        "torch.no_grad",
        "torch.inference_mode",
        "torch.autograd.no_grad",
        "torch.autograd.grad_mode.no_grad",
        "torch.autograd.grad_mode.inference_mode",
    }
)


def is_no_grad(expr) -> bool:
    """``torch.no_grad()`` / ``torch.inference_mode()`` however imported (called, no args)."""
    return isinstance(expr, cst.Call) and not expr.args and qualified(expr) in NO_GRAD
