"""The complexity router: explainable prompt features -> a score -> the cheapest tier that fits.

Each feature adds a weighted amount to a score; the tier is chosen by two boundaries. The largest
contribution is reported as the reason, so every decision can be read back ("tier=simple; top
feature: short prompt"). Everything here is plain Python over the request, well under 1 ms.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from .pricing import Tier
from .tokens import PromptMessage

_CODE = re.compile(
    r"```|\b(def|class|function|import|return|const|lambda|async|await|select|insert|join|"
    r"regex|regexp|sql|python|javascript|typescript|golang|rust|java|bash|script|code|"
    r"refactor|compile|stack ?trace|traceback|exception|segfault|null pointer|unit tests?|"
    r"api endpoint|dockerfile|kubernetes manifest|yaml|json schema)\b|[{};]\s*$|=>|\(\)",
    re.IGNORECASE | re.MULTILINE,
)
_MATH = re.compile(
    r"\d+\s*[-+*/^=×÷]\s*\d+|\b(prove|proof|derive|derivative|integral|equation|theorem|"
    r"probability|expected value|regression|variance|optimi[sz]ation problem|big-?o|"
    r"complexity of)\b",
    re.IGNORECASE,
)
_REASONING = re.compile(
    r"\b(analy[sz](e|es|ed|ing)|analysis|assumptions?|compare|comparison|evaluate|assess|"
    r"design|architect(ure)?|"
    r"trade-?offs?|pros and cons|step[- ]by[- ]step|strategy|strategic|plan for|roadmap|"
    r"critique|root cause|investigate|diagnose|justify|recommend|migration plan|why does|"
    r"why is|implications|in depth|detailed|thorough|comprehensive|multi-?step)\b",
    re.IGNORECASE,
)
_TASK = re.compile(
    r"\b(write|rewrite|draft|summari[sz]e|summary|explain|describe|create|generate|compose|"
    r"suggest|propose|list|classify|extract|paraphrase|turn these|outline|brainstorm|ideas|"
    r"translate this|edit|proofread)\b",
    re.IGNORECASE,
)
_SIMPLE = re.compile(
    r"^\s*(what is|what's|who is|when is|when does|where is|where can|define|how many|"
    r"is it|is there|can i|do you|does|yes or no|true or false|translate|spell|convert|"
    r"what time|how do i (reset|change|cancel|update|find|track|log ?in|sign ?in))\b",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class RouterWeights:
    """Contribution of each feature to the complexity score (tuned on the labelled set)."""

    length_per_100_tokens: float = 0.25
    length_cap: float = 0.45
    task_verb: float = 0.25
    code: float = 0.40
    math: float = 0.45
    reasoning_per_marker: float = 0.22
    reasoning_cap: float = 0.55
    turns_per_exchange: float = 0.06
    turns_cap: float = 0.24
    system_prompt_long: float = 0.08
    large_max_tokens: float = 0.15
    small_max_tokens: float = -0.12
    simple_opening: float = -0.25
    standard_boundary: float = 0.20
    complex_boundary: float = 0.50


@dataclass(frozen=True)
class RouteDecision:
    tier: Tier
    score: float
    top_feature: str
    contributions: dict[str, float]

    @property
    def reason(self) -> str:
        return f"tier={self.tier}; score={self.score:.2f}; top feature: {self.top_feature}"


def classify(
    messages: Sequence[PromptMessage],
    prompt_tokens: int,
    max_tokens: int | None,
    weights: RouterWeights = RouterWeights(),
) -> RouteDecision:
    """Score the request's complexity from explainable features and pick a tier."""
    user_turns = [m for m in messages if m.role == "user"]
    last_user = user_turns[-1].content if user_turns else ""
    system = " ".join(m.content for m in messages if m.role in ("system", "developer"))
    w = weights
    contributions = {
        "prompt length": min(prompt_tokens / 100 * w.length_per_100_tokens, w.length_cap),
        "writing task": w.task_verb if _TASK.search(last_user) else 0.0,
        "code markers": w.code if _CODE.search(last_user) else 0.0,
        "math markers": w.math if _MATH.search(last_user) else 0.0,
        "reasoning verbs": min(
            len(_REASONING.findall(last_user)) * w.reasoning_per_marker, w.reasoning_cap
        ),
        "conversation depth": min((len(user_turns) - 1) * w.turns_per_exchange, w.turns_cap),
        "long system prompt": w.system_prompt_long if len(system) > 600 else 0.0,
        "max_tokens": (
            w.large_max_tokens
            if max_tokens and max_tokens >= 1500
            else w.small_max_tokens
            if max_tokens and max_tokens <= 120
            else 0.0
        ),
        "simple question": w.simple_opening if _SIMPLE.search(last_user) else 0.0,
    }
    score = sum(contributions.values())
    tier: Tier = (
        "complex"
        if score >= w.complex_boundary
        else "standard"
        if score >= w.standard_boundary
        else "simple"
    )
    top = max(contributions, key=lambda k: abs(contributions[k]))
    if contributions[top] == 0:
        top = "no strong feature"
    return RouteDecision(tier, score, top, contributions)
