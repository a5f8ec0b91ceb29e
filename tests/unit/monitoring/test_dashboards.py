"""The dashboards and rules read only catalogued metrics, cover what operators need, and the
generated files are what the generator writes."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from monitoring import generate
from monitoring.dashboards import all_dashboards, control_plane, engines, overview
from monitoring.grafana import WIDTH, Dashboard, render
from monitoring.metrics import BY_NAME, METRICS, Kind, metric_of_series
from monitoring.promql import label_names, metric_names

DASHBOARDS = all_dashboards()


def _rules() -> list[dict[str, Any]]:
    loaded = yaml.safe_load(generate.RULES.read_text())
    return [rule for group in loaded["groups"] for rule in group["rules"]]


RECORDED = {rule["record"] for rule in _rules() if "record" in rule}


def _used(expr: str) -> set[str]:
    return {name for name in metric_names(expr) if name not in RECORDED}


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        pytest.param(
            'histogram_quantile(0.9, sum by (le, model) (rate(x_bucket{a=~"$m"}[$__rate_interval])))',
            {"x_bucket"},
            id="quantile",
        ),
        pytest.param("sum(rate(a_total[5m])) or vector(0)", {"a_total"}, id="or-vector"),
        pytest.param(
            'a:b:rate5m > (14.4 * 0.01) and c{le=~"1|1\\\\.0"} == 0',
            {"a:b:rate5m", "c"},
            id="recorded-and-keywords",
        ),
        pytest.param("max by (instance) (up offset 5m)", {"up"}, id="offset"),
    ],
)
def test_metric_names(expr: str, names: set[str]) -> None:
    assert metric_names(expr) == names


@pytest.mark.parametrize("dashboard", DASHBOARDS, ids=lambda d: d.uid)
def test_every_query_reads_catalogued_metrics(dashboard: Dashboard) -> None:
    for title, query in dashboard.queries():
        for name in _used(query.expr):
            metric = metric_of_series(name)
            assert metric is not None, f"{dashboard.uid} / {title}: {name} not in metrics.py"
            if metric.kind is Kind.HISTOGRAM:
                assert name != metric.name, f"{title}: query {name}_bucket, not {name}"


SCRAPE_LABELS = {"le", "instance", "job", "pod", "namespace"}
"""Added by Prometheus or its scrape configuration, or histogram buckets."""


def _labels_known(expr: str) -> set[str]:
    known = set(SCRAPE_LABELS)
    for name in metric_names(expr):
        metric = metric_of_series(name)
        if metric is not None:
            known.update(metric.labels)
        elif name in RECORDED:
            known.add("model")
    return label_names(expr) - known


@pytest.mark.parametrize("dashboard", DASHBOARDS, ids=lambda d: d.uid)
def test_every_query_uses_labels_its_metrics_have(dashboard: Dashboard) -> None:
    for title, query in dashboard.queries():
        unknown = _labels_known(query.expr)
        assert not unknown, f"{dashboard.uid} / {title}: no metric there has {unknown}"


def test_every_rule_uses_labels_its_metrics_have() -> None:
    for rule in _rules():
        unknown = _labels_known(rule["expr"])
        assert not unknown, f"{rule.get('record') or rule['alert']}: no metric has {unknown}"


def test_a_label_the_metric_lacks_is_caught() -> None:
    assert _labels_known("sum by (adapter) (rate(inference_latency_seconds_count[5m]))") == {
        "adapter"
    }


def test_label_names() -> None:
    expr = 'sum by (model, le) (rate(x{a=~"$m", b!="1", c="x=y"}[5m])) / on(d) y'
    assert label_names(expr) == {"model", "le", "a", "b", "c"}


def test_every_rule_reads_catalogued_metrics() -> None:
    for rule in _rules():
        for name in _used(rule["expr"]):
            assert metric_of_series(name) is not None, f"{rule}: {name} not in metrics.py"


def test_every_catalogued_metric_is_used() -> None:
    exprs = [q.expr for d in DASHBOARDS for _, q in d.queries()] + [r["expr"] for r in _rules()]
    used = {metric_of_series(n) for e in exprs for n in metric_names(e)}
    unused = [m.name for m in METRICS if m not in used]
    assert not unused, f"in metrics.py but read by no dashboard or rule: {unused}"


def test_the_seed_metric_names_are_kept() -> None:
    for name in (
        "inference_requests_total",
        "inference_latency_seconds",
        "gpu_utilization",
        "model_load_time_seconds",
    ):
        assert name in BY_NAME


def _reads(dashboard: Dashboard) -> set[str]:
    return {
        m.name
        for _, q in dashboard.queries()
        for n in metric_names(q.expr)
        if (m := metric_of_series(n)) is not None
    }


@pytest.mark.parametrize(
    ("dashboard", "needs"),
    [
        pytest.param(
            overview(),
            {
                "inference_requests_total",  # traffic and errors
                "inference_latency_seconds",
                "inference_time_to_first_token_seconds",
                "inference_output_tokens_total",  # tokens/s
                "inference_prompt_tokens_total",
            },
            id="overview",
        ),
        pytest.param(
            engines(),
            {
                "engine_requests_running",
                "engine_requests_waiting",
                "engine_kv_cache_usage_ratio",
                "adapters_loaded",
                "gpu_utilization",
            },
            id="engines",
        ),
        pytest.param(
            control_plane(),
            {
                "autoscaler_desired_replicas",
                "autoscaler_ready_replicas",
                "adapter_load_seconds",
                "adapter_loads_total",
                "hoist_operator_adapter_drift_repairs_total",
            },
            id="control-plane",
        ),
    ],
)
def test_dashboard_shows_what_the_issue_asks(dashboard: Dashboard, needs: set[str]) -> None:
    assert needs <= _reads(dashboard)


def test_overview_splits_traffic_by_model_and_adapter() -> None:
    by_both = [q for _, q in overview().queries() if "by (model, adapter)" in q.expr]
    assert by_both  # the gateway labels only inference_requests_total by adapter


@pytest.mark.parametrize("dashboard", DASHBOARDS, ids=lambda d: d.uid)
def test_rendered_dashboard_is_well_formed(dashboard: Dashboard) -> None:
    rendered = render(dashboard)
    panels = rendered["panels"]
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids))
    occupied: set[tuple[int, int]] = set()
    for panel in panels:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= WIDTH
        cells = {
            (grid["x"] + dx, grid["y"] + dy) for dx in range(grid["w"]) for dy in range(grid["h"])
        }
        assert not cells & occupied, f"{panel['title']} overlaps another panel"
        occupied |= cells
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        assert panel["fieldConfig"]["defaults"]["unit"]
        refs = [t["refId"] for t in panel["targets"]]
        assert refs and len(refs) == len(set(refs))
    names = [v["name"] for v in rendered["templating"]["list"]]
    assert names[0] == "datasource"
    for _, query in dashboard.queries():
        for variable in ("$model", "$adapter"):
            if variable in query.expr:
                assert variable.strip("$") in names, f"{query.expr} uses an undefined variable"


def test_dashboard_uids_are_unique() -> None:
    assert len({d.uid for d in DASHBOARDS}) == len(DASHBOARDS)


def test_generated_files_are_current() -> None:
    stale = [
        str(path.relative_to(generate.ROOT))
        for path, text in generate.outputs().items()
        if not path.exists() or path.read_text(encoding="utf-8") != text
    ]
    assert not stale, f"run `python -m monitoring.generate`: {stale}"


def test_prometheus_rule_carries_the_rules_file() -> None:
    rule = generate.prometheus_rule()
    assert rule["spec"]["groups"] == yaml.safe_load(generate.RULES.read_text())["groups"]


def test_the_issue_s_alerts_exist() -> None:
    alerts = {rule["alert"] for rule in _rules() if "alert" in rule}
    assert {
        "HoistHighErrorRate",
        "HoistTTFTBudgetBurnFast",
        "HoistTTFTBudgetBurnSlow",
        "HoistNoReadyReplica",
        "HoistAdapterStuckLoading",
    } <= alerts
    for rule in _rules():
        if "alert" in rule:
            assert rule["labels"]["severity"] in ("warning", "critical")
            assert rule["annotations"]["summary"]
            assert rule["annotations"]["description"]
