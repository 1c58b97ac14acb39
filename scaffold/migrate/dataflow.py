"""Which names a block of statements reads and writes, in the order it runs.

Scopes come from libcst's ``ScopeProvider``: a name bound inside a comprehension, a lambda or a
nested ``def`` belongs to that inner scope and is neither a read nor a write of the block, while a
free name of such an inner scope is a read of the block's own scope. On top of that this module
adds what ``ScopeProvider`` does not know: the order of execution. ``incoming(stmts)`` is the set
of names whose value from *before* the block may be read by it (a read not preceded, on every
path, by a write in the block); ``definitely_bound`` is what every path through the block binds.

The converter uses these to decide which variables live across the hooks of the generated
LightningModule (``training_step`` / epoch hooks) and which are read after the loop, instead of
"does the name appear anywhere". Conservative by design: when unsure a name counts as read.

Owns no rewriting; see ``loops`` and ``syntax`` for that.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import libcst as cst
from libcst.metadata import GlobalScope, MetadataWrapper, ScopeProvider

from scaffold.migrate.memo import by_identity
from scaffold.migrate.walk import children, walk


class BlockNames:
    """Scope facts for ``stmts`` read as one scope (the statements of a loop, a hook, ...)."""

    def __init__(self, stmts: Sequence[cst.BaseStatement]) -> None:
        self.module = cst.Module(body=list(stmts))
        wrapper = MetadataWrapper(self.module, unsafe_skip_copy=True)
        scopes = wrapper.resolve(ScopeProvider)
        top = next(s for s in scopes.values() if isinstance(s, GlobalScope))
        self.outer_reads: set[int] = set()  # ids of Name nodes that read the block's scope
        self.inner: set[int] = set()  # ids of Name nodes that belong to an inner scope
        self.declared_global: set[str] = set()
        for scope in {s for s in scopes.values() if s is not None}:
            for access in scope.accesses:
                if scope is top or not _bound_inside(access.node.value, scope, top):
                    self.outer_reads.add(id(access.node))
                else:
                    self.inner.add(id(access.node))
            if scope is top:
                continue
            for assignment in scope.assignments:
                node = getattr(assignment, "node", None)
                if isinstance(node, cst.Name):
                    self.inner.add(id(node))
        for node in walk(self.module):
            if isinstance(node, cst.Global):
                self.declared_global |= {n.name.value for n in node.names}

    def reads(self, node: cst.CSTNode) -> set[str]:
        """Names of the block's scope that ``node`` reads (free names of inner scopes too)."""
        return {
            n.value for n in walk(node) if isinstance(n, cst.Name) and id(n) in self.outer_reads
        }


def _bound_inside(name: str, scope, top) -> bool:
    """Is ``name`` bound by ``scope`` or an enclosing scope below ``top``?"""
    while scope is not None and scope is not top:
        if any(a.name == name for a in scope.assignments):
            return True
        scope = scope.parent
    return False


def target_names(target: cst.BaseExpression) -> set[str]:
    """Names a plain assignment target binds (``a``, ``a, (b, *c)``); none for ``x.y``/``x[i]``."""
    if isinstance(target, cst.Name):
        return {target.value}
    if isinstance(target, (cst.Tuple, cst.List)):
        out: set[str] = set()
        for element in target.elements:
            out |= target_names(element.value)
        return out
    if isinstance(target, cst.StarredElement):
        return target_names(target.value)
    return set()


def _target_reads(target: cst.BaseExpression, names: BlockNames) -> set[str]:
    """What storing into ``target`` reads: the object of ``x.y = ...`` / ``x[i] = ...``."""
    if isinstance(target, (cst.Tuple, cst.List)):
        out: set[str] = set()
        for element in target.elements:
            out |= _target_reads(element.value, names)
        return out
    if isinstance(target, cst.StarredElement):
        return _target_reads(target.value, names)
    if isinstance(target, cst.Name):
        return set()
    return names.reads(target)


class _Flow:
    """One pass in execution order; ``reads`` collects names read before a certain write.

    Without ``names`` (no scope analysis) only the writes are followed: what a block binds is
    syntax (targets of its own statements), and the scope analysis, the costly part, is only
    needed to tell which read names belong to the block's scope."""

    def __init__(self, names: BlockNames | None) -> None:
        self.names = names
        self.reads: set[str] = set()
        self.maybe: set[str] = set()  # every name the block may bind
        self.definitely: set[str] = set()  # what every path binds (set by ``analyse``)

    def read(self, node: cst.CSTNode | None, bound: set[str]) -> None:
        if node is None:
            return
        if self.names is not None:
            self.reads |= self.names.reads(node) - bound
        # `(n := f(x))` in an expression of the block binds n in the block's scope (also from
        # inside a comprehension); maybe, never surely
        self.maybe |= _walrus_targets(node)

    def bind(self, new: set[str], bound: set[str]) -> set[str]:
        self.maybe |= new
        return bound | new

    def block(self, stmts: Sequence[cst.BaseStatement], bound: set[str]) -> set[str]:
        for s in stmts:
            bound = self.statement(s, bound)
        return bound

    def suite(self, suite: cst.BaseSuite | None, bound: set[str]) -> set[str]:
        if suite is None:
            return bound
        if isinstance(suite, cst.IndentedBlock):
            return self.block(suite.body, bound)
        return self.block([cst.SimpleStatementLine(body=suite.body)], bound)

    def statement(self, s: cst.BaseStatement, bound: set[str]) -> set[str]:  # noqa: C901
        if isinstance(s, cst.SimpleStatementLine):
            for small in s.body:
                bound = self.small(small, bound)
            return bound
        if isinstance(s, cst.If):
            self.read(s.test, bound)
            then = self.suite(s.body, bound)
            other = (
                self.statement(s.orelse, bound)
                if isinstance(s.orelse, cst.If)
                else (self.suite(s.orelse.body, bound) if s.orelse is not None else bound)
            )
            # a branch that raises or returns never reaches the next statement: what follows
            # sees the names the other branches bind (`if a: x = f() else: raise ValueError`)
            if _leaves(s.body) and not _leaves_all(s.orelse):
                return other
            if _leaves_all(s.orelse) and not _leaves(s.body):
                return then
            return then & other
        if isinstance(s, cst.Else):
            return self.suite(s.body, bound)
        if isinstance(s, cst.For):
            self.read(s.iter, bound)
            self.read_target(s.target, bound)
            inside = self.bind(target_names(s.target), bound)
            self.suite(s.body, inside)
            if s.orelse is not None:
                self.suite(s.orelse.body, bound)
            return bound
        if isinstance(s, cst.While):
            self.read(s.test, bound)
            self.suite(s.body, bound)
            if s.orelse is not None:
                self.suite(s.orelse.body, bound)
            return bound
        if isinstance(s, cst.With):
            for item in s.items:
                self.read(item.item, bound)
                if item.asname is not None:
                    self.read_target(item.asname.name, bound)
                    bound = self.bind(target_names(item.asname.name), bound)
            return self.suite(s.body, bound)
        if isinstance(s, cst.Try):
            after_body = self.suite(s.body, bound)
            for handler in s.handlers:
                self.read(handler.type, bound)
                inside = bound
                if handler.name is not None:
                    inside = self.bind(target_names(handler.name.name), bound)
                self.suite(handler.body, inside)
            if s.orelse is not None:
                self.suite(s.orelse.body, after_body)
            if s.finalbody is not None:
                return self.suite(s.finalbody.body, bound)
            return bound
        if isinstance(s, (cst.FunctionDef, cst.ClassDef)):
            # decorators, defaults, bases and the free names of the body are read here (the
            # body's reads happen when it is called: counted now, to be safe)
            self.read(s, bound)
            return self.bind({s.name.value}, bound)
        # anything else (match, async blocks, ...): everything it names may be read, nothing
        # counts as surely bound
        self.read(s, bound)
        return bound

    def read_target(self, target: cst.BaseExpression, bound: set[str]) -> None:
        if self.names is not None:
            self.reads |= _target_reads(target, self.names) - bound

    def small(self, small: cst.BaseSmallStatement, bound: set[str]) -> set[str]:
        if isinstance(small, cst.Assign):
            self.read(small.value, bound)
            for t in small.targets:
                self.read_target(t.target, bound)
                bound = self.bind(target_names(t.target), bound)
            return bound
        if isinstance(small, cst.AnnAssign):
            self.read(small.value, bound)
            self.read_target(small.target, bound)
            if small.value is None:
                return bound
            return self.bind(target_names(small.target), bound)
        if isinstance(small, cst.AugAssign):
            self.read(small.value, bound)
            # `x += 1` reads x (libcst records the target as an assignment only)
            self.reads |= target_names(small.target) - bound
            self.read_target(small.target, bound)
            return self.bind(target_names(small.target), bound)
        if isinstance(small, (cst.Import, cst.ImportFrom)):
            if isinstance(small.names, cst.ImportStar):
                return bound
            new = set()
            for alias in small.names:
                if alias.asname is not None:
                    new |= target_names(alias.asname.name)
                else:
                    new.add(cst.Module(body=[]).code_for_node(alias.name).split(".")[0])
            return self.bind(new, bound)
        if isinstance(small, (cst.Global, cst.Nonlocal)):
            return bound
        if isinstance(small, cst.Del):
            self.read(small, bound)
            return bound - target_names(small.target)
        self.read(small, bound)
        return bound


def _leaves(suite: cst.BaseSuite) -> bool:
    """Whether a block ends in ``raise`` or ``return`` at its own level."""
    if isinstance(suite, cst.IndentedBlock):
        last = suite.body[-1] if suite.body else None
        smalls = last.body if isinstance(last, cst.SimpleStatementLine) else []
    else:
        smalls = suite.body
    return bool(smalls) and isinstance(smalls[-1], (cst.Raise, cst.Return))


def _leaves_all(orelse) -> bool:
    """Whether every branch of an ``elif``/``else`` chain raises or returns (no ``else``: the
    path that takes no branch falls through)."""
    if orelse is None:
        return False
    if isinstance(orelse, cst.If):
        return _leaves(orelse.body) and _leaves_all(orelse.orelse)
    return _leaves(orelse.body)


def analyse(
    stmts: Sequence[cst.BaseStatement], bound: Iterable[str] = (), *, reads: bool = True
) -> _Flow:
    flow = _Flow(block_names(stmts) if reads else None)
    flow.definitely = flow.block(list(stmts), set(bound))
    return flow


def incoming(stmts: Sequence[cst.BaseStatement], bound: Iterable[str] = ()) -> set[str]:
    """Names whose value from before ``stmts`` they may read (``bound``: bound on entry)."""
    return analyse(stmts, bound).reads


def written(stmts: Sequence[cst.BaseStatement]) -> set[str]:
    """Names ``stmts`` may bind in their own scope (not in comprehensions or nested defs)."""
    return analyse(stmts, reads=False).maybe


def definitely_bound(stmts: Sequence[cst.BaseStatement]) -> set[str]:
    """Names bound on every path through ``stmts``."""
    return analyse(stmts, reads=False).definitely


_INNER_SCOPES = (
    cst.FunctionDef,
    cst.ClassDef,
    cst.Lambda,
    cst.ListComp,
    cst.SetComp,
    cst.DictComp,
    cst.GeneratorExp,
)


def inner_name_ids(stmts: Sequence[cst.BaseStatement]) -> set[int]:
    """ids of the Name nodes in ``stmts`` that belong to an inner scope (comprehension targets,
    lambda parameters, locals of nested functions): a rename of the block's variables skips them."""
    if not any(isinstance(n, _INNER_SCOPES) for s in stmts for n in walk(s)):
        return set()  # one scope only: nothing to skip, no scope analysis needed
    return block_names(stmts).inner


@by_identity(maxsize=64)
def block_names(stmts: Sequence[cst.BaseStatement]) -> BlockNames:
    """The scope analysis of a block, kept for the blocks asked about again (the converter asks
    about the same loop body from several places)."""
    return BlockNames(stmts)


def _walrus_targets(node: cst.CSTNode) -> set[str]:
    out: set[str] = set()
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, cst.NamedExpr):
            out |= target_names(current.target)
        if isinstance(current, (cst.FunctionDef, cst.ClassDef, cst.Lambda)):
            continue  # their walrus targets are theirs
        stack.extend(children(current))
    return out


def declared_global(stmts: Sequence[cst.BaseStatement], kinds: tuple = (cst.Global,)) -> set[str]:
    """Names a ``global`` statement among ``stmts`` (not in nested defs) declares; ``kinds``:
    ``(cst.Global, cst.Nonlocal)`` for either declaration."""
    out: set[str] = set()
    for s in stmts:
        if isinstance(s, cst.SimpleStatementLine):
            for small in s.body:
                if isinstance(small, kinds):
                    out |= {n.name.value for n in small.names}
    return out
