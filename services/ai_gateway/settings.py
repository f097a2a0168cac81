"""The gateway settings schema, its built-in profiles, and loading a config file over them.

Resolution order: the schema's defaults, then the chosen profile (profiles/<name>.yaml), then the
user's config file, deep-merged key by key. The result is validated once; every error names the
file, the key, the bad value and what is allowed.
"""

from __future__ import annotations

import hashlib
import re
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .config_errors import ConfigError, read_yaml, validate

PROFILES: tuple[str, ...] = ("unoptimized", "optimized")
DEFAULT_PROFILE = "optimized"
_SHA256_KEY = re.compile(r"^sha256:[0-9a-f]{64}$")
_TEAM_NAME = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ExactCacheSettings(_Strict):
    enabled: bool = False
    ttl_seconds: int = Field(default=3600, ge=1, le=30 * 24 * 3600)


class CacheSettings(_Strict):
    exact: ExactCacheSettings = ExactCacheSettings()


class TeamSettings(_Strict):
    keys: tuple[str, ...] = Field(
        min_length=1,
        description="API keys of the team: plain text, or 'sha256:<hex digest>' of the key.",
    )

    @field_validator("keys")
    @classmethod
    def _check_keys(cls, keys: tuple[str, ...]) -> tuple[str, ...]:
        for key in keys:
            if key.startswith("sha256:") and not _SHA256_KEY.match(key):
                raise ValueError("a hashed key is 'sha256:' followed by 64 lowercase hex digits")
            if not key.startswith("sha256:") and len(key) < 8:
                raise ValueError("a plain-text key has at least 8 characters")
        return keys


def key_digest(key: str) -> str:
    """The form keys are compared in: the hex SHA-256 of the plain key."""
    return hashlib.sha256(key.encode()).hexdigest()


def _stored_digest(configured: str) -> str:
    return (
        configured.removeprefix("sha256:")
        if configured.startswith("sha256:")
        else key_digest(configured)
    )


DEMO_TEAMS = {
    "team-a": TeamSettings(keys=("sk-demo-team-a",)),
    "team-b": TeamSettings(keys=("sk-demo-team-b",)),
}


class GatewaySettings(_Strict):
    profile: Literal["unoptimized", "optimized"] = DEFAULT_PROFILE
    latency_scale: float = Field(
        default=1.0, ge=0, le=100, description="Multiplies simulated latency; 0 turns it off."
    )
    max_body_bytes: int = Field(default=1_048_576, ge=1024, le=64 * 1_048_576)
    cache: CacheSettings = CacheSettings()
    teams: dict[str, TeamSettings] = Field(default_factory=lambda: dict(DEMO_TEAMS), min_length=1)

    @field_validator("teams")
    @classmethod
    def _check_team_names(cls, teams: dict[str, TeamSettings]) -> dict[str, TeamSettings]:
        for name in teams:
            if not re.match(_TEAM_NAME, name):
                raise ValueError(
                    f"team name {name!r} must be lowercase letters, digits and '-' (max 63)"
                )
        return teams

    @model_validator(mode="after")
    def _keys_unique(self) -> GatewaySettings:
        owner: dict[str, str] = {}
        for team, spec in self.teams.items():
            for key in spec.keys:
                digest = _stored_digest(key)
                if digest in owner and owner[digest] != team:
                    raise ValueError(
                        f"the same key is given to teams {owner[digest]!r} and {team!r}"
                    )
                owner[digest] = team
        return self

    def team_by_key_digest(self) -> dict[str, str]:
        return {_stored_digest(k): team for team, spec in self.teams.items() for k in spec.keys}

    def public_view(self) -> dict[str, Any]:
        """The settings in force, with keys left out, for /readyz."""
        data = self.model_dump(mode="json")
        data["teams"] = {team: {"keys": len(spec.keys)} for team, spec in self.teams.items()}
        return data


def _profile_overrides(profile: str) -> dict[str, Any]:
    path = Path(str(resources.files("ai_gateway") / "profiles" / f"{profile}.yaml"))
    data = read_yaml(path) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping")
    return data


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def load_settings(profile: str | None = None, config_path: Path | None = None) -> GatewaySettings:
    """Defaults, then the profile, then the config file; validated once."""
    user: dict[str, Any] = {}
    source = "built-in settings"
    if config_path is not None:
        source = str(config_path)
        data = read_yaml(config_path)
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise ConfigError(f"{config_path}: the top level must be a mapping of settings")
        user = data
    chosen = profile or user.get("profile") or DEFAULT_PROFILE
    if chosen not in PROFILES:
        raise ConfigError(
            f"{source}: key `profile`: value {chosen!r} is invalid: allowed values are "
            + ", ".join(PROFILES)
        )
    merged = deep_merge(_profile_overrides(chosen), user)
    merged["profile"] = chosen
    return validate(GatewaySettings, merged, source)
