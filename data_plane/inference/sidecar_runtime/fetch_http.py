"""Download an `http(s)://` source: redirects followed only where the source policy allows,
the size cap enforced while reading, failures reported in policy terms."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from pathlib import Path

import aiohttp
from yarl import URL

from control_plane.api.adapter_sources import AdapterSourcePolicy, SourceRefusedError, check_url
from data_plane.inference.sidecar_runtime.fetch_files import CHUNK, too_large
from data_plane.inference.sidecar_runtime.source_guard import AddressRefusedError, refused
from data_plane.inference.sidecar_runtime.sources import AdapterRefusedError

MAX_REDIRECTS = 5
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
log = logging.getLogger(__name__)


def download_failed(why: str) -> AdapterRefusedError:
    return AdapterRefusedError(
        "DownloadFailed", f"the adapter could not be downloaded: {why}", status=502
    )


class HttpDownloader:
    """GETs archives with one pooled session (give it a `GuardedResolver` with the same
    `policy`, so an address the policy refuses is refused at connect time too)."""

    def __init__(
        self,
        http: aiohttp.ClientSession,
        *,
        timeout: float,
        policy: AdapterSourcePolicy,
        max_bytes: int,
    ) -> None:
        self._http = http
        self._timeout = timeout
        self.policy = policy
        self.max_bytes = max_bytes

    async def download(self, url: str, dst: Path) -> str:
        """GET `url` into `dst`, following redirects that the policy allows; the sha256.

        A failure is reported in policy terms only: what the remote answered, or why the
        network failed, goes to the log (for the operator), never into the refusal (which
        a tenant reads in its adapter's status)."""
        timeout = aiohttp.ClientTimeout(total=self._timeout)
        try:
            async with asyncio.timeout(self._timeout):
                for _ in range(MAX_REDIRECTS + 1):
                    check_url(url, self.policy)
                    async with self._http.get(url, timeout=timeout, allow_redirects=False) as resp:
                        if resp.status in _REDIRECTS and "location" in resp.headers:
                            url = str(resp.url.join(URL(resp.headers["location"])))
                            continue
                        if resp.status != 200:
                            log.warning("GET %s answered HTTP %s", url, resp.status)
                            raise download_failed("the source answered with an error")
                        return await self._save(resp, dst)
                raise download_failed(f"the source redirected more than {MAX_REDIRECTS} times")
        except SourceRefusedError as refusal:
            raise refused(refusal) from None
        except aiohttp.ClientConnectorError as exc:
            if isinstance(exc.os_error, AddressRefusedError):
                raise refused(exc.os_error.refusal) from None
            log.warning("GET %s failed: %s", url, exc)
            raise download_failed("the source could not be reached") from exc
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            log.warning("GET %s failed: %r", url, exc)
            raise download_failed("the download did not complete") from exc

    async def _save(self, resp: aiohttp.ClientResponse, dst: Path) -> str:
        if resp.content_length is not None and resp.content_length > self.max_bytes:
            raise too_large(self.max_bytes)
        digest = hashlib.sha256()
        size = 0
        with dst.open("wb") as out:
            async for chunk in resp.content.iter_chunked(CHUNK):
                size += len(chunk)
                if size > self.max_bytes:
                    raise too_large(self.max_bytes)
                digest.update(chunk)
                out.write(chunk)
        return digest.hexdigest()
