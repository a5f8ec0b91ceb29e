"""`python -m control_plane.operator`: the control plane's Kubernetes operators."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys

from pydantic import ValidationError

from control_plane.operator.app import default_connection, run
from control_plane.operator.settings import OperatorSettings


def main() -> None:
    try:
        settings = OperatorSettings()
    except ValidationError as exc:
        sys.stderr.write(f"invalid HOIST_OPERATOR_* settings:\n{exc}\n")
        raise SystemExit(2) from exc
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s operator %(name)s: %(message)s",
    )
    try:
        connection = default_connection()
    except Exception as exc:  # any login failure ends the process with a message
        sys.stderr.write(f"cannot reach the Kubernetes API: {exc}\n")
        raise SystemExit(1) from exc
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run(settings, connection=connection))


if __name__ == "__main__":
    main()
