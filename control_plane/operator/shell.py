"""The shell every manager's kopf handlers share, written once.

A manager's reconcile pass is a few lines between these steps:

    shell = KindShell("Model", ctx.metrics, retry_seconds=...)
    model = shell.parse(Model, ModelStatus, body, patch, logger, invalid=status_for_message)
    if model is None: return                       # refused, already reported
    with shell.kube_pass():                        # timed; KubeError -> TemporaryError
        ...observe and apply...
    ...write the status...
    on_spec_change(registry, MODEL_PLURAL, reconcile, id=...)

- `parse`: the typed resource; a spec the types refuse is `refuse`d;
- `refuse`: a spec refused for good: counted `invalid`; once per generation it is logged,
  its status (`SpecValid=False`) written and `kopf.PermanentError` raised;
- `kube_pass`: the pass's Kubernetes work, timed (`hoist_operator_reconcile_seconds`) and
  counted `ok` or `error`; a `KubeError` becomes a `kopf.TemporaryError` retried after
  `retry_seconds`;
- `on_spec_change`: the decorator stack (resume, create, update of `spec`) that runs the pass.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import kopf
from pydantic import BaseModel, ValidationError

from control_plane.api.constants import GROUP, VERSION
from control_plane.kube import KubeError
from control_plane.operator.bodies import already_reported, dump_status, error_text, parse
from control_plane.operator.metrics import OperatorMetrics

R = TypeVar("R", bound=BaseModel)
Pass = Callable[[kopf.Body, kopf.Patch, kopf.Logger], Awaitable[None]]
InvalidStatus = Callable[[str], BaseModel]
"""The status that reports a refused spec, from the refusal's message."""


@dataclass(frozen=True)
class KindShell:
    """The steps every reconcile pass of one kind shares (see the module docstring)."""

    kind: str
    """The resource kind: the metrics' `kind` label and the logs' word."""
    metrics: OperatorMetrics
    retry_seconds: float
    """How long kopf waits before it retries a pass that met a Kubernetes API error."""
    clock: Callable[[], float] = field(default=time.perf_counter)
    """Measures the pass's duration."""

    def parse(
        self,
        resource: type[R],
        status: type[BaseModel],
        body: kopf.Body,
        patch: kopf.Patch,
        logger: kopf.Logger,
        *,
        invalid: InvalidStatus,
    ) -> R | None:
        """The resource with its status; None: its spec was refused and already reported
        for this generation (else `refuse` raises `kopf.PermanentError`)."""
        try:
            return parse(resource, status, body)
        except ValidationError as exc:
            message = error_text(exc)
            self.refuse(
                body,
                patch,
                logger,
                message,
                invalid,
                log=f"invalid {self.kind}: {message}",
                cause=exc,
            )
            return None

    def refuse(
        self,
        body: kopf.Body,
        patch: kopf.Patch,
        logger: kopf.Logger,
        message: str,
        invalid: InvalidStatus,
        *,
        log: str,
        cause: BaseException | None = None,
    ) -> None:
        """A spec refused for good: counted; unless this generation's status says so
        already, `log` logged, `invalid(message)` written, and `kopf.PermanentError`."""
        self.metrics.reconciles.labels(self.kind, "invalid").inc()
        if already_reported(body):
            return
        logger.error("%s", log)
        patch.status.update(dump_status(invalid(message)))
        raise kopf.PermanentError(message) from cause

    @contextlib.contextmanager
    def kube_pass(self, started: float | None = None) -> Iterator[None]:
        """Time the block (from `started`, a `clock()` reading, when the pass began
        earlier) and count it `ok`; a `KubeError` in it is counted `error` and retried by
        kopf after `retry_seconds`."""
        started = self.clock() if started is None else started
        try:
            yield
        except KubeError as exc:
            self.metrics.reconciles.labels(self.kind, "error").inc()
            raise kopf.TemporaryError(str(exc), delay=self.retry_seconds) from exc
        finally:
            self.metrics.reconcile_seconds.labels(self.kind).observe(self.clock() - started)
        self.metrics.reconciles.labels(self.kind, "ok").inc()


def on_spec_change(registry: kopf.OperatorRegistry, plural: str, run: Pass, *, id: str) -> None:
    """Run `run` when a resource of `plural` is created, its spec changes, or the operator
    resumes it. `id` is the handler's id, under which kopf keeps a retrying handler's
    progress on the resource: keep it stable across releases."""
    resource = (GROUP, VERSION, plural)

    async def changed(body: kopf.Body, patch: kopf.Patch, logger: kopf.Logger, **_: Any) -> None:
        await run(body, patch, logger)

    kopf.on.resume(*resource, registry=registry, id=id)(changed)
    kopf.on.create(*resource, registry=registry, id=id)(changed)
    kopf.on.update(*resource, field="spec", registry=registry, id=id)(changed)
