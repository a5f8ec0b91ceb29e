"""Steady concurrent load on a gateway, with every request's outcome, for the fault suite
(tests/faults), bench/faults.py and bench/soak.py (which sends with `complete`).

    async with SteadyLoad(url, clients=20, streaming_share=0.5) as load:
        ...inject a fault...
    load.results  # one Outcome per request sent

Each client sends one request after another (a closed loop) on its own keep-alive session.
A streamed answer is `ok` when it ends with `data: [DONE]`, `error_event` when it ends with
an SSE error event in OpenAI's shape, `truncated` otherwise (an answer lost mid-way); a
request that got no HTTP answer at all is `no_answer`.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from dataclasses import dataclass, field
from types import TracebackType

import aiohttp
import orjson

OK = "ok"
ERROR_EVENT = "error_event"
TRUNCATED = "truncated"
NO_ANSWER = "no_answer"


@dataclass(frozen=True, slots=True)
class Outcome:
    stream: bool
    started: float
    """time.monotonic() when sent."""
    ended: float
    result: str
    """ok, error_event, truncated, no_answer, or http_<status>."""
    detail: str = ""

    @property
    def latency(self) -> float:
        return self.ended - self.started


@dataclass
class SteadyLoad:
    url: str
    clients: int = 20
    streaming_share: float = 0.5
    """Fraction of the clients that stream."""
    model: str = "sim"
    stream_tokens: int = 32
    plain_tokens: int = 8
    request_timeout_s: float = 60.0
    results: list[Outcome] = field(default_factory=list)
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _ids: itertools.count[int] = field(default_factory=itertools.count)

    async def __aenter__(self) -> SteadyLoad:
        streaming = round(self.clients * self.streaming_share)
        for i in range(self.clients):
            self._tasks.append(asyncio.create_task(self._client(stream=i < streaming)))
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def stop(self) -> None:
        """Let every client finish the request it has in flight, then end."""
        self._stop.set()
        if self._tasks:
            await asyncio.wait_for(asyncio.gather(*self._tasks), self.request_timeout_s + 10)
            self._tasks.clear()

    def between(self, start: float, end: float) -> list[Outcome]:
        """Requests sent in [start, end) (time.monotonic())."""
        return [o for o in self.results if start <= o.started < end]

    async def _client(self, *, stream: bool) -> None:
        timeout = aiohttp.ClientTimeout(total=self.request_timeout_s)
        async with aiohttp.ClientSession(timeout=timeout) as http:
            while not self._stop.is_set():
                self.results.append(await self._one(http, stream))

    async def _one(self, http: aiohttp.ClientSession, stream: bool) -> Outcome:
        n = next(self._ids)
        body = {
            "model": self.model,
            "prompt": f"request {n}: tell me something",
            "max_tokens": self.stream_tokens if stream else self.plain_tokens,
            "stream": stream,
        }
        return await complete(http, self.url, body)


async def complete(http: aiohttp.ClientSession, url: str, body: dict[str, object]) -> Outcome:
    """POST `body` to `url`/v1/completions and read the whole answer: its Outcome."""
    stream = bool(body.get("stream"))
    started = time.monotonic()
    try:
        async with http.post(url + "/v1/completions", data=orjson.dumps(body)) as resp:
            payload = await resp.read()
            status = resp.status
    except (aiohttp.ClientError, TimeoutError) as exc:
        return Outcome(stream, started, time.monotonic(), NO_ANSWER, repr(exc))
    ended = time.monotonic()
    if status != 200:
        return Outcome(stream, started, ended, f"http_{status}", payload[:200].decode())
    if not stream:
        ok = b'"choices"' in payload
        return Outcome(stream, started, ended, OK if ok else TRUNCATED)
    return Outcome(stream, started, ended, *stream_result(payload))


def stream_result(payload: bytes) -> tuple[str, str]:
    """How a streamed answer ended: ok ([DONE]), error_event (OpenAI's error shape), or
    truncated; with the error's message."""
    events = [e for e in payload.split(b"\n\n") if e.strip()]
    if not events:
        return TRUNCATED, "no event"
    last = events[-1].strip()
    if last == b"data: [DONE]":
        return OK, ""
    if last.startswith(b"data: "):
        try:
            data = orjson.loads(last[6:])
        except orjson.JSONDecodeError:
            return TRUNCATED, last[:200].decode(errors="replace")
        error = data.get("error") if isinstance(data, dict) else None
        if isinstance(error, dict) and {"message", "type", "param", "code"} <= error.keys():
            return ERROR_EVENT, str(error["message"])
    return TRUNCATED, last[:200].decode(errors="replace")
