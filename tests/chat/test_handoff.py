"""Handoff words (chat.handoff): whole words or phrases, ignoring case and accents."""

import pytest

from chat.handoff import handoff_keyword

KEYWORDS = ["atendente", "falar com humano", "STOP", "  "]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("atendente", "atendente"),
        ("Quero um ATENDENTE!", "atendente"),
        ("quero um atendênte por favor", "atendente"),
        ("preciso FALAR   com\nHumano agora", "falar com humano"),
        ("Falar com humano.", "falar com humano"),
        ("stop", "STOP"),
        ("(stop)", "STOP"),
        ("atendentes", None),
        ("nonstop", None),
        ("stopwatch", None),
        ("falar com humanos", None),
        ("falar humano", None),
        ("", None),
    ],
)
def test_a_keyword_matches_as_whole_words_ignoring_case_and_accents(settings, content, expected):
    settings.HANDOFF_KEYWORDS = KEYWORDS

    assert handoff_keyword(content) == expected


def test_no_keyword_configured_matches_nothing(settings):
    settings.HANDOFF_KEYWORDS = []

    assert handoff_keyword("atendente") is None


def test_accented_keywords_match_unaccented_text(settings):
    settings.HANDOFF_KEYWORDS = ["Atenção humana"]

    assert handoff_keyword("quero atencao HUMANA") == "Atenção humana"
