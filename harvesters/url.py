"""The URL harvester: one CSV, XLSX, JSON or datapackage.json at a fixed address, checked like a CKAN resource.

Unchanged content is not imported again: the ETag / Last-Modified of the last download are sent back
(a 304 answer ends the run), and a body whose SHA-256 is the last one's is not validated again.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from urllib.parse import urlsplit

from harvesters import core
from harvesters.ckan import _is_html, _safe, fetch_datapackage
from harvesters.net import GuardedSession, HarvestFetchError, Options, download
from registry.actions import harvest as actions


def harvest(ctx: core.Context, options: Options, tmp: Path) -> tuple[bool, list[str]]:
    handle = ctx.handle
    url = handle.source.url
    session = GuardedSession(options)
    state = actions.dataset_state(ctx.registry, handle, url)
    name = Path(urlsplit(url).path).name or "fichier.csv"
    folder = tmp / "url"
    try:
        if name.endswith("datapackage.json"):
            file = fetch_datapackage(session, url, folder)
            etag = last_modified = None
        else:
            use_cache = state is not None and state.status == "ok" and not handle.full
            got = download(session, url, folder / _safe(name), etag=state.etag if use_cache else None,
                           last_modified=state.last_modified if use_cache else None)
            if got.not_modified and state is not None:
                _unchanged(ctx, url, name, state, "Le serveur indique que le fichier n'a pas changé (ETag ou "
                                                  "Last-Modified).")
                return True, []
            if _is_html(got.path, got.content_type):
                raise HarvestFetchError(f"L'adresse {url[:300]} donne une page HTML, pas un fichier CSV, XLSX ou JSON.")
            file = core.LocalFile(got.path, name, got.url, got.sha256, True)
            etag, last_modified = got.etag, got.last_modified
        digest = core.combined_hash([file])
        if state is not None and state.content_hash == digest and state.status == "ok":
            _unchanged(ctx, url, name, state, "Contenu identique au dernier moissonnage (même empreinte SHA-256).")
            actions.save_dataset_state(ctx.registry, handle, url, name, "ok", digest, state.experience_ids, etag,
                                       last_modified)
            return True, []
        out = core.process(ctx, url, name, [file], url)
        status = "failed" if not out.ok else "invalid" if out.status == "invalid" else "ok"
        actions.dataset_done(ctx.registry, handle, url, name, status, digest if out.ok else None, out.seen,
                             item=out.item, claims=out.claims, claims_url=url, keep_ids=not out.ok, etag=etag,
                             last_modified=last_modified)
        if not out.ok:
            return False, ["La publication a été refusée : voir le rapport du moissonnage."]
        if handle.full:
            core.infer_deletions(ctx, out.seen, set(), set())
        return True, []
    except HarvestFetchError as exc:
        handle.counts["failed"] += 1
        actions.dataset_done(ctx.registry, handle, url, name, "failed", keep_ids=True, item=actions.Item(
            "failed", url, messages=[core.message(exc.message, "download")]))
        return False, [exc.message]
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _unchanged(ctx: core.Context, url: str, name: str, state: actions.DatasetState, text: str) -> None:
    ctx.handle.counts["unchanged"] += len(state.experience_ids)
    actions.add_item(ctx.registry, ctx.handle, "unchanged", url, name, url, state.experience_ids,
                     {"unchanged": len(state.experience_ids)}, [{"code": "unchanged", "severity": "info",
                                                                  "message": text}])
