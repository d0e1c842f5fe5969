"""What a PromQL expression reads, found by parsing it (PyPI promql-parser), not by regex."""

from __future__ import annotations

from dataclasses import dataclass

import promql_parser


@dataclass(frozen=True)
class Selector:
    """One series selector: `name{label op "value", ...}`."""

    name: str | None
    matchers: tuple[tuple[str, str, str], ...]  # (label, operator, value)

    def matcher(self, label: str) -> tuple[str, str] | None:
        for name, op, value in self.matchers:
            if name == label:
                return op, value
        return None


@dataclass(frozen=True)
class ExprInfo:
    selectors: tuple[Selector, ...]
    # Labels named in `by (...)`, `without (...)`, `on (...)` and `ignoring (...)`.
    grouping_labels: frozenset[str]

    @property
    def metric_names(self) -> frozenset[str]:
        return frozenset(s.name for s in self.selectors if s.name is not None)


# MatchOp members are not hashable, so a list of pairs instead of a dict.
_OPERATORS = (
    (promql_parser.MatchOp.Equal, "="),
    (promql_parser.MatchOp.NotEqual, "!="),
    (promql_parser.MatchOp.Re, "=~"),
    (promql_parser.MatchOp.NotRe, "!~"),
)


def _operator(op: promql_parser.MatchOp) -> str:
    for member, text in _OPERATORS:
        if op == member:
            return text
    raise ValueError(f"unknown matcher operator {op}")


def _selector(node: promql_parser.VectorSelector) -> Selector:
    matchers = tuple(
        (m.name, _operator(m.op), m.value) for m in node.matchers.matchers if m.name != "__name__"
    )
    name = node.name
    if name is None:
        for m in node.matchers.matchers:
            if m.name == "__name__" and m.op == promql_parser.MatchOp.Equal:
                name = m.value
    return Selector(name=name, matchers=matchers)


def analyse(expr: str) -> ExprInfo:
    """Parse `expr` (raises ValueError on a syntax error) and list what it selects."""
    tree = promql_parser.parse(expr)
    selectors: list[Selector] = []
    grouping: set[str] = set()

    def visit(node: promql_parser.Expr) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            selectors.append(_selector(node))
        elif isinstance(node, promql_parser.AggregateExpr) and node.modifier is not None:
            grouping.update(node.modifier.labels)
        elif isinstance(node, promql_parser.BinaryExpr) and node.modifier is not None:
            matching = node.modifier.matching
            if matching is not None:
                grouping.update(matching.labels)

    promql_parser.walk(tree, pre_visit=visit)
    return ExprInfo(selectors=tuple(selectors), grouping_labels=frozenset(grouping))
