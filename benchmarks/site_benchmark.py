"""Site benchmark: N synthetic experiences (default 10,000) on SQLite + Whoosh, served by gunicorn with 2 workers,
and a bounded load generator on 127.0.0.1 (C concurrent clients, R requests) over a mix of search pages with facets
and record pages: requests per second, p50/p95 per kind; the search backend alone is timed in the same run.

    .venv/bin/python benchmarks/site_benchmark.py [--experiences 10000] [--clients 20] [--requests 2000]
        [--think 0 1.0] [--page-cache 512 0] [--home DIR]

Two load models, each run on a fresh gunicorn: closed loop (each client sends its next request as soon as the
last one is answered: `--think 0`, the worst case) and users who read a page before the next click (`--think 1.0`:
a random pause of 0.5-1.5 s). `--page-cache 0` turns off the search page's memory (every search is computed),
512 is the site's default. `--home DIR` keeps the instance (a later run with the same DIR reuses it). On
PostgreSQL: an instance built earlier, named by REGISTRY_DATABASE_URL and REGISTRY_SEARCH_BACKEND=postgresql.
The load generator runs on the same 2 cores as the server: its own CPU is part of the figures.
Aim: search page p95 < 100 ms at 20 concurrent clients.
"""

from __future__ import annotations

import argparse
import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from common import synthetic  # noqa: E402  (benchmarks/common.py)

from registry.actions import Caller, experiences  # noqa: E402
from registry.actions import index as search_index  # noqa: E402
from registry.config import load_settings  # noqa: E402
from registry.store import Registry  # noqa: E402

FACETS = [("statut", "abandonne"), ("statut", "termine"), ("resultat", "objectifs_non_atteints"),
          ("phase", "experimentation"), ("domaine", "eclairage_public"), ("resultats_en_retard", "oui")]
WORDS = ["capteurs", "stationnement", "éclairage", "eau", "données", "mobilité", "déchets", "air",
         "\"qualité de l'air\""]


def percentile(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, round(p / 100 * (len(s) - 1)))] if s else float("nan")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def urls(ids: list[str], n: int, seed: int) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        if rng.random() < 0.6:
            q = rng.choice(WORDS) if rng.random() < 0.7 else ""
            f = "&".join(f"{k}={v}" for k, v in rng.sample(FACETS, rng.randint(0, 2)))
            out.append(("search", f"/recherche?q={urllib.request.quote(q)}&{f}"))
        else:
            out.append(("record", f"/experiences/{rng.choice(ids)}"))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--experiences", type=int, default=10_000)
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--think", type=float, nargs="+", default=[0.0, 1.0], help="mean pause between requests (s)")
    ap.add_argument("--page-cache", type=int, nargs="+", default=[512, 0], help="REGISTRY_PAGE_CACHE values")
    ap.add_argument("--max-seconds", type=float, default=300.0, help="each load run stops after this")
    ap.add_argument("--home", type=Path, default=None, help="instance folder, reused when it holds a registry")
    ap.add_argument("--no-load", action="store_true", help="only the CPU breakdown, no gunicorn runs")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="site-bench-"))
    home = args.home or work / "instance"
    # an instance built earlier: its SQLite file, or the PostgreSQL database named by REGISTRY_DATABASE_URL
    reuse = (home / "registry.sqlite3").exists() or bool(os.environ.get("REGISTRY_DATABASE_URL"))
    reg = Registry(load_settings(home=str(home)))
    t0 = time.perf_counter()
    if not reuse:
        synthetic(work / "corpus", args.experiences, args.seed)
        reg.migrate()
        assert experiences.publish_file(reg, Caller.operator(), work / "corpus").accepted
    ids = [h.id for h in search_index.search(reg, Caller.anonymous(), search_index.request(limit=1000)).hits]
    total = search_index.search(reg, Caller.anonymous(), search_index.request(limit=1)).total
    print(f"corpus: {total} experiences " + (f"reused from {home}" if reuse else
                                             f"loaded and indexed in {time.perf_counter() - t0:.0f} s"))

    # the search backend alone, same requests as the pages
    plan = urls(ids, args.requests, args.seed)
    backend_ms = []
    for kind, url in plan:
        if kind != "search":
            continue
        from urllib.parse import parse_qs, urlsplit

        qs = parse_qs(urlsplit(url).query)
        filters = {k: tuple(v) for k, v in qs.items() if k != "q"}
        req = search_index.request(qs.get("q", [""])[0], filters, "pertinence" if qs.get("q") else "date_maj", 25, 0)
        t = time.perf_counter()
        search_index.search(reg, Caller.anonymous(), req)
        backend_ms.append((time.perf_counter() - t) * 1000)
    distinct = len({url for kind, url in plan if kind == "search"})
    print(f"plan: {len(plan)} requests, {len(backend_ms)} search pages ({distinct} distinct URLs), "
          f"{len(plan) - len(backend_ms)} record pages")
    print(f"search backend alone: {len(backend_ms)} searches, p50 {percentile(backend_ms, 50):.1f} ms, "
          f"p95 {percentile(backend_ms, 95):.1f} ms")
    reg.close()
    print("where the CPU goes (one process, Flask's test client):")
    cpu_breakdown(home, plan)
    if args.no_load:
        return

    for cache in args.page_cache:
        for think in args.think:
            load(home, plan, args.clients, think, cache, args.max_seconds, args.seed)


def cpu_breakdown(home: Path, plan: list[tuple[str, str]]) -> None:
    """Where a page's CPU goes, in this process (time.process_time, so other processes' load counts little): each
    page of the plan rendered once through Flask's test client with the pages' memory off, its time split between
    the search backend, the facets, the template (formatting filters apart) and `similar` for record pages, with
    the number of SQL statements."""
    os.environ.update({"REGISTRY_HOME": str(home), "REGISTRY_SECRET_KEY": "bench-" + "x" * 40})
    from sqlalchemy import event

    from web.app import create_app
    from web.pages import memory, record, search_page

    app = create_app()
    memory.PAGES.size = 0
    spent: dict[str, float] = {}
    queries = [0]
    event.listen(app.config["REGISTRY"].engine, "before_cursor_execute", lambda *_a, **_k: queries.__setitem__(
        0, queries[0] + 1))

    def timed(owner: object, name: str, key: str, table: dict[str, object] | None = None) -> None:
        inner = table[name] if table is not None else getattr(owner, name)

        def wrapper(*args: object, **kwargs: object) -> object:
            t = time.process_time()
            try:
                return inner(*args, **kwargs)  # type: ignore[operator]
            finally:
                spent[key] = spent.get(key, 0.0) + time.process_time() - t

        if table is not None:
            table[name] = wrapper
        else:
            setattr(owner, name, wrapper)

    timed(search_page.search_index, "search", "search backend")
    timed(search_page, "facet_groups", "facets")
    timed(search_page, "render_template", "template (search)")
    timed(record, "render_template", "template (record)")
    timed(record.search_index, "similar", "similar (record)")
    for name in ("date_text", "number_text", "amount_text", "percent_text"):
        timed(None, name, "formatting filters", app.jinja_env.filters)
    client = app.test_client()
    for _, url in plan[-10:]:
        client.get(url.replace("q=", "q=warm+"))
    for kind in ("search", "record"):
        urls = [u for k, u in plan if k == kind][:300]
        spent.clear()
        queries[0] = 0
        t = time.process_time()
        for url in urls:
            client.get(url)
        total = (time.process_time() - t) * 1000 / len(urls)
        parts = ", ".join(f"{k} {v * 1000 / len(urls):.1f}" for k, v in sorted(spent.items(), key=lambda kv: -kv[1]))
        print(f"  CPU of a {kind} page, computed (memory off), {len(urls)} pages: {total:.1f} ms = {parts} ms; "
              f"{queries[0] / len(urls):.1f} SQL statements a page")
    memory.PAGES.size = 512
    urls = [u for k, u in plan if k == "search"][:300]
    for url in urls:
        client.get(url)
    t = time.process_time()
    for url in urls:
        client.get(url)
    print(f"  CPU of a search page sent from memory: {(time.process_time() - t) * 1000 / len(urls):.2f} ms")


def server_cpu(master: int) -> float:
    """CPU seconds (user + system) used so far by gunicorn's workers (the children of `master`), from /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == master:  # ppid
            total += (int(fields[11]) + int(fields[12])) / tick  # utime + stime
    return total


def load(home: Path, plan: list[tuple[str, str]], clients: int, think: float, cache: int, max_seconds: float,
         seed: int) -> None:
    """One run on a fresh gunicorn (2 workers): `clients` threads share the plan; each pauses about `think` s
    (uniform in [think/2, 3 think/2]) between its requests; the run stops when the plan is done or after
    max_seconds."""
    port = free_port()
    env = {**os.environ, "REGISTRY_HOME": str(home), "REGISTRY_SECRET_KEY": "bench-" + "x" * 40,
           "REGISTRY_PAGE_CACHE": str(cache)}
    gunicorn = [sys.executable, "-m", "gunicorn", "-w", "2", "-b", f"127.0.0.1:{port}", "--log-level", "warning",
                "web.app:create_app()"]
    server = subprocess.Popen(gunicorn, cwd=ROOT, env=env)
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                urllib.request.urlopen(base + "/healthz", timeout=2).read()
                break
            except OSError:
                time.sleep(0.2)
        for _, url in plan[-40:]:  # warm both workers (imports, searchers), not the pages of the plan
            urllib.request.urlopen(base + url.replace("q=", "q=warm+"), timeout=30).read()
        timings: dict[str, list[float]] = {"search": [], "record": []}
        lock, cursor, errors = threading.Lock(), [0], [0]
        deadline = time.monotonic() + max_seconds

        def client(n: int) -> None:
            rng = random.Random(seed * 1000 + n)
            while time.monotonic() < deadline:
                with lock:
                    if cursor[0] >= len(plan):
                        return
                    kind, url = plan[cursor[0]]
                    cursor[0] += 1
                t = time.perf_counter()
                try:
                    urllib.request.urlopen(base + url, timeout=30).read()
                except OSError:
                    with lock:
                        errors[0] += 1
                    continue
                with lock:
                    timings[kind].append((time.perf_counter() - t) * 1000)
                if think:
                    time.sleep(rng.uniform(think / 2, think * 1.5))

        load_before = os.getloadavg()[0]
        cpu_before, client_before = server_cpu(server.pid), time.process_time()
        t = time.perf_counter()
        threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        elapsed = time.perf_counter() - t
        cpu, client_cpu = server_cpu(server.pid) - cpu_before, time.process_time() - client_before
        done = sum(len(v) for v in timings.values())
        model = "closed loop, no think time" if not think else f"think time {think:g} s (uniform {think / 2:g}-" \
                                                                f"{think * 1.5:g} s)"
        print(f"gunicorn 2 workers, page cache {cache}, {clients} clients, {model}: {done} requests in "
              f"{elapsed:.1f} s = {done / elapsed:.0f} requests/s, {errors[0]} errors; load average "
              f"{load_before:.2f} before, {os.getloadavg()[0]:.2f} after; server CPU {cpu:.1f} s = "
              f"{cpu * 1000 / max(done, 1):.1f} ms a request; load generator CPU {client_cpu:.1f} s = "
              f"{client_cpu * 1000 / max(done, 1):.1f} ms a request")
        for kind, values in timings.items():
            print(f"  {kind} pages: {len(values)}, p50 {percentile(values, 50):.0f} ms, "
                  f"p95 {percentile(values, 95):.0f} ms, max {max(values, default=float('nan')):.0f} ms")
    finally:
        server.terminate()
        server.wait(timeout=10)


if __name__ == "__main__":
    main()
