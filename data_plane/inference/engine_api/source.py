"""Where a model's weights are, given `spec.source` and `MODEL_REPOSITORY` (pure).

- An absolute path or a `file://` URI is used as it is.
- An `http(s)://` URL is downloaded once into the cache (a tar archive is unpacked; any
  other file, e.g. a `.gguf`, is kept as one file).
- Anything else is a name inside `MODEL_REPOSITORY`, which is a local directory (a path or
  `file://`) or a base URL (`http(s)://`, the name is then fetched from `<base>/<name>`).
  A name that is not there and looks like `org/model` is passed to vLLM as a Hugging Face
  id (clusters with Internet access); any other missing name is an error.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import PurePosixPath
from urllib.parse import unquote, urlsplit


class ModelSourceError(ValueError):
    """The model's source cannot be resolved; the message says how to fix it."""


@dataclass(frozen=True)
class LocalModel:
    path: PurePosixPath


@dataclass(frozen=True)
class RemoteModel:
    url: str
    cache_dir: PurePosixPath
    """Where the download lands (unpacked if it is an archive), keyed by the URL."""


@dataclass(frozen=True)
class HubModel:
    repo_id: str


ResolvedSource = LocalModel | RemoteModel | HubModel


def _file_path(uri: str) -> PurePosixPath:
    parts = urlsplit(uri)
    if parts.netloc not in ("", "localhost"):
        raise ModelSourceError(f"{uri!r}: file URIs must name a local path (file:///...)")
    return PurePosixPath(unquote(parts.path))


def _scheme(value: str) -> str | None:
    scheme, sep, _ = value.partition("://")
    return scheme.lower() if sep else None


def cache_dir_for(url: str, cache_root: PurePosixPath) -> PurePosixPath:
    name = PurePosixPath(urlsplit(url).path).name or "model"
    return cache_root / f"{hashlib.sha256(url.encode()).hexdigest()[:16]}-{name}"


def resolve_source(
    source: str,
    *,
    repository: str,
    cache_root: PurePosixPath,
    exists: frozenset[PurePosixPath] | None = None,
) -> ResolvedSource:
    """Resolve `source`; `exists` lists repository paths known to exist (None: assume so).

    The caller checks the local filesystem and passes what it found, so this stays pure.
    """
    scheme = _scheme(source)
    if scheme == "file":
        return LocalModel(_file_path(source))
    if scheme in ("http", "https"):
        return RemoteModel(source, cache_dir_for(source, cache_root))
    if scheme is not None:
        raise ModelSourceError(
            f"source {source!r}: unsupported scheme {scheme}://; use a path, file:// or http(s)://"
        )
    path = PurePosixPath(source)
    if path.is_absolute():
        return LocalModel(path)
    if ".." in path.parts:
        raise ModelSourceError(f"source {source!r} must not contain '..'")
    repo_scheme = _scheme(repository)
    if repo_scheme in ("http", "https"):
        url = f"{repository.rstrip('/')}/{source}"
        return RemoteModel(url, cache_dir_for(url, cache_root))
    if repo_scheme == "file":
        root = _file_path(repository)
    elif repo_scheme is None:
        root = PurePosixPath(repository)
    else:
        raise ModelSourceError(
            f"MODEL_REPOSITORY {repository!r}: unsupported scheme {repo_scheme}://"
        )
    candidate = root / path
    if exists is None or candidate in exists:
        return LocalModel(candidate)
    if len(path.parts) == 2:
        return HubModel(source)
    raise ModelSourceError(
        f"model {source!r} is not in MODEL_REPOSITORY ({root}); prepare it first, e.g."
        f" `python -m data_plane.inference.engine_api.prepare {source}`"
    )
