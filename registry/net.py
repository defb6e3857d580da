"""Network reads, kept out of validation: a file fetched over HTTP(S), then validated like any upload.

    body, name = fetch_url("https://example.org/rex.csv", max_bytes=64 * 2**20)
    submission = validate_url("https://example.org/rex.csv", limits=Limits(max_errors=50))
"""

from __future__ import annotations

import urllib.error
import urllib.request
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from registry.validation.raw import DEFAULT_MAX_BYTES, Limits, SourceError, human_size
from registry.validation.report import Issue, Report

if TYPE_CHECKING:
    from registry.standard import Standard
    from registry.validation import KnownIds, Submission

MAX_REDIRECTS = 3
USER_AGENT = "registre-rex/0.1"
CONTENT_SUFFIXES = {"application/json": ".json", "text/csv": ".csv",
                    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": ".xlsx"}


class FetchError(SourceError):
    """The URL could not be fetched (refused scheme, network error, HTTP error, too large); the issue says
    why, in French and English, with the URL as its source."""


def _error(url: str, detail: str, code: str = "unreadable-file", **params: str) -> FetchError:
    return FetchError(Issue(code, source=url, params={"detail": detail, **params}))


def _http_only(url: str) -> None:
    if urlsplit(url).scheme.lower() not in ("http", "https"):
        raise _error(url, "seules les adresses http:// et https:// sont acceptées")


class _Redirects(urllib.request.HTTPRedirectHandler):
    """At most MAX_REDIRECTS redirects, to http(s) addresses only."""

    max_redirections = MAX_REDIRECTS

    def redirect_request(self, req: Any, fp: Any, code: int, msg: str, headers: Any,
                         newurl: str) -> urllib.request.Request | None:
        _http_only(newurl)
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _name(url: str, content_type: str) -> str:
    name = urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1] or "telechargement"
    if "." not in name:
        name += CONTENT_SUFFIXES.get(content_type, "")
    return name


def fetch_url(url: str, max_bytes: int, timeout: float = 30) -> tuple[bytes, str]:
    """The body of an http(s) URL and a file name for it (from the URL's path, else its content type).

    Raises FetchError (a SourceError: `exc.issue` is the report's issue) on a refused scheme, a network
    or HTTP error, more than MAX_REDIRECTS redirects, or a body over `max_bytes` (not read past it)."""
    _http_only(url)
    opener = urllib.request.build_opener(_Redirects())
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    try:
        with opener.open(request, timeout=timeout) as resp:
            length = resp.headers.get("Content-Length", "")
            if length.isdigit() and int(length) > max_bytes:
                raise _error(url, "", "file-too-large", size=human_size(int(length)), limit=human_size(max_bytes))
            data = resp.read(max_bytes + 1)
            final, ctype = resp.geturl(), resp.headers.get_content_type()
    except FetchError:
        raise
    except urllib.error.HTTPError as exc:
        if 300 <= exc.code < 400:
            raise _error(url, f"téléchargement impossible (plus de {MAX_REDIRECTS} redirections)") from None
        raise _error(url, f"téléchargement impossible (erreur HTTP {exc.code})") from None
    except (OSError, ValueError) as exc:  # URLError, timeouts, a malformed address
        reason = getattr(exc, "reason", exc)
        raise _error(url, f"téléchargement impossible ({reason})") from None
    if len(data) > max_bytes:
        raise _error(url, "", "file-too-large", size=f"plus de {human_size(max_bytes)}", limit=human_size(max_bytes))
    return data, _name(final or url, ctype)


def validate_url(url: str, std: Standard | None = None, known_ids: KnownIds | None = None,
                 limits: Limits | None = None, report: Report | None = None, keep_rows: bool = True) -> Submission:
    """Fetches `url` (`fetch_url`), then validates the body as an upload (`validate_bytes`)."""
    from registry.validation import Submission, validate_bytes

    limits = limits or Limits()
    report = report or Report()
    try:
        data, name = fetch_url(url, limits.max_bytes or DEFAULT_MAX_BYTES)
    except FetchError as exc:
        report.add(exc.issue)
        return Submission(report)
    if name.endswith("datapackage.json"):
        report.add(_error(url, "datapackage.json distant (téléchargez le dossier)", "unsupported-format").issue)
        return Submission(report)
    return validate_bytes(data, name, std, known_ids, limits, report=report, keep_rows=keep_rows)
