"""Early-stopping counters -> ``EarlyStopping``.

The shape real scripts use, at the end of the epoch loop::

    if val_loss < best:            # or `>` for a metric to maximise
        best = val_loss
        bad_epochs = 0
        ...                        # e.g. save the best weights: kept
    else:
        bad_epochs += 1
        if bad_epochs >= patience:  # (or the check after the if/else)
            break

is what ``EarlyStopping(monitor="val_loss", mode="min", patience=patience)`` does: it counts the
epochs without a strict improvement on the best value seen so far (starting from +-inf), resets
on improvement and stops once the count reaches ``patience``. Only that exact shape is mapped
(``metric < best - delta`` gives ``min_delta``; ``check_finite=False`` since the script had no
such check; the check run at
the end of each training epoch, after the module logged the metric); anything else keeps the
counter as written (it still stops the Trainer, exactly)."""

from __future__ import annotations

from dataclasses import dataclass

import libcst as cst

import scaffold.migrate.match as m
from scaffold.migrate.syntax import (
    _assigned,
    _used,
    code_of,
    comments_of,
    last_assigned_value,
    stmt,
)

_INF = {'float("inf")', "float('inf')", "math.inf", "np.inf", "numpy.inf", "torch.inf"}
_NEG_INF = {'-float("inf")', "-float('inf')", 'float("-inf")', "float('-inf')", "-math.inf"}


@dataclass
class EarlyStopPlan:
    post: list  # the epoch's statements without the counter
    callback: str  # EarlyStopping(...) source
    metric: str
    counter: str


def _initial(before: list, name: str) -> str | None:
    value = last_assigned_value(before, name)
    return None if value is None else code_of(value)


def _only_break(block) -> bool:
    return (
        isinstance(block, cst.IndentedBlock)
        and len(block.body) == 1
        and m.matches(block.body[0], m.SimpleStatementLine(body=[m.Break()]))
    )


def _stop_check(node, counter: str) -> str | None:
    """``if counter >= P: break`` -> patience code, else None."""
    if not isinstance(node, cst.If) or node.orelse is not None or not _only_break(node.body):
        return None
    test = node.test
    if not (
        isinstance(test, cst.Comparison)
        and len(test.comparisons) == 1
        and m.matches(test.left, m.Name(counter))
    ):
        return None
    op = test.comparisons[0].operator
    bound = code_of(test.comparisons[0].comparator)
    if isinstance(op, (cst.GreaterThanEqual, cst.Equal)):
        return bound
    if isinstance(op, cst.GreaterThan):
        return f"{bound} + 1"
    return None


def plan_early_stopping(
    epoch_post: list, before: list, after: list, varying: frozenset[str] = frozenset()
) -> EarlyStopPlan | None:
    """``before``: statements before the loop (initial values); ``after``: statements after it."""
    if not epoch_post:
        return None
    last = epoch_post[-1]
    stop_after = None
    if len(epoch_post) >= 2 and isinstance(epoch_post[-2], cst.If):
        stop_after, last = epoch_post[-1], epoch_post[-2]
    if not isinstance(last, cst.If) or not isinstance(last.orelse, cst.Else):
        return None
    test = last.test
    if not (isinstance(test, cst.Comparison) and len(test.comparisons) == 1):
        return None
    op = test.comparisons[0].operator
    if not isinstance(op, (cst.LessThan, cst.GreaterThan)):
        return None
    metric, best = test.left, test.comparisons[0].comparator
    mode = "min" if isinstance(op, cst.LessThan) else "max"
    # `metric < best - delta` / `metric > best + delta`: EarlyStopping's min_delta
    min_delta = None
    if isinstance(best, cst.BinaryOperation) and isinstance(
        best.operator, cst.Subtract if mode == "min" else cst.Add
    ):
        delta = best.right
        if not isinstance(delta, (cst.Float, cst.Integer, cst.Name)):
            return None
        best, min_delta = best.left, code_of(delta)
    if not (isinstance(metric, cst.Name) and isinstance(best, cst.Name)):
        return None
    improve = list(last.body.body)
    # the improvement branch: best = metric; counter = 0 (any order, other statements kept)
    counter = None
    kept = []
    saw_best = False
    for s in improve:
        # `best, counter = metric, 0` -> the same two assignments
        if (
            m.matches(s, m.SimpleStatementLine(body=[m.Assign()]))
            and len(s.body[0].targets) == 1
            and isinstance(s.body[0].targets[0].target, cst.Tuple)
            and isinstance(s.body[0].value, cst.Tuple)
            and len(s.body[0].targets[0].target.elements) == 2 == len(s.body[0].value.elements)
            and not comments_of(s)
        ):
            pairs = zip(
                [e.value for e in s.body[0].targets[0].target.elements],
                [e.value for e in s.body[0].value.elements],
                strict=True,
            )
            split = [
                cst.SimpleStatementLine(body=[cst.Assign([cst.AssignTarget(t)], v)])
                for t, v in pairs
            ]
            improve_split = split
        else:
            improve_split = [s]
        for s in improve_split:
            if not (
                m.matches(s, m.SimpleStatementLine(body=[m.Assign()]))
                and len(s.body[0].targets) == 1
            ):
                kept.append(s)
                continue
            target, value = s.body[0].targets[0].target, s.body[0].value
            if m.matches(target, m.Name(best.value)) and m.matches(value, m.Name(metric.value)):
                saw_best = True
                kept.append(s)
                continue
            if (
                isinstance(target, cst.Name)
                and m.matches(value, m.Integer("0"))
                and counter is None
            ):
                counter = target.value
                if comments_of(s):
                    return None
                continue
            kept.append(s)
    if not saw_best or counter is None:
        return None
    other = list(last.orelse.body.body)
    if not other or not m.matches(
        other[0],
        m.SimpleStatementLine(
            body=[m.AugAssign(target=m.Name(counter), operator=m.AddAssign(), value=m.Integer("1"))]
        ),
    ):
        return None
    if stop_after is not None:
        if len(other) != 1:
            return None
        patience = _stop_check(stop_after, counter)
    else:
        if len(other) != 2:
            return None
        patience = _stop_check(other[1], counter)
    if patience is None or comments_of(other[0]) or last.orelse.leading_lines:
        return None
    if stop_after is not None and comments_of(stop_after):
        return None
    # initial values: counter 0, best +-inf; the counter is used nowhere else
    if _initial(before, counter) != "0":
        return None
    start = _initial(before, best.value)
    if start is None or start not in (_INF if mode == "min" else _NEG_INF):
        return None
    rest = epoch_post[: epoch_post.index(last)]
    if counter in _used([*rest, *kept, *after]) or counter in _assigned(rest):
        return None
    if not all(c.isidentifier() or c in ".+ " for c in patience):
        return None
    # EarlyStopping reads patience and min_delta once: values the loop changes stay a counter
    read = _used([cst.parse_expression(patience)])
    if min_delta is not None:
        read |= _used([cst.parse_expression(min_delta)])
    if read & varying:
        return None
    log = stmt(f'self.log("{metric.value}", {metric.value})\n')
    if kept:
        new_if = last.with_changes(body=last.body.with_changes(body=kept), orelse=None)
        post = [*rest, new_if, log]
    else:
        post = [*rest, log.with_changes(leading_lines=last.leading_lines)]
    delta = f"min_delta={min_delta}, " if min_delta is not None else ""
    callback = (
        f'L.pytorch.callbacks.EarlyStopping(monitor="{metric.value}", mode="{mode}", '
        f"patience={patience}, {delta}check_finite=False, check_on_train_epoch_end=True)"
    )
    return EarlyStopPlan(post, callback, metric.value, counter)
