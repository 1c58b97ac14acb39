"""migrate on files: find the scripts, migrate each, write atomically (keeping ``.orig``), or
show a diff, or check; collect a report. Returns data; the CLI prints it."""

from __future__ import annotations

import difflib
import json
import os
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
        if SYNTAX_ERROR in statuses:
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


def atomic_write(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent or ".")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
        if path.exists():
            os.chmod(tmp, path.stat().st_mode & 0o777)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def run(opts: MigrateOptions) -> MigrateRun:
    if opts.engine not in ("runtime", "lightning"):
        raise UsageError(f"--engine must be 'runtime' or 'lightning', got {opts.engine!r}.")
    files = collect(opts.paths)
    if opts.output is not None and (len(files) != 1 or opts.paths[0].is_dir()):
        raise UsageError("-o/--output takes a single input file.", "migrate folders in place.")
    outcome_run = MigrateRun()
    for path in files:
        try:
            code = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as err:
            raise ScaffoldError(f"cannot read {path}: {err}") from None
        result = migrate_source(code, opts.engine, opts.tooling)
        outcome = FileOutcome(path, result)
        outcome_run.outcomes.append(outcome)
        if result.status != MIGRATED:
            continue
        if opts.verify_steps > 0:
            _verify(outcome, opts.verify_steps, opts.verify_args)
            if outcome.result.status != MIGRATED:
                continue
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
            continue
        _write(outcome, code, opts)
    if opts.report is not None:
        write_report(outcome_run, opts.report)
    return outcome_run


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


def _write(outcome: FileOutcome, original: str, opts: MigrateOptions) -> None:
    path = outcome.path
    if opts.output is not None:
        atomic_write(opts.output, outcome.result.code)
        outcome.written = opts.output
        return
    backup = path.with_name(path.name + ".orig")
    if backup.exists():
        raise ScaffoldError(
            f"{backup} already exists; it may hold your original script, so it is not overwritten "
            f"and {path} was left unchanged.",
            f"move {backup.name} away, or write elsewhere with -o.",
        )
    atomic_write(backup, original)
    atomic_write(path, outcome.result.code)
    outcome.written, outcome.backup = path, backup


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
