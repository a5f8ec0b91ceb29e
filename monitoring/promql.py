"""Just enough PromQL reading to list the metric names a query uses (pure, no parser).

Prometheus itself decides whether a query parses (tests/integration/monitoring); this finds
the series names in a query so each can be looked up in the catalogue (monitoring.metrics).
"""

from __future__ import annotations

import re

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGE = re.compile(r"\[[^\]]*\]")
_GROUPING = re.compile(
    r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)", re.IGNORECASE
)
_IDENTIFIER = re.compile(r"(?<![\w:.])([a-zA-Z_:][a-zA-Z0-9_:]*)\b(?!\s*\()")
_KEYWORDS = {
    "and",
    "or",
    "unless",
    "bool",
    "offset",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "inf",
    "nan",
    "atan2",
    "start",
    "end",
}
_TEMPLATE = re.compile(r"\$\{?\w+\}?")


def metric_names(expr: str) -> set[str]:
    """Series names selected by `expr` (recording-rule names included)."""
    text = _TEMPLATE.sub("x", expr)
    text = _STRING.sub('""', text)
    text = _MATCHERS.sub("", text)
    text = _RANGE.sub("", text)
    text = _GROUPING.sub("", text)
    text = re.sub(r"\b\d+(\.\d+)?(e[+-]?\d+)?\b", "", text)
    return {name for name in _IDENTIFIER.findall(text) if name.lower() not in _KEYWORDS}


_BY = re.compile(r"\b(?:by|without)\s*\(([^()]*)\)", re.IGNORECASE)
_MATCHER_KEYS = re.compile(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)")


def label_names(expr: str) -> set[str]:
    """Labels `expr` groups by or matches on (not `__name__`)."""
    names = {
        label.strip() for group in _BY.findall(expr) for label in group.split(",") if label.strip()
    }
    for matchers in _MATCHERS.findall(_STRING.sub('""', expr)):
        names.update(_MATCHER_KEYS.findall(matchers))
    return names - {"__name__"}
