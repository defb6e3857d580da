"""Deterministic generator of large synthetic Data Packages, for benchmarks and load tests.

    python data/synthetic.py OUT_DIR --experiences 100000 [--seed 42] [--invalid-rate 0.0]

Writes OUT_DIR/datapackage.json, one CSV per table of the standard and expected-errors.json.
Everything is read from the schema files (fields, enum codes, patterns, cross-field rules) and from the
official geography (`registry.geo`: real commune codes, commune and EPCI SIRENs). The same arguments always
give byte-identical files. With `--invalid-rate r`, about r of the experience rows get exactly one error
each, of a recorded kind; those rows get no child rows, so that no other error follows from them.

The data is synthetic: every title starts with "[Synthétique]". For curated demo data see data/demo/.
Not a package: load it by path (importlib.util.spec_from_file_location) to call `generate()`.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import random
import re
import sys
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SCHEMAS = ROOT / "schemas"
MAIN, KEY = "experiences", "id_experience"
TODAY = dt.date(2026, 11, 25)  # fixed, so that output does not depend on the day it is generated
FIRST_DAY, LAST_DAY = dt.date(2018, 1, 1), dt.date(2027, 12, 31)
BAD_ENUM = "valeur_inconnue"

# Bearer types the geography can confirm (same codes as registry/validation/geochecks.py); the other
# codes of the enum get a SIREN with a valid checksum that is not a commune's or an EPCI's.
COMMUNE, EPCI = "commune", "epci"
# Errors that --invalid-rate puts in experience rows: kind -> (registry issue code, frictionless error type).
# frictionless does not check SIREN checksums nor rules between fields (None).
ERROR_KINDS: dict[str, tuple[str, str | None]] = {
    "bad_enum": ("enum-mismatch", "constraint-error"),
    "bad_date": ("type-error", "type-error"),
    "bad_siren_checksum": ("siren-checksum", None),
    "bad_commune_pattern": ("pattern-mismatch", "constraint-error"),
    "missing_required": ("missing-value", "constraint-error"),
    "date_order": ("rule-date-order", None),
}

Row = dict[str, str]
Gen = Callable[[dict[str, Any]], str]
Emit = Callable[[str, Row, bool], None]  # table, row, deliberately broken

# ---------------------------------------------------------------- the standard


def load_package(schemas: Path = SCHEMAS) -> list[dict[str, Any]]:
    """Resources of the standard (name, title, inline schema with foreign keys), main table first."""
    pkg_path = schemas / "datapackage.json"
    if pkg_path.exists():
        pkg = json.loads(pkg_path.read_text("utf-8"))
        resources = [{"name": r["name"], "title": r.get("title", r["name"]), "schema": r["schema"]}
                     for r in pkg["resources"]]
    else:  # standard not assembled yet: the per-table schemas, foreign keys added as the build would
        resources = []
        for path in sorted(schemas.glob("*/schema.json")):
            schema = json.loads(path.read_text("utf-8"))
            if schema.get("packageForeignKeys"):
                schema["foreignKeys"] = schema.pop("packageForeignKeys")
            resources.append({"name": path.parent.name, "title": schema.get("title", path.parent.name),
                              "schema": schema})
    resources.sort(key=lambda r: r["name"] != MAIN)
    return resources


class Table:
    """Read-only view of one Table Schema: fields, codes, patterns, rules."""

    def __init__(self, name: str, schema: dict[str, Any]) -> None:
        self.name = name
        self.schema = schema
        self.fields: dict[str, dict[str, Any]] = {f["name"]: f for f in schema["fields"]}
        self.names = [f["name"] for f in schema["fields"]]
        self.rules: list[dict[str, Any]] = schema.get("crossFieldRules", [])

    def constraint(self, name: str, key: str) -> Any:
        return self.fields[name].get("constraints", {}).get(key)

    def required(self, name: str) -> bool:
        return bool(self.constraint(name, "required"))

    def codes(self, name: str) -> list[str]:
        """Codes of an enum field, or of the items of a list field."""
        f = self.fields[name]
        return list(self.constraint(name, "enum") or f.get("listItem", {}).get("enum") or [])

    def labels(self, name: str) -> dict[str, str]:
        return self.fields[name].get("enumLabels", {})

    def is_list(self, name: str) -> bool:
        return "listSeparator" in self.fields[name]

    def pattern(self, name: str) -> re.Pattern[str] | None:
        p = self.constraint(name, "pattern")
        return re.compile(p if p.startswith("^") else f"^(?:{p})$") if p else None

    def with_check(self, check: str) -> list[str]:
        return [n for n in self.names if check in self.fields[n].get("registryChecks", [])]


def _geography_loader() -> Callable[..., Any]:
    """registry.geo.get_geography, with the repository root put on the path when needed."""
    try:
        from registry.geo import get_geography
    except ImportError:
        sys.path.insert(0, str(ROOT))
        from registry.geo import get_geography
    return get_geography


def luhn_digit(prefix: str) -> str:
    """The check digit that makes prefix + digit pass the Luhn checksum (SIREN key)."""
    total = 0
    for i, ch in enumerate(reversed(prefix)):
        d = int(ch)
        if i % 2 == 0:  # doubled positions, counted from the digit to be added
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return str((10 - total % 10) % 10)


def slug(text: str) -> str:
    table = str.maketrans("àâäçéèêëîïôöùûüÿœ'’ ", "aaaceeeeiioouuuyo---")
    return re.sub(r"[^a-z0-9-]+", "", text.lower().translate(table)).strip("-")[:40] or "collectivite"


# ---------------------------------------------------------------- text pools

SENTENCES = (
    "Le dispositif a été installé sur {n} sites pilotes choisis avec les services techniques.",
    "Les mesures sont transmises toutes les {n} minutes à la plateforme de données de la collectivité.",
    "Un comité de suivi réunit les élus, les services et {n} habitants volontaires chaque trimestre.",
    "La maintenance a coûté plus cher que prévu, en particulier le remplacement des piles.",
    "Les agents de terrain ont adopté l'outil après une formation de {n} heures.",
    "La couverture radio s'est révélée insuffisante dans certains quartiers.",
    "Les données sont publiées en open data sous Licence Ouverte.",
    "Le marché prévoit la réversibilité des données et l'accès aux données brutes.",
    "L'évaluation compare la situation de départ avec {n} mois de fonctionnement.",
    "Les habitants ont été informés par courrier et lors de {n} réunions publiques.",
    "Le fournisseur a dû recalibrer une partie des capteurs au bout de {n} mois.",
    "Le projet s'inscrit dans le plan de sobriété énergétique de la collectivité.",
    "Les équipements retirés sont confiés à une filière de réemploi.",
    "Le partage des coûts entre les communes a été fixé par convention.",
)


def text_pool(rng: random.Random, size: int, low: int, high: int, prefix: str = "") -> list[str]:
    """Free texts of length in [low, high], built from the sentences above."""
    out: list[str] = []
    while len(out) < size:
        parts = [prefix] if prefix else []
        for _ in range(rng.randint(1, 3)):
            parts.append(rng.choice(SENTENCES).format(n=rng.randint(2, 40)))
        text = " ".join(parts)
        while len(text) < low:
            text += " " + rng.choice(SENTENCES).format(n=rng.randint(2, 40))
        out.append(text[:high].rstrip())
    return out


# ---------------------------------------------------------------- the generator


class Synthesizer:
    """Builds rows table by table; one random.Random for everything, so one seed gives one output."""

    def __init__(self, seed: int, invalid_rate: float, schemas: Path = SCHEMAS) -> None:
        get_geography = _geography_loader()
        self.rng = random.Random(seed)
        self.seed = seed
        self.invalid_rate = invalid_rate
        self.resources = load_package(schemas)
        self.tables = {r["name"]: Table(r["name"], r["schema"]) for r in self.resources}
        self.main = self.tables[MAIN]
        self.geo = get_geography()
        self._geography()
        self._pools()
        self.gens = {name: self._generators(t) for name, t in self.tables.items()}
        self.ids: dict[tuple[str, int], int] = {}

    # -- reference data
    def _geography(self) -> None:
        communes = sorted((c for c in self.geo.communes() if c.siren), key=lambda c: c.code)
        self.communes = [(c.code, c.nom, c.siren or "", c.epci_siren or "", c.departement_nom, c.region_nom)
                         for c in communes]
        members: dict[str, list[int]] = {}
        epci_names: dict[str, str] = {}
        for i, c in enumerate(communes):
            if c.epci_siren and self.geo.siren_kind(c.epci_siren) == EPCI:
                members.setdefault(c.epci_siren, []).append(i)
                epci_names[c.epci_siren] = c.epci_nom or c.epci_siren
        self.epci_members = members
        self.epcis = sorted((s, epci_names[s]) for s in members)
        kind_codes = self.main.codes("type_porteur")
        missing = {COMMUNE, EPCI} - set(kind_codes)
        if missing:
            raise SystemExit(f"type_porteur has no code {sorted(missing)}: update data/synthetic.py")
        self.kinds = kind_codes
        self.kind_weights = [55 if k == COMMUNE else 20 if k == EPCI else 25 / max(1, len(kind_codes) - 2)
                             for k in kind_codes]
        # other bearers: departements / regions / syndicates named after a département, with a made-up SIREN
        deps = sorted({(c[4], c[5]) for c in self.communes})
        self.other_bearers: dict[str, list[tuple[str, str]]] = {}
        for k, kind in enumerate(kind_codes):
            if kind in (COMMUNE, EPCI):
                continue
            label = self.main.labels("type_porteur").get(kind, kind)
            found: list[tuple[str, str]] = []
            for j, (dep, _region) in enumerate(deps):
                siren = self._free_siren(f"2{k + 2}{j:03d}00")
                found.append((siren, f"{label} ({dep})"))
            self.other_bearers[kind] = found

    def _free_siren(self, prefix8: str) -> str:
        """A SIREN with a valid key that the geography does not know (so no kind mismatch)."""
        base = int(prefix8)
        while True:
            prefix = f"{base:08d}"
            siren = prefix + luhn_digit(prefix)
            if self.geo.siren_kind(siren) is None:
                return siren
            base += 1

    def _pools(self) -> None:
        rng = self.rng
        self.texts: dict[tuple[str, str], list[str]] = {}
        for t in self.tables.values():
            for name, f in t.fields.items():
                c = f.get("constraints", {})
                if f.get("type", "string") == "string" and "enum" not in c and "pattern" not in c:
                    low, high = int(c.get("minLength") or 0), int(c.get("maxLength") or 300)
                    self.texts[(t.name, name)] = text_pool(rng, 64, max(low, 10), min(high, 600))
        self.units = ["%", "EUR", "EUR/an", "kWh/an", "m3/an", "nombre", "minutes", "t CO2/an"]
        self.norms = self._norm_prefixes()

    def _norm_prefixes(self) -> list[str]:
        """Standards named in the pattern of indicateur_normalise, e.g. ^(?:ISO37120|U4SSC):..."""
        t = self.tables.get("indicateurs")
        if t is None or "indicateur_normalise" not in t.fields:
            return []
        pattern = t.constraint("indicateur_normalise", "pattern") or ""
        m = re.match(r"\^\(\?:([A-Za-z0-9|]+)\):", pattern)
        return m.group(1).split("|") if m else []

    # -- field generators: known fields by name, every other field by its type and constraints
    def _generators(self, t: Table) -> list[tuple[str, Gen]]:
        specific = self._specific(t)
        return [(n, specific.get(n) or self._generic(t, n)) for n in t.names]

    def _generic(self, t: Table, name: str) -> Gen:
        rng, f = self.rng, t.fields[name]
        required = t.required(name)
        kind = f.get("type", "string")
        codes = t.codes(name)
        fill = 1.0 if required else 0.7

        def maybe(g: Gen) -> Gen:
            return g if required else (lambda ctx: g(ctx) if rng.random() < fill else "")

        if codes and t.is_list(name):
            sep = f["listSeparator"]
            return maybe(lambda ctx: sep.join(rng.sample(codes, rng.randint(1, min(3, len(codes))))))
        if codes:
            return maybe(lambda ctx: rng.choice(codes))
        if kind == "date":
            return maybe(lambda ctx: self._date(FIRST_DAY, LAST_DAY))
        if kind in ("integer", "number"):
            low = t.constraint(name, "minimum")
            high = t.constraint(name, "maximum")
            lo = int(low) if low is not None else 0
            hi = int(high) if high is not None else lo + 100_000
            return maybe(lambda ctx: str(rng.randint(lo, hi)))
        if kind == "boolean":
            return maybe(lambda ctx: rng.choice(("true", "false")))
        if (t.name, name) in self.texts:
            pool = self.texts[(t.name, name)]
            return (lambda ctx: rng.choice(pool)) if required else (
                lambda ctx: rng.choice(pool) if rng.random() < 0.5 else "")
        if required:  # a pattern this generator does not know how to fill
            raise SystemExit(f"{t.name}.{name}: required field with a pattern unknown to data/synthetic.py")
        return lambda ctx: ""

    def _specific(self, t: Table) -> dict[str, Gen]:
        rng = self.rng
        if t.name == MAIN:
            return {
                KEY: lambda ctx: ctx["id"],
                "intitule": lambda ctx: ctx["intitule"],
                "resume": lambda ctx: ctx["resume"],
                "nom_porteur": lambda ctx: ctx["nom"],
                "siren_porteur": lambda ctx: ctx["siren"],
                "type_porteur": lambda ctx: ctx["kind"],
                "code_insee_commune": lambda ctx: ctx["commune"],
                "communes_concernees": lambda ctx: ctx["communes"],
                "millesime_cog": lambda ctx: str(self.geo.vintage) if rng.random() < 0.8 else "",
                "domaine": lambda ctx: ctx["domaine"],
                "date_debut": lambda ctx: ctx["debut"].isoformat(),
                "date_fin": lambda ctx: ctx["fin"].isoformat() if ctx["fin"] else "",
                "date_maj": lambda ctx: ctx["maj"].isoformat(),
                "cout_prevu": lambda ctx: ctx["cout"],
                "cout_reel": lambda ctx: str(int(int(ctx["cout"]) * rng.uniform(0.7, 1.5)))
                if ctx["cout"] and rng.random() < 0.7 else "",
                "economies_annuelles": lambda ctx: str(rng.randint(-30, 120) * 500) if rng.random() < 0.5 else "",
                "liens": lambda ctx: f"https://www.{ctx['slug']}.example/rex/{ctx['id']}" if rng.random() < 0.5
                else "",
                "contact_courriel": lambda ctx: f"territoire-connecte@{ctx['slug']}.example"
                if rng.random() < 0.8 else "",
            }
        if t.name == "indicateurs":
            return {
                KEY: lambda ctx: ctx["id"],
                "code_indicateur": lambda ctx: ctx["code"],
                "libelle_indicateur": lambda ctx: ctx["libelle"],
                "categorie_indicateur": lambda ctx: ctx["categorie"],
                "type_valeur": lambda ctx: ctx["type_valeur"],
                "valeur": lambda ctx: f"{rng.uniform(0, 5000):.{rng.choice((0, 0, 1, 2))}f}",
                "unite": lambda ctx: ctx["unite"],
                "periode_debut": lambda ctx: ctx["pdeb"],
                "periode_fin": lambda ctx: ctx["pfin"],
                "indicateur_normalise": lambda ctx: f"{rng.choice(self.norms)}:{rng.randint(1, 22)}."
                                                    f"{rng.randint(1, 9)}" if self.norms and rng.random() < 0.2 else "",
            }
        if t.name == "enseignements":
            return {KEY: lambda ctx: ctx["id"], "numero": lambda ctx: str(ctx["numero"])}
        if t.name == "acteurs":
            types = t.codes("type_acteur")
            return {
                KEY: lambda ctx: ctx["id"],
                "nom_acteur": lambda ctx: ctx["nom_acteur"],
                "siren_acteur": lambda ctx: ctx["siren_acteur"],
                "role": lambda ctx: ctx["role"],
                **({"type_acteur": lambda ctx: ctx["type_acteur"] if ctx["type_acteur"] in types else rng.choice(types)}
                   if types else {}),
            }
        if t.name == "documents":
            return {
                KEY: lambda ctx: ctx["id"],
                "titre_document": lambda ctx: f"{ctx['doc_label']} : expérience {ctx['i'] + 1}",
                "type_document": lambda ctx: ctx["doc_type"],
                "url": lambda ctx: f"https://www.{ctx['slug']}.example/documents/{ctx['id']}-{ctx['n']}.pdf",
                "date_document": lambda ctx: ctx["debut"].isoformat() if rng.random() < 0.8 else "",
                "id_deliberation": lambda ctx: f"DEL-{ctx['debut'].year}-{rng.randint(1, 999):03d}"
                if rng.random() < 0.3 else "",
            }
        return {}

    # -- helpers
    def _date(self, first: dt.date, last: dt.date) -> str:
        return dt.date.fromordinal(self.rng.randint(first.toordinal(), last.toordinal())).isoformat()

    def _row(self, table: str, ctx: dict[str, Any]) -> Row:
        row = {name: gen(ctx) for name, gen in self.gens[table]}
        self._apply_rules(self.tables[table], row)
        return row

    def _apply_rules(self, t: Table, row: Row) -> None:
        """Makes a row respect the schema's cross-field rules."""
        for rule in t.rules:
            if rule["type"] == "required_if":
                if any(row.get(f) in values for f, values in rule["when"].items()):
                    for name in rule["fields"]:
                        if not row.get(name):
                            row[name] = self._forced(t, name, row)
            elif rule["type"] == "not_before":
                a, b = row.get(rule["field"]), row.get(rule["other"])
                if a and b and a < b:
                    row[rule["field"]], row[rule["other"]] = b, a

    def _forced(self, t: Table, name: str, row: Row) -> str:
        codes = t.codes(name)
        if codes:
            return self.rng.choice(codes)
        if t.fields[name].get("type") == "date":
            return row.get("periode_debut") or row.get("date_debut") or self._date(FIRST_DAY, TODAY)
        return self._generic(t, name)({}) or "1"

    # -- one experience and its children
    def _bearer(self) -> tuple[str, str, str, str, list[str]]:
        """kind, SIREN, name, main commune, communes concerned."""
        rng = self.rng
        kind = rng.choices(self.kinds, self.kind_weights)[0]
        if kind == EPCI:
            siren, nom = rng.choice(self.epcis)
            members = self.epci_members[siren]
            main = self.communes[rng.choice(members)][0]
            more = [self.communes[i][0] for i in rng.sample(members, min(len(members), rng.randint(0, 3)))]
            return kind, siren, nom, main, [main, *[c for c in more if c != main]]
        code, nom, siren = self.communes[rng.randrange(len(self.communes))][:3]
        if kind == COMMUNE:
            return kind, siren, f"Commune d'{nom}" if nom[0] in "AEIOUÉÈÎY" else f"Commune de {nom}", code, [code]
        siren, nom = rng.choice(self.other_bearers[kind])
        return kind, siren, nom, code, [code]

    def _experience_ctx(self, i: int) -> dict[str, Any]:
        rng = self.rng
        kind, siren, nom, main, communes = self._bearer()
        debut = dt.date.fromordinal(rng.randint(FIRST_DAY.toordinal(), LAST_DAY.toordinal()))
        fin = debut + dt.timedelta(days=rng.randint(60, 1100)) if rng.random() < 0.8 else None
        registered = min(debut - dt.timedelta(days=rng.randint(0, 200)), TODAY)
        year = max(registered.year, FIRST_DAY.year)
        while True:  # id = SIREN-year-number, numbers 001..999 within a year
            n = self.ids.get((siren, year), 0) + 1
            if n <= 999:
                break
            year += 1
        self.ids[(siren, year)] = n
        ident = f"{siren}-{year}-{n:03d}"
        domaine = rng.choice(self.main.codes("domaine"))
        label = self.main.labels("domaine").get(domaine, domaine)
        maj = min(TODAY, max(registered, (fin or debut) + dt.timedelta(days=rng.randint(-300, 300))))
        return {
            "i": i, "id": ident, "kind": kind, "siren": siren, "nom": nom, "commune": main,
            "communes": "|".join(communes) if rng.random() < 0.6 else "",
            "domaine": domaine, "debut": debut, "fin": fin, "maj": maj, "slug": slug(nom),
            "cout": str(rng.randint(2, 400) * 2500) if rng.random() < 0.8 else "",
            "intitule": f"[Synthétique] {label} : expérimentation n° {i + 1}"[:200],
            "resume": (f"Expérience synthétique générée automatiquement (graine {self.seed}), pour les tests de "
                       f"charge. {rng.choice(self.texts[(MAIN, 'resume')])}")[:3000],
        }

    def _children(self, ctx: dict[str, Any], emit: Emit) -> None:
        rng = self.rng
        ind = self.tables.get("indicateurs")
        if ind is not None:
            cats, types = ind.codes("categorie_indicateur"), ind.codes("type_valeur")
            for j in range(rng.randint(1, 5)):
                cat = rng.choice(cats)
                start = ctx["debut"] + dt.timedelta(days=rng.randint(0, 300))
                period = rng.random() < 0.6
                c = {**ctx, "code": f"{cat}_{j + 1}", "libelle": f"Indicateur {j + 1} ({cat})", "categorie": cat,
                     "type_valeur": rng.choice(types), "unite": rng.choice(self.units),
                     "pdeb": start.isoformat() if period else "",
                     "pfin": (start + dt.timedelta(days=rng.randint(30, 365))).isoformat() if period else ""}
                emit("indicateurs", self._row("indicateurs", c), False)
        if "enseignements" in self.tables:
            for k in range(rng.choice((0, 1, 2, 2, 3, 4))):
                emit("enseignements", self._row("enseignements", {**ctx, "numero": k + 1}), False)
        act = self.tables.get("acteurs")
        if act is not None:
            roles = act.codes("role")
            for k in range(rng.randint(1, 3)):
                first = k == 0 and "porteur" in roles  # the bearer first, with its own SIREN
                other = f"{rng.randint(10_000_000, 99_999_999):08d}"
                c = {**ctx, "nom_acteur": ctx["nom"] if first else f"Partenaire {k} de l'expérience {ctx['i'] + 1}",
                     "siren_acteur": ctx["siren"] if first else (other + luhn_digit(other)
                                                                 if rng.random() < 0.4 else ""),
                     "role": "porteur" if first else rng.choice(roles),
                     "type_acteur": "collectivite" if first and ctx["kind"] in (COMMUNE, EPCI) else ""}
                emit("acteurs", self._row("acteurs", c), False)
        doc = self.tables.get("documents")
        if doc is not None:
            for k in range(rng.choice((0, 1, 1, 2))):
                typ = rng.choice(doc.codes("type_document"))
                label = doc.labels("type_document").get(typ, typ)
                emit("documents", self._row("documents", {**ctx, "n": k + 1, "doc_type": typ,
                                                                "doc_label": label}), False)

    # -- errors
    def _break(self, row: Row, number: int) -> dict[str, Any]:
        """Puts exactly one error in a valid experience row; returns what was done."""
        rng, t = self.rng, self.main
        kind = rng.choice(list(ERROR_KINDS))
        if kind == "bad_enum":
            name = rng.choice([n for n in t.names if t.constraint(n, "enum") and t.required(n)])
            row[name] = BAD_ENUM
        elif kind == "bad_date":
            name = rng.choice([n for n in t.names if t.fields[n].get("type") == "date" and row[n]])
            d = dt.date.fromisoformat(row[name])
            row[name] = f"{d.day:02d}/{d.month:02d}/{d.year}"
        elif kind == "bad_siren_checksum":
            name = t.with_check("luhn")[0]
            row[name] = row[name][:-1] + str((int(row[name][-1]) + rng.randint(1, 9)) % 10)
        elif kind == "bad_commune_pattern":
            name = next(n for n in t.with_check("commune_exists") if not t.is_list(n))
            row[name] = row[name][:4]
        elif kind == "missing_required":
            name = rng.choice([n for n in t.names if t.required(n) and n != KEY])
            row[name] = ""
        else:  # date_order: the end before the start
            rule = next(r for r in t.rules if r["type"] == "not_before")
            name, other = rule["field"], rule["other"]
            start = dt.date.fromisoformat(row[other])
            row[name] = (start - dt.timedelta(days=rng.randint(1, 365))).isoformat()
        pattern = t.pattern(name)
        assert kind != "bad_commune_pattern" or (pattern is not None and not pattern.match(row[name]))
        code, ftype = ERROR_KINDS[kind]
        return {"resource": MAIN, "row": number, KEY: row[KEY], "field": name, "kind": kind,
                "registry_code": code, "frictionless_type": ftype, "value": row[name]}

    # -- everything
    def build(self, experiences: int, emit: Emit) -> list[dict[str, Any]]:
        """Generates every row, hands each to `emit` as it comes; returns the errors put in."""
        errors: list[dict[str, Any]] = []
        for i in range(experiences):
            ctx = self._experience_ctx(i)
            row = self._row(MAIN, ctx)
            if self.invalid_rate and self.rng.random() < self.invalid_rate:
                errors.append(self._break(row, i + 2))  # row numbers as frictionless counts them (header = 1)
                emit(MAIN, row, True)
            else:
                emit(MAIN, row, False)
                self._children(ctx, emit)
        return errors


def check_row(t: Table, row: Row) -> None:
    """A generated row against the schema's own constraints (fails fast when the schema has drifted)."""
    for n in t.names:
        value = row[n]
        if not value:
            assert not t.required(n), f"{t.name}.{n}: required value missing"
            continue
        enum = t.constraint(n, "enum")
        assert not enum or value in enum, f"{t.name}.{n}: {value!r} not in enum"
        p = t.pattern(n)
        assert p is None or p.match(value), f"{t.name}.{n}: {value!r} does not match the pattern"
        high = t.constraint(n, "maxLength")
        assert high is None or len(value) <= high, f"{t.name}.{n}: too long"


class CsvSink:
    """Writes rows as they come, one CSV per table (no row kept in memory); checks the first rows."""

    def __init__(self, folder: Path, tables: dict[str, Table], stack: ExitStack, sample: int = 300) -> None:
        self.tables = tables
        self.sample = sample
        self.counts = dict.fromkeys(tables, 0)
        self.writers: dict[str, Any] = {}
        for name, t in tables.items():
            path = folder / f"{name}.csv"
            fh = stack.enter_context(open(path, "w", encoding="utf-8", newline=""))  # noqa: SIM115 (closed by stack)
            self.writers[name] = csv.writer(fh, lineterminator="\n")
            self.writers[name].writerow(t.names)

    def __call__(self, table: str, row: Row, broken: bool = False) -> None:
        t = self.tables[table]
        if self.counts[table] < self.sample and not broken:
            check_row(t, row)
        self.counts[table] += 1
        self.writers[table].writerow([row[n] for n in t.names])


# ---------------------------------------------------------------- files


def write_metadata(out: Path, synth: Synthesizer, errors: list[dict[str, Any]], experiences: int) -> None:
    """datapackage.json (inline schemas of the standard) and expected-errors.json."""
    descriptor = {
        "profile": "tabular-data-package",
        "name": f"rex-synthetique-{experiences}",
        "title": "Données synthétiques (générées automatiquement)",
        "description": (f"DONNÉES SYNTHÉTIQUES, SANS AUCUNE VALEUR RÉELLE : {experiences} expériences générées par "
                        f"data/synthetic.py (graine {synth.seed}, taux d'erreurs {synth.invalid_rate}) pour les "
                        "tests de charge et les bancs d'essai. Les codes communes et les SIREN des communes et "
                        "EPCI sont réels, tout le reste est inventé."),
        "licenses": [{"name": "etalab-2.0", "title": "Licence Ouverte / Open Licence version 2.0",
                      "path": "https://www.etalab.gouv.fr/licence-ouverte-open-licence"}],
        "resources": [{"name": r["name"], "title": r["title"], "path": f"{r['name']}.csv",
                       "profile": "tabular-data-resource", "format": "csv", "mediatype": "text/csv",
                       "encoding": "utf-8", "schema": r["schema"]} for r in synth.resources],
    }
    (out / "datapackage.json").write_text(json.dumps(descriptor, ensure_ascii=False, indent=2) + "\n", "utf-8")
    expected = {
        "seed": synth.seed, "experiences": experiences, "invalid_rate": synth.invalid_rate,
        "invalid_rows": len(errors),
        "note": ("One error per listed experience row (row numbers as frictionless counts them, header = 1). "
                 "Those rows have no child rows. frictionless_type is null for the errors frictionless does "
                 "not check (SIREN checksum, rules between fields)."),
        "errors": errors,
    }
    (out / "expected-errors.json").write_text(json.dumps(expected, ensure_ascii=False, indent=1) + "\n", "utf-8")


def generate(out: Path, experiences: int, seed: int = 42, invalid_rate: float = 0.0) -> dict[str, int]:
    """Writes a synthetic Data Package to `out`; returns the number of rows per table and of invalid rows."""
    if experiences < 0 or not 0.0 <= invalid_rate <= 1.0:
        raise ValueError("experiences must be >= 0 and invalid_rate in [0, 1]")
    synth = Synthesizer(seed, invalid_rate)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        sink = CsvSink(out, synth.tables, stack)
        errors = synth.build(experiences, sink)
    write_metadata(out, synth, errors, experiences)
    return {**sink.counts, "invalid_rows": len(errors)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Génère un jeu de données synthétique (Data Package) valide.")
    parser.add_argument("out", type=Path, help="dossier de sortie")
    parser.add_argument("--experiences", type=int, default=1000, help="nombre d'expériences (défaut 1000)")
    parser.add_argument("--seed", type=int, default=42, help="graine (défaut 42) : même graine, mêmes fichiers")
    parser.add_argument("--invalid-rate", type=float, default=0.0,
                        help="part des expériences rendues invalides (défaut 0), listées dans expected-errors.json")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    counts = generate(args.out, args.experiences, args.seed, args.invalid_rate)
    took = time.perf_counter() - start
    print(", ".join(f"{k}: {v}" for k, v in counts.items()) + f" — {args.out} ({took:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
