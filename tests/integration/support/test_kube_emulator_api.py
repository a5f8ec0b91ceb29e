"""The emulator's REST behaviour, each test pinned to the Kubernetes documentation it cites.

Plain aiohttp on 127.0.0.1, speaking to the emulator as any client would.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from control_plane.api.constants import API_VERSION
from tests.support.kube_emulator import HoistKubeEmulator, running_emulator

MODELS = f"/apis/{API_VERSION}/namespaces/default/models"
MERGE = {"Content-Type": "application/merge-patch+json"}
JSON_PATCH = {"Content-Type": "application/json-patch+json"}


@pytest.fixture
async def api() -> AsyncIterator[tuple[HoistKubeEmulator, aiohttp.ClientSession]]:
    async with running_emulator() as (emulator, url), aiohttp.ClientSession(url) as session:
        yield emulator, session


def model(name: str = "m", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "Model",
        "metadata": {"name": name},
        "spec": {"source": "x", **spec},
    }


async def send(
    session: aiohttp.ClientSession, method: str, path: str, body: Any = None, **kw: Any
) -> tuple[int, dict[str, Any]]:
    async with session.request(method, path, json=body, **kw) as resp:
        return resp.status, await resp.json()


async def events(
    session: aiohttp.ClientSession, params: dict[str, str], count: int
) -> list[dict[str, Any]]:
    """The first `count` events of a watch on Models (bounded: the watch has a timeout)."""
    out: list[dict[str, Any]] = []
    query = {"watch": "true", "timeoutSeconds": "10", **params}
    async with session.get(MODELS, params=query) as resp:
        assert resp.status == 200
        async for line in resp.content:
            if line.strip():
                out.append(json.loads(line))
            if len(out) == count:
                break
    return out


async def test_metadata_generation_and_conflicts(
    api: tuple[HoistKubeEmulator, aiohttp.ClientSession],
) -> None:
    """https://kubernetes.io/docs/reference/using-api/api-concepts/#resource-versions and
    .../custom-resource-definitions/#status-subresource (generation on spec changes only);
    https://kubernetes.io/docs/reference/using-api/api-concepts/#conflicts (409)."""
    _, session = api
    status, created = await send(session, "POST", MODELS, model())
    assert status == 201
    meta = created["metadata"]
    assert meta["generation"] == 1 and meta["uid"] and meta["creationTimestamp"]
    status, again = await send(session, "POST", MODELS, model())
    assert (status, again["reason"]) == (409, "AlreadyExists")
    _, labelled = await send(
        session, "PATCH", f"{MODELS}/m", {"metadata": {"labels": {"a": "b"}}}, headers=MERGE
    )
    assert labelled["metadata"]["generation"] == 1
    assert int(labelled["metadata"]["resourceVersion"]) > int(meta["resourceVersion"])
    _, scaled = await send(
        session, "PATCH", f"{MODELS}/m", {"spec": {"replicas": 2}}, headers=MERGE
    )
    assert scaled["metadata"]["generation"] == 2
    stale = dict(scaled, metadata=dict(scaled["metadata"], resourceVersion=meta["resourceVersion"]))
    status, conflict = await send(session, "PUT", f"{MODELS}/m", stale)
    assert (status, conflict["reason"]) == (409, "Conflict")
    status, replaced = await send(session, "PUT", f"{MODELS}/m", dict(scaled, spec={"source": "y"}))
    assert status == 200
    assert replaced["spec"]["replicas"] == 1  # PUT replaces: the dropped field is defaulted
    test_op = [{"op": "test", "path": "/metadata/resourceVersion", "value": "1"}]
    status, _ = await send(session, "PATCH", f"{MODELS}/m", test_op, headers=JSON_PATCH)
    assert status == 422


async def test_generate_name_and_strategic_patch_for_custom_resources(
    api: tuple[HoistKubeEmulator, aiohttp.ClientSession],
) -> None:
    """https://kubernetes.io/docs/reference/kubernetes-api/common-definitions/object-meta/
    (generateName) and .../update-api-object-kubectl-patch/ (no strategic merge patch for
    custom resources: 415)."""
    _, session = api
    doc = model()
    doc["metadata"] = {"generateName": "m-"}
    _, created = await send(session, "POST", MODELS, doc)
    name = created["metadata"]["name"]
    assert name.startswith("m-") and len(name) == len("m-") + 5
    strategic = {"Content-Type": "application/strategic-merge-patch+json"}
    status, _ = await send(session, "PATCH", f"{MODELS}/{name}", {"spec": {}}, headers=strategic)
    assert status == 415


async def test_transition_rule_runs_on_updates_only(
    api: tuple[HoistKubeEmulator, aiohttp.ClientSession],
) -> None:
    """.../custom-resource-definitions/#transition-rules: a rule with `oldSelf` is skipped
    on create and checked against the stored value on update."""
    emulator, session = api
    crd = emulator._kinds[f"{API_VERSION}/models"]
    assert crd.schema is not None
    source = crd.schema["properties"]["spec"]["properties"]["source"]
    source["x-kubernetes-validations"] = [
        {"rule": "self == oldSelf", "message": "source is immutable"}
    ]
    status, _ = await send(session, "POST", MODELS, model())
    assert status == 201
    status, refused = await send(
        session, "PATCH", f"{MODELS}/m", {"spec": {"source": "other"}}, headers=MERGE
    )
    assert status == 422
    assert refused["details"]["causes"] == [
        {
            "reason": "FieldValueInvalid",
            "message": 'Invalid value: "string": source is immutable',
            "field": "spec.source",
        }
    ]


async def test_watch_replays_from_a_resource_version(
    api: tuple[HoistKubeEmulator, aiohttp.ClientSession],
) -> None:
    """https://kubernetes.io/docs/reference/using-api/api-concepts/#efficient-detection-of-changes:
    a watch from the list's resourceVersion gets every later change, in order."""
    _, session = api
    await send(session, "POST", MODELS, model("a"))
    _, listing = await send(session, "GET", MODELS)
    since = listing["metadata"]["resourceVersion"]
    await send(session, "POST", MODELS, model("b"))
    await send(session, "PATCH", f"{MODELS}/a", {"spec": {"replicas": 3}}, headers=MERGE)
    await send(session, "DELETE", f"{MODELS}/b")
    got = await events(session, {"resourceVersion": since}, 3)
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in got] == [
        ("ADDED", "b"),
        ("MODIFIED", "a"),
        ("DELETED", "b"),
    ]
    versions = [int(e["object"]["metadata"]["resourceVersion"]) for e in got]
    assert versions == sorted(versions) and versions[0] > int(since)
    fresh = await events(session, {}, 1)  # no resourceVersion: the current state first
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in fresh] == [("ADDED", "a")]


async def test_watch_from_a_compacted_version_gets_410(
    api: tuple[HoistKubeEmulator, aiohttp.ClientSession],
) -> None:
    """.../api-concepts/#410-gone-responses: a version older than the history kept is
    answered with an ERROR event carrying a 410 Expired Status."""
    emulator, session = api
    await send(session, "POST", MODELS, model("a"))
    await send(session, "PATCH", f"{MODELS}/a", {"spec": {"replicas": 2}}, headers=MERGE)
    _, latest = await send(session, "GET", MODELS)
    emulator.history.compact(int(latest["metadata"]["resourceVersion"]))
    (event,) = await events(session, {"resourceVersion": "1"}, 1)
    assert event["type"] == "ERROR"
    assert (event["object"]["code"], event["object"]["reason"]) == (410, "Expired")
    assert event["object"]["message"].startswith("too old resource version: 1 (")


async def test_watch_bookmarks_carry_the_latest_version(
    api: tuple[HoistKubeEmulator, aiohttp.ClientSession],
) -> None:
    """.../api-concepts/#watch-bookmarks: with allowWatchBookmarks, a quiet watch gets
    BOOKMARK events whose object has only kind, apiVersion and metadata.resourceVersion."""
    emulator, session = api
    emulator.bookmark_interval = 0.2
    _, created = await send(session, "POST", MODELS, model("a"))
    version = created["metadata"]["resourceVersion"]
    params = {"resourceVersion": version, "allowWatchBookmarks": "true"}
    (bookmark,) = await asyncio.wait_for(events(session, params, 1), 30)
    assert bookmark == {
        "type": "BOOKMARK",
        "object": {
            "kind": "Model",
            "apiVersion": API_VERSION,
            "metadata": {"resourceVersion": version},
        },
    }


async def test_watch_timeout_ends_the_stream(
    api: tuple[HoistKubeEmulator, aiohttp.ClientSession],
) -> None:
    """`timeoutSeconds` bounds a watch (.../kubernetes-api/.../list-watch: timeoutSeconds)."""
    _, session = api
    params = {"watch": "true", "timeoutSeconds": "1"}
    async with session.get(MODELS, params=params) as resp:
        body = await asyncio.wait_for(resp.read(), 30)
    assert body.strip() == b""
