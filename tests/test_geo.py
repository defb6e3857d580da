"""Geography reference: real lookups on the committed tables, and the refresh script on a fake package."""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from registry.geo import DEFAULT_PATH, TRANCHES_POPULATION, Geography, get_geography, tranche_population

REFRESH = Path(__file__).resolve().parents[1] / "data" / "geo" / "refresh.py"


@pytest.fixture(scope="module")
def geo() -> Geography:
    return get_geography()


def test_paris(geo: Geography) -> None:
    paris = geo.commune("75056")
    assert paris is not None
    assert (paris.nom, paris.siren) == ("Paris", "217500016")
    assert (paris.departement, paris.departement_nom) == ("75", "Paris")
    assert (paris.region, paris.region_nom) == ("11", "Île-de-France")
    assert (paris.epci_siren, paris.epci_nom) == ("200054781", "Métropole du Grand Paris")
    assert paris.tranche_population == "200000_plus"
    assert paris.tranche_population_label == "200 000 et plus"
    assert not paris.est_arrondissement


def test_arrondissement_municipal_is_accepted_and_points_to_its_commune(geo: Geography) -> None:
    arr = geo.commune("75101")
    assert arr is not None
    assert arr.nom == "Paris 1er Arrondissement"
    assert arr.est_arrondissement and arr.commune_parent == "75056"
    assert arr.siren is None  # not a legal entity
    assert arr.epci_siren == "200054781"
    lyon_arr = geo.commune("69381")
    assert lyon_arr is not None and lyon_arr.commune_parent == "69123"
    assert sum(1 for c in geo.communes(arrondissements=True) if c.est_arrondissement) == 45


def test_corsica(geo: Geography) -> None:
    ajaccio = geo.commune("2A004")
    assert ajaccio is not None
    assert ajaccio.nom == "Ajaccio"
    assert (ajaccio.departement_nom, ajaccio.region_nom) == ("Corse-du-Sud", "Corse")
    assert geo.commune("2a004") == ajaccio  # lower case and spaces tolerated
    assert geo.commune(" 2A004 ") == ajaccio
    # the pre-1976 code of Ajaccio
    old = geo.former_commune("20004")
    assert old is not None and old.code_actuel == "2A004"


def test_overseas(geo: Geography) -> None:
    abymes = geo.commune("97101")
    assert abymes is not None
    assert abymes.nom == "Les Abymes"
    assert (abymes.departement, abymes.departement_nom) == ("971", "Guadeloupe")
    assert abymes.region == "01" and abymes.siren == "219711017"
    assert abymes.tranche_population == "50000_199999"
    # collectivités d'outre-mer: listed, but no SIREN and no EPCI in the source
    bora = geo.commune("98714")
    assert bora is not None and bora.nom == "Bora-Bora"
    assert bora.departement_nom == "Polynésie française"
    assert bora.siren is None and bora.epci_siren is None


def test_epci_siren(geo: Geography) -> None:
    assert geo.siren_kind("200046977") == "epci"
    lyon_metro = geo.organisation("200046977")
    assert lyon_metro is not None
    assert (lyon_metro.nom, lyon_metro.kind, lyon_metro.epci_type) == ("Métropole de Lyon", "epci", "MET69")
    lyon = geo.commune("69123")
    assert lyon is not None and lyon.epci_siren == "200046977"


def test_commune_siren(geo: Geography) -> None:
    assert geo.siren_kind("217500016") == "commune"
    assert geo.siren_kind("217 500 016") == "commune"
    org = geo.organisation("217500016")
    assert org is not None
    assert (org.nom, org.kind, org.code_insee) == ("Paris", "commune", "75056")


def test_old_merged_codes(geo: Geography) -> None:
    # Amareins (01003) merged into Francheleins in 1974: only its code survives in anciensCodes
    old = geo.former_commune("01003")
    assert old is not None
    assert (old.type, old.code_actuel, old.nom_actuel) == ("ancien_code", "01165", "Francheleins")
    assert old.nom is None
    assert geo.commune("01003") is None
    # Saint-Bois, commune déléguée of the commune nouvelle Arboys en Bugey
    deleguee = geo.former_commune("01340")
    assert deleguee is not None
    assert (deleguee.nom, deleguee.type, deleguee.code_actuel) == ("Saint-Bois", "commune_deleguee", "01015")
    assert "Arboys en Bugey (code 01015)" in deleguee.message
    # a déléguée sharing its chef-lieu's code is just the current commune
    assert geo.former_commune("01015") is None
    current = geo.commune("01015")
    assert current is not None and current.nom == "Arboys en Bugey"


def test_unknown_codes(geo: Geography) -> None:
    assert geo.commune("99999") is None
    assert geo.former_commune("99999") is None
    assert geo.siren_kind("123456789") is None
    assert geo.organisation("123456789") is None
    assert geo.departement("00") is None
    assert geo.region("99") is None


def test_departements_and_regions(geo: Geography) -> None:
    ain = geo.departement("1")
    assert ain is not None and (ain.code, ain.nom, ain.region_nom) == ("01", "Ain", "Auvergne-Rhône-Alpes")
    corse = geo.region("94")
    assert corse is not None and corse.nom == "Corse"


def test_population_bands() -> None:
    assert [tranche_population(p) for p in (None, 0, 1_999, 2_000, 9_999, 10_000, 199_999, 200_000)] == [
        None,
        "moins_2000",
        "moins_2000",
        "2000_9999",
        "2000_9999",
        "10000_49999",
        "50000_199999",
        "200000_plus",
    ]
    assert all(key.isascii() for key in TRANCHES_POPULATION)


def test_committed_tables_match_meta(geo: Geography) -> None:
    meta = json.loads((DEFAULT_PATH / "meta.json").read_text("utf-8"))
    assert geo.vintage == meta["cog"] == 2026
    assert meta["source"]["package"] == "@etalab/decoupage-administratif"
    assert meta["source"]["version"].startswith("6.")
    assert meta["counts"]["communes"] == sum(1 for _ in geo.communes()) > 34_000
    for name, digest in meta["sha256"].items():
        assert hashlib.sha256((DEFAULT_PATH / name).read_bytes()).hexdigest() == digest, name
    total = sum(p.stat().st_size for p in DEFAULT_PATH.iterdir() if p.suffix in {".gz", ".csv", ".json"})
    assert total < 1_000_000
    assert get_geography() is geo  # loaded once


# --- refresh script on a tiny fake package (no network) ---

FAKE_COMMUNES = [
    {"code": "01015", "nom": "Arboys en Bugey", "type": "commune-actuelle", "departement": "01",
     "region": "84", "siren": "200053668", "population": 710, "anciensCodes": ["01340", "01999"]},
    {"code": "01015", "nom": "Arbignieu", "type": "commune-deleguee", "chefLieu": "01015",
     "departement": "01", "region": "84"},
    {"code": "01340", "nom": "Saint-Bois", "type": "commune-deleguee", "chefLieu": "01015",
     "departement": "01", "region": "84"},
    {"code": "75056", "nom": "Paris", "type": "commune-actuelle", "departement": "75", "region": "11",
     "siren": "217500016", "population": 2103778},
    {"code": "75101", "nom": "Paris 1er Arrondissement", "type": "arrondissement-municipal",
     "commune": "75056", "departement": "75", "region": "11", "population": 15114},
    {"code": "98611", "nom": "Alo", "type": "commune-actuelle", "departement": "986", "region": "986"},
]  # fmt: skip
FAKE_EPCI = [
    {"code": "200054781", "nom": "Métropole du Grand Paris", "type": "METRO", "populationMunicipale": 7000000,
     "membres": [{"code": "75056", "siren": "217500016"}]},
    {"code": "200040350", "nom": "CC Bugey Sud", "type": "CC", "populationMunicipale": 33000,
     "membres": [{"code": "01015", "siren": "200053668"}]},
]  # fmt: skip
FAKE_DEPARTEMENTS = [
    {"code": "75", "nom": "Paris", "region": "11"},
    {"code": "01", "nom": "Ain", "region": "84"},
    {"code": "986", "nom": "Wallis et Futuna", "region": "986"},
]
FAKE_REGIONS = [
    {"code": "84", "nom": "Auvergne-Rhône-Alpes"},
    {"code": "11", "nom": "Île-de-France"},
    {"code": "986", "nom": "Wallis et Futuna"},
]


def _csv(path: Path) -> list[list[str]]:
    raw = path.read_bytes()
    text = (gzip.decompress(raw) if path.suffix == ".gz" else raw).decode("utf-8")
    return list(csv.reader(io.StringIO(text)))


def _run_refresh(data_dir: Path, out: Path) -> None:
    cmd = [sys.executable, str(REFRESH), "--from", str(data_dir), "--out", str(out)]
    subprocess.run(cmd, check=True, capture_output=True, text=True)


def test_refresh_on_fake_package(tmp_path: Path) -> None:
    data_dir = tmp_path / "package" / "data"
    data_dir.mkdir(parents=True)
    (tmp_path / "package" / "package.json").write_text('{"version": "6.9.9"}')
    for name, content in [("communes", FAKE_COMMUNES), ("epci", FAKE_EPCI),
                          ("departements", FAKE_DEPARTEMENTS), ("regions", FAKE_REGIONS)]:  # fmt: skip
        (data_dir / f"{name}.json").write_text(json.dumps(content, ensure_ascii=False), "utf-8")
    out = tmp_path / "out"
    _run_refresh(data_dir, out)

    assert _csv(out / "communes.csv.gz") == [
        ["code", "nom", "siren", "departement", "region", "epci", "population", "commune_parent"],
        ["01015", "Arboys en Bugey", "200053668", "01", "84", "200040350", "710", ""],
        ["75056", "Paris", "217500016", "75", "11", "200054781", "2103778", ""],
        ["75101", "Paris 1er Arrondissement", "", "75", "11", "200054781", "15114", "75056"],
        ["98611", "Alo", "", "986", "986", "", "", ""],
    ]
    assert _csv(out / "anciens-codes.csv.gz") == [
        ["ancien_code", "nom_ancien", "code_actuel", "type"],
        ["01340", "Saint-Bois", "01015", "commune_deleguee"],
        ["01999", "", "01015", "ancien_code"],
    ]
    assert _csv(out / "epci.csv.gz")[1] == ["200040350", "CC Bugey Sud", "CC", "33000"]
    assert _csv(out / "departements.csv")[1] == ["01", "Ain", "84"]
    assert _csv(out / "regions.csv")[1:] == [["11", "Île-de-France"], ["84", "Auvergne-Rhône-Alpes"],
                                             ["986", "Wallis et Futuna"]]  # fmt: skip
    meta = json.loads((out / "meta.json").read_text("utf-8"))
    assert meta["source"]["version"] == "6.9.9" and meta["cog"] == 2026
    assert meta["counts"] == {"communes": 3, "arrondissements_municipaux": 1, "anciens_codes": 2, "epci": 2,
                              "departements": 3, "regions": 3}  # fmt: skip
    digest = hashlib.sha256((out / "communes.csv.gz").read_bytes()).hexdigest()
    assert meta["sha256"]["communes.csv.gz"] == digest

    # deterministic: gzip mtime 0, and a rerun gives the same bytes
    assert (out / "communes.csv.gz").read_bytes()[4:8] == b"\0\0\0\0"
    first = {p.name: p.read_bytes() for p in out.iterdir() if p.name != "meta.json"}
    _run_refresh(data_dir, out)
    assert first == {p.name: p.read_bytes() for p in out.iterdir() if p.name != "meta.json"}

    # and the lookup API reads what it wrote
    geo = get_geography(out)
    saint_bois = geo.former_commune("01340")
    assert saint_bois is not None and saint_bois.nom_actuel == "Arboys en Bugey"
    alo = geo.commune("98611")
    assert alo is not None and alo.population is None and alo.tranche_population is None


def test_names_are_found_with_or_without_ligatures() -> None:
    """« œ » typed as « oe » (most keyboards) or the other way round still finds the commune or the bearer."""
    from registry.actions.accounts import find_organisations, resolve_organisation
    from registry.actions.drafts import find_communes, resolve_commune

    for typed in ("coeuvres", "Cœuvres", "CŒUVRES-ET-VALSERY"):
        assert [c for c, _ in find_communes(typed)] == ["02201"], typed
    assert resolve_commune("Oeting") == ("57521", None) and resolve_commune("Œting") == ("57521", None)
    for typed in ("coeur de lozère", "Cœur de Lozère", "CC CŒUR DE LOZERE"):
        assert [o.siren for o in find_organisations(typed)] == ["244800405"], typed
    assert resolve_organisation("CC Cœur de Lozère").siren == "244800405"
