"""migrate on files: find the scripts, migrate each, write atomically (keeping ``.orig``), or
show a diff, or check; collect a report. Returns data; the CLI prints it."""

from __future__ import annotations

import difflib
import json
import os
import stat
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from scaffold.errors import ScaffoldError, UsageError
from scaffold.migrate import rules as R
from scaffold.migrate.engine import (
    MIGRATED,
    NOT_CONVERTED,
    OUT_OF_SCOPE,
    SYNTAX_ERROR,
    SourceResult,
    migrate_source,
)

FILE_ERROR = "file-error"  # the file could not be read or written (SCF800)

SKIP_DIRS = {".git", ".venv", "venv", "__pycache__", "build", "dist", "node_modules", ".tox"}


@dataclass(frozen=True)
class MigrateOptions:
    paths: tuple[Path, ...]
    output: Path | None = None
    diff: bool = False
    check: bool = False
    engine: str = "runtime"
    report: Path | None = None
    verify_steps: int = 0  # > 0: run both versions for this many optimizer steps and compare
    verify_args: tuple[str, ...] = ()  # command-line arguments for both runs
    tooling: bool = True  # the generated Trainer keeps its logger and checkpointing


@dataclass
class FileOutcome:
    path: Path
    result: SourceResult
    written: Path | None = None
    backup: Path | None = None
    diff: str = ""


@dataclass
class MigrateRun:
    outcomes: list[FileOutcome] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        statuses = {o.result.status for o in self.outcomes}
        if statuses & {SYNTAX_ERROR, FILE_ERROR}:
            return 1
        if statuses & {NOT_CONVERTED, OUT_OF_SCOPE}:
            return 3
        return 0

    def summary(self) -> dict:
        counts: dict[str, int] = {}
        for o in self.outcomes:
            counts[o.result.status] = counts.get(o.result.status, 0) + 1
        return {"files": len(self.outcomes), **counts}


def collect(paths: tuple[Path, ...]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            for root, dirs, names in os.walk(path):
                dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and not d.startswith("."))
                files += [Path(root) / n for n in sorted(names) if n.endswith(".py")]
        elif path.is_file():
            files.append(path)
        else:
            raise ScaffoldError(
                f"{path} does not exist.", "pass a Python file or a folder of them."
            )
    return files


class FileProblem(Exception):
    """One file cannot be read or written; the run reports it and goes on with the others."""


def _umask_mode() -> int:
    """The mode a new file gets (``0o666`` less the umask), as ``open()`` would create it."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return  # not every platform opens folders
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _temp_copy(path: Path, data: bytes, mode: int) -> str:
    """``data`` in a new temporary file beside ``path``, flushed to disk, with ``mode``."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return tmp


def atomic_write(path: Path, text: str, mode: int | None = None) -> None:
    """Replaces ``path`` by ``text`` in one rename, on disk before it returns. The file keeps
    its mode (a new one gets the umask's); a symbolic link stays a link (its target is
    rewritten)."""
    real = Path(os.path.realpath(path))
    if mode is None:
        mode = real.stat().st_mode & 0o7777 if real.exists() else _umask_mode()
    tmp = _temp_copy(real, text.encode("utf-8"), mode)
    try:
        os.replace(tmp, real)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(real.parent)


def _check_destination(path: Path, what: str) -> None:
    """``-o`` / ``--report``: a file path in an existing folder (checked before any work)."""
    if path.is_dir():
        raise UsageError(
            f"{what} {path} is a folder.", f"give a file path, e.g. {path / 'train_migrated.py'}."
        )
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise UsageError(
            f"{what} {path}: the folder {parent} does not exist.",
            f"create it first (mkdir -p {parent}) or choose another path.",
        )


def run(opts: MigrateOptions) -> MigrateRun:
    if opts.engine not in ("runtime", "lightning"):
        raise UsageError(f"--engine must be 'runtime' or 'lightning', got {opts.engine!r}.")
    files = collect(opts.paths)
    if opts.output is not None and (len(files) != 1 or opts.paths[0].is_dir()):
        raise UsageError("-o/--output takes a single input file.", "migrate folders in place.")
    if opts.output is not None and not (opts.diff or opts.check):
        _check_destination(opts.output, "-o/--output")
    if opts.report is not None:
        _check_destination(opts.report, "--report")
    outcome_run = MigrateRun()
    for path in files:
        outcome = _migrate_one(path, opts)
        outcome_run.outcomes.append(outcome)
    if opts.report is not None:
        try:
            write_report(outcome_run, opts.report)
        except OSError as err:
            raise ScaffoldError(
                f"cannot write the report {opts.report}: {err.strerror or err}.",
                "choose a writable path for --report.",
            ) from None
    return outcome_run


def _file_error(path: Path, message: str, code: str = "") -> FileOutcome:
    from scaffold.migrate.findings import MANUAL, Finding

    return FileOutcome(
        path, SourceResult(FILE_ERROR, code, [Finding(R.FILE_ERROR, MANUAL, message)])
    )


def _read(path: Path) -> tuple[str, str]:
    """(the text with ``\n`` line ends, the line end the file uses: ``\r\n`` when every line
    ends so, which the migrated file keeps)."""
    if path.is_symlink() and not path.exists():
        raise FileProblem(f"{path} is a broken symbolic link (to {os.readlink(path)}); skipped.")
    try:
        raw = path.read_bytes()
        text = raw.decode("utf-8")
        crlf = b"\r\n" in raw and raw.count(b"\r\n") == raw.count(b"\n")
        return text.replace("\r\n", "\n").replace("\r", "\n"), "\r\n" if crlf else "\n"
    except UnicodeDecodeError as err:
        raise FileProblem(
            f"{path} is not UTF-8 text (byte {err.start}: {err.reason}); skipped. Re-encode it "
            "as UTF-8 (PEP 3120) to migrate it."
        ) from None
    except OSError as err:
        raise FileProblem(f"cannot read {path}: {err.strerror or err}; skipped.") from None


def _migrate_one(path: Path, opts: MigrateOptions) -> FileOutcome:
    try:
        code, newline = _read(path)
    except FileProblem as err:
        return _file_error(path, str(err))
    result = migrate_source(code, opts.engine, opts.tooling, origin=path)
    outcome = FileOutcome(path, result)
    if result.status != MIGRATED:
        return outcome
    if newline != "\n":  # a Windows file stays one: only the migrated lines differ
        code = code.replace("\n", newline)
        result.code = result.code.replace("\n", newline)
    if opts.verify_steps > 0:
        _verify(outcome, opts.verify_steps, opts.verify_args)
        if outcome.result.status != MIGRATED:
            return outcome
    if opts.diff:
        outcome.diff = "".join(
            difflib.unified_diff(
                code.splitlines(keepends=True),
                result.code.splitlines(keepends=True),
                f"{path}",
                f"{path} (migrated)",
            )
        )
    if opts.diff or opts.check:
        return outcome
    try:
        _write(outcome, code, opts)
    except FileProblem as err:
        return _file_error(path, str(err), code)
    return outcome


def _verify(outcome: FileOutcome, steps: int, args: tuple[str, ...] = ()) -> None:
    from scaffold.migrate.findings import FIXED, MANUAL, Finding
    from scaffold.migrate.verify import verify

    check = verify(outcome.path, outcome.result.code, steps, args)
    if check.ok:
        outcome.result.findings.append(Finding(R.VERIFIED, FIXED, f"verified: {check.message}"))
        return
    outcome.result = SourceResult(
        NOT_CONVERTED,
        outcome.result.code,
        [
            Finding(
                R.VERIFY_FAILED, MANUAL, f"verification failed, nothing written: {check.message}"
            )
        ],
    )


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def _write(outcome: FileOutcome, original: str, opts: MigrateOptions) -> None:
    """In place (the original kept as ``FILE.orig``), or to ``-o`` (an existing file there kept
    as ``OUT.orig``). Nothing is left half-done: a failure leaves every file as it was."""
    path = outcome.path
    target = path
    if opts.output is not None and not _same_file(opts.output, path):
        target = opts.output
    backup = target.with_name(target.name + ".orig") if target.exists() else None
    try:
        _replace_keeping_backup(target, outcome.result.code, backup)
    except OSError as err:
        raise FileProblem(
            f"cannot write {target}: {err.strerror or err}; nothing was changed. Make the file "
            "and its folder writable, or write elsewhere with -o."
        ) from None
    outcome.written, outcome.backup = target, backup


def _replace_keeping_backup(target: Path, text: str, backup: Path | None) -> None:
    real = Path(os.path.realpath(target))
    if backup is None:
        atomic_write(real, text)
        return
    info = real.stat()
    if not info.st_mode & stat.S_IWUSR:
        raise FileProblem(
            f"{target} is read-only (mode {stat.filemode(info.st_mode)}); it was not rewritten. "
            f"Make it writable (chmod u+w {target}) to migrate it in place, or write elsewhere "
            "with -o."
        )
    current = real.read_bytes()
    exists = backup.exists() or backup.is_symlink()
    if exists and (not backup.is_file() or backup.read_bytes() != current):
        raise FileProblem(
            f"{backup} already exists and differs from {target}; it may hold your original "
            f"script, so neither file was changed. Move {backup.name} away, or write "
            "elsewhere with -o."
        )
    # (a backup with the same text is the one an interrupted run left: reused)
    mode = info.st_mode & 0o7777
    new = _temp_copy(real, text.encode("utf-8"), mode)  # a read-only folder fails here
    made_backup = False
    try:
        if not backup.exists():
            saved = _temp_copy(backup, current, mode)
            try:
                os.replace(saved, backup)
            except BaseException:
                Path(saved).unlink(missing_ok=True)
                raise
            made_backup = True
        os.replace(new, real)
    except BaseException:
        Path(new).unlink(missing_ok=True)
        if made_backup:
            backup.unlink(missing_ok=True)
        raise
    _fsync_dir(real.parent)
    if backup.parent != real.parent:
        _fsync_dir(backup.parent)


def report_lines(run_: MigrateRun) -> list[str]:
    lines = []
    for o in run_.outcomes:
        lines += [f.format(str(o.path)) for f in o.result.findings]
    return lines


def write_report(run_: MigrateRun, path: Path) -> None:
    data = {
        "summary": run_.summary(),
        "files": [
            {
                "path": str(o.path),
                "status": o.result.status,
                "findings": [f.as_dict(str(o.path)) for f in o.result.findings],
            }
            for o in run_.outcomes
        ],
    }
    atomic_write(path, json.dumps(data, indent=2) + "\n")
