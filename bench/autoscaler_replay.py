"""Replay a production LLM trace on a simulated fleet: Hoist's autoscaler vs an HPA baseline.

    .venv/bin/python bench/autoscaler_replay.py [--trace PATH] [--speedup 1] [--write]

A discrete-event simulation (virtual time, no sockets, runs in seconds). Each request of the
trace arrives at its recorded time with its recorded prompt and output lengths. The gateway
routes it to the least-loaded ready replica; with no ready replica it holds the request
until one is ready. Replicas take `cold_start_s` to become ready after they are asked for
and cost GPU time from that moment until they are gone. A removed replica stops taking new
requests and drains what it has.

Service model (documented, deliberately simple; the engine simulator's latency model had
not landed when this was written): a replica runs at most `slots` requests at once (the
engine's batch), FIFO-queues the rest, and a request occupies its slot for
`overhead + prompt / prefill_rate + output * tpot` seconds. TTFT = queueing (in the gateway
and the engine) + overhead + prompt / prefill_rate. Defaults: 8 slots, 8,000 prompt tokens/s,
25 ms per output token, 20 ms overhead, 60 s cold start: roughly a 7-8B model on one
data-centre GPU with a conservative batch; the ratios between the policies are the result,
not the absolute numbers.

Policies, both with the same concurrency target per replica and bounds [1, max]:
- hoist: `control_plane.autoscaler.algorithm.recommend`, ticking every 2 s, with engine
  signals (running, waiting, TTFT) and the gateway's demand (in-flight + held).
- hpa: the Kubernetes HPA algorithm on average concurrency per ready pod: 15 s sync, 10 %
  tolerance, unready pods counted as idle when scaling up, scale-up limited to
  max(100 %, 4 pods) per sync, 5-minute scale-down stabilization (highest recommendation
  of the last 300 s).

Trace: the Azure LLM inference trace 2023 (Azure/AzurePublicDataset, CC-BY 4.0; Patel et
al., "Splitwise: Efficient generative LLM inference using phase splitting", ISCA 2024).
"""

from __future__ import annotations

import argparse
import csv
import heapq
import math
import platform
import sys
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from control_plane.autoscaler.algorithm import (
    GatewayDemand,
    ReplicaSignals,
    ScalingInput,
    ScalingPolicy,
    ScalingState,
    recommend,
)
from data_plane.inference.simulator.engine_core import EngineCore, SimRequest
from data_plane.inference.simulator.profiles import LatencyProfile, builtin_profiles

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_TRACE = ROOT / ".." / "shared" / "data" / "traces" / "azure_llm_2023_conv.csv"
RESULTS = ROOT / "docs" / "benchmarks.md"
SECTION = "## Autoscaler: trace replay"


@dataclass(frozen=True)
class Request:
    arrival: float
    prompt: int
    output: int


@dataclass(frozen=True)
class ServiceModel:
    slots: int = 8
    prefill_tokens_per_s: float = 8000.0
    tpot_s: float = 0.025
    overhead_s: float = 0.02
    cold_start_s: float = 60.0

    def ttft(self, r: Request) -> float:
        return self.overhead_s + r.prompt / self.prefill_tokens_per_s

    def service(self, r: Request) -> float:
        return self.ttft(r) + r.output * self.tpot_s


def load_trace(path: Path, speedup: float) -> list[Request]:
    """Arrival offsets (seconds from the first request, divided by `speedup`) and lengths."""
    if not path.is_file():
        raise SystemExit(
            f"trace not found: {path}\n"
            "This benchmark replays the Azure LLM inference trace 2023 (conversation). "
            "Put azure_llm_2023_conv.csv there or pass --trace PATH."
        )
    out: list[Request] = []
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        t0: datetime | None = None
        for row in reader:
            at = datetime.fromisoformat(row["TIMESTAMP"].strip()[:26])
            t0 = t0 or at
            out.append(
                Request(
                    arrival=(at - t0).total_seconds() / speedup,
                    prompt=int(row["ContextTokens"]),
                    output=max(1, int(row["GeneratedTokens"])),
                )
            )
    out.sort(key=lambda r: r.arrival)
    return out


@dataclass
class Replica:
    id: int
    created: float
    ready_at: float | None = None
    gone_at: float | None = None
    draining: bool = False
    running: int = 0
    queue: deque[int] = field(default_factory=deque)
    ttfts: list[float] = field(default_factory=list)
    """TTFTs of requests that got their first token since the last scrape."""
    core: EngineCore | None = None
    """The engine simulator's core (`--service engine`); `None`: the queueing model."""
    stepping: bool = False

    @property
    def n_running(self) -> int:
        return self.core.num_running if self.core else self.running

    @property
    def n_waiting(self) -> int:
        return self.core.num_waiting if self.core else len(self.queue)

    @property
    def ready(self) -> bool:
        return self.ready_at is not None and not self.draining and self.gone_at is None

    @property
    def loading(self) -> bool:
        return self.ready_at is None and self.gone_at is None

    @property
    def load(self) -> int:
        return self.n_running + self.n_waiting


@dataclass
class Fleet:
    """The replicas, the gateway's held requests, and what the policies can observe."""

    model: ServiceModel
    replicas: list[Replica] = field(default_factory=list)
    held: deque[int] = field(default_factory=deque)

    def active(self) -> list[Replica]:
        """Replicas that count toward the replica count (loading or ready, not draining)."""
        return [r for r in self.replicas if r.gone_at is None and not r.draining]


class Policy(Protocol):
    name: str
    period_s: float

    def desired(self, now: float, fleet: Fleet, current: int) -> int: ...


@dataclass
class HoistPolicy:
    policy: ScalingPolicy
    period_s: float = 2.0
    name: str = "hoist"
    state: ScalingState = field(default_factory=ScalingState)

    def desired(self, now: float, fleet: Fleet, current: int) -> int:
        signals = []
        for r in fleet.replicas:
            if r.gone_at is not None or r.draining:
                continue
            ttft = sum(r.ttfts) / len(r.ttfts) if r.ttfts else None
            r.ttfts.clear()
            signals.append(
                ReplicaSignals(
                    name=str(r.id),
                    ready=r.ready,
                    loading=r.loading,
                    running=float(r.n_running),
                    waiting=float(r.n_waiting),
                    kv_cache_usage=r.core.kv.usage if r.core else None,
                    ttft_seconds=ttft,
                    observed_at=now if r.ready else None,
                )
            )
        in_flight = sum(r.load for r in fleet.replicas if r.gone_at is None)
        demand = GatewayDemand(in_flight=in_flight, held=len(fleet.held), observed_at=now)
        rec = recommend(ScalingInput(now, current, tuple(signals), demand, self.policy), self.state)
        self.state = rec.state
        return rec.desired_replicas


@dataclass
class HpaPolicy:
    """The Kubernetes HPA's replica calculation on a per-pod average concurrency metric."""

    target: float
    min_replicas: int
    max_replicas: int
    period_s: float = 15.0
    tolerance: float = 0.1
    stabilization_s: float = 300.0
    name: str = "hpa"
    recent: list[tuple[float, int]] = field(default_factory=list)

    def desired(self, now: float, fleet: Fleet, current: int) -> int:
        ready = [r for r in fleet.replicas if r.ready]
        unready = [r for r in fleet.active() if not r.ready]
        if ready:
            usage = sum(r.load for r in ready)
            ratio = usage / len(ready) / self.target
            if abs(ratio - 1) <= self.tolerance:
                proposal = current
            elif ratio > 1 and unready:
                # Unready pods count as using nothing when scaling up (as the HPA does).
                n = len(ready) + len(unready)
                new_ratio = usage / n / self.target
                proposal = current if new_ratio <= 1 + self.tolerance else math.ceil(new_ratio * n)
            else:
                proposal = math.ceil(ratio * len(ready))
        else:
            proposal = current  # no metrics: the HPA does nothing
        proposal = max(self.min_replicas, min(self.max_replicas, proposal))
        self.recent = [(t, n) for t, n in self.recent if now - t < self.stabilization_s]
        self.recent.append((now, proposal))
        if proposal < current:
            proposal = max(n for _, n in self.recent)
        proposal = min(proposal, max(2 * current, current + 4))
        return max(self.min_replicas, min(self.max_replicas, proposal))


@dataclass
class SchedulePolicy:
    """A fixed schedule, known in advance: `before` replicas until `at`, then `after`.

    Not an autoscaler: the oracle's search space (`best_schedule`). With `at` at the end of
    the warm-up it is a constant fleet."""

    before: int
    at: float
    after: int
    period_s: float = 2.0
    name: str = "schedule"

    def desired(self, now: float, fleet: Fleet, current: int) -> int:
        return self.after if now >= self.at else self.before


def best_schedule(
    requests: list[Request],
    model: ServiceModel,
    *,
    start: int,
    warmup: float,
    slo: float,
    step_s: float,
    hpa: Result,
) -> tuple[SchedulePolicy, Result] | None:
    """The cheapest schedule with at most one change that serves the trace with at least
    the HPA's SLO attainment; `None` when none does.

    Perfect foresight, searched on a grid: every size from the fewest replicas whose slots
    hold the mean load to the HPA's peak, switched to at the end of the warm-up or every
    `step_s` after it. Where the HPA made at most two changes, what this costs bounds from
    below what any autoscaler making fewer changes than the HPA could reach on this fleet
    model (to the grid's resolution)."""
    end = requests[-1].arrival
    times = [warmup + k * step_s for k in range(int((end - warmup) / step_s) + 1)]
    measured = [r for r in requests if r.arrival >= warmup]
    busy = sum(model.service(r) for r in measured) / max(1e-9, end - warmup)
    best: tuple[SchedulePolicy, Result] | None = None
    for after in range(max(1, int(busy // model.slots)), hpa.peak + 1):
        for at in times:
            policy = SchedulePolicy(start, at, after)
            result = simulate(requests, policy, model, start, warmup)
            if result.attainment(slo) + 1e-12 < hpa.attainment(slo):
                continue
            if best is None or result.replica_seconds < best[1].replica_seconds:
                best = (policy, result)
    return best


@dataclass
class Result:
    policy: str
    ttfts: list[float]
    replica_seconds: float
    changes: int
    peak: int
    duration: float

    def attainment(self, target: float) -> float:
        return sum(1 for t in self.ttfts if t <= target) / len(self.ttfts)

    def percentile(self, q: float) -> float:
        s = sorted(self.ttfts)
        return s[min(len(s) - 1, int(q * len(s)))]


def _result(
    policy: Policy,
    *,
    requests: list[Request],
    ttft: list[float | None],
    fleet: Fleet,
    warmup: float,
    finish: float,
    changes: int,
    peak: int,
) -> Result:
    """What a run cost (replica-seconds after the warm-up) and achieved (TTFTs after it)."""
    cost = sum(
        max(0.0, (r.gone_at if r.gone_at is not None else finish) - max(r.created, warmup))
        for r in fleet.replicas
    )
    if any(t is None for t in ttft):
        raise RuntimeError("some requests never got a first token")
    done = [t for r, t in zip(requests, ttft, strict=True) if t is not None and r.arrival >= warmup]
    return Result(policy.name, done, cost, changes, peak, finish - warmup)


def simulate(
    requests: list[Request], policy: Policy, model: ServiceModel, start: int, warmup: float
) -> Result:
    """Run the trace through a fleet scaled by `policy`; returns what it cost and achieved.

    For the first `warmup` seconds the fleet stays at `start` ready replicas: the policy
    observes (its windows fill) but does not act. TTFT, cost and changes count from then.
    """
    fleet = Fleet(model)
    events: list[tuple[float, int, str, int]] = []
    seq = iter(range(sys.maxsize))
    ttft: list[float | None] = [None] * len(requests)

    def push(at: float, kind: str, arg: int) -> None:
        heapq.heappush(events, (at, next(seq), kind, arg))

    def add_replica(now: float) -> None:
        r = Replica(id=len(fleet.replicas), created=now)
        fleet.replicas.append(r)
        push(now + model.cold_start_s, "ready", r.id)

    def start_service(now: float, r: Replica, i: int) -> None:
        r.running += 1
        t = now - requests[i].arrival + model.ttft(requests[i])
        ttft[i] = t
        r.ttfts.append(t)
        push(now + model.service(requests[i]), "done", r.id)

    def route(now: float, i: int) -> None:
        ready = [r for r in fleet.replicas if r.ready]
        if not ready:
            fleet.held.append(i)
            return
        r = min(ready, key=lambda x: x.load)
        if r.running < model.slots:
            start_service(now, r, i)
        else:
            r.queue.append(i)

    def retire_if_drained(now: float, r: Replica) -> None:
        if r.draining and r.load == 0 and r.gone_at is None:
            r.gone_at = now

    def scale_to(now: float, n: int) -> None:
        active = fleet.active()
        for _ in range(n - len(active)):
            add_replica(now)
        surplus = len(active) - n
        # Like a ReplicaSet: not-ready replicas go first, then the least loaded.
        for r in sorted(active, key=lambda x: (x.ready_at is not None, x.load))[: max(0, surplus)]:
            r.draining = True
            if r.ready_at is None:
                r.gone_at = now
            retire_if_drained(now, r)

    for _ in range(start):
        fleet.replicas.append(Replica(id=len(fleet.replicas), created=0.0, ready_at=0.0))
    for i, req in enumerate(requests):
        push(req.arrival, "arrive", i)
    end = requests[-1].arrival
    push(warmup % policy.period_s, "tick", 0)
    changes = 0
    peak = start
    current = start
    while events:
        now, _, kind, arg = heapq.heappop(events)
        if kind == "arrive":
            route(now, arg)
        elif kind == "done":
            r = fleet.replicas[arg]
            r.running -= 1
            if r.queue:
                start_service(now, r, r.queue.popleft())
            retire_if_drained(now, r)
        elif kind == "ready":
            r = fleet.replicas[arg]
            if r.gone_at is None:
                r.ready_at = now
                while fleet.held:
                    route(now, fleet.held.popleft())
        elif kind == "tick" and (now <= end or fleet.held):
            n = policy.desired(now, fleet, current)
            # During the warm-up the policy observes (fills its windows) but does not act.
            if now >= warmup and n != current:
                changes += 1
                scale_to(now, n)
                current = n
                peak = max(peak, n)
            push(now + policy.period_s, "tick", 0)
    return _result(
        policy,
        requests=requests,
        ttft=ttft,
        fleet=fleet,
        warmup=warmup,
        finish=max(now, end),
        changes=changes,
        peak=peak,
    )


def simulate_engines(
    requests: list[Request],
    policy: Policy,
    profile: LatencyProfile,
    *,
    start: int,
    warmup: float,
    cold_start_s: float,
) -> Result:
    """As `simulate`, with each replica running the engine simulator's core in virtual time.

    Continuous batching over a paged KV cache priced by the simulator's `LatencyProfile`;
    TTFT is when the first output token exists. Prefix caching is off (the trace has no
    prompt text, so any shared prefix would be invented).
    """
    fleet = Fleet(ServiceModel(cold_start_s=cold_start_s))
    events: list[tuple[float, int, str, int]] = []
    seq = iter(range(sys.maxsize))
    ttft: list[float | None] = [None] * len(requests)
    capacity = profile.num_gpu_blocks * profile.block_size
    max_len = min(capacity, 32_768)

    def push(at: float, kind: str, arg: int) -> None:
        heapq.heappush(events, (at, next(seq), kind, arg))

    def new_replica(now: float, *, ready: bool) -> Replica:
        core = EngineCore(profile, max_model_len=max_len, enable_prefix_caching=False)
        r = Replica(id=len(fleet.replicas), created=now, ready_at=now if ready else None)
        r.core = core
        fleet.replicas.append(r)
        if not ready:
            push(now + cold_start_s, "ready", r.id)
        return r

    def route(now: float, i: int) -> None:
        ready = [r for r in fleet.replicas if r.ready]
        if not ready:
            fleet.held.append(i)
            return
        r = min(ready, key=lambda x: x.load)
        req = requests[i]
        output = min(req.output, max_len - 1)
        prompt = max(1, min(req.prompt, max_len - output))
        assert r.core is not None
        r.core.add(SimRequest(str(i), range(prompt), range(output), now, max_tokens=output))
        if not r.stepping:
            r.stepping = True
            push(now, "step", r.id)

    def retire_if_drained(now: float, r: Replica) -> None:
        assert r.core is not None
        if r.draining and not r.core.has_work and r.gone_at is None:
            r.gone_at = now

    def step(now: float, r: Replica) -> None:
        assert r.core is not None
        result = r.core.step(now)
        if result.idle:
            r.stepping = False
            retire_if_drained(now, r)
            return
        for sim_request, index in result.tokens:
            if index == 0:
                i = int(sim_request.request_id)
                ttft[i] = result.end - requests[i].arrival
                r.ttfts.append(ttft[i] or 0.0)
        push(result.end, "step", r.id)

    def scale_to(now: float, n: int) -> None:
        active = fleet.active()
        for _ in range(n - len(active)):
            new_replica(now, ready=False)
        surplus = max(0, len(active) - n)
        for r in sorted(active, key=lambda x: (x.ready_at is not None, x.load))[:surplus]:
            r.draining = True
            if r.ready_at is None:
                r.gone_at = now
            retire_if_drained(now, r)

    for _ in range(start):
        new_replica(0.0, ready=True)
    for i, req in enumerate(requests):
        push(req.arrival, "arrive", i)
    end = requests[-1].arrival
    push(warmup % policy.period_s, "tick", 0)
    changes, peak, current, now = 0, start, start, 0.0
    while events:
        now, _, kind, arg = heapq.heappop(events)
        if kind == "arrive":
            route(now, arg)
        elif kind == "step":
            step(now, fleet.replicas[arg])
        elif kind == "ready":
            r = fleet.replicas[arg]
            if r.gone_at is None:
                r.ready_at = now
                while fleet.held:
                    route(now, fleet.held.popleft())
        elif kind == "tick" and (now <= end or fleet.held):
            n = policy.desired(now, fleet, current)
            # During the warm-up the policy observes (fills its windows) but does not act.
            if now >= warmup and n != current:
                changes += 1
                scale_to(now, n)
                current = n
                peak = max(peak, n)
            push(now + policy.period_s, "tick", 0)
    return _result(
        policy,
        requests=requests,
        ttft=ttft,
        fleet=fleet,
        warmup=warmup,
        finish=max(now, end),
        changes=changes,
        peak=peak,
    )


def policies(
    args: argparse.Namespace, target: float, ttft_target: float
) -> Iterator[Callable[[], Policy]]:
    hoist = ScalingPolicy(
        min_replicas=1,
        max_replicas=args.max_replicas,
        target_concurrency=target,
        target_ttft_seconds=ttft_target * args.ttft_margin,
        stable_window_seconds=60,
        panic_window_seconds=6,
        scale_down_delay_seconds=args.scale_down_delay,
        max_scale_up_step=4,
        max_scale_down_step=args.down_step,
    )
    # The same autoscaler leaning towards the SLO: a shorter window reacts sooner, a
    # longer scale-down delay keeps headroom longer.
    slo_leaning = replace(hoist, stable_window_seconds=30, scale_down_delay_seconds=300)
    yield lambda: HpaPolicy(target, 1, args.max_replicas)
    yield lambda: HoistPolicy(hoist)
    yield lambda: HoistPolicy(slo_leaning, name="hoist-30s/300s")


def verdict_line(sp: float, base: Result, ours: Result, args: argparse.Namespace) -> str:
    att = ours.attainment(args.ttft_target) - base.attainment(args.ttft_target)
    cost = ours.replica_seconds / base.replica_seconds
    missed = [
        what
        for what, ok in (
            ("attainment", att >= -1e-9),
            ("replica-seconds", cost <= 0.8),
            ("fewer changes", ours.changes < base.changes),
        )
        if not ok
    ]
    verdict = "target met" if not missed else f"target not met: {', '.join(missed)}"
    bound = args.bounds[sp]
    return (
        f"- {sp:g}x, {ours.policy}: replica-seconds {cost:.2f}x, scaling changes {ours.changes} vs "
        f"{base.changes}, SLO attainment {att * 100:+.2f} points ({verdict}). "
        f"Floor at the target (busy seconds / {args.target:g}): {bound:,.0f} "
        f"replica-seconds; HPA {base.replica_seconds / bound:.2f}x of it, "
        f"{ours.policy} {ours.replica_seconds / bound:.2f}x; 0.8x of the HPA would be "
        f"{0.8 * base.replica_seconds / bound:.2f}x."
    )


def report(runs: list[tuple[float, int, list[Result]]], args: argparse.Namespace) -> str:
    speedups = " ".join(f"{sp:g}" for sp, _, _ in runs)
    _, n, first = runs[0]
    lines = [
        f"Command: `.venv/bin/python bench/autoscaler_replay.py --speedup {speedups} "
        f"--target {args.target:g} --ttft-target {args.ttft_target:g} "
        f"--scale-down-delay {args.scale_down_delay:g}{' --oracle' if args.oracle else ''} --write`; "
        f"{datetime.now(UTC):%Y-%m-%d}, {platform.machine()}, Python "
        f"{platform.python_version()}; virtual time, deterministic (the numbers do not "
        "depend on the machine).",
        "",
        f"Trace: `azure_llm_2023_conv.csv`, {n} requests over about "
        f"{first[0].duration / 60 + args.warmup / 60:.0f} min at 1x, replayed at speed-ups "
        f"{speedups} (arrival times divided by the speed-up). Azure LLM inference trace 2023 "
        '(Azure/AzurePublicDataset, CC-BY 4.0; Patel et al., "Splitwise: Efficient generative '
        'LLM inference using phase splitting", ISCA 2024).',
        "",
        "Fleet: a discrete-event simulation with a simple queueing model per replica (the "
        "engine simulator's model follows below): "
        f"{args.model.slots} concurrent slots, "
        f"{args.model.prefill_tokens_per_s:g} prompt tokens/s, "
        f"{args.model.tpot_s * 1000:g} ms per output token, "
        f"{args.model.cold_start_s:g} s cold start (cost counts from the request to scale up); "
        "least-load routing; the gateway holds requests while no replica is ready. The first "
        f"{args.warmup:g} s run at a fixed fleet sized by Little's law, watched but not "
        "acted on by the policies, and are not measured. "
        f"Both policies target {args.target:g} in-flight requests per replica, bounds "
        f"[1, {args.max_replicas}]. Hoist: 2 s tick, 60 s stable / 6 s panic window, "
        f"{args.scale_down_delay:g} s scale-down delay, 10 % tolerance, TTFT target "
        f"{args.ttft_target * args.ttft_margin:g} s; hoist-30s/300s is the same with a 30 s "
        "stable window and a 300 s scale-down delay. HPA: 15 s sync, 10 % tolerance, "
        "5 min scale-down stabilization. SLO: TTFT <= "
        f"{args.ttft_target:g} s.",
        "",
        f"| speed-up | policy | TTFT <= {args.ttft_target:g} s | TTFT p50 | TTFT p99 "
        "| replica-seconds | scaling changes | peak replicas |",
        "|---|---|---|---|---|---|---|---|",
    ]
    ratios = []
    for sp, _, results in runs:
        for r in results:
            lines.append(
                f"| {sp:g}x | {r.policy} | {r.attainment(args.ttft_target) * 100:.1f} % "
                f"| {r.percentile(0.5):.2f} s | {r.percentile(0.99):.2f} s "
                f"| {r.replica_seconds:,.0f} | {r.changes} | {r.peak} |"
            )
        base, *ours_all = results
        for ours in ours_all:
            ratios.append(verdict_line(sp, base, ours, args))
    lines += [
        "",
        "Hoist against the HPA (target: attainment >= HPA's, <= 0.8x replica-seconds, "
        "fewer changes):",
        "",
        *ratios,
        "",
        "Reading: the floor is what a fleet running exactly at the target all the time "
        "would cost (no headroom for bursts, no cold starts). The HPA pays most where the "
        "load moves (it holds its highest recommendation for 5 minutes); where the "
        "compressed trace is smooth relative to the fleet, the HPA is already close to the "
        "floor, and 0.8x of it would mean running hotter than the target.",
    ]
    if args.oracles:
        lines += ["", *oracle_lines(runs, args)]
    return "\n".join(lines) + "\n"


def oracle_lines(
    runs: list[tuple[float, int, list[Result]]], args: argparse.Namespace
) -> list[str]:
    """What perfect foresight reaches with at most one change (`best_schedule`)."""
    out = [
        "With perfect foresight (`--oracle`): the cheapest schedule of at most one change "
        "(any size from the fewest replicas whose slots hold the mean load to the HPA's peak, "
        "switched at the end of the warm-up or at any later minute of the trace) that keeps "
        "the HPA's SLO attainment:",
        "",
    ]
    for sp, _, results in runs:
        hpa = results[0]
        found = args.oracles.get(sp)
        if found is None:
            out.append(f"- {sp:g}x: none reaches the HPA's attainment.")
            continue
        policy, result = found
        when = (
            "from the end of the warm-up"
            if policy.at <= args.warmup
            else f"from {policy.at * sp / 60:.0f} min (1x time)"
        )
        ratio = result.replica_seconds / hpa.replica_seconds
        if hpa.changes == 0:
            meaning = " The HPA made no change, so no autoscaler can make fewer."
        elif hpa.changes <= 2 and ratio > 0.8:
            meaning = (
                f" Fewer changes than the HPA means at most {hpa.changes - 1} here, so no "
                "autoscaler, however it decides, reaches 0.8x at this speed-up (to the grid's "
                "resolution)."
            )
        elif hpa.changes <= 2:
            meaning = " Reachable only by switching to that size at the right minute."
        else:
            meaning = (
                f" Up to {hpa.changes - 1} changes are allowed here, so this is not a bound "
                "on what an autoscaler could reach."
            )
        out.append(
            f"- {sp:g}x: {policy.after} replica{'s' if policy.after != 1 else ''} {when}: "
            f"{ratio:.2f}x the HPA's "
            f"replica-seconds ({result.changes} change{'s' if result.changes != 1 else ''} "
            f"vs the HPA's {hpa.changes}).{meaning}"
        )
    return out


def engine_report(args: argparse.Namespace) -> str:
    """The same comparison on a fleet of engine-simulator cores (continuous batching)."""
    profile = builtin_profiles()[args.profile]
    slo = args.engine_ttft_target
    lines = [
        "### On the engine simulator's latency model",
        "",
        f"The same replay with each replica running Hoist's engine simulator core "
        f"(`data_plane.inference.simulator.engine_core`, profile `{profile.name}`: "
        f"{profile.description}; continuous batching over a paged KV cache, prefix caching "
        f"off) instead of the queueing model; {args.engine_start} replicas during the "
        f"warm-up, {args.cold_start:g} s cold start. Both policies target "
        f"{args.engine_target:g} in-flight requests per replica; Hoist's TTFT target "
        f"{slo * args.ttft_margin:g} s. SLO: TTFT <= {slo:g} s. Command: "
        f"`... --engine-speedup {' '.join(f'{x:g}' for x in args.engine_speedup)} "
        f"--engine-target {args.engine_target:g} --engine-ttft-target {slo:g}`.",
        "",
        f"| speed-up | policy | TTFT <= {slo:g} s | TTFT p50 | TTFT p99 | replica-seconds "
        "| scaling changes | peak replicas |",
        "|---|---|---|---|---|---|---|---|",
    ]
    verdicts = []
    for speedup in args.engine_speedup:
        requests = load_trace(args.trace, speedup)
        results = [
            simulate_engines(
                requests,
                make(),
                profile,
                start=args.engine_start,
                warmup=args.warmup,
                cold_start_s=args.cold_start,
            )
            for make in policies(args, args.engine_target, slo)
        ]
        for r in results:
            lines.append(
                f"| {speedup:g}x | {r.policy} | {r.attainment(slo) * 100:.2f} % "
                f"| {r.percentile(0.5):.2f} s | {r.percentile(0.99):.2f} s "
                f"| {r.replica_seconds:,.0f} | {r.changes} | {r.peak} |"
            )
        base, *ours_all = results
        for ours in ours_all:
            att = ours.attainment(slo) - base.attainment(slo)
            verdicts.append(
                f"- {speedup:g}x, {ours.policy}: replica-seconds "
                f"{ours.replica_seconds / base.replica_seconds:.2f}x, scaling changes "
                f"{ours.changes} vs {base.changes}, SLO attainment {att * 100:+.2f} points."
            )
    return "\n".join([*lines, "", *verdicts]) + "\n"


def write_section(text: str) -> None:
    doc = RESULTS.read_text()
    start = doc.index(SECTION) + len(SECTION)
    nxt = doc.find("\n## ", start)
    end = len(doc) if nxt < 0 else nxt
    RESULTS.write_text(doc[:start] + "\n\n" + text + doc[end:])


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--trace", type=Path, default=DEFAULT_TRACE)
    ap.add_argument(
        "--speedup", type=float, nargs="+", default=[1.0, 2.0, 4.0], help="time compression"
    )
    ap.add_argument("--target", type=float, default=6.0, help="in-flight requests per replica")
    ap.add_argument("--ttft-target", type=float, default=2.0, help="SLO: seconds to first token")
    ap.add_argument("--scale-down-delay", type=float, default=180.0)
    ap.add_argument("--down-step", type=int, default=1)
    ap.add_argument("--ttft-margin", type=float, default=1.0, help="hoist TTFT target / SLO")
    ap.add_argument("--max-replicas", type=int, default=40)
    ap.add_argument(
        "--start", type=int, default=0, help="replicas during the warm-up (0: Little's law)"
    )
    ap.add_argument("--warmup", type=float, default=120.0, help="seconds not measured")
    ap.add_argument("--cold-start", type=float, default=60.0)
    ap.add_argument(
        "--engine-speedup", type=float, nargs="*", default=[4.0], help="none: skip that part"
    )
    ap.add_argument("--engine-target", type=float, default=32.0)
    ap.add_argument("--engine-ttft-target", type=float, default=1.0)
    ap.add_argument("--engine-start", type=int, default=4)
    ap.add_argument(
        "--profile", default="llama-3.1-8b-a100-40gb", choices=sorted(builtin_profiles())
    )
    ap.add_argument(
        "--oracle",
        action="store_true",
        help="also search the cheapest one-change schedule that matches the HPA (minutes)",
    )
    ap.add_argument("--write", action="store_true", help="write the results to benchmarks.md")
    args = ap.parse_args(argv)
    if min(args.speedup) <= 0 or args.target <= 0 or args.ttft_target <= 0 or args.start < 0:
        ap.error("--speedup, --target, --ttft-target must be positive, --start >= 0")
    args.model = ServiceModel(cold_start_s=args.cold_start)
    runs = []
    args.bounds = {}
    args.oracles = {}
    for speedup in args.speedup:
        requests = load_trace(args.trace, speedup)
        if not requests:
            raise SystemExit(f"trace is empty: {args.trace}")
        start = args.start
        if start == 0:  # what the warm-up's load needs at the target (Little's law)
            early = [r for r in requests if r.arrival < args.warmup] or requests[:1]
            busy = sum(args.model.service(r) for r in early) / max(args.warmup, 1.0)
            start = max(1, math.ceil(busy / args.target))
        results = [
            simulate(requests, make(), args.model, start, args.warmup)
            for make in policies(args, args.target, args.ttft_target)
        ]
        if args.oracle:
            args.oracles[speedup] = best_schedule(
                requests,
                args.model,
                start=start,
                warmup=args.warmup,
                slo=args.ttft_target,
                step_s=60.0 / speedup,
                hpa=results[0],
            )
        measured = [r for r in requests if r.arrival >= args.warmup]
        args.bounds[speedup] = sum(args.model.service(r) for r in measured) / args.target
        runs.append((speedup, len(requests), results))
    text = report(runs, args)
    if args.engine_speedup:
        text += "\n" + engine_report(args)
    print(text)
    if args.write:
        write_section(text)


if __name__ == "__main__":
    main()
