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
The load generator (one Python thread driving non-blocking sockets, `http_load`) runs on the same 2 cores as the
server: each run prints its CPU a request, the cores used by the server, the generator and every other process
(/proc/stat), and how long the workers waited for a CPU (/proc/PID/schedstat). After each closed-loop run, Debian's
wrk (when installed; `--no-wrk` skips it) loads the same server with the same URLs as a cross-check.
Aim: search page p95 < 100 ms at 20 concurrent clients.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import selectors
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from common import synthetic  # noqa: E402  (benchmarks/common.py)

from registry.actions import Caller, experiences  # noqa: E402
from registry.actions import index as search_index  # noqa: E402
from registry.config import load_settings  # noqa: E402
from registry.shared_files import FOLDERS  # noqa: E402
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
    ap.add_argument("--no-wrk", action="store_true", help="no wrk cross-check after the closed-loop runs")
    ap.add_argument("--threads", type=int, nargs="+", default=[1],
                    help="threads per gunicorn worker (1: sync workers; more: gthread)")
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
    # as the background work of a production site would have
    t0, made = time.perf_counter(), 0
    while n := search_index.make_similar(reg, Caller.operator(), 60.0):
        made += n
    print(f"similar experiences stored: {made} list(s) made in {time.perf_counter() - t0:.1f} s")

    # the search backend alone, same requests as the pages
    plan = urls(ids, args.requests, args.seed)
    backend_ms, first_ms, seen = [], [], set()
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
        if url not in seen:  # its first view: nothing of it cached yet (counts are cached per query and version)
            seen.add(url)
            first_ms.append(backend_ms[-1])
    distinct = len({url for kind, url in plan if kind == "search"})
    print(f"plan: {len(plan)} requests, {len(backend_ms)} search pages ({distinct} distinct URLs), "
          f"{len(plan) - len(backend_ms)} record pages")
    print(f"search backend alone: {len(backend_ms)} searches, p50 {percentile(backend_ms, 50):.1f} ms, "
          f"p95 {percentile(backend_ms, 95):.1f} ms; the first view of each URL: "
          f"p50 {percentile(first_ms, 50):.1f} ms, p95 {percentile(first_ms, 95):.1f} ms")
    reg.close()
    print("where the CPU goes (one process, Flask's test client):")
    cpu_breakdown(home, plan)
    if args.no_load:
        return

    for threads in args.threads:
        for cache in args.page_cache:
            for think in args.think:
                load(home, plan, args.clients, think, cache, args.max_seconds, args.seed, not args.no_wrk, threads)


def cpu_breakdown(home: Path, plan: list[tuple[str, str]]) -> None:
    """Where a page's CPU goes, in this process (time.process_time, so other processes' load counts little): each
    page of the plan rendered once through Flask's test client with the pages' memory off, its time split between
    the search backend, the facets, the template (formatting filters apart) and `similar` for record pages, with
    the number of SQL statements."""
    os.environ.update({"REGISTRY_HOME": str(home), "REGISTRY_SECRET_KEY": "bench-" + "x" * 40})
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    from web.app import create_app
    from web.pages import memory, record, search_page

    app = create_app()
    memory.PAGES.size = 0
    spent: dict[str, float] = {}
    queries = [0]
    # every engine's (the search reads on pools of their own)
    event.listen(Engine, "before_cursor_execute", lambda *_a, **_k: queries.__setitem__(0, queries[0] + 1))

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


def workers(master: int) -> list[int]:
    """gunicorn's workers: the children of `master`, from /proc."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == master:
                out.append(int(stat.parent.name))
        except (OSError, ValueError, IndexError):
            continue
    return out


def cpu_sample(pids: list[int]) -> dict[str, float]:
    """CPU seconds so far: the machine's busy time (all cores, /proc/stat), and each pid's CPU (utime + stime)
    with its threads' time on a CPU and waiting for one (/proc/PID/task/*/schedstat: runnable, not running)."""
    tick = os.sysconf("SC_CLK_TCK")
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    out = {"busy": (sum(fields[:8]) - fields[3] - fields[4]) / tick}  # all but idle and iowait
    for pid in pids:
        try:
            f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            sched = [[int(x) for x in (t / "schedstat").read_text().split()[:2]]
                     for t in Path(f"/proc/{pid}/task").iterdir()]
        except (OSError, ValueError):
            continue
        out[f"cpu:{pid}"] = (int(f[11]) + int(f[12])) / tick
        out[f"run:{pid}"], out[f"wait:{pid}"] = sum(r for r, _ in sched) / 1e9, sum(w for _, w in sched) / 1e9
    return out


def http_load(port: int, plan: list[tuple[str, str]], clients: int, think: float, seed: int,
              deadline: float, answers: list[tuple[int, str, float]] | None = None
              ) -> tuple[dict[str, list[float]], int]:
    """The load generator: `clients` simulated users in one thread (selectors, non-blocking sockets), each with its
    own HTTP/1.1 connection, kept alive when the server allows it (gunicorn's sync workers close it after every
    answer: then a new one, whose connect time counts in the latency); each user takes the plan's next request
    when its last answer is complete, after a pause of about `think` s (uniform in [think/2, 3 think/2]).
    Answers: Content-Length, chunked, or read to the end. Returns the latencies (ms) per kind and the errors;
    `answers`, when given, gets (place in the plan, kind, latency) for each answer."""
    sel = selectors.DefaultSelector()
    timings: dict[str, list[float]] = {"search": [], "record": []}
    errors, cursor = 0, 0
    rngs = [random.Random(seed * 1000 + n) for n in range(clients)]
    waiting: list[tuple[float, int]] = [(0.0, n) for n in range(clients)]  # (when, user) users thinking
    conns: dict[int, socket.socket | None] = dict.fromkeys(range(clients))
    active = 0

    def start(user: int) -> bool:
        nonlocal cursor, active
        if cursor >= len(plan) or time.monotonic() >= deadline:
            return False
        kind, url = plan[cursor]
        cursor += 1
        sock = conns[user]
        if sock is None:
            sock = socket.socket()
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.connect_ex(("127.0.0.1", port))
            conns[user] = sock
        else:
            sel.unregister(sock)
        state = {"user": user, "kind": kind, "n": cursor - 1, "t": time.perf_counter(), "buf": bytearray(),
                 "sent": False,
                 "req": f"GET {url} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: text/html\r\n\r\n".encode()}
        sel.register(sock, selectors.EVENT_WRITE, state)
        active += 1
        return True

    def finish(sock: socket.socket, state: dict, ok: bool, keep: bool) -> None:
        nonlocal errors, active
        active -= 1
        user = state["user"]
        if ok:
            timings[state["kind"]].append((time.perf_counter() - state["t"]) * 1000)
            if answers is not None:
                answers.append((state["n"], state["kind"], timings[state["kind"]][-1]))
        else:
            errors += 1
        if keep:
            sel.modify(sock, selectors.EVENT_READ, {"user": user, "idle": True})
        else:
            sel.unregister(sock)
            sock.close()
            conns[user] = None
        pause = rngs[user].uniform(think / 2, think * 1.5) if think else 0.0
        waiting.append((time.monotonic() + pause, user))

    def complete(buf: bytearray) -> tuple[bool, bool, bool] | None:
        """(done, status ok, keep-alive) once the answer in buf is whole, else None."""
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            return None
        head = bytes(buf[:end]).decode("latin-1").lower().split("\r\n")
        ok = head[0].split()[1].startswith(("2", "3"))
        headers = dict(line.split(":", 1) for line in head[1:] if ":" in line)
        keep = headers.get("connection", "").strip() != "close"
        if "content-length" in headers:
            return (True, ok, keep) if len(buf) - end - 4 >= int(headers["content-length"]) else None
        if "chunked" in headers.get("transfer-encoding", ""):
            return (True, ok, keep) if buf.endswith(b"\r\n0\r\n\r\n") else None
        return None  # to the end of the connection

    while True:
        now = time.monotonic()
        ready = [w for w in waiting if w[0] <= now]
        for item in ready:
            waiting.remove(item)
            start(item[1])
        if not active and (cursor >= len(plan) or now >= deadline):
            break
        timeout = min((w[0] for w in waiting), default=now + 1.0) - now if not ready else 0
        for key, _ in sel.select(timeout=max(0.0, min(timeout, 1.0))):
            sock, state = key.fileobj, key.data
            if state.get("idle"):  # the server closed a kept-alive connection between two requests
                sel.unregister(sock)
                sock.close()
                conns[state["user"]] = None
                continue
            try:
                if not state["sent"]:
                    sent = sock.send(state["req"])
                    state["req"] = state["req"][sent:]
                    if not state["req"]:
                        state["sent"] = True
                        sel.modify(sock, selectors.EVENT_READ, state)
                    continue
                data = sock.recv(262144)
            except OSError:
                finish(sock, state, False, False)
                continue
            if data:
                state["buf"] += data
                done = complete(state["buf"])
                if done:
                    finish(sock, state, done[1], done[2])
            else:  # end of the connection: an answer without a length is whole
                head = state["buf"].find(b"\r\n\r\n")
                ok = head > 0 and bytes(state["buf"][9:10]) in (b"2", b"3") and complete(state["buf"]) is None
                finish(sock, state, ok, False)
    for sock in conns.values():
        if sock is not None:
            sock.close()
    sel.close()
    return timings, errors


WRK_SCRIPT = """
local made = 0
function setup(thread) thread:set("tid", made); made = made + 1 end
function init(args) nxt = tid + 1 end
function request()
  if nxt > #paths then nxt = nxt - #paths end
  local path = paths[nxt]
  nxt = nxt + 2
  return wrk.format("GET", path)
end
"""


def wrk_check(port: int, plan: list[tuple[str, str]], clients: int, seconds: float) -> str | None:
    """Debian's wrk (a compiled generator: 2 threads, keep-alive connections), closed loop, for `seconds` (the Python
    run's duration): the plan's requests in order, taken in turn by its two threads, from the start again if it gets
    through them (then pages come from memory more often than in the Python run: the line says how many it sent).
    A cross-check of the Python generator; None when wrk is not installed."""
    exe = shutil.which("wrk")
    if exe is None:
        return None
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as lua:
        paths = ",".join('"' + url.replace("\\", "\\\\").replace('"', '\\"') + '"' for _, url in plan)
        lua.write("local paths = {" + paths + "}\n" + WRK_SCRIPT)
    before = os.times()
    try:
        seconds = float(max(1, round(seconds)))
        done = subprocess.run([exe, "-t", "2", "-c", str(clients), "-d", f"{seconds:.0f}s", "--latency", "-s", lua.name,
                               f"http://127.0.0.1:{port}"], capture_output=True, text=True, timeout=seconds + 60)
        out = done.stdout + done.stderr
    finally:
        os.unlink(lua.name)
    after = os.times()
    cpu = (after.children_user - before.children_user) + (after.children_system - before.children_system)
    rate = next((line.split()[1] for line in out.splitlines() if line.startswith("Requests/sec")), "?")
    total = next((line.split()[0] for line in out.splitlines() if "requests in" in line), "?")
    lat = {line.split()[0]: line.split()[1] for line in out.splitlines() if line.strip()[:3] in ("50%", "90%", "99%")}
    per = f"{cpu * 1000 / int(total):.2f} ms a request" if total.isdigit() and int(total) else "?"
    return (f"  cross-check with wrk (2 threads, {clients} connections, {seconds:.0f} s, the plan's {len(plan)} "
            f"requests in order, all pages mixed): {total} requests, {rate} requests/s, p50 {lat.get('50%', '?')}, "
            f"p90 {lat.get('90%', '?')}, p99 {lat.get('99%', '?')}; "
            f"wrk CPU {cpu:.1f} s = {per}")


@contextlib.contextmanager
def gunicorn(home: Path, cache: int, plan: list[tuple[str, str]],
             threads: int = 1) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """A fresh gunicorn (2 workers, sync or with `threads` threads each; no page kept from an earlier run) on
    127.0.0.1, both workers warmed up (imports, searchers) on pages that are not in the plan; stopped on exit."""
    port = free_port()
    root = load_settings(home=str(home)).shared_path
    for shared in FOLDERS:  # the pages, counting passes and matches shared by an earlier run's processes
        shutil.rmtree(root / shared, ignore_errors=True)
    env = {**os.environ, "REGISTRY_HOME": str(home), "REGISTRY_SECRET_KEY": "bench-" + "x" * 40,
           "REGISTRY_PAGE_CACHE": str(cache)}
    command = [sys.executable, "-m", "gunicorn", "-w", "2", "--threads", str(threads), "-b", f"127.0.0.1:{port}",
               "--log-level", "warning", "web.app:create_app()"]
    server = subprocess.Popen(command, cwd=ROOT, env=env)
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                urllib.request.urlopen(base + "/healthz", timeout=2).read()
                break
            except OSError:
                time.sleep(0.2)
        for _, url in plan[-40:]:
            urllib.request.urlopen(base + url.replace("q=", "q=warm+"), timeout=30).read()
        yield server, port
    finally:
        server.terminate()
        server.wait(timeout=10)


def load(home: Path, plan: list[tuple[str, str]], clients: int, think: float, cache: int, max_seconds: float,
         seed: int, use_wrk: bool = True, threads: int = 1) -> None:
    """One run on a fresh gunicorn (2 workers): `clients` simulated users share the plan (`http_load`); each pauses
    about `think` s (uniform in [think/2, 3 think/2]) between its requests; the run stops when the plan is done or
    after max_seconds. In closed loop, wrk then runs on another fresh gunicorn as a cross-check, when installed."""
    with gunicorn(home, cache, plan, threads) as (server, port):
        pids = workers(server.pid)
        load_before = os.getloadavg()[0]
        before, client_before = cpu_sample([server.pid, *pids]), time.process_time()
        t = time.perf_counter()
        answers: list[tuple[int, str, float]] = []
        timings, errors = http_load(port, plan, clients, think, seed, time.monotonic() + max_seconds, answers)
        elapsed = time.perf_counter() - t
        after, client_cpu = cpu_sample([server.pid, *pids]), time.process_time() - client_before
        done = sum(len(v) for v in timings.values())

        def spent(key: str, among: list[int]) -> float:
            return sum(after.get(f"{key}:{p}", 0.0) - before.get(f"{key}:{p}", 0.0) for p in among)

        cpu, busy = spent("cpu", [server.pid, *pids]), after["busy"] - before["busy"]
        run, wait = spent("run", pids) / len(pids) / elapsed, spent("wait", pids) / len(pids) / elapsed
        others = max(0.0, busy - cpu - client_cpu)
        model = "closed loop, no think time" if not think else f"think time {think:g} s (uniform {think / 2:g}-" \
                                                                f"{think * 1.5:g} s)"
        kind = "sync" if threads == 1 else f"gthread, {threads} threads each"
        print(f"gunicorn 2 workers ({kind}), page cache {cache}, {clients} clients, {model}: {done} requests in "
              f"{elapsed:.1f} s = {done / elapsed:.0f} requests/s, {errors} errors; load average "
              f"{load_before:.2f} before, {os.getloadavg()[0]:.2f} after; server CPU {cpu:.1f} s = "
              f"{cpu * 1000 / max(done, 1):.1f} ms a request; load generator (Python, one thread) CPU "
              f"{client_cpu:.1f} s = {client_cpu * 1000 / max(done, 1):.2f} ms a request")
        print(f"  cores used: server {cpu / elapsed:.2f}, load generator {client_cpu / elapsed:.2f}, other processes "
              f"{others / elapsed:.2f} (of 2; /proc/stat); each worker on a CPU {run:.0%} of the time, runnable but "
              f"waiting for a CPU {wait:.0%}, idle or blocked {max(0.0, 1 - run - wait):.0%}")
        for kind, values in timings.items():
            print(f"  {kind} pages: {len(values)}, p50 {percentile(values, 50):.0f} ms, "
                  f"p95 {percentile(values, 95):.0f} ms, max {max(values, default=float('nan')):.0f} ms")
        quarters = [percentile([ms for n, kind, ms in answers if kind == "search" and n * 4 // len(plan) == q], 95)
                    for q in range(4)]
        first: dict[str, int] = {}
        for n, (kind, url) in enumerate(plan):
            if kind == "search":
                first.setdefault(url, n)
        firsts = [sum(1 for n in first.values() if n * 4 // len(plan) == q) for q in range(4)]
        print("  by quarter of the plan, search p95 " + ", ".join(f"{v:.0f}" for v in quarters) + " ms; search "
              "pages never asked before in the run (nothing of them kept yet) " + ", ".join(map(str, firsts)))
    if not think and use_wrk:
        if shutil.which("wrk") is None:
            print("  (wrk not installed: no cross-check; `apt-get install wrk` adds one)")
            return
        with gunicorn(home, cache, plan, threads) as (server, port):
            print(wrk_check(port, plan, clients, elapsed))


if __name__ == "__main__":
    main()
