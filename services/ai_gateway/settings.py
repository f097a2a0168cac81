"""The gateway settings schema, its built-in profiles, and loading a config file over them.

Resolution order: the schema's defaults, then the chosen profile (profiles/<name>.yaml), then the
user's config file, deep-merged key by key. The result is validated once; every error names the
file, the key, the bad value and what is allowed.
"""

from __future__ import annotations

import hashlib
import os
import re
from importlib import resources
from pathlib import Path
from typing import Any, Final, Literal

from pydantic import Field, field_validator, model_validator

from finops_common.config import (
    ConfigError,
    Source,
    StrictModel,
    read_yaml,
    source_of,
    validate,
)
from finops_common.phases import PHASES, Phase

from .pricing import TIERS, Tier, default_price_table

PROFILES: tuple[Phase, ...] = PHASES
DEFAULT_PROFILE: Final[Phase] = "optimized"
_SHA256_KEY = re.compile(r"^sha256:[0-9a-f]{64}$")
_TEAM_NAME = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"


def _local_entries(saving: str) -> Any:
    """Both caches' bound on the answers a replica keeps in front of the store."""
    return Field(
        default=1024,
        ge=0,
        le=1_000_000,
        description=f"answers each replica keeps in front of the store, so {saving}; 0 turns it "
        "off",
    )


class ExactCacheSettings(StrictModel):
    enabled: bool = False
    ttl_seconds: int = Field(default=3600, ge=1, le=30 * 24 * 3600)
    local_entries: int = _local_entries("a repeated hit costs no round trip")


DEFAULT_EMBEDDING_MODEL = "minishlab/potion-base-8M"
# Chosen by evaluation.choose_default on bench/data/semantic_cache_eval.yaml (README's table);
# tests/ai_gateway/test_semantic_eval.py re-runs the evaluation and checks these values.
DEFAULT_THRESHOLDS = {"model2vec": 0.85, "lexical": 0.60}
Embedder = Literal["model2vec", "lexical"]
DEFAULT_EMBEDDER: Embedder = "model2vec"


class SemanticCacheSettings(StrictModel):
    enabled: bool = False
    embedder: Embedder = DEFAULT_EMBEDDER
    model: str = Field(
        default=DEFAULT_EMBEDDING_MODEL,
        min_length=1,
        description="model2vec model folder or published name; GATEWAY_EMBEDDING_MODEL overrides",
    )
    threshold: float | None = Field(
        default=None, ge=0, le=1, description="cosine similarity; default: per embedder"
    )
    verify: bool = Field(default=True, description="check salient terms before serving a hit")
    ttl_seconds: int = Field(default=3600, ge=1, le=30 * 24 * 3600)
    max_entries: int = Field(default=200_000, ge=1, le=10_000_000)
    local_entries: int = _local_entries("a repeated semantic hit costs no GET")

    @property
    def effective_threshold(self) -> float:
        return self.threshold if self.threshold is not None else DEFAULT_THRESHOLDS[self.embedder]


class CacheSettings(StrictModel):
    exact: ExactCacheSettings = ExactCacheSettings()
    semantic: SemanticCacheSettings = SemanticCacheSettings()


DEFAULT_TIERS: dict[Tier, str] = {
    "simple": "gpt-5.4-nano",
    "standard": "gpt-5.4-mini",
    "complex": "gpt-5.4",
}


class RoutingSettings(StrictModel):
    enabled: bool = False
    tiers: dict[Tier, str] = Field(default_factory=lambda: dict(DEFAULT_TIERS))
    threshold: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="P(complex) at which a request goes to the complex tier; higher saves more "
        "and risks more. Default: the value chosen on the router's training set",
    )

    @field_validator("tiers")
    @classmethod
    def _known_models(cls, tiers: dict[Tier, str]) -> dict[Tier, str]:
        table = default_price_table()
        missing = [t for t in TIERS if t not in tiers]
        if missing:
            raise ValueError(f"every tier needs a model; missing: {', '.join(missing)}")
        for tier, model in tiers.items():
            if model not in table:
                raise ValueError(
                    f"tier {tier!r} names unknown model {model!r}; known: "
                    + ", ".join(table.names())
                )
        return tiers


class BudgetSettings(StrictModel):
    on_store_error: Literal["open", "closed"] = Field(
        default="closed",
        description="when the store cannot be reached: serve without limits, or refuse (503)",
    )


class StoreSettings(StrictModel):
    """The Redis connection: one per process, carrying every request's commands in order."""

    timeout_s: float = Field(
        default=5.0,
        gt=0,
        le=60,
        description="how long connecting, or a command's reply, may take before the store counts "
        "as unavailable (generous: a busy event loop reads replies late although Redis is fast)",
    )


class TeamLimitSettings(StrictModel):
    usd: float | None = Field(default=None, gt=0, description="spend allowed per period")
    period: Literal["day", "month"] = "day"
    tokens_per_minute: int | None = Field(default=None, ge=1)
    requests_per_minute: int | None = Field(default=None, ge=1)


def _check_keys(keys: tuple[str, ...]) -> tuple[str, ...]:
    for key in keys:
        if key.startswith("sha256:") and not _SHA256_KEY.match(key):
            raise ValueError("a hashed key is 'sha256:' followed by 64 lowercase hex digits")
        if not key.startswith("sha256:") and len(key) < 8:
            raise ValueError("a plain-text key has at least 8 characters")
    return keys


class TeamSettings(StrictModel):
    keys: tuple[str, ...] = Field(
        min_length=1,
        description="API keys of the team: plain text, or 'sha256:<hex digest>' of the key.",
    )
    routing: Literal["auto_only", "all"] = Field(
        default="auto_only",
        description="route only requests for model 'auto', or every request of the team",
    )
    limits: TeamLimitSettings = TeamLimitSettings()

    _keys = field_validator("keys")(_check_keys)


def key_digest(key: str) -> str:
    """The form keys are compared in: the hex SHA-256 of the plain key."""
    return hashlib.sha256(key.encode()).hexdigest()


def _stored_digest(configured: str) -> str:
    return (
        configured.removeprefix("sha256:")
        if configured.startswith("sha256:")
        else key_digest(configured)
    )


def _digests(keys: tuple[str, ...]) -> list[str]:
    return [f"sha256:{_stored_digest(key)}" for key in keys]


def shown_settings(settings: GatewaySettings) -> dict[str, Any]:
    """The settings as resolved, for people to read: every key as its ``sha256:`` digest (what
    the gateway compares), and the semantic threshold the gateway will apply."""
    shown = settings.model_dump(mode="json")
    shown["admin_keys"] = _digests(settings.admin_keys)
    for name, team in settings.teams.items():
        shown["teams"][name]["keys"] = _digests(team.keys)
    shown["cache"]["semantic"]["threshold"] = settings.cache.semantic.effective_threshold
    return shown


class GatewaySettings(StrictModel):
    profile: Phase = DEFAULT_PROFILE
    latency_scale: float = Field(
        default=1.0, ge=0, le=100, description="Multiplies simulated latency; 0 turns it off."
    )
    max_body_bytes: int = Field(default=1_048_576, ge=1024, le=64 * 1_048_576)
    max_json_depth: int = Field(
        default=64, ge=8, le=512, description="deeper JSON bodies get a 400 (real requests: < 10)"
    )
    body_timeout_seconds: float = Field(
        default=30,
        gt=0,
        le=600,
        description="a body not received whole in this time gets a 408: a client that stalls "
        "mid-body held its connection, and a place in ai_active_requests, until it left",
    )
    metrics_port: int = Field(
        default=9464,
        ge=0,
        le=65535,
        description="port of /metrics, apart from the API port; 0 turns the metrics server off",
    )
    request_log: str | None = Field(
        default=None, description="append one JSON line per request to this file ('-': stdout)"
    )
    cache: CacheSettings = CacheSettings()
    provider_prompt_cache: bool = Field(
        default=True,
        description="simulate the providers' own prompt caches (cached-input prices), on in "
        "both profiles as for any application; off prices every prompt token at the input price",
    )
    routing: RoutingSettings = RoutingSettings()
    budgets: BudgetSettings = BudgetSettings()
    store: StoreSettings = StoreSettings()
    teams: dict[str, TeamSettings] = Field(min_length=1)
    admin_keys: tuple[str, ...] = Field(
        default=(), description="keys that may read every team's budget on /v1/budgets"
    )

    _admin_keys = field_validator("admin_keys")(_check_keys)

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
        holders = [(team, spec.keys) for team, spec in self.teams.items()]
        for holder, keys in [*holders, ("admin_keys", self.admin_keys)]:
            for key in keys:
                digest = _stored_digest(key)
                if digest in owner and owner[digest] != holder:
                    raise ValueError(f"the same key is given to {owner[digest]!r} and {holder!r}")
                owner[digest] = holder
        return self

    def team_by_key_digest(self) -> dict[str, str]:
        return {_stored_digest(k): team for team, spec in self.teams.items() for k in spec.keys}

    def admin_key_digests(self) -> frozenset[str]:
        return frozenset(_stored_digest(k) for k in self.admin_keys)


def _profile_overrides(profile: str) -> dict[str, Any]:
    """A built-in profile file, over the files its ``include`` list names (the demo teams)."""
    folder = Path(str(resources.files("ai_gateway") / "profiles"))
    data = _mapping(folder / f"{profile}.yaml")
    merged: dict[str, Any] = {}
    for name in data.pop("include", []):
        merged = deep_merge(merged, _mapping(folder / name))
    return deep_merge(merged, data)


def _mapping(path: Path) -> dict[str, Any]:
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


def load_settings(profile: str | None = None, *config_paths: Path) -> GatewaySettings:
    """Defaults, then the profile, then each config file in order; validated once.

    Several files let a deployment keep team keys in a Secret and the rest in a ConfigMap.
    """
    user: dict[str, Any] = {}
    files: list[tuple[Path, dict[str, Any]]] = []
    for path in config_paths:
        data = read_yaml(path)
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: the top level must be a mapping of settings")
        files.append((path, data))
        user = deep_merge(user, data)
    return resolve_settings(profile, user, _file_holding(files))


def _file_holding(files: list[tuple[Path, dict[str, Any]]]) -> Source:
    """The files' names, or with several, a function naming the last file that sets a key (the
    one whose value was merged in): each problem is blamed on its own file."""
    everything = " + ".join(str(path) for path, _ in files) or "built-in settings"
    if len(files) < 2:
        return everything

    def holding(loc: tuple[Any, ...]) -> str:
        holders = [str(path) for path, data in files if sets_key(data, loc)]
        return holders[-1] if holders else everything

    return holding


def sets_key(data: Any, loc: tuple[Any, ...]) -> bool:
    """Whether settings (a file's, or a part of them) reach the key at ``loc`` (names and list
    indices)."""
    for part in loc:
        in_mapping = isinstance(data, dict) and part in data
        in_list = isinstance(data, list) and isinstance(part, int) and part < len(data)
        if not (in_mapping or in_list):
            return False
        data = data[part]
    return bool(loc)


def resolve_settings(profile: str | None, user: dict[str, Any], source: Source) -> GatewaySettings:
    """The profile (named here or in ``user``) with ``user``'s settings over it, validated."""
    chosen = profile if profile is not None else user.get("profile", DEFAULT_PROFILE)
    if chosen not in PROFILES:
        raise ConfigError(
            f"{source_of(source, ('profile',))}: key `profile`: value {chosen!r} is invalid: "
            "allowed values are " + ", ".join(PROFILES)
        )
    base = _profile_overrides(chosen)
    if "teams" in user:
        base.pop("teams", None)  # a config's teams replace the demo teams, keys and all
    merged = deep_merge(base, user)
    merged["profile"] = chosen
    model = os.environ.get("GATEWAY_EMBEDDING_MODEL")
    cache = merged.get("cache", {})
    # Only over settings of the right shape: over `cache: 5` it made a valid mapping.
    if model and isinstance(cache, dict) and isinstance(cache.get("semantic", {}), dict):
        merged = deep_merge(merged, {"cache": {"semantic": {"model": model}}})
    return validate(GatewaySettings, merged, source)
