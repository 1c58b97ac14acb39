"""The ``scaffold`` command: parses arguments, calls the public API, prints the result.

No business logic here, and nothing heavy imported at module level: ``scaffold --help`` and
``scaffold --version`` must not import copier, libcst or torch.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from scaffold import __version__
from scaffold.errors import ScaffoldError


def _fail(err: ScaffoldError) -> None:
    click.echo(click.style("error: ", fg="red", bold=True) + str(err), err=True)
    sys.exit(err.exit_code)


def _debug() -> bool:
    import os

    return os.environ.get("SCAFFOLD_DEBUG", "") not in ("", "0")


def _unexpected(err: BaseException) -> ScaffoldError:
    """A one-paragraph message for a failure no command anticipated (the traceback is shown with
    SCAFFOLD_DEBUG=1): what failed, on which file, and what to do."""
    if isinstance(err, OSError):
        where = f" {err.filename!r}" if err.filename else ""
        what = err.strerror or str(err) or type(err).__name__
        hint = {
            28: "free some disk space, then rerun.",
            13: "check the permissions of that path, or choose another one.",
            30: "the file system is read-only; choose a writable location.",
            36: "use a shorter name or path.",
        }.get(err.errno or 0, "check the path, then rerun.")
        return ScaffoldError(f"cannot use{where}: {what}.", hint)
    name = type(err).__name__
    if name == "SecurityError":  # jinja2's sandbox refused something a template does
        return ScaffoldError(
            f"the template tried something its sandbox forbids: {err}.",
            "this is a problem of the template; report it to its authors.",
        )
    if isinstance(err, RecursionError):
        return ScaffoldError("the input nests too deeply to be processed.", None)
    return ScaffoldError(
        f"internal error ({name}: {err}).",
        "rerun with SCAFFOLD_DEBUG=1 to see the traceback, and please report it.",
    )


class _Main(click.Group):
    """The command group: no raw traceback reaches the user unless SCAFFOLD_DEBUG=1."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, click.Abort, SystemExit):
            raise
        except KeyboardInterrupt:
            raise
        except Exception as err:  # noqa: BLE001
            if _debug():
                raise
            _fail(_unexpected(err))


@click.group(cls=_Main, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="scaffold")
def main() -> None:
    """Start and modernise PyTorch training code.

    \b
      scaffold templates                      list the bundled project templates
      scaffold new NAME [--template KIND]     create a Lightning project
      scaffold update [PATH]                  pull template changes into a project
      scaffold migrate train.py               hand-written loop -> LightningModule + Trainer

    Failures are one-paragraph messages; set SCAFFOLD_DEBUG=1 to see the traceback.
    """


@main.command("templates")
def templates_cmd() -> None:
    """List the bundled project templates, one per line."""
    from scaffold.catalog import bundled_kinds

    try:
        kinds = bundled_kinds()
    except ScaffoldError as err:
        _fail(err)
    width = max(len(k.name) for k in kinds)
    for kind in kinds:
        click.echo(f"{kind.name:<{width}}  {kind.description}")


def _complete_template(ctx, param, incomplete: str):
    """Shell completion for --template: the bundled kinds, else a path."""
    from click.shell_completion import CompletionItem

    from scaffold.catalog import bundled_kinds

    kinds = [
        CompletionItem(k.name, help=k.description)
        for k in bundled_kinds()
        if k.name.startswith(incomplete)
    ]
    return kinds or [CompletionItem(incomplete, type="file")]


def _complete_answer(ctx, param, incomplete: str):
    """Shell completion for -d: ``question=`` names, then the question's choices."""
    from click.shell_completion import CompletionItem

    from scaffold.catalog import bundled_questions

    questions = bundled_questions()
    if "=" not in incomplete:
        return [
            CompletionItem(f"{name}=", help=str(spec.get("help", "")))
            for name, spec in questions.items()
            if name.startswith(incomplete)
        ]
    key, value = incomplete.split("=", 1)
    choices = questions.get(key, {}).get("choices") or []
    values = list(choices.values()) if isinstance(choices, dict) else list(choices)
    if questions.get(key, {}).get("type") == "bool":
        values = ["true", "false"]
    return [CompletionItem(f"{key}={v}") for v in map(str, values) if v.startswith(value)]


_data_option = click.option(
    "-d",
    "--data",
    "data",
    multiple=True,
    metavar="KEY=VALUE",
    shell_complete=_complete_answer,
    help="Answer a template question (repeatable), e.g. -d engine=lightning.",
)
_trust_option = click.option(
    "--trust",
    is_flag=True,
    help="Allow the template's tasks, migrations and Jinja extensions to run (copier's unsafe).",
)


class _NewCommand(click.Command):
    """``scaffold new --help`` ends with the bundled template's questions (read only when help
    is shown, so that plain commands stay light)."""

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        super().format_epilog(ctx, formatter)
        try:
            from scaffold import catalog

            questions = catalog.bundled_questions()
        except Exception:  # noqa: BLE001 (a broken installation still shows the options)
            return
        rows = []
        for name, spec in questions.items():
            text = " ".join(str(spec.get("help", "")).split())
            default = spec.get("default")
            if isinstance(default, str) and "{{" in default:
                default = "derived"
            choices = spec.get("choices")
            if isinstance(choices, dict):
                choices = list(choices.values())
            extra = f" [default: {default}]" if default not in (None, "") else ""
            if choices:
                extra += f" (one of: {', '.join(map(str, choices))})"
            rows.append((name, f"{text}{extra}"))
        with formatter.section("Questions of the bundled template (answer with -d KEY=VALUE)"):
            formatter.write_dl(rows)


@main.command("new", cls=_NewCommand)
@click.argument("name", type=click.Path(path_type=Path))
@click.option(
    "-t",
    "--template",
    default=None,
    shell_complete=_complete_template,
    help="Bundled template name (see `scaffold templates`), a local path or a git URL.",
)
@click.option("--vcs-ref", default=None, help="Git tag, branch or commit of the template.")
@_data_option
@click.option(
    "--defaults",
    is_flag=True,
    help="Take the default answer for every question not given with -d (never prompt).",
)
@click.option("--force", is_flag=True, help="Render into an existing non-empty folder.")
@click.option("--no-git", is_flag=True, help="Do not create a git repository and first commit.")
@_trust_option
def new_cmd(name, template, vcs_ref, data, defaults, force, no_git, trust) -> None:
    """Create the project NAME (a folder, made in the current directory unless NAME is a path).

    In a terminal the template's questions are asked; elsewhere, or with --defaults, the defaults
    are used. The project is written all at once or not at all.
    """
    from scaffold.new import NewOptions, create_project, parse_data

    interactive = sys.stdin.isatty() and sys.stdout.isatty()
    try:
        opts = NewOptions(
            destination=name,
            template=template,
            vcs_ref=vcs_ref,
            data=parse_data(data),
            defaults=defaults or not interactive,
            force=force,
            trust=trust,
            git=not no_git,
        )
        result = create_project(opts)
    except ScaffoldError as err:
        _fail(err)
    for note in result.notes:
        click.echo(click.style("note: ", fg="yellow") + note, err=True)
    version = f" {result.version}" if result.version else ""
    click.echo(f"Created {result.path} from template {result.template}{version}.")
    package = result.answers.get("package_name")
    try:
        shown = result.path.relative_to(Path.cwd())
    except ValueError:
        shown = result.path
    click.echo("Next:")
    click.echo(f"  cd {shown} && pip install -e '.[dev]' && pytest")
    if package:
        click.echo(f"  python -m {package} fit --config configs/default.yaml")


@main.command("update")
@click.argument("path", type=click.Path(path_type=Path), default=Path("."), required=False)
@click.option("--vcs-ref", default=None, help="Template version to update to (default: latest).")
@click.option("--pretend", is_flag=True, help="Show what would change; write nothing.")
@_data_option
@_trust_option
def update_cmd(path, vcs_ref, pretend, data, trust) -> None:
    """Apply the template's changes since the project was made (or last updated).

    Your edits are kept (copier's 3-way merge). Where the template changed the same lines, the
    file gets inline conflict markers and is listed; the exit code is then 3.
    """
    from scaffold.new import parse_data
    from scaffold.update import UpdateOptions, update_project

    try:
        opts = UpdateOptions(path, vcs_ref, pretend, parse_data(data), trust)
        result = update_project(opts)
    except ScaffoldError as err:
        _fail(err)
    verb = "Would update" if pretend else "Updated"
    if result.from_version == result.to_version and not result.changed:
        click.echo(f"{result.path} is up to date with {result.template} {result.to_version}.")
        return
    click.echo(f"{verb} {result.path}: {result.from_version} -> {result.to_version}")
    for line in result.changed:
        mark = "C" if line in result.conflicts else result.kinds.get(line, "M")
        click.echo(f"  {mark} {line}")
    if result.diff:
        click.echo(result.diff.rstrip())
    if result.conflicts:
        click.echo(
            f"{len(result.conflicts)} file(s) with conflicts "
            f"{'would need' if pretend else 'need'} resolving (look for '<<<<<<< before "
            "updating'):",
            err=True,
        )
        for conflict in result.conflicts:
            click.echo(f"  {conflict}", err=True)
        sys.exit(3)
    if not pretend:
        click.echo("Review with `git diff`, run the tests, then commit.")


def _explain_rule(ctx: click.Context, _param, value: str | None) -> None:
    """``--explain CODE``: what a rule covers and what it does not (``all``: the list)."""
    if value is None or ctx.resilient_parsing:
        return
    from scaffold.migrate.rules import REGISTRY, lookup

    if value.strip().lower() == "all":
        for code, rule in REGISTRY.items():
            click.echo(f"{code}  {rule.summary}")
        ctx.exit(0)
    rule = lookup(value)
    if rule is None:
        raise click.BadParameter(
            f"got {value!r}; known codes are {min(REGISTRY)}..{max(REGISTRY)} "
            "(`scaffold migrate --explain all` lists them)",
            ctx=ctx,
            param_hint="--explain",
        )
    click.echo(rule.explain(), nl=False)
    ctx.exit(0)


@main.command("migrate")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--explain",
    metavar="CODE",
    expose_value=False,
    is_eager=True,
    callback=_explain_rule,
    help="Say what rule CODE (e.g. SCF311) covers and what it does not; `all` lists the rules.",
)
@click.option(
    "-o", "--output", type=click.Path(path_type=Path), help="Write here instead of in place."
)
@click.option("--diff", is_flag=True, help="Print a unified diff; write nothing.")
@click.option("--check", is_flag=True, help="Exit 1 if any file still has a hand-written loop.")
@click.option(
    "--engine",
    type=click.Choice(["runtime", "lightning"]),
    default="runtime",
    show_default=True,
    help="Emit `import runtime as L` or `import lightning as L`.",
)
@click.option(
    "--no-tooling",
    is_flag=True,
    help="A bare Trainer (logger=False, enable_checkpointing=False): nothing written to "
    "lightning_logs/.",
)
@click.option("--report", type=click.Path(path_type=Path), help="Write the findings as JSON.")
@click.option(
    "--verify",
    is_flag=True,
    help="Run the original and the migrated script for a few optimizer steps and compare the "
    "parameters; write only if they match.",
)
@click.option(
    "--verify-steps",
    type=click.IntRange(min=1),
    default=3,
    show_default=True,
    help="Optimizer steps for --verify.",
)
@click.option(
    "--verify-args",
    default="",
    metavar="ARGS",
    help="Arguments for both runs of --verify, e.g. --verify-args '--epochs 1 --batch-size 8'.",
)
def migrate_cmd(
    paths, output, diff, check, engine, no_tooling, report, verify, verify_steps, verify_args
) -> None:
    """Turn hand-written PyTorch training loops into a LightningModule + Trainer.fit.

    Files are rewritten in place (the original is kept as FILE.orig) unless -o, --diff or
    --check is given. Exit codes: 0 migrated or nothing to do, 1 bad input (e.g. a syntax error),
    2 usage, 3 a loop that cannot be converted safely or an out-of-scope script (nothing written).
    """
    from scaffold.migrate.engine import MIGRATED, NOT_CONVERTED, SYNTAX_ERROR
    from scaffold.migrate.files import FILE_ERROR, MigrateOptions, report_lines, run

    try:
        import shlex

        steps = verify_steps if verify else 0
        extra = tuple(shlex.split(verify_args))
        result = run(
            MigrateOptions(
                tuple(paths), output, diff, check, engine, report, steps, extra, not no_tooling
            )
        )
    except ScaffoldError as err:
        _fail(err)
    for line in report_lines(result):
        click.echo(line)
    for outcome in result.outcomes:
        if outcome.diff:
            click.echo(outcome.diff, nl=False)
        elif outcome.written is not None:
            kept = ""
            if outcome.backup is not None:
                before = "original" if outcome.written == outcome.path else "previous version"
                kept = f" ({before} kept as {outcome.backup})"
            click.echo(f"wrote {outcome.written}{kept}")
    summary = ", ".join(f"{v} {k}" for k, v in result.summary().items() if k != "files")
    click.echo(f"{result.summary()['files']} file(s): {summary}", err=True)
    if check:
        dirty = {MIGRATED, NOT_CONVERTED, SYNTAX_ERROR, FILE_ERROR}
        sys.exit(1 if any(o.result.status in dirty for o in result.outcomes) else 0)
    sys.exit(result.exit_code)


if __name__ == "__main__":
    main()
