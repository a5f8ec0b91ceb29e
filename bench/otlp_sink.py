"""An OTLP/HTTP trace sink for benchmarks: accepts `POST /v1/traces`, answers 200 at once.

It stands in for a collector so that a traced gateway's exporter has somewhere to send
(what a collector does with the spans is not the gateway's cost). GET /health: 200, with
how many exports and bytes came so far.

    python bench/otlp_sink.py --port 4318
"""

from __future__ import annotations

import argparse

from aiohttp import web


class _Sink:
    def __init__(self) -> None:
        self.exports = 0
        self.bytes = 0

    async def traces(self, request: web.Request) -> web.Response:
        self.bytes += len(await request.read())
        self.exports += 1
        return web.Response(body=b"", content_type="application/x-protobuf")

    async def health(self, _: web.Request) -> web.Response:
        return web.Response(text=f"{self.exports} exports, {self.bytes} bytes")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=4318)
    args = parser.parse_args()
    app = web.Application(client_max_size=64 * 1024 * 1024)
    sink = _Sink()
    app.router.add_post("/v1/traces", sink.traces)
    app.router.add_get("/health", sink.health)
    web.run_app(app, host="127.0.0.1", port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
