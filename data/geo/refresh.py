#!/usr/bin/env python3
"""Rebuild the geography tables of data/geo/ from Etalab's npm package @etalab/decoupage-administratif.

Usage: python data/geo/refresh.py [--version 6.0.0] [--from DIR] [--out DIR] [--cog 2026]

Stdlib only. Without --from, `npm pack` fetches the package into a temp dir; --from reads an unpacked
`data/` dir (the one holding communes.json). Output (deterministic: sorted rows, gzip mtime 0):

- communes.csv.gz: code,nom,siren,departement,region,epci,population,commune_parent. One row per current
  commune, plus one per arrondissement municipal (Paris/Lyon/Marseille): those rows have commune_parent set
  to the commune they belong to, no SIREN (they are not legal entities) and the parent's EPCI.
- anciens-codes.csv.gz: ancien_code,nom_ancien,code_actuel,type. Codes that are no longer current: communes
  déléguées/associées (type commune_deleguee/commune_associee, named, current status wins on conflict) and
  the `anciensCodes` of current communes (type ancien_code, name unknown to the source).
- epci.csv.gz: siren,nom,type,population (population municipale as published in epci.json).
- departements.csv (code,nom,region), regions.csv (code,nom), meta.json (source, counts, sha256).
"""

from __future__ import annotations

import argparse
import csv
import datetime
import gzip
import hashlib
import io
import json
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any

PACKAGE = "@etalab/decoupage-administratif"
DEFAULT_VERSION = "6"  # latest 6.x
DEFAULT_COG = 2026  # package 6.x = COG 2026
LICENCE = "Licence Ouverte / Open Licence 2.0 (Etalab)"
SOURCES = ("communes", "epci", "departements", "regions")
FORMER_TYPES = {"commune-deleguee": "commune_deleguee", "commune-associee": "commune_associee"}

Json = Any
Rows = list[list[str]]


def _tar_json(tar: tarfile.TarFile, name: str) -> Json:
    member = tar.extractfile(name)
    if member is None:
        raise SystemExit(f"{name} missing from the package")
    return json.load(member)


def fetch_npm(version: str) -> tuple[dict[str, Json], dict[str, str]]:
    """Download the package with `npm pack` and read its data/*.json straight from the tarball."""
    with tempfile.TemporaryDirectory() as tmp:
        cmd = ["npm", "pack", f"{PACKAGE}@{version}", "--json", "--pack-destination", tmp]
        out = subprocess.run(cmd, cwd=tmp, check=True, capture_output=True, text=True).stdout
        info = json.loads(out)[0]
        with tarfile.open(Path(tmp) / info["filename"]) as tar:
            sources = {name: _tar_json(tar, f"package/data/{name}.json") for name in SOURCES}
    return sources, {"package": PACKAGE, "version": info["version"], "integrity": info["integrity"]}


def read_dir(data_dir: Path, version: str) -> tuple[dict[str, Json], dict[str, str]]:
    """Read an unpacked package data/ dir; the version comes from ../package.json when present."""
    sources = {name: json.loads((data_dir / f"{name}.json").read_text("utf-8")) for name in SOURCES}
    pkg = data_dir.parent / "package.json"
    if pkg.is_file():
        version = json.loads(pkg.read_text("utf-8")).get("version", version)
    return sources, {"package": PACKAGE, "version": version}


def _num(value: int | None) -> str:
    return "" if value is None else str(value)


def build_tables(src: dict[str, Json]) -> tuple[dict[str, tuple[list[str], Rows]], list[str]]:
    """Turn the package json into sorted rows per output file; also return notes on data oddities."""
    notes: list[str] = []
    current = {c["code"]: c for c in src["communes"] if c["type"] == "commune-actuelle"}
    if not current:
        raise SystemExit("no commune-actuelle in communes.json: unexpected package layout")
    epci_of = {m["code"]: e["code"] for e in src["epci"] for m in e["membres"]}
    unknown = sorted(set(epci_of) - set(current))
    if unknown:
        notes.append(f"EPCI members that are not current communes, ignored: {unknown}")

    communes: Rows = []
    for c in current.values():
        row = [c["code"], c["nom"], c.get("siren", ""), c["departement"], c["region"]]
        communes.append([*row, epci_of.get(c["code"], ""), _num(c.get("population")), ""])
    accepted = set(current)
    for a in src["communes"]:
        if a["type"] == "arrondissement-municipal":
            parent = a["commune"]
            row = [a["code"], a["nom"], "", a["departement"], a["region"], epci_of.get(parent, "")]
            communes.append([*row, _num(a.get("population")), parent])
            accepted.add(a["code"])

    former: dict[str, list[str]] = {}
    for c in current.values():
        for old in c.get("anciensCodes", []):
            if old not in accepted:
                former[old] = [old, "", c["code"], "ancien_code"]
    for d in src["communes"]:
        kind = FORMER_TYPES.get(d["type"])
        if kind is None or d["code"] in accepted:  # a déléguée may share its chef-lieu's code
            continue
        prev = former.get(d["code"])
        if prev is not None and prev[2] != d["chefLieu"]:
            where = f"in anciensCodes of {prev[2]} but {kind} of {d['chefLieu']}"
            notes.append(f"{d['code']}: {where}; kept the latter")
        former[d["code"]] = [d["code"], d["nom"], d["chefLieu"], kind]

    epci = [[e["code"], e["nom"], e["type"], _num(e.get("populationMunicipale"))] for e in src["epci"]]
    deps = [[d["code"], d["nom"], d["region"]] for d in src["departements"]]
    regs = [[r["code"], r["nom"]] for r in src["regions"]]
    no_siren = sorted(c["code"] for c in current.values() if not c.get("siren"))
    if no_siren:
        notes.append(f"{len(no_siren)} current communes without SIREN (e.g. {', '.join(no_siren[:3])})")
    tables = {
        "communes.csv.gz": (
            ["code", "nom", "siren", "departement", "region", "epci", "population", "commune_parent"],
            communes,
        ),
        "anciens-codes.csv.gz": (["ancien_code", "nom_ancien", "code_actuel", "type"], list(former.values())),
        "epci.csv.gz": (["siren", "nom", "type", "population"], epci),
        "departements.csv": (["code", "nom", "region"], deps),
        "regions.csv": (["code", "nom"], regs),
    }
    for _, rows in tables.values():
        rows.sort()
    return tables, notes


def encode(name: str, header: list[str], rows: Rows) -> bytes:
    """CSV bytes (utf-8, \\n); gzipped with no file name and mtime 0, so reruns give identical bytes."""
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    raw = text.getvalue().encode("utf-8")
    if not name.endswith(".gz"):
        return raw
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, compresslevel=9, mtime=0) as gz:
        gz.write(raw)
    return buf.getvalue()


def write_all(out: Path, src: dict[str, Json], source: dict[str, str], cog: int) -> dict[str, Json]:
    tables, notes = build_tables(src)
    out.mkdir(parents=True, exist_ok=True)
    digests: dict[str, str] = {}
    for name, (header, rows) in tables.items():
        data = encode(name, header, rows)
        (out / name).write_bytes(data)
        digests[name] = hashlib.sha256(data).hexdigest()
    communes = tables["communes.csv.gz"][1]
    arrondissements = sum(1 for row in communes if row[7])
    counts = {"communes": len(communes) - arrondissements, "arrondissements_municipaux": arrondissements}
    for name, (_, rows) in tables.items():
        if name != "communes.csv.gz":
            counts[name.split(".")[0].replace("-", "_")] = len(rows)
    meta = {
        "source": {**source, "url": f"https://www.npmjs.com/package/{PACKAGE}"},
        "cog": cog,
        "licence": LICENCE,
        "refreshed": datetime.date.today().isoformat(),
        "counts": counts,
        "sha256": digests,
        "notes": notes,
    }
    (out / "meta.json").write_text(json.dumps(meta, ensure_ascii=False, indent=2) + "\n", "utf-8")
    return meta


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--version", default=DEFAULT_VERSION, help="npm version or range (default: 6)")
    parser.add_argument("--from", dest="from_dir", type=Path, help="unpacked package data/ dir (no network)")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent, help="output dir")
    parser.add_argument("--cog", type=int, default=DEFAULT_COG, help="INSEE COG vintage of the package")
    args = parser.parse_args(argv)
    if args.from_dir is not None:
        src, source = read_dir(args.from_dir, args.version)
    else:
        src, source = fetch_npm(args.version)
    meta = write_all(args.out, src, source, args.cog)
    print(f"{source['package']} {source['version']} -> {args.out}: {meta['counts']}")
    for note in meta["notes"]:
        print(f"note: {note}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
