"""The engine shell: runs an `EngineCore` against the event loop's clock.

One asyncio task per engine steps the core: it asks the core for a step, sleeps until the
step's end (its duration divided by the time scale), then hands the step's tokens to the
requests' sinks and records metrics. Step deadlines are absolute (each step starts when the
previous one ended), so small wake-up delays do not accumulate into slower streams.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from data_plane.inference.simulator.engine_core import EngineCore, SimRequest, StepResult
from data_plane.inference.simulator.kv_events import KvEvent
from data_plane.inference.simulator.metrics import EngineMetrics
from data_plane.inference.simulator.profiles import LatencyProfile

# Steps are scheduled on absolute deadlines: when the host delays a wake-up (a busy CPU), the
# next steps start on time again, so the simulated GPU keeps its pace on average. Only when
# the loop falls further behind than this (seconds of wall time) does the schedule restart
# from now instead of replaying the missed steps back to back.
_MAX_LAG_S = 0.5


class Sink:
    """Where the tokens of one API request (all its choices) arrive, batched per step."""

    __slots__ = ("_events", "_waiter")

    def __init__(self) -> None:
        self._events: list[tuple[SimRequest, int]] = []
        self._waiter: asyncio.Future[None] | None = None

    def push(self, request: SimRequest, index: int) -> None:
        self._events.append((request, index))
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def next_batch(self) -> list[tuple[SimRequest, int]]:
        """The (sequence, output index) events since the last call; waits for at least one."""
        if not self._events:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        events, self._events = self._events, []
        return events


@dataclass
class LoadedAdapter:
    name: str
    path: str
    rank: int | None
    created: int


class SimEngine:
    """One simulated engine: the core, its stepping task, its adapters and metrics."""

    def __init__(
        self,
        *,
        profile: LatencyProfile,
        served_model_name: str,
        max_model_len: int,
        max_loras: int,
        max_lora_rank: int,
        enable_lora: bool,
        seed: int,
        time_scale: float,
        enable_prefix_caching: bool = True,
    ) -> None:
        if time_scale <= 0:
            raise ValueError("time_scale must be positive")
        self.profile = profile
        self.served_model_name = served_model_name
        self.max_model_len = max_model_len
        self.max_loras = max_loras
        self.max_lora_rank = max_lora_rank
        self.enable_lora = enable_lora
        self.seed = seed
        self.time_scale = time_scale
        self.core = EngineCore(
            profile,
            max_loras=max_loras,
            max_model_len=max_model_len,
            enable_prefix_caching=enable_prefix_caching,
        )
        self.metrics = EngineMetrics(
            model_name=served_model_name,
            max_model_len=max_model_len,
            max_loras=max_loras if enable_lora else None,
            block_size=profile.block_size,
            num_gpu_blocks=profile.num_gpu_blocks,
            enable_prefix_caching=enable_prefix_caching,
        )
        self.adapters: dict[str, LoadedAdapter] = {}
        self._sinks: dict[str, Sink] = {}
        self._ids = itertools.count()
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.publish_kv_events: Callable[[Sequence[KvEvent]], None] | None = None
        """Sends a step's KV-cache events (set with `core.kv.events` by the runner)."""

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"sim-{self.served_model_name}")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # -- time ----------------------------------------------------------------------------

    def now(self) -> float:
        """Simulated seconds (wall seconds times the time scale)."""
        return asyncio.get_running_loop().time() * self.time_scale

    async def sleep_simulated(self, seconds: float) -> None:
        if seconds > 0:
            await asyncio.sleep(seconds / self.time_scale)

    # -- requests ------------------------------------------------------------------------

    def next_request_id(self, prefix: str) -> str:
        return f"{prefix}-{next(self._ids)}"

    def submit(self, sequences: Sequence[SimRequest], sink: Sink, *, n: int) -> None:
        """Queue the sequences of one API request; their tokens go to `sink`."""
        for sequence in sequences:
            self.core.add(sequence)
            self._sinks[sequence.request_id] = sink
        for first in range(0, len(sequences), n):
            group = sequences[first : first + n]
            self.metrics.request_admitted(n=n, max_tokens=[s.max_tokens for s in group])
        self._wakeup.set()

    def finish_early(self, sequence: SimRequest, reason: str) -> None:
        """End a sequence before its planned length (a stop string, or the client left)."""
        if sequence.request_id not in self._sinks:
            return  # already finished
        self.core.abort(sequence.request_id)
        sequence.finish_time = sequence.last_token_time or self.now()
        self._finished(sequence, reason)

    def _finished(self, sequence: SimRequest, reason: str) -> None:
        self._sinks.pop(sequence.request_id, None)
        self.metrics.request_finished(sequence, reason, max_tokens=sequence.max_tokens)

    def refresh_metrics(self) -> None:
        core = self.core
        deferred = 0
        if self.enable_lora:
            running = set(core.running_adapters())
            if len(running) >= self.max_loras:
                deferred = sum(1 for r in core.waiting if r.adapter and r.adapter not in running)
        self.metrics.observe_scheduler(
            running=core.num_running,
            waiting=core.num_waiting,
            deferred=deferred,
            kv_usage=core.kv.usage,
            prefix_queries=core.kv.stats.queries,
            prefix_hits=core.kv.stats.hits,
            preemptions=core.num_preemptions,
            running_adapters=core.running_adapters(),
            waiting_adapters=core.waiting_adapters(),
        )

    # -- the stepping loop ---------------------------------------------------------------

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        scale = self.time_scale
        next_start = loop.time()
        while True:
            if not self.core.has_work:
                self.refresh_metrics()
                self._wakeup.clear()
                await self._wakeup.wait()
                next_start = loop.time()
            wall = loop.time()
            if wall - next_start > _MAX_LAG_S:
                next_start = wall
            result = self.core.step(next_start * scale)
            if result.idle:
                # Nothing can be scheduled until something changes (a request arrives or is
                # aborted); a lone request that never fits is refused at admission.
                self.refresh_metrics()
                self._wakeup.clear()
                await self._wakeup.wait()
                next_start = loop.time()
                continue
            end = next_start + result.duration / scale
            delay = end - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            self._deliver(result)
            next_start = end

    def _deliver(self, result: StepResult) -> None:
        metrics = self.metrics
        metrics.observe_step(result)
        sinks = self._sinks
        delivered = 0
        for sequence, index in result.tokens:
            sink = sinks.get(sequence.request_id)
            if sink is None:
                continue  # aborted while the step ran
            if index == 0:
                metrics.first_token(sequence)
            else:
                metrics.next_token(sequence)
            sink.push(sequence, index)
            delivered += 1
        metrics.tokens_generated(delivered)
        for sequence in result.finished:
            if sequence.request_id in sinks:
                self._finished(sequence, sequence.planned_finish)
        self.refresh_metrics()
        events = self.core.kv.events
        if events and self.publish_kv_events is not None:
            self.publish_kv_events(events.drain())
