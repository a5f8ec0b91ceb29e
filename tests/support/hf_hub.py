"""A loopback stand-in of the Hugging Face Hub's download API, for huggingface_hub clients.

It serves the routes huggingface_hub's downloads use (plain HTTP): a revision's commit
(`/api/models/{repo}/revision/{rev}`), the file tree at a commit
(`/api/models/{repo}/tree/{commit}`) and the files (`HEAD`/`GET
/{repo}/resolve/{commit}/{path}`). Errors carry the Hub's `X-Error-Code` header, from which
huggingface_hub picks its exception. A repository with a token answers only requests that
carry it (like a private repo: 401 `RepoNotFound` otherwise).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

from tests.support.ports import free_port


@dataclass
class HubRepo:
    files: dict[str, bytes]
    token: str | None = None
    revisions: dict[str, str] = field(default_factory=dict)
    """Branch or tag -> commit; `main` is added when missing."""

    @property
    def commit(self) -> str:
        digest = hashlib.sha1(b"".join(k.encode() + v for k, v in sorted(self.files.items())))
        return digest.hexdigest()


@dataclass
class StandInHub:
    repos: dict[str, HubRepo] = field(default_factory=dict)
    requests: list[tuple[str, str, str | None]] = field(default_factory=list)
    """(method, path, Authorization header) of every request, in order."""
    url: str = ""
    _runner: web.AppRunner | None = None

    def add(self, repo_id: str, files: dict[str, bytes], *, token: str | None = None) -> HubRepo:
        repo = HubRepo(files, token)
        repo.revisions.setdefault("main", repo.commit)
        self.repos[repo_id] = repo
        return repo

    def add_folder(self, repo_id: str, folder: Path, *, token: str | None = None) -> HubRepo:
        files = {
            p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*"))
            if p.is_file()
        }
        return self.add(repo_id, files, token=token)

    async def start(self) -> str:
        app = web.Application()
        app.router.add_get("/api/models/{org}/{name}/revision/{rev:.+}", self._revision)
        app.router.add_get("/api/models/{org}/{name}/tree/{rev}", self._tree)
        app.router.add_route("*", "/{org}/{name}/resolve/{rev}/{path:.+}", self._resolve)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        port = free_port()
        await web.TCPSite(self._runner, "127.0.0.1", port).start()
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def _repo(self, request: web.Request) -> HubRepo:
        self.requests.append((request.method, request.path, request.headers.get("Authorization")))
        repo = self.repos.get(f"{request.match_info['org']}/{request.match_info['name']}")
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if repo is None or (repo.token is not None and token != repo.token):
            raise web.HTTPUnauthorized(
                headers={"X-Error-Code": "RepoNotFound"}, text='{"error": "Repository not found"}'
            )
        return repo

    def _commit(self, repo: HubRepo, revision: str) -> str:
        if revision == repo.commit or revision in repo.revisions:
            return repo.revisions.get(revision, revision)
        raise web.HTTPNotFound(
            headers={"X-Error-Code": "RevisionNotFound"}, text='{"error": "Invalid rev id"}'
        )

    async def _revision(self, request: web.Request) -> web.Response:
        repo = self._repo(request)
        commit = self._commit(repo, request.match_info["rev"])
        siblings = [{"rfilename": path, "size": len(data)} for path, data in repo.files.items()]
        return web.json_response(
            {"id": request.path.split("/")[3] + "/" + request.path.split("/")[4],
             "sha": commit, "siblings": siblings, "private": repo.token is not None}
        )  # fmt: skip

    async def _tree(self, request: web.Request) -> web.Response:
        repo = self._repo(request)
        self._commit(repo, request.match_info["rev"])
        entries = [
            {"type": "file", "path": path, "size": len(data), "oid": hashlib.sha1(data).hexdigest()}
            for path, data in sorted(repo.files.items())
        ]
        return web.json_response(entries)

    async def _resolve(self, request: web.Request) -> web.Response:
        repo = self._repo(request)
        commit = self._commit(repo, request.match_info["rev"])
        data = repo.files.get(request.match_info["path"])
        if data is None:
            raise web.HTTPNotFound(headers={"X-Error-Code": "EntryNotFound"})
        headers = {
            "X-Repo-Commit": commit,
            "ETag": f'"{hashlib.sha1(data).hexdigest()}"',
            "Content-Length": str(len(data)),
        }
        if request.method == "HEAD":
            return web.Response(headers=headers)
        return web.Response(body=data, headers=headers)
