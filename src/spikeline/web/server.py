"""HTTP server of ``spikeline view``: static assets from the package, JSON endpoints over one RESULTS_DIR.

Stdlib only (:class:`http.server.ThreadingHTTPServer`). The app state (loaded streams, curation locks) lives
in one :class:`ViewerApp` per server; there is no module-level mutable state.

Security: binds loopback by default. Any other host needs an access token, printed in the URL at start and
checked on every request (``?token=``, the ``X-Spikeline-Token`` header, or the cookie the first page load
sets); a missing or wrong token is 403. Session, stream and unit ids are looked up, never used as paths; the
only path parameter (``/api/file?path=``) is resolved and must stay inside RESULTS_DIR.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import mimetypes
import secrets
import threading
import traceback
from http.cookies import SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import Any, Callable
from urllib.parse import parse_qs, urlsplit

from .curation import MAX_CURATION_BYTES, MAX_CURATOR_CHARS, ManualCuration, default_curator
from .data import ResultsIndex, WebError

TOKEN_COOKIE = "spikeline_token"
TOKEN_HEADER = "X-Spikeline-Token"


def is_loopback(host: str) -> bool:
    """Whether ``host`` names the loopback interface (``localhost``, 127.0.0.0/8, ``::1``)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class ViewerApp:
    """Routes requests to the results index and the curation files of one RESULTS_DIR.

    Parameters
    ----------
    results_dir : Path
        RESULTS_DIR.
    token : str | None
        Access token every request must carry; ``None`` on loopback.
    curator : str | None
        Name recorded with every saved curation state and apply; default: the OS user.
    """

    def __init__(self, results_dir: Path, token: str | None = None, curator: str | None = None):
        self.index = ResultsIndex(results_dir)
        self.token = token
        self.curator = (curator or default_curator())[:MAX_CURATOR_CHARS]
        self.static_dir = Path(str(resources.files("spikeline.web") / "static")).resolve()
        self._curations: dict[tuple[str, str], ManualCuration] = {}
        self._lock = threading.Lock()
        self.get_routes: dict[str, Callable[[dict], Any]] = {
            "/api/dashboard": lambda q: self.index.dashboard(),
            "/api/stream": lambda q: {**self._stream(q).info(),
                                      "figures": self.index.visualization_files(_one(q, "session"),
                                                                                _one(q, "stream"))},
            "/api/units": lambda q: self._stream(q).unit_table(),
            "/api/unit": lambda q: self._stream(q).unit_json(_one(q, "unit")),
            "/api/ccg": lambda q: self._stream(q).ccg(_list(q, "units")),
            "/api/drift": lambda q: self._stream(q).drift(),
            "/api/traces": lambda q: self._stream(q).traces(_one(q, "kind"), _number(q, "start_s"),
                                                            _number(q, "duration_s"), _list(q, "units")),
            "/api/curation": lambda q: self._curation(q).state(),
        }
        self.post_routes: dict[str, Callable[[dict, Any], Any]] = {
            "/api/curation": lambda q, body: self._curation(q).save(body, change=q.get("change", [None])[0]),
            "/api/curation/split": lambda q, body: self._curation(q).split_at(_one(q, "unit"), _number(q, "at_s")),
            "/api/curation/undo": lambda q, body: self._curation(q).undo(),
            "/api/apply": lambda q, body: self._curation(q).apply(),
        }

    def _stream(self, query: dict):
        return self.index.stream(_one(query, "session"), _one(query, "stream"))

    def _curation(self, query: dict) -> ManualCuration:
        stream = self._stream(query)
        key = (_one(query, "session"), _one(query, "stream"))
        with self._lock:
            if key not in self._curations:
                self._curations[key] = ManualCuration(stream, curator=self.curator)
            return self._curations[key]

    def authorized(self, query: dict, headers, cookie_header: str | None) -> bool:
        """Whether a request carries the token (always true without one)."""
        if self.token is None:
            return True
        offered = [query.get("token", [""])[0], headers.get(TOKEN_HEADER, "")]
        if cookie_header:
            cookie = SimpleCookie()
            try:
                cookie.load(cookie_header)
            except Exception:
                cookie = SimpleCookie()
            if TOKEN_COOKIE in cookie:
                offered.append(cookie[TOKEN_COOKIE].value)
        return any(hmac.compare_digest(value.encode(), self.token.encode()) for value in offered if value)

    def static_file(self, url_path: str) -> Path:
        """A file of the packaged assets; 404 for anything else."""
        relative = "index.html" if url_path in ("/", "/index.html") else url_path.removeprefix("/static/")
        path = (self.static_dir / relative).resolve()
        if ".." in relative.split("/") or not path.is_relative_to(self.static_dir) or not path.is_file():
            raise WebError(404, f"no asset {url_path!r}")
        return path


def _one(query: dict, name: str) -> str:
    values = query.get(name)
    if not values or values[0] == "":
        raise WebError(400, f"missing parameter {name!r}")
    return values[0]


def _list(query: dict, name: str) -> list[str]:
    values = query.get(name, [""])[0]
    return [v for v in values.split(",") if v]


def _number(query: dict, name: str) -> float:
    try:
        return float(_one(query, name))
    except ValueError:
        raise WebError(400, f"parameter {name!r} must be a number") from None


def make_handler(app: ViewerApp, loopback_only: bool) -> type[BaseHTTPRequestHandler]:
    """A request handler class bound to ``app``.

    Parameters
    ----------
    app : ViewerApp
        The routes and state.
    loopback_only : bool
        Refuse requests whose ``Host`` header is not a loopback name (DNS-rebinding guard).

    Returns
    -------
    type
        A :class:`BaseHTTPRequestHandler` subclass.
    """

    class Handler(BaseHTTPRequestHandler):
        server_version = "spikeline-view"
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args) -> None:  # keep the console for the URL and errors
            pass

        def _send(self, status: int, body: bytes, content_type: str, extra: dict | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.send_header("X-Content-Type-Options", "nosniff")
            for key, value in (extra or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(body)

        def _json(self, status: int, payload: Any, extra: dict | None = None) -> None:
            """Send ``payload`` as JSON (``bytes`` are sent as they are: JSON encoded and cached by the route)."""
            body = payload if isinstance(payload, bytes) else json.dumps(payload, allow_nan=False, default=str).encode()
            self._send(status, body, "application/json", extra)

        def _error(self, status: int, message: str) -> None:
            self._json(status, {"error": message, "status": status})

        def _check(self) -> tuple[str, dict] | None:
            parts = urlsplit(self.path)
            query = parse_qs(parts.query, keep_blank_values=True)
            host = (self.headers.get("Host") or "").rsplit(":", 1)[0].strip("[]")
            if loopback_only and host and not is_loopback(host):
                self._error(403, f"host {host!r} refused: this server answers on loopback only")
                return None
            if not app.authorized(query, self.headers, self.headers.get("Cookie")):
                self._error(403, "missing or wrong access token (use the URL printed at start)")
                return None
            return parts.path, query

        def _dispatch(self, work: Callable[[], None]) -> None:
            try:
                work()
            except WebError as exc:
                self._error(exc.status, exc.message)
            except (BrokenPipeError, ConnectionResetError):
                pass
            except Exception as exc:  # a bug must answer, not hang the browser
                traceback.print_exc()
                self._error(500, f"{type(exc).__name__}: {exc}")

        def do_GET(self) -> None:
            checked = self._check()
            if checked is None:
                return
            path, query = checked

            def work():
                if path in app.get_routes:
                    return self._json(200, app.get_routes[path](query))
                if path == "/api/curation/download":
                    state = app._curation(query).state()
                    name = f"manual_curation_{_one(query, 'stream')}.json"
                    body = json.dumps(state["curation"], indent=2).encode()
                    return self._send(200, body, "application/json",
                                      {"Content-Disposition": f'attachment; filename="{name}"'})
                if path == "/api/file":
                    file = app.index.resolve_file(_one(query, "path"))
                    kind = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
                    return self._send(200, file.read_bytes(), kind)
                if path.startswith("/api/"):
                    raise WebError(404, f"unknown endpoint {path!r}")
                file = app.static_file(path)
                kind = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
                extra = {}
                if app.token is not None and query.get("token"):
                    extra["Set-Cookie"] = f"{TOKEN_COOKIE}={app.token}; HttpOnly; SameSite=Strict; Path=/"
                return self._send(200, file.read_bytes(), kind, extra)

            self._dispatch(work)

        def do_POST(self) -> None:
            checked = self._check()
            if checked is None:
                return
            path, query = checked

            def work():
                if path not in app.post_routes:
                    raise WebError(404, f"unknown endpoint {path!r}")
                try:
                    length = int(self.headers.get("Content-Length") or 0)
                except ValueError:
                    raise WebError(400, "bad Content-Length") from None
                if length > MAX_CURATION_BYTES:
                    self.close_connection = True
                    if length <= 4 * MAX_CURATION_BYTES:  # drain it so the client reads the answer
                        self.rfile.read(length)
                    raise WebError(413, f"payload over {MAX_CURATION_BYTES} bytes")
                raw = self.rfile.read(length) if length else b""
                body = None
                if raw:
                    try:
                        body = json.loads(raw)
                    except ValueError:
                        raise WebError(400, "body is not valid JSON") from None
                return self._json(200, app.post_routes[path](query, body))

            self._dispatch(work)

    return Handler


class ViewerServer:
    """A running (or ready to run) ``spikeline view`` server.

    Parameters
    ----------
    results_dir : Path
        RESULTS_DIR.
    host : str
        Interface to bind; anything but loopback gets a random access token.
    port : int
        TCP port; 0 picks a free one.
    require_token : bool
        Ask for a token on loopback too (always on for other hosts).
    curator : str | None
        Who curates (recorded in the curation history and apply records); default: the OS user.
    """

    def __init__(self, results_dir: Path, host: str = "127.0.0.1", port: int = 8765, require_token: bool = False,
                 curator: str | None = None):
        loopback = is_loopback(host)
        token = secrets.token_urlsafe(24) if (require_token or not loopback) else None
        self.app = ViewerApp(results_dir, token=token, curator=curator)
        self.httpd = ThreadingHTTPServer((host, port), make_handler(self.app, loopback_only=loopback))
        self.httpd.daemon_threads = True
        self.host = host
        self.port = int(self.httpd.server_address[1])
        self._thread: threading.Thread | None = None

    @property
    def token(self) -> str | None:
        return self.app.token

    @property
    def url(self) -> str:
        """The URL to open (with the token when there is one)."""
        shown = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        if ":" in shown:
            shown = f"[{shown}]"
        return f"http://{shown}:{self.port}/" + (f"?token={self.token}" if self.token else "")

    def serve_forever(self) -> None:
        self.httpd.serve_forever()

    def start(self) -> "ViewerServer":
        """Serve from a background thread (tests, benchmarks); returns ``self``."""
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
