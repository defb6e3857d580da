"""Rate limits counted in the registry's database: the same allowance whichever server process answers."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from registry.actions import ratelimits
from registry.store import Registry

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def two_servers(registry: Registry, tmp_path: Path) -> Iterator[list[str]]:
    """Two gunicorn servers (one worker each) on the same registry, as two machines behind a load balancer."""
    env = {**os.environ, "REGISTRY_HOME": str(registry.settings.home),
           "REGISTRY_DATABASE_URL": registry.settings.database_url, "REGISTRY_SECRET_KEY": "t" * 40,
           "REGISTRY_API_WRITE_RATE_LIMIT": "4 per minute"}
    servers, bases = [], []
    try:
        for _ in range(2):
            port = free_port()
            servers.append(subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "-w", "1", "-b", f"127.0.0.1:{port}", "--log-level", "warning",
                 "web.app:create_app()"], cwd=ROOT, env=env))
            bases.append(f"http://127.0.0.1:{port}")
        for base in bases:
            deadline = time.monotonic() + 60
            while True:
                try:
                    urllib.request.urlopen(base + "/healthz", timeout=5).read()
                    break
                except OSError:
                    assert time.monotonic() < deadline, f"{base} never answered"
                    time.sleep(0.2)
        yield bases
    finally:
        for server in servers:
            server.terminate()
            server.wait(timeout=20)


def status(url: str, token: str) -> int:
    req = urllib.request.Request(url, data=b'{"motif": "essai"}', method="POST",
                                 headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def test_the_write_allowance_is_shared_by_every_server_process(two_servers: list[str]) -> None:
    """4 writes a minute for a token: 4 answered (here refused as a bad token), then 429, alternating servers.
    Each process counting its own hits (Flask-Limiter's memory storage) let 8 through."""
    path = "/api/v1/experiences/217500016-2023-001/withdraw"
    codes = [status(two_servers[i % 2] + path, "jeton-inconnu") for i in range(8)]
    assert codes == [401] * 4 + [429] * 4
    assert status(two_servers[0] + path, "un-autre-jeton") == 401  # another token has its own allowance


def test_counters_are_windows_that_expire(registry: Registry, monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1_000_000.0]
    monkeypatch.setattr(ratelimits.time, "time", lambda: now[0])
    key = "LIMITER/a:127.0.0.1/'; DROP TABLE rate_limits; --/" + "é" * 2000  # any key is only a value
    assert [ratelimits.hit(registry, key, 60) for _ in range(3)] == [1, 2, 3]
    assert ratelimits.count(registry, key) == 3 and ratelimits.expiry(registry, key) == now[0] + 60
    assert ratelimits.hit(registry, "other", 60, amount=5) == 5
    now[0] += 61  # the window is over: the next hit starts a new one
    assert ratelimits.count(registry, key) == 0 and ratelimits.expiry(registry, key) == now[0]
    assert ratelimits.hit(registry, key, 60) == 1 and ratelimits.expiry(registry, key) == now[0] + 60
    assert ratelimits.clear(registry, key) == 1 and ratelimits.count(registry, key) == 0
    monkeypatch.setattr(ratelimits, "SWEEP_EVERY", 1)
    now[0] += 61
    ratelimits.hit(registry, "third", 60)  # sweeps the expired counters
    with registry.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT key FROM rate_limits").scalars().all() == ["third"]


def test_concurrent_hits_are_each_counted_once(registry: Registry) -> None:
    """Four threads hitting one key at once (as four workers would): every hit counted, no count given twice."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=4) as pool:
        counts = list(pool.map(lambda _: ratelimits.hit(registry, "concurrent", 60), range(100)))
    assert sorted(counts) == list(range(1, 101)) and ratelimits.count(registry, "concurrent") == 100
