"""Real services for the test suite: a throwaway PostgreSQL cluster and the system Chromium.

Self-contained (stdlib + sqlalchemy + psycopg) so that conftest.py, benchmarks or a REPL can use it:

    server = start_postgres(tmp_dir)          # or reuses $REGISTRY_TEST_DATABASE_URL
    url = server.create_database("test_x")    # fresh empty database
    server.stop()

Everything listens on 127.0.0.1 only. As root, PostgreSQL runs as the ``postgres`` user (it refuses
to run as root). Missing binaries raise ``ServiceUnavailable``; the caller decides whether that is a
failure, unless ``REGISTRY_ALLOW_MISSING_SERVICES=1`` is set (local work only): see ``services_required()``.
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from sqlalchemy.engine import URL, make_url

__all__ = [
    "ALLOW_MISSING_ENV",
    "CHROMIUM_ARGS",
    "CHROMIUM_PATH",
    "DATABASE_URL_ENV",
    "PostgresServer",
    "ServiceUnavailable",
    "chromium_path",
    "find_postgres_bin",
    "free_port",
    "services_required",
    "start_postgres",
]

DATABASE_URL_ENV = "REGISTRY_TEST_DATABASE_URL"
ALLOW_MISSING_ENV = "REGISTRY_ALLOW_MISSING_SERVICES"
HOST = "127.0.0.1"
TEST_USER = "registry"
TEST_DB = "registry"
TEMPLATE_DB = "registry_template"
SUPERUSER = "postgres"
START_TIMEOUT = 60.0

CHROMIUM_PATH = "/usr/bin/chromium"
# What a headless Chromium needs here (root, no GPU, no network besides 127.0.0.1).
CHROMIUM_ARGS: tuple[str, ...] = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)

_DB_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
_SOCKET_PATH_MAX = 100  # sun_path is 108 bytes; keep room for "/.s.PGSQL.NNNNN"


class ServiceUnavailable(RuntimeError):
    """A required external program (PostgreSQL, Chromium) is not installed on this machine."""


def services_required() -> bool:
    """A missing service fails the run, unless REGISTRY_ALLOW_MISSING_SERVICES=1 says to skip (never in CI)."""
    return os.environ.get(ALLOW_MISSING_ENV, "").strip().lower() not in {"1", "true", "yes", "on"}


# --------------------------------------------------------------------------- Chromium


def chromium_path() -> str:
    """Path of Debian's Chromium; raises ServiceUnavailable if it is not installed."""
    if not (os.path.isfile(CHROMIUM_PATH) and os.access(CHROMIUM_PATH, os.X_OK)):
        raise ServiceUnavailable(
            f"Chromium not found at {CHROMIUM_PATH}: install it with `apt-get install -y chromium` "
            "(never `playwright install`)"
        )
    return CHROMIUM_PATH


# --------------------------------------------------------------------------- PostgreSQL


def find_postgres_bin() -> Path:
    """Highest-version /usr/lib/postgresql/*/bin holding initdb, like .ci and ckan-peer.sh."""
    candidates = [Path(p) for p in glob.glob("/usr/lib/postgresql/*/bin") if Path(p, "initdb").is_file()]

    def version(p: Path) -> tuple[int, ...]:
        return tuple(int(x) for x in re.findall(r"\d+", p.parent.name)) or (0,)

    if not candidates:
        raise ServiceUnavailable(
            "PostgreSQL server binaries not found in /usr/lib/postgresql/*/bin: "
            f"install them with `apt-get install -y postgresql`, or set {DATABASE_URL_ENV}"
        )
    return max(candidates, key=version)


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (racy: start_postgres retries on a clash)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def _is_root() -> bool:
    return os.geteuid() == 0


def _clean_env() -> dict[str, str]:
    # libpq PG* variables would redirect our tools elsewhere; fixed locale for initdb messages.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["LC_ALL"] = "C.UTF-8"
    return env


def _run(cmd: list[str], *, as_postgres: bool, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
    if as_postgres:
        cmd = [_runuser() or "runuser", "-u", SUPERUSER, "--", *cmd]
    # cwd="/": the postgres user may not be allowed into the caller's cwd
    env = _clean_env()
    return subprocess.run(cmd, cwd="/", env=env, capture_output=True, text=True, timeout=timeout, check=False)


def _check(proc: subprocess.CompletedProcess[str], what: str, log: Path | None = None) -> None:
    if proc.returncode == 0:
        return
    details = (proc.stdout + proc.stderr).strip()
    if log is not None and log.exists():
        with contextlib.suppress(OSError):
            tail = log.read_text(errors="replace").splitlines()[-30:]
            details += f"\n--- {log}\n" + "\n".join(tail)
    raise RuntimeError(f"{what} failed (exit {proc.returncode}):\n{details}")


def _postgres_can_write(path: Path) -> bool:
    """Whether the postgres user can reach and write `path` (pytest's tmp dirs are 0700 root)."""
    proc = _run(["test", "-w", str(path), "-a", "-x", str(path)], as_postgres=True, timeout=30)
    return proc.returncode == 0


def _connect(url: URL, *, dbname: str | None = None, timeout: int = 5) -> psycopg.Connection[Any]:
    """psycopg connection (autocommit) built from an SQLAlchemy URL."""
    params: dict[str, Any] = {k: v for k, v in url.query.items() if isinstance(v, str)}
    params.update(
        host=url.host or HOST,
        port=url.port or 5432,
        user=url.username,
        dbname=dbname or url.database,
        connect_timeout=timeout,
        autocommit=True,
    )
    if url.password is not None:
        params["password"] = str(url.password)
    return psycopg.connect(**{k: v for k, v in params.items() if v is not None})


class PostgresServer:
    """A running PostgreSQL: either our throwaway cluster or an external one (REGISTRY_TEST_DATABASE_URL).

    ``url`` is an SQLAlchemy URL string (``postgresql+psycopg://registry@127.0.0.1:PORT/registry``).
    """

    def __init__(
        self,
        url: str,
        *,
        admin_url: str,
        template: str | None = None,
        bin_dir: Path | None = None,
        data_dir: Path | None = None,
        log_file: Path | None = None,
        as_postgres: bool = False,
        cleanup_dir: Path | None = None,
        base: Path | None = None,
    ) -> None:
        self.url = url
        self.admin_url = admin_url
        self.template = template
        self.bin_dir = bin_dir
        self.data_dir = data_dir
        self.log_file = log_file
        self._as_postgres = as_postgres
        self._cleanup_dir = cleanup_dir
        self.base = base
        self._stopped = False

    @property
    def external(self) -> bool:
        """True when the server was not started by us (nothing to stop)."""
        return self.data_dir is None

    @property
    def port(self) -> int | None:
        return make_url(self.url).port

    @property
    def owner(self) -> str | None:
        return make_url(self.url).username

    def url_for(self, name: str) -> str:
        """SQLAlchemy URL string of database `name` on this server, as the test user."""
        return make_url(self.url).set(database=name).render_as_string(hide_password=False)

    def create_database(self, name: str) -> str:
        """Create a fresh, empty database `name` (dropped first if it exists); return its URL."""
        if not _DB_NAME_RE.match(name):
            raise ValueError(f"invalid database name {name!r} (letters, digits, _; max 63)")
        if name in {make_url(self.url).database, self.template, "postgres", "template0", "template1"}:
            raise ValueError(f"refusing to recreate database {name!r}")
        self._require_running()
        ident = sql.Identifier(name)
        query = sql.SQL("CREATE DATABASE {}").format(ident)
        if self.template:  # our cluster: clone the empty template, owned by the test user
            query = sql.SQL("CREATE DATABASE {} OWNER {} TEMPLATE {}").format(
                ident, sql.Identifier(self.owner or TEST_USER), sql.Identifier(self.template)
            )
        with _connect(make_url(self.admin_url), dbname="postgres") as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(ident))
            conn.execute(query)
        return self.url_for(name)

    def drop_database(self, name: str) -> None:
        """Drop database `name` if it exists (closing its connections)."""
        if not _DB_NAME_RE.match(name):
            raise ValueError(f"invalid database name {name!r}")
        self._require_running()
        with _connect(make_url(self.admin_url), dbname="postgres") as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))

    def is_running(self) -> bool:
        """True if the server accepts connections."""
        try:
            with _connect(make_url(self.admin_url), dbname="postgres", timeout=2) as conn:
                conn.execute("SELECT 1")
            return True
        except psycopg.OperationalError:
            return False

    def stop(self) -> None:
        """Stop our cluster and delete its data (idempotent; no-op for an external server)."""
        if self._stopped or self.external:
            self._stopped = True
            return
        self._stopped = True
        assert self.bin_dir is not None and self.data_dir is not None
        if (self.data_dir / "postmaster.pid").exists():
            pg_ctl = [str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), "-w", "-t", "30", "stop"]
            if _run([*pg_ctl, "-m", "fast"], as_postgres=self._as_postgres, timeout=60).returncode != 0:
                _run([*pg_ctl, "-m", "immediate"], as_postgres=self._as_postgres, timeout=60)
        # throwaway data; the log (next to it in `base`) is kept for post-mortems
        shutil.rmtree(self.data_dir, ignore_errors=True)
        if self._cleanup_dir is not None:
            if self.log_file is not None and self.base is not None:
                with contextlib.suppress(OSError):
                    shutil.copyfile(self.log_file, self.base / "postgres.log")
            shutil.rmtree(self._cleanup_dir, ignore_errors=True)

    def _require_running(self) -> None:
        if self._stopped and not self.external:
            raise RuntimeError("PostgreSQL server already stopped")

    def __enter__(self) -> PostgresServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = "external" if self.external else str(self.data_dir)
        return f"PostgresServer({make_url(self.url).render_as_string(hide_password=True)!r}, {where})"


def _external_server(raw_url: str) -> PostgresServer:
    """Wrap $REGISTRY_TEST_DATABASE_URL (its user needs CREATEDB for create_database)."""
    url = make_url(raw_url)
    if url.get_backend_name() != "postgresql":
        raise ValueError(f"{DATABASE_URL_ENV} must be a postgresql:// URL, got {url.drivername!r}")
    url = url.set(drivername="postgresql+psycopg")
    text = url.render_as_string(hide_password=False)
    server = PostgresServer(text, admin_url=text)
    if not server.is_running():
        raise RuntimeError(f"{DATABASE_URL_ENV} does not accept connections: {url!r}")
    return server


def _runuser() -> str | None:
    """util-linux's runuser, also where a root shell whose PATH lacks the sbin folders would not look."""
    return shutil.which("runuser") or shutil.which("runuser", path="/usr/sbin:/sbin")


def start_postgres(base: Path, port: int | None = None) -> PostgresServer:
    """Start a throwaway PostgreSQL cluster under `base` on 127.0.0.1 (or reuse the external one).

    Creates the ``registry`` trust user, its ``registry`` database and an empty ``registry_template``
    that ``create_database`` clones. Returns once the server accepts connections.
    """
    external = os.environ.get(DATABASE_URL_ENV, "").strip()
    if external:
        return _external_server(external)

    bin_dir = find_postgres_bin()
    as_postgres = _is_root()
    if as_postgres:
        if _runuser() is None:
            raise ServiceUnavailable("running as root needs `runuser` (util-linux) to start PostgreSQL")
        try:
            pw = pwd.getpwnam(SUPERUSER)
        except KeyError:
            raise ServiceUnavailable(
                f"running as root but there is no {SUPERUSER!r} user (apt-get install postgresql creates it)"
            ) from None

    base = Path(base).resolve()
    base.mkdir(parents=True, exist_ok=True)
    root = base
    cleanup_dir: Path | None = None
    if as_postgres:
        os.chown(base, pw.pw_uid, pw.pw_gid)
        if not _postgres_can_write(base):
            # `base` sits under a 0700 root-only dir (pytest's tmp): use a private dir in /tmp instead
            root = Path(tempfile.mkdtemp(prefix="registry-pg-", dir="/tmp"))
            os.chown(root, pw.pw_uid, pw.pw_gid)
            cleanup_dir = root

    data_dir = root / "pgdata"
    log_file = root / "postgres.log"
    if data_dir.exists():
        shutil.rmtree(data_dir)
    data_dir.mkdir(mode=0o700)
    log_file.touch()
    if as_postgres:
        os.chown(data_dir, pw.pw_uid, pw.pw_gid)
        os.chown(log_file, pw.pw_uid, pw.pw_gid)

    initdb = [
        str(bin_dir / "initdb"),
        "-D",
        str(data_dir),
        "-U",
        SUPERUSER,
        "-E",
        "UTF8",
        "--locale=C.UTF-8",
        "--auth=trust",
        "--no-sync",
    ]
    _check(_run(initdb, as_postgres=as_postgres), "initdb")

    # unix socket in the data folder unless the path is too long for sun_path (then TCP only)
    socket_dir = str(data_dir) if len(str(data_dir)) <= _SOCKET_PATH_MAX - 16 else ""
    settings = {
        "listen_addresses": HOST,
        "unix_socket_directories": socket_dir,
        "fsync": "off",
        "synchronous_commit": "off",
        "full_page_writes": "off",
        "max_connections": "100",
        "shared_buffers": "64MB",
        "max_wal_size": "1GB",
        "log_checkpoints": "off",
    }
    with (data_dir / "postgresql.conf").open("a") as conf:
        conf.write("\n# tests/services.py\n")
        conf.writelines(f"{k} = '{v}'\n" for k, v in settings.items())

    attempts = 1 if port is not None else 5
    for attempt in range(attempts):
        chosen = port if port is not None else free_port()
        start = [
            str(bin_dir / "pg_ctl"),
            "-D",
            str(data_dir),
            "-l",
            str(log_file),
            "-o",
            f"-p {chosen}",
            "-w",
            "-t",
            str(int(START_TIMEOUT)),
            "start",
        ]
        proc = _run(start, as_postgres=as_postgres, timeout=START_TIMEOUT + 30)
        if proc.returncode == 0:
            break
        # port taken between free_port() and bind (parallel workers): try another one
        in_use = "could not bind" in log_file.read_text(errors="replace")
        if attempt + 1 < attempts and in_use:
            continue
        _check(proc, f"pg_ctl start on {HOST}:{chosen}", log_file)

    admin = URL.create("postgresql+psycopg", username=SUPERUSER, host=HOST, port=chosen, database="postgres")
    user_url = URL.create("postgresql+psycopg", username=TEST_USER, host=HOST, port=chosen, database=TEST_DB)
    server = PostgresServer(
        user_url.render_as_string(hide_password=False),
        admin_url=admin.render_as_string(hide_password=False),
        template=TEMPLATE_DB,
        bin_dir=bin_dir,
        data_dir=data_dir,
        log_file=log_file,
        as_postgres=as_postgres,
        cleanup_dir=cleanup_dir,
        base=base,
    )
    atexit.register(server.stop)  # safety net if the caller forgets (or a worker exits early)
    try:
        _wait_ready(admin)
        with _connect(admin) as conn:
            user = sql.Identifier(TEST_USER)
            conn.execute(sql.SQL("CREATE ROLE {} LOGIN CREATEDB").format(user))
            conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(TEST_DB), user))
            conn.execute(
                sql.SQL("CREATE DATABASE {} OWNER {} TEMPLATE template0 ENCODING 'UTF8'").format(
                    sql.Identifier(TEMPLATE_DB), user
                )
            )
    except BaseException:
        server.stop()
        raise
    return server


def _wait_ready(admin: URL) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        try:
            with _connect(admin, timeout=2) as conn:
                conn.execute("SELECT 1")
            return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
