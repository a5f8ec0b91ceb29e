"""The hot path: `POST /v1/chat/completions`, `/v1/completions`, `/v1/responses` and
`/v1/embeddings`, served on the gateway's own protocol (`cycle.py`) or as ASGI apps (SSE
streams are passed through as they come).

Per request: read the body (bounded), read the routing fields, pick a replica, send the
client's bytes upstream on the pooled session and pass the answer's bytes back. Failures
before the first byte reached the client are retried on another replica; after it, a
streamed answer ends with an SSE error event (no `data: [DONE]`). A client that goes away
cancels the upstream request (its connection is closed, so the engine aborts the generation).

Each attempt registers with its replica (`Replica.attempts`) for the watchdog: its wait for
the first byte is bounded by a deadline derived from the engine's timing and queue
(liveness.py), which the watchdog's sweeper enforces (and brings forward when the replica
hangs); once streaming, the sweeper reads when its last bytes came and aborts it when it
stalls.

One request reads top to bottom through these modules:
- `endpoint.py`: headers, body, routing fields, tenancy; admission; the retry loop.
- `attempt.py`: one attempt on one replica, up to its first byte (or its whole answer).
- `relay.py`: a stream passed through from its first chunk; token and latency metrics.
- `exchange.py`: the client exchange's state, request ids, an attempt as the watchdog
  sees it.
- `conn.py`: the client's connection as the proxy uses it; `cycle.py` on the gateway's
  protocol, `AsgiConn` over ASGI.
"""

from data_plane.gateway.proxy.asgi import Receive, Scope, Send
from data_plane.gateway.proxy.endpoint import ProxyEndpoint

__all__ = ["ProxyEndpoint", "Receive", "Scope", "Send"]
