"""Small libcst helpers migrate's codemods share: code text, names a block binds or uses,
renaming, comment carrying, statement building."""

from __future__ import annotations

import re

import libcst as cst

import scaffold.migrate.match as m
from scaffold.migrate.dataflow import target_names as _bound_names
from scaffold.migrate.memo import by_identity
from scaffold.migrate.names import PROGRESS_WRAPPERS, qualified
from scaffold.migrate.walk import children, run_visitor, walk

# every public attribute and method of a LightningModule (nn.Module's included) and the names the
# generated class uses itself: a script variable kept as an attribute never takes one of these
# (``self.train = ...`` would hide nn.Module.train), it gets a trailing underscore instead
LIGHTNING_ATTRS = frozenset({
    "CHECKPOINT_HYPER_PARAMS_KEY", "CHECKPOINT_HYPER_PARAMS_NAME", "CHECKPOINT_HYPER_PARAMS_TYPE",
    "T_destination", "add_module", "all_gather", "apply", "automatic_optimization", "backward",
    "bfloat16", "buffers", "call_super_init", "children", "clip_gradients", "compile",
    "configure_callbacks", "configure_gradient_clipping", "configure_model",
    "configure_optimizers", "configure_sharded_model", "cpu", "cuda", "current_epoch", "device",
    "device_mesh", "double", "dtype", "dump_patches", "eval", "example_input_array", "extra_repr",
    "fabric", "float", "forward", "freeze", "get_buffer", "get_extra_state", "get_parameter",
    "get_submodule", "global_rank", "global_step", "half", "hparams", "hparams_initial", "ipu",
    "load_from_checkpoint", "load_state_dict", "local_rank", "log", "log_dict", "logger",
    "loggers", "lr_scheduler_step", "lr_schedulers", "manual_backward", "modules", "mtia",
    "named_buffers", "named_children", "named_modules", "named_parameters", "on_after_backward",
    "on_after_batch_transfer", "on_before_backward", "on_before_batch_transfer",
    "on_before_optimizer_step", "on_before_zero_grad", "on_fit_end", "on_fit_start", "on_gpu",
    "on_load_checkpoint", "on_predict_batch_end", "on_predict_batch_start", "on_predict_end",
    "on_predict_epoch_end", "on_predict_epoch_start", "on_predict_model_eval", "on_predict_start",
    "on_save_checkpoint", "on_test_batch_end", "on_test_batch_start", "on_test_end",
    "on_test_epoch_end", "on_test_epoch_start", "on_test_model_eval", "on_test_model_train",
    "on_test_start", "on_train_batch_end", "on_train_batch_start", "on_train_end",
    "on_train_epoch_end", "on_train_epoch_start", "on_train_start", "on_validation_batch_end",
    "on_validation_batch_start", "on_validation_end", "on_validation_epoch_end",
    "on_validation_epoch_start", "on_validation_model_eval", "on_validation_model_train",
    "on_validation_model_zero_grad", "on_validation_start", "optimizer_step",
    "optimizer_zero_grad", "optimizers", "parameters", "predict_dataloader", "predict_step",
    "prepare_data", "print", "register_backward_hook", "register_buffer", "register_forward_hook",
    "register_forward_pre_hook", "register_full_backward_hook", "register_full_backward_pre_hook",
    "register_load_state_dict_post_hook", "register_load_state_dict_pre_hook", "register_module",
    "register_parameter", "register_state_dict_post_hook", "register_state_dict_pre_hook",
    "remove_ignored_hparams", "requires_grad_", "save_hyperparameters", "set_extra_state",
    "set_submodule", "setup", "share_memory", "state_dict", "strict_loading", "teardown",
    "test_dataloader", "test_step", "to", "to_empty", "to_onnx", "to_tensorrt", "to_torchscript",
    "toggle_optimizer", "toggled_optimizer", "train", "train_dataloader", "trainer",
    "training_step", "transfer_batch_to_device", "type", "unfreeze", "untoggle_optimizer",
    "val_dataloader", "validation_step", "xpu", "zero_grad", "model",
    "optimizer", "scheduler",
})  # fmt: skip


def code_of(node: cst.CSTNode) -> str:
    return cst.Module(body=[]).code_for_node(node)


def _method_call(stmt: cst.CSTNode, method: str) -> cst.Call | None:
    """``<expr>.method(...)`` when ``stmt`` is exactly that expression statement."""
    if not m.matches(
        stmt,
        m.SimpleStatementLine(body=[m.Expr(value=m.Call(func=m.Attribute(attr=m.Name(method))))]),
    ):
        return None
    return stmt.body[0].value  # type: ignore[attr-defined,return-value]


def _statement_index(body, node) -> int | None:
    for i, stmt in enumerate(body):
        if stmt is node:
            return i
    return None


def _name_of(expr) -> str | None:
    return expr.value if isinstance(expr, cst.Name) else None


def _dotted(expr) -> str | None:
    """``opt`` or ``self.opt`` / ``runner.optim.inner``: a name or a chain of attributes on a name."""
    if isinstance(expr, cst.Name):
        return expr.value
    if isinstance(expr, cst.Attribute):
        base = _dotted(expr.value)
        return None if base is None else f"{base}.{expr.attr.value}"
    return None


def _receiver(call: cst.Call) -> cst.BaseExpression:
    return call.func.value  # type: ignore[attr-defined]


def _target_names(node) -> set[str]:
    return {n.value for n in m.findall(node, m.Name())}


def comments_of(node) -> list[cst.EmptyLine]:
    """The own-line and trailing comments a removed statement carries, as comment lines."""
    lines = [ln for ln in getattr(node, "leading_lines", ()) if ln.comment is not None]
    trailing = getattr(node, "trailing_whitespace", None)
    if trailing is not None and trailing.comment is not None:
        lines.append(cst.EmptyLine(comment=trailing.comment))
    return lines


def with_comments(node, lines: list[cst.EmptyLine]):
    if not lines:
        return node
    return node.with_changes(leading_lines=[*lines, *node.leading_lines])


def _kwarg(call: cst.Call, name: str, index: int | None = None):
    for i, a in enumerate(call.args):
        if a.keyword is not None and a.keyword.value == name:
            return a.value
        if a.keyword is None and index is not None and i == index:
            return a.value
    return None


# ------------------------------------------------------------------------------- name analysis
def _assigned(stmts) -> set[str]:
    names: set[str] = set()
    mod = cst.Module(body=list(stmts))
    for node in m.findall(mod, m.Assign() | m.AugAssign() | m.AnnAssign() | m.For() | m.WithItem()):
        if isinstance(node, cst.Assign):
            for t in node.targets:
                names |= _bound_names(t.target)
        elif isinstance(node, (cst.AugAssign, cst.AnnAssign, cst.For)):
            names |= _bound_names(node.target)
        elif isinstance(node, cst.WithItem) and node.asname is not None:
            names |= _bound_names(node.asname.name)
    return names


def variable_nodes(nodes) -> list[cst.Name]:
    """The ``Name`` nodes among ``nodes`` that stand for variables (attribute names and
    keywords excluded)."""
    found: list[cst.Name] = []
    stack: list[cst.CSTNode] = list(nodes)
    while stack:
        node = stack.pop()
        if isinstance(node, cst.Name):
            found.append(node)
        elif isinstance(node, (cst.Attribute, cst.Arg)):
            stack.append(node.value)  # not `x.attr`'s attr, not `f(kw=...)`'s keyword
        else:
            stack.extend(children(node))
    return found


def _used(stmts) -> set[str]:
    """Names appearing as variables (attribute names and keywords excluded)."""
    return {n.value for n in variable_nodes(stmts)}


class _Renamer(cst.CSTTransformer):
    """Replaces variable names by expressions (``n`` -> ``self.n``), keeping attribute names,
    keywords and parameter names as they are."""

    def __init__(self, mapping: dict[str, cst.BaseExpression]) -> None:
        self.mapping = mapping
        self.inner: set[int] = set()

    def visit_Module(self, node):
        # names of inner scopes (comprehension targets, lambda parameters, locals of nested
        # functions) are other variables that happen to share the name: left alone
        from scaffold.migrate.dataflow import inner_name_ids

        if self.mapping:
            self.inner = inner_name_ids(node.body)
        return True

    def visit_Attribute(self, node):
        return True

    def leave_Attribute(self, original, updated):
        return updated.with_changes(attr=original.attr)

    def leave_Arg(self, original, updated):
        return updated.with_changes(keyword=original.keyword)

    def leave_Param(self, original, updated):
        return updated.with_changes(name=original.name)

    def leave_Name(self, original, updated):
        if id(original) in self.inner:
            return updated
        return self.mapping.get(original.value, updated)


class _BreakReplacer(cst.CSTTransformer):
    """``break`` of the converted loop (not of loops nested in it) -> ``replacement``."""

    def __init__(self, replacement: cst.BaseSmallStatement) -> None:
        self.replacement = replacement
        self.depth = 0

    def visit_For(self, node):
        self.depth += 1

    def leave_For(self, original, updated):
        self.depth -= 1
        return updated

    def visit_While(self, node):
        self.depth += 1

    def leave_While(self, original, updated):
        self.depth -= 1
        return updated

    def leave_Break(self, original, updated):
        return self.replacement if self.depth == 0 else updated


RETURN_MARK = "__scaffold_returned__"


class _ReturnsAsBreaks(cst.CSTTransformer):
    """``return X`` of the function holding the converted loop, written in the loop's body (not
    in a nested loop, function or class) -> ``__scaffold_returned__ = (X,)`` and ``break``: the
    loop stops there and the build maps the mark to the module's attribute, read after ``fit``
    to return the same value. ``nested`` counts the returns inside nested loops (not mapped)."""

    def __init__(self) -> None:
        self.loops = 0
        self.defs = 0
        self.mapped = 0
        self.nested = 0

    def visit_For(self, node) -> None:
        self.loops += 1

    def leave_For(self, original, updated):
        self.loops -= 1
        return updated

    visit_While = visit_For
    leave_While = leave_For

    def visit_FunctionDef(self, node) -> None:
        self.defs += 1

    def leave_FunctionDef(self, original, updated):
        self.defs -= 1
        return updated

    visit_ClassDef = visit_FunctionDef
    leave_ClassDef = leave_FunctionDef

    def leave_SimpleStatementLine(self, original, updated):
        if self.defs or not any(isinstance(x, cst.Return) for x in updated.body):
            return updated
        if self.loops:
            self.nested += 1
            return updated
        body = []
        for small in updated.body:
            if isinstance(small, cst.Return):
                value = small.value if small.value is not None else cst.Name("None")
                if isinstance(value, cst.Tuple) and not value.lpar:
                    value = value.with_changes(lpar=[cst.LeftParen()], rpar=[cst.RightParen()])
                mark = cst.Assign(
                    targets=[cst.AssignTarget(cst.Name(RETURN_MARK))],
                    value=cst.Tuple([cst.Element(value)]),
                )
                body += [mark, cst.Break()]
                self.mapped += 1
                break  # what follows a return in the same line never runs
            body.append(small)
        return updated.with_changes(body=body)


def returns_as_breaks(stmts: list) -> tuple[list, int, int]:
    """The loop body with its returns mapped (see ``_ReturnsAsBreaks``); how many were mapped
    and how many sit in nested loops."""
    mapper = _ReturnsAsBreaks()
    # a statement without a return keeps its node (positions are looked up by identity)
    out = [s.visit(mapper) if m.findall(s, m.Return()) else s for s in stmts]
    return out, mapper.mapped, mapper.nested


class _OwnBreaks(cst.CSTVisitor):
    """Counts the ``break`` statements of the loop whose body is visited (not of nested loops;
    a nested loop's ``else`` block breaks the outer loop)."""

    def __init__(self) -> None:
        self.count = 0

    def visit_For(self, node) -> bool:
        if node.orelse is not None:
            run_visitor(node.orelse, self)
        return False

    visit_While = visit_For

    def visit_FunctionDef(self, node) -> bool:
        return False

    visit_ClassDef = visit_FunctionDef

    def visit_Break(self, node) -> None:
        self.count += 1


def own_breaks(stmts) -> int:
    counter = _OwnBreaks()
    for s in stmts:
        run_visitor(s, counter)
    return counter.count


class _OwnContinues(_OwnBreaks):
    """Counts the ``continue`` statements of the loop whose body is visited (not of nested
    loops; a nested loop's ``else`` block continues the outer loop)."""

    def visit_Break(self, node) -> None:
        pass

    def visit_Continue(self, node) -> None:
        self.count += 1


def own_continues(stmts) -> int:
    counter = _OwnContinues()
    for s in stmts:
        run_visitor(s, counter)
    return counter.count


def _ends_in_break(block) -> bool:
    last = block.body[-1] if isinstance(block, cst.IndentedBlock) and block.body else None
    return isinstance(last, cst.SimpleStatementLine) and isinstance(last.body[-1], cst.Break)


def break_else(stmts: list) -> list:
    """``if c: ...; break`` followed by more statements becomes ``if c: ...; break`` with the
    rest in its ``else:`` (the same control flow), so the ``break`` ends its block's code."""
    out: list = []
    for i, s in enumerate(stmts):
        if isinstance(s, cst.If) and isinstance(s.body, cst.IndentedBlock):
            s = s.with_changes(body=s.body.with_changes(body=break_else(list(s.body.body))))
            rest = stmts[i + 1 :]
            if rest and s.orelse is None and _ends_in_break(s.body):
                tail = cst.Else(body=cst.IndentedBlock(body=break_else(list(rest))))
                out.append(s.with_changes(orelse=tail))
                return out
        out.append(s)
    return out


def breaks_end_iteration(stmts: list, tail: bool = True) -> bool:
    """Whether every ``break`` of the loop body ``stmts`` is the last thing its iteration runs:
    the last statement of its block, in ``if``/``else`` blocks that are themselves last. Then
    replacing it with "stop after this iteration" runs the same statements."""
    for i, s in enumerate(stmts):
        last = tail and i == len(stmts) - 1
        if isinstance(s, cst.SimpleStatementLine):
            for j, small in enumerate(s.body):
                if isinstance(small, cst.Break) and not (last and j == len(s.body) - 1):
                    return False
        elif isinstance(s, cst.If):
            branch = s
            while isinstance(branch, cst.If):
                if not breaks_end_iteration(list(branch.body.body), last):
                    return False
                branch = branch.orelse
            if isinstance(branch, cst.Else) and not breaks_end_iteration(
                list(branch.body.body), last
            ):
                return False
        elif own_breaks([s]):
            return False  # inside a with/try block or a nested loop's else: not converted
    return True


class _ContinueReplacer(_BreakReplacer):
    """``continue`` of the converted loop -> ``replacement`` (``return``: training_step ends
    for this batch, as the iteration did)."""

    def leave_Break(self, original, updated):
        return updated

    def leave_Continue(self, original, updated):
        return self.replacement if self.depth == 0 else updated


def outside_defs(stmts, pattern) -> list:
    """Nodes matching ``pattern`` in ``stmts``, not counting those in nested defs/lambdas."""
    found = []
    for s in stmts:
        if isinstance(s, (cst.FunctionDef, cst.ClassDef)):
            continue
        for node in m.findall(s, pattern):
            found.append(node)
    inner = [
        n
        for s in stmts
        for d in m.findall(s, m.FunctionDef() | m.Lambda())
        for n in m.findall(d, pattern)
    ]
    return [n for n in found if not any(n is i for i in inner)]


def split_lines(stmts) -> list:
    """``a(); b()`` on one line -> one statement per line (the line's comments go with the
    first and, for a trailing comment, the last), so each can be moved on its own."""
    out = []
    for s in stmts:
        if not isinstance(s, cst.SimpleStatementLine) or len(s.body) < 2:
            out.append(s)
            continue
        smalls = [x.with_changes(semicolon=cst.MaybeSentinel.DEFAULT) for x in s.body]
        lines = [cst.SimpleStatementLine(body=[x]) for x in smalls]
        lines[0] = lines[0].with_changes(leading_lines=s.leading_lines)
        lines[-1] = lines[-1].with_changes(trailing_whitespace=s.trailing_whitespace)
        out += lines
    return out


def transform_stmts(stmts, transformer) -> list:
    return list(cst.Module(body=list(stmts)).visit(transformer).body)


def stmt(code: str):
    return cst.parse_statement(code)


# ----------------------------------------------------------------------------------- building
def _unwrap_loader(iter_expr):
    """``enumerate(x, 1)`` / ``tqdm(x)`` -> (x, enumerate start or None, index name used)."""
    start = None
    enumerated = False
    expr = iter_expr
    while isinstance(expr, cst.Call) and expr.args and expr.args[0].keyword is None:
        func = qualified(expr)
        if func in ("enumerate", "builtins.enumerate"):
            enumerated = True
            if len(expr.args) > 1:
                start = code_of(expr.args[1].value)
            expr = expr.args[0].value
        elif func in PROGRESS_WRAPPERS:
            expr = expr.args[0].value
        else:
            break
    return expr, enumerated, start


# calls that compute a value from their arguments and do nothing else
_PURE_CALLS = {"len", "int", "float", "abs", "round", "min", "max", "sum"}


def pure(expr: cst.BaseExpression) -> bool:
    """Whether evaluating ``expr`` once more gives the same value and can have no effect:
    names, attributes, literals, arithmetic, ``.item()``, ``len``/``float``/``min``/... and
    ``math.*`` calls of such values."""
    if isinstance(expr, (cst.Name, cst.Integer, cst.Float, cst.SimpleString)):
        return True
    if isinstance(expr, cst.Attribute):
        return pure(expr.value)
    if isinstance(expr, cst.BinaryOperation):
        return pure(expr.left) and pure(expr.right)
    if isinstance(expr, cst.UnaryOperation):
        return pure(expr.expression)
    if isinstance(expr, cst.Call) and all(a.star == "" and a.keyword is None for a in expr.args):
        if m.matches(expr.func, m.Attribute(attr=m.Name("item"))) and not expr.args:
            return pure(expr.func.value)
        name = (qualified(expr) or code_of(expr.func)).removeprefix("builtins.")
        if name in _PURE_CALLS or name.startswith("math."):
            return all(pure(a.value) for a in expr.args)
    return False


def _assignment_value(body, name: str):
    for s in body:
        if isinstance(s, cst.SimpleStatementLine):
            for small in s.body:
                if isinstance(small, cst.Assign):
                    for t in small.targets:
                        if code_of(t.target) == name:
                            return small.value
    return None


def _simple(code: str) -> bool:
    """A name, a dotted name or a literal: evaluating it again gives the same object."""

    return bool(re.fullmatch(r"[A-Za-z_][\w.]*|-?\d+(\.\d*)?(e-?\d+)?|'[^']*'|\"[^\"]*\"", code))


def _fresh(base: str, taken: set[str]) -> str:
    name, i = base, 2
    while name in taken:
        name, i = f"{base}{i}", i + 1
    return name


def _loop_comments(node) -> list[cst.EmptyLine]:
    """Comments a dropped loop or function header would lose: its own leading lines, the
    header's trailing comment and the block's footer."""
    lines = [ln for ln in node.leading_lines if ln.comment is not None]
    body = node.body
    if isinstance(body, cst.IndentedBlock):
        if body.header.comment is not None:
            lines.append(cst.EmptyLine(comment=body.header.comment))
        lines += [ln for ln in body.footer if ln.comment is not None]
    return lines


def re_word(name: str, text: str) -> bool:

    return re.search(rf"(?<![\w.]){re.escape(name)}\b", text) is not None


def call_bindings(fn: cst.FunctionDef, call: cst.Call) -> dict[str, str] | None:
    """Parameter name -> argument code for ``call`` of ``fn`` (defaults fill the rest); None
    where star arguments, keyword-only parameters or surplus positional arguments are involved.
    Parameters with neither an argument nor a default are left out."""
    params = fn.params
    if (
        any(a.star for a in call.args)
        or params.star_arg not in (None, cst.MaybeSentinel.DEFAULT)
        or params.kwonly_params
        or params.star_kwarg
    ):
        return None
    positional = [a for a in call.args if a.keyword is None]
    if len(positional) > len(params.params):
        return None
    mapping = {
        p.name.value: code_of(a.value) for p, a in zip(params.params, positional, strict=False)
    }
    mapping.update({a.keyword.value: code_of(a.value) for a in call.args if a.keyword is not None})
    for p in params.params:
        if p.name.value not in mapping and p.default is not None:
            mapping[p.name.value] = code_of(p.default)
    return mapping


def loop_target_names(loop: cst.For) -> tuple[str | None, str]:
    """(the ``enumerate`` index's code or None, the batch target's code) of a batch loop."""
    _, enumerated, _ = _unwrap_loader(loop.iter)
    target = loop.target
    index = None
    if enumerated and isinstance(target, cst.Tuple) and len(target.elements) == 2:
        index = code_of(target.elements[0].value)
        target = target.elements[1].value
    return index, _target_code(target)


def _target_code(target) -> str:
    """A loop target as the left side of an assignment: a parenthesized tuple loses its own
    parentheses (``(x, y)`` -> ``x, y``; ``(x,), (y,)`` stays as written)."""
    if isinstance(target, cst.Tuple) and target.lpar:
        target = target.with_changes(lpar=[], rpar=[])
    return code_of(target)


def batch_unpack(
    loop: cst.For, index_param: str = "batch_idx", batch_param: str = "batch"
) -> list[str] | None:
    """Statements binding a batch loop's target inside a step method
    ``(self, <batch_param>, <index_param>)`` (``i = batch_idx + 1``, ``x, y = batch``); None
    when an ``enumerate`` target is not a pair."""
    _, enumerated, start = _unwrap_loader(loop.iter)
    target = loop.target
    lines = []
    if enumerated:
        if not (isinstance(target, cst.Tuple) and len(target.elements) == 2):
            return None
        index = code_of(target.elements[0].value)
        if start is not None and start not in ("0", "start=0"):
            lines.append(f"{index} = {index_param} + {start}")
        elif index != index_param:
            lines.append(f"{index} = {index_param}")
        target = target.elements[1].value
    batch = _target_code(target)
    if batch != batch_param:
        lines.append(f"{batch} = {batch_param}")
    return lines


def body_without_docstring(fn: cst.FunctionDef) -> list:
    if isinstance(fn.body, cst.SimpleStatementSuite):  # `def f(self): a(); b()`
        return [cst.SimpleStatementLine(body=list(fn.body.body))]
    body = list(fn.body.body)
    if body and isinstance(body[0], cst.SimpleStatementLine) and len(body[0].body) == 1:
        first = body[0].body[0]
        if isinstance(first, cst.Expr) and isinstance(first.value, cst.SimpleString):
            return body[1:]
    return body


def calls_of(module: cst.CSTNode, name: str) -> int:
    """How many ``name(...)`` calls the module makes (one counting pass per module, cached)."""
    return _call_counts(module).get(name, 0)


@by_identity(maxsize=8)
def _call_counts(module: cst.CSTNode) -> dict[str, int]:
    counts: dict[str, int] = {}
    for node in walk(module):
        if isinstance(node, cst.Call) and isinstance(node.func, cst.Name):
            counts[node.func.value] = counts.get(node.func.value, 0) + 1
    return counts


class FunctionDepth(cst.CSTTransformer):
    """A transformer that knows how many ``def``s enclose the node it is at (``self.depth``)."""

    depth = 0

    def visit_FunctionDef(self, node) -> None:
        self.depth += 1

    def leave_FunctionDef(self, original, updated):
        self.depth -= 1
        return updated


def comment_holder(lines: list[cst.EmptyLine]) -> cst.SimpleStatementLine:
    """A ``pass`` carrying comment lines whose statement went away."""
    return cst.SimpleStatementLine(body=[cst.Pass()], leading_lines=lines)


def removed(node):
    """What a removed statement leaves behind: nothing, or its comments on a ``pass``."""
    lines = comments_of(node)
    if not lines:
        return cst.RemoveFromParent()
    leading = getattr(node, "leading_lines", ())
    if leading and leading[0].comment is None:
        lines = [leading[0], *lines]  # the blank line that set the comments apart stays too
    return comment_holder(lines)


class FoldCommentHolders(cst.CSTTransformer):
    """The last tidying of a migrated module: a comment holder (a ``pass`` carrying the comments
    of a statement that went away) followed by another statement of its block hands its comment
    lines to that statement and goes; at the end of the module they become its footer. A block
    whose only statement is the holder keeps it (the block needs a statement)."""

    @staticmethod
    def _holder(s) -> bool:
        return (
            m.matches(s, m.SimpleStatementLine(body=[m.Pass()]))
            and any(ln.comment is not None for ln in s.leading_lines)
            and s.trailing_whitespace.comment is None
        )

    def _fold(self, body) -> tuple[list, list]:
        out, pending = [], []
        for s in body:
            if self._holder(s):
                pending.append(s)
                continue
            if pending:
                carried = [ln for h in pending for ln in h.leading_lines]
                s = s.with_changes(leading_lines=[*carried, *s.leading_lines])
                pending = []
            out.append(s)
        return out, pending

    def leave_IndentedBlock(self, original, updated):
        body, pending = self._fold(updated.body)
        return updated.with_changes(body=[*body, *pending])  # a holder ending a block stays

    def leave_Module(self, original, updated):
        body, pending = self._fold(updated.body)
        footer = [ln for h in pending for ln in h.leading_lines]
        return updated.with_changes(body=body, footer=[*footer, *updated.footer])


class KeepBlocksValid(cst.CSTTransformer):
    """A transformer that removes statements: a block left empty gets a ``pass``, and an ``if``
    (without ``else``) on a test that does nothing but test (``if ddp:``, ``if rank == 0:``)
    whose every statement went away goes too (its comments stay)."""

    def leave_IndentedBlock(self, original, updated):
        if not updated.body:
            return updated.with_changes(body=[cst.SimpleStatementLine(body=[cst.Pass()])])
        return updated

    def leave_If(self, original, updated):
        emptied = (
            isinstance(updated.body, cst.IndentedBlock)
            and len(updated.body.body) == 1
            and m.matches(updated.body.body[0], m.SimpleStatementLine(body=[m.Pass()]))
            and not updated.body.body[0].leading_lines
            and not updated.body.footer
            and not (
                isinstance(original.body, cst.IndentedBlock)
                and len(original.body.body) == 1
                and m.matches(original.body.body[0], m.SimpleStatementLine(body=[m.Pass()]))
            )
        )
        if emptied and updated.orelse is None and _quiet_test(updated.test):
            return removed(updated)
        return updated


def _quiet_test(expr) -> bool:
    """A test whose evaluation can have no effect: names, attributes, literals, comparisons,
    ``not``/``and``/``or`` of those."""
    if isinstance(expr, cst.Comparison):
        return _quiet_test(expr.left) and all(_quiet_test(c.comparator) for c in expr.comparisons)
    if isinstance(expr, cst.BooleanOperation):
        return _quiet_test(expr.left) and _quiet_test(expr.right)
    if isinstance(expr, cst.UnaryOperation):
        return _quiet_test(expr.expression)
    return isinstance(expr, (cst.Name, cst.Integer, cst.SimpleString)) or (
        isinstance(expr, cst.Attribute) and _quiet_test(expr.value)
    )


def last_assigned_value(stmts, name: str):
    """The value last assigned to ``name`` by the statements (``name = v`` or
    ``a, name = x, v``), or None."""
    value = None
    for s in stmts:
        if not isinstance(s, cst.SimpleStatementLine):
            continue
        for small in s.body:
            if not isinstance(small, cst.Assign):
                continue
            for t in small.targets:
                if isinstance(t.target, cst.Name) and t.target.value == name:
                    value = small.value
                elif (
                    isinstance(t.target, cst.Tuple)
                    and isinstance(small.value, cst.Tuple)
                    and len(t.target.elements) == len(small.value.elements)
                ):
                    for e, v in zip(t.target.elements, small.value.elements, strict=True):
                        if isinstance(e.value, cst.Name) and e.value.value == name:
                            value = v.value
    return value
