"""A real Prometheus (Debian package `prometheus`) on 127.0.0.1, for tests.

    with Prometheus.start(tmp_path, targets=["127.0.0.1:8080"]) as prom:
        prom.query("up")

It listens on a free port, keeps its TSDB in the test's temp folder, scrapes every second,
and is stopped (SIGTERM, then SIGKILL) when the block ends, whatever happened inside.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.support.ports import free_port
from tests.support.tools import tool

SCRAPE_INTERVAL = "1s"


class QueryError(Exception):
    """Prometheus refused a query (for a parse error, `error_type` is `bad_data`)."""

    def __init__(self, expr: str, error_type: str, message: str) -> None:
        self.expr, self.error_type, self.message = expr, error_type, message
        super().__init__(f"{error_type}: {message}\n  in: {expr}")


@dataclass
class Prometheus:
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    @classmethod
    @contextmanager
    def start(
        cls,
        workdir: Path,
        *,
        targets: Sequence[str] = (),
        ready_timeout_s: float = 30,
        credentials_file: Path | None = None,
    ) -> Iterator[Prometheus]:
        """`credentials_file`: a bearer token sent on every scrape (docs/security.md)."""
        workdir.mkdir(parents=True, exist_ok=True)
        config = workdir / "prometheus.yml"
        job: dict[str, Any] = {
            "job_name": "hoist",
            "metrics_path": "/metrics",
            "static_configs": [{"targets": list(targets)}],
        }
        if credentials_file is not None:
            job["authorization"] = {"type": "Bearer", "credentials_file": str(credentials_file)}
        scrape = [job]
        config.write_text(
            yaml.safe_dump(
                {
                    "global": {
                        "scrape_interval": SCRAPE_INTERVAL,
                        "evaluation_interval": SCRAPE_INTERVAL,
                        "scrape_timeout": SCRAPE_INTERVAL,
                    },
                    "scrape_configs": scrape if targets else [],
                }
            )
        )
        log = workdir / "prometheus.log"
        for _attempt in range(3):  # a free port can be taken between probe and bind
            port = free_port()
            with log.open("wb") as out:
                process = subprocess.Popen(
                    [
                        tool("prometheus"),
                        f"--config.file={config}",
                        f"--storage.tsdb.path={workdir / 'tsdb'}",
                        f"--web.listen-address=127.0.0.1:{port}",
                        "--storage.tsdb.retention.time=1h",
                        "--log.level=warn",
                    ],
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            prometheus = cls(f"http://127.0.0.1:{port}", process, log)
            try:
                if prometheus._wait_ready(ready_timeout_s):
                    yield prometheus
                    return
            finally:
                prometheus.stop()
            if "address already in use" not in log.read_text(errors="replace"):
                break
        raise RuntimeError(f"Prometheus did not become ready:\n{log.read_text()[-2000:]}")

    def _wait_ready(self, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as response:
                    if response.status == 200:
                        return True
            except (urllib.error.URLError, ConnectionError):
                pass
            time.sleep(0.2)
        return False

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def _get(self, path: str, params: dict[str, str]) -> Any:
        url = f"{self.url}{path}?{urllib.parse.urlencode(params)}"
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                body = json.load(response)
        except urllib.error.HTTPError as exc:
            body = json.load(exc)
        if body.get("status") != "success":
            raise QueryError(params.get("query", path), body["errorType"], body["error"])
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """The instant vector (or scalar, as one sample) `expr` gives now."""
        data = self._get("/api/v1/query", {"query": expr})
        if data["resultType"] in ("scalar", "string"):
            return [{"metric": {}, "value": data["result"]}]
        result: list[dict[str, Any]] = data["result"]
        return result

    def series_names(self) -> set[str]:
        names: list[str] = self._get("/api/v1/label/__name__/values", {})
        return set(names)

    def label_values(self, label: str, match: str) -> list[str]:
        values: list[str] = self._get(f"/api/v1/label/{label}/values", {"match[]": match})
        return values

    def targets_up(self) -> dict[str, bool]:
        data = self._get("/api/v1/targets", {})
        return {t["scrapeUrl"]: t["health"] == "up" for t in data["activeTargets"]}


_TEMPLATE = {
    "$__rate_interval": "30s",
    "$__interval": "1s",
    "$__range": "5m",
    "$model": ".*",
    "$adapter": ".*",
}


def grafana_to_promql(expr: str, *, rate_interval: str = "30s") -> str:
    """A panel query as Grafana sends it with every variable at "All"."""
    values = {**_TEMPLATE, "$__rate_interval": rate_interval}
    for variable in sorted(values, key=len, reverse=True):
        expr = expr.replace(variable, values[variable])
    leftover = re.findall(r"\$\{?\w+", expr)
    assert not leftover, f"unknown variables {leftover} in {expr}"
    return expr


LABEL_VALUES = re.compile(r"^label_values\((?:(?P<match>.+),\s*)?(?P<label>\w+)\)$")


def variable_query(query: str) -> tuple[str, str]:
    """(label, series selector) of a Grafana `label_values(selector, label)` query."""
    found = LABEL_VALUES.match(grafana_to_promql(query))
    assert found, f"not a label_values query: {query}"
    return found.group("label"), found.group("match") or "{__name__=~'.+'}"
