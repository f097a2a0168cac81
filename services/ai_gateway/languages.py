"""Whether a request turn is in the language the router was trained on: English.

The router's patterns are English words and its embedding model was distilled from an English
one, so a turn in another language is outside what it learned: scored anyway, a Russian proof, an
Italian proof or a Chinese system design read as simple questions. Two cheap signals, no model:

- **script**: most of the letters are not Latin (Cyrillic, Greek, CJK, Arabic...);
- **function words**: in Latin script, at least two words that only French, Spanish, Italian,
  German or Portuguese use ("est", "nuestra", "perché", "und", "não"), and more of them than
  English ones ("the", "of", "is"...).

Text in double quotes is left out of both: 'Translate "où est la gare" into English.' is an
English request. A short turn with fewer than two such words (a five-word Italian sentence) is
not caught.
"""

from __future__ import annotations

import re

# Up to this many characters of a turn decide: the start of a pasted document says it.
SAMPLE_CHARS = 4000
# Words of those five languages that English text does not use as words ("die", "as", "do",
# "per", "con", "a", "in" and "o" are left out for that reason).
_FOREIGN_WORDS = frozenset(
    """
    le la les des est et une du qui pour dans pas sur avec nous vous sont cette ce au aux notre
    nos votre comment pourquoi quel quelle
    el los las del y por para con como pero nuestro nuestra cómo qué está son sus al
    il di che della delle degli è non sono perché gli dei nel alla un si
    der das und ist nicht ein eine mit für ich wir zu auf von dem wie warum unsere unser oder auch
    bitte
    os um uma não seu sua nosso nossa é da dos em
    """.split()
)
_ENGLISH_WORDS = frozenset(
    """
    the of and to is in for that with on what how why this are it be can you our my an a from by
    as or does do which when where who i we your
    """.split()
)
_WORD = re.compile(r"[^\W\d_]+")
_QUOTED = re.compile(r'"[^"]*"|“[^”]*”|„[^“”]*[“”]|«[^»]*»')


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
    foreign = sum(1 for w in words if w in _FOREIGN_WORDS)
    if foreign < 2:
        return False
    return foreign > sum(1 for w in words if w in _ENGLISH_WORDS)
