"""What every harvester shares: the files of one remote dataset -> validation -> the valid experiences
published through `registry.actions`, each invalid one reported (in French, with the validator's codes),
the job's counts and items kept up to date.

A file with valid and invalid experiences: the valid ones are published, each invalid one is reported. The
validator judges a submission whole (all or nothing), so the rows of the experiences an error names are
left out and the rest is checked again (at most MAX_PASSES times).
"""

from __future__ import annotations

import codecs
import dataclasses
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from registry.actions import Forbidden, experiences
from registry.actions import harvest as actions
from registry.standard import KEY_FIELD, MAIN_RESOURCE, Standard, get_standard
from registry.store import Registry
from registry.validation import Limits, Submission, csvtext, validate_tables
from registry.validation.raw import RawTable, SourceError
from registry.validation.report import Issue, Report
from registry.validation.sources import read_path, table_from_bytes

MAX_PASSES = 4
MAX_MESSAGES = 200  # per item: a huge bad file still gives a readable report (the counts stay exact)
FULL_REPORT = 10**7  # per code: every error kept, to know every invalid experience


@dataclass
class LocalFile:
    """A downloaded file of a dataset: where it is, what it was called, where it came from."""

    path: Path
    name: str
    url: str
    sha256: str
    declared: bool = True  # the portal said it holds the standard (schema); else judged by its header
    datapackage: bool = False


@dataclass
class Context:
    registry: Registry
    handle: actions.JobHandle
    limits: Limits
    std: Standard = field(default_factory=get_standard)
    progress: Callable[[str], None] | None = None

    @property
    def caller(self) -> Any:
        return actions.harvest_caller(self.handle.source)


def message(text: str, code: str = "harvest", **extra: Any) -> dict[str, Any]:
    return {"code": code, "severity": "error", "message": text, **extra}


def issue_message(issue: Issue, experience: str | None = None) -> dict[str, Any]:
    out = issue.to_dict("fr")
    if experience:
        out["experience"] = experience
    return out


def combined_hash(files: list[LocalFile]) -> str:
    digest = hashlib.sha256()
    for f in sorted(files, key=lambda f: f.url):
        digest.update(f"{f.url}\n{f.sha256}\n".encode())
    return digest.hexdigest()


def _read(ctx: Context, files: list[LocalFile], report: Report) -> tuple[list[RawTable], list[dict[str, Any]]]:
    """Raw tables of the files; a file that is not the standard's (undeclared, no column recognised) is left
    aside with a note, a file that cannot be read at all is an error in the report."""
    raws: list[RawTable] = []
    notes: list[dict[str, Any]] = []
    for f in files:
        try:
            if f.datapackage:
                raws += read_path(ctx.std, f.path, report, ctx.limits)
            else:
                raws += table_from_bytes(ctx.std, f.path.read_bytes(), f.name, report, ctx.limits)
        except SourceError as exc:
            if not f.declared and exc.issue.code in ("unknown-resource", "unsupported-format"):
                notes.append({"code": "ignored", "severity": "info", "source": f.name, "url": f.url,
                              "message": f"Fichier ignoré : {f.name} ne contient aucune table du standard."})
                continue
            report.add(dataclasses.replace(exc.issue, source=exc.issue.source or f.name))
    return raws, notes


def _materialise(raw: RawTable) -> list[list[str]]:
    if raw.data is not None and raw.spans:
        rows: list[list[str]] = []
        for start, end in raw.spans:
            chunk = raw.data[start:end]
            try:
                text = chunk.decode(raw.encoding or "utf-8")
            except UnicodeDecodeError:
                text = codecs.decode(chunk, "cp1252", "replace")
            rows += list(csvtext.read_rows(text, raw.delimiter))
        return rows
    return list(raw.rows)


@dataclass
class Table:
    raw: RawTable
    rows: list[list[str]]

    def ids(self) -> list[str]:
        col = self._col(KEY_FIELD)
        return [r[col].strip() if col is not None and col < len(r) else "" for r in self.rows]

    def _col(self, name: str) -> int | None:
        names = [h.strip() for h in self.raw.header]
        return names.index(name) if name in names else None

    def value(self, row: list[str], name: str) -> str | None:
        col = self._col(name)
        return row[col].strip() if col is not None and col < len(row) else None

    def fresh(self, excluded: set[str]) -> RawTable:
        ids = self.ids()
        kept = [r for r, i in zip(self.rows, ids, strict=True) if i not in excluded]
        return RawTable(self.raw.resource, self.raw.source, self.raw.header, iter(kept), first_row=self.raw.first_row,
                        decimal_comma=self.raw.decimal_comma, delimiter=self.raw.delimiter)


@dataclass
class Outcome:
    """What one dataset gave: the ids it names (valid or not), and whether it could be judged at all."""

    seen: set[str]
    ok: bool  # judged (published and/or reported); False: failed, its records are kept as they are
    status: str
    item: actions.Item | None = None  # the job's item for this dataset, written with the dataset's state
    claims: list[str] = field(default_factory=list)  # ids this source published now


def process(ctx: Context, dataset_id: str, dataset_name: str | None, files: list[LocalFile],
            url: str | None, extra_notes: list[dict[str, Any]] | None = None) -> Outcome:
    """Validates the files of one dataset together and publishes what is valid; adds the job's item."""
    reg, handle = ctx.registry, ctx.handle
    known = actions.known_ids(reg)
    report = Report(max_per_code=FULL_REPORT)
    raws, notes = _read(ctx, files, report)
    notes = (extra_notes or []) + notes
    if not raws and report.valid:
        none = {"code": "ignored", "severity": "info",
                "message": "Aucun fichier de ce jeu de données ne suit le standard."}
        return Outcome(set(), True, "ignored", actions.Item("ignored", url, messages=notes or [none]))
    if not report.valid:  # a file of the dataset cannot be read: nothing of it can be judged row by row
        messages = [issue_message(i) for i in report.errors()[:MAX_MESSAGES]]
        handle.counts["invalid"] += 1
        return Outcome(set(), True, "invalid", actions.Item("invalid", url, counts={"invalid": 1},
                                                            messages=notes + messages))
    # materialised once: rows of all the tables, to leave experiences out and check again
    tables = [Table(r, _materialise(r)) for r in raws]
    seen = {i for t in tables for i in t.ids() if i}
    excluded: dict[str, list[dict[str, Any]]] = {}
    conflicts: dict[str, str] = {}
    sub: Submission | None = None
    for _ in range(MAX_PASSES):
        rep = Report(max_per_code=FULL_REPORT)
        sub = validate_tables([t.fresh(set(excluded)) for t in tables], rep, ctx.std, known, ctx.limits)
        if sub.valid:
            new = _not_allowed(ctx, tables, set(excluded), conflicts)
            if not new:
                break
            excluded.update(new)
            continue
        found = _invalid_experiences(tables, rep, set(excluded))
        if found is None:  # an error not tied to one experience's rows: the whole dataset is invalid
            messages = [issue_message(i) for i in rep.errors()[:MAX_MESSAGES]]
            handle.counts["invalid"] += len(seen - set(excluded)) or 1
            return Outcome(seen, True, "invalid", actions.Item("invalid", url, sorted(seen), {"invalid": len(seen)},
                                                               notes + messages))
        excluded.update(found)
    else:
        sub = None
    messages = list(notes)
    for msgs in excluded.values():
        messages += msgs
    counts = dict.fromkeys(("new", "updated", "unchanged", "invalid", "conflict"), 0)
    counts["invalid"] = sum(1 for i in excluded if i not in conflicts)
    counts["conflict"] = len(conflicts)
    published: list[str] = []
    if sub is not None and sub.valid and sub.experience_ids():
        try:
            result = experiences.publish(
                reg, ctx.caller, sub, source_name=f"{handle.source.name} : {dataset_name or dataset_id}"[:1000],
                source_url=(url or "")[:2000] or None,
                comment=f"Moissonnage n° {handle.job_id}, jeu de données {dataset_id}"[:2000], index_now=False)
        except Forbidden as exc:
            handle.counts["failed"] += 1
            return Outcome(seen, False, "failed", actions.Item(
                "failed", url, sorted(seen), messages=[*messages, message(str(exc), "forbidden")][:MAX_MESSAGES]))
        counts["new"] = result.count("created")
        counts["updated"] = result.count("updated") + result.count("restored")
        counts["unchanged"] = result.count("unchanged")
        published = [o.id for o in result.outcomes]
    for key in ("new", "updated", "unchanged", "invalid"):
        handle.counts[key] += counts[key]
    status = ("invalid" if counts["invalid"] else "conflict" if counts["conflict"] else "new" if counts["new"]
              else "updated" if counts["updated"] else "unchanged")
    for owner in sorted(set(conflicts.values())):
        ids = sorted(i for i, o in conflicts.items() if o == owner)
        actions.report_conflict_to_owner(reg, owner, message(
            f"Conflit : la source « {handle.source.name} » (jeu de données {dataset_name or dataset_id}) publie aussi "
            f"{', '.join(ids[:20])} ; la source « {owner} », arrivée la première, les garde.", "conflict",
            source=handle.source.name), ids)
    return Outcome(seen, True, status, actions.Item(status, url, sorted(seen), counts, messages[:MAX_MESSAGES]),
                   published)


def _invalid_experiences(tables: list[Table], report: Report,
                         already: set[str]) -> dict[str, list[dict[str, Any]]] | None:
    """The experiences that the report's errors name, with their messages; None when an error is not tied to
    a row (a missing column, an unreadable file) or when its row cannot be traced."""
    by_source: dict[str, list[Table]] = {}
    for t in tables:
        by_source.setdefault(t.raw.source, []).append(t)
    found: dict[str, list[dict[str, Any]]] = {}
    for issue in report.errors():
        if issue.row is None:
            return None
        candidates = [t for t in by_source.get(issue.source or "", []) if t.raw.resource == issue.resource] \
            or [t for t in tables if t.raw.resource == issue.resource]
        if len(candidates) != 1:
            return None
        table = candidates[0]
        kept = [r for r, i in zip(table.rows, table.ids(), strict=True) if i not in already]
        index = issue.row - table.raw.first_row
        if not 0 <= index < len(kept):
            return None
        exp_id = table.value(kept[index], KEY_FIELD) or f"(ligne {issue.row} de {issue.source})"
        found.setdefault(exp_id, []).append(issue_message(issue, exp_id))
    if not found or set(found) & already:
        return None
    return found


def _not_allowed(ctx: Context, tables: list[Table], excluded: set[str],
                 conflicts: dict[str, str]) -> dict[str, list[dict[str, Any]]]:
    """Experiences this source may not publish: another source brought them first (the first source keeps
    them), or their organisation is not one the source may publish for."""
    handle = ctx.handle
    out: dict[str, list[dict[str, Any]]] = {}
    main = [t for t in tables if t.raw.resource == MAIN_RESOURCE]
    ids = {i for t in tables for i in t.ids() if i and i not in excluded}
    for exp_id, owner in actions.claimed_elsewhere(ctx.registry, handle, ids).items():
        conflicts[exp_id] = owner
        out[exp_id] = [message(f"Conflit : l'expérience {exp_id} est déjà moissonnée depuis la source « {owner} », "
                               "arrivée la première ; cette source-ci ne la modifie pas. Retirez-la de l'un des deux "
                               "portails.", "conflict", experience=exp_id)]
    allowed = set(handle.source.organisations)
    if allowed:
        for t in main:
            for row in t.rows:
                exp_id, siren = t.value(row, KEY_FIELD), t.value(row, "siren_porteur")
                if exp_id and exp_id not in excluded and exp_id not in out and siren not in allowed:
                    out[exp_id] = [message(
                        f"L'expérience {exp_id} a pour porteur le SIREN {siren}, que la source « {handle.source.name} »"
                        f" n'est pas autorisée à publier (organisations autorisées : {', '.join(sorted(allowed))}).",
                        "forbidden-organisation", experience=exp_id)]
    return out


def infer_deletions(ctx: Context, seen: set[str], protected: set[str], gone_datasets: set[str]) -> None:
    """After a complete full run: what this source no longer publishes is withdrawn (never deleted)."""
    reg, handle = ctx.registry, ctx.handle
    for exp_id, dataset_id in actions.claims_to_withdraw(reg, handle, seen, protected):
        where = f"le jeu de données {dataset_id} n'existe plus" if dataset_id in gone_datasets \
            else "elle n'y figure plus"
        reason = (f"Retirée par le moissonnage de la source « {handle.source.name} » ({handle.source.url[:300]}) : "
                  f"{where} (moissonnage complet n° {handle.job_id}).")
        try:
            experiences.withdraw(reg, ctx.caller, exp_id, reason, index_now=False)
        except Forbidden as exc:
            actions.add_item(reg, handle, "failed", dataset_id, None, None, [exp_id], messages=[message(str(exc))])
            handle.counts["failed"] += 1
            continue
        except ValueError as exc:  # already withdrawn by someone else, or unknown: nothing to do
            actions.mark_withdrawn(reg, handle, exp_id)
            actions.add_item(reg, handle, "unchanged", dataset_id, None, None, [exp_id],
                             messages=[{"code": "note", "severity": "info", "message": str(exc)}])
            continue
        actions.mark_withdrawn(reg, handle, exp_id)
        handle.counts["withdrawn"] += 1
        actions.add_item(reg, handle, "withdrawn", dataset_id, None, None, [exp_id], {"withdrawn": 1},
                         [{"code": "withdrawn", "severity": "info", "experience": exp_id, "message": reason}])
