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
    real = service._write_chunk
    calls = {"n": 0}

    def failing(*args, **kwargs):  # the second batch fails after the first was written
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("disk full")
        return real(*args, **kwargs)

    monkeypatch.setattr(service, "CHUNK", 1)
    monkeypatch.setattr(service, "_write_chunk", failing)
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
    real = service._organisations  # the first write of a batch comes after it
    first_try = threading.local()

    def racing(*args, **kwargs):  # both transactions have read "absent" before either writes
        if not getattr(first_try, "done", False):
            first_try.done = True
            barrier.wait()
        return real(*args, **kwargs)

    monkeypatch.setattr(service, "_organisations", racing)
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


# ---------------------------------------------------------------- large imports: batches, bounded cost

def synthetic_slices(out: Path, sizes: list[int]) -> list[Path]:
    """Packages of data/synthetic.py experiences (with their child rows), disjoint, of these sizes in turn."""
    import csv
    import importlib.util

    spec = importlib.util.spec_from_file_location("synthetic_data", Path(__file__).parents[1] / "data" / "synthetic.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.generate(out / "all", sum(sizes), 7)
    tables: dict[str, list[dict[str, str]]] = {}
    for path in sorted((out / "all").glob("*.csv")):
        with path.open(encoding="utf-8", newline="") as f:
            tables[path.stem] = list(csv.DictReader(f))
    ids = [r["id_experience"] for r in tables["experiences"]]
    folders, start = [], 0
    for i, size in enumerate(sizes):
        mine = set(ids[start:start + size])
        start += size
        folders.append(write_package(out / f"slice-{i}", {name: [r for r in rows if r["id_experience"] in mine]
                                                          for name, rows in tables.items()}))
    return folders


def test_a_large_import_is_written_in_batches_of_bounded_cost(registry: Registry, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """The number of SQL statements of an import depends on its number of batches, not on its number of
    records nor on how many are already stored."""
    from sqlalchemy import event

    import registry.service as service

    monkeypatch.setattr(service, "CHUNK", 40)
    first, middle, last = synthetic_slices(tmp_path, [100, 300, 100])
    statements: list[str] = []

    def count(_conn, _cursor, statement, *_args) -> None:  # type: ignore[no-untyped-def]
        statements.append(statement)

    event.listen(registry.engine, "before_cursor_execute", count)
    try:
        assert publish_path(registry, first, UPLOAD).count("created") == 100
        on_empty = len(statements)
        assert publish_path(registry, middle, UPLOAD).count("created") == 300
        statements.clear()
        assert publish_path(registry, last, UPLOAD).count("created") == 100
        on_400 = len(statements)
    finally:
        event.remove(registry.engine, "before_cursor_execute", count)
    batches = 3  # 100 records in batches of 40
    assert on_empty <= 8 * batches + 6, on_empty  # a handful per batch, not several per record
    assert on_400 <= on_empty  # 400 records stored change nothing (only bearers already known save inserts)
    assert counts(registry) == (500, 500, 500)
    with registry.session() as s:
        revisions = s.scalars(select(Revision)).all()
        assert {(r.number, r.action, r.channel, r.actor, r.source_name) for r in revisions} == {
            (1, "create", "upload", UPLOAD.actor, UPLOAD.source_name)}
        assert {e.experience_id for e in s.scalars(select(OutboxEvent))} == {r.experience_id for r in revisions}


def test_a_large_import_mixing_new_changed_unchanged_and_withdrawn_records(registry: Registry, tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """Across batch boundaries each record gets its own outcome, in the submission's order."""
    import registry.service as service

    monkeypatch.setattr(service, "CHUNK", 7)
    (folder,) = synthetic_slices(tmp_path, [30])
    first = publish_path(registry, folder, UPLOAD)
    ids = [o.id for o in first.outcomes]
    assert [o.action for o in first.outcomes] == ["created"] * 30
    withdraw(registry, ids[10], "Doublon d'une autre fiche", UPLOAD)
    path = folder / "experiences.csv"
    lines = path.read_text("utf-8").splitlines(keepends=True)
    header = lines[0].rstrip("\r\n").split(",")
    rows = [dict(zip(header, r, strict=True)) for r in __import__("csv").reader(lines[1:])]
    for i in (3, 8, 20):
        rows[i]["intitule"] = f"Titre revu {i}"
    path.write_bytes(csv_bytes(rows))
    again = publish_path(registry, folder, Provenance("cli", actor="seconde"))
    expected = ["updated" if i in (3, 8, 20) else "restored" if i == 10 else "unchanged" for i in range(30)]
    assert [o.id for o in again.outcomes] == ids
    assert [o.action for o in again.outcomes] == expected
    assert [o.revision for o in again.outcomes] == [2 if a == "updated" else 3 if a == "restored" else 1
                                                    for a in expected]
    assert counts(registry) == (30, 35, 35)  # 30 created, 1 withdrawn, 3 updated, 1 restored
    assert get_experience(registry, ids[8]).record["experiences"]["intitule"] == "Titre revu 8"
    assert [(r.action, r.actor) for r in history(registry, ids[10])] == [
        ("create", UPLOAD.actor), ("withdraw", UPLOAD.actor), ("restore", "seconde")]
