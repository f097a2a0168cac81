"""Who is calling: API keys to teams, and the admin keys that may read every team's budget."""

from __future__ import annotations

from functools import lru_cache

from .domain import GatewayError
from .settings import GatewaySettings, key_digest

# A client sends its key with every request: its digest is computed once (a bounded cache, so
# random keys cannot grow it).
_digest_of = lru_cache(maxsize=1024)(key_digest)


class Identity:
    """Keys are compared by SHA-256 digest, so hashed keys in the config work like plain ones."""

    def __init__(self, settings: GatewaySettings) -> None:
        self._teams_by_digest = settings.team_by_key_digest()
        self._admin_digests = settings.admin_key_digests()

    def team(self, api_key: str | None) -> str:
        """The caller's team, or an authentication refusal."""
        if not api_key:
            raise GatewayError(
                "authentication",
                "Missing API key: send it as 'Authorization: Bearer <key>' or 'x-api-key: <key>'.",
                code="invalid_api_key",
            )
        team = self._teams_by_digest.get(_digest_of(api_key))
        if team is None:
            raise GatewayError(
                "authentication", "Incorrect API key provided.", code="invalid_api_key"
            )
        return team

    def is_admin(self, api_key: str | None) -> bool:
        return bool(api_key) and key_digest(api_key or "") in self._admin_digests
