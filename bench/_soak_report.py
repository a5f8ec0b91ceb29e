"""What bench/soak.py decides from what it recorded (pure): which fault a failed request
is owed to, latency around each fault, whether each process's RSS and open file
descriptors stayed flat, and the Markdown that says so.

Times are seconds since the soak started. A failure is owed to a fault when the request
was in flight at some moment of the fault's window, widened by a recovery grace
(`[start, end + grace]`); a failure owed to no window is unexplained.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

UNEXPLAINED = "unexplained"


class Result(Protocol):
    @property
    def started(self) -> float: ...
    @property
    def ended(self) -> float: ...
    @property
    def result(self) -> str: ...


@dataclass(frozen=True)
class FaultWindow:
    name: str
    """Unique, e.g. "#2 SIGKILL engine-1"."""
    start: float
    """When the fault was injected."""
    end: float
    """When it was over: SIGCONT sent, the restarted engine healthy, the old gateway gone."""


@dataclass(frozen=True)
class Sample:
    at: float
    process: str
    """Role, e.g. "gateway" or "engine-0"; a restarted one keeps its role, not its pid."""
    pid: int
    rss: int
    """Bytes."""
    fds: int
    """Open file descriptors, sockets included."""
    sockets: int
    """Of which sockets: connections come and go with the load, the rest should not."""
    close_wait: int = 0
    """TCP connections its peer closed and it did not: a socket it lost track of."""

    @property
    def files(self) -> int:
        return self.fds - self.sockets


def owed_to(result: Result, windows: Sequence[FaultWindow], grace_s: float) -> str:
    """The first window the request was in flight in (grace included), else unexplained."""
    for w in windows:
        if result.started <= w.end + grace_s and result.ended >= w.start:
            return w.name
    return UNEXPLAINED


def failures_by_window(
    results: Iterable[Result], windows: Sequence[FaultWindow], grace_s: float, ok: str = "ok"
) -> dict[str, Counter[str]]:
    """Window name (or unexplained) -> failed results by cause; every key is present."""
    out: dict[str, Counter[str]] = {w.name: Counter() for w in windows}
    out[UNEXPLAINED] = Counter()
    for r in results:
        if r.result != ok:
            out[owed_to(r, windows, grace_s)][r.result] += 1
    return out


@dataclass(frozen=True)
class Phases:
    """Request-sending intervals around one fault: before it, during it (grace included),
    after it; each at most `phase_s` long and never overlapping another fault."""

    before: tuple[float, float]
    during: tuple[float, float]
    after: tuple[float, float]


def phases(
    windows: Sequence[FaultWindow], grace_s: float, phase_s: float, end: float
) -> list[Phases]:
    out = []
    for i, w in enumerate(windows):
        previous = windows[i - 1].end + grace_s if i else 0.0
        following = windows[i + 1].start if i + 1 < len(windows) else end
        recovered = w.end + grace_s
        out.append(
            Phases(
                before=(max(previous, w.start - phase_s), w.start),
                during=(w.start, recovered),
                after=(recovered, min(following, recovered + phase_s)),
            )
        )
    return out


@dataclass(frozen=True)
class Flatness:
    process: str
    pid: int
    judged_from: float
    """Seconds since the soak started: the process's first sample plus the warm-up."""
    samples: int
    rss: tuple[int, int]
    """(min, max) bytes over the judged samples."""
    fds: tuple[int, int]
    """(min, max) of all descriptors: shown, not judged (the load moves the sockets)."""
    files: tuple[int, int]
    """(min, max) of the descriptors that are not sockets."""

    def within(self, tolerance: float) -> bool | None:
        """max <= min x (1 + tolerance) for RSS and for the descriptors that are not
        sockets; None with fewer than 3 samples."""
        if self.samples < 3:
            return None
        return all(hi <= lo * (1 + tolerance) for lo, hi in (self.rss, self.files))


def flatness(samples: Iterable[Sample], warmup_s: float) -> list[Flatness]:
    """One verdict per process (role and pid), in order of appearance. A process is judged
    from its first sample plus `warmup_s`: from the start of the soak for the first ones,
    from its restart for one that replaced a killed or restarted process."""
    by_process: dict[tuple[str, int], list[Sample]] = defaultdict(list)
    for s in samples:
        by_process[(s.process, s.pid)].append(s)
    out = []
    for (process, pid), series in by_process.items():
        since = min(s.at for s in series) + warmup_s
        judged = [s for s in series if s.at >= since]
        out.append(Flatness(process, pid, since, len(judged), *(span(judged, k) for k in KEYS)))
    return out


KEYS = ("rss", "fds", "files")


def span(samples: Sequence[Sample], key: str) -> tuple[int, int]:
    values = [getattr(s, key) for s in samples] or [0]
    return min(values), max(values)


def idle_back(before: Sequence[Sample], after: Sequence[Sample], tolerance: float) -> list[str]:
    """Descriptors with no load, before the soak and after it. A leaked file stays open; a
    leaked socket ends in CLOSE_WAIT once its peer closes it. Open (ESTABLISHED) keep-alive
    connections are not leaks: they are shown, and the gateway's extra sockets are set
    against the engines' (each pooled connection has one end in each). One row per role,
    its process at the start against its process at the end (a restarted one is compared
    with the one it replaced: the same program with the same settings)."""
    first = {s.process: s for s in before}
    lines = [
        "| process | fds idle before (sockets) | fds idle after (sockets, in CLOSE_WAIT) "
        f"| non-socket fds within {tolerance:.0%}, none in CLOSE_WAIT |",
        "|---|---|---|---|",
    ]
    extra = {"gateway": 0, "engines": 0}
    for s in after:
        b = first.get(s.process)
        if b is None:
            continue
        extra["gateway" if s.process == "gateway" else "engines"] += s.sockets - b.sockets
        ok = s.files <= b.files * (1 + tolerance) and s.close_wait == 0
        lines.append(
            f"| {s.process} | {b.fds} ({b.sockets}) | {s.fds} ({s.sockets}, {s.close_wait}) "
            f"| {'yes' if ok else '**no**'} |"
        )
    lines.append("")
    lines.append(
        f"Sockets open after the soak beyond those before: gateway {extra['gateway']}, "
        f"engines {extra['engines']} together."
    )
    return lines


def pct(values: Sequence[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def clock(seconds: float) -> str:
    return f"{int(seconds) // 60}:{int(seconds) % 60:02d}"


def causes(counter: Counter[str]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(counter.items())) or "none"


def fault_table(
    results: Sequence[Result],
    windows: Sequence[FaultWindow],
    grace_s: float,
    phase_s: float,
    end: float,
) -> list[str]:
    """Per fault: failures owed to it, and p99 latency of requests sent before / during /
    after it; then the unexplained failures."""
    failed = failures_by_window(results, windows, grace_s)
    lines = [
        "| fault | at | lasted s | failed, owed to it (by cause) | p99 s before "
        "| max s, in flight at it | p99 s during | p99 s after |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for w, p in zip(windows, phases(windows, grace_s, phase_s, end), strict=True):
        before = [r for r in results if p.before[0] <= r.started and r.ended < w.start]
        caught = [r for r in results if r.started < w.start <= r.ended]
        during, after = (
            [r for r in results if lo <= r.started < hi] for lo, hi in (p.during, p.after)
        )
        p99 = [f"{pct([r.ended - r.started for r in rs], 0.99):.2f}" for rs in (during, after)]
        worst = max((r.ended - r.started for r in caught), default=0.0)
        n = sum(failed[w.name].values())
        lines.append(
            f"| {w.name} | {clock(w.start)} | {w.end - w.start:.1f} | "
            f"{n} ({causes(failed[w.name])}) | {pct([r.ended - r.started for r in before], 0.99):.2f} "
            f"| {worst:.2f} | {' | '.join(p99)} |"
        )
    lost = failed[UNEXPLAINED]
    lines.append(f"| **unexplained** (outside every fault + {grace_s:g} s) | - | - | "
                 f"**{sum(lost.values())}** ({causes(lost)}) | - | - | - | - |")  # fmt: skip
    return lines


def flatness_table(verdicts: Sequence[Flatness], tolerance: float) -> list[str]:
    lines = [
        "| process | judged from | samples | RSS MiB min-max | RSS max/min "
        f"| non-socket fds min-max | max/min | all fds min-max | within {tolerance:.0%} |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for v in verdicts:
        ok = v.within(tolerance)
        mark = "too few samples" if ok is None else ("yes" if ok else "**no**")
        (r0, r1), (f0, f1), (a0, a1) = v.rss, v.files, v.fds
        lines.append(
            f"| {v.process} (pid {v.pid}) | {clock(v.judged_from)} | {v.samples} "
            f"| {r0 / 2**20:.1f}-{r1 / 2**20:.1f} | {r1 / max(r0, 1):.3f} "
            f"| {f0}-{f1} | {f1 / max(f0, 1):.3f} | {a0}-{a1} | {mark} |"
        )
    return lines


def timeline_table(samples: Sequence[Sample], every_s: float = 120) -> list[str]:
    """RSS MiB / fds of every role at the first sample of each `every_s` interval."""
    roles = list(dict.fromkeys(s.process for s in samples))
    rows: dict[int, dict[str, Sample]] = defaultdict(dict)
    for s in samples:
        rows[int(s.at // every_s)].setdefault(s.process, s)
    lines = [
        "| t | " + " | ".join(f"{r} RSS MiB / fds" for r in roles) + " |",
        "|---" * (len(roles) + 1) + "|",
    ]
    for slot in sorted(rows):
        cells = [rows[slot].get(r) for r in roles]
        shown = [f"{c.rss / 2**20:.1f} / {c.fds}" if c else "-" for c in cells]
        first = min(c.at for c in cells if c)
        lines.append(f"| {clock(first)} | " + " | ".join(shown) + " |")
    return lines
