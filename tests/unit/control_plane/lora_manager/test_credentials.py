"""Decoding an adapter's credentials Secret (pure): known keys only, refusals name no value."""

from __future__ import annotations

import base64

import pytest

from control_plane.lora_manager.credentials import CredentialsError, credentials_of


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_the_known_keys_are_decoded_and_others_ignored() -> None:
    secret = {"data": {"HF_TOKEN": b64("hf_abc"), "password": b64("other"), "AWS_REGION": b64("x")}}
    assert credentials_of(secret, "hub", None) == {"HF_TOKEN": "hf_abc"}


def test_aws_keys_come_in_pairs_with_an_optional_session_token() -> None:
    secret = {"data": {"AWS_ACCESS_KEY_ID": b64("AKIA1"), "AWS_SECRET_ACCESS_KEY": b64("s"),
                       "AWS_SESSION_TOKEN": b64("t")}}  # fmt: skip
    assert credentials_of(secret, "s3", None) == {
        "AWS_ACCESS_KEY_ID": "AKIA1",
        "AWS_SECRET_ACCESS_KEY": "s",
        "AWS_SESSION_TOKEN": "t",
    }


@pytest.mark.parametrize(
    "secret",
    [
        pytest.param({}, id="no-data"),
        pytest.param({"data": {"token": b64("hf_abc")}}, id="no-known-key"),
        pytest.param({"data": {"AWS_ACCESS_KEY_ID": b64("AKIA1")}}, id="half-a-pair"),
        pytest.param({"data": {"HF_TOKEN": "not base64 hf_plain!"}}, id="undecodable"),
        pytest.param({"data": ["HF_TOKEN"]}, id="data-not-a-map"),
    ],
)
def test_unusable_secrets_are_refused_without_their_values(secret: dict[str, object]) -> None:
    with pytest.raises(CredentialsError) as refused:
        credentials_of(secret, "creds", None)
    assert refused.value.reason == "CredentialsInvalid"
    assert "'creds'" in refused.value.message
    assert "AKIA1" not in refused.value.message
    assert "hf_" not in refused.value.message


def test_a_tenants_adapter_may_name_only_that_tenants_secrets() -> None:
    data = {"HF_TOKEN": b64("hf_abc")}
    own = {"metadata": {"labels": {"serving.hoist.dev/tenant": "team-a"}}, "data": data}
    assert credentials_of(own, "hub", "team-a") == {"HF_TOKEN": "hf_abc"}
    assert credentials_of(own, "hub", None) == {"HF_TOKEN": "hf_abc"}  # the operator's
    for secret in (own, {"data": data}):
        with pytest.raises(CredentialsError) as refused:
            credentials_of(secret, "hub", "team-b")
        assert refused.value.reason == "CredentialsNotAllowed"
        assert "hf_abc" not in refused.value.message
