"""Conformance: the same API checks against the simulator and the real vLLM engine.

Where the two differ, the simulator is wrong. Values the engines cannot share (generated
text, token counts of a different tokenizer, ids, timestamps) are compared by shape: the
same keys, the same JSON types, the same invariants.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.conformance import MAX_LORAS, MAX_MODEL_LEN, Engine


@pytest.fixture
def http(engine: Engine) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=engine.base_url, timeout=60) as client:
        yield client


@pytest.fixture
def sdk(engine: Engine) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{engine.base_url}/v1", api_key="x", max_retries=0) as client:
        yield client


def _shape(value: Any) -> Any:
    """The keys and JSON types of a value, recursively (lists by their first element)."""
    if isinstance(value, dict):
        return {key: _shape(item) for key, item in sorted(value.items())}
    if isinstance(value, list):
        return [_shape(value[0])] if value else []
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if value is None:
        return "null"
    return type(value).__name__


def _events(response: httpx.Response) -> list[Any]:
    """The SSE events of a streamed answer, checking the framing on the way."""
    assert response.headers["content-type"].startswith("text/event-stream")
    text = response.text
    assert text.endswith("data: [DONE]\n\n")
    blocks = text.split("\n\n")
    assert blocks[-1] == ""
    events = []
    for block in blocks[:-2]:
        assert block.startswith("data: "), block
        events.append(json.loads(block[len("data: ") :]))
    return events


def _adapter_name() -> str:
    return f"lora-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def adapter(engine: Engine, http: httpx.Client) -> Iterator[str]:
    """A freshly loaded adapter (unloaded afterwards)."""
    name = _adapter_name()
    body = {"lora_name": name, "lora_path": str(engine.adapters["alpha"])}
    response = http.post("/v1/load_lora_adapter", json=body)
    assert response.status_code == 200, response.text
    yield name
    http.post("/v1/unload_lora_adapter", json={"lora_name": name})


# -- plain endpoints -------------------------------------------------------------------


def test_health_ping_version(http: httpx.Client) -> None:
    assert http.get("/health").status_code == 200
    assert http.get("/ping").status_code == 200
    assert http.get("/version").json() == {"version": "0.32.0"}


def test_unknown_path_and_method(http: httpx.Client) -> None:
    missing = http.get("/v1/nothing")
    assert (missing.status_code, missing.json()) == (404, {"detail": "Not Found"})
    wrong = http.get("/v1/completions")
    assert (wrong.status_code, wrong.json()) == (405, {"detail": "Method Not Allowed"})


def test_models_list_base_and_adapters(engine: Engine, http: httpx.Client, adapter: str) -> None:
    listing = http.get("/v1/models").json()
    assert listing["object"] == "list"
    cards = {card["id"]: card for card in listing["data"]}
    base = cards[engine.model]
    assert base["parent"] is None
    assert base["owned_by"] == "vllm"
    assert base["max_model_len"] == MAX_MODEL_LEN
    assert cards[adapter]["parent"] == engine.model
    assert cards[adapter]["root"] == str(engine.adapters["alpha"])
    assert cards[adapter]["max_model_len"] is None


# -- generation ------------------------------------------------------------------------


@pytest.mark.parametrize("max_tokens", [1, 5])
def test_completion_obeys_max_tokens(sdk: openai.OpenAI, engine: Engine, max_tokens: int) -> None:
    answer = sdk.completions.create(
        model=engine.model,
        prompt="The capital of France is",
        max_tokens=max_tokens,
        extra_body={"ignore_eos": True},
    )
    assert answer.usage is not None
    assert answer.usage.completion_tokens == max_tokens
    assert answer.usage.total_tokens == answer.usage.prompt_tokens + max_tokens
    assert answer.choices[0].finish_reason == "length"
    assert answer.model == engine.model
    assert answer.id.startswith("cmpl-")
    assert (answer.system_fingerprint or "").startswith("vllm-0.32.0-")


def test_chat_completion(sdk: openai.OpenAI, engine: Engine) -> None:
    answer = sdk.chat.completions.create(
        model=engine.model,
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
        max_tokens=4,
        extra_body={"ignore_eos": True},
    )
    assert answer.object == "chat.completion"
    assert answer.id.startswith("chatcmpl-")
    assert answer.choices[0].message.role == "assistant"
    assert answer.choices[0].finish_reason == "length"
    assert answer.usage is not None
    assert answer.usage.completion_tokens == 4


def test_n_does_not_count_the_prompt_twice(sdk: openai.OpenAI, engine: Engine) -> None:
    one = sdk.completions.create(
        model=engine.model, prompt="Hello there", max_tokens=3, extra_body={"ignore_eos": True}
    )
    two = sdk.completions.create(
        model=engine.model,
        prompt="Hello there",
        max_tokens=3,
        n=2,
        extra_body={"ignore_eos": True},
    )
    assert [c.index for c in two.choices] == [0, 1]
    assert one.usage is not None
    assert two.usage is not None
    assert two.usage.prompt_tokens == one.usage.prompt_tokens
    assert two.usage.completion_tokens == 6


def test_prompt_batches_and_token_prompts(sdk: openai.OpenAI, engine: Engine) -> None:
    batch = sdk.completions.create(
        model=engine.model,
        prompt=["Hello", "World"],
        max_tokens=2,
        extra_body={"ignore_eos": True},
    )
    assert [c.index for c in batch.choices] == [0, 1]
    tokens = sdk.completions.create(
        model=engine.model, prompt=[1, 2, 3, 4], max_tokens=2, extra_body={"ignore_eos": True}
    )
    assert tokens.usage is not None
    assert tokens.usage.prompt_tokens == 4


def test_stop_string_cuts_the_text(sdk: openai.OpenAI, engine: Engine) -> None:
    args: dict[str, Any] = {
        "model": engine.model,
        "prompt": "Once upon a time",
        "max_tokens": 30,
        "temperature": 0,
        "extra_body": {"ignore_eos": True},
    }
    full = sdk.completions.create(**args).choices[0].text
    middle = len(full) // 2
    stop = full[middle : middle + 2]
    cut = sdk.completions.create(**args, stop=[stop]).choices[0]
    assert cut.finish_reason == "stop"
    assert cut.model_extra is not None
    assert cut.model_extra["stop_reason"] == stop
    assert cut.text == full[: full.find(stop)]
    streamed = sdk.completions.create(**args, stop=[stop], stream=True)
    chunks = [chunk.choices[0] for chunk in streamed if chunk.choices]
    assert "".join(c.text for c in chunks) == cut.text
    assert chunks[-1].finish_reason == "stop"


def test_streamed_completion(engine: Engine, http: httpx.Client) -> None:
    body = {
        "model": engine.model,
        "prompt": "Hello there",
        "max_tokens": 4,
        "stream": True,
        "stream_options": {"include_usage": True},
        "ignore_eos": True,
    }
    events = _events(http.post("/v1/completions", json=body))
    *chunks, last_choice, usage = events
    assert all(e["choices"][0]["finish_reason"] is None for e in chunks)
    assert last_choice["choices"][0]["finish_reason"] == "length"
    assert "system_fingerprint" not in last_choice
    assert "system_fingerprint" in usage
    assert usage["choices"] == []
    assert usage["usage"]["completion_tokens"] == 4
    assert len({e["id"] for e in events}) == 1


def test_streamed_chat(engine: Engine, http: httpx.Client) -> None:
    body = {
        "model": engine.model,
        "messages": [{"role": "user", "content": "Hi"}],
        "max_tokens": 3,
        "stream": True,
        "stream_options": {"include_usage": True},
        "ignore_eos": True,
    }
    events = _events(http.post("/v1/chat/completions", json=body))
    first, *middle, last_choice, usage = events
    assert first["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert "system_fingerprint" in usage
    assert all("role" not in e["choices"][0]["delta"] for e in [*middle, last_choice])
    assert last_choice["choices"][0]["finish_reason"] == "length"
    assert usage["usage"]["completion_tokens"] == 3
    assert all(e["object"] == "chat.completion.chunk" for e in events)


def test_continuous_usage_stats(engine: Engine, http: httpx.Client) -> None:
    body = {
        "model": engine.model,
        "messages": [{"role": "user", "content": "Hi"}],
        "max_tokens": 3,
        "stream": True,
        "stream_options": {"include_usage": True, "continuous_usage_stats": True},
        "ignore_eos": True,
    }
    events = _events(http.post("/v1/chat/completions", json=body))
    assert all("usage" in e for e in events)
    assert events[-1]["usage"]["completion_tokens"] == 3
    completions = [e["usage"]["completion_tokens"] for e in events]
    assert completions == sorted(completions)


def test_streamed_n_choices(engine: Engine, http: httpx.Client) -> None:
    body = {"model": engine.model, "prompt": "Hi", "max_tokens": 2, "n": 2, "stream": True}
    body["ignore_eos"] = True
    events = _events(http.post("/v1/completions", json=body))
    finals = [e for e in events if e["choices"][0]["finish_reason"]]
    assert sorted(e["choices"][0]["index"] for e in finals) == [0, 1]
    assert all("system_fingerprint" in e for e in finals)
    assert sorted(e["choices"][0]["index"] for e in events) == [0, 0, 1, 1]


def test_adapter_serves_requests(sdk: openai.OpenAI, adapter: str) -> None:
    answer = sdk.completions.create(
        model=adapter, prompt="Hello", max_tokens=3, extra_body={"ignore_eos": True}
    )
    assert answer.model == adapter
    assert answer.usage is not None
    assert answer.usage.completion_tokens == 3


# -- errors ----------------------------------------------------------------------------

_ERRORS: dict[str, tuple[str, Any, int, str, str | None, str]] = {
    "unknown-model": (
        "/v1/completions",
        {"model": "nope", "prompt": "x", "max_tokens": 2},
        404,
        "NotFoundError",
        "model",
        "The model `nope` does not exist. Valid aliases: tiny.",
    ),
    "chat-unknown-model": (
        "/v1/chat/completions",
        {"model": "nope", "messages": [{"role": "user", "content": "x"}]},
        404,
        "NotFoundError",
        "model",
        "The model `nope` does not exist.",
    ),
    "missing-prompt": (
        "/v1/completions",
        {"model": "tiny"},
        400,
        "BadRequestError",
        "prompt",
        "Either prompt or prompt_embeds must be provided and non-empty.",
    ),
    "empty-prompt": (
        "/v1/completions",
        {"model": "tiny", "prompt": ""},
        400,
        "BadRequestError",
        "prompt",
        "Either prompt or prompt_embeds must be provided and non-empty.",
    ),
    "missing-messages": (
        "/v1/chat/completions",
        {"model": "tiny"},
        400,
        "Bad Request",
        "body.messages",
        "'loc': 'body.messages', 'msg': 'Field required'",
    ),
    "messages-not-a-list": (
        "/v1/chat/completions",
        {"model": "tiny", "messages": "hi"},
        400,
        "Bad Request",
        "body.messages",
        "Input should be a valid list",
    ),
    "zero-max-tokens": (
        "/v1/completions",
        {"model": "tiny", "prompt": "x", "max_tokens": 0},
        400,
        "BadRequestError",
        "max_tokens",
        "max_tokens must be at least 1, got 0. (parameter=max_tokens, value=0)",
    ),
    "max-tokens-over-context": (
        "/v1/completions",
        {"model": "tiny", "prompt": "x", "max_tokens": 100000},
        400,
        "BadRequestError",
        "max_tokens",
        "max_tokens=100000 cannot be greater than max_model_len=512.",
    ),
    "max-tokens-not-an-integer": (
        "/v1/completions",
        {"model": "tiny", "prompt": "x", "max_tokens": "abc"},
        400,
        "Bad Request",
        "body.max_tokens",
        "'type': 'int_parsing', 'loc': 'body.max_tokens'",
    ),
    "n-zero": (
        "/v1/completions",
        {"model": "tiny", "prompt": "x", "n": 0},
        400,
        "BadRequestError",
        None,
        "n must be at least 1, got 0.",
    ),
    "negative-temperature": (
        "/v1/completions",
        {"model": "tiny", "prompt": "x", "temperature": -1},
        400,
        "BadRequestError",
        "temperature",
        "temperature must be non-negative, got -1.0. (parameter=temperature, value=-1.0)",
    ),
    "stream-options-without-stream": (
        "/v1/completions",
        {"model": "tiny", "prompt": "x", "stream_options": {"include_usage": True}},
        400,
        "BadRequestError",
        "stream_options",
        "Stream options can only be defined when `stream=True`.",
    ),
    "max-completion-tokens-over-context": (
        "/v1/chat/completions",
        {
            "model": "tiny",
            "messages": [{"role": "user", "content": "x"}],
            "max_completion_tokens": 1000,
        },
        400,
        "BadRequestError",
        "max_completion_tokens",
        "max_completion_tokens=1000 cannot be greater than max_model_len=512.",
    ),
    "unload-without-name": (
        "/v1/unload_lora_adapter",
        {},
        400,
        "Bad Request",
        "body.lora_name",
        "'loc': 'body.lora_name', 'msg': 'Field required'",
    ),
    "prompt-too-long": (
        "/v1/completions",
        {"model": "tiny", "prompt": [5] * 600, "max_tokens": 2},
        400,
        "BadRequestError",
        "input_tokens",
        "This model's maximum context length is 512 tokens. However, your prompt contains "
        "600 input tokens",
    ),
}


@pytest.mark.parametrize("case", list(_ERRORS.values()), ids=list(_ERRORS))
def test_errors_match_vllm(http: httpx.Client, case: tuple[Any, ...]) -> None:
    path, body, status, err_type, param, message = case
    response = http.post(path, json=body)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["type"] == err_type
    assert error["param"] == param
    assert error["code"] == status
    assert message in error["message"]


def test_malformed_json(http: httpx.Client) -> None:
    response = http.post(
        "/v1/completions", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["type"], error["param"]) == ("Bad Request", "body.1")
    assert "JSON decode error" in error["message"]


# -- adapters --------------------------------------------------------------------------


def test_adapter_load_unload_semantics(engine: Engine, http: httpx.Client) -> None:
    name = _adapter_name()
    body = {"lora_name": name, "lora_path": str(engine.adapters["beta"])}
    loaded = http.post("/v1/load_lora_adapter", json=body)
    assert (loaded.status_code, loaded.text) == (
        200,
        f"Success: LoRA adapter '{name}' added successfully.",
    )
    again = http.post("/v1/load_lora_adapter", json=body)
    assert again.status_code == 400
    assert again.json()["error"] == {
        "message": f"The lora adapter '{name}' has already been loaded. If you want to load "
        "the adapter in place, set 'load_inplace' to True.",
        "type": "InvalidUserInput",
        "param": None,
        "code": 400,
    }
    unloaded = http.post("/v1/unload_lora_adapter", json={"lora_name": name})
    assert (unloaded.status_code, unloaded.text) == (
        200,
        f"Success: LoRA adapter '{name}' removed successfully.",
    )
    gone = http.post("/v1/unload_lora_adapter", json={"lora_name": name})
    assert gone.status_code == 404
    assert gone.json()["error"] == {
        "message": f"The lora adapter '{name}' cannot be found.",
        "type": "NotFoundError",
        "param": None,
        "code": 404,
    }
    after = http.post("/v1/completions", json={"model": name, "prompt": "x", "max_tokens": 1})
    assert after.status_code == 404


def test_adapter_load_errors(engine: Engine, http: httpx.Client) -> None:
    missing = http.post(
        "/v1/load_lora_adapter", json={"lora_name": "ghost", "lora_path": "/nonexistent/x"}
    )
    assert missing.status_code == 404
    assert missing.json()["error"] == {
        "message": "Loading lora ghost failed: No adapter found for /nonexistent/x",
        "type": "NotFoundError",
        "param": None,
        "code": 404,
    }
    too_big = http.post(
        "/v1/load_lora_adapter",
        json={"lora_name": _adapter_name(), "lora_path": str(engine.adapters["too-big"])},
    )
    assert too_big.status_code >= 400
    assert "LoRA rank 16 is greater than max_lora_rank 8" in too_big.json()["error"]["message"]
    no_fields = http.post("/v1/load_lora_adapter", json={})
    assert no_fields.status_code == 400
    error = no_fields.json()["error"]
    assert (error["type"], error["param"]) == ("Bad Request", "body.lora_name")
    assert error["message"].startswith("2 validation errors:")
    base = http.post(
        "/v1/load_lora_adapter",
        json={"lora_name": engine.model, "lora_path": str(engine.adapters["alpha"])},
    )
    assert base.status_code == 400
    assert "conflicts with a served base model" in base.json()["error"]["message"]


# -- metrics ---------------------------------------------------------------------------

# The series the gateway and the autoscaler read: (name, type, label names).
_KEY_SERIES = [
    ("vllm:num_requests_running", "gauge", {"engine", "model_name"}),
    ("vllm:num_requests_waiting", "gauge", {"engine", "model_name"}),
    ("vllm:kv_cache_usage_perc", "gauge", {"engine", "model_name"}),
    ("vllm:prefix_cache_queries", "counter", {"engine", "model_name"}),
    ("vllm:prefix_cache_hits", "counter", {"engine", "model_name"}),
    ("vllm:time_to_first_token_seconds", "histogram", {"engine", "model_name"}),
    ("vllm:inter_token_latency_seconds", "histogram", {"engine", "model_name"}),
    ("vllm:e2e_request_latency_seconds", "histogram", {"engine", "model_name"}),
    ("vllm:request_success", "counter", {"engine", "model_name", "finished_reason"}),
    ("vllm:generation_tokens", "counter", {"engine", "model_name"}),
    ("vllm:prompt_tokens", "counter", {"engine", "model_name"}),
    (
        "vllm:lora_requests_info",
        "gauge",
        {"max_lora", "waiting_lora_adapters", "running_lora_adapters"},
    ),
]


def _families(http: httpx.Client) -> dict[str, Any]:
    response = http.get("/metrics")
    assert response.status_code == 200
    return {family.name: family for family in text_string_to_metric_families(response.text)}


def _value(families: dict[str, Any], name: str, sample: str, **labels: str) -> float:
    total = 0.0
    for s in families[name].samples:
        if s.name == sample and labels.items() <= s.labels.items():
            total += s.value
    return total


@pytest.mark.parametrize(("name", "kind", "labels"), _KEY_SERIES, ids=[s[0] for s in _KEY_SERIES])
def test_key_metric_series(http: httpx.Client, name: str, kind: str, labels: set[str]) -> None:
    http.post("/v1/completions", json={"model": "tiny", "prompt": "warm up", "max_tokens": 2})
    families = _families(http)
    assert name in families, sorted(families)
    family = families[name]
    assert family.type == kind
    sample_labels = {key for s in family.samples for key in s.labels if key != "le"}
    assert sample_labels == labels
    if name == "vllm:lora_requests_info":
        assert {s.labels["max_lora"] for s in family.samples} == {str(MAX_LORAS)}


def test_counters_follow_requests(engine: Engine, http: httpx.Client) -> None:
    before = _families(http)
    prompt = f"counting {uuid.uuid4().hex} " * 3
    for _ in range(2):
        response = http.post(
            "/v1/completions",
            json={"model": engine.model, "prompt": prompt, "max_tokens": 3, "ignore_eos": True},
        )
        assert response.status_code == 200
    after = _families(http)

    def delta(name: str, sample: str, **labels: str) -> float:
        return _value(after, name, sample, **labels) - _value(before, name, sample, **labels)

    assert (
        delta("vllm:request_success", "vllm:request_success_total", finished_reason="length") == 2
    )
    assert delta("vllm:generation_tokens", "vllm:generation_tokens_total") == 6
    assert delta("vllm:time_to_first_token_seconds", "vllm:time_to_first_token_seconds_count") == 2
    assert delta("vllm:inter_token_latency_seconds", "vllm:inter_token_latency_seconds_count") == 4
    assert delta("vllm:prefix_cache_queries", "vllm:prefix_cache_queries_total") > 0
    assert _value(after, "vllm:num_requests_running", "vllm:num_requests_running") == 0


def test_histogram_buckets_match(simulator_engine: Engine, vllm_engine: Engine) -> None:
    buckets = {}
    for engine in (simulator_engine, vllm_engine):
        with httpx.Client(base_url=engine.base_url) as client:
            families = _families(client)
        buckets[engine.kind] = {
            name: sorted(
                {float(s.labels["le"]) for s in family.samples if s.name.endswith("_bucket")}
            )
            for name, family in families.items()
            if name.startswith("vllm:") and family.type == "histogram"
        }
    assert buckets["simulator"] == buckets["vllm"]


def test_simulator_series_are_a_subset_of_vllms(
    simulator_engine: Engine, vllm_engine: Engine
) -> None:
    kinds = {}
    for engine in (simulator_engine, vllm_engine):
        with httpx.Client(base_url=engine.base_url) as client:
            families = _families(client)
        kinds[engine.kind] = {
            name: (family.type, frozenset(k for s in family.samples for k in s.labels))
            for name, family in families.items()
            if name.startswith("vllm:") and family.samples
        }
    sim, real = kinds["simulator"], kinds["vllm"]
    extra = set(sim) - set(real)
    assert not extra, f"the simulator invents series: {extra}"
    for name, (kind, labels) in sim.items():
        if name == "vllm:cache_config_info":
            assert labels <= real[name][1]
            continue
        assert (kind, labels) == real[name], name
    missing = set(real) - set(sim)
    # vLLM's perf-model estimates (FLOPs and bytes) have no meaning for a simulator.
    perf = ("flops", "read_bytes", "write_bytes")
    assert missing <= {
        f"vllm:estimated_{what}_per_gpu{suffix}" for what in perf for suffix in ("", "_created")
    }, missing


# -- shapes ----------------------------------------------------------------------------


def _both(simulator_engine: Engine, vllm_engine: Engine) -> list[httpx.Client]:
    return [
        httpx.Client(base_url=simulator_engine.base_url, timeout=60),
        httpx.Client(base_url=vllm_engine.base_url, timeout=60),
    ]


@pytest.mark.parametrize(
    ("path", "body"),
    [
        pytest.param(
            "/v1/completions",
            {"model": "tiny", "prompt": "Hi", "max_tokens": 2, "ignore_eos": True},
            id="completion",
        ),
        pytest.param(
            "/v1/chat/completions",
            {
                "model": "tiny",
                "messages": [{"role": "user", "content": "Hi"}],
                "max_tokens": 2,
                "ignore_eos": True,
            },
            id="chat",
        ),
        pytest.param(
            "/v1/chat/completions",
            {"model": "tiny", "messages": [{"role": "user", "content": "Hi"}], "n": 0},
            id="error",
        ),
    ],
)
def test_same_answer_shape(
    simulator_engine: Engine, vllm_engine: Engine, path: str, body: dict[str, Any]
) -> None:
    shapes = []
    for client in _both(simulator_engine, vllm_engine):
        with client:
            response = client.post(path, json=body)
            shapes.append((response.status_code, _shape(response.json())))
    assert shapes[0] == shapes[1]


@pytest.mark.parametrize(
    ("path", "body"),
    [
        pytest.param(
            "/v1/completions",
            {"model": "tiny", "prompt": "Hi", "max_tokens": 3},
            id="completion",
        ),
        pytest.param(
            "/v1/chat/completions",
            {"model": "tiny", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 3},
            id="chat",
        ),
    ],
)
def test_same_stream_shape(
    simulator_engine: Engine, vllm_engine: Engine, path: str, body: dict[str, Any]
) -> None:
    streamed = {
        **body,
        "stream": True,
        "stream_options": {"include_usage": True},
        "ignore_eos": True,
    }
    shapes = []
    for client in _both(simulator_engine, vllm_engine):
        with client:
            events = _events(client.post(path, json=streamed))
        first, *middle, last_choice, usage = events
        shapes.append(
            (
                _shape(first),
                {json.dumps(_shape(e), sort_keys=True) for e in middle},
                _shape(last_choice),
                _shape(usage),
            )
        )
    sim, real = shapes
    assert sim[0] == real[0]
    assert sim[2] == real[2]
    assert sim[3] == real[3]
    assert sim[1] <= real[1] | {json.dumps(real[2], sort_keys=True)}


def test_same_adapter_rank_error(simulator_engine: Engine, vllm_engine: Engine) -> None:
    answers = []
    for client in _both(simulator_engine, vllm_engine):
        with client:
            body = {"lora_name": _adapter_name(), "lora_path": str(vllm_engine.adapters["too-big"])}
            response = client.post("/v1/load_lora_adapter", json=body)
            error = response.json()["error"]
            answers.append((response.status_code, error["type"], error["param"], error["code"]))
    assert answers[0] == answers[1]


def test_a_request_without_model_uses_the_base_model(
    sdk: openai.OpenAI, http: httpx.Client
) -> None:
    response = http.post("/v1/completions", json={"prompt": "Hello", "max_tokens": 2})
    assert response.status_code == 200
    assert response.json()["model"] == "tiny"
