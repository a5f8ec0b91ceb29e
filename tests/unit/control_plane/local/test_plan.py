"""The embedded default's process plan: deterministic ports and the agreed command lines."""

from __future__ import annotations

import json
import socket
from dataclasses import replace

from control_plane.api import Model
from control_plane.api.constants import KV_EVENTS_PORT_OFFSET
from control_plane.local.plan import PlanSettings, Role, plan
from control_plane.local.preflight import check_ports
from control_plane.local.settings import SupervisorSettings
from tests.support.ports import free_port

SETTINGS = PlanSettings(
    python="/py",
    host="0.0.0.0",
    gateway_port=8080,
    admin_port=8079,
    engine_base_port=8100,
    sidecar_base_port=8200,
    engine_metrics_base_port=8300,
    adapters_dir="/home/a",
    engine_ready_timeout_s=900,
    ready_timeout_s=60,
)


def model(name: str, replicas: int, engine: str = "sim") -> Model:
    return Model.model_validate(
        {
            "metadata": {"name": name},
            "spec": {"source": "s", "engine": engine, "replicas": replicas, "maxModelLen": 512},
        }
    )


def test_ports_follow_replicas_across_models() -> None:
    p = plan([model("a", 2), model("b", 1)], SETTINGS)
    assert [r.name for r in p.replicas] == ["a-0", "a-1", "b-0"]
    assert [r.engine.port for r in p.replicas] == [8100, 8101, 8102]
    assert [r.sidecar.port for r in p.replicas] == [8200, 8201, 8202]
    assert p.gateway.port == 8080
    assert [s.role for s in p.processes] == [Role.ENGINE, Role.SIDECAR] * 3 + [Role.GATEWAY]


def test_zero_replicas_run_no_engine() -> None:
    p = plan([model("a", 0)], SETTINGS)
    assert p.replicas == ()
    assert [s.name for s in p.processes] == ["gateway"]


def test_sim_engine_command_line() -> None:
    [replica] = plan([model("a", 1)], SETTINGS).replicas
    argv = replica.engine.argv
    assert argv[:3] == ("/py", "-m", "data_plane.inference.simulator")
    flags = dict(zip(argv[3::2], argv[4::2], strict=True))
    assert flags == {
        "--host": "127.0.0.1",
        "--port": "8100",
        "--served-model-name": "a",
        "--max-loras": "4",
        "--max-lora-rank": "16",
        "--seed": "0",
        "--max-model-len": "512",
    }
    assert replica.engine.health_path == "/health"
    assert replica.engine.metrics_port is None


def test_a_precise_prefix_sim_engine_publishes_kv_events_on_its_port_plus_the_offset() -> None:
    precise = Model.model_validate(
        {
            "metadata": {"name": "p"},
            "spec": {
                "source": "s",
                "engine": "sim",
                "replicas": 2,
                "routingPolicy": "precise-prefix",
            },
        }
    )
    plain = plan([model("a", 1)], SETTINGS)
    assert "--kv-events-config" not in plain.replicas[0].engine.argv  # the default: no events
    for replica in plan([precise], SETTINGS).replicas:
        argv = replica.engine.argv
        config = json.loads(argv[argv.index("--kv-events-config") + 1])
        assert config == {
            "enable_kv_cache_events": True,
            "publisher": "zmq",
            "endpoint": f"tcp://*:{replica.engine.port + 1000}",
        }


def test_vllm_engine_gets_the_whole_model_document() -> None:
    [replica] = plan([model("a", 1, engine="vllm")], SETTINGS).replicas
    argv = replica.engine.argv
    assert argv[:3] == ("/py", "-m", "data_plane.inference.engine_api")
    assert argv[argv.index("--metrics-port") + 1] == "8300"
    assert replica.engine.metrics_port == 8300
    assert 8300 in plan([model("a", 1, engine="vllm")], SETTINGS).ports
    document = json.loads(argv[argv.index("--model-json") + 1])
    assert Model.model_validate(document).metadata.name == "a"
    assert "status" not in document


def test_the_engine_options_travel_in_the_model_document() -> None:
    declared = model("a", 1, engine="vllm")
    declared.spec.tool_call_parser = "hermes"
    declared.spec.chat_template = "{{ messages[0]['content'] }}"
    [replica] = plan([declared], SETTINGS).replicas
    argv = replica.engine.argv
    carried = Model.model_validate_json(argv[argv.index("--model-json") + 1])
    assert carried.spec.tool_call_parser == "hermes"
    assert carried.spec.chat_template == "{{ messages[0]['content'] }}"


def test_sidecar_and_gateway_wiring() -> None:
    p = plan([model("a", 1)], SETTINGS)
    sidecar = p.replicas[0].sidecar.argv
    assert sidecar[sidecar.index("--engine-url") + 1] == "http://127.0.0.1:8100"
    assert sidecar[sidecar.index("--adapter-dir") + 1] == "/home/a/a-0"
    gateway = p.gateway.argv
    assert gateway[gateway.index("--admin-url") + 1] == "http://127.0.0.1:8079"
    assert gateway[gateway.index("--host") + 1] == "0.0.0.0"
    # the gateway decides its workers itself (one per core, one while quotas are per process)
    assert "--workers" not in gateway
    assert "HOIST_GATEWAY_WORKERS" not in p.gateway.env


def test_a_simulated_embedding_model_runs_the_simulators_pooling_runner() -> None:
    embed = Model.model_validate(
        {"metadata": {"name": "e"}, "spec": {"source": "s", "engine": "sim", "task": "embed"}}
    )
    [replica] = plan([embed], SETTINGS).replicas
    argv = replica.engine.argv
    assert argv[argv.index("--runner") + 1] == "pooling"


def precise(name: str, engine: str) -> Model:
    spec = {"source": "s", "engine": engine, "replicas": 1, "routingPolicy": "precise-prefix"}
    return Model.model_validate({"metadata": {"name": name}, "spec": spec})


def test_a_precise_prefix_simulator_claims_its_kv_events_port() -> None:
    both = plan([precise("a", "sim"), precise("b", "vllm")], SETTINGS)
    sim, real = both.replicas
    assert sim.engine.kv_events_port == sim.engine.port + KV_EVENTS_PORT_OFFSET
    assert real.engine.kv_events_port is None  # vLLM is not given --kv-events-config
    assert sim.engine.kv_events_port in both.ports


def test_preflight_names_a_taken_kv_events_port() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        engine_base = port - KV_EVENTS_PORT_OFFSET
        the_plan = plan([precise("a", "sim")], replace(SETTINGS, engine_base_port=engine_base))
        settings = SupervisorSettings(
            engine_base_port=engine_base, gateway_port=free_port(), admin_port=free_port()
        )
        problems = check_ports(the_plan, settings)
    assert any(f"port {port} (a-0/engine KV-cache events)" in p for p in problems), problems
