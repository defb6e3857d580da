"""Plain-language messages, in French and English, for each stable error code.

Placeholders: {field} (the column's title), {value}, {expected}, and code-specific ones.
`FRICTIONLESS` maps each code to the frictionless error type it corresponds to (None: a check
frictionless does not make, such as a SIREN checksum or a rule between two fields).
"""

from __future__ import annotations

MESSAGES: dict[str, tuple[str, str]] = {
    # Cells
    "missing-value": (
        "La colonne « {field} » est obligatoire et elle est vide.",
        "Column “{field}” is required and is empty.",
    ),
    "type-error": (
        "« {value} » n'est pas valide pour « {field} » : il faut {expected}.",
        "“{value}” is not valid for “{field}”: expected {expected}.",
    ),
    "pattern-mismatch": (
        "« {value} » n'a pas le format attendu pour « {field} » : {expected}",
        "“{value}” does not have the expected format for “{field}”: {expected}",
    ),
    "enum-mismatch": (
        "« {value} » n'est pas une valeur autorisée pour « {field} ». {expected}",
        "“{value}” is not an allowed value for “{field}”. {expected}",
    ),
    "list-item-invalid": (
        "Dans la liste « {field} », l'élément « {item} » n'est pas valide. {expected}",
        "In the list “{field}”, item “{item}” is not valid. {expected}",
    ),
    "too-long": (
        "« {field} » est trop long : {length} caractères pour {limit} au maximum.",
        "“{field}” is too long: {length} characters, {limit} at most.",
    ),
    "too-short": (
        "« {field} » est trop court : {length} caractères pour {limit} au minimum.",
        "“{field}” is too short: {length} characters, {limit} at least.",
    ),
    "out-of-range": (
        "« {value} » est hors des bornes de « {field} » : {expected}.",
        "“{value}” is out of range for “{field}”: {expected}.",
    ),
    "not-finite": (
        "« {value} » n'est pas un nombre fini pour « {field} » : indiquez un montant ou une valeur chiffrée.",
        "“{value}” is not a finite number for “{field}”: give an amount or a figure.",
    ),
    "siren-checksum": (
        "Le SIREN « {value} » (« {field} ») est invalide : sa clé de contrôle ne correspond pas. "
        "Vérifiez qu'aucun chiffre n'a été inversé ou oublié.",
        "SIREN “{value}” (“{field}”) is invalid: its check digit does not match. "
        "Check that no digit was swapped or left out.",
    ),
    "siren-unknown": (
        "Le SIREN « {value} » ne correspond à aucune {kind} du référentiel géographique officiel "
        "(COG {vintage}). Vérifiez le numéro (sur annuaire-entreprises.data.gouv.fr) ou le type de porteur.",
        "SIREN “{value}” matches no {kind} in the official geography (COG {vintage}). Check the number "
        "(on annuaire-entreprises.data.gouv.fr) or the bearer type.",
    ),
    "siren-kind-mismatch": (
        "Le SIREN « {value} » est celui de {name}, une {actual}, mais le type de porteur indiqué est "
        "« {declared} » : corrigez l'un ou l'autre.",
        "SIREN “{value}” belongs to {name}, a {actual}, but the bearer type given is “{declared}”: "
        "correct one or the other.",
    ),
    "commune-unknown": (
        "Le code commune « {value} » (« {field} ») n'existe pas dans le Code officiel géographique {vintage}. "
        "C'est le code INSEE à 5 caractères qu'il faut, pas le code postal.",
        "Commune code “{value}” (“{field}”) does not exist in the official geography (COG {vintage}). "
        "It must be the 5-character INSEE code, not the postcode.",
    ),
    "commune-merged": (
        "Le code « {value} » (« {field} ») désigne une ancienne commune ({former}), devenue {name} "
        "(code {current}). Utilisez le code {current}.",
        "Code “{value}” (“{field}”) is a former commune ({former}), now {name} (code {current}). "
        "Use code {current}.",
    ),
    "rule-date-order": (
        "« {field} » ({value}) est antérieure à « {other} » ({other_value}) : l'une des deux dates est "
        "sans doute erronée.",
        "“{field}” ({value}) is before “{other}” ({other_value}): one of the two dates is probably wrong.",
    ),
    "rule-required-if": (
        "« {field} » est obligatoire quand {condition}.",
        "“{field}” is required when {condition}.",
    ),
    "duplicate-key": (
        "L'identifiant {key} est déjà utilisé à la ligne {first_row} : chaque ligne doit avoir le sien.",
        "Identifier {key} is already used on row {first_row}: each row needs its own.",
    ),
    "foreign-key": (
        "L'expérience « {value} » citée ici n'est décrite ni dans ce dépôt ni dans le registre : vérifiez "
        "l'identifiant, ou joignez la ligne de cette expérience (table experiences).",
        "Experience “{value}” referred to here is described neither in this submission nor in the registry: "
        "check the identifier, or include that experience's row (table experiences).",
    ),
    # Rows and columns
    "blank-row": ("La ligne est vide.", "The row is empty."),
    "extra-cell": (
        "La ligne a {count} cellule(s) de plus que la ligne des noms de colonnes : une valeur contient "
        "sans doute le séparateur sans être entre guillemets.",
        "The row has {count} more cell(s) than the line of column names: a value probably holds the "
        "separator without being in quotes.",
    ),
    "missing-cell": (
        "La ligne a {count} cellule(s) de moins que la ligne des noms de colonnes : une ligne coupée en deux ?",
        "The row has {count} fewer cell(s) than the line of column names: a row cut in two?",
    ),
    "missing-column": (
        "La colonne obligatoire « {name} » ({field}) est absente.",
        "Required column “{name}” ({field}) is missing.",
    ),
    "unknown-column": (
        "La colonne « {name} » ne fait pas partie du standard.{hint}",
        "Column “{name}” is not part of the standard.{hint}",
    ),
    "duplicate-column": (
        "La colonne « {name} » apparaît plusieurs fois.",
        "Column “{name}” appears more than once.",
    ),
    "blank-column-name": (
        "La colonne n° {position} n'a pas de nom.",
        "Column {position} has no name.",
    ),
    # Files
    "encoding-error": (
        "Le fichier n'est lisible dans aucun encodage connu (UTF-8, Windows-1252) : {detail}. "
        "Enregistrez-le depuis votre tableur au format « CSV UTF-8 ».",
        "The file cannot be read in any known encoding (UTF-8, Windows-1252): {detail}. "
        "Save it from your spreadsheet as “CSV UTF-8”.",
    ),
    "invalid-utf8": (
        "Le fichier est en UTF-8 mais {count} octet(s) n'y sont pas valides, sans doute collés depuis un autre "
        "logiciel : {where}. Corrigez ces caractères (ou réenregistrez le fichier en UTF-8) et renvoyez-le.",
        "The file is UTF-8 but {count} byte(s) in it are not valid, probably pasted from another program: "
        "{where}. Fix these characters (or save the file again as UTF-8) and send it again.",
    ),
    "nul-byte": (
        "Le fichier contient un caractère nul (octet 0) à la ligne {line} (octet n° {offset}) : ce n'est pas "
        "un fichier texte valide (fichier binaire ou abîmé ?). Réenregistrez-le en CSV depuis votre tableur.",
        "The file holds a NUL character (byte 0) on line {line} (byte {offset}): it is not a valid text file "
        "(binary or damaged?). Save it again as CSV from your spreadsheet.",
    ),
    "header-too-large": (
        "La première ligne fait {size} caractères, au-delà de {limit} : ce n'est pas une ligne de noms de "
        "colonnes. La première ligne doit donner les noms des colonnes (id_experience, intitule, …).",
        "The first line is {size} characters long, over {limit}: it is not a line of column names. The first "
        "line must give the column names (id_experience, intitule, …).",
    ),
    "unreadable-file": ("Le fichier n'a pas pu être lu : {detail}", "The file could not be read: {detail}"),
    "file-too-large": (
        "Le fichier fait {size}, au-delà de la limite de {limit}.",
        "The file is {size}, over the {limit} limit.",
    ),
    "cell-too-large": (
        "Une cellule dépasse {limit} caractères : un guillemet ouvert n'est sans doute jamais refermé.",
        "A cell is over {limit} characters: a quote was probably opened and never closed.",
    ),
    "too-many-rows": (
        "Le fichier a plus de {limit} lignes, la limite autorisée : envoyez-le en plusieurs fichiers.",
        "The file has more than {limit} rows, the allowed limit: send it as several files.",
    ),
    "unsupported-format": (
        "Format non pris en charge : {detail}. Formats acceptés : CSV, XLSX, JSON, dossier ou datapackage.json.",
        "Unsupported format: {detail}. Accepted: CSV, XLSX, JSON, a folder or a datapackage.json.",
    ),
    "unknown-resource": (
        "Impossible de savoir quelle table du standard contient « {name} » : {detail}",
        "Cannot tell which table of the standard “{name}” holds: {detail}",
    ),
    "missing-main-table": (
        "Le dépôt ne contient pas la table « experiences », nécessaire pour les lignes de « {name} ».",
        "The submission lacks the “experiences” table, needed for the rows of “{name}”.",
    ),
    "empty-file": ("Le fichier ne contient aucune ligne de données.", "The file holds no data row."),
    # Notes on what was detected or decided (severity info)
    "validation-stopped": (
        "Validation arrêtée après {count} erreurs, la limite demandée. Non vérifié : {unchecked}.",
        "Validation stopped after {count} errors, the limit asked for. Not checked: {unchecked}.",
    ),
    "detected": ("{detail}", "{detail}"),
}

FRICTIONLESS: dict[str, str | None] = {
    "missing-value": "constraint-error",
    "type-error": "type-error",
    "pattern-mismatch": "constraint-error",
    "enum-mismatch": "constraint-error",
    "list-item-invalid": "constraint-error",
    "too-long": "constraint-error",
    "too-short": "constraint-error",
    "out-of-range": "constraint-error",
    "duplicate-key": "primary-key",
    "foreign-key": "foreign-key",
    "blank-row": "blank-row",
    "extra-cell": "extra-cell",
    "missing-cell": "missing-cell",
    "missing-column": "missing-label",
    "unknown-column": "extra-label",
    "duplicate-column": "duplicate-label",
    "blank-column-name": "blank-label",
}


def render(code: str, params: dict[str, str], lang: str = "fr") -> str:
    fr, en = MESSAGES[code]
    template = en if lang == "en" else fr
    return template.format_map(_Default(params))


class _Default(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return "?"
