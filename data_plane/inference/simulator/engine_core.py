"""The simulated engine: continuous batching over a paged KV cache, in virtual time.

`EngineCore.step(now)` does what one forward pass of vLLM's V1 engine does, minus the math:

1. Schedule, within a token budget (`max_num_batched_tokens`) and `max_num_seqs`:
   running requests first (a decode is one token; an unfinished prefill gets its next
   chunk), then waiting ones in arrival order. A waiting request first takes its cached
   prefix from the prefix cache, so only uncached tokens cost prefill time. A request needs
   KV blocks for all its tokens; when a running request cannot grow, the last running
   request is preempted (its blocks freed, recomputed later), and when a waiting one does
   not fit it stays queued. At most `max_loras` distinct adapters run in one step; a request
   for another adapter waits.
2. Price the step with the `LatencyProfile` (tokens, context read, adapters swapped in).
3. Advance: requests whose known tokens are all computed sample their next token, which
   exists at `now + duration`. Requests that reach their planned length finish and free
   their blocks.

Time is a float in seconds handed in by the caller; the core never reads a clock. Output
token ids are planned by the caller (`SimRequest.output_token_ids`), so the core only
decides *when* each one appears.
"""

from __future__ import annotations

import contextlib
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from data_plane.inference.simulator.kv_cache import BlockHash, KVCache, block_hashes
from data_plane.inference.simulator.lora_slots import LoraSlots
from data_plane.inference.simulator.profiles import LatencyProfile


@dataclass(eq=False)
class SimRequest:
    """One sequence in the engine (a request with `n` > 1 is `n` of these)."""

    request_id: str
    prompt_token_ids: Sequence[int]
    output_token_ids: Sequence[int]
    """The tokens it will produce, in order; their number is how many it produces."""
    arrival_time: float
    adapter: str | None = None
    cache_salt: str | None = None
    index: int = 0
    """The choice this sequence answers (for requests with `n` > 1)."""
    planned_finish: str = "length"
    """The finish reason when it reaches its planned length (`length` or `stop`)."""
    max_tokens: int = 0
    """The request's effective max_tokens (for metrics)."""

    num_computed_tokens: int = 0
    num_output_tokens: int = 0
    num_cached_tokens: int = 0
    """Prompt tokens served by the prefix cache at the first scheduling."""
    num_preemptions: int = 0
    first_scheduled_time: float | None = None
    first_token_time: float | None = None
    previous_token_time: float | None = None
    last_token_time: float | None = None
    finish_time: float | None = None
    aborted: bool = False
    _hashes: list[BlockHash] = field(default_factory=list, repr=False)

    @property
    def num_prompt_tokens(self) -> int:
        return len(self.prompt_token_ids)

    @property
    def num_tokens(self) -> int:
        """Tokens known so far: the prompt and the output sampled so far."""
        return len(self.prompt_token_ids) + self.num_output_tokens

    @property
    def finished(self) -> bool:
        return self.aborted or self.num_output_tokens >= len(self.output_token_ids)

    def tokens(self, begin: int, end: int) -> list[int]:
        """Known token ids in [begin, end)."""
        prompt_len = len(self.prompt_token_ids)
        if end <= prompt_len:
            return list(self.prompt_token_ids[begin:end])
        head = list(self.prompt_token_ids[begin:prompt_len]) if begin < prompt_len else []
        start = max(begin - prompt_len, 0)
        return head + list(self.output_token_ids[start : end - prompt_len])

    def hashes(self, block_size: int) -> list[BlockHash]:
        """Hashes of the full blocks of the known tokens (computed lazily, kept)."""
        full = self.num_tokens // block_size
        have = len(self._hashes)
        if have < full:
            parent = self._hashes[-1] if self._hashes else None
            self._hashes.extend(
                block_hashes(
                    self.tokens(have * block_size, full * block_size),
                    block_size,
                    adapter=self.adapter,
                    salt=self.cache_salt,
                    parent=parent,
                )
            )
        return self._hashes[:full]


@dataclass
class StepResult:
    """What one step did. Tokens and finishes take effect at `end`."""

    start: float
    duration: float
    tokens: list[tuple[SimRequest, int]]
    """(request, index of the output token it produced)."""
    finished: list[SimRequest]
    preempted: list[SimRequest]
    num_prefill_tokens: int
    num_decode_tokens: int
    swapped_in_adapters: int

    @property
    def end(self) -> float:
        return self.start + self.duration

    @property
    def idle(self) -> bool:
        return self.duration == 0.0


class EngineCore:
    """One simulated engine: scheduler, KV cache, LoRA slots. Pure and single-threaded."""

    def __init__(
        self,
        profile: LatencyProfile,
        *,
        max_loras: int = 1,
        max_model_len: int | None = None,
        enable_prefix_caching: bool = True,
    ) -> None:
        self.profile = profile
        self.max_model_len = max_model_len or profile.max_model_len
        capacity = profile.num_gpu_blocks * profile.block_size
        if capacity < self.max_model_len:
            raise ValueError(
                f"the KV cache holds {capacity} tokens, fewer than max_model_len "
                f"{self.max_model_len}; lower --max-model-len or raise --num-gpu-blocks-override"
            )
        self.kv = KVCache(
            num_blocks=profile.num_gpu_blocks,
            block_size=profile.block_size,
            enable_prefix_caching=enable_prefix_caching,
        )
        self.lora_slots = LoraSlots(max_loras)
        self.waiting: deque[SimRequest] = deque()
        self.running: list[SimRequest] = []
        self._by_id: dict[str, SimRequest] = {}
        self.num_preemptions = 0

    # -- intake --------------------------------------------------------------------------

    def add(self, request: SimRequest) -> None:
        """Queue a request. Precondition: prompt + output fit max_model_len, ids unique."""
        if request.request_id in self._by_id:
            raise ValueError(f"duplicate request id {request.request_id!r}")
        if not request.prompt_token_ids:
            raise ValueError("a request needs at least one prompt token")
        total = request.num_prompt_tokens + len(request.output_token_ids)
        if total > self.max_model_len:
            raise ValueError(f"{total} tokens exceed max_model_len {self.max_model_len}")
        self._by_id[request.request_id] = request
        self.waiting.append(request)

    def abort(self, request_id: str) -> None:
        """Drop a request wherever it is (client went away, stop string matched)."""
        request = self._by_id.pop(request_id, None)
        if request is None:
            return
        request.aborted = True
        if request in self.running:
            self.running.remove(request)
        else:
            with contextlib.suppress(ValueError):
                self.waiting.remove(request)
        self.kv.free(request_id)

    # -- observation ---------------------------------------------------------------------

    @property
    def has_work(self) -> bool:
        return bool(self.running or self.waiting)

    @property
    def num_running(self) -> int:
        return len(self.running)

    @property
    def num_waiting(self) -> int:
        return len(self.waiting)

    def running_adapters(self) -> list[str]:
        return sorted({r.adapter for r in self.running if r.adapter})

    def waiting_adapters(self) -> list[str]:
        return sorted({r.adapter for r in self.waiting if r.adapter})

    # -- the step ------------------------------------------------------------------------

    def _preempt_last(self) -> SimRequest:
        victim = self.running.pop()
        self.kv.free(victim.request_id)
        victim.num_computed_tokens = 0
        victim.num_preemptions += 1
        self.num_preemptions += 1
        self.waiting.appendleft(victim)
        return victim

    def _schedule(self) -> tuple[list[tuple[SimRequest, int]], list[SimRequest]]:
        profile = self.profile
        budget = profile.max_num_batched_tokens
        scheduled: list[tuple[SimRequest, int]] = []
        preempted: list[SimRequest] = []
        adapters: set[str] = set()

        index = 0
        while index < len(self.running) and budget > 0:
            request = self.running[index]
            num_new = min(request.num_tokens - request.num_computed_tokens, budget)
            fits = True
            while not self.kv.allocate(request.request_id, request.num_computed_tokens + num_new):
                victim = self._preempt_last()
                preempted.append(victim)
                if victim is request:
                    fits = False
                    break
            if not fits:
                break
            scheduled.append((request, num_new))
            budget -= num_new
            if request.adapter:
                adapters.add(request.adapter)
            index += 1

        if preempted:
            return scheduled, preempted

        skipped: list[SimRequest] = []
        block_size = profile.block_size
        while self.waiting and budget > 0 and len(self.running) < profile.max_num_seqs:
            request = self.waiting[0]
            adapter = request.adapter
            if adapter and adapter not in adapters and len(adapters) >= self.lora_slots.max_loras:
                skipped.append(self.waiting.popleft())
                continue
            hits = self.kv.lookup(request.hashes(block_size), request.num_tokens)
            cached = len(hits) * block_size
            num_new = min(request.num_tokens - cached, budget)
            if not self.kv.allocate(request.request_id, cached + num_new, hits):
                break  # the KV cache is full: it waits
            self.kv.record_query(request.num_tokens, cached)
            if request.first_scheduled_time is None:
                request.num_cached_tokens = cached
            request.num_computed_tokens = cached
            self.waiting.popleft()
            self.running.append(request)
            scheduled.append((request, num_new))
            budget -= num_new
            if adapter:
                adapters.add(adapter)
        self.waiting.extendleft(reversed(skipped))
        return scheduled, preempted

    def _cache_computed(self, request: SimRequest, before: int, after: int) -> None:
        """Cache the request's blocks `before .. after-1`, now computed (and log them)."""
        block_size = self.kv.block_size
        hashes = request.hashes(block_size)
        new = self.kv.cache_blocks(request.request_id, hashes[before:after], before)
        if new and self.kv.events is not None:
            self.kv.events.stored_runs(
                hashes,
                [before + i for i in new],
                request.tokens,
                block_size,
                adapter=request.adapter,
                salt=request.cache_salt,
            )

    def step(self, now: float) -> StepResult:
        """Schedule and price one step starting at `now`; see the module docstring."""
        scheduled, preempted = self._schedule()
        if not scheduled:
            return StepResult(now, 0.0, [], [], preempted, 0, 0, 0)
        profile = self.profile
        block_size = profile.block_size
        num_tokens = 0
        num_decode = 0
        context = 0
        adapters: list[str] = []
        for request, num_new in scheduled:
            num_tokens += num_new
            context += request.num_computed_tokens + num_new
            if request.num_computed_tokens >= request.num_prompt_tokens:
                num_decode += num_new
            if request.adapter:
                adapters.append(request.adapter)
        swapped = self.lora_slots.activate(adapters) if adapters else 0
        duration = profile.step_time(
            num_tokens=num_tokens,
            context_tokens=context,
            with_lora=bool(adapters),
            swapped_in=swapped,
        )
        end = now + duration
        tokens: list[tuple[SimRequest, int]] = []
        finished: list[SimRequest] = []
        for request, num_new in scheduled:
            if request.first_scheduled_time is None:
                request.first_scheduled_time = now
            before = request.num_computed_tokens // block_size
            request.num_computed_tokens += num_new
            after = request.num_computed_tokens // block_size
            if after > before:
                self._cache_computed(request, before, after)
            if request.num_computed_tokens < request.num_tokens:
                continue  # a prefill chunk that is not the prompt's last
            tokens.append((request, request.num_output_tokens))
            request.num_output_tokens += 1
            if request.first_token_time is None:
                request.first_token_time = end
            request.previous_token_time = request.last_token_time
            request.last_token_time = end
            if request.num_output_tokens >= len(request.output_token_ids):
                request.finish_time = end
                finished.append(request)
        if finished:
            done = set(map(id, finished))
            self.running = [r for r in self.running if id(r) not in done]
            for request in finished:
                self.kv.free(request.request_id)
                del self._by_id[request.request_id]
        return StepResult(
            start=now,
            duration=duration,
            tokens=tokens,
            finished=finished,
            preempted=preempted,
            num_prefill_tokens=num_tokens - num_decode,
            num_decode_tokens=num_decode,
            swapped_in_adapters=swapped,
        )
