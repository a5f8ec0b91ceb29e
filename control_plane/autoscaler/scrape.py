"""Reading the signals: engine pods' and the gateway's Prometheus text, over HTTP.

Parsing is separate from fetching so that it is tested without sockets. The autoscaler
reads the engines and the gateway directly rather than through Prometheus' query API: the
panic window is seconds long, and a Prometheus scrape interval plus rule evaluation would
hand it data 15-60 s old; and scaling (from zero in particular) must not stop when
monitoring is down. docs/autoscaler.md has the whole argument.

Engine metrics, in vLLM's names (the simulator exports the same) or as the pod's sidecar
re-exports them (`engine_*`, see data_plane/inference/sidecar_runtime/engine_metrics.py),
which is what a cluster's autoscaler reads: requests running and waiting, KV-cache usage
(older vLLM: `vllm:gpu_cache_usage_perc`), and the time-to-first-token histogram.
Gateway metrics: `gateway_in_flight_requests{model}` and `gateway_queued_requests{model,reason}`
(requests waiting in the gateway for any reason, a cold start included).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from control_plane.autoscaler.algorithm import GatewayDemand

log = logging.getLogger(__name__)

RUNNING = ("vllm:num_requests_running", "engine_requests_running")
WAITING = ("vllm:num_requests_waiting", "engine_requests_waiting")
KV_USAGE = ("vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc", "engine_kv_cache_usage_ratio")
TTFT = ("vllm:time_to_first_token_seconds", "engine_time_to_first_token_seconds")
GATEWAY_IN_FLIGHT = "gateway_in_flight_requests"
GATEWAY_HELD = "gateway_queued_requests"  # summed over its `reason` label


class MetricsFormatError(ValueError):
    """The text is not Prometheus' exposition format, or lacks the required series."""


@dataclass(frozen=True)
class EngineSample:
    running: float
    waiting: float
    kv_cache_usage: float | None
    ttft_sum: float | None
    ttft_count: float | None


def _samples(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    try:
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                out.setdefault(s.name, []).append((dict(s.labels), float(s.value)))
    except (ValueError, IndexError, TypeError) as exc:
        raise MetricsFormatError(f"not Prometheus text: {exc}") from exc
    return out


def parse_engine_metrics(text: str) -> EngineSample:
    """One engine's load; series of several label sets (e.g. engines) are summed."""
    series = _samples(text)

    def first(names: Sequence[str], suffix: str = "") -> list[tuple[dict[str, str], float]] | None:
        return next((series[n + suffix] for n in names if n + suffix in series), None)

    def total(names: Sequence[str], suffix: str = "") -> float | None:
        values = first(names, suffix)
        return sum(v for _, v in values) if values is not None else None

    running, waiting = total(RUNNING), total(WAITING)
    if running is None or waiting is None:
        raise MetricsFormatError(f"missing one of {RUNNING} or one of {WAITING}")
    kv_values = first(KV_USAGE)
    return EngineSample(
        running=running,
        waiting=waiting,
        kv_cache_usage=max(v for _, v in kv_values) if kv_values else None,
        ttft_sum=total(TTFT, "_sum"),
        ttft_count=total(TTFT, "_count"),
    )


def ttft_between(before: EngineSample | None, after: EngineSample) -> float | None:
    """Mean TTFT of the requests that got their first token between two scrapes."""
    if before is None:
        return None
    s0, n0, s1, n1 = before.ttft_sum, before.ttft_count, after.ttft_sum, after.ttft_count
    if s0 is None or n0 is None or s1 is None or n1 is None:
        return None
    if n1 - n0 <= 0:  # nothing new, or the engine restarted and its counters began again
        return None
    return max(0.0, (s1 - s0) / (n1 - n0))


def parse_gateway_demand(text: str) -> dict[str, tuple[float, float]]:
    """Per model: (in-flight, held) requests as one gateway reports them."""
    series = _samples(text)
    # A gateway that has served nothing yet declares the family with no series: zero demand.
    if GATEWAY_IN_FLIGHT not in series and f"# TYPE {GATEWAY_IN_FLIGHT} " not in text:
        raise MetricsFormatError(f"missing {GATEWAY_IN_FLIGHT}")
    out: dict[str, tuple[float, float]] = {}
    for name, index in ((GATEWAY_IN_FLIGHT, 0), (GATEWAY_HELD, 1)):
        for labels, value in series.get(name, []):
            model = labels.get("model")
            if model is None:
                continue
            pair = list(out.get(model, (0.0, 0.0)))
            pair[index] += value
            out[model] = (pair[0], pair[1])
    return out


async def fetch_text(
    session: aiohttp.ClientSession,
    url: str,
    timeout_s: float,
    headers: Mapping[str, str] | None = None,
) -> str | None:
    """GET `url`; `None` on any failure (a missing signal, never an exception)."""
    timeout = aiohttp.ClientTimeout(total=timeout_s)
    try:
        async with session.get(url, timeout=timeout, headers=headers) as resp:
            if resp.status != 200:
                log.debug("scrape %s: HTTP %s", url, resp.status)
                return None
            return await resp.text()
    except (aiohttp.ClientError, TimeoutError, UnicodeDecodeError) as exc:
        log.debug("scrape %s failed: %s", url, exc)
        return None


class EngineScraper:
    """Scrapes engines and remembers each one's last sample, for TTFT over the interval.

    What is remembered about an engine not scraped for `forget_after_s` is dropped.
    """

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        timeout_s: float = 2.0,
        forget_after_s: float = 600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._session = session
        self._timeout_s = timeout_s
        self._forget_after_s = forget_after_s
        self._clock = clock
        self._last: dict[str, tuple[float, EngineSample]] = {}

    async def scrape(self, key: str, url: str) -> tuple[EngineSample, float | None] | None:
        """The engine's sample and the mean TTFT since the last scrape of the same `key`."""
        text = await fetch_text(self._session, url, self._timeout_s)
        if text is None:
            return None
        try:
            sample = parse_engine_metrics(text)
        except MetricsFormatError as exc:
            log.warning("engine metrics at %s unreadable: %s", url, exc)
            return None
        now = self._clock()
        before = self._last.get(key)
        ttft = ttft_between(before[1] if before else None, sample)
        self._last[key] = (now, sample)
        for old in [k for k, (at, _) in self._last.items() if now - at > self._forget_after_s]:
            del self._last[old]
        return sample, ttft


GatewayUrls = Callable[[], Awaitable[Sequence[str]]]
"""Where every gateway replica's `/metrics` is, found afresh at each tick."""


class GatewayDemandReader:
    """Sums the demand for a model over every gateway replica.

    Partial answers are worse than none (a missing replica would read as less demand), so
    if any replica cannot be read, or none is known, the demand is `None`: missing.
    """

    def __init__(
        self,
        session: aiohttp.ClientSession,
        urls: GatewayUrls,
        *,
        timeout_s: float = 2.0,
        reuse_for_s: float = 1.0,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """`headers`: e.g. the credential the gateways ask for on `/metrics`."""
        self._session = session
        self._headers = headers
        self._urls = urls
        self._timeout_s = timeout_s
        self._reuse_for_s = reuse_for_s
        self._cached: tuple[float, dict[str, tuple[float, float]] | None] | None = None

    async def read_all(self) -> dict[str, tuple[float, float]] | None:
        urls = await self._urls()
        if not urls:
            return None
        texts = await asyncio.gather(
            *(fetch_text(self._session, u, self._timeout_s, self._headers) for u in urls)
        )
        total: dict[str, tuple[float, float]] = {}
        for url, text in zip(urls, texts, strict=True):
            if text is None:
                return None
            try:
                demand = parse_gateway_demand(text)
            except MetricsFormatError as exc:
                log.warning("gateway metrics at %s unreadable: %s", url, exc)
                return None
            for model, (in_flight, held) in demand.items():
                a, b = total.get(model, (0.0, 0.0))
                total[model] = (a + in_flight, b + held)
        return total

    async def demand(self, model: str, now: float) -> GatewayDemand | None:
        """The model's demand at `now`; one scrape serves every model for `reuse_for_s`."""
        if self._cached is not None and 0 <= now - self._cached[0] < self._reuse_for_s:
            total = self._cached[1]
        else:
            total = await self.read_all()
            self._cached = (now, total)
        if total is None:
            return None
        in_flight, held = total.get(model, (0.0, 0.0))
        return GatewayDemand(in_flight=round(in_flight), held=round(held), observed_at=now)
