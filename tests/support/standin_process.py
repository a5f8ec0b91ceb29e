#!/usr/bin/env python3
"""A real process that stands in for an engine, sidecar or gateway in supervisor tests.

The supervisor runs children as `PYTHON -m MODULE ... --port P ...`; pointing its
`HOIST_PYTHON` at this script makes every child a small HTTP server on P that answers
/health and /healthz. Behaviour, chosen per module through the environment:

- STANDIN_EXIT_MODULES=m1,m2: exit with code 3 at once (a child that cannot start);
- STANDIN_SLOW_MODULES=m1,m2: sleep an hour before serving (an engine still loading);
- STANDIN_GRANDCHILD=1: also spawn a sleeping grandchild (as vLLM spawns workers), whose
  PID is written to $HOIST_HOME/standin-grandchildren/<port>.
"""

from __future__ import annotations

import http.server
import os
import signal
import subprocess
import sys
import time
from pathlib import Path


def main(argv: list[str]) -> int:
    module = argv[argv.index("-m") + 1] if "-m" in argv else "?"
    port = int(argv[argv.index("--port") + 1])
    if module in os.environ.get("STANDIN_EXIT_MODULES", "").split(","):
        print(f"standin {module}: refusing to start, as asked", flush=True)
        return 3
    if os.environ.get("STANDIN_GRANDCHILD") == "1":
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3600)"])
        pids = Path(os.environ["HOIST_HOME"]) / "standin-grandchildren"
        pids.mkdir(parents=True, exist_ok=True)
        (pids / str(port)).write_text(str(child.pid))

    if module in os.environ.get("STANDIN_SLOW_MODULES", "").split(","):
        print(f"standin {module}: loading slowly, as asked", flush=True)
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        time.sleep(3600)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            ok = self.path in ("/health", "/healthz", "/readyz")
            self.send_response(200 if ok else 404)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b'{"module": "%s"}' % module.encode())

        def log_message(self, *_: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"standin {module} serving on {port}", flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
