"""Files generated from the schemas: each table's README.md and the inline schemas of datapackage.json.

`build()` writes them, `stale()` lists those that differ from what `build()` would write.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from registry.paths import SCHEMAS_DIR
from registry.standard import FieldSpec, TableSpec, load_table

TYPES_FR = {"string": "chaîne de caractères", "integer": "nombre entier", "number": "nombre", "date": "date"}
GENERATED = "<!-- Fichier généré depuis schema.json par `registry schema build` : ne pas modifier à la main. -->"


def _esc(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _values(spec: FieldSpec) -> list[str]:
    codes = spec.codes or ()
    if not codes:
        return []
    lines = ["", f"Valeurs de « {spec.name} » :", "", "| Code | Libellé | English |", "|---|---|---|"]
    lines += [f"| `{c}` | {_esc(spec.label(c))} | {_esc(spec.label(c, 'en'))} |" for c in codes]
    return lines


def _constraints(spec: FieldSpec) -> str:
    parts = ["obligatoire" if spec.required else "facultatif"]
    if spec.is_list:
        parts.append(f"liste séparée par `{spec.list_separator}`")
    if spec.min_length is not None:
        parts.append(f"{spec.min_length} caractères au moins")
    if spec.max_length is not None:
        parts.append(f"{spec.max_length} caractères au plus")
    if spec.minimum is not None:
        parts.append(f"minimum {spec.minimum:g}")
    if spec.maximum is not None:
        parts.append(f"maximum {spec.maximum:g}")
    if spec.pattern and not spec.codes:
        parts.append(f"motif `{_esc(spec.item_pattern or spec.pattern)}`" + (" (par élément)" if spec.is_list else ""))
    checks = {"luhn": "clé de contrôle SIREN (Luhn)", "siren_exists": "SIREN vérifié dans le référentiel géographique",
              "commune_exists": "code vérifié dans le Code officiel géographique"}
    parts += [checks[c] for c in spec.checks if c in checks]
    return ", ".join(parts)


def readme(table: TableSpec) -> str:
    d = table.descriptor
    lines = [GENERATED, "", f"# {d['title']}", "", f"*{d.get('titleEn', '')}*", "", d.get("description", ""), ""]
    lines += [f"- Nom : `{table.name}`", f"- Version : {d.get('version', '')}",
              f"- Licence : {', '.join(lic.get('title', lic.get('name', '')) for lic in d.get('licenses', []))}",
              f"- Dernière modification : {d.get('lastModified', '')}", ""]
    if table.primary_key:
        lines += [f"Clé primaire : {', '.join(f'`{k}`' for k in table.primary_key)}", ""]
    for fk in table.foreign_keys:
        ref = fk["reference"]
        lines += [f"Clé étrangère : `{fk['fields']}` → `{ref['resource']}.{ref['fields']}` "
                  "(vérifiée quand le data package est validé en entier).", ""]
    lines += ["## Champs", "", "| Nom | Titre | Type | Contraintes | Exemple |", "|---|---|---|---|---|"]
    for f in table.fields:
        lines.append(f"| `{f.name}` | {_esc(f.title)} | {TYPES_FR.get(f.type, f.type)} | {_esc(_constraints(f))} "
                     f"| {_esc(f.example)} |")
    lines += ["", "## Description des champs", ""]
    for f in table.fields:
        lines += [f"### {f.title} — `{f.name}`", "", f"*{f.title_en}*", "", f.description]
        lines += _values(f)
        lines.append("")
    if table.rules:
        lines += ["## Règles entre champs", ""]
        lines += [f"- `{r.code}` : {r.description}" for r in table.rules]
        lines.append("")
    examples = d.get("invalidExamples", {})
    lines += ["## Exemples", "", "- [`exemple-valide.csv`](exemple-valide.csv) : valide."]
    for name, errors in examples.items():
        lines.append(f"- [`{name}`]({name}) : invalide, {len(errors)} erreur(s) attendue(s).")
    return "\n".join(lines).rstrip() + "\n"


def inline_schema(table: TableSpec) -> dict[str, Any]:
    schema = {k: v for k, v in table.descriptor.items() if k != "packageForeignKeys"}
    if table.foreign_keys:
        schema["foreignKeys"] = list(table.foreign_keys)
    return schema


def _outputs(root: Path) -> dict[Path, str]:
    package_path = root / "datapackage.json"
    package = json.loads(package_path.read_text(encoding="utf-8"))
    out: dict[Path, str] = {}
    for res in package["resources"]:
        table = load_table(root / res["name"] / "schema.json")
        out[root / res["name"] / "README.md"] = readme(table)
        res["schema"] = inline_schema(table)
    out[package_path] = json.dumps(package, ensure_ascii=False, indent=2) + "\n"
    return out


def build(root: Path = SCHEMAS_DIR) -> list[Path]:
    written = []
    for path, text in _outputs(root).items():
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            written.append(path)
    return written


def stale(root: Path = SCHEMAS_DIR) -> list[Path]:
    return [p for p, text in _outputs(root).items() if not p.exists() or p.read_text(encoding="utf-8") != text]
