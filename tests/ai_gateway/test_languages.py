"""Which request turns the router treats as outside its training language (English)."""

from __future__ import annotations

import pytest

from ai_gateway.languages import SAMPLE_CHARS, outside_training_language
from ai_gateway.router_evaluation import HELD_OUT_SET, TRAINING_SET, load_routing_set


@pytest.mark.parametrize(
    "turn",
    [
        "Докажите, что существует бесконечно много простых чисел.",  # Cyrillic
        "东京的天气怎么样？",  # CJK
        "Quelle est la capitale du Portugal ?",
        "Diseña un plan de conmutación por error para nuestra base y compara las ventajas.",
        "Entwerfe einen Failover-Plan für unsere Datenbank und vergleiche die Kompromisse.",
        "Dimostra che esistono infiniti numeri primi e spiega perché non si estende.",
        "Projete um plano de failover para nosso banco e compare os prós e contras.",
        "Demuestra que la raíz cuadrada de 2 es irracional.",
        "Beweise, dass die Wurzel aus 2 irrational ist.",
        "Zaprojektuj plan przełączania awaryjnego dla naszej bazy, który się nie psuje.",
        "Veritabanımız için çok bölgeli bir yük devretme planı tasarlayın.",
        "Ontwerp een failoverplan voor onze database en vergelijk het met de huidige opzet.",
    ],
)
def test_other_languages_are_outside(turn):
    assert outside_training_language(turn)


@pytest.mark.parametrize(
    "turn",
    [
        "What is the capital of Portugal?",
        'Translate "où est la gare" into English.',  # a quoted phrase in an English request
        "How do you say 'excuse me' in Mandarin? 对不起 is what I found.",
        "Résumé tips for a café job, please.",  # accents, English words
        'Translate "Das Produkt kam schnell an, aber die Verpackung war beschädigt." to English.',
        "Define entropy.",
        "",
        # English that shares words with the lists: a hyphen's prefix, names, code, quotations
        "Non-blocking vs non-recursive socket?",
        "Format Smith et al. and Le et al. in APA.",
        "def dist(x, y): return (x*x + y*y) ** 0.5",
        "Translate 'où est la gare' into English.",
        "Why does `ls -la | du -sh` print la and du here?",
        "See https://example.com/es/la/que/una for the details of this.",
        "I've got a van full of hay, where do I park it?",
        "Comment out the del statements in os module code",  # tools' and languages' names
        "Jest ES modules support, MIT licensed",
        "Pros and con: Jest versus Mocha versus Vitest",
        "Der Spiegel",  # two words: a name, not a request's language
    ],
)
def test_english_requests_are_inside(turn):
    assert not outside_training_language(turn)


def test_no_training_or_held_out_prompt_is_outside():
    """So the rule changes none of the evaluation figures the README reports."""
    for path in (TRAINING_SET, HELD_OUT_SET):
        flagged = [
            e.id for e in load_routing_set(path).prompts if outside_training_language(e.prompt)
        ]
        assert flagged == [], path.name


def test_only_the_start_of_a_long_turn_is_read():
    """A pasted document's first characters say its language; the rest is not scanned."""
    english = "Summarise this report for the board. " * (SAMPLE_CHARS // 20)
    assert not outside_training_language(english + "Докажите это. " * 10_000)
    assert outside_training_language("Докажите это. " * (SAMPLE_CHARS // 10) + english)
