"""The one error of Hoist's Kubernetes calls, in both planes (pure: no I/O here).

Each plane calls lightkube through its own thin module (`control_plane.kube`,
`data_plane.gateway.discovery.kube_api`) and maps lightkube's and httpx2's exceptions to
this one: `status` is the HTTP status of the answer, or 0 when there was none.
"""

from __future__ import annotations


class KubeError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}" if status else message)
        self.status = status
        self.message = message

    @property
    def not_found(self) -> bool:
        return self.status == 404

    @property
    def conflict(self) -> bool:
        return self.status == 409

    @property
    def gone(self) -> bool:
        """410: a watch's resourceVersion is too old; list again."""
        return self.status == 410

    @property
    def temporary(self) -> bool:
        """Worth retrying: no answer, 429 or a server error."""
        return self.status in {0, 429} or self.status >= 500
