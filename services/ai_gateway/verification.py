"""The semantic cache's guard: a candidate is served only if both prompts' salient terms agree.

Embedding similarity alone scores many near-misses as high as true rephrasings ("cancel my order"
vs "track my order", "Python 3.11" vs "Python 3.12", "in French" vs "in Italian", "upload" vs
"download"). Those prompts differ in a few words that decide the answer. The guard extracts them
and requires them to match:

- numbers and versions ("3.11", "#1042", "$50", "2024-05-01"), each as often as it appears;
- comparison operators ("x > 5" is not "x < 5");
- quoted or backticked text;
- named things: capitalised words past the start of a sentence, acronyms, identifiers with digits,
  dots or underscores ("S3", "EC2", "config.yaml"), and known natural and programming languages;
- actions and polarities, through a lexicon that maps words to a class ("call off" and "cancel"
  are one class; "upload" and "download" are two);
- negation ("not", "never", "n't", "without");
- the content words: after expanding contractions, mapping the lexicon's phrases to their class,
  light stemming (plurals, -ing/-ed, British -ise) and dropping function words and politeness
  filler, both prompts must use the same content words, and the same words after "to"/"from"
  (so "dollars to euros" is not "euros to dollars").

Light rephrasings (reordered words, filler, contractions, spelling variants) keep their content
words and pass; harder paraphrases that use other words are refused, which is the price of
precision. It errs towards refusing: a refused paraphrase costs one provider call, a served
near-miss is a wrong answer.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

_NUMBER = re.compile(r"(?:(?<=\bv)|(?<![A-Za-z0-9.]))\d+(?:[.,:/-]\d+)*")
# Up to a code block's length: past 200 characters, two snippets that differ in one operator
# were compared by their words alone.
_QUOTED = re.compile(
    r"\"([^\"]{1,4000})\"|“([^”]{1,4000})”|`([^`]{1,4000})`|(?<![\w])'([^']{2,4000})'(?!\w)"
)
# Comparison operators, which decide an answer ("x > 5" is not "x < 5") and carry no word.
_COMPARISON = re.compile(r"[<>!=]=|(?<![<>=-])[<>](?![<>=])")
_WORD = re.compile(r"[A-Za-z][A-Za-z0-9_.+#'-]*[A-Za-z0-9+#]|[A-Za-z]")
_SENTENCE_START = re.compile(r"(?:^|[.!?:;]\s+|\n)\s*[\"'(]*([A-Za-z][\w'-]*)")

NATURAL_LANGUAGES = frozenset(
    (
        "english french spanish german italian portuguese dutch swedish norwegian danish "
        "finnish polish czech greek turkish russian ukrainian arabic hebrew hindi bengali urdu "
        "chinese mandarin cantonese japanese korean vietnamese thai indonesian malay tagalog "
        "swahili persian romanian hungarian"
    ).split(" ")
)
PROGRAMMING_LANGUAGES = frozenset(
    (
        "python java javascript typescript rust golang kotlin swift scala ruby php perl haskell "
        "elixir erlang clojure lua dart julia matlab fortran cobol bash powershell sql html css "
        "c++ c# terraform yaml json xml graphql"
    ).split(" ")
)

# word -> action or polarity class; several words may share a class (synonyms).
_ACTION_CLASSES: dict[str, tuple[str, ...]] = {
    "cancel": ("cancel", "cancels", "cancelled", "canceled", "cancelling", "canceling",
               "cancellation", "call off", "abort"),
    "track": ("track", "tracks", "tracking", "trace", "status of"),
    "return": ("return", "returns", "returning", "send back"),
    "refund": ("refund", "refunds", "refunded", "money back", "reimburse"),
    "exchange": ("exchange", "swap"),
    "change": ("change", "changes", "changing", "modify", "edit", "update", "updating", "alter"),
    "delete": ("delete", "deleting", "remove", "removing", "erase", "get rid of"),
    "create": ("create", "creating", "make a new", "set up", "open a new", "new account"),
    "reset": ("reset", "resetting", "recover", "forgot", "forgotten"),
    "upload": ("upload", "uploads", "uploading"),
    "download": ("download", "downloads", "downloading"),
    "install": ("install", "installing", "installation"),
    "uninstall": ("uninstall", "uninstalling"),
    "enable": ("enable", "enabling", "turn on", "switch on", "activate"),
    "disable": ("disable", "disabling", "turn off", "switch off", "deactivate"),
    "increase": ("increase", "raise", "higher", "grow", "scale up", "upgrade"),
    "decrease": ("decrease", "lower", "reduce", "shrink", "scale down", "downgrade"),
    "login": ("log in", "login", "sign in", "signin"),
    "logout": ("log out", "logout", "sign out", "signout"),
    "subscribe": ("subscribe", "subscribing", "sign up"),
    "unsubscribe": ("unsubscribe", "unsubscribing", "opt out"),
    "buy": ("buy", "purchase"),
    "sell": ("sell", "selling"),
    "import": ("import", "importing"),
    "export": ("export", "exporting"),
    "encrypt": ("encrypt", "encrypting", "encryption"),
    "decrypt": ("decrypt", "decrypting", "decryption"),
    "start": ("start", "starting", "begin", "launch"),
    "stop": ("stop", "stopping", "halt"),
    "approve": ("approve", "approval", "accept"),
    "reject": ("reject", "decline", "deny"),
    "translate": ("translate", "translation"),
    "summarize": ("summarize", "summarise", "summary", "summarizing", "summarising", "tl;dr",
                  "recap"),
    "compare": ("compare", "comparison", "versus", "vs", "difference between"),
    "debug": ("debug", "fix", "bug", "error", "broken", "failing", "fails"),
    "explain": ("explain", "explanation", "what does", "meaning of"),
    "write": ("write", "draft", "compose", "generate"),
    "regex": ("regex", "regexp", "regular expression"),
    "before": ("before", "prior to", "earlier"),
    "after": ("after", "later than", "following"),
    "max": ("max", "maximum", "largest", "biggest", "most expensive", "highest"),
    "min": ("min", "minimum", "smallest", "cheapest", "lowest"),
    "first": ("first", "earliest", "oldest"),
    "last": ("last", "latest", "newest", "most recent"),
    "yesterday": ("yesterday",),
    "today": ("today",),
    "tomorrow": ("tomorrow",),
    "weekly": ("weekly", "per week", "each week", "every week"),
    "monthly": ("monthly", "per month", "each month", "every month"),
    "daily": ("daily", "per day", "each day", "every day"),
}  # fmt: skip

_CONTRACTIONS = (
    (re.compile(r"n't\b", re.IGNORECASE), " not"),
    (re.compile(r"'re\b", re.IGNORECASE), " are"),
    (re.compile(r"'ve\b", re.IGNORECASE), " have"),
    (re.compile(r"'m\b", re.IGNORECASE), " am"),
    (re.compile(r"'ll\b", re.IGNORECASE), " will"),
    (re.compile(r"'d\b", re.IGNORECASE), " would"),
    (re.compile(r"'s\b", re.IGNORECASE), ""),
)
FUNCTION_WORDS = frozenset(
    (
        "a an the this that these those it its i me my mine we us our you your yours he she they "
        "them their his her is are was were be been being am do does did doing done have has had "
        "having can could would should will shall may might must to of in on at by for from with "
        "into onto about as into than then so and or but if also just any all some each every "
        "what which who whom whose when where why how there here please kindly hi hello hey thanks "
        "thank tell know like want need help wondering quick question exactly really guys way "
        "possible s up out get give show let whats wheres hows thats whos using via during while"
    ).split(" ")
)
DIRECTION_WORDS = {"to": "to", "into": "to", "onto": "to", "from": "from"}
_CLAUSE_BREAKS = frozenset(
    [*",.:;?!", *"with using via for on in at by of about from to into onto during while".split()]
)

_NEGATION = re.compile(r"\b(?:not|no|never|none|without|cannot)\b|n't\b", re.IGNORECASE)


def _phrase_pattern() -> re.Pattern[str]:
    phrases = sorted({p for ps in _ACTION_CLASSES.values() for p in ps}, key=lambda p: (-len(p), p))
    return re.compile(r"(?<![\w-])(" + "|".join(re.escape(p) for p in phrases) + r")(?![\w-])")


_ACTION_PATTERN = _phrase_pattern()
_CLASS_OF = {p: cls for cls, ps in _ACTION_CLASSES.items() for p in ps}


_BRITISH_ISE = re.compile(r"is(e|ed|es|ing|ation)$")


@lru_cache(maxsize=8192)
def _stem(word: str) -> str:
    """Light, consistent normalisation: spelling variants, plurals, -ing and -ed. Remembered:
    prompts share most of their words, and stemming was half of a prompt's agreement key."""
    if word.isdigit():
        return word
    w = word.lower().strip("'-")
    w = _BRITISH_ISE.sub(r"iz\1", w)
    if len(w) > 4 and w.endswith("ies"):
        w = w[:-3] + "y"
    elif len(w) > 3 and w.endswith("s") and not w.endswith("ss"):
        w = w[:-1]
    if len(w) > 5 and w.endswith("ing"):
        w = w[:-3]
    elif len(w) > 4 and w.endswith("ed"):
        w = w[:-2]
    return w[:-1] if len(w) > 3 and w.endswith("e") else w


Terms = tuple[str, ...]
"""One class of a prompt's terms, sorted and without repeats. Each class is remembered per prompt
(a cached prompt is checked again and again), as a tuple of strings, not a frozenset: the garbage
collector stops tracking such a tuple, so the terms of tens of thousands of cached prompts add
nothing to its pauses (a set is always tracked)."""
TERMS_CACHE = 65536  # prompts each class remembers


def _terms(values: Iterable[str]) -> Terms:
    return tuple(sorted(set(values)))


@lru_cache(maxsize=TERMS_CACHE)
def content_words(text: str) -> tuple[Terms, tuple[tuple[str, ...], ...]]:
    """Content words, and what follows each direction word ("to", "from") within its phrase."""
    expanded = text.lower()
    for pattern, replacement in _CONTRACTIONS:
        expanded = pattern.sub(replacement, expanded)
    expanded = _ACTION_PATTERN.sub(lambda m: f" act_{_CLASS_OF[m.group(1)]} ", expanded)
    tokens = re.findall(r"[a-z0-9][a-z0-9_.+#]*[a-z0-9+#]|[a-z0-9]|[,.:;?!]", expanded)
    words: list[str] = []
    directions: list[tuple[str, ...]] = []
    current: list[str] | None = None
    for token in tokens:
        if token in _CLAUSE_BREAKS or token in DIRECTION_WORDS:
            if current:
                directions.append(tuple(current))
            current = [DIRECTION_WORDS[token]] if token in DIRECTION_WORDS else None
            continue
        if token in FUNCTION_WORDS or token == "not":
            continue
        stem = token if token.startswith("act_") else _stem(token)
        words.append(stem)
        if current is not None and len(current) < 3:
            current.append(stem)
    if current and len(current) > 1:
        directions.append(tuple(current))
    return _terms(words), tuple(sorted(d for d in directions if len(d) > 1))


def _normalise_number(raw: str) -> str:
    return re.sub(r"(?<=\d),(?=\d{3}\b)", "", raw)


@lru_cache(maxsize=TERMS_CACHE)
def numbers_in(text: str) -> Terms:
    """Sorted with their repeats: "2 + 2" is not "2 + 2 + 2"."""
    return tuple(sorted(_normalise_number(n) for n in _NUMBER.findall(text)))


@lru_cache(maxsize=TERMS_CACHE)
def comparisons_in(text: str) -> Terms:
    return tuple(sorted(_COMPARISON.findall(text)))


@lru_cache(maxsize=TERMS_CACHE)
def quoted_in(text: str) -> Terms:
    return _terms(
        " ".join(next(g for g in groups if g).lower().split()) for groups in _QUOTED.findall(text)
    )


@lru_cache(maxsize=TERMS_CACHE)
def words_in(text: str) -> Terms:
    return _terms(re.sub(r"'s$", "", t.lower().strip("'")) for t in _WORD.findall(text))


def _is_named(bare: str, sentence_starts: set[str]) -> bool:
    """An acronym, an identifier (digits, dots, underscores), a capitalised word past the start of
    a sentence (not "I"), or camelCase."""
    return (
        bare.isupper()
        or any(c.isdigit() or c in "._" for c in bare)
        or (bare[0].isupper() and bare not in sentence_starts and not re.match(r"I('|$)", bare))
        or bool(re.search(r"[a-z][A-Z]", bare))
    )


@lru_cache(maxsize=TERMS_CACHE)
def named_in(text: str) -> Terms:
    sentence_starts = {m.group(1) for m in _SENTENCE_START.finditer(text)}
    bare_tokens = (token.strip("'") for token in _WORD.findall(text))
    return _terms(
        re.sub(r"'s$", "", bare.lower())
        for bare in bare_tokens
        if len(bare) >= 2 and _is_named(bare, sentence_starts)
    )


@lru_cache(maxsize=TERMS_CACHE)
def languages_in(text: str) -> Terms:
    lowered = text.lower()
    spelled = [w for w in words_in(text) if w in NATURAL_LANGUAGES or w in PROGRAMMING_LANGUAGES]
    return _terms([*spelled, *(lang for lang in ("c++", "c#") if lang in lowered)])


@lru_cache(maxsize=TERMS_CACHE)
def actions_in(text: str) -> Terms:
    return _terms(_CLASS_OF[m.group(1)] for m in _ACTION_PATTERN.finditer(text.lower()))


@lru_cache(maxsize=TERMS_CACHE)
def is_negated(text: str) -> bool:
    return bool(_NEGATION.search(text))


@dataclass(frozen=True)
class Verdict:
    ok: bool
    reason: str


def _named_agree(query: str, candidate: str) -> bool:
    """Every named thing of one prompt appears, in any case, among the words of the other."""
    query_named, candidate_named = named_in(query), named_in(candidate)
    if not query_named and not candidate_named:
        return True
    query_words, candidate_words = set(words_in(query)), set(words_in(candidate))
    return query_words.issuperset(candidate_named) and candidate_words.issuperset(query_named)


# The checks in the order they run, each extracting one class of terms: most candidates are
# refused on the first class that differs, so the rest is never extracted.
_SAME_TERMS: tuple[tuple[Callable[[str], object], str], ...] = (
    (numbers_in, "numbers differ"),
    (comparisons_in, "comparisons differ"),
    (quoted_in, "quoted text differs"),
    (languages_in, "languages differ"),
    (actions_in, "actions differ"),
    (is_negated, "negation differs"),
)


# Which rules made an agreement key: a digest of this module's text. Keys made by other rules
# (another release's lexicon, stemming or function words) are not comparable with these.
AGREEMENT_RULES = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:16]


@lru_cache(maxsize=TERMS_CACHE)
def agreement_key(text: str) -> str:
    """Terms ``verify`` requires two prompts to share exactly (the numbers, negation and content
    words, which hold the actions, languages and most quoted words too), as a digest:
    ``verify(a, b).ok`` implies ``agreement_key(a) == agreement_key(b)``. The semantic cache looks
    a prompt up among cached prompts with its key only, since the guard would refuse every other;
    the other checks run on those candidates. Two keys that collided would only put more
    candidates before ``verify``."""
    terms = (numbers_in(text), is_negated(text), content_words(text)[0])
    return hashlib.blake2b(repr(terms).encode(), digest_size=16).hexdigest()


def verify(query: str, candidate: str) -> Verdict:
    """Whether a cached answer to ``candidate`` may answer ``query``; the reason names the check."""
    for extract, reason in _SAME_TERMS:
        if extract(query) != extract(candidate):
            return Verdict(False, reason)
    if not _named_agree(query, candidate):
        return Verdict(False, "named terms differ")
    query_words, query_directions = content_words(query)
    candidate_words, candidate_directions = content_words(candidate)
    if query_words != candidate_words:
        return Verdict(False, "content words differ")
    same_shape = [d[0] for d in query_directions] == [d[0] for d in candidate_directions]
    if same_shape and query_directions != candidate_directions:
        return Verdict(False, "direction differs")
    return Verdict(True, "salient terms agree")
