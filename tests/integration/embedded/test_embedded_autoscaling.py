"""The embedded default scales a model from zero when a request waits for it, and back to
zero when it has been idle: the autoscaler's decisions applied to local processes."""

from __future__ import annotations

from pathlib import Path

import openai

from tests.support.embedded import model_doc, running_embedded, wait_until

AUTOSCALED = model_doc(
    "elastic",
    replicas=0,
    minReplicas=0,
    maxReplicas=2,
    autoscaling={
        "enabled": True,
        "targetConcurrency": 1,
        "stableWindowSeconds": 4,
        "panicWindowSeconds": 2,
        "scaleDownDelaySeconds": 0,
        "scaleToZeroAfterSeconds": 4,
    },
)
FAST = {"HOIST_AUTOSCALE_INTERVAL_S": "0.5", "HOIST_DRAIN_S": "0.5"}


def test_a_request_wakes_a_model_at_zero_and_idleness_returns_it_to_zero(tmp_path: Path) -> None:
    with running_embedded(tmp_path, [AUTOSCALED], env=FAST) as stack:
        assert stack.replicas() == []
        # The gateway holds the request while the autoscaler starts a replica for it.
        with openai.OpenAI(
            base_url=f"{stack.gateway_url}/v1", api_key="unused", max_retries=0, timeout=60
        ) as client:
            reply = client.completions.create(model="elastic", prompt="Wake up", max_tokens=4)
        assert reply.choices[0].text
        replicas = stack.replicas()
        assert replicas
        assert any(r["ready"] for r in replicas)
        assert stack.state()["models"][0]["desiredReplicas"] == len(replicas)

        wait_until(lambda: stack.replicas() == [], "the idle model to scale back to zero", 90)
        wait_until(
            lambda: "stopped elastic-0 (scaled down)" in stack.log.read_text(),
            "the retired replica's processes to stop",
            30,
        )
        log = stack.log.read_text()
        assert "(ScaleFromZero)" in log
        assert "(ScaleToZero)" in log
