"""Official French geography (INSEE COG via Etalab's decoupage-administratif): fast lookups.

Tables live in data/geo/ and are rebuilt by data/geo/refresh.py. Everything is loaded once per process
(`get_geography()`), then every lookup is a dict access.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Literal, cast

DEFAULT_PATH = Path(__file__).resolve().parents[1] / "data" / "geo"

SirenKind = Literal["commune", "epci"]
FormerKind = Literal["ancien_code", "commune_deleguee", "commune_associee"]

# Population bands: ASCII key -> French label.
TRANCHES_POPULATION: dict[str, str] = {
    "moins_2000": "moins de 2 000",
    "2000_9999": "2 000 à 9 999",
    "10000_49999": "10 000 à 49 999",
    "50000_199999": "50 000 à 199 999",
    "200000_plus": "200 000 et plus",
}
_UPPER_BOUNDS = (
    (2_000, "moins_2000"),
    (10_000, "2000_9999"),
    (50_000, "10000_49999"),
    (200_000, "50000_199999"),
)

_FORMER_LABELS = {
    "ancien_code": "aujourd'hui",  # merger or code change (e.g. 20004 -> 2A004)
    "commune_deleguee": "aujourd'hui commune déléguée de",
    "commune_associee": "aujourd'hui commune associée de",
}


def tranche_population(population: int | None) -> str | None:
    """Band key for a population (None when unknown)."""
    if population is None:
        return None
    for bound, key in _UPPER_BOUNDS:
        if population < bound:
            return key
    return "200000_plus"


@dataclass(frozen=True, slots=True)
class Commune:
    """A current commune, or an arrondissement municipal (then `commune_parent` is set and siren is None)."""

    code: str
    nom: str
    siren: str | None
    departement: str
    departement_nom: str
    region: str
    region_nom: str
    epci_siren: str | None
    epci_nom: str | None
    population: int | None
    commune_parent: str | None = None

    @property
    def tranche_population(self) -> str | None:
        return tranche_population(self.population)

    @property
    def tranche_population_label(self) -> str | None:
        key = self.tranche_population
        return None if key is None else TRANCHES_POPULATION[key]

    @property
    def est_arrondissement(self) -> bool:
        return self.commune_parent is not None


@dataclass(frozen=True, slots=True)
class FormerCode:
    """A code that no longer designates a current commune, and the commune it belongs to now."""

    code: str
    nom: str | None  # unknown for plain `anciensCodes`
    type: FormerKind
    code_actuel: str
    nom_actuel: str

    @property
    def message(self) -> str:
        nom = f" ({self.nom})" if self.nom else " (fusion ou changement de code)"
        now = f"{_FORMER_LABELS[self.type]} {self.nom_actuel} (code {self.code_actuel})"
        return f"ce code désigne une ancienne commune{nom}, {now}"


@dataclass(frozen=True, slots=True)
class Organisation:
    """A commune or an EPCI à fiscalité propre, found by SIREN."""

    siren: str
    nom: str
    kind: SirenKind
    code_insee: str | None  # communes only
    epci_type: str | None  # EPCI only: CC, CA, CU, METRO, MET69
    population: int | None


@dataclass(frozen=True, slots=True)
class Departement:
    code: str
    nom: str
    region: str
    region_nom: str


@dataclass(frozen=True, slots=True)
class Region:
    code: str
    nom: str


def _rows(path: Path) -> Iterator[list[str]]:
    """Rows of a (possibly gzipped) utf-8 CSV, header skipped."""
    raw = path.read_bytes()
    if path.suffix == ".gz":
        raw = gzip.decompress(raw)
    reader = csv.reader(io.StringIO(raw.decode("utf-8")))
    next(reader)
    return reader


def _int(value: str) -> int | None:
    return int(value) if value else None


def _norm(code: str) -> str:
    return code.strip().upper()


class Geography:
    """All lookups on one vintage of the geography tables."""

    def __init__(self, path: Path = DEFAULT_PATH) -> None:
        self.path = path
        self.meta: dict[str, object] = json.loads((path / "meta.json").read_text("utf-8"))
        self.vintage = int(str(self.meta["cog"]))
        self._regions = {code: nom for code, nom in _rows(path / "regions.csv")}
        self._departements = {code: (nom, reg) for code, nom, reg in _rows(path / "departements.csv")}
        # Raw rows, Commune objects are built on demand (keeps loading fast).
        self._communes = {row[0]: row for row in _rows(path / "communes.csv.gz")}
        self._commune_by_siren = {row[2]: row[0] for row in self._communes.values() if row[2]}
        self._epci = {row[0]: row for row in _rows(path / "epci.csv.gz")}
        self._former = {row[0]: row for row in _rows(path / "anciens-codes.csv.gz")}

    def __repr__(self) -> str:
        return f"Geography(vintage={self.vintage}, path={str(self.path)!r})"

    def is_commune(self, code: str) -> bool:
        """Whether `code` is exactly a current commune or arrondissement code (fast, no normalisation)."""
        return code in self._communes

    def commune(self, code: str) -> Commune | None:
        """Current commune or arrondissement municipal by INSEE code (None if not current)."""
        row = self._communes.get(_norm(code))
        return None if row is None else self._make(row)

    def _make(self, row: list[str]) -> Commune:
        code, nom, siren, dep, reg, epci, population, parent = row
        epci_row = self._epci.get(epci)
        return Commune(
            code=code,
            nom=nom,
            siren=siren or None,
            departement=dep,
            departement_nom=self._departements[dep][0],
            region=reg,
            region_nom=self._regions[reg],
            epci_siren=epci or None,
            epci_nom=epci_row[1] if epci_row else None,
            population=_int(population),
            commune_parent=parent or None,
        )

    def communes(self, arrondissements: bool = False) -> Iterator[Commune]:
        """Every current commune (and the arrondissements municipaux if asked), by code."""
        for row in self._communes.values():
            if arrondissements or not row[7]:
                yield self._make(row)

    def former_commune(self, code: str) -> FormerCode | None:
        """What an old code became (None if the code is current or unknown)."""
        row = self._former.get(_norm(code))
        if row is None:
            return None
        old, nom, actuel, kind = row
        return FormerCode(old, nom or None, cast(FormerKind, kind), actuel, self._communes[actuel][1])

    def siren_kind(self, siren: str) -> SirenKind | None:
        siren = siren.replace(" ", "").strip()
        if siren in self._commune_by_siren:
            return "commune"
        return "epci" if siren in self._epci else None

    def organisation(self, siren: str) -> Organisation | None:
        """Name and kind of a commune or EPCI by SIREN."""
        siren = siren.replace(" ", "").strip()
        code = self._commune_by_siren.get(siren)
        if code is not None:
            row = self._communes[code]
            return Organisation(siren, row[1], "commune", code, None, _int(row[6]))
        epci = self._epci.get(siren)
        if epci is not None:
            return Organisation(siren, epci[1], "epci", None, epci[2], _int(epci[3]))
        return None

    def departement(self, code: str) -> Departement | None:
        code = _norm(code)
        code = code.zfill(2) if code.isdigit() else code
        found = self._departements.get(code)
        if found is None:
            return None
        nom, reg = found
        return Departement(code, nom, reg, self._regions[reg])

    def region(self, code: str) -> Region | None:
        code = _norm(code)
        code = code.zfill(2) if code.isdigit() else code
        nom = self._regions.get(code)
        return None if nom is None else Region(code, nom)


@cache
def _load(path: Path) -> Geography:
    return Geography(path)


def get_geography(path: Path | None = None) -> Geography:
    """The geography tables, loaded once per process and path (default: the repository's data/geo)."""
    return _load((path or DEFAULT_PATH).resolve())
