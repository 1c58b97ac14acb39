"""Where a function the script calls is defined: the script itself, or a module beside it.

``optimizer = set_optimizer(opt, model)`` (SupContrast's ``util.py``), ``build_optimizer(cfg,
net)``: to tell which model an optimizer trains, the analysis reads the helper that builds it.
A helper defined at the top level of the script is found in the script; one imported with
``from util import set_optimizer`` (or ``import util`` and ``util.set_optimizer``) is read from
``util.py`` next to the script, where ``python train.py`` imports it from (the script's folder
is the first entry of ``sys.path``). Nothing is imported or run: the file is parsed.

``migrate_source`` learns the script's folder from ``files`` (``origin``); a text migrated on
its own (no folder) finds helpers in the text only.
"""

from __future__ import annotations

import contextlib
from contextvars import ContextVar
from pathlib import Path

import libcst as cst

from scaffold.migrate.memo import by_identity
from scaffold.migrate.names import qualified
from scaffold.migrate.walk import run_visitor

_origin: ContextVar[Path | None] = ContextVar("scaffold_migrate_origin", default=None)
_origin_file: ContextVar[Path | None] = ContextVar("scaffold_migrate_origin_file", default=None)
_module: ContextVar[cst.Module | None] = ContextVar("scaffold_migrate_module", default=None)
_parsed: dict[Path, tuple[tuple[int, int], cst.Module | None]] = {}


@contextlib.contextmanager
def beside(origin: Path | None):
    """Helpers imported from modules are looked for in ``origin``'s folder (the script's)."""
    token = _origin.set(origin.parent if origin is not None else None)
    file_token = _origin_file.set(origin)
    try:
        yield
    finally:
        _origin_file.reset(file_token)
        _origin.reset(token)


@contextlib.contextmanager
def within(module: cst.Module):
    """Top-level helpers are looked for in ``module`` (the script as the passes left it)."""
    token = _module.set(module)
    try:
        yield
    finally:
        _module.reset(token)


def script_folder() -> Path | None:
    """The folder of the file being migrated (None for a text migrated on its own)."""
    return _origin.get()


def current_module() -> cst.Module | None:
    """The script being converted (inside ``within``)."""
    return _module.get()


def _top_level_def(module: cst.Module, name: str) -> cst.FunctionDef | None:
    from scaffold.migrate.dataflow import written

    found = [s for s in module.body if isinstance(s, cst.FunctionDef) and s.name.value == name]
    # defined twice, or rebound too (`accuracy = partial(accuracy, ...)`, an import of the same
    # name): which one a call runs is not known from the text
    if len(found) != 1:
        return None
    if any(name in written([s]) for s in module.body if s is not found[0]):
        return None
    return found[0]


@by_identity(maxsize=8)
def _path_literals(module: cst.Module) -> tuple[str, ...]:
    """The literal folders the script adds to ``sys.path`` (``sys.path.append("..")``), read
    once per module (helper lookups ask for them on every call they follow)."""
    import scaffold.migrate.match as mt

    found: list[str] = []
    pattern = mt.Call(func=mt.Attribute(attr=mt.Name("append") | mt.Name("insert")))
    for call in mt.findall(module, pattern):
        if cst.Module(body=[]).code_for_node(call.func.value) != "sys.path" or not call.args:
            continue
        arg = call.args[-1].value
        if isinstance(arg, cst.SimpleString) and arg.prefix == "":
            found.append(arg.evaluated_value)
    return tuple(dict.fromkeys(found))


def _path_folders(module: cst.Module | None) -> list[Path]:
    """Folders the script puts on ``sys.path`` itself with a literal (SAM's example), taken
    relative to the script's folder (where it is run from)."""
    folder = _origin.get()
    if folder is None or module is None:
        return []
    found = [(folder / literal).resolve() for literal in _path_literals(module)]
    return [f for i, f in enumerate(found) if f.is_dir() and f not in found[:i]]


def _sibling(dotted_module: str, module: cst.Module | None = None) -> cst.Module | None:
    folder = _origin.get()
    if folder is None or not all(p.isidentifier() for p in dotted_module.split(".")):
        return None
    parts = dotted_module.split(".")
    folders = [folder, *_path_folders(module if module is not None else _module.get())]
    candidates = [
        path
        for base in folders
        for path in (base.joinpath(*parts).with_suffix(".py"), base.joinpath(*parts, "__init__.py"))
    ]
    for path in candidates:
        if path.is_file():
            return _parse_file(path)
    return None


def _parse_file(path: Path, text: str | None = None) -> cst.Module | None:
    """``path`` parsed (cached while the file is unchanged; ``text``: its content, when the
    caller read it already); None when it cannot be read or parsed."""
    try:
        info = path.stat()
        stamp = (info.st_mtime_ns, info.st_size)
        cached = _parsed.get(path)
        if cached is None or cached[0] != stamp:
            try:
                tree = cst.parse_module(text if text is not None else path.read_text("utf-8"))
            except (cst.ParserSyntaxError, UnicodeDecodeError, RecursionError):
                tree = None
            _parsed[path] = cached = (stamp, tree)
        return cached[1]
    except OSError:
        return None


_MAX_NEIGHBOURS = 200  # modules read when looking for a function's callers beside the script


def callers_beside(fn_name: str) -> list[tuple[cst.Module, list[tuple]]] | None:
    """The calls other modules in the script's folder make of the script's top-level function
    ``fn_name``, as ``(their module, statement calls)`` (``locate.statement_calls``' shape):
    ``import engine`` then ``engine.train(...)``, or ``from engine import train`` then
    ``train(...)``, in a module that ``python other.py`` runs from the same folder (``engine``
    being the script ``engine.py``). The modules are parsed, never imported or run.

    ``[]`` when no module beside it calls the function (or the text came without a file);
    None when one does in a way that cannot be followed (a call that is not a statement of its
    own, the imported name rebound), so what it passes cannot be read."""
    import scaffold.migrate.match as mt
    from scaffold.migrate.locate import statement_calls_matching
    from scaffold.migrate.names import import_table, rebound_names

    script = _origin_file.get()
    if script is None or not script.stem.isidentifier():
        return []
    stem = script.stem
    found: list[tuple[cst.Module, list[tuple]]] = []
    try:
        paths = sorted(script.parent.glob("*.py"))[:_MAX_NEIGHBOURS]
    except OSError:
        return []
    for path in paths:
        if path.name == script.name:
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        if stem not in text or fn_name not in text:
            continue
        other = _parse_file(path, text)
        if other is None:
            continue
        table = import_table(other)
        functions = [k for k, v in table.items() if v == f"{stem}.{fn_name}"]
        modules = [k for k, v in table.items() if v == stem]
        if not functions and not modules:
            continue
        if set(functions + modules) & rebound_names(other):
            return None  # the imported name is bound to something else too
        callee = mt.OneOf(
            *(mt.Name(f) for f in functions),
            *(mt.Attribute(value=mt.Name(a), attr=mt.Name(fn_name)) for a in modules),
        )
        count = len(mt.findall(other, mt.Call(func=callee)))
        if not count:
            continue
        sites = statement_calls_matching(other, mt.Call(func=callee), count)
        if sites is None:
            return None
        found.append((other, sites))
    return found


def definition(call: cst.Call) -> cst.FunctionDef | None:
    """The ``def`` that ``call`` runs: a top-level function of the script, or of a module file
    beside it that the script imports it from; None when neither is known for certain."""
    found = located(call)
    return found[0] if found is not None else None


def located(call: cst.Call) -> tuple[cst.FunctionDef, cst.Module] | None:
    """``definition``, with the module that holds it (the script, or the module beside it)."""
    module = _module.get()
    if module is None:
        return None
    if isinstance(call.func, cst.Name):
        local = _top_level_def(module, call.func.value)
        if local is not None:
            return local, module
    full = qualified(call)
    if full is None or "." not in full:
        return None
    owner, _, name = full.rpartition(".")
    if owner in ("torch", "numpy", "builtins") or owner.startswith(("torch.", "numpy.")):
        return None
    sibling = _sibling(owner)
    fn = _top_level_def(sibling, name) if sibling is not None else None
    return (fn, sibling) if fn is not None else None


def methods_named(name: str, classes: set[str]) -> list[cst.FunctionDef] | None:
    """Method ``name`` of each of ``classes`` (defined in the script or imported from a module
    beside it, ``from model import GPT``); None when one of them is not found there."""
    visible = _visible_classes()
    if not classes or not classes <= set(visible):
        return None
    found = []
    for cls_name in sorted(classes):
        cls = visible[cls_name]
        body = cls.body.body if isinstance(cls.body, cst.IndentedBlock) else []
        found += [f for f in body if isinstance(f, cst.FunctionDef) and f.name.value == name]
    return found


def visible_class(name: str) -> cst.ClassDef | None:
    """The class ``name`` defined in the script or imported from a module beside it."""
    return _visible_classes().get(name)


def _visible_classes() -> dict[str, cst.ClassDef]:
    module = _module.get()
    if module is None:
        return {}
    classes = [s for s in module.body if isinstance(s, cst.ClassDef)]
    for statement in module.body:
        small = statement.body if isinstance(statement, cst.SimpleStatementLine) else []
        for item in small:
            if not isinstance(item, cst.ImportFrom) or item.relative or item.module is None:
                continue
            if isinstance(item.names, cst.ImportStar):
                continue
            sibling = _sibling(cst.Module(body=[]).code_for_node(item.module))
            if sibling is None:
                continue
            wanted = {a.name.value for a in item.names if isinstance(a.name, cst.Name)}
            classes += [
                c for c in sibling.body if isinstance(c, cst.ClassDef) and c.name.value in wanted
            ]
    return {c.name.value: c for c in classes}


_RETURN_THE_MODULE = {"to", "cuda", "cpu", "float", "double", "half", "bfloat16", "train", "eval"}


def classes_bound_to(name: str) -> set[str] | None:
    """The classes whose instances the script binds to ``name`` (``model = GPT(conf)``,
    ``model = GPT.from_pretrained(...)``), anywhere in the script; wrapping the same object
    (``model = torch.compile(model)``, ``DDP(model)``, ``model.to(dev)``) keeps it. None when
    some binding is anything else (a factory, a parameter), which leaves the class unknown."""
    module = _module.get()
    if module is None:
        return None
    import scaffold.migrate.match as mt

    found: set[str] = set()
    for node in mt.findall(module, mt.Assign()):
        if not any(mt.matches(t.target, mt.Name(name)) for t in node.targets):
            continue
        value = node.value
        # `Net().to(device)`, `Net().cuda()`: nn.Module's placement methods return the module
        while (
            isinstance(value, cst.Call)
            and isinstance(value.func, cst.Attribute)
            and value.func.attr.value in _RETURN_THE_MODULE
            and isinstance(value.func.value, cst.Call)
        ):
            value = value.func.value
        if not isinstance(value, cst.Call):
            return None
        func = value.func
        if isinstance(func, cst.Name) and func.value[:1].isupper():
            found.add(func.value)
        elif (
            isinstance(func, cst.Attribute)
            and isinstance(func.value, cst.Name)
            and func.value.value[:1].isupper()
            and func.attr.value.startswith("from_")
        ):
            found.add(func.value.value)
        elif not (
            (value.args and mt.matches(value.args[0].value, mt.Name(name)))
            or (isinstance(func, cst.Attribute) and mt.matches(func.value, mt.Name(name)))
        ):
            return None
    return found or None


_OPTIMIZER_BASES = {"Optimizer", "optim.Optimizer", "torch.optim.Optimizer"}


def optimizer_subclass_instance(module: cst.Module, name: str) -> str | None:
    """The class of ``name`` when the script binds it once, to a call of a class that
    subclasses ``torch.optim.Optimizer`` directly (SAM: ``optimizer = SAM(model.parameters(),
    base, ...)``), defined in the script or imported from a module beside it (or in a folder
    the script adds to ``sys.path``); None otherwise."""
    import scaffold.migrate.match as mt

    target = mt.Assign(targets=[mt.AssignTarget(target=mt.Name(name))])
    bindings = mt.findall(module, target)
    if len(bindings) != 1:
        return None
    value = bindings[0].value
    if not (isinstance(value, cst.Call) and isinstance(value.func, cst.Name)):
        return None
    cls_name = value.func.value
    classes = [s for s in module.body if isinstance(s, cst.ClassDef) and s.name.value == cls_name]
    for statement in module.body:
        for item in statement.body if isinstance(statement, cst.SimpleStatementLine) else []:
            if not isinstance(item, cst.ImportFrom) or item.relative or item.module is None:
                continue
            if isinstance(item.names, cst.ImportStar) or not any(
                isinstance(a.name, cst.Name) and a.name.value == cls_name and a.asname is None
                for a in item.names
            ):
                continue
            sibling = _sibling(cst.Module(body=[]).code_for_node(item.module), module)
            if sibling is not None:
                classes += [
                    c
                    for c in sibling.body
                    if isinstance(c, cst.ClassDef) and c.name.value == cls_name
                ]
    if len(classes) != 1:
        return None
    bases = {cst.Module(body=[]).code_for_node(b.value) for b in classes[0].bases}
    return cls_name if bases & _OPTIMIZER_BASES else None


def reads_no_globals(fn: cst.FunctionDef, module: cst.Module, depth: int = 0) -> bool:
    """Whether ``fn`` reads nothing of its module's state: its free names are the module's
    imports, builtins, or functions of the module that read none either (so a call with
    arguments that are not the model, its parameters or an optimizer cannot touch them)."""
    import builtins

    from scaffold.migrate.dataflow import declared_global, incoming, written
    from scaffold.migrate.names import import_table

    if depth > 3 or not isinstance(fn.body, cst.IndentedBlock):
        return False
    if declared_global(list(fn.body.body), (cst.Global, cst.Nonlocal)):
        return False
    imported = import_table(module)
    own = written(list(module.body))
    for name in incoming([fn]) - {fn.name.value}:
        if name in imported or (hasattr(builtins, name) and name not in own):
            continue
        other = _top_level_def(module, name)
        if other is None or not reads_no_globals(other, module, depth + 1):
            return False
    return True


class _Returns(cst.CSTVisitor):
    def __init__(self) -> None:
        self.count = 0

    def visit_FunctionDef(self, node) -> bool:
        return False

    visit_ClassDef = visit_FunctionDef
    visit_Lambda = visit_FunctionDef

    def visit_Return(self, node) -> None:
        self.count += 1


def own_returns(fn: cst.FunctionDef) -> int:
    """How many ``return`` statements ``fn`` itself holds (not its nested functions')."""
    counter = _Returns()
    run_visitor(fn.body, counter)
    return counter.count
