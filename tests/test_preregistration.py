"""Defined before the experiment: registration at idea/study phase, results due date, overdue results,
and declared targets changed or removed after the start (as trial registries flag outcome switching)."""

from __future__ import annotations

from pathlib import Path

from registry.config import load_settings
from registry.derived import add_months
from registry.queries import get_experience
from registry.service import Provenance, publish_path
from registry.store import Registry
from tests.conftest import Clock
from tests.helpers import Row, example, write_package

EXP = "213502388-2024-001"  # Rennes, in the standard's examples
FORM = Provenance("form", actor="chargee-de-mission@rennes.example")


def planned() -> Row:
    """A prototype registered at study phase: objectives, no result yet."""
    return {**example(EXP), "phase": "etude", "statut": "en_cours", "resultat": "non_evalue",
            "date_debut": "2026-03-01", "date_fin": "2026-12-31", "date_maj": "2026-01-15",
            "suite_donnee": "", "motif_arret": "", "ce_qui_a_fonctionne": "", "ce_qui_n_a_pas_fonctionne": "",
            "cout_reel": "", "economies_annuelles": ""}


def indicator(kind: str, value: str, **extra: str) -> Row:
    row = {"id_experience": EXP, "code_indicateur": "conso_eclairage", "libelle_indicateur": "Consommation annuelle",
           "categorie_indicateur": "environnement", "type_valeur": kind, "valeur": value, "unite": "MWh/an",
           "sens_souhaite": "baisse"}
    return row | extra


def publish(reg: Registry, tmp: Path, name: str, tables: dict[str, list[Row]]) -> None:
    result = publish_path(reg, write_package(tmp / name, tables), FORM)
    assert result.accepted, result.report.to_text()


def test_registered_before_start_without_results(registry: Registry, tmp_path: Path) -> None:
    publish(registry, tmp_path, "v1", {"experiences": [planned()],
                                       "indicateurs": [indicator("reference", "820"), indicator("cible", "500")]})
    d = get_experience(registry, EXP).derived
    assert d.preregistered is True
    assert d.results_published is False
    assert d.results_due is not None and d.results_due.isoformat() == "2027-12-31"
    assert d.results_overdue is False
    assert d.target_switched is False


def test_results_overdue_then_published(registry: Registry, tmp_path: Path, clock: Clock) -> None:
    publish(registry, tmp_path, "v1", {"experiences": [planned()]})
    clock.set("2028-01-02T10:00:00")
    assert get_experience(registry, EXP).derived.results_overdue is True
    measured = indicator("mesure", "610", periode_debut="2026-03-01", periode_fin="2026-12-31")
    publish(registry, tmp_path, "v2", {"indicateurs": [measured]})
    d = get_experience(registry, EXP).derived
    assert d.results_published is True and d.results_overdue is False


def test_due_months_is_a_setting(tmp_path: Path, clock: Clock) -> None:
    reg = Registry(load_settings(home=str(tmp_path / "i"), results_due_months=6), clock=clock)
    reg.migrate()
    publish(reg, tmp_path, "v1", {"experiences": [planned()]})
    assert get_experience(reg, EXP).derived.results_due.isoformat() == "2027-06-30"  # type: ignore[union-attr]


def test_target_changed_after_start_is_flagged(registry: Registry, tmp_path: Path, clock: Clock) -> None:
    publish(registry, tmp_path, "v1", {"experiences": [planned()], "indicateurs": [indicator("cible", "500")]})
    clock.set("2026-02-01T10:00:00")  # before the start: revising a target is legitimate
    publish(registry, tmp_path, "v2", {"indicateurs": [indicator("cible", "450")]})
    assert get_experience(registry, EXP).derived.target_switched is False
    clock.set("2026-09-01T10:00:00")  # after the start
    publish(registry, tmp_path, "v3", {"indicateurs": [indicator("cible", "700")]})
    d = get_experience(registry, EXP).derived
    assert d.target_switched is True
    [change] = d.target_changes
    assert (change.code, change.kind, change.revision) == ("conso_eclairage", "changed", 3)
    assert (change.before["valeur"], change.after and change.after["valeur"]) == ("450", "700")


def test_target_removed_after_start_is_flagged(registry: Registry, tmp_path: Path, clock: Clock) -> None:
    publish(registry, tmp_path, "v1", {"experiences": [planned()], "indicateurs": [indicator("cible", "500")]})
    clock.set("2026-10-01T10:00:00")
    measured = indicator("mesure", "640", periode_debut="2026-03-01", periode_fin="2026-09-30")
    publish(registry, tmp_path, "v2", {"indicateurs": [measured]})
    [change] = get_experience(registry, EXP).derived.target_changes
    assert change.kind == "removed" and change.after is None


def test_registered_after_start_is_not_preregistered(registry: Registry, tmp_path: Path, clock: Clock) -> None:
    clock.set("2026-05-01T10:00:00")
    publish(registry, tmp_path, "v1", {"experiences": [planned()]})
    assert get_experience(registry, EXP).derived.preregistered is False


def test_add_months_clamps_to_month_end() -> None:
    from datetime import date

    assert add_months(date(2026, 1, 31), 1) == date(2026, 2, 28)
    assert add_months(date(2025, 12, 31), 12) == date(2026, 12, 31)
