"""French search with known answers: a small corpus where each record holds ONE spelling of its words, so
that each assertion fails when accent folding, stemming, elisions or the query language break."""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from registry import search
from registry.actions import Caller, experiences
from registry.actions import index as search_index
from registry.search.analysis import COMPOUND
from registry.search.fields import NONE, text_fields
from registry.standard import get_standard
from registry.store import Registry
from tests.helpers import csv_bytes, example, in_forked_child

OPERATOR = Caller.operator()
# id suffix: (title, text); every other free-text field is emptied so only these words are indexed
CORPUS = {
    1: ("Éclairage public intelligent", "Abaissement de l'éclairage des rues la nuit dans les communes rurales."),
    2: ("Mobilité douce", "Pistes cyclables et mobilité partagée en centre-ville, une oeuvre de longue haleine. "
                          "Autopartage."),
    3: ("Capteurs de qualité de l'air", "Mesure de la qualité de l'air près des écoles ; capteurs déposés. Taux "
                                       "de CO₂ suivi."),
    4: ("Securite routiere", "Radars pedagogiques pour la securite des pietons et des enfants."),
    5: ("Compteurs d'eau", "Télérelève des compteurs d'eau des abonnées, alerte de fuite ; mise en Œuvre au cœur "
                           "du bourg."),
    6: ("Stationnement connecté", "Un capteur de stationnement sur voirie ; projet abandonné : échec technique. "
                                  "Des vidéos."),
    7: ("Budget participatif", "Vote des habitants en ligne pour des projets de quartier."
                               + unicodedata.normalize("NFD", " Réunions à la mairie.")),  # accents apart
}
FACET_VALUES = {1: {"statut": "termine"}, 2: {"statut": "en_cours"}, 3: {"statut": "abandonne"},
                6: {"statut": "abandonne"}}


def exp_id(n: int) -> str:
    return f"217500016-2023-{n:03d}"


def row(n: int) -> dict[str, str]:
    base = {**example("217500016-2023-001")}
    for name in text_fields(get_standard().main):
        if not get_standard().main.by_name[name].required:
            base[name] = ""
    title, text = CORPUS[n]
    base |= {"id_experience": exp_id(n), "intitule": title, "resume": text, "objectifs": "Voir ci-dessus.",
             "statut": "termine", "motif_arret": "", "suite_donnee": "", "date_fin": "",
             "liens": "https://air.example.org/air-pur" if n == 7 else "",
             "contact_courriel": "air@ville.example" if n == 7 else base["contact_courriel"]}
    if FACET_VALUES.get(n, {}).get("statut") == "abandonne":
        base |= {"statut": "abandonne", "motif_arret": example("216901231-2021-001")["motif_arret"] or "technique"}
    elif n in FACET_VALUES:
        base |= FACET_VALUES[n]
    return base


@pytest.fixture
def corpus(search_registry: Registry) -> Iterator[Registry]:
    """The corpus on every database and search backend: the same queries must find the same records."""
    result = experiences.publish_upload(search_registry, OPERATOR, csv_bytes([row(n) for n in CORPUS]), "corpus.csv")
    assert result.accepted, result.report.to_text()
    yield search_registry


def found(reg: Registry, text: str, **filters: tuple[str, ...]) -> set[str]:
    results = search_index.search(reg, OPERATOR, search_index.request(text, filters, limit=100))
    return {h.id for h in results.hits}


def ids(*numbers: int) -> set[str]:
    return {exp_id(n) for n in numbers}


@pytest.mark.parametrize("query,expected", [
    ("mobilite", {2}), ("mobilité", {2}), ("MOBILITÉS", {2}),  # accents, case, plural
    ("sécurité", {4}), ("securite", {4}), ("piéton", {4}),  # the record is written without accents
    ("capteur", {3, 6}), ("capteurs", {3, 6}),  # singular and plural meet
    ("abonné", {5}), ("abonnés", {5}),  # the record says « abonnées »
    ("connectée", {6}), ("connectés", {6}),
    ("d'eau", {5}), ("eau", {5}), ("l'éclairage", {1}),  # elisions
    ("air", {3}),  # never through an address (record 7 has air in its link and e-mail)
    ("éclairage public", {1}), ("éclairage urbain", set()),  # every word must match
    ('"qualité de l\'air"', {3}), ('"air qualité"', set()),  # exact phrase, in this order
    ('"mesure de la qualité de l\'air"', {3}), ('"mesure air"', set()), ('"qualité mesure air"', set()),
    ("capteurs -écoles", {6}), ("capteurs -\"qualité de l'air\"", {6}),  # exclusion
    ("eau OR stationnement", {5, 6}), ("eau OU stationnement", {5, 6}), ("eau stationnement", set()),
    ("rural", {1}), ("commune", {1}),
    ("oeuvre", {2, 5}), ("œuvre", {2, 5}), ("coeur", {5}), ("CŒUR", {5}),  # ligatures as most keyboards type them
    ("co2", {3}), ("CO₂", {3}),  # compatibility forms (NFKC)
    ("vidéo", {6}), ("videos", {6}),  # « -os »: the French stemmer alone keeps the « s »
    ("réunion", {7}), (unicodedata.normalize("NFD", "réunions"), {7}),  # accents written apart (NFD)
    ("centreville", {2}), ("auto-partage", {2}), ("mobilité -auto-partage", set()),  # compounds, both ways
    ('"mobilité partagée en centre-ville"', {2}), ('"partagée en centreville"', {2}), ('"centre ville"', {2}),
])
def test_french_queries_find_exactly_the_right_records(corpus: Registry, query: str, expected: set[int]) -> None:
    assert found(corpus, query) == ids(*expected)


@pytest.mark.parametrize("query", ["*e*", "e*", '"unbalanced', "OR", "-", "--", "title:capteur", "a AND",
                                   "(((", "NOT", "capteur~2", "x" * 10_000, "é" * 3000, "\x00", "'; DROP TABLE",
                                   "ou ou ou", "le la les", "<script>alert(1)</script>", "[TO *]"])
def test_hostile_queries_are_plain_words(corpus: Registry, query: str) -> None:
    results = search_index.search(corpus, OPERATOR, search_index.request(query))
    assert results.total <= len(CORPUS)  # an answer, never an error


def test_stop_words_alone_find_nothing_and_wildcards_are_not_expanded(corpus: Registry) -> None:
    assert found(corpus, "le la les") == set()
    assert found(corpus, "capt*") == set()  # not a prefix search: no costly expansion
    assert found(corpus, "") == ids(*CORPUS)


def test_facets_add_up_and_empty_values_have_their_bucket(corpus: Registry) -> None:
    results = search_index.search(corpus, OPERATOR, search_index.request())
    assert results.total == len(CORPUS)
    for name, counts in results.facets.items():
        spec = get_standard().main.by_name.get(name)
        if spec is None or not spec.is_list:
            assert sum(counts.values()) == len(CORPUS), name  # single-valued: a partition, empty included
    assert results.facets["statut"] == {"termine": 4, "en_cours": 1, "abandonne": 2}
    assert results.facets["suite_donnee"] == {NONE: 7}
    assert found(corpus, "", suite_donnee=(NONE,)) == ids(*CORPUS)
    assert results.facets["region"] == {"11": 7} and results.facets["departement"] == {"75": 7}
    assert results.facets["annee_debut"] == {example("217500016-2023-001")["date_debut"][:4]: 7}


def test_filters_combine_and_counts_equal_what_the_filter_returns(corpus: Registry) -> None:
    assert found(corpus, "", statut=("abandonne",)) == ids(3, 6)
    assert found(corpus, "", statut=("abandonne", "en_cours")) == ids(2, 3, 6)  # OR within a field
    assert found(corpus, "capteur", statut=("abandonne", "en_cours")) == ids(3, 6)  # AND with the text
    assert found(corpus, "capteur", statut=("abandonne", "en_cours"), suite_donnee=(NONE,)) == ids(3, 6)
    assert found(corpus, "capteur", statut=("abandonne",), suite_donnee=("x",)) == set()  # AND across fields
    # a value no record has, however long or odd, finds nothing (and is no error)
    for odd in ("x" * 5000, "a'b\\", "abandonne' | 'termine", "é" * 300):
        assert found(corpus, "", statut=(odd,)) == set() and found(corpus, "capteur", statut=(odd,)) == set()
    results = search_index.search(corpus, OPERATOR, search_index.request("", {"statut": ("abandonne",)}))
    # the statut counts ignore the statut filter (each count is what choosing that value alone returns)
    for code, n in results.facets["statut"].items():
        assert len(found(corpus, "", statut=(code,))) == n
    # other facets count within the filtered set
    assert sum(results.facets["domaine"].values()) == 2
    # results overdue or not (derived from two fields and today's date): a record with no due date is not late
    for text in ("", "voir"):
        late = search_index.search(corpus, OPERATOR, search_index.request(text)).facets["resultats_en_retard"]
        assert sum(late.values()) == len(CORPUS), text
        for code, n in late.items():
            hits = search_index.search(corpus, OPERATOR, search_index.request(
                text, {"resultats_en_retard": (code,)}, limit=100)).hits
            assert len(hits) == n and {h.facets["resultats_en_retard"] for h in hits} == {(code,)}, (text, code)
    # the same for a facet of several values per record, and for one with words
    for text, name in (("", "technologies"), ("capteur", "technologies"), ("", "statut")):
        every = search_index.search(corpus, OPERATOR, search_index.request(text)).facets[name]
        chosen = sorted(every)[0]
        results = search_index.search(corpus, OPERATOR, search_index.request(text, {name: (chosen,)}))
        assert results.facets[name] == every and len(every) > 1, (text, name)
        for code, n in every.items():
            assert len(found(corpus, text, **{name: (code,)})) == n, (text, name, code)


def test_sorts_snippets_and_suggestions(corpus: Registry) -> None:
    req = search_index.request("qualité air", limit=5)
    results = search_index.search(corpus, OPERATOR, req)
    [hit] = results.hits
    assert "<mark>" in hit.snippet and "air" in hit.snippet
    suggestion = search_index.search(corpus, OPERATOR, search_index.request("capteurs deposs")).suggestion
    assert suggestion == "capteurs deposes"  # the index's own words, accents folded
    by_cost = search_index.search(corpus, OPERATOR, search_index.request("", sort="cout", limit=100))
    assert len(by_cost.hits) == len(CORPUS)
    with pytest.raises(search_index.InvalidSearch, match="Tri inconnu"):
        search_index.request("", sort="random")
    with pytest.raises(search_index.InvalidSearch, match="Filtre inconnu"):
        search_index.request("", {"nope": ("x",)})
    many = {"domaine": tuple(f"v{i}" for i in range(200)), "region": tuple(f"r{i}" for i in range(101))}
    with pytest.raises(search_index.InvalidSearch, match="Trop de valeurs de filtre : 301 \\(au plus 300\\)"):
        search_index.request("", many)
    assert len(search_index.request("", {**many, "region": many["region"][:100]}).filters["region"]) == 100


def test_records_with_huge_words_and_compounds_are_indexed_and_found(corpus: Registry) -> None:
    """A word of 1,100 Cyrillic letters (2,200 bytes), a compound of 600 words joined by hyphens (2,400 bytes
    written together): the record is stored, indexed (PostgreSQL refuses lexemes over 2,046 bytes) and found by
    its ordinary words."""
    long_word, compound = "ж" * 1100, "-".join(["жж"] * 600)
    odd = {**row(7), "resume": f"Sondes {long_word} puis {compound} fin."}
    result = experiences.publish_upload(corpus, OPERATOR, csv_bytes([odd]), "odd.csv")
    assert result.accepted, result.report.to_text()
    assert found(corpus, "sondes") == ids(7)
    assert found(corpus, long_word) <= ids(7) and found(corpus, compound) <= ids(7)  # an answer, never an error


def test_a_record_with_a_huge_text_is_indexed_and_the_index_follows(corpus: Registry, tmp_path: Path) -> None:
    """100 lessons of 3 x 4,900 characters of words all different (1.5 MB, ~180,000 words): PostgreSQL refuses a
    tsvector over 1 MiB, which failed the record's indexing and every sync after it. The record is found by its
    own words and the index keeps following the registry."""
    import random

    from tests.helpers import children, write_package

    rng = random.Random(5)

    def words(n: int) -> str:
        return " ".join("".join(rng.choice("bcdfghjklmnpqrstvwxz") for _ in range(9)) for _ in range(n))

    first = words(1)
    main = {**row(7), "resume": f"Sondes piézométriques {first}."}
    lesson = children("enseignements", "217500016-2023-001")[0]
    lessons = [{**lesson, "id_experience": exp_id(7), "numero": str(n), "description": words(480),
                "recommandation": words(480), "action_menee": words(480)} for n in range(1, 101)]
    folder = write_package(tmp_path / "huge", {"experiences": [main], "enseignements": lessons})
    result = experiences.publish_file(corpus, OPERATOR, folder)
    assert result.accepted, result.report.to_text()
    assert found(corpus, first) == ids(7) and found(corpus, lessons[0]["description"].split()[0]) == ids(7)
    renamed = {**row(2), "resume": "Vélos partagés et trottinettes."}  # a write after it is indexed too
    assert experiences.publish_upload(corpus, OPERATOR, csv_bytes([renamed]), "v.csv").accepted
    assert found(corpus, "trottinettes") == ids(2)


def test_snippets_escape_the_records_html(corpus: Registry) -> None:
    hostile = {**row(7), "resume": "Capteurs <script>alert('x')</script> & <b>gras</b> dans la rue."}
    assert experiences.publish_upload(corpus, OPERATOR, csv_bytes([hostile]), "x.csv").accepted
    [hit] = [h for h in search_index.search(corpus, OPERATOR, search_index.request("gras")).hits]
    assert "<script>" not in hit.snippet and "&lt;script&gt;" in hit.snippet and "<mark>gras</mark>" in hit.snippet


def test_snippet_words_are_every_word_whose_stem_is_wanted() -> None:
    """The snippet's matcher skips, in its regular expression, words that cannot match: it finds exactly the words
    that, taken one by one (lower case, accents folded, stemmed), give a wanted stem — capitals, accents on the
    first letter, « œ », digits and underscores included."""
    import csv
    import re

    from registry.paths import DEMO_DIR
    from registry.search import snippets
    from registry.search.analysis import analyzer, fold

    a = analyzer()
    with (DEMO_DIR / "experiences.csv").open(encoding="utf-8") as fh:
        texts = [" ".join(v for v in r.values() if v) for r in csv.DictReader(fh)]
    texts.append("Mise en Œuvre : l'ÉNERGIE, l’énergie et l'Énergie ; œuvre, cœur, Çà et là, été 2024, 2024_bis, "
                 "Ørsted, İstanbul, ½ tarif, naïveté, NAÏVE, des voyants, Yeux, il voit, Ygrec, la vidéo-protection "
                 "et l'auto-partage en 2020-2024.")
    # the same letters but those folding to more than one (« œ », « İ », « ½ »): words found by their first three
    # letters alone (`snippets._headed`), capitals, accents, « y », « ÿ », « ſ », « ª » and hyphens included
    plain = ("Mise en ŒUVRE".replace("Œ", "") + " : l'ÉNERGIE, l’énergie et l'Énergie ; Çà et là, été 2024, 2024_bis, "
             "Ørsted, naïveté, NAÏVE, des voyants, Yeux, il voit, Ygrec, ÿeux, ſtation, ªccès, la vidéo-protection, "
             "VIDÉO-protection et l'auto-partage en 2020-2024, capteurs-énergie, x-capteurs, cap-teurs.")
    assert snippets._headed(("ene",)) is not None and all(c in snippets.ONE or snippets._folds_alone(c)
                                                            for c in plain)
    texts.append(plain)

    def stems(word: str) -> set[str]:
        return {t.text for t in a(fold(word))}

    asked = ["oeuvre", "énergie", "ca", "ete", "2024", "2024_bis", "orsted", "istanbul", "naive", "coeur", "voyant",
             "voit", "yeux", "ygrec", "videoprotection", "protection", "autopartage", "auto", "20202024", "station",
             "acces", "capteur", "teurs"]
    # several words (several heads: `_headed` ties each head's rest to its first letter)
    several = [" ".join(asked[i:i + n]) for n in (2, 3) for i in range(0, len(asked) - n + 1, 2)]
    for text in texts:
        words = re.findall(r"\w+", text)
        for query in [*asked, *several, *words[::7], *(" ".join(words[i:i + 3]) for i in range(0, len(words), 41))]:
            wanted = frozenset(t.text for t in a(query))
            expected = []  # a word whose stem is wanted; a compound written together, if that is
            for m in re.finditer(r"\w+(?:-\w+)*", text):
                whole = m.group().replace("-", "")
                if "-" in m.group() and re.fullmatch(r"[^\W\d_]+", whole) and stems(whole) & wanted:
                    expected.append(m.span())
                else:
                    expected += [(m.start() + w.start(), m.start() + w.end()) for w in re.finditer(r"\w+", m.group())
                                 if stems(w.group()) & wanted]
            assert snippets._matches(text, wanted, a) == expected, (query, text[:60])
    last = texts[-2]
    assert len(snippets._matches(last, frozenset(t.text for t in a("énergie")), a)) == 3
    assert len(snippets._matches(last, frozenset(t.text for t in a("oeuvre")), a)) == 2
    [(start, end)] = snippets._matches(last, frozenset(t.text for t in a("voyant")), a)  # its stem is « voi »
    assert last[start:end] == "voyants"
    [(start, end)] = snippets._matches(last, frozenset(t.text for t in a("vidéoprotection")), a)
    assert last[start:end] == "vidéo-protection"


def test_a_snippet_is_its_first_two_fragments_of_every_match() -> None:
    """The snippet reads the text's matches only as far as its last fragment: the same as the fragments made from
    every match (a fragment from the first match not in the one before, with the matches within LENGTH of it)."""
    import random

    from registry.search import snippets
    from registry.search.analysis import analyzer

    a = analyzer()
    rng = random.Random(5)
    vocabulary = ["capteurs", "Capteur", "éclairage", "l'éclairage", "public", "vidéo-protection", "données", "eau",
                  "qualité", "de", "la", "et", "mesures", "ÉCLAIRAGE", "bilan"]
    texts = [" ".join(rng.choice(vocabulary) for _ in range(rng.randint(1, 400))) for _ in range(300)]
    for text in texts:
        for query in ("capteur", "éclairage public", "vidéoprotection", "eau", "absent"):
            wanted = frozenset(t.text for t in a(query))
            matches, parts = snippets._matches(text, wanted, a), []
            while matches and len(parts) < snippets.FRAGMENTS:
                first = matches[0][0]
                parts.append(snippets._fragment(text, [m for m in matches if m[0] < first + snippets.LENGTH]))
                matches = [m for m in matches if m[0] >= first + snippets.LENGTH]
            assert snippets.snippet(text, wanted, a) == snippets.MarkFormatter.between.join(parts), (query, text)


def test_snippets_mark_words_whose_accents_are_written_apart(corpus: Registry) -> None:
    [hit] = search_index.search(corpus, OPERATOR, search_index.request("réunion")).hits
    assert "<mark>Réunions</mark>" in hit.snippet  # NFC, as it looks


def test_withdrawn_records_are_never_shown_and_updates_are_seen(corpus: Registry) -> None:
    experiences.withdraw(corpus, OPERATOR, exp_id(6), "Fiche publiée deux fois par erreur.")
    assert found(corpus, "stationnement") == set()
    assert exp_id(6) not in found(corpus, "")
    renamed = {**row(2), "resume": "Vélos en libre-service et trottinettes partagées."}
    assert experiences.publish_upload(corpus, OPERATOR, csv_bytes([renamed]), "v2.csv").accepted
    assert found(corpus, "trottinette") == ids(2) and found(corpus, "cyclables") == set()


def test_similar_experiences(corpus: Registry) -> None:
    similar = dict(search_index.similar(corpus, OPERATOR, exp_id(3)))
    assert exp_id(3) not in similar and similar[exp_id(6)] == CORPUS[6][0]  # both about capteurs


def test_similar_experiences_share_distinctive_words_not_common_ones(corpus: Registry) -> None:
    """Eight records share the common words of record 101 (projet, réseau, capteurs, permis), one shares its rare
    ones (nappe phréatique, marais salant): that one comes first."""
    common = "Le projet a permis de déployer un réseau de capteurs ; le projet et le réseau de capteurs ont permis {}."
    texts = {101: common.format("le suivi de la nappe phréatique du marais salant"),
             102: "Suivi de la nappe phréatique et du marais salant par des sondes.",
             **{n: common.format(f"la mesure numéro {n}") for n in range(103, 111)}}
    rows = [{**row(1), "id_experience": exp_id(n), "intitule": f"Expérience {n}", "resume": text}
            for n, text in texts.items()]
    assert experiences.publish_upload(corpus, OPERATOR, csv_bytes(rows), "more.csv").accepted
    similar = [i for i, _ in search_index.similar(corpus, OPERATOR, exp_id(101))]
    assert similar[0] == exp_id(102) and exp_id(101) not in similar


def test_analyzer_makes_french_word_forms_meet() -> None:
    from registry.search.analysis import analyzer

    a = analyzer()
    pairs = [("mobilité", "mobilite"), ("sécurité", "securites"), ("données", "donnee"), ("collectivités",
             "collectivite"), ("capteur", "capteurs"), ("rural", "rurales"), ("abonné", "abonnées"),
             ("connecté", "connectées"), ("numérique", "numeriques"), ("éclairage", "eclairages"),
             ("piéton", "pietons"), ("énergie", "energies"), ("réseau", "réseaux"), ("échec", "echecs"),
             ("école", "ecoles"), ("intelligent", "intelligentes"), ("déployée", "deployes"),
             ("œuvre", "oeuvres"), ("Cœur", "COEUR"), ("vidéo", "vidéos"), ("vélo", "VELOS"), ("métro", "métros"),
             ("CO₂", "co2"), ("m²", "m2"), ("ﬁbre", "fibres"), (unicodedata.normalize("NFD", "sécurité"), "securite")]
    for one, other in pairs:
        assert [t.text for t in a(one)] == [t.text for t in a(other)], (one, other)
        assert [t.text for t in a(one)], one


# letters with and without accents, ligatures, compatibility forms, combining accents, hyphens, apostrophes,
# digits, spaces and punctuation: what the text of a French record holds
TEXT_CHARS = "aeiouyAEIOUYéèêëàâîïôöùûüçÉÈÀÇœŒæﬁﬂ₂²\u0301\u0327-'’ .,;:!?()«»\n0123456789bcdfglmnrstvxzjkqhwp"
KWARGS = [{}, {"positions": True}, {"positions": True, "chars": True}, {"removestops": False, "positions": True},
          {"mode": "query"}, {"no_morph": True, "positions": True}, {"tokenize": False}]


# words at the edges of the rules: endings « -os », « -ée(s) », sizes 1, 2, 120 and 121, stop words, compounds
EDGE_WORDS = ["gros", "GROS", "os", "vos", "ados", "vidéos", "a", "ab", "x" * 120, "é" * 120, "x" * 121, "les", "LES",
              "ée", "née", "nées", "connectées", "e-mail", "vidéo-protection", "l'eau", "CO₂", "œuvres", "ﬁn", "Ôtées"]
TEXTS = st.lists(st.one_of(st.text(alphabet=TEXT_CHARS, max_size=30), st.sampled_from(EDGE_WORDS)),
                 max_size=12).map(" ".join)


@settings(max_examples=400, deadline=None)
@given(TEXTS, st.sampled_from(KWARGS))
def test_the_analyzer_in_one_step_says_what_whooshs_filters_said(text: str, kwargs: dict[str, bool]) -> None:
    """The words of an index (Whoosh's and PostgreSQL's), of a query and of a snippet are made by `WordFilter`
    where five of Whoosh's filters did it in turn: the same words, places, offsets and stop marks, however the
    analyser is called (the former filters stay named by indexes written before); PostgreSQL's tsvectors by
    `stem_places`, the same places and stems without Whoosh's tokens."""
    new, former, places = _analyzers()

    def words(a: Any) -> list[tuple[Any, ...]]:
        return [(t.text, t.stopped, getattr(t, "pos", None), getattr(t, "startchar", None),
                 getattr(t, "endchar", None)) for t in a(text, **kwargs)]

    assert words(new) == words(former)
    assert words(new) == words(former)  # (again, its memory of words now holding them)
    plain = re.compile(r"[^\W\d_]+(?:-[^\W\d_]+)+")  # what COMPOUND finds, written the obvious way
    assert [m.span() for m in COMPOUND.finditer(text)] == [m.span() for m in plain.finditer(text)]
    # the tsvectors' (place, stem) pairs, made without Whoosh's tokens
    assert list(places(text)) == [(t.pos, t.text) for t in new(text, positions=True)]


@functools.cache
def _analyzers() -> tuple[Any, Any, Any]:
    from registry.search.analysis import analyzer, former_analyzer, stem_places

    fr = analyzer()
    return fr, former_analyzer(), stem_places(fr)


def test_whoosh_indexes_written_before_the_analysis_module_still_open() -> None:
    """A Whoosh index keeps its analyser pickled: those written before `analysis.py` name its classes as
    `whoosh_index`'s. Such a pickle (the module name as earlier indexes wrote it) still loads, and analyses alike."""
    import pickle

    text = "Les vidéos-protections connectées de l'Œuvre"
    for made in _analyzers()[:2]:  # (the analyser in one step; the former filters: indexes of format 2 had both)
        data = pickle.dumps(made, protocol=2)  # (protocol 2 writes a class as « module\nname\n »)
        assert b"registry.search.analysis\n" in data
        earlier = pickle.loads(data.replace(b"registry.search.analysis\n", b"registry.search.whoosh_index\n"))
        assert [(t.text, t.pos) for t in earlier(text, positions=True)] == \
            [(t.text, t.pos) for t in made(text, positions=True)]


def test_the_index_is_in_step_after_each_write(corpus: Registry) -> None:
    assert search.pending(corpus) == []
    assert search.check(corpus) == (set(), set(), set())


HOSTILE = ["*e*", '"unbalanced', "OR", "-", "title:capteur", "(((", "x" * 10_000, "\x00", "'; DROP TABLE",
           "<script>alert(1)</script>", "[TO *]", "capteur~2", "%", "\\", "é" * 3000]


def test_hostile_queries_on_the_page_the_api_and_the_command_line(corpus: Registry) -> None:
    from click.testing import CliRunner

    from registry.cli import cli
    from web.app import create_app

    client = create_app(corpus, dev=True).test_client()
    env = {"REGISTRY_HOME": str(corpus.settings.home), "REGISTRY_DATABASE_URL": corpus.settings.database_url,
           "REGISTRY_SEARCH_BACKEND": corpus.settings.search_backend}
    for query in HOSTILE:
        page = client.get("/", query_string={"q": query}, follow_redirects=True)  # / sends a search to /recherche
        assert page.status_code == 200 and "<script>alert" not in page.get_data(as_text=True), query
        api = client.get("/api/search", query_string={"q": query})
        assert api.status_code == 200 and api.is_json, query
        out = CliRunner().invoke(cli, ["search", query, "--format", "json"], env=env, catch_exceptions=False)
        assert out.exit_code == 0, (query, out.output)


def test_counts_are_exact_below_the_threshold_and_flagged_from_it(corpus: Registry,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """PostgreSQL stops counting a query's matches at `exact_up_to` (10,000; 3 here, on the 7 records): below
    it every count is exact and adds up; from it the total and the facets are lower bounds, flagged "gte" on
    the API, "≥" on the page, "au moins" on the command line. Whoosh always counts exactly."""
    from click.testing import CliRunner

    from registry.cli import cli
    from web.app import create_app

    index = search.backend(corpus)
    capped = corpus.settings.search_backend == "postgresql"
    if capped:
        index.exact_up_to = index.ranked = 3  # type: ignore[attr-defined]
        # (words searched again on a process holding the snapshot are counted exactly: test_search_postgres.py)
        monkeypatch.setattr(index, "_kept_matches", lambda *a: None)
    every = search_index.search(corpus, OPERATOR, search_index.request("voir"))  # "Voir ci-dessus." in each
    assert every.exact is not capped and every.total_relation == ("gte" if capped else "eq")
    assert every.total == (3 if capped else 7) and len(every.hits) == 7  # the page still holds every match
    assert sum(every.facets["statut"].values()) == every.total  # the counts of what was counted
    for code, n in every.facets["statut"].items():
        assert n <= len(found(corpus, "", statut=(code,)))  # lower bounds
    narrow = search_index.search(corpus, OPERATOR, search_index.request("capteur"))  # 2 < 3: exact
    assert narrow.exact and narrow.total == 2 and narrow.facets["statut"] == {"abandonne": 2}
    assert sum(narrow.facets["domaine"].values()) == 2
    # two matches, counted exactly; but the statut counts (made without the statut filter) reach the threshold
    filtered = search_index.search(corpus, OPERATOR, search_index.request("voir", {"statut": ("abandonne",)}))
    assert filtered.total == 2 and filtered.exact and filtered.facets_exact is not capped
    assert narrow.facets_exact and every.facets_exact is not capped
    browse = search_index.search(corpus, OPERATOR, search_index.request())  # no words: always exact
    assert browse.exact and browse.total == 7

    client = create_app(corpus, dev=True).test_client()
    api = client.get("/api/search", query_string={"q": "voir"}).get_json()
    assert (api["count"], api["total_relation"]) == ((3, "gte") if capped else (7, "eq"))
    assert client.get("/api/search", query_string={"q": "capteur"}).get_json()["total_relation"] == "eq"
    page = client.get("/recherche", query_string={"q": "voir"}).get_data(as_text=True)
    assert ("≥ 3 expériences" in page) is capped and ("7 expériences" in page) is not capped
    env = {"REGISTRY_HOME": str(corpus.settings.home), "REGISTRY_DATABASE_URL": corpus.settings.database_url,
           "REGISTRY_SEARCH_BACKEND": corpus.settings.search_backend}
    if capped:  # the command line opens its own backend: the same threshold for it
        from registry.search import postgres

        monkeypatch.setattr(postgres, "EXACT_UP_TO", 3)
    out = CliRunner().invoke(cli, ["search", "voir"], env=env, catch_exceptions=False)
    assert out.output.startswith("au moins 3 résultat(s)" if capped else "7 résultat(s)"), out.output
    out = CliRunner().invoke(cli, ["search", "capteur"], env=env, catch_exceptions=False)
    assert out.output.startswith("2 résultat(s)"), out.output


@pytest.mark.parametrize("search_registry", [("sqlite", "whoosh")], indirect=True, ids=["sqlite-whoosh"])
def test_whoosh_index_of_an_older_format_is_rebuilt_by_the_next_sync(search_registry: Registry,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """An index made before ligatures were written out (format 1: « cœur » kept, no FORMAT file) does not find
    « coeur »: the next sync builds a new generation of this format, which does."""
    from whoosh.support.charset import accent_map

    from registry.search import analysis, whoosh_index

    folder: whoosh_index.IndexFolder = search.backend(search_registry).folder  # type: ignore[attr-defined]
    with monkeypatch.context() as m:  # (the backend's own analyser, for queries, is made above: this version's)
        m.setattr(analysis, "FOLD", accent_map)  # the words as format 1 made them
        assert experiences.publish_upload(search_registry, OPERATOR, csv_bytes([row(n) for n in CORPUS]),
                                          "corpus.csv").accepted
        search.rebuild(search_registry)  # a generation of its own (one may have been made before the patch)
    old = folder.current()
    assert old is not None
    (old / "FORMAT").unlink()
    assert folder.current_format() == "1" and found(search_registry, "coeur") == set()
    assert search.sync(search_registry) == len(CORPUS)  # what `registry index sync` reports: every record again
    assert folder.current() != old and folder.current_format() == whoosh_index.FORMAT
    assert found(search_registry, "coeur") == found(search_registry, "cœur") == ids(5)


@pytest.mark.parametrize("search_registry", [("sqlite", "whoosh")], indirect=True, ids=["sqlite-whoosh"])
def test_writing_the_whoosh_index_asks_the_file_system_once_a_column(corpus: Registry,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Whoosh's writer asked whether a length column exists at every posting of a field that keeps none (facets,
    ids: ~180 `stat()` a record, ~12 % of a rebuild); the registry's codec remembers the answer."""
    from whoosh.filedb.filestore import FileStorage

    asked: list[str] = []
    exists = FileStorage.file_exists
    monkeypatch.setattr(FileStorage, "file_exists", lambda self, name: asked.append(name) or exists(self, name))
    assert search.rebuild(corpus) == len(CORPUS)
    assert len(asked) == len(set(asked)) < 60, len(asked)  # each file asked once (was 285 times for 24 files)
    assert found(corpus, "capteur") == ids(3, 6)  # and the index reads the same


@pytest.mark.parametrize("search_registry", [("postgresql", "postgresql")], indirect=True, ids=["postgresql-fts"])
def test_postgres_rows_of_an_older_format_are_rebuilt_by_the_next_sync(corpus: Registry) -> None:
    """Phrases are found through word pairs stored by this version: rows written before it (format 0, no
    pairs) find no phrase, so the next sync rebuilds them."""
    from sqlalchemy import text

    with corpus.engine.begin() as conn:
        conn.execute(text("UPDATE search_meta SET version = 0 WHERE id = 2"))
        conn.execute(text("UPDATE search_documents SET tsv = ts_delete(tsv, 'qualit air'::text)"))  # as an old row
    assert found(corpus, '"qualité de l\'air"') == set()
    search.sync(corpus)
    assert found(corpus, '"qualité de l\'air"') == ids(3)


@pytest.mark.parametrize("search_registry", [("postgresql", "postgresql")], indirect=True, ids=["postgresql-fts"])
def test_postgres_search_works_in_a_process_forked_after_searching(corpus: Registry) -> None:
    """gunicorn --preload forks after the application has run: a search counts on a thread of its own process
    (threads do not survive a fork; the parent's would leave the child waiting forever)."""
    expected = found(corpus, "capteur")
    assert expected

    def child() -> int:  # the same registry object, a fresh count cache
        search.backend(corpus)._counts.clear()  # type: ignore[attr-defined]
        return 0 if found(corpus, "capteur") == expected else 2

    assert in_forked_child(corpus.engine, child) == 0


@pytest.mark.parametrize("search_registry", [("postgresql", "postgresql")], indirect=True, ids=["postgresql-fts"])
def test_postgres_search_never_deadlocks_with_an_exclusive_lock(corpus: Registry,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """A search counts on a second connection: if the first held its locks while waiting, a writer asking for an
    exclusive lock in between (a format change, an operator's VACUUM FULL) would wait for the first, and the
    counts behind the writer: a deadlock PostgreSQL cannot see. The writer gives up after 10 s here."""
    import threading
    import time

    from sqlalchemy import text

    from registry.search.postgres import PostgresSearch

    backend = search.backend(corpus)
    backend._counts.clear()  # type: ignore[attr-defined]
    queued = threading.Event()
    got: list[bool] = []

    def writer() -> None:
        with corpus.engine.begin() as conn:
            conn.execute(text("SET LOCAL lock_timeout = '10s'"))
            try:
                conn.execute(text("LOCK TABLE search_documents IN ACCESS EXCLUSIVE MODE"))
                got.append(True)
            except Exception:  # the lock timed out: the deadlock this test looks for
                got.append(False)

    count_apart, hits = PostgresSearch._pass_apart, PostgresSearch._hits

    def late_count(self: PostgresSearch, *args: object) -> object:
        assert queued.wait(10)  # counts start once the writer waits for the page's connection
        return count_apart(self, *args)  # type: ignore[arg-type]

    def hits_then_writer(self: PostgresSearch, *args: object) -> object:
        page = hits(self, *args)  # type: ignore[arg-type]
        threading.Thread(target=writer, daemon=True).start()
        with corpus.engine.connect() as conn:
            for _ in range(200):
                if conn.scalar(text("SELECT count(*) FROM pg_locks WHERE NOT granted "
                                    "AND mode = 'AccessExclusiveLock'")):
                    break
                time.sleep(0.02)
        queued.set()
        return page

    monkeypatch.setattr(PostgresSearch, "_pass_apart", late_count)
    monkeypatch.setattr(PostgresSearch, "_hits", hits_then_writer)
    start = time.monotonic()
    assert found(corpus, "capteur") == ids(3, 6)
    assert time.monotonic() - start < 8 and got == [True]
