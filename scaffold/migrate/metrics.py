"""Evaluation metrics the script prints are also logged with ``self.log``.

A script that prints ``f"val loss {val_loss:.4f}"`` at the end of its evaluation keeps the print;
the migrated ``on_validation_epoch_end`` adds ``self.log("val_loss", self.val_loss)`` after it, so
the value reaches the logger, ``callback_metrics``, checkpoint and early-stopping monitors, as a
Lightning user would write it.

Only values printed with a numeric presentation type (``{x:.4f}``, ``{:d}``, ``%.3f``) are
logged: such a print has already proved the value is a number or a one-element tensor (anything
else fails to format), so the added ``self.log`` cannot fail where the print did not, and logging
never changes what the script computes. Values are logged where they are printed (the statement
right after the print, at the top level of the hook), each key once.
"""

from __future__ import annotations

import re
import string

import libcst as cst

import scaffold.migrate.match as m
from scaffold.migrate.syntax import code_of, pure, stmt

_NUMERIC = set("bcdeEfFgGnoxX%")
_PERCENT = re.compile(
    r"%(?:\((?P<key>\w+)\))?[-#0 +]*(?:\*|\d+)?(?:\.(?:\*|\d+))?[hlL]?(?P<conv>[diouxXeEfFgGcrsa%])"
)
_PREFIXES = ("validation_", "valid_", "val_", "test_", "eval_", "dev_")
# counters, not metrics (Lightning logs the epoch and step itself)
_COUNTERS = {"epoch", "epochs", "step", "steps", "iter", "iters", "iteration", "iterations"}
_COUNTERS |= {"batch", "batches", "batch_idx", "i", "it", "n", "idx", "index"}


def printed_numbers(call: cst.Call) -> list[tuple[cst.BaseExpression, str]]:
    """(expression, the text printed before it) for each value ``print(...)`` formats with a
    numeric presentation type, in order."""
    found: list[tuple[cst.BaseExpression, str]] = []
    for arg in call.args:
        if arg.keyword is None and arg.star == "":
            found += _formatted_numbers(arg.value)
    return found


def _formatted_numbers(expr: cst.BaseExpression) -> list[tuple[cst.BaseExpression, str]]:
    if isinstance(expr, cst.FormattedString):
        out, before = [], ""
        for part in expr.parts:
            if isinstance(part, cst.FormattedStringText):
                before += part.value
                continue
            if _numeric_spec(part):
                out.append((part.expression, before))
            before = ""
        return out
    if isinstance(expr, cst.Call) and m.matches(expr.func, m.Attribute(attr=m.Name("format"))):
        template = _literal_text(expr.func.value)
        return [] if template is None else _format_call(template, expr)
    if isinstance(expr, cst.BinaryOperation) and isinstance(expr.operator, cst.Modulo):
        template = _literal_text(expr.left)
        return [] if template is None else _percent(template, expr.right)
    return []


def _numeric_spec(part: cst.FormattedStringExpression) -> bool:
    spec = part.format_spec
    if not spec or not all(isinstance(p, cst.FormattedStringText) for p in spec):
        return False
    text = "".join(p.value for p in spec)
    return bool(text) and text[-1] in _NUMERIC


def _literal_text(expr) -> str | None:
    if isinstance(expr, (cst.SimpleString, cst.ConcatenatedString)):
        value = expr.evaluated_value
        return value if isinstance(value, str) else None
    return None


def _format_call(template: str, call: cst.Call) -> list[tuple[cst.BaseExpression, str]]:
    positional = [a.value for a in call.args if a.keyword is None and a.star == ""]
    if len(positional) != sum(1 for a in call.args if a.keyword is None):
        return []  # *args: which value lands where is not known
    keywords = {a.keyword.value: a.value for a in call.args if a.keyword is not None}
    out, auto = [], 0
    try:
        fields = list(string.Formatter().parse(template))
    except ValueError:
        return []
    for before, field, spec, _ in fields:
        if field is None:
            continue
        name = re.match(r"[^.\[]*", field).group(0)
        whole = name == field  # `{0.attr}` / `{x[0]}` format something else
        if name == "":
            value = positional[auto] if auto < len(positional) else None
            auto += 1
        elif name.isdigit():
            value = positional[int(name)] if int(name) < len(positional) else None
        else:
            value = keywords.get(name)
        if value is not None and whole and spec and "{" not in spec and spec[-1] in _NUMERIC:
            out.append((value, before))
    return out


def _percent(template: str, right: cst.BaseExpression) -> list[tuple[cst.BaseExpression, str]]:
    specs = [s for s in _PERCENT.finditer(template) if s.group("conv") != "%"]
    if any(s.group("key") for s in specs) or "*" in template:
        return []
    values = [e.value for e in right.elements] if isinstance(right, cst.Tuple) else [right]
    if len(values) != len(specs):
        return []
    out, last = [], 0
    for value, spec in zip(values, specs):
        if spec.group("conv") in "diouxXeEfFgG":
            out.append((value, template[last : spec.start()]))
        last = spec.end()
    return out


def metric_key(expr: cst.BaseExpression, before: str, stage: str) -> str | None:
    """The key a printed value is logged under: its variable's name (``self.test_loss`` ->
    ``val_loss`` in a validation hook), else the word printed right before it (``"loss
    {total / n:.4f}"`` -> ``val_loss``); None when neither names it."""
    if isinstance(expr, cst.Name):
        name = expr.value
    elif m.matches(expr, m.Attribute(value=m.Name("self"), attr=m.Name())):
        name = expr.attr.value
    else:
        label = re.search(r"([A-Za-z][A-Za-z0-9_]*)\s*[:=]?\s*$", before)
        if label is None:
            return None
        name = label.group(1).lower()
    name = name.strip("_")
    for prefix in _PREFIXES:
        if name.lower().startswith(prefix) and len(name) > len(prefix):
            name = name[len(prefix) :]
            break
    if not name or name.lower() in _COUNTERS:
        return None
    return f"{stage}_{name}"


def logged_keys(node: cst.CSTNode) -> set[str]:
    """The literal keys ``self.log("key", ...)`` calls in ``node`` log."""
    keys = set()
    pattern = m.Call(func=m.Attribute(value=m.Name("self"), attr=m.Name("log")))
    for call in m.findall(node, pattern):
        if call.args and isinstance(call.args[0].value, cst.SimpleString):
            value = call.args[0].value.evaluated_value
            if isinstance(value, str):
                keys.add(value)
    return keys


def log_printed_metrics(hook: cst.FunctionDef, stage: str, taken: set[str]):
    """(``hook`` with a ``self.log`` after each top-level print of numeric values, the keys
    logged). ``taken``: keys logged elsewhere, never logged twice."""
    body, added = [], []
    print_call = m.SimpleStatementLine(body=[m.Expr(value=m.Call(func=m.Name("print")))])
    for s in hook.body.body:
        body.append(s)
        if not m.matches(s, print_call):
            continue
        for expr, before in printed_numbers(s.body[0].value):
            key = metric_key(expr, before, stage) if pure(expr) else None
            if key is None or key in taken:
                continue
            taken.add(key)
            added.append(key)
            body.append(stmt(f'self.log("{key}", {code_of(expr)})\n'))
    if not added:
        return hook, []
    return hook.with_changes(body=hook.body.with_changes(body=body)), added
