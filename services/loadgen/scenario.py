"""The scenario: what the simulated applications ask, how often, and how they repeat themselves.

A scenario file (YAML) describes teams and their share of traffic, prompt families ("intents")
with their true difficulty and paraphrase templates, the share of exact and paraphrased repeats,
prompt and ``max_tokens`` sizes, and the arrival pattern. ``generate`` turns it and a seed into the
same request sequence every time; ground truth (intent, question, difficulty) travels with each
request as ``x-sim-*`` headers, for the report only.
"""

from __future__ import annotations

import hashlib
import math
import random
import string
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from ai_gateway.pricing import Tier, default_price_table
from finops_common.config import ConfigError, StrictModel, read_yaml, validate

Api = Literal["openai", "anthropic"]
Kind = Literal["new", "exact", "paraphrase"]
DEFAULT_SCENARIO = Path(str(resources.files("loadgen") / "scenarios" / "default.yaml"))


KEY_MIN_CHARS = 8


class TeamTraffic(StrictModel):
    name: str = Field(min_length=1)
    key: str = Field(min_length=KEY_MIN_CHARS)
    share: float = Field(gt=0)


# The largest output limit of the model table (a test holds them equal): a larger max_tokens is
# a 400 from every model, found only once a run had started.
MAX_OUTPUT_TOKENS = 128_000


class WeightedChoice(StrictModel):
    """The ``max_tokens`` sizes requests ask for, and how often each."""

    values: tuple[Annotated[int, Field(ge=1, le=MAX_OUTPUT_TOKENS)], ...] = Field(min_length=1)
    weights: tuple[float, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _same_length(self) -> WeightedChoice:
        if len(self.values) != len(self.weights):
            raise ValueError("values and weights must have the same length")
        if any(w < 0 for w in self.weights) or sum(self.weights) <= 0:
            raise ValueError("weights must be non-negative and not all zero")
        return self


class Repeats(StrictModel):
    exact: float = Field(ge=0, le=1, description="share of requests that repeat one exactly")
    paraphrase: float = Field(ge=0, le=1, description="share that re-ask in other words")

    @model_validator(mode="after")
    def _at_most_one(self) -> Repeats:
        if self.exact + self.paraphrase > 1:
            raise ValueError("exact + paraphrase must be at most 1")
        return self


class ContextSize(StrictModel):
    """Sentences of document appended to intents that carry one (summaries, reviews)."""

    min_sentences: int = Field(ge=0)
    max_sentences: int = Field(
        ge=0, le=1000, description="at most 1,000: a document of about 20,000 tokens"
    )

    @model_validator(mode="after")
    def _ordered(self) -> ContextSize:
        if self.max_sentences < self.min_sentences:
            raise ValueError("max_sentences must be at least min_sentences")
        return self


class Arrival(StrictModel):
    pattern: Literal["steady", "diurnal", "burst"]
    rate_per_second: float = Field(gt=0, le=10_000, description="mean arrival rate")
    period_seconds: float = Field(default=60, gt=0, description="diurnal: one simulated day")
    amplitude: float = Field(default=0.6, ge=0, lt=1, description="diurnal: swing around mean")
    burst_every_seconds: float = Field(default=20, gt=0)
    burst_seconds: float = Field(default=4, gt=0)
    burst_multiplier: float = Field(default=4, ge=1)

    def rate_at(self, t: float) -> float:
        """Requests per second at ``t`` seconds into the run."""
        if self.pattern == "diurnal":
            phase = 2 * math.pi * t / self.period_seconds
            return self.rate_per_second * (1 - self.amplitude * math.cos(phase))
        if self.pattern == "burst" and (t % self.burst_every_seconds) < self.burst_seconds:
            return self.rate_per_second * self.burst_multiplier
        return self.rate_per_second


class Handbook(StrictModel):
    """A long system prompt shared by several intents (a support policy, a product manual): the
    repeated prefix that providers bill at their cached-input price. Its text is the preamble and
    ``sentences`` of the scenario's document sentences, the same for every request."""

    preamble: str = Field(min_length=1)
    sentences: int = Field(ge=1, le=2000)


def priced_model(model: str) -> str:
    """A model of the gateway's price table, which a request may name."""
    table = default_price_table()
    if model not in table:
        raise ValueError(
            f"model {model!r} is not in the price table; known: {', '.join(table.names())}"
        )
    return model


class Intent(StrictModel):
    id: str = Field(
        pattern=r"^[a-z0-9][a-z0-9-]*$", description="lowercase letters, digits and -, e.g. refund"
    )
    difficulty: Tier
    weight: float = Field(default=1.0, gt=0)
    model: str | None = None
    system: str | None = None
    handbook: str | None = Field(
        default=None,
        description="a key of `handbooks`: its text opens the system prompt, and Anthropic "
        "requests mark it with a cache_control breakpoint",
    )
    context: bool = False
    max_tokens: WeightedChoice | None = None
    templates: tuple[str, ...] = Field(min_length=2)
    slots: dict[str, tuple[str, ...]] = Field(default_factory=dict)

    @field_validator("model")
    @classmethod
    def _priced(cls, model: str | None) -> str | None:
        return model if model is None else priced_model(model)

    @model_validator(mode="after")
    def _slots_cover_templates(self) -> Intent:
        for template in self.templates:
            names = {f for _, f, _, _ in string.Formatter().parse(template) if f}
            missing = names - set(self.slots)
            if missing:
                raise ValueError(
                    f"template {template!r} uses undefined slots: {', '.join(sorted(missing))}"
                )
        empty = [name for name, values in self.slots.items() if not values]
        if empty:
            raise ValueError(f"slots without values: {', '.join(empty)}")
        return self


class Scenario(StrictModel):
    version: Literal[1]
    name: str = Field(min_length=1)
    seed: int = 42
    default_model: str = "gpt-5.4"
    teams: tuple[TeamTraffic, ...] = Field(min_length=1)
    apis: dict[Api, float] = Field(min_length=1)
    repeats: Repeats
    max_tokens: WeightedChoice
    context: ContextSize
    arrival: Arrival
    documents: tuple[str, ...] = Field(min_length=1, description="sentences for context")
    handbooks: dict[str, Handbook] = Field(default_factory=dict)
    intents: tuple[Intent, ...] = Field(min_length=1)

    @field_validator("apis")
    @classmethod
    def _positive(cls, apis: dict[Api, float]) -> dict[Api, float]:
        if any(w < 0 for w in apis.values()) or sum(apis.values()) <= 0:
            raise ValueError("api weights must be non-negative and not all zero")
        return apis

    @field_validator("default_model")
    @classmethod
    def _priced(cls, model: str) -> str:
        return priced_model(model)

    @model_validator(mode="after")
    def _handbooks_and_ids(self) -> Scenario:
        for intent in self.intents:
            if intent.handbook is not None and intent.handbook not in self.handbooks:
                known = ", ".join(self.handbooks) or "none defined"
                raise ValueError(
                    f"intent {intent.id!r}: handbook {intent.handbook!r} is not a key of "
                    f"`handbooks` ({known})"
                )
        ids = [i.id for i in self.intents]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"duplicate intent ids: {', '.join(duplicates)}")
        names = [t.name for t in self.teams]
        if len(set(names)) != len(names):
            raise ValueError("team names must be unique")
        return self


def _scenario_data(path: Path, seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """The file's keys over those of the scenario it ``extends`` (a path relative to it)."""
    data = read_yaml(path)
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of scenario settings")
    base = data.pop("extends", None)
    if base is None:
        return data
    base_path = (path.parent / str(base)).resolve()
    if base_path in seen or not base_path.is_file():
        problem = "extends itself" if base_path in seen else "names no file"
        raise ConfigError(f"{path}: key `extends`: {base!r} {problem}")
    return {**_scenario_data(base_path, (*seen, path.resolve())), **data}


def load_scenario(path: Path | None = None) -> Scenario:
    """Load and validate a scenario; errors name the file, the key and what is allowed. A file
    with ``extends: other.yaml`` replaces only the top-level keys it sets."""
    path = path or DEFAULT_SCENARIO
    return validate(Scenario, _scenario_data(path), str(path))


def with_team_keys(scenario: Scenario, path: Path) -> Scenario:
    """The scenario with each team's key read from ``path`` (YAML: team name to key), for a
    gateway that does not hold the scenario's public demo keys (a deployed one: its keys are
    secrets). Every team of the scenario needs one; keys of other teams are left unused."""
    keys = read_yaml(path)
    if not isinstance(keys, dict) or not all(isinstance(k, str) for k in keys.values()):
        raise ConfigError(f"{path}: must be a mapping of team names to keys (strings)")
    missing = [team.name for team in scenario.teams if team.name not in keys]
    if missing:
        raise ConfigError(
            f"{path}: no key for {', '.join(missing)}; the scenario's teams: "
            f"{', '.join(team.name for team in scenario.teams)}"
        )
    short = [team.name for team in scenario.teams if len(keys[team.name]) < KEY_MIN_CHARS]
    if short:
        raise ConfigError(
            f"{path}: key `{short[0]}`: a team's key has at least {KEY_MIN_CHARS} characters"
        )
    teams = tuple(team.model_copy(update={"key": keys[team.name]}) for team in scenario.teams)
    return scenario.model_copy(update={"teams": teams})


@dataclass(frozen=True)
class SimRequest:
    """One request of the sequence, with its ground truth."""

    index: int
    team: str
    key: str
    api: Api
    model: str
    system: str | None
    prompt: str
    handbook: str | None  # the shared prefix of the system prompt (text), before ``system``
    max_tokens: int
    intent: str
    question: str
    difficulty: Tier
    kind: Kind

    def path(self) -> str:
        return "/v1/chat/completions" if self.api == "openai" else "/v1/messages"

    def _system_text(self) -> str | None:
        parts = [p for p in (self.handbook, self.system) if p]
        return "\n\n".join(parts) if parts else None

    def body(self) -> dict[str, Any]:
        if self.api == "anthropic":
            body: dict[str, Any] = {
                "model": self.model,
                "max_tokens": self.max_tokens,
                "messages": [{"role": "user", "content": self.prompt}],
            }
            if self.handbook:
                blocks: list[dict[str, Any]] = [{"type": "text", "text": self.handbook}]
                if self.system:
                    blocks.append({"type": "text", "text": "\n\n" + self.system})
                blocks[-1]["cache_control"] = {"type": "ephemeral"}
                body["system"] = blocks
            elif self.system:
                body["system"] = self.system
            return body
        system = self._system_text()
        messages = [{"role": "system", "content": system}] if system else []
        messages.append({"role": "user", "content": self.prompt})
        # max_completion_tokens: OpenAI's reasoning models (gpt-5.x, the default) refuse
        # max_tokens, and every chat model takes it.
        return {"model": self.model, "max_completion_tokens": self.max_tokens, "messages": messages}

    def headers(self) -> dict[str, str]:
        auth = {"authorization": f"Bearer {self.key}"}
        if self.api == "anthropic":
            auth = {"x-api-key": self.key, "anthropic-version": "2023-06-01"}
        return {
            **auth,
            "content-type": "application/json",
            "x-sim-index": str(self.index),
            "x-sim-intent": self.intent,
            "x-sim-question": self.question,
            "x-sim-difficulty": self.difficulty,
            "x-sim-kind": self.kind,
        }


@dataclass(frozen=True)
class _Asked:
    intent: Intent
    slots: tuple[tuple[str, str], ...]
    question: str
    template: int
    request: SimRequest


def _question_id(intent: str, slots: tuple[tuple[str, str], ...]) -> str:
    """Identity of a question (intent plus slot values), safe to send as a header."""
    digest = hashlib.sha256(repr(slots).encode()).hexdigest()[:10]
    return f"{intent}:{digest}"


def _weighted(rng: random.Random, values: list[Any], weights: list[float]) -> Any:
    return rng.choices(values, weights=weights, k=1)[0]


def _document(scenario: Scenario, question: str) -> str:
    """The context of a question: the same sentences every time the question is asked."""
    rng = random.Random(hashlib.sha256(question.encode()).digest())
    size = rng.randint(scenario.context.min_sentences, scenario.context.max_sentences)
    return " ".join(rng.choice(scenario.documents) for _ in range(size))


def handbook_text(scenario: Scenario, name: str) -> str:
    """A handbook's text: the same for every request of every run of this scenario."""
    handbook = scenario.handbooks[name]
    rng = random.Random(hashlib.sha256(name.encode()).digest())
    body = " ".join(rng.choice(scenario.documents) for _ in range(handbook.sentences))
    return f"{handbook.preamble}\n\n{body}"


def _render(
    scenario: Scenario,
    intent: Intent,
    slots: tuple[tuple[str, str], ...],
    question: str,
    template: int,
) -> str:
    text = intent.templates[template].format(**dict(slots))
    if intent.context:
        document = _document(scenario, question)
        if document:
            text = f"{text}\n\n{document}"
    return text


def generate(scenario: Scenario, seed: int | None = None) -> Iterator[SimRequest]:
    """The request sequence: infinite, and identical for the same scenario and seed."""
    rng = random.Random(scenario.seed if seed is None else seed)
    teams = list(scenario.teams)
    history: dict[str, list[_Asked]] = {t.name: [] for t in teams}
    handbooks = {name: handbook_text(scenario, name) for name in scenario.handbooks}
    index = 0
    while True:
        team = _weighted(rng, teams, [t.share for t in teams])
        draw = rng.random()
        asked_before = history[team.name]
        if asked_before and draw < scenario.repeats.exact:
            request = _exact_repeat(rng, asked_before, index)
        elif asked_before and draw < scenario.repeats.exact + scenario.repeats.paraphrase:
            request = _paraphrase(rng, scenario, asked_before, index)
        else:
            asked = _new_question(rng, scenario, team, handbooks, index)
            asked_before.append(asked)
            request = asked.request
        yield request
        index += 1


def _exact_repeat(rng: random.Random, asked_before: list[_Asked], index: int) -> SimRequest:
    """A request the team sent before, word for word."""
    previous = rng.choice(asked_before).request
    return SimRequest(**{**previous.__dict__, "index": index, "kind": "exact"})


def _paraphrase(
    rng: random.Random, scenario: Scenario, asked_before: list[_Asked], index: int
) -> SimRequest:
    """A question the team asked before, in another of its intent's templates."""
    original = rng.choice(asked_before)
    others = [i for i in range(len(original.intent.templates)) if i != original.template]
    template = rng.choice(others)
    prompt = _render(scenario, original.intent, original.slots, original.question, template)
    return SimRequest(
        **{**original.request.__dict__, "index": index, "kind": "paraphrase", "prompt": prompt}
    )


def _new_question(
    rng: random.Random,
    scenario: Scenario,
    team: TeamTraffic,
    handbooks: dict[str, str],
    index: int,
) -> _Asked:
    """A question the team has not asked: an intent, its slots and template, its API and size."""
    intent = _weighted(rng, list(scenario.intents), [i.weight for i in scenario.intents])
    slots = tuple((name, rng.choice(values)) for name, values in sorted(intent.slots.items()))
    question = _question_id(intent.id, slots)
    template = rng.randrange(len(intent.templates))
    sizes = intent.max_tokens or scenario.max_tokens
    apis = list(scenario.apis)
    request = SimRequest(
        index=index,
        team=team.name,
        key=team.key,
        api=_weighted(rng, apis, [scenario.apis[a] for a in apis]),
        model=intent.model or scenario.default_model,
        system=intent.system,
        handbook=handbooks[intent.handbook] if intent.handbook else None,
        prompt=_render(scenario, intent, slots, question, template),
        max_tokens=_weighted(rng, list(sizes.values), list(sizes.weights)),
        intent=intent.id,
        question=question,
        difficulty=intent.difficulty,
        kind="new",
    )
    return _Asked(intent, slots, question, template, request)
