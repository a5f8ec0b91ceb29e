"""What a new user sees of `hoist up` and `hoist status`, off a terminal (a log file, CI):
progress lines with the elapsed time, tables never cut at 80 columns, and a store of
adapters added through the gateway that belongs to the declarations it came from.

The children are stand-ins (tests/support/standin_process.py), as in test_hoist_up.py.
"""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import urllib.request
from dataclasses import replace

from tests.integration.control_plane.local.test_hoist_up import HOIST, Stack, wait_for

ELAPSED = r"\[\s*\d+\.\d+s\]"


def hoist(stack: Stack, *args: str, columns: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in stack.env.items() if k != "COLUMNS"}  # as a pipe has none
    if columns is not None:
        env["COLUMNS"] = columns
    return subprocess.run([*HOIST, *args], env=env, capture_output=True, text=True, timeout=60)


def serving(stack: Stack) -> bool:
    return "Hoist is serving" in stack.output.read_text()


def stop(proc: subprocess.Popen[bytes], stack: Stack) -> str:
    proc.send_signal(signal.SIGINT)
    output = stack.finish(proc)
    assert proc.returncode == 0, output
    return output


def add_adapter_through_the_admin_api(stack: Stack, name: str) -> None:
    """What the gateway's `POST /v1/adapters` does in the embedded default."""
    run = json.loads((stack.home / "run" / "supervisor.json").read_text())
    token = (stack.home / "run" / "admin-token").read_text().strip()
    body = {"metadata": {"name": name}, "spec": {"baseModel": "tiny", "source": "/srv/x"}}
    request = urllib.request.Request(
        f"{run['adminUrl']}/v1/adapters/{name}",
        data=json.dumps(body).encode(),
        method="PUT",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 201


def test_each_start_is_a_line_with_the_elapsed_time(
    stack: Stack, running: subprocess.Popen[bytes]
) -> None:
    wait_for(lambda: serving(stack), "the serving line")
    output = stop(running, stack)
    for name in ("tiny-0/engine", "tiny-0/sidecar", "tiny-1/engine", "tiny-1/sidecar", "gateway"):
        log = stack.home / "logs" / (name.replace("/", ".") + ".log")
        assert re.search(
            rf"{ELAPSED} starting {re.escape(name)} \(log: {re.escape(str(log))}\)", output
        )
        assert re.search(
            rf"{ELAPSED} ready {re.escape(name)} on http://\S+ \(took \d+\.\ds\)", output
        )
    assert re.search(r"Hoist is serving tiny at http://\S+/v1 after \d+s", output)
    # the engines before their sidecars, every replica before the gateway
    assert output.index("starting tiny-0/sidecar") > output.index("ready tiny-0/engine")
    assert output.index("starting gateway") > output.index("ready tiny-1/sidecar")


def test_slow_engines_are_reported_while_they_load(stack: Stack) -> None:
    stack.env["STANDIN_SLOW_MODULES"] = "data_plane.inference.simulator"
    stack.env["HOIST_PROGRESS_INTERVAL_S"] = "0.5"
    proc = stack.up()
    still = re.compile(rf"{ELAPSED} still starting: tiny-\d/engine \((\d+)s\), tiny-\d/engine")
    try:
        wait_for(
            lambda: any(int(m) >= 2 for m in still.findall(stack.output.read_text())),
            "a line saying the engines have been starting for 2 s",
        )
    finally:
        output = stop(proc, stack)
    assert "ready tiny-0/engine" not in output


def test_status_is_never_cut_off_a_terminal(stack: Stack, running: subprocess.Popen[bytes]) -> None:
    table = hoist(stack, "status")
    assert table.returncode == 0, table.stderr
    assert "…" not in table.stdout  # rich's mark of a cell it cut
    assert max(len(line) for line in table.stdout.splitlines()) > 80
    for expected in ("tiny-0", "tiny-1", "Ready", "sql", "Gateway"):
        assert expected in table.stdout

    wide = hoist(stack, "status", "--output", "wide", columns="100")
    assert wide.returncode == 0, wide.stderr
    state = json.loads(hoist(stack, "status", "-o", "json").stdout)
    replica = state["models"][0]["replicas"][0]
    source = state["adapters"][0]["spec"]["source"]
    for expected in ("SIDECAR PID", str(replica["enginePid"]), replica["sidecarUrl"], source):
        assert expected in wide.stdout, expected
    assert state["gateway"]["phase"] == "Ready"
    assert [a["metadata"]["name"] for a in state["adapters"]] == ["sql"]


def test_adapters_added_through_the_api_stay_with_their_declarations(stack: Stack) -> None:
    proc = stack.up()
    wait_for(lambda: serving(stack), "the first run to serve")
    add_adapter_through_the_admin_api(stack, "extra")
    refused = hoist(stack, "reset", "-f", str(stack.config))
    assert refused.returncode == 1 and "is running" in refused.stderr
    stop(proc, stack)
    [stored] = (stack.home / "store").iterdir()
    assert stored.name.startswith("config-")
    assert [p.name for p in stored.glob("*.yaml")] == ["extra.yaml"]  # `sql` lives in the YAML

    proc = stack.up()  # the same declarations: restored, and said so
    wait_for(lambda: serving(stack), "the second run to serve")
    output = stop(proc, stack)
    assert "restoring 1 adapter(s) added through the gateway" in output
    assert f"extra (stored in {stored};" in output
    assert "hoist reset -f PATH" in output

    other = stack.config.parent / "other"
    shutil.copytree(stack.config, other)
    proc = replace(stack, config=other).up()  # other declarations: not a trace of `extra`
    wait_for(lambda: serving(stack), "a run of other declarations to serve")
    names = [
        a["metadata"]["name"]
        for a in json.loads(hoist(stack, "status", "-o", "json").stdout)["adapters"]
    ]
    output = stop(proc, stack)
    assert names == ["sql"]
    assert "restoring" not in output

    forgot = hoist(stack, "reset", "-f", str(stack.config))
    assert forgot.returncode == 0, forgot.stderr
    assert f"forgot 1 stored adapter(s): extra ({stored})" in forgot.stdout
    assert not stored.exists()
