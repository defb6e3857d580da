"""The harvest HTTP client: timeouts, a size cap, files streamed to disk, retries with backoff on timeouts
and 5xx only, a bounded number of redirects, and the private-network rule checked before every connection
(the portal's API, each resource link, each redirect hop).

The rule: the host is resolved first; if any of its addresses is loopback, private, link-local, multicast,
reserved or unspecified, the request is refused before any connection is made, unless the source was
added with --allow-private-network. The address checked is *pinned*: the connection goes to that very
address (the HTTP library does not resolve the name a second time), so a DNS answer that changes between
the check and the connection ("DNS rebinding") cannot lead to a private address. The name is still the one
sent in the Host header and checked against the TLS certificate.
"""

from __future__ import annotations

import hashlib
import ipaddress
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

USER_AGENT = "registre-rex-moissonneur/0.1 (+https://github.com/territoires-connectes/registre-rex)"
Resolver = Callable[[str, int], list[str]]


def system_resolver(host: str, port: int) -> list[str]:
    return sorted({info[4][0] for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)})


class HarvestFetchError(Exception):
    """A download or API call that failed; `message` is in French, `retryable` says whether to try again."""

    def __init__(self, message: str, retryable: bool = False, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable
        self.status = status


class NetworkRefused(HarvestFetchError):
    pass


@dataclass(frozen=True)
class Options:
    """How patient and how generous a harvest is (tests make these small)."""

    connect_timeout: float = 10.0
    read_timeout: float = 30.0
    total_timeout: float = 600.0  # a whole download, even one that trickles
    max_bytes: int = 64 * 1024 * 1024  # per file
    max_api_bytes: int = 64 * 1024 * 1024  # per API answer
    retries: int = 2  # after the first attempt, on timeouts and 5xx only
    backoff: float = 1.0  # seconds, doubled at each retry
    max_redirects: int = 5
    page_size: int = 100  # package_search rows
    overlap_seconds: int = 3600  # incremental runs start this long before the last good run's start
    per_host: int = 4  # requests at once to one portal (datasets fetched in parallel)
    allow_private_network: bool = False
    allowed_addresses: frozenset[str] = frozenset()  # tests: these exact addresses pass the rule
    resolver: Resolver = system_resolver


def _blocked(ip: str) -> bool:
    addr = ipaddress.ip_address(ip.split("%", 1)[0])
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return bool(addr.is_loopback or addr.is_private or addr.is_link_local or addr.is_multicast or addr.is_reserved
                or addr.is_unspecified)


def check_url(url: str, options: Options) -> tuple[str, int, str] | None:
    """Refuses a non-http(s) URL, or (without allow_private_network) one whose host resolves to a private
    network address. Nothing is connected to. Returns (host, port, the address to connect to), None when
    private networks are allowed (then the system resolves the name when connecting)."""
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise HarvestFetchError(f"Adresse refusée : {url[:300]} (seules les adresses http:// et https:// sont "
                                "acceptées).")
    if options.allow_private_network:
        return None
    host = parts.hostname
    try:
        port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
    except ValueError:
        raise HarvestFetchError(f"Adresse refusée : {url[:300]} (port invalide).") from None
    try:
        ipaddress.ip_address(host)
        addresses = [host]
    except ValueError:
        try:
            addresses = options.resolver(host, port)
        except OSError as exc:
            raise HarvestFetchError(f"Nom de domaine introuvable : {host} ({exc}).", retryable=False) from None
    for ip in addresses:
        if ip not in options.allowed_addresses and _blocked(ip):
            raise NetworkRefused(
                f"Adresse refusée : {host} désigne {ip}, une adresse de réseau privé ou local. Le moissonnage "
                "ne s'y connecte pas, sauf si la source a été ajoutée avec --allow-private-network.")
    if not addresses:
        raise HarvestFetchError(f"Nom de domaine introuvable : {host}.")
    return host, port, addresses[0]


PinLookup = Callable[[str, int], str | None]


def _pinned_adapter(lookup: PinLookup, pool_size: int) -> HTTPAdapter:
    """An adapter whose connections open their socket to the pinned address of their host (lookup), never
    to a second DNS answer; the Host header, SNI and certificate check keep the name."""

    def open_socket(conn: HTTPConnection, connect: Callable[[], Any]) -> Any:
        address = lookup(conn.host, conn.port or 0)
        if address is None:
            return connect()
        saved = conn._dns_host  # type: ignore[attr-defined]
        conn._dns_host = address  # type: ignore[attr-defined]
        try:
            return connect()
        finally:
            conn._dns_host = saved  # type: ignore[attr-defined]

    class Plain(HTTPConnection):
        def _new_conn(self) -> Any:
            return open_socket(self, super()._new_conn)

    class Tls(HTTPSConnection):
        def _new_conn(self) -> Any:
            return open_socket(self, super()._new_conn)

    class PlainPool(HTTPConnectionPool):
        ConnectionCls = Plain

    class TlsPool(HTTPSConnectionPool):
        ConnectionCls = Tls

    class Adapter(HTTPAdapter):
        def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
            super().init_poolmanager(*args, **kwargs)
            self.poolmanager.pool_classes_by_scheme = {"http": PlainPool, "https": TlsPool}

    return Adapter(pool_connections=8, pool_maxsize=pool_size)


class GuardedSession(requests.Session):
    """A requests session that applies the network rule, timeouts and a size cap to every request it sends,
    redirects included (ckanapi's RemoteCKAN is given one). Each connection goes to the address the rule
    checked (pinned per host and port); a connection to a host that was not checked is refused."""

    def __init__(self, options: Options) -> None:
        super().__init__()
        self.options = options
        self.max_redirects = options.max_redirects
        self.headers["User-Agent"] = USER_AGENT
        self.trust_env = False  # no proxy from the environment: the rule is checked on the real host
        self.pins: dict[tuple[str, int], str] = {}
        adapter = _pinned_adapter(self._pinned, max(4, options.per_host))
        self.mount("http://", adapter)
        self.mount("https://", adapter)

    def _pinned(self, host: str, port: int) -> str | None:
        if self.options.allow_private_network:
            return None
        address = self.pins.get((host.strip("[]").lower(), port))
        if address is None:
            raise NetworkRefused(f"Adresse refusée : {host} n'a pas été vérifiée avant la connexion.")
        return address

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        pin = check_url(request.url or "", self.options)
        if pin is not None:
            self.pins[(pin[0].lower(), pin[1])] = pin[2]
        kwargs["timeout"] = (self.options.connect_timeout, self.options.read_timeout)
        stream = kwargs.pop("stream", False)
        response = super().send(request, stream=True, **kwargs)
        if not stream:  # an API answer: read it here, with the size cap and the total deadline
            if response.status_code >= 500:
                response.close()
                raise HarvestFetchError(f"Le portail a répondu par une erreur {response.status_code} "
                                        f"({(request.url or '')[:300]}).", retryable=True,
                                        status=response.status_code)
            _read_capped(response, self.options.max_api_bytes, self.options.total_timeout)
        return response


def _read_capped(response: requests.Response, cap: int, deadline: float) -> None:
    start = time.monotonic()
    chunks, size = [], 0
    try:
        for chunk in response.iter_content(65536):
            size += len(chunk)
            if size > cap:
                raise HarvestFetchError(f"Réponse trop grande de {response.url[:300]} (plus de {cap // 1024} Ko).")
            if time.monotonic() - start > deadline:
                raise HarvestFetchError(f"Réponse trop lente de {response.url[:300]} (plus de {deadline:.0f} s).",
                                        retryable=True)
            chunks.append(chunk)
    except requests.RequestException as exc:
        raise _translate(exc, response.url) from None
    finally:
        response.close()
    response._content = b"".join(chunks)  # type: ignore[attr-defined]
    response._content_consumed = True  # type: ignore[attr-defined]


def _translate(exc: Exception, url: str) -> HarvestFetchError:
    if isinstance(exc, HarvestFetchError):
        return exc
    short = url[:300]
    if isinstance(exc, requests.TooManyRedirects):
        return HarvestFetchError(f"Trop de redirections depuis {short} (boucle de redirections ?).")
    if isinstance(exc, requests.ConnectTimeout):
        return HarvestFetchError(f"Délai de connexion dépassé pour {short}.", retryable=True)
    if isinstance(exc, requests.Timeout):
        return HarvestFetchError(f"Délai de réponse dépassé pour {short} (le serveur ne répond plus).",
                                 retryable=True)
    if isinstance(exc, requests.exceptions.ChunkedEncodingError | requests.exceptions.ContentDecodingError):
        return HarvestFetchError(f"Téléchargement incomplet depuis {short} (connexion coupée avant la fin).")
    if isinstance(exc, requests.ConnectionError):
        cause = exc.args[0] if exc.args else exc
        if "timed out" in str(cause).lower():
            return HarvestFetchError(f"Délai de réponse dépassé pour {short}.", retryable=True)
        if "IncompleteRead" in str(cause) or "incomplete" in str(cause).lower():
            return HarvestFetchError(f"Téléchargement incomplet depuis {short} (connexion coupée avant la fin).")
        return HarvestFetchError(f"Connexion impossible à {short}.")
    return HarvestFetchError(f"Téléchargement impossible depuis {short} ({type(exc).__name__}).")


def with_retries(options: Options, fn: Callable[[], Any]) -> Any:
    """Calls fn, again after a growing pause when it fails with a timeout or a 5xx, at most options.retries
    more times."""
    for attempt in range(options.retries + 1):
        try:
            return fn()
        except HarvestFetchError as exc:
            if not exc.retryable or attempt == options.retries:
                raise
        except requests.RequestException as exc:
            err = _translate(exc, getattr(exc.request, "url", "") or "")
            if not err.retryable or attempt == options.retries:
                raise err from None
        time.sleep(options.backoff * (2 ** attempt))
    raise AssertionError("unreachable")


@dataclass(frozen=True)
class Download:
    path: Path
    url: str  # after redirects
    size: int
    sha256: str
    content_type: str
    etag: str | None
    last_modified: str | None
    not_modified: bool = False


def download(session: GuardedSession, url: str, dest: Path, etag: str | None = None,
             last_modified: str | None = None) -> Download:
    """Streams url to dest (with retries); redirects followed by hand, each hop checked by the rule."""
    options = session.options

    def attempt() -> Download:
        current = url
        headers = {}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        for _hop in range(options.max_redirects + 1):
            try:
                resp = session.get(current, stream=True, allow_redirects=False, headers=headers)
            except requests.RequestException as exc:
                raise _translate(exc, current) from None
            if resp.is_redirect:
                location = resp.headers.get("Location", "")
                resp.close()
                current = urljoin(current, location)
                continue
            return _save(resp, current, dest, options)
        raise HarvestFetchError(f"Trop de redirections depuis {url[:300]} (plus de {options.max_redirects} ; "
                                "boucle de redirections ?).")

    return with_retries(options, attempt)


def _save(resp: requests.Response, url: str, dest: Path, options: Options) -> Download:
    try:
        if resp.status_code == 304:
            return Download(dest, url, 0, "", "", resp.headers.get("ETag"), resp.headers.get("Last-Modified"), True)
        if resp.status_code >= 500:
            raise HarvestFetchError(f"Le serveur a répondu par une erreur {resp.status_code} pour {url[:300]}.",
                                    retryable=True, status=resp.status_code)
        if resp.status_code != 200:
            raise HarvestFetchError(f"Le serveur a répondu {resp.status_code} pour {url[:300]} (fichier introuvable "
                                    "ou accès refusé).", status=resp.status_code)
        length = resp.headers.get("Content-Length", "")
        if length.isdigit() and int(length) > options.max_bytes:
            raise HarvestFetchError(f"Fichier trop volumineux : {url[:300]} annonce {int(length) // 1024} Ko, "
                                    f"la limite est de {options.max_bytes // 1024} Ko.")
        digest = hashlib.sha256()
        size = 0
        start = time.monotonic()
        dest.parent.mkdir(parents=True, exist_ok=True)
        with dest.open("wb") as out:
            try:
                for chunk in resp.iter_content(65536):
                    size += len(chunk)
                    if size > options.max_bytes:
                        raise HarvestFetchError(f"Fichier trop volumineux : {url[:300]} dépasse la limite de "
                                                f"{options.max_bytes // 1024} Ko.")
                    if time.monotonic() - start > options.total_timeout:
                        raise HarvestFetchError(f"Téléchargement trop lent : {url[:300]} (plus de "
                                                f"{options.total_timeout:.0f} s).", retryable=True)
                    digest.update(chunk)
                    out.write(chunk)
            except requests.RequestException as exc:
                raise _translate(exc, url) from None
        return Download(dest, url, size, digest.hexdigest(), resp.headers.get("Content-Type", ""),
                        resp.headers.get("ETag"), resp.headers.get("Last-Modified"))
    finally:
        resp.close()
