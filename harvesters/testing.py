"""A CKAN-compatible fault server on 127.0.0.1, for the tests and the benchmark (stdlib only).

    portal = FaultPortal()            # starts in a thread, on a free port of 127.0.0.1
    portal.add_dataset("rex-lyon", [("rex.csv", csv_bytes)])
    portal.files["/files/lent.csv"] = File(b"...", fault="stall")
    ... portal.url ...
    portal.stop()

It answers package_search (rows/start/sort id asc, fq=metadata_modified:[T TO *]), package_list and
package_show, and serves files with faults: 500 (always or the first N times), a stall after the headers,
a body shorter than its Content-Length, a slow start (read timeout), a redirect loop, HTML.
`search` = "ok" | "down" (a CKAN without Solr) | "repeat" (the same page forever, with a huge count).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from registry.paths import SCHEMAS_DIR


@dataclass
class File:
    body: bytes
    content_type: str = "text/csv"
    fault: str | None = None  # 500 | 500-once | stall | truncated | slow | redirect-loop | None
    hits: int = 0
    etag: str | None = None
    delay: float = 0.0  # seconds before answering


@dataclass
class FaultPortal:
    search: str = "ok"
    rows_cap: int = 1000
    datasets: dict[str, dict[str, Any]] = field(default_factory=dict)
    files: dict[str, File] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)
    stall_seconds: float = 5.0

    def __post_init__(self) -> None:
        portal = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                portal._handle(self, None)

            def do_HEAD(self) -> None:
                portal._handle(self, None)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                portal._handle(self, self.rfile.read(length))

        class Server(ThreadingHTTPServer):
            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # a client that gave up (timeouts under test) is expected here

        self.server = Server(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # -- content ----------------------------------------------------------------------------------------------
    def add_dataset(self, name: str, resources: list[tuple[str, bytes]] | None = None,
                    modified: dt.datetime | None = None, schema: bool = False, dataset_id: str | None = None,
                    **file_options: Any) -> dict[str, Any]:
        ds_id = dataset_id or f"id-{name}"
        res = []
        for fname, body in resources or []:
            path = f"/files/{name}/{fname}"
            self.files[path] = File(body, "application/json" if fname.endswith(".json") else "text/csv",
                                    **file_options)
            entry: dict[str, Any] = {"id": f"{ds_id}-{fname}", "url": self.url + path, "format": fname.rsplit(".")[-1]}
            if schema:
                entry["schema"] = "rex-territoires-connectes"
            res.append(entry)
        d = {"id": ds_id, "name": name, "title": name, "resources": res,
             "metadata_modified": (modified or dt.datetime.now(dt.UTC)).strftime("%Y-%m-%dT%H:%M:%S.%f")}
        self.datasets[ds_id] = d
        return d

    def touch(self, ds_id: str) -> None:
        self.datasets[ds_id]["metadata_modified"] = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")

    # -- HTTP -------------------------------------------------------------------------------------------------
    def _handle(self, h: BaseHTTPRequestHandler, body: bytes | None) -> None:
        parts = urlsplit(h.path)
        self.requests.append(parts.path)
        if parts.path.startswith(("/api/3/action/", "/api/action/")):
            params: dict[str, Any] = {k: v[0] for k, v in parse_qs(parts.query).items()}
            if body:
                try:
                    params.update(json.loads(body))
                except ValueError:
                    params.update({k: v[0] for k, v in parse_qs(body.decode()).items()})
            status, answer = self._action(parts.path.rsplit("/", 1)[-1], params)
            _send(h, status, json.dumps(answer).encode(), "application/json")
            return
        f = self.files.get(parts.path)
        if f is None:
            _send(h, 404, b"not found", "text/plain")
            return
        f.hits += 1
        if f.delay:
            time.sleep(f.delay)
        if f.fault == "500" or (f.fault == "500-once" and f.hits == 1):
            _send(h, 500, b"<html>erreur</html>", "text/html")
        elif f.fault == "slow":
            time.sleep(self.stall_seconds)
            _send(h, 200, f.body, f.content_type)
        elif f.fault == "redirect-loop":
            h.send_response(302)
            h.send_header("Location", parts.path)
            h.send_header("Content-Length", "0")
            h.end_headers()
        elif f.fault in ("stall", "truncated"):
            h.send_response(200)
            h.send_header("Content-Type", f.content_type)
            h.send_header("Content-Length", str(len(f.body) + 1000))
            h.end_headers()
            h.wfile.write(f.body[: len(f.body) // 2])
            h.wfile.flush()
            if f.fault == "stall":
                time.sleep(self.stall_seconds)
            h.close_connection = True
        else:
            if f.etag and h.headers.get("If-None-Match") == f.etag:
                h.send_response(304)
                h.send_header("ETag", f.etag)
                h.send_header("Content-Length", "0")
                h.end_headers()
                return
            _send(h, 200, f.body, f.content_type, {"ETag": f.etag} if f.etag else None)

    def _action(self, action: str, p: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if action == "package_search":
            if self.search == "down":
                return 409, {"success": False, "error": {"__type": "Search Error",
                                                         "message": "Search Connection Error"}}
            items = sorted(self.datasets.values(), key=lambda d: d["id"])
            fq = str(p.get("fq") or "")
            if fq.startswith("metadata_modified:["):
                since = fq.split("[", 1)[1].split(" TO", 1)[0].rstrip("Z")
                items = [d for d in items if d["metadata_modified"] >= since]
            rows = min(int(p.get("rows", 10)), self.rows_cap)
            start = int(p.get("start", 0))
            if self.search == "repeat":
                return 200, {"success": True, "result": {"count": 10**6, "results": items[:rows]}}
            return 200, {"success": True, "result": {"count": len(items), "results": items[start:start + rows]}}
        if action == "package_list":
            return 200, {"success": True, "result": [d["name"] for d in self.datasets.values()]}
        if action == "package_show":
            key = p.get("id")
            for d in self.datasets.values():
                if key in (d["id"], d["name"]):
                    return 200, {"success": True, "result": d}
            return 404, {"success": False, "error": {"__type": "Not Found Error", "message": "Not found"}}
        return 400, {"success": False, "error": {"__type": "Validation Error", "message": action}}


def _send(h: BaseHTTPRequestHandler, status: int, body: bytes, ctype: str,
          headers: dict[str, str] | None = None) -> None:
    try:
        h.send_response(status)
        h.send_header("Content-Type", ctype)
        h.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.end_headers()
        if h.command != "HEAD":
            h.wfile.write(body)
    except (BrokenPipeError, ConnectionResetError):
        pass


# -- experience rows ------------------------------------------------------------------------------------------

def _template() -> tuple[list[str], list[str]]:
    text = (SCHEMAS_DIR / "experiences" / "exemple-valide.csv").read_text(encoding="utf-8")
    rows = list(csv.reader(io.StringIO(text)))
    return rows[0], rows[1]


def experience_id(n: int) -> str:
    """Distinct valid ids for one SIREN (the example's): year 2000-2026, number 001-999."""
    return f"217500016-{2000 + n // 999:04d}-{n % 999 + 1:03d}"


def experiences_csv(numbers: list[int], delimiter: str = ",", encoding: str = "utf-8",
                    change: dict[str, str] | None = None, broken: set[int] | None = None) -> bytes:
    """A CSV of the standard's main table with one experience per number; `broken` ones get a bad code."""
    header, row = _template()
    out = io.StringIO()
    w = csv.writer(out, delimiter=delimiter, lineterminator="\r\n")
    w.writerow(header)
    for n in numbers:
        r = list(row)
        r[header.index("id_experience")] = experience_id(n)
        r[header.index("intitule")] = f"Expérience n° {n} : capteurs d'air"
        for k, v in (change or {}).items():
            r[header.index(k)] = v
        if broken and n in broken:
            r[header.index("domaine")] = "domaine_inconnu"
        w.writerow(r)
    return out.getvalue().encode(encoding)
