"""What the registry derives for each experience, as trial registries do for studies.

- results due date: `date_fin` + N months (setting `results_due_months`, 12 by default), and overdue
  when that date has passed with no result published (`resultat` still `non_evalue` and no measured value);
- pre-registration: whether the experience was registered before its `date_debut`;
- target switching: a declared target indicator (`cible`) changed or removed after `date_debut`.
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field

from registry.records import Record
from registry.standard import MAIN_RESOURCE

INDICATORS = "indicateurs"
TARGET, MEASURED = "cible", "mesure"
NOT_EVALUATED = "non_evalue"
TARGET_FIELDS = ("valeur", "unite", "sens_souhaite", "periode_debut", "periode_fin")


@dataclass(frozen=True)
class RevisionState:
    number: int
    created_at: dt.datetime
    record: Record


@dataclass(frozen=True)
class TargetChange:
    code: str
    revision: int
    date: dt.date
    kind: str  # changed | removed
    before: dict[str, str]
    after: dict[str, str] | None


@dataclass(frozen=True)
class Derived:
    results_due: dt.date | None
    results_published: bool
    results_overdue: bool
    preregistered: bool | None
    target_changes: list[TargetChange] = field(default_factory=list)

    @property
    def target_switched(self) -> bool:
        return bool(self.target_changes)


def add_months(day: dt.date, months: int) -> dt.date:
    month0 = day.month - 1 + months
    year, month = day.year + month0 // 12, month0 % 12 + 1
    return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def _date(text: str) -> dt.date | None:
    return dt.date.fromisoformat(text) if text else None


def results_published(record: Record) -> bool:
    main = record[MAIN_RESOURCE]
    measured = any(r.get("type_valeur") == MEASURED for r in record.get(INDICATORS, []))
    return main.get("resultat", NOT_EVALUATED) != NOT_EVALUATED or measured


def _targets(record: Record) -> dict[str, dict[str, str]]:
    rows = [r for r in record.get(INDICATORS, []) if r.get("type_valeur") == TARGET]
    return {f"{r['code_indicateur']}|{r.get('periode_debut', '')}": {k: r.get(k, "") for k in TARGET_FIELDS}
            for r in rows}


def target_changes(revisions: Sequence[RevisionState], start: dt.date) -> list[TargetChange]:
    """Targets as declared at `start` (the last revision on or before it, else the first), then every
    later revision that changed or removed one of them."""
    if not revisions:
        return []
    before = [r for r in revisions if r.created_at.date() <= start]
    base = before[-1] if before else revisions[0]
    declared = _targets(base.record)
    changes: list[TargetChange] = []
    previous = declared
    for rev in revisions:
        if rev.number <= base.number or rev.created_at.date() <= start:
            continue
        now = _targets(rev.record)
        for key, old in previous.items():
            if key not in declared:
                continue
            new = now.get(key)
            if new != old:
                code = key.split("|", 1)[0]
                changes.append(TargetChange(code, rev.number, rev.created_at.date(),
                                            "removed" if new is None else "changed", old, new))
        previous = {k: v for k, v in now.items() if k in declared}
    return changes


def derive(record: Record, revisions: Sequence[RevisionState], today: dt.date, due_months: int) -> Derived:
    main = record[MAIN_RESOURCE]
    end, start = _date(main.get("date_fin", "")), _date(main.get("date_debut", ""))
    due = add_months(end, due_months) if end else None
    published = results_published(record)
    first = revisions[0].created_at.date() if revisions else None
    return Derived(
        results_due=due,
        results_published=published,
        results_overdue=bool(due and due < today and not published),
        preregistered=(first <= start) if (first and start) else None,
        target_changes=target_changes(revisions, start) if start else [],
    )
