"""Run the real kubectl against an emulator, from async tests, bounded in time."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

from tests.support.tools import tool


@dataclass(frozen=True)
class Result:
    returncode: int
    stdout: str
    stderr: str


class Kubectl:
    """kubectl with its own kubeconfig and discovery cache (a fresh cache per test, so one
    test's API never leaks into another's)."""

    def __init__(self, kubeconfig: Path, cache_dir: Path) -> None:
        self._base = [
            tool("kubectl"),
            "--kubeconfig",
            str(kubeconfig),
            "--cache-dir",
            str(cache_dir),
        ]

    async def run(self, *args: str, stdin: str | None = None, limit: float = 60) -> Result:
        proc = await asyncio.create_subprocess_exec(
            *self._base, *args,
            stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        try:
            out, err = await asyncio.wait_for(
                proc.communicate(stdin.encode() if stdin is not None else None), limit
            )
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise
        assert proc.returncode is not None
        return Result(proc.returncode, out.decode(), err.decode())

    async def ok(self, *args: str, stdin: str | None = None) -> str:
        """stdout of a command that must succeed."""
        result = await self.run(*args, stdin=stdin)
        assert result.returncode == 0, f"kubectl {' '.join(args)} failed: {result.stderr}"
        return result.stdout

    async def refused(self, *args: str, stdin: str | None = None) -> str:
        """stderr of a command that must fail."""
        result = await self.run(*args, stdin=stdin)
        assert result.returncode != 0, f"kubectl {' '.join(args)} succeeded: {result.stdout}"
        return result.stderr
