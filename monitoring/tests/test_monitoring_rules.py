"""The alert rules: promtool accepts them, their unit tests pass, every alert has a firing and a
quiet case and a runbook section, and every selector can be narrowed to one assistant."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from assistente_monitoring import ANY_ASSISTANT_MATCHER, queries, rules
from assistente_monitoring.promql import analyse
from assistente_testbed.paths import repo_root

RULE_TESTS_DIR = Path(__file__).parent / "rules"
RUNBOOKS = repo_root() / "docs" / "runbooks.md"
RUNBOOK_BASE = (
    "https://github.com/assistente-digital/assistente-digital/blob/main/docs/runbooks.md#"
)
SEVERITIES = {"critical", "warning", "info"}
TEAMS = {"assistente", "plataforma", "atendimento"}


def promtool() -> str:
    found = shutil.which("promtool")
    assert found is not None, "promtool not found: run `make setup` (apt package prometheus)"
    return found


def rule_test_files() -> list[Path]:
    return sorted(RULE_TESTS_DIR.glob("*.test.yml"))


@pytest.mark.parametrize("path", rules.rule_files(), ids=lambda p: p.name)
def test_promtool_accepts_the_rule_file(path: Path) -> None:
    result = subprocess.run(
        [promtool(), "check", "rules", str(path)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("path", rule_test_files(), ids=lambda p: p.name)
def test_promtool_unit_tests_pass(path: Path) -> None:
    result = subprocess.run(
        [promtool(), "test", "rules", path.name],
        cwd=path.parent,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("path", rule_test_files(), ids=lambda p: p.name)
def test_promtool_unit_tests_fix_the_group_order(path: Path) -> None:
    # Unset, promtool orders the groups at random on each run, and an alert may read its
    # recording rules one step late: a test that passes most of the time.
    spec: dict[str, Any] = yaml.safe_load(path.read_text())
    groups = [
        group["name"]
        for rule_file in spec["rule_files"]
        for group in yaml.safe_load((path.parent / rule_file).read_text())["groups"]
    ]
    assert spec.get("group_eval_order") == groups


def _alert_cases() -> dict[str, dict[str, int]]:
    """alertname -> {"firing": n, "quiet": n} over every promtool test file."""
    cases: dict[str, dict[str, int]] = {}
    for path in rule_test_files():
        spec: dict[str, Any] = yaml.safe_load(path.read_text())
        for test in spec["tests"]:
            for case in test.get("alert_rule_test", []):
                kind = "firing" if case.get("exp_alerts") else "quiet"
                counts = cases.setdefault(case["alertname"], {"firing": 0, "quiet": 0})
                counts[kind] += 1
    return cases


def test_every_alert_has_a_firing_and_a_quiet_case() -> None:
    cases = _alert_cases()
    missing = {
        name: cases.get(name, {"firing": 0, "quiet": 0})
        for name in sorted(rules.alert_names())
        if not cases.get(name, {}).get("firing") or not cases.get(name, {}).get("quiet")
    }
    assert missing == {}, f"alerts without a firing or a quiet promtool case: {missing}"
    unknown = set(cases) - rules.alert_names()
    assert unknown == set(), f"promtool cases for alerts that do not exist: {unknown}"


def _github_anchor(heading: str) -> str:
    anchor = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return anchor.replace(" ", "-")


def test_every_alert_routes_somewhere_and_links_its_runbook_section() -> None:
    anchors = {_github_anchor(h) for h in re.findall(r"^## (.+)$", RUNBOOKS.read_text(), re.M)}
    problems: list[str] = []
    for rule in rules.load_rules():
        if rule.kind != "alert":
            continue
        where = f"{rule.name} ({rule.file.name})"
        if rule.labels.get("severity") not in SEVERITIES:
            problems.append(f"{where}: severity must be one of {sorted(SEVERITIES)}")
        if rule.labels.get("team") not in TEAMS:
            problems.append(f"{where}: team must be one of {sorted(TEAMS)}")
        for key in ("summary", "description", "runbook_url"):
            if not rule.annotations.get(key, "").strip():
                problems.append(f"{where}: no {key} annotation")
        url = rule.annotations.get("runbook_url", "")
        if url != RUNBOOK_BASE + rule.name.lower():
            problems.append(f"{where}: runbook_url should be {RUNBOOK_BASE}{rule.name.lower()}")
        if rule.name.lower() not in anchors:
            problems.append(f"{where}: docs/runbooks.md has no '## {rule.name}' section")
    assert problems == []


def test_every_runbook_section_belongs_to_an_alert() -> None:
    headings = re.findall(r"^## (.+)$", RUNBOOKS.read_text(), re.M)
    assert sorted(headings) == sorted(rules.alert_names())


def test_every_selector_of_the_assistant_rules_can_be_narrowed_to_one_assistant() -> None:
    """Without the matcher, the operator's per-resource copy would read other resources'
    series, and two resources would record the same series twice."""
    unscoped = [
        f"{rule.name}: {selector.name}"
        for rule in rules.load_rules([rules.ASSISTANT_RULES])
        for selector in analyse(rule.expr).selectors
        if selector.matcher("assistente") != ("!=", "")
    ]
    assert unscoped == []


def test_narrowing_keeps_every_expression_valid_and_pins_every_selector() -> None:
    for rule in rules.load_rules([rules.ASSISTANT_RULES]):
        narrowed = rules.scope_expr(rule.expr, "tj", "tjxx")
        assert ANY_ASSISTANT_MATCHER not in narrowed
        for selector in analyse(narrowed).selectors:
            assert selector.matcher("namespace") == ("=", "tj"), (rule.name, selector)
            assert selector.matcher("assistente") == ("=", "tjxx"), (rule.name, selector)


def test_narrowing_refuses_an_expression_without_the_matcher() -> None:
    with pytest.raises(ValueError, match="no assistente"):
        rules.scope_expr("sum(up)", "tj", "tjxx")


def test_the_operator_rules_do_not_depend_on_an_assistant() -> None:
    for rule in rules.load_rules([rules.OPERATOR_RULES]):
        for selector in analyse(rule.expr).selectors:
            assert selector.matcher("assistente") is None, (rule.name, selector)
            assert selector.matcher("component") == ("=", "operator"), (rule.name, selector)


def test_recording_rules_follow_the_level_metric_operation_convention() -> None:
    for name in rules.recorded_names():
        assert re.fullmatch(r"assistente:[a-z_]+:[a-z0-9_]+", name), name


def test_rules_only_read_recorded_series_that_exist() -> None:
    recorded = rules.recorded_names()
    for query in queries.rule_queries():
        for name in query.analysed().metric_names:
            if ":" in name:
                assert name in recorded, f"{query.where} reads {name}, which no rule records"
