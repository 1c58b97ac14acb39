"""The rule registry: one place for every code migrate reports, each documented."""

from __future__ import annotations

import io
import re
import tokenize
from pathlib import Path

import pytest
from click.testing import CliRunner

from scaffold.cli import main
from scaffold.migrate.engine import migrate_source
from scaffold.migrate.rules import REGISTRY, Rule, lookup

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "scaffold"


def test_no_module_spells_a_rule_code_outside_the_registry():
    spelled = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name == "rules.py":
            continue
        tokens = tokenize.generate_tokens(io.StringIO(path.read_text()).readline)
        for tok in tokens:
            if tok.type == tokenize.STRING and re.fullmatch(
                r"[rbuf]*['\"]SCF\d{3}['\"]", tok.string
            ):
                spelled.append(f"{path.relative_to(ROOT)}:{tok.start[0]}: {tok.string}")
    assert spelled == []


def test_every_rule_says_what_it_covers():
    assert len(REGISTRY) > 60
    for code, rule in REGISTRY.items():
        assert re.fullmatch(r"SCF\d{3}", code)
        assert isinstance(rule, Rule) and rule == code and rule.code == code
        assert rule.summary and rule.doc.startswith("Covers:"), code


def _sources():
    for folder in ("examples/legacy", "examples/lightning1", "tests/tests_scaffold/migrate_repros"):
        yield from sorted((ROOT / folder).glob("*.py"))


@pytest.mark.parametrize("path", list(_sources()), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_reported_code_is_registered(path):
    result = migrate_source(path.read_text())
    assert result.findings
    for finding in result.findings:
        assert finding.code in REGISTRY, finding
        # the report stays plain JSON: the code serialises as the bare string
        assert str(finding.as_dict("x")["code"]) == finding.code


def test_explain_prints_the_rule_and_rejects_unknown_codes():
    runner = CliRunner()
    out = runner.invoke(main, ["migrate", "--explain", "scf311"])
    assert out.exit_code == 0, out.output
    assert out.output.startswith("SCF311: ") and "Covers:" in out.output
    listing = runner.invoke(main, ["migrate", "--explain", "all"])
    assert listing.exit_code == 0
    assert len(listing.output.splitlines()) == len(REGISTRY)
    bad = runner.invoke(main, ["migrate", "--explain", "SCF999"])
    assert bad.exit_code == 2
    assert "'SCF999'" in bad.output and "--explain all" in bad.output
    assert lookup(" scf001 ") == "SCF001"


def test_every_pass_says_why_it_sits_where_it_does():
    from scaffold.migrate.engine import PASSES

    names = [p.name for p in PASSES]
    assert len(set(names)) == len(names)
    assert all(len(p.why_here) > 20 for p in PASSES)
    # the orders the reasons promise
    assert names.index("lightning1") < names.index("distributed") < names.index("loop")
    assert names.index("trainer-class") < names.index("step-helpers") < names.index("loop")
    assert names.index("loop") < names.index("restore-distributed")


def test_no_converter_function_is_longer_than_150_lines():
    import ast

    long = []
    for path in sorted((PACKAGE / "migrate").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > 150:
                    long.append(f"{path.name}::{node.name} {length} lines")
    assert long == []
