"""Which open incidents look like the same cause: symptom similarity. Pure: standard library only.

Text is reduced to a set of word tokens (lower case, letters and digits, at least two
characters, common words dropped, a plural ``s`` trimmed) plus word-pair shingles, so "disk
full on server" and "server disk is full" share most of their features while word order still
counts a little. Similarity is the Jaccard index of the two feature sets (0 to 1).
The score that ranks candidates adds a bonus for sharing a CI (the same CI beats a neighbour).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["DEFAULT_THRESHOLD", "Candidate", "MatchScore", "features", "jaccard", "rank", "similarity"]

#: Offered as a match from this similarity up (customer.sla["match_threshold"] overrides).
DEFAULT_THRESHOLD = 0.2
SAME_CI_BONUS = 0.2
NEIGHBOUR_CI_BONUS = 0.1

_WORD = re.compile(r"[a-z0-9]+")
_STOP = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "been",
        "but",
        "by",
        "can",
        "cannot",
        "could",
        "did",
        "do",
        "does",
        "for",
        "from",
        "had",
        "has",
        "have",
        "he",
        "her",
        "his",
        "how",
        "i",
        "if",
        "in",
        "into",
        "is",
        "it",
        "its",
        "me",
        "my",
        "no",
        "not",
        "of",
        "on",
        "or",
        "our",
        "out",
        "she",
        "so",
        "than",
        "that",
        "the",
        "their",
        "them",
        "then",
        "there",
        "these",
        "they",
        "this",
        "to",
        "too",
        "up",
        "us",
        "was",
        "we",
        "were",
        "what",
        "when",
        "where",
        "which",
        "while",
        "who",
        "will",
        "with",
        "would",
        "you",
        "your",
    ]
)


def _tokens(text: str) -> list[str]:
    words = []
    for word in _WORD.findall(text.lower()):
        if len(word) < 2 or word in _STOP:
            continue
        if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
            word = word[:-1]
        words.append(word)
    return words


def features(*texts: str) -> frozenset[str]:
    """Word tokens and adjacent word pairs of the texts together."""
    found: set[str] = set()
    for text in texts:
        words = _tokens(text or "")
        found.update(words)
        found.update(f"{a} {b}" for a, b in itertools.pairwise(words))
    return frozenset(found)


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    if not a or not b:
        return 0.0
    return len(a & b) / len(a | b)


def similarity(a_texts: Iterable[str], b_texts: Iterable[str]) -> float:
    return jaccard(features(*a_texts), features(*b_texts))


@dataclass(frozen=True)
class Candidate:
    """An open incident that might share the cause: its id, texts and CIs."""

    incident_id: int
    texts: tuple[str, ...]
    ci_ids: frozenset[int]


@dataclass(frozen=True)
class MatchScore:
    incident_id: int
    similarity: float
    same_cis: tuple[int, ...]
    neighbour_cis: tuple[int, ...]
    score: float


def rank(
    texts: Iterable[str],
    ci_ids: Iterable[int],
    neighbours: Iterable[int],
    candidates: Iterable[Candidate],
    threshold: float = DEFAULT_THRESHOLD,
) -> list[MatchScore]:
    """Candidates on the same CIs or on neighbouring ones whose symptoms are similar enough,
    best first (score, then the newer incident)."""
    mine = features(*texts)
    own = frozenset(ci_ids)
    near = frozenset(neighbours) - own
    ranked = []
    for candidate in candidates:
        same = candidate.ci_ids & own
        close = candidate.ci_ids & near
        if not same and not close:
            continue
        value = jaccard(mine, features(*candidate.texts))
        if value < threshold:
            continue
        bonus = SAME_CI_BONUS if same else NEIGHBOUR_CI_BONUS
        ranked.append(
            MatchScore(
                candidate.incident_id,
                round(value, 4),
                tuple(sorted(same)),
                tuple(sorted(close)),
                round(value + bonus, 4),
            )
        )
    ranked.sort(key=lambda m: (-m.score, -m.incident_id))
    return ranked
