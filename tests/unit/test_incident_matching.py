"""incident.matching: symptom similarity and the ranking of candidate incidents."""

from __future__ import annotations

from incident.matching import Candidate, features, jaccard, rank, similarity


def test_features_ignore_case_stop_words_and_plurals() -> None:
    assert features("The Disks are FULL") == features("disk full")
    assert "disk full" in features("disk full on the server")
    assert features("", "   ") == frozenset()


def test_similarity_is_jaccard_of_features() -> None:
    assert similarity(["disk full"], ["disk full"]) == 1.0
    assert similarity(["disk full"], ["printer jam"]) == 0.0
    assert similarity(["a b c d e f"], []) == 0.0
    partial = similarity(["database connection refused"], ["connection refused by database"])
    assert 0.3 < partial < 1.0
    assert jaccard(frozenset({"a", "b"}), frozenset({"b", "c"})) == 1 / 3


def test_rank_needs_a_shared_or_neighbouring_ci_and_enough_similarity() -> None:
    texts = ["Database connection refused", "ORA-12541 no listener"]
    candidates = [
        Candidate(1, ("Database connection refused", "ORA-12541 no listener"), frozenset({10})),  # same CI
        Candidate(2, ("Database connection refused", "ORA-12541 no listener"), frozenset({11})),  # neighbour
        Candidate(3, ("Database connection refused", "ORA-12541 no listener"), frozenset({99})),  # elsewhere
        Candidate(4, ("Printer out of toner",), frozenset({10})),  # same CI, other symptoms
        Candidate(5, ("Database connection refused",), frozenset({10})),  # same CI, weaker text
    ]
    ranked = rank(texts, [10], [11], candidates, threshold=0.2)
    assert [m.incident_id for m in ranked] == [1, 2, 5]
    assert ranked[0].same_cis == (10,) and ranked[1].neighbour_cis == (11,)
    assert ranked[0].score > ranked[1].score  # the same CI beats a neighbour at equal similarity
    assert rank(texts, [10], [11], candidates, threshold=0.95) == rank(texts, [10], [11], candidates[:2], 0.95)
