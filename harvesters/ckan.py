"""The CKAN harvester (ckanapi): list datasets, pick the resources that hold the standard's tables, download,
validate, publish; with --full, withdraw what the portal no longer publishes.

Listing: `package_search` paged with rows/start and the stable sort `id asc`; `start` advances by the number
of results actually received (a portal that caps rows loses nothing); it stops on an empty page, on a page
whose datasets were all seen already (a page repeated forever), and at `count`. Incremental runs add
`fq=metadata_modified:[T TO *]`, T being the start of the last complete run minus an overlap. When search is
unavailable (a CKAN without Solr: "Search Connection Error", or any error on the first page), the harvester
falls back to `package_list` + `package_show` (then `--query` cannot be applied: the job says so).
Only ids are kept across pages, never datasets: memory stays flat with the size of the portal.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import shutil
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import ckanapi

from harvesters import core
from harvesters.net import (
    USER_AGENT,
    GuardedSession,
    HarvestFetchError,
    NetworkRefused,
    Options,
    download,
    with_retries,
)
from registry.actions import harvest as actions
from registry.paths import SCHEMAS_DIR
from registry.standard import KEY_FIELD

DATA_FORMATS = {"csv", "xlsx", "json", "text/csv", "application/json",
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}
DATA_SUFFIXES = (".csv", ".xlsx", ".json", ".tsv", ".txt")


def standard_name() -> str:
    return json.loads((SCHEMAS_DIR / "datapackage.json").read_text(encoding="utf-8"))["name"]


class Portal:
    def __init__(self, url: str, options: Options) -> None:
        self.options = options
        self.session = GuardedSession(options)
        self.api = ckanapi.RemoteCKAN(url.rstrip("/"), user_agent=USER_AGENT, session=self.session)
        self.complete = False
        self.fallback = False
        self.notes: list[str] = []

    def call(self, action: str, **data: Any) -> Any:
        def once() -> Any:
            try:
                return self.api.call_action(action, data)
            except ckanapi.NotFound:
                raise
            except ckanapi.CKANAPIError as exc:
                raise HarvestFetchError(f"Le portail a refusé l'appel {action} : {str(exc)[:300]}") from None
            except ValueError as exc:  # an answer that is not JSON (an HTML page)
                raise HarvestFetchError(f"Le portail a donné une réponse illisible à l'appel {action} "
                                        f"({str(exc)[:200]}).") from None

        return with_retries(self.options, once)

    def datasets(self, query: str | None, since: dt.datetime | None) -> Iterator[dict[str, Any]]:
        """Every dataset to look at, each once; `self.complete` says at the end whether the listing was whole."""
        seen: set[str] = set()
        start, count = 0, None
        fq = f"metadata_modified:[{since.strftime('%Y-%m-%dT%H:%M:%S.%fZ')} TO *]" if since else ""
        while True:
            try:
                page = self.call("package_search", q=query or "*:*", fq=fq, rows=self.options.page_size,
                                 start=start, sort="id asc")
            except NetworkRefused:
                raise
            except (HarvestFetchError, ckanapi.NotFound) as exc:
                if start == 0:
                    self.fallback = True
                    self.notes.append(f"Recherche indisponible sur le portail ({_short(exc)}) : liste complète "
                                      "par package_list et package_show" + (" ; le filtre --query n'a pas pu être "
                                                                           "appliqué" if query else "") + ".")
                    yield from self._by_list(since)
                    return
                raise
            results = page.get("results") or []
            count = int(page.get("count") or 0)
            if not results:
                break
            fresh = [d for d in results if d.get("id") not in seen]
            if not fresh:
                self.notes.append(f"Le portail a renvoyé une page déjà vue (start={start}) : liste arrêtée là.")
                break
            for d in fresh:
                seen.add(d["id"])
                yield d
            start += len(results)
            if start >= count:
                break
        self.complete = count is not None and len(seen) >= count
        if not self.complete:
            self.notes.append(f"Liste incomplète : {len(seen)} jeux de données vus sur {count} annoncés ; aucun "
                              "retrait n'est déduit de ce moissonnage.")

    def _by_list(self, since: dt.datetime | None) -> Iterator[dict[str, Any]]:
        names = self.call("package_list")
        failed = 0
        for name in names:
            try:
                d = self.call("package_show", id=name)
            except ckanapi.NotFound:
                continue  # deleted between the list and now
            except HarvestFetchError as exc:
                failed += 1
                yield {"id": name, "name": name, "_error": exc.message}
                continue
            if since and _modified(d) is not None and _modified(d) < since:  # type: ignore[operator]
                yield {"id": d["id"], "name": d.get("name"), "_unmodified": True}
                continue
            yield d
        self.complete = failed == 0


def _short(exc: Exception) -> str:
    return (getattr(exc, "message", None) or str(exc) or type(exc).__name__)[:200]


def _modified(d: dict[str, Any]) -> dt.datetime | None:
    value = d.get("metadata_modified")
    try:
        parsed = dt.datetime.fromisoformat(str(value).replace("Z", ""))
    except ValueError:
        return None
    return parsed.replace(tzinfo=dt.UTC) if parsed.tzinfo is None else parsed


def pick_resources(dataset: dict[str, Any], std_name: str) -> list[tuple[dict[str, Any], bool, bool]]:
    """(resource, declared, datapackage) of the resources to read: a datapackage.json if there is one (read
    whole), else those whose `schema` names the standard, else the CSV/XLSX/JSON ones (kept if their header
    names the standard's columns)."""
    packages, declared, others = [], [], []
    for r in dataset.get("resources") or []:
        url = (r.get("url") or "").strip()
        if not url:
            continue
        path = urlsplit(url).path.lower()
        fmt = (r.get("format") or "").strip().lower()
        schema = r.get("schema")
        schema_text = json.dumps(schema, ensure_ascii=False) if isinstance(schema, dict | list) else str(schema or "")
        if path.endswith("datapackage.json") or fmt in ("datapackage", "data package"):
            packages.append((r, True, True))
        elif std_name in schema_text:
            declared.append((r, True, False))
        elif fmt in DATA_FORMATS or path.endswith(DATA_SUFFIXES):
            others.append((r, False, False))
    return packages[:1] or declared or others


def looks_like_standard(path: Path) -> bool:
    """An undeclared file is read only if its first line names the standard's key column."""
    head = path.open("rb").read(65536)
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        head = head.decode("utf-16", "replace").encode()
    if head.startswith(b"PK\x03\x04") or head.lstrip().startswith((b"{", b"[")):
        return True  # XLSX or JSON: the validator tells which table it is, or that none is
    return KEY_FIELD.encode() in head.split(b"\n", 1)[0]


def fetch_files(ctx: core.Context, session: GuardedSession, picks: list[tuple[dict[str, Any], bool, bool]],
                tmp: Path) -> tuple[list[core.LocalFile], list[dict[str, Any]]]:
    files: list[core.LocalFile] = []
    notes: list[dict[str, Any]] = []
    for n, (res, declared, is_package) in enumerate(picks):
        url = res["url"].strip()
        name = Path(urlsplit(url).path).name or f"ressource-{n}.csv"
        if is_package:
            files.append(fetch_datapackage(session, url, tmp.parent / f"{tmp.name}-dp{n}"))
            continue
        got = download(session, url, tmp.parent / f"{tmp.name}-{n}-{_safe(name)}")
        if _is_html(got.path, got.content_type):
            raise HarvestFetchError(f"La ressource {url[:300]} est une page HTML, pas un fichier de données : "
                                    "indiquez sur le portail le lien direct vers le fichier CSV, XLSX ou JSON.")
        if not declared and not looks_like_standard(got.path):
            notes.append({"code": "ignored", "severity": "info", "url": url,
                          "message": f"Fichier ignoré : {name} n'a pas de colonne {KEY_FIELD} (autre schéma)."})
            got.path.unlink(missing_ok=True)
            continue
        files.append(core.LocalFile(got.path, name, got.url, got.sha256, declared))
    return files, notes


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in name)[:80] or "fichier"


def _is_html(path: Path, content_type: str) -> bool:
    head = path.open("rb").read(512).lstrip().lower()
    return "text/html" in content_type.lower() or head.startswith((b"<!doctype html", b"<html"))


def fetch_datapackage(session: GuardedSession, url: str, folder: Path) -> core.LocalFile:
    """A datapackage.json and every file it names, downloaded side by side, read whole by the validator."""
    got = download(session, url, folder / "source-datapackage.json")
    try:
        desc = json.loads(got.path.read_text(encoding="utf-8-sig"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise HarvestFetchError(f"Le datapackage.json {url[:300]} est illisible ({str(exc)[:200]}).") from None
    if not isinstance(desc, dict) or not isinstance(desc.get("resources"), list):
        raise HarvestFetchError(f"Le datapackage.json {url[:300]} n'a pas de liste « resources ».")
    digest = hashlib.sha256(got.sha256.encode())
    for i, res in enumerate(desc["resources"]):
        if not isinstance(res, dict) or not isinstance(res.get("path"), str):
            continue
        target = urljoin(got.url, res["path"])
        local = f"r{i}-{_safe(Path(urlsplit(target).path).name)}"
        part = download(session, target, folder / local)
        digest.update(part.sha256.encode())
        res["path"] = local
    (folder / "datapackage.json").write_text(json.dumps(desc, ensure_ascii=False), encoding="utf-8")
    return core.LocalFile(folder / "datapackage.json", "datapackage.json", url, digest.hexdigest(), True, True)


@dataclass
class Fetched:
    """One dataset's files, downloaded ahead (in a thread) while earlier datasets are validated."""

    d: dict[str, Any]
    folder: Path
    picks: list[tuple[dict[str, Any], bool, bool]] = field(default_factory=list)
    files: list[core.LocalFile] = field(default_factory=list)
    notes: list[dict[str, Any]] = field(default_factory=list)
    error: Exception | None = None


def _fetch(ctx: core.Context, session: GuardedSession, d: dict[str, Any], std_name: str, folder: Path) -> Fetched:
    """Downloads what a dataset needs; no database access here (it runs in the download threads)."""
    out = Fetched(d, folder)
    if d.get("_unmodified") or d.get("_error"):
        return out
    try:
        out.picks = pick_resources(d, std_name)
        if out.picks:
            out.files, out.notes = fetch_files(ctx, session, out.picks, folder)
    except Exception as exc:  # reported by the main thread, in the dataset's item
        out.error = exc
    return out


def harvest(ctx: core.Context, options: Options, tmp: Path) -> tuple[bool, list[str]]:
    """Runs one CKAN source; returns (listing complete, notes for the job).

    Datasets are listed page by page; the files of the next few are downloaded by `options.per_host`
    threads (a small number of requests at once to the portal) while the main thread validates and
    publishes the current one, in listing order. At most 2 x per_host datasets are in flight: memory and
    disk stay bounded whatever the size of the portal."""
    handle = ctx.handle
    src = handle.source
    portal = Portal(src.url, options)
    std_name = standard_name()
    since = None
    if not handle.full and src.last_success_at is not None:
        since = src.last_success_at - dt.timedelta(seconds=options.overlap_seconds)
    seen_ids: set[str] = set()
    seen_datasets: set[str] = set()
    protected: set[str] = set()

    states: dict[str, actions.DatasetState | None] = {}

    def finish(f: Fetched) -> None:
        d = f.d
        dataset_id = str(d.get("id") or d.get("name"))
        if dataset_id not in states:  # the states of the datasets in flight, in one query
            ahead = [dataset_id, *(_id(p) for p in pending_ids)]
            states.clear()
            states.update(dict.fromkeys(ahead))
            states.update(actions.dataset_states(ctx.registry, handle, ahead))
        state = states.pop(dataset_id)
        if d.get("_unmodified"):
            if state:
                seen_ids.update(state.experience_ids)
            return
        name = d.get("title") or d.get("name")
        if ctx.progress:
            ctx.progress(str(name))
        if d.get("_error"):
            raise HarvestFetchError(d["_error"])
        if f.error is not None:
            raise f.error
        if not f.picks:
            text = ("Le jeu de données n'a aucune ressource." if not d.get("resources")
                    else "Aucune ressource de ce jeu de données ne suit le standard (ni schéma déclaré, ni fichier "
                         "CSV, XLSX ou JSON).")
            actions.dataset_done(ctx.registry, handle, dataset_id, name, "ok", item=actions.Item(
                "ignored", messages=[{"code": "ignored", "severity": "info", "message": text}]))
            return
        files, notes = f.files, f.notes
        url = files[0].url if files else f.picks[0][0].get("url")
        digest = core.combined_hash(files) if files else None
        if state and digest and state.content_hash == digest and state.status == "ok":
            seen_ids.update(state.experience_ids)
            handle.counts["unchanged"] += len(state.experience_ids)
            actions.dataset_done(ctx.registry, handle, dataset_id, name, "ok", digest, state.experience_ids,
                                 item=actions.Item("unchanged", url, state.experience_ids,
                                                   {"unchanged": len(state.experience_ids)},
                                                   [{"code": "unchanged", "severity": "info", "message":
                                                     "Fichiers identiques au dernier moissonnage : rien à refaire."}]))
            return
        if not files:
            actions.dataset_done(ctx.registry, handle, dataset_id, name, "ok",
                                 item=actions.Item("ignored", url, messages=notes))
            return
        out = core.process(ctx, dataset_id, name, files, url, notes)
        seen_ids.update(out.seen)
        if not out.ok:  # refused (rights): tried again next time, its records kept as they are
            protected.add(dataset_id)
        status = "failed" if not out.ok else "invalid" if out.status == "invalid" else "ok"
        actions.dataset_done(ctx.registry, handle, dataset_id, name, status, None if not out.ok else digest,
                             out.seen, item=out.item, claims=out.claims, claims_url=url, keep_ids=not out.ok)

    def run(f: Fetched) -> None:
        try:
            _guarded(ctx, f.d, lambda _d: finish(f), protected)
        finally:
            _rmtree(f.folder)

    def mark(d: dict[str, Any]) -> dict[str, Any]:
        seen_datasets.add(str(d.get("id") or d.get("name")))
        return d

    window = 2 * max(1, options.per_host)
    pending_ids: deque[dict[str, Any]] = deque()
    with ThreadPoolExecutor(max_workers=max(1, options.per_host), thread_name_prefix="moisson") as pool:
        pending: deque[Future[Fetched]] = deque()
        for n, d in enumerate(portal.datasets(src.query, since)):
            slot = tmp / f"d{n % (2 * window)}"  # a few names reused: nothing grows with the portal's size
            pending.append(pool.submit(_fetch, ctx, portal.session, mark(d), std_name, slot))
            pending_ids.append(d)
            while len(pending) >= window:
                pending_ids.popleft()
                run(pending.popleft().result())
        while pending:
            pending_ids.popleft()
            run(pending.popleft().result())
    for n, dataset_id in enumerate(actions.failed_datasets(ctx.registry, handle)):
        if dataset_id in seen_datasets:
            continue
        try:
            d = portal.call("package_show", id=dataset_id)
        except ckanapi.NotFound:
            continue
        except HarvestFetchError as exc:
            d = {"id": dataset_id, "name": dataset_id, "_error": exc.message}
        run(_fetch(ctx, portal.session, mark(d), std_name, tmp / f"r{n}"))
    complete = portal.complete
    if handle.full and complete:
        gone = actions.gone_datasets(ctx.registry, handle, seen_datasets)
        core.infer_deletions(ctx, seen_ids, protected, gone)
    return complete, portal.notes


def _id(d: dict[str, Any]) -> str:
    return str(d.get("id") or d.get("name"))


def _guarded(ctx: core.Context, d: dict[str, Any], fn: Any, protected: set[str]) -> None:
    """One dataset; whatever goes wrong with it is its item's report, and the harvest goes on."""
    dataset_id = str(d.get("id") or d.get("name"))
    name = d.get("title") or d.get("name")
    try:
        fn(d)
    except Exception as exc:  # one failing item never stops the others
        protected.add(dataset_id)
        text = exc.message if isinstance(exc, HarvestFetchError) else \
            f"Erreur inattendue pendant le traitement de ce jeu de données ({type(exc).__name__} : {str(exc)[:300]})."
        ctx.handle.counts["failed"] += 1
        actions.dataset_done(ctx.registry, ctx.handle, dataset_id, name, "failed", keep_ids=True, item=actions.Item(
            "failed", messages=[core.message(text, "download" if isinstance(exc, HarvestFetchError) else "internal")]))


def _rmtree(prefix: Path) -> None:
    """Removes a dataset's files (named after `prefix`, no directory of their own but a data package's)."""
    for path in prefix.parent.glob(f"{prefix.name}-*"):
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
