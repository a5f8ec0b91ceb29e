"""A real S3 API on 127.0.0.1: moto's server, and a recording proxy in front of it.

    with moto_s3() as s3:
        s3.put("adapters", "team-a/sql.tar.gz", data)
        env = s3.env()            # AWS_* variables that point a client at it

The proxy (`RecordingProxy`) forwards every request to the server unchanged and records
the access key id each one was signed with (SigV4's `Credential=KEY/...`), so a test can
tell which credentials a client used, and how many requests reached the store at all.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import boto3
from aiohttp import web
from moto.server import ThreadedMotoServer

from tests.support.ports import free_port

REGION = "us-east-1"
AMBIENT_KEY_ID = "AKIAAMBIENTOPERATOR"
"""The access key id the sidecar's own environment carries (the operator's)."""
_CREDENTIAL = re.compile(r"Credential=([^/]+)/")


@dataclass
class MotoS3:
    url: str
    client: Any

    def bucket(self, name: str) -> None:
        self.client.create_bucket(Bucket=name)

    def put(self, bucket: str, key: str, data: bytes) -> None:
        self.client.put_object(Bucket=bucket, Key=key, Body=data)

    def env(self, endpoint: str | None = None) -> dict[str, str]:
        """The standard AWS variables for a client of this store (or of `endpoint`)."""
        return {
            "AWS_ENDPOINT_URL": endpoint or self.url,
            "AWS_ALLOW_HTTP": "true",
            "AWS_REGION": REGION,
            "AWS_ACCESS_KEY_ID": AMBIENT_KEY_ID,
            "AWS_SECRET_ACCESS_KEY": "ambient-secret",
            # Never the cloud's metadata service: a refused loopback port instead.
            "AWS_METADATA_ENDPOINT": "http://127.0.0.1:9",
        }


@contextlib.contextmanager
def moto_s3() -> Iterator[MotoS3]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    client = boto3.client(
        "s3",
        endpoint_url=url,
        region_name=REGION,
        aws_access_key_id="setup",
        aws_secret_access_key="setup",
    )
    try:
        yield MotoS3(url, client)
    finally:
        client.close()
        server.stop()


@dataclass
class RecordingProxy:
    upstream: str
    key_ids: list[str | None] = field(default_factory=list)
    """The access key id of every request, in order (None: unsigned)."""
    url: str = ""
    _runner: web.AppRunner | None = None
    _http: aiohttp.ClientSession | None = None

    async def start(self) -> str:
        self._http = aiohttp.ClientSession(auto_decompress=False)
        app = web.Application(client_max_size=1 << 24)
        app.router.add_route("*", "/{tail:.*}", self._forward)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        port = free_port()
        await web.TCPSite(self._runner, "127.0.0.1", port).start()
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._http is not None:
            await self._http.close()

    async def _forward(self, request: web.Request) -> web.Response:
        assert self._http is not None
        found = _CREDENTIAL.search(request.headers.get("Authorization", ""))
        self.key_ids.append(found.group(1) if found else None)
        async with self._http.request(
            request.method,
            f"{self.upstream}{request.path_qs}",
            headers={k: v for k, v in request.headers.items() if k.lower() != "host"}
            | {"Host": request.host},
            data=await request.read(),
            allow_redirects=False,
        ) as upstream:
            body = await upstream.read()
            drop = {"content-length", "transfer-encoding", "connection"}
            headers = {k: v for k, v in upstream.headers.items() if k.lower() not in drop}
            return web.Response(status=upstream.status, body=body, headers=headers)
