"""The script's top-level imports: the one place that adds an import line or drops imported names.

An added import goes where isort (and ``ruff check --select I``) would put it: in its section
(standard library, or third-party for ``torch``, ``lightning``, ``runtime`` and the rest), plain
``import x`` lines before ``from x import y`` lines, alphabetically among them. A dropped name
leaves the rest of its statement, and a statement left empty leaves its comments behind.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable

import libcst as cst

import scaffold.migrate.match as m
from scaffold.migrate.syntax import _used, code_of, comment_holder

_IMPORT = m.SimpleStatementLine(body=[m.Import() | m.ImportFrom()])
_DOCSTRING = m.SimpleStatementLine(body=[m.Expr(value=m.SimpleString())])
_STDLIB = frozenset(getattr(sys, "stdlib_module_names", ())) | {"__future__"}


def is_import(statement: cst.CSTNode) -> bool:
    return m.matches(statement, _IMPORT)


def local_name(alias: cst.ImportAlias) -> str:
    """The name an import alias binds: ``np`` for ``numpy as np``, ``a`` for ``import a.b``."""
    if alias.asname is not None:
        return code_of(alias.asname.name)
    return code_of(alias.name).split(".")[0]


def qualified_name(statement: cst.SimpleStatementLine, alias: cst.ImportAlias) -> str:
    imp = statement.body[0]
    full = code_of(alias.name)
    if isinstance(imp, cst.ImportFrom) and imp.module is not None:
        return f"{code_of(imp.module)}.{full}"
    return full


def used_outside_imports(module: cst.Module) -> set[str]:
    """Names the module's top-level statements other than imports use."""
    return _used([s for s in module.body if not is_import(s)])


def drop_imported_names(module: cst.Module, names: Iterable[str]) -> cst.Module:
    """``module`` less the top-level import aliases that bind one of ``names``."""
    names = set(names)
    if not names:
        return module
    body: list = []
    carried: list[cst.EmptyLine] = []  # comments of a removed import go to the next statement
    for s in module.body:
        if carried:
            s = s.with_changes(leading_lines=[*carried, *s.leading_lines])
            carried = []
        if not is_import(s) or isinstance(s.body[0].names, cst.ImportStar):
            body.append(s)
            continue
        imp = s.body[0]
        kept = [a for a in imp.names if local_name(a) not in names]
        if len(kept) == len(imp.names):
            body.append(s)
        elif not kept:
            carried = [ln for ln in s.leading_lines if ln.comment is not None]
            if s.trailing_whitespace.comment is not None:
                carried.append(cst.EmptyLine(comment=s.trailing_whitespace.comment))
        else:
            kept[-1] = kept[-1].with_changes(comma=cst.MaybeSentinel.DEFAULT)
            if isinstance(imp, cst.ImportFrom) and len(kept) == 1:
                imp = imp.with_changes(lpar=None, rpar=None)
            body.append(s.with_changes(body=[imp.with_changes(names=kept)]))
    if carried:
        body.append(comment_holder(carried))
    return module.with_changes(body=body)


def binds(module: cst.Module, line: str) -> bool:
    """Whether the module's top-level imports already hold the import ``line`` binds."""
    wanted = cst.parse_statement(line)
    want = {(qualified_name(wanted, a), local_name(a)) for a in wanted.body[0].names}
    have = set()
    for s in module.body:
        if is_import(s) and not isinstance(s.body[0].names, cst.ImportStar):
            have |= {(qualified_name(s, a), local_name(a)) for a in s.body[0].names}
    return want <= have


def _root(statement: cst.SimpleStatementLine) -> str:
    imp = statement.body[0]
    if isinstance(imp, cst.ImportFrom):
        if imp.relative or imp.module is None:
            return "."
        return code_of(imp.module)
    return code_of(imp.names[0].name)


def _section(statement: cst.SimpleStatementLine) -> int:
    root = _root(statement)
    if root == "__future__":
        return 0
    if root.startswith("."):
        return 3
    return 1 if root.split(".")[0] in _STDLIB else 2


def _key(statement: cst.SimpleStatementLine) -> tuple[int, str]:
    return (isinstance(statement.body[0], cst.ImportFrom), _root(statement).lower())


def add_import(module: cst.Module, line: str) -> cst.Module:
    """``module`` with the import ``line`` in its sorted place among the leading imports (after
    the docstring where there are none). Nothing changes when the import is already there."""
    if binds(module, line):
        return module
    new = cst.parse_statement(line)
    body = list(module.body)
    start = 1 if body and m.matches(body[0], _DOCSTRING) else 0
    end = start
    while end < len(body) and is_import(body[end]):
        end += 1
    block = range(start, end)
    section, key = _section(new), _key(new)
    same = [i for i in block if _section(body[i]) == section]
    greater = [i for i in same if _key(body[i]) > key]
    blank = cst.EmptyLine(indent=False)
    if greater:  # before the first import that sorts after it, in its section
        at = greater[0]
        opening, rest = _split_opening(body[at].leading_lines)
        new = new.with_changes(leading_lines=opening)
        body[at] = body[at].with_changes(leading_lines=rest)
    elif same:  # last of its section
        at = same[-1] + 1
    else:  # a section of its own: after the sections before it, one blank line apart
        earlier = [i for i in block if _section(body[i]) < section]
        at = earlier[-1] + 1 if earlier else start
        if earlier:
            new = new.with_changes(leading_lines=[blank])
        elif at < len(body):  # first statement after the docstring: it keeps a blank line
            opening, rest = _split_opening(body[at].leading_lines)
            new = new.with_changes(leading_lines=opening)
            body[at] = body[at].with_changes(leading_lines=[blank, *rest])
    body.insert(at, new)
    return module.with_changes(body=body)


def _split_opening(lines) -> tuple[list, list]:
    """(the blank lines before a statement's first comment, the rest)."""
    lines = list(lines)
    n = 0
    while n < len(lines) and lines[n].comment is None:
        n += 1
    return lines[:n], lines[n:]
