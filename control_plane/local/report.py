"""What `hoist up` says on its console (stderr), one method per event, so that every
line it prints is in one place. The start-up progress lines are `progress.py`'s."""

from __future__ import annotations

import signal

from rich.console import Console

from control_plane.local.plan import ProcessSpec, ReplicaPlan
from control_plane.local.process import ManagedProcess, Phase


class Report:
    def __init__(self, console: Console | None = None) -> None:
        # soft_wrap: a long line (a path) stays one line in a log, as a terminal wraps it
        self.console = console or Console(stderr=True, soft_wrap=True)

    def not_started(self, problems: list[str]) -> None:
        for problem in problems:
            self.console.print(f"[red]error:[/] {problem}")
        self.console.print("Nothing was started.")

    def plain(self, line: str) -> None:
        """A line printed as it is (no markup: a path may hold brackets)."""
        self.console.print(line, markup=False, highlight=False)

    def start_failed(self, exc: Exception) -> None:
        self.console.print(f"[red]error:[/] {exc}")

    def serving(self, models: list[str], url: str, took_s: float) -> None:
        self.console.print(
            f"[bold green]Hoist is serving[/] {', '.join(models)} at {url}/v1 after {took_s:.0f}s  "
            f"(`hoist status` to watch; Ctrl-C to stop)"
        )

    def stopping(self, sig: signal.Signals) -> None:
        self.console.print(f"\n{sig.name}: stopping every process (again to force)...")

    def stopped(self, started: int) -> None:
        if started:
            self.console.print(f"stopped {started} processes")

    def process_changed(self, process: ManagedProcess) -> None:
        """A process that crashed or gave up, with why."""
        if process.phase in (Phase.RESTARTING, Phase.FAILED) and process.last_error:
            self.console.print(
                f"[yellow]{process.spec.name}:[/] {process.last_error} ({process.phase})"
            )

    def scaled(self, model: str, replicas: int, reason: str) -> None:
        self.console.print(f"scaled {model} to {replicas} ({reason})")

    def ready(self, spec: ProcessSpec, took_s: float) -> None:
        self.console.print(f"[green]ready[/] {spec.name} on {spec.url} ({took_s:.1f}s)")

    def scale_up_failed(self, exc: Exception) -> None:
        self.console.print(f"[red]scale-up failed:[/] {exc}")

    def retired(self, replica: ReplicaPlan) -> None:
        self.console.print(f"stopped {replica.name} (scaled down)")

    def reconcile_failed(self, exc: Exception) -> None:
        self.console.print(f"[yellow]adapter reconciliation failed, will retry:[/] {exc}")
