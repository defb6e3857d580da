"""The single write path, on SQLite and on a real PostgreSQL: revisions, unchanged content, refusal
without loss, tombstones, the outbox, and field-by-field comparison of revisions."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from registry.db import Experience, ImmutableRevisionError, OutboxEvent, Revision
from registry.queries import compare, get_experience, history, list_experiences, record_at
from registry.service import Provenance, WithdrawError, publish_bytes, publish_path, withdraw
from registry.store import Registry
from tests.conftest import Clock
from tests.helpers import children, csv_bytes, example, write_package

UPLOAD = Provenance("upload", actor="agent@ville.example.fr", source_name="rex.csv")
PARIS = "217500016-2023-001"
LYON = "216901231-2021-001"


def counts(reg: Registry) -> tuple[int, int, int]:
    with reg.session() as s:
        return (s.scalar(select(func.count()).select_from(Experience)) or 0,
                s.scalar(select(func.count()).select_from(Revision)) or 0,
                s.scalar(select(func.count()).select_from(OutboxEvent)) or 0)


def test_first_publication_creates_revision_and_outbox_event(registry: Registry) -> None:
    result = publish_bytes(registry, csv_bytes([example(PARIS)]), "rex.csv", UPLOAD)
    assert result.accepted, result.report.to_text()
    assert [(o.id, o.action, o.revision) for o in result.outcomes] == [(PARIS, "created", 1)]
    assert counts(registry) == (1, 1, 1)
    [rev] = history(registry, PARIS)
    assert (rev.channel, rev.actor, rev.source_name, rev.action) == ("upload", UPLOAD.actor, "rex.csv", "create")
    view = get_experience(registry, PARIS)
    assert view.main["intitule"] == example(PARIS)["intitule"]
    assert view.commune is not None and view.commune.nom == "Paris"


def test_identical_republication_is_unchanged(registry: Registry) -> None:
    data = csv_bytes([example(PARIS)])
    publish_bytes(registry, data, "rex.csv", UPLOAD)
    again = publish_bytes(registry, data, "rex.csv", UPLOAD)
    assert [o.action for o in again.outcomes] == ["unchanged"]
    assert counts(registry) == (1, 1, 1)


def test_update_adds_revision_and_keeps_past_state(registry: Registry, clock: Clock) -> None:
    row = example(PARIS)
    publish_bytes(registry, csv_bytes([row]), "v1.csv", UPLOAD)
    clock.advance(days=30)
    changed = {**row, "statut": "en_pause", "date_maj": "2026-02-14"}
    result = publish_bytes(registry, csv_bytes([changed]), "v2.csv", Provenance("api", actor="api-client"))
    assert [o.action for o in result.outcomes] == ["updated"]
    assert record_at(registry, PARIS, 1)["experiences"]["statut"] == row["statut"]
    assert record_at(registry, PARIS, 2)["experiences"]["statut"] == "en_pause"
    diff = {(c.field, c.before, c.after) for c in compare(registry, PARIS, 1, 2)}
    assert diff == {("statut", row["statut"], "en_pause"), ("date_maj", row["date_maj"], "2026-02-14")}
    revs = history(registry, PARIS)
    assert [r.channel for r in revs] == ["upload", "api"]
    assert revs[1].created_at > revs[0].created_at
    assert counts(registry) == (1, 2, 2)


def test_absent_column_keeps_value_and_empty_cell_clears_it(registry: Registry) -> None:
    row = example(PARIS)
    publish_bytes(registry, csv_bytes([row]), "full.csv", UPLOAD)
    header = ["id_experience", "intitule", "resume", "nom_porteur", "siren_porteur", "type_porteur",
              "code_insee_commune", "domaine", "objectifs", "date_debut", "phase", "statut", "resultat", "date_maj",
              "cout_reel"]
    partial = {**row, "cout_reel": ""}
    publish_bytes(registry, csv_bytes([partial], header=header), "partial.csv", UPLOAD)
    main = get_experience(registry, PARIS).main
    assert main["cout_reel"] == ""  # an empty cell clears
    assert main["impacts_positifs"] == row["impacts_positifs"]  # an absent column keeps


def test_invalid_submission_is_refused_whole_and_nothing_changes(registry: Registry, tmp_path: Path) -> None:
    publish_bytes(registry, csv_bytes([example(PARIS)]), "ok.csv", UPLOAD)
    before = get_experience(registry, PARIS).record
    good_update = {**example(PARIS), "statut": "bloque"}
    bad_new = {**example(LYON), "date_debut": "31/12/2021"}
    result = publish_bytes(registry, csv_bytes([good_update, bad_new]), "mixed.csv", UPLOAD)
    assert not result.accepted and result.outcomes == []
    [err] = result.report.errors()
    assert (err.code, err.row, err.field) == ("type-error", 3, "date_debut")
    assert "2021-12-31" in err.message()
    assert get_experience(registry, PARIS).record == before
    assert counts(registry) == (1, 1, 1)


def test_whole_package_with_children_and_foreign_keys(registry: Registry, tmp_path: Path) -> None:
    folder = write_package(tmp_path / "pkg", {
        "experiences": [example(PARIS)], "indicateurs": children("indicateurs", PARIS),
        "enseignements": children("enseignements", PARIS)})
    result = publish_path(registry, folder, UPLOAD)
    assert result.accepted, result.report.to_text()
    record = get_experience(registry, PARIS).record
    assert len(record["indicateurs"]) == len(children("indicateurs", PARIS)) > 0
    assert record["acteurs"] == []


def test_child_rows_for_unknown_experience_are_refused(registry: Registry, tmp_path: Path) -> None:
    folder = write_package(tmp_path / "orphans", {"indicateurs": children("indicateurs", PARIS)})
    result = publish_path(registry, folder, UPLOAD)
    assert not result.accepted
    assert {i.code for i in result.report.errors()} == {"foreign-key"}
    assert counts(registry) == (0, 0, 0)


def test_results_arrive_later_as_child_rows_only(registry: Registry, tmp_path: Path) -> None:
    publish_bytes(registry, csv_bytes([example(PARIS)]), "exp.csv", UPLOAD)
    rows = children("indicateurs", PARIS)
    result = publish_path(registry, write_package(tmp_path / "later", {"indicateurs": rows}), UPLOAD)
    assert result.accepted, result.report.to_text()
    assert [o.action for o in result.outcomes] == ["updated"]
    assert len(get_experience(registry, PARIS).record["indicateurs"]) == len(rows)
    changes = compare(registry, PARIS, 1, 2)
    assert changes and all(c.table == "indicateurs" and c.before is None for c in changes)


def test_withdrawal_is_a_tombstone_with_reason(registry: Registry) -> None:
    publish_bytes(registry, csv_bytes([example(PARIS)]), "exp.csv", UPLOAD)
    with pytest.raises(WithdrawError):
        withdraw(registry, PARIS, "", Provenance("form"))
    out = withdraw(registry, PARIS, "Doublon d'une fiche déjà publiée par la métropole.", Provenance("form"))
    assert out.revision == 2
    view = get_experience(registry, PARIS)
    assert view.status == "withdrawn" and "Doublon" in (view.withdrawn_reason or "")
    assert view.record["experiences"]["intitule"]  # content kept
    assert list_experiences(registry)[0] == 0
    assert [r.action for r in history(registry, PARIS)] == ["create", "withdraw"]
    with registry.session() as s:
        assert [e.event for e in s.scalars(select(OutboxEvent).order_by(OutboxEvent.id))] == ["upsert", "withdraw"]
    again = publish_bytes(registry, csv_bytes([example(PARIS)]), "exp.csv", UPLOAD)
    assert [o.action for o in again.outcomes] == ["restored"]
    assert get_experience(registry, PARIS).status == "published"


def test_revisions_cannot_be_modified_or_deleted(registry: Registry) -> None:
    publish_bytes(registry, csv_bytes([example(PARIS)]), "exp.csv", UPLOAD)
    with pytest.raises(ImmutableRevisionError), registry.session() as s:
        rev = s.scalars(select(Revision)).one()
        rev.comment = "rewritten history"
    with pytest.raises(ImmutableRevisionError), registry.session() as s:
        s.delete(s.scalars(select(Revision)).one())
    assert history(registry, PARIS)[0].comment is None


def test_failure_inside_the_transaction_leaves_nothing(registry: Registry, monkeypatch: pytest.MonkeyPatch) -> None:
    import registry.service as service

    publish_bytes(registry, csv_bytes([example(PARIS)]), "exp.csv", UPLOAD)
    real = service._revision
    calls = {"n": 0}

    def failing(*args, **kwargs):  # the second experience of the batch fails after the first was written
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("disk full")
        return real(*args, **kwargs)

    monkeypatch.setattr(service, "_revision", failing)
    with pytest.raises(RuntimeError):
        publish_bytes(registry, csv_bytes([{**example(PARIS), "statut": "bloque"}, example(LYON)]), "b.csv", UPLOAD)
    assert counts(registry) == (1, 1, 1)
    assert get_experience(registry, PARIS).main["statut"] == example(PARIS)["statut"]


def test_hostile_text_is_stored_verbatim(registry: Registry) -> None:
    hostile = '<script>alert("x")</script> <img src=x onerror=alert(1)> =HYPERLINK("http://evil.example","clic")'
    row = {**example(PARIS), "ce_qui_a_fonctionne": hostile, "impacts_negatifs": "'; DROP TABLE experiences; --"}
    result = publish_bytes(registry, csv_bytes([row]), "x.csv", UPLOAD)
    assert result.accepted, result.report.to_text()
    main = get_experience(registry, PARIS).main
    assert main["ce_qui_a_fonctionne"] == hostile
    assert main["impacts_negatifs"] == "'; DROP TABLE experiences; --"


def test_invalid_experience_is_reported_once_not_on_each_child_row(registry: Registry, tmp_path: Path) -> None:
    folder = write_package(tmp_path / "pkg", {
        "experiences": [{**example(PARIS), "domaine": "smart_city"}],
        "indicateurs": children("indicateurs", PARIS)})
    result = publish_path(registry, folder, UPLOAD)
    assert [(i.code, i.field) for i in result.report.errors()] == [("enum-mismatch", "domaine")]


def test_two_writers_racing_on_a_new_experience(registry: Registry, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two publications of the same new experience at the same moment: both succeed, one creates it, the
    other finds it on retry (a real race on the real database: both read "absent" before either writes)."""
    import threading

    import registry.service as service

    barrier = threading.Barrier(2, timeout=30)
    real = service._project
    first_try = threading.local()

    def racing(*args, **kwargs):  # both transactions have read "absent" before either writes
        if not getattr(first_try, "done", False):
            first_try.done = True
            barrier.wait()
        return real(*args, **kwargs)

    monkeypatch.setattr(service, "_project", racing)
    results: list[object] = []

    def publish_once(actor: str) -> None:
        results.append(publish_bytes(registry, csv_bytes([example(PARIS)]), "rex.csv", Provenance("api", actor=actor)))

    threads = [threading.Thread(target=publish_once, args=(f"client-{i}",)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    actions = sorted(o.action for r in results for o in r.outcomes)  # type: ignore[attr-defined]
    assert actions == ["created", "unchanged"]
    assert counts(registry) == (1, 1, 1)
