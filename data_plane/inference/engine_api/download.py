"""Download a model once into the cache, with progress in the log."""

from __future__ import annotations

import asyncio
import logging
import shutil
import tarfile
import time
import uuid
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

import aiohttp

from data_plane.inference.engine_api.metrics import EngineMetrics
from data_plane.inference.engine_api.source import ModelSourceError

log = logging.getLogger(__name__)
_CHUNK = 1 << 20
_PROGRESS_EVERY_SECONDS = 5.0
_MIB = 1 << 20


def _unpack(archive: Path, target: Path) -> None:
    with tarfile.open(archive, "r:*") as tar:
        tar.extractall(target, filter="data")


async def fetch_model(
    url: str, cache_dir: Path, *, timeout_seconds: float, metrics: EngineMetrics
) -> Path:
    """The local path of `url`'s model, downloading it into `cache_dir` the first time.

    A tar archive is unpacked (a single top directory inside is used as the model);
    any other file is kept as one file (vLLM reads e.g. a `.gguf` file directly).
    """
    if await asyncio.to_thread(cache_dir.exists):
        return await asyncio.to_thread(_model_path, cache_dir)
    work = cache_dir.parent / f".{cache_dir.name}.{uuid.uuid4().hex}"
    await asyncio.to_thread(work.mkdir, parents=True)
    try:
        name = PurePosixPath(urlsplit(url).path).name or "model"
        partial = work / name
        await _download(url, partial, timeout_seconds=timeout_seconds, metrics=metrics)
        if await asyncio.to_thread(tarfile.is_tarfile, partial):
            unpacked = work / "unpacked"
            log.info("unpacking %s", name)
            await asyncio.to_thread(_unpack, partial, unpacked)
            await asyncio.to_thread(unpacked.rename, cache_dir)
        else:
            await asyncio.to_thread(work.rename, cache_dir)
    finally:
        await asyncio.to_thread(shutil.rmtree, work, True)
    return await asyncio.to_thread(_model_path, cache_dir)


def _model_path(cache_dir: Path) -> Path:
    entries = [p for p in cache_dir.iterdir() if not p.name.startswith(".")]
    if len(entries) == 1 and (entries[0].is_file() or not (cache_dir / "config.json").exists()):
        return entries[0]
    return cache_dir


async def _download(url: str, dst: Path, *, timeout_seconds: float, metrics: EngineMetrics) -> None:
    started = last = time.monotonic()
    done = 0
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout_seconds)) as http,
            http.get(url) as resp,
        ):
            if resp.status != 200:
                raise ModelSourceError(f"GET {url} answered HTTP {resp.status}")
            total = resp.content_length
            log.info(
                "downloading %s (%s)", url, f"{total / _MIB:.1f} MiB" if total else "size unknown"
            )
            with dst.open("wb") as out:
                async for chunk in resp.content.iter_chunked(_CHUNK):
                    out.write(chunk)
                    done += len(chunk)
                    metrics.download_bytes.inc(len(chunk))
                    now = time.monotonic()
                    if now - last >= _PROGRESS_EVERY_SECONDS:
                        last = now
                        share = f" ({100 * done / total:.0f}%)" if total else ""
                        log.info("downloaded %.1f MiB%s", done / _MIB, share)
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise ModelSourceError(f"GET {url} failed: {exc or type(exc).__name__}") from exc
    log.info("downloaded %.1f MiB in %.1f s", done / _MIB, time.monotonic() - started)
