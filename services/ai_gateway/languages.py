"""Whether a request turn is in the language the router was trained on: English.

The router's patterns are English words and its embedding model was distilled from an English
one, so a turn in another language is outside what it learned: scored anyway, a Russian proof, an
Italian proof or a Chinese system design read as simple questions. Two cheap signals, no model:

- **script**: most of the letters are not Latin (Cyrillic, Greek, CJK, Arabic...);
- **function words**: in Latin script, at least two words that only French, Spanish, Italian,
  German, Portuguese, Dutch, Polish or Turkish use ("est", "nuestra", "perché", "und", "não",
  "het", "się", "için"), and more of them than English ones ("the", "of", "is"...).

Quoted text, code spans and URLs are left out of both: 'Translate "où est la gare" into English.'
is an English request. A turn of fewer than four words, or with fewer than two such words, is not
caught by the word rule.
"""

from __future__ import annotations

import re

# Up to this many characters of a turn decide: the start of a pasted document says it.
SAMPLE_CHARS = 4000
# Words of those languages that English text does not use as words. Left out: English words
# ("die", "as", "do", "per", "con", "son", "a", "in", "o", "van", "hay", "em", "comment"), what
# code, tools and names use ("y", "os", "del", "es", "jest", "mit", "dos", "los", "dem", "sus",
# "aus", "le", "et" and "al" as in "et al."), prefixes split off by a hyphen ("non", "un") and
# contractions' ends ("ve" of "I've").
_FOREIGN_WORDS = frozenset(
    """
    la les des est une du qui pour dans pas sur avec nous vous sont cette ce au aux notre nos
    votre pourquoi quel quelle que
    el las para como pero nuestro nuestra cómo qué está una
    il di che della delle degli è sono perché gli dei nel alla si
    der das und ist nicht ein eine für ich wir zu auf von wie warum unsere unser oder auch bitte
    dass sind wird
    um uma não seu sua nosso nossa é da
    het een zijn niet
    się jest nie oraz dla że
    bir için ile nasıl olan
    """.split()
)
_ENGLISH_WORDS = frozenset(
    """
    the of and to is in for that with on what how why this are it be can you our my an a from by
    as or does do which when where who i we your
    """.split()
)
# The word rule reads a turn of at least this many words: a name or a fragment is no language.
MIN_WORDS = 4
_WORD = re.compile(r"[^\W\d_]+")
# Quoted text, code spans and addresses say nothing of the request's own language. A single
# quote opens a quotation only where no letter precedes it ("l'argomento" is one word).
_QUOTED = re.compile(
    r'"[^"]*"|“[^”]*”|„[^“”]*[“”]|«[^»]*»|‘[^’]*’|(?<!\w)\'[^\'\n]*\'(?!\w)|`[^`]*`|[A-Za-z][A-Za-z0-9+.-]{0,15}://\S*'
)


def _mostly_non_latin(sample: str) -> bool:
    letters = [c for c in sample if c.isalpha()]
    latin = sum(1 for c in letters if c <= "\u024f" or "\u1e00" <= c <= "\u1eff")
    return latin * 2 < len(letters)


def outside_training_language(turn: str) -> bool:
    """Whether ``turn`` reads as a language other than English (see the module docstring)."""
    sample = _QUOTED.sub(" ", turn[:SAMPLE_CHARS])
    if not sample.isascii() and _mostly_non_latin(sample):
        return True
    words = _WORD.findall(sample.lower())
    if len(words) < MIN_WORDS:
        return False
    foreign = sum(1 for w in words if w in _FOREIGN_WORDS)
    if foreign < 2:
        return False
    return foreign > sum(1 for w in words if w in _ENGLISH_WORDS)
