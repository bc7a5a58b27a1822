"""Handoff words: a user asks for a person ("atendente", "falar com humano"). HANDOFF_KEYWORDS lists them.

Matching is by whole words, ignoring case and accents: each keyword (one word or a phrase) matches where its words
appear in the message in order, separated by any whitespace and bounded by anything that is not a letter or
digit. So "atendente" matches "Quero um ATENDENTE!" and "atendênte", but not "atendentes"; "stop" does not match
"nonstop". Whole words, not substrings, because a short keyword would otherwise fire inside ordinary words.
"""

import re
import unicodedata
from functools import cache

from django.conf import settings


def text_folded(text: str) -> str:
    """The text without accents (decomposed, combining marks dropped) and case-folded."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(char for char in decomposed if not unicodedata.combining(char)).casefold()


@cache
def _keywords_pattern(keywords: tuple[str, ...]) -> re.Pattern | None:
    phrases = [r"\s+".join(map(re.escape, text_folded(keyword).split())) for keyword in keywords]
    phrases = [phrase for phrase in phrases if phrase]
    if not phrases:
        return None
    return re.compile(rf"(?<!\w)(?:{'|'.join(phrases)})(?!\w)")


def handoff_keyword(content: str) -> str | None:
    """The HANDOFF_KEYWORDS entry the message asks with (the first, as configured), or None."""
    keywords = tuple(settings.HANDOFF_KEYWORDS)
    pattern = _keywords_pattern(keywords)
    if pattern is None:
        return None
    match = pattern.search(text_folded(content))
    if match is None:
        return None
    found = " ".join(match.group().split())
    return next(keyword for keyword in keywords if " ".join(text_folded(keyword).split()) == found)
