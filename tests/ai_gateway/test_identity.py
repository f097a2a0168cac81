"""The identity stage: team keys, plain or hashed, and admin keys."""

from __future__ import annotations

import hashlib

import pytest

from ai_gateway.domain import GatewayError
from ai_gateway.identity import Identity
from ai_gateway.settings import GatewaySettings

DIGEST = hashlib.sha256(b"sk-hashed-team-key").hexdigest()
SETTINGS = GatewaySettings.model_validate(
    {
        "teams": {"ops": {"keys": ["sk-plain-team-key"]}, "ml": {"keys": [f"sha256:{DIGEST}"]}},
        "admin_keys": ["sk-admin-key-123"],
    }
)


def test_plain_and_hashed_keys_name_their_team():
    identity = Identity(SETTINGS)
    assert identity.team("sk-plain-team-key") == "ops"
    assert identity.team("sk-hashed-team-key") == "ml"


@pytest.mark.parametrize("key", [None, "", f"sha256:{DIGEST}", "sk-unknown-key"])
def test_missing_or_unknown_keys_are_refused(key):
    with pytest.raises(GatewayError) as info:
        Identity(SETTINGS).team(key)
    assert (info.value.kind, info.value.code) == ("authentication", "invalid_api_key")


def test_admin_keys_are_not_team_keys():
    identity = Identity(SETTINGS)
    assert identity.is_admin("sk-admin-key-123")
    assert not identity.is_admin("sk-plain-team-key") and not identity.is_admin(None)
    with pytest.raises(GatewayError):
        identity.team("sk-admin-key-123")
