"""Distributed boilerplate -> ``Trainer(strategy="ddp", devices=N)``.

What a hand-written DDP script does by itself, the Trainer does for it: it starts one process
per device (``mp.spawn`` / ``torchrun``), sets up and tears down the process group, wraps the
model in ``DistributedDataParallel``, gives each rank its share of the data through a
``DistributedSampler`` (and calls ``set_epoch``), and selects each rank's device. This pass
removes that code so the loop converter sees the single-process script, and says how the
Trainer must be configured (``DistInfo``):

* ``mp.spawn(fn, args=(...), nprocs=N)`` becomes ``fn(<local rank>, ...)``: the runtime (like
  Lightning) re-runs the script once per device, each process reading its rank from the
  environment the launcher sets, and ``devices=N``;
* under ``torchrun`` (no spawn): ``devices`` / ``num_nodes`` read from torchrun's environment;
* ``DataLoader(..., sampler=DistributedSampler(ds[, shuffle=s]))`` becomes
  ``DataLoader(..., shuffle=s)``; the Trainer injects the same sampler (same seed, padding and
  ``set_epoch``), so every rank sees the batches it saw before;
* ``DDP(model, ...)`` becomes ``model``, ``x.module`` becomes ``x`` (``nn.DataParallel`` is a
  single-process wrapper that computes what the bare model computes: it stays);
* ``dist.get_rank()`` / ``dist.get_world_size()`` read the launcher's environment.

Anything else from ``torch.distributed`` (collectives in user code, ``mp.Process``, custom
groups) is left alone and reported: never half-converted."""

from __future__ import annotations

import re
from dataclasses import dataclass

import libcst as cst

import scaffold.migrate.match as m
from scaffold.migrate import names
from scaffold.migrate import rules as R
from scaffold.migrate.findings import FIXED, MANUAL, CannotConvert, Finding
from scaffold.migrate.imports import add_import, drop_imported_names, used_outside_imports
from scaffold.migrate.names import qualified
from scaffold.migrate.syntax import (
    FunctionDepth,
    KeepBlocksValid,
    code_of,
    comment_holder,
    comments_of,
    removed,
)
from scaffold.migrate.walk import run_visitor

MARKER = re.compile(
    r"DistributedDataParallel|init_process_group|\bspawn\(|DistributedSampler|\bDDP\("
)

# what the calls resolve to (``names.qualified``), however the script imported them
_DDP_WRAPPERS = {
    "torch.nn.parallel.DistributedDataParallel",
    "torch.nn.parallel.distributed.DistributedDataParallel",
}
_SAMPLERS = {
    "torch.utils.data.DistributedSampler",
    "torch.utils.data.distributed.DistributedSampler",
}
_SPAWNS = {"torch.multiprocessing.spawn", "torch.multiprocessing.spawn.spawn"}
# nn.DataParallel is not listed: it runs in one process and splits each batch over the visible
# GPUs, computing what the bare model computes; the Trainer's DDP would give every process its
# own batches instead (other numbers). The wrapper stays, exactly as written.
_REMOVED_CALLS = {
    f"torch.distributed{module}.{name}"
    for module in ("", ".distributed_c10d")
    for name in ("init_process_group", "destroy_process_group", "barrier")
}
_ENV_KEYS = ("MASTER_ADDR", "MASTER_PORT", "WORLD_SIZE", "RANK", "LOCAL_RANK")
DEVICES_VAR = "TRAINER_DEVICES"


@dataclass
class DistInfo:
    devices: str
    num_nodes: str | None
    findings: list[Finding]
    # top-level functions that call collectives themselves (`dist.all_reduce` in a metric
    # helper): kept, and valid only where the Trainer's process group exists (its hooks)
    collective_helpers: tuple[str, ...] = ()


def uses_distributed(code: str) -> bool:
    return MARKER.search(code) is not None


def _tail(func) -> str:
    text = code_of(func)
    return text.rsplit(".", 1)[-1]


def _removable_call(small) -> str | None:
    """What a removable boilerplate statement is, or None."""
    if isinstance(small, cst.Expr) and isinstance(small.value, cst.Call):
        call = small.value
        func, resolved = code_of(call.func), qualified(call)
        if resolved in _REMOVED_CALLS:
            return f"`{func}()` removed: the Trainer manages the process group"
        if resolved == "torch.cuda.set_device":
            return "`torch.cuda.set_device()` removed: the Trainer selects each rank's device"
        if resolved == "os.environ.setdefault" and call.args:
            key = code_of(call.args[0].value).strip("'\"")
            if key in _ENV_KEYS:
                return f"`{key}` setting removed: the Trainer's launcher sets it"
    if isinstance(small, cst.Assign) and len(small.targets) == 1:
        target = small.targets[0].target
        if isinstance(target, cst.Subscript) and code_of(target.value) == "os.environ":
            key = code_of(target.slice[0].slice.value).strip("'\"")
            if key in _ENV_KEYS:
                return f"`os.environ[{key!r}]` removed: the Trainer's launcher sets it"
    return None


class _Strip(KeepBlocksValid):
    def __init__(self, position) -> None:
        self.position = position
        self.findings: list[Finding] = []
        self.wrapped: set[str] = set()
        self.samplers: list[cst.Call] = []
        self.spawns: list[tuple] = []  # (fn code, args codes, nprocs code)
        self.emptied: set[str] = set()  # functions left with no statements

    def note(self, node, message: str) -> None:
        pos = self.position(node)
        line, col = (pos.line, pos.column + 1) if pos is not None else (1, 1)
        self.findings.append(Finding(R.DISTRIBUTED_MAPPED, FIXED, message, line, col))

    # --- statements removed or rewritten
    def leave_SimpleStatementLine(self, original, updated):
        if len(updated.body) != 1:
            return updated
        small = updated.body[0]
        why = _removable_call(small)
        if why is not None:
            self.note(original, why)
            return removed(updated)
        if isinstance(small, cst.Assign) and len(small.targets) == 1:
            target, value = small.targets[0].target, small.value
            if isinstance(value, cst.Call) and qualified(value) in _DDP_WRAPPERS:
                if not value.args:
                    return updated
                inner = value.args[0].value
                self.wrapped.add(code_of(target))
                self.note(
                    original,
                    f"`{code_of(value.func)}(...)` wrapper removed: the Trainer wraps the model",
                )
                if code_of(inner) == code_of(target):
                    return removed(updated)
                return updated.with_changes(body=[small.with_changes(value=inner)])
        if isinstance(small, cst.Expr) and isinstance(small.value, cst.Call):
            call = small.value
            if qualified(call) in _SPAWNS:
                return self._spawn(original, updated, call)
        return updated

    def _spawn(self, original, updated, call: cst.Call):
        fn = call.args[0].value if call.args and call.args[0].keyword is None else None
        args_node = nprocs = None
        for a in call.args[1:]:
            key = a.keyword.value if a.keyword is not None else None
            if key == "args":
                args_node = a.value
            elif key == "nprocs":
                nprocs = a.value
            elif key not in ("join", "daemon", "start_method"):
                return updated
        if fn is None:
            return updated
        if args_node is not None and not isinstance(args_node, cst.Tuple):
            return updated
        elements = [code_of(e.value) for e in args_node.elements] if args_node is not None else []
        devices = code_of(nprocs) if nprocs is not None else "1"
        self.spawns.append((code_of(fn), elements, devices))
        rank = 'int(os.environ.get("LOCAL_RANK", 0))'
        new_call = cst.parse_expression(f"{code_of(fn)}({', '.join([rank, *elements])})")
        self.note(
            original,
            f"`{code_of(call.func)}(...)` replaced by a direct call: the Trainer starts one "
            "process per device (strategy='ddp') and each reads its rank from the environment",
        )
        return updated.with_changes(body=[updated.body[0].with_changes(value=new_call)])

    # --- expressions
    def leave_Call(self, original, updated):
        func = qualified(updated)
        if func == "torch.distributed.get_rank" and not updated.args:
            return cst.parse_expression('int(os.environ.get("RANK", 0))')
        if func == "torch.distributed.get_world_size" and not updated.args:
            return cst.parse_expression('int(os.environ.get("WORLD_SIZE", 1))')
        if qualified(updated) in _SAMPLERS:
            self.samplers.append(original)
        return updated

    def leave_Attribute(self, original, updated):
        if updated.attr.value == "module" and code_of(updated.value) in self.wrapped:
            return updated.value
        return updated

    # --- blocks that end up empty
    def leave_FunctionDef(self, original, updated):
        def real(body) -> list:
            return [
                s
                for s in body.body
                if not m.matches(s, m.SimpleStatementLine(body=[m.Expr(value=m.SimpleString())]))
                and not m.matches(s, m.SimpleStatementLine(body=[m.Pass()]))
            ]

        # emptied by the stripping (`ddp_setup`), not empty as written (`def print_pass(): pass`
        # is a value the script uses)
        blocks = isinstance(updated.body, cst.IndentedBlock) and isinstance(
            original.body, cst.IndentedBlock
        )
        if blocks and real(original.body) and not real(updated.body):
            self.emptied.add(updated.name.value)
        return updated


class _DropEmptied(KeepBlocksValid):
    """Functions left with nothing but a docstring (``ddp_setup``) and the statements calling
    them are removed; their comments stay."""

    def __init__(self, names: set[str]) -> None:
        self.names = names

    def leave_FunctionDef(self, original, updated):
        if updated.name.value in self.names:
            kept = comments_of(updated)
            for s in updated.body.body:
                kept += comments_of(s)
            return comment_holder(kept) if kept else cst.RemoveFromParent()
        return updated

    def leave_SimpleStatementLine(self, original, updated):
        if (
            len(updated.body) == 1
            and m.matches(updated.body[0], m.Expr(value=m.Call(func=m.Name())))
            and updated.body[0].value.func.value in self.names
        ):
            return removed(updated)
        return updated


_LEFTOVER = re.compile(
    r"\b(dist|torch\.distributed)\.(?!get_rank\b|get_world_size\b|is_available\b|is_initialized\b"
    r"|get_default_backend_for_device\b|is_torchelastic_launched\b|is_nccl_available\b"
    r"|is_gloo_available\b|Backend\b)"
    r"(\w+)|mp\.Process\(",
)


def strip_distributed(module: cst.Module) -> tuple[cst.Module, DistInfo]:
    from libcst.metadata import MetadataWrapper, PositionProvider

    wrapper = MetadataWrapper(module)
    positions = wrapper.resolve(PositionProvider)

    def position(node):
        return positions[node].start if node in positions else None

    with names.using(wrapper):
        return _strip(wrapper, position)


def _strip(wrapper, position) -> tuple[cst.Module, DistInfo]:
    slurm = re.search(r"SLURM_\w+", wrapper.module.code)
    if slurm is not None:
        line = wrapper.module.code.count("\n", 0, slurm.start()) + 1
        raise CannotConvert(
            Finding(
                R.SPAWN,
                MANUAL,
                f"the process group is laid out from SLURM variables (`{slurm.group(0)}`): "
                "a multi-node launch this tool cannot map exactly; convert by hand with "
                "Trainer(strategy='ddp', num_nodes=..., devices=...) (Lightning reads SLURM "
                "itself)",
                line,
                1,
            )
        )
    strip = _Strip(position)
    new = wrapper.module.visit(strip)
    if strip.emptied:
        new = new.visit(_DropEmptied(strip.emptied))
    new = _drop_unused_imports(new)
    helpers = _collective_helpers(new)
    text = new.with_changes(
        body=[
            st
            for st in new.body
            if not (isinstance(st, cst.FunctionDef) and st.name.value in helpers)
        ]
    ).code
    leftover = _LEFTOVER.search(text)
    if leftover is not None:
        line = text.count("\n", 0, leftover.start()) + 1
        raise CannotConvert(
            Finding(
                R.SPAWN,
                MANUAL,
                f"distributed code this tool does not map to the Trainer (`{leftover.group(0)}...`): "
                "remove it, or convert by hand with Trainer(strategy='ddp', devices=N)",
                line,
                1,
            )
        )
    num_nodes = None
    if len(strip.spawns) > 1:
        raise CannotConvert(Finding(R.SPAWN, MANUAL, "several spawn calls; not converted", 1, 1))
    if strip.spawns:
        worker = strip.spawns[0][0]
        direct = [
            c
            for c in m.findall(wrapper.module, m.Call(func=m.Name(worker)))
            if position(c) is not None
        ]
        if direct:
            raise CannotConvert(
                Finding(
                    R.SPAWN,
                    MANUAL,
                    f"`{worker}` is started by `mp.spawn` on one path and called directly on "
                    f"another (line {position(direct[0]).line}): one process or several depending "
                    "on the arguments, which one Trainer set-up cannot follow; convert by hand "
                    "(Trainer(strategy='ddp', devices=N) for the spawned path)",
                    position(direct[0]).line,
                    position(direct[0]).column + 1,
                )
            )
    if strip.spawns:
        _refuse_parent_randomness(wrapper.module, position)
        devices = strip.spawns[0][2]
        if not re.fullmatch(r"\d+", devices):
            new = _store_devices(new, devices)
            devices = DEVICES_VAR
    else:
        # launched by torchrun (or another launcher setting the environment)
        devices = 'int(os.environ.get("LOCAL_WORLD_SIZE", 1))'
        num_nodes = (
            'int(os.environ.get("WORLD_SIZE", 1)) // int(os.environ.get("LOCAL_WORLD_SIZE", 1))'
        )
    if "os.environ" in new.code:
        new = add_import(new, "import os\n")
    if strip.samplers:
        replicas = devices if strip.spawns else 'int(os.environ.get("WORLD_SIZE", 1))'
        new = new.visit(_ExplicitReplicas(replicas))
        pos = position(strip.samplers[0])
        strip.findings.append(
            Finding(
                R.DISTRIBUTED_MAPPED,
                FIXED,
                "DistributedSampler kept, told its rank and number of replicas (it is built "
                "before the Trainer starts the process group); "
                "Trainer(use_distributed_sampler=False)",
                pos.line if pos else 1,
                pos.column + 1 if pos else 1,
            )
        )
    return new, DistInfo(devices, num_nodes, strip.findings, tuple(sorted(helpers)))


class _ExplicitReplicas(cst.CSTTransformer):
    """``DistributedSampler(ds)`` -> ``DistributedSampler(ds, num_replicas=N, rank=<env>)``."""

    def __init__(self, replicas: str) -> None:
        self.replicas = replicas

    def leave_Call(self, original, updated):
        if qualified(updated) not in _SAMPLERS:
            return updated
        keys = {a.keyword.value for a in updated.args if a.keyword is not None}
        positional = sum(1 for a in updated.args if a.keyword is None)
        extra = []
        if "num_replicas" not in keys and positional < 2:
            extra.append(("num_replicas", self.replicas))
        if "rank" not in keys and positional < 3:
            extra.append(("rank", 'int(os.environ.get("RANK", 0))'))
        if not extra:
            return updated
        args = list(updated.args)
        if args and args[-1].comma is cst.MaybeSentinel.DEFAULT:
            args[-1] = args[-1].with_changes(
                comma=cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))
            )
        for i, (key, value) in enumerate(extra):
            args.append(
                cst.Arg(
                    keyword=cst.Name(key),
                    value=cst.parse_expression(value),
                    equal=cst.AssignEqual(
                        whitespace_before=cst.SimpleWhitespace(""),
                        whitespace_after=cst.SimpleWhitespace(""),
                    ),
                    comma=cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))
                    if i < len(extra) - 1
                    else cst.MaybeSentinel.DEFAULT,
                )
            )
        return updated.with_changes(args=args)


class _StoreDevices(FunctionDepth):
    """``TRAINER_DEVICES = <nprocs>`` before the call that replaced ``mp.spawn`` (a module-level
    name, so the Trainer built anywhere in the script can read it)."""

    def __init__(self, expr: str) -> None:
        self.expr = expr
        self.done = False

    def leave_SimpleStatementLine(self, original, updated):
        if self.done or "LOCAL_RANK" not in code_of(updated) or len(updated.body) != 1:
            return updated
        if not m.matches(updated.body[0], m.Expr(value=m.Call())):
            return updated
        self.done = True
        lines = []
        if self.depth:
            lines.append(cst.parse_statement(f"global {DEVICES_VAR}\n"))
        lines.append(
            cst.parse_statement(
                f"{DEVICES_VAR} = {self.expr}  # processes the Trainer starts (was spawn's nprocs)\n"
            )
        )
        lines[0] = lines[0].with_changes(leading_lines=updated.leading_lines)
        return cst.FlattenSentinel([*lines, updated.with_changes(leading_lines=[])])


def _store_devices(module: cst.Module, expr: str) -> cst.Module:
    return module.visit(_StoreDevices(expr))


_DIST_IMPORTS = {
    "DistributedDataParallel",
    "DDP",
    "init_process_group",
    "destroy_process_group",
    "mp",
    "dist",
}


def _drop_unused_imports(module: cst.Module) -> cst.Module:
    """Distributed imports nothing uses any more (``DDP``, ``DistributedSampler``, ``mp``...)."""
    return drop_imported_names(module, _DIST_IMPORTS - used_outside_imports(module))


# what seeds or draws from a random generator (by qualified name or its prefix)
_RANDOM_CALLS = (
    "torch.manual_seed",
    "torch.seed",
    "torch.random.",
    "torch.cuda.manual_seed",
    "torch.cuda.seed",
    "torch.rand",
    "torch.randn",
    "torch.randint",
    "torch.randperm",
    "torch.normal",
    "torch.bernoulli",
    "torch.multinomial",
    "numpy.random.",
    "random.",
    "lightning.seed_everything",
    "lightning.pytorch.seed_everything",
    "pytorch_lightning.seed_everything",
    "runtime.seed_everything",
)


def _spawn_site(module: cst.Module):
    """(the statement calling ``mp.spawn``, what its process ran before it in its own block and
    the blocks around it), or None."""
    from scaffold.migrate.locate import _bodies, around_block

    for body in _bodies(module):
        for k, st in enumerate(body):
            if isinstance(st, cst.SimpleStatementLine) and any(
                qualified(c) in _SPAWNS for c in m.findall(st, m.Call())
            ):
                return st, [*around_block(module, body)[0], *body[:k]]
    return None


def _random_call(stmts, functions: dict, depth: int = 0) -> str | None:
    """The first call in ``stmts`` that seeds or draws from a random generator, looking two
    levels into the module's own functions they call."""
    for st in stmts:
        for call in m.findall(st, m.Call()):
            name = qualified(call) or ""
            if any(name == r or (r.endswith(".") and name.startswith(r)) for r in _RANDOM_CALLS):
                return code_of(call)
            fn = functions.get(call.func.value) if isinstance(call.func, cst.Name) else None
            if fn is not None and depth < 2 and isinstance(fn.body, cst.IndentedBlock):
                inner = _random_call(list(fn.body.body), functions, depth + 1)
                if inner is not None:
                    return f"{code_of(call)} -> {inner}"
    return None


def _refuse_parent_randomness(module: cst.Module, position) -> None:
    """``mp.spawn``'s workers start from a fresh process: what the launching process ran
    before the spawn (``torch.manual_seed(123)`` in ``if __name__ == "__main__":``) never
    reaches them. The Trainer's processes run that code themselves, so a seed or a random draw
    there would change every worker's random numbers."""
    from scaffold.migrate.locate import _index

    site = _spawn_site(module)
    if site is None:
        return
    spawn, ahead = site
    # statements at module level outside any block run in the spawned workers too (they
    # import the script): only what the launching process alone ran counts
    top = set(map(id, module.body))
    alone = [st for st in ahead if id(st) not in top or _guarded(st)]
    functions: dict = {}
    for fn in _index(module).functions:
        functions.setdefault(fn.name.value, fn)
    found = _random_call(alone, functions)
    if found is None:
        return
    where = position(spawn)
    raise CannotConvert(
        Finding(
            R.SPAWN,
            MANUAL,
            f"`{found}` runs in the process that calls mp.spawn, before it: the spawned workers "
            "never inherit its random state, but the Trainer's processes would all run it, so "
            "every worker's random numbers would change. Move it into the worker function (it "
            "then runs in each worker, as after migration), or convert by hand",
            where.line if where else 1,
            where.column + 1 if where else 1,
        )
    )


def _guarded(st) -> bool:
    """``if __name__ == "__main__":`` (its body runs in the launching process only)."""
    return isinstance(st, cst.If) and "__name__" in code_of(st.test)


# collectives a metric helper may call: they run on the Trainer's process group, on every rank,
# in the order the ranks reach them, as in the script
_COLLECTIVES = frozenset(
    {
        "all_reduce",
        "all_gather",
        "all_gather_object",
        "broadcast",
        "broadcast_object_list",
        "reduce",
        "barrier",
        "ReduceOp",
    }
)


def _collective_helpers(module: cst.Module) -> set[str]:
    """Top-level functions whose only distributed calls are collectives (``reduce_mean``:
    ``dist.all_reduce(rt, op=dist.ReduceOp.SUM)``); the engine checks, once the loop is
    converted, that they are called from the LightningModule's hooks only."""
    found = set()
    for st in module.body:
        if not isinstance(st, cst.FunctionDef):
            continue
        text = code_of(st)
        if ".backward(" in text:
            continue  # the training function itself: its collectives are not a helper's
        hits = [h.group(2) for h in _LEFTOVER.finditer(text)]
        if hits and all(h in _COLLECTIVES for h in hits):
            found.add(st.name.value)
    return found


class _CallsOutsideHooks(cst.CSTVisitor):
    """Calls of ``names`` outside a LightningModule class body."""

    def __init__(self, names: set[str]) -> None:
        self.names = names
        self.depth = 0
        self.outside: list[cst.Call] = []

    def visit_ClassDef(self, node: cst.ClassDef) -> None:
        if any(code_of(b.value).endswith("LightningModule") for b in node.bases):
            self.depth += 1

    def leave_ClassDef(self, node: cst.ClassDef) -> None:
        if any(code_of(b.value).endswith("LightningModule") for b in node.bases):
            self.depth -= 1

    def visit_Call(self, node: cst.Call) -> None:
        if not self.depth and isinstance(node.func, cst.Name) and node.func.value in self.names:
            self.outside.append(node)


def collectives_outside_hooks(module: cst.Module, helpers: tuple[str, ...]) -> str | None:
    """The first helper (calling a collective, directly or through another top-level function)
    that converted code still calls outside the LightningModule's hooks, where no process group
    exists any more (the Trainer starts it); None when every call is inside the hooks."""
    reach = set(helpers)
    defs = {st.name.value: st for st in module.body if isinstance(st, cst.FunctionDef)}
    changed = True
    while changed:  # a function that calls such a helper outside a LightningModule is one too
        changed = False
        for name, fn in defs.items():
            if name in reach:
                continue
            visitor = _CallsOutsideHooks(reach)
            run_visitor(fn, visitor)
            if visitor.outside:
                reach.add(name)
                changed = True
    outside = _CallsOutsideHooks(reach)
    for st in module.body:
        if isinstance(st, cst.FunctionDef) and st.name.value in reach:
            continue
        run_visitor(st, outside)
    return code_of(outside.outside[0].func) if outside.outside else None
