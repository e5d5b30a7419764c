"""Load on ``spikeline view``: many concurrent clients reading unit views, with latencies and errors counted.

Used by ``benchmarks/webapp_load.py`` (50 clients for 60 s) and by the test suite (a shorter run). Stdlib only:
each client is a thread with its own keep-alive HTTP/1.1 connection, as a browser tab has, and loops over the
requests a unit view makes: the unit (``/api/unit``, most requests), the cross-correlogram of two units
(``/api/ccg``) and, now and then, the unit table (``/api/units``).
"""

from __future__ import annotations

import http.client
import random
import statistics
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import urlencode

#: Share of each request kind in a client's loop (the rest are unit views).
CCG_SHARE = 0.1
TABLE_SHARE = 0.05


@dataclass
class LoadResult:
    """What the clients saw.

    Attributes
    ----------
    num_clients : int
        Concurrent clients.
    duration_s : float
        How long they ran.
    latencies_ms : dict
        Request kind (``unit``, ``ccg``, ``units``) -> latency of every successful request, in ms.
    errors : list of str
        One line per failed request (a status other than 200, an answer that is not a whole JSON object, a broken
        connection, a timeout).
    """

    num_clients: int
    duration_s: float
    latencies_ms: dict[str, list[float]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    @property
    def num_requests(self) -> int:
        return sum(len(v) for v in self.latencies_ms.values()) + len(self.errors)

    def summary(self) -> dict:
        """Counts, requests per second, and p50 / p95 / max latency (ms) overall and per kind."""
        def stats(values: list[float]) -> dict:
            if not values:
                return {"num_requests": 0}
            ordered = sorted(values)
            return {"num_requests": len(values), "p50_ms": round(statistics.median(ordered), 1),
                    "p95_ms": round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], 1),
                    "max_ms": round(ordered[-1], 1)}

        every = [v for values in self.latencies_ms.values() for v in values]
        return {"num_clients": self.num_clients, "duration_s": round(self.duration_s, 1),
                "num_requests": self.num_requests, "num_errors": len(self.errors),
                "requests_per_s": round(self.num_requests / self.duration_s, 1) if self.duration_s else None,
                "all": stats(every), **{kind: stats(values) for kind, values in sorted(self.latencies_ms.items())},
                "first_errors": self.errors[:10]}


def _client(host: str, port: int, query: dict, unit_ids: list[str], stop_at: float, seed: int,
            result: LoadResult, lock: threading.Lock, timeout_s: float) -> None:
    rng = random.Random(seed)
    connection = http.client.HTTPConnection(host, port, timeout=timeout_s)
    latencies: dict[str, list[float]] = {}
    errors: list[str] = []
    while time.monotonic() < stop_at:
        draw = rng.random()
        if draw < TABLE_SHARE:
            kind, params = "units", dict(query)
        elif draw < TABLE_SHARE + CCG_SHARE and len(unit_ids) > 1:
            kind, params = "ccg", {**query, "units": ",".join(rng.sample(unit_ids, 2))}
        else:
            kind, params = "unit", {**query, "unit": rng.choice(unit_ids)}
        t0 = time.perf_counter()
        try:
            connection.request("GET", f"/api/{kind}?{urlencode(params)}")
            response = connection.getresponse()
            body = response.read()
            if response.status != 200:
                errors.append(f"{kind} {params}: HTTP {response.status} {body[:200]!r}")
            elif not body.startswith(b"{") or response.getheader("Content-Type") != "application/json":
                errors.append(f"{kind} {params}: not a JSON object: {body[:200]!r}")
            else:  # whole (http.client checks Content-Length); not decoded: the clients must not eat the CPU
                latencies.setdefault(kind, []).append((time.perf_counter() - t0) * 1000)
        except (OSError, http.client.HTTPException) as exc:
            errors.append(f"{kind} {params}: {type(exc).__name__}: {exc}")
            connection.close()
            connection = http.client.HTTPConnection(host, port, timeout=timeout_s)
    connection.close()
    with lock:
        for kind, values in latencies.items():
            result.latencies_ms.setdefault(kind, []).extend(values)
        result.errors.extend(errors)


def run_load(host: str, port: int, session: str, stream: str, unit_ids: list[str], num_clients: int = 50,
             duration_s: float = 60.0, timeout_s: float = 30.0, seed: int = 0) -> LoadResult:
    """Run ``num_clients`` concurrent clients against a running server for ``duration_s``.

    Parameters
    ----------
    host, port : str, int
        The server.
    session, stream : str
        Which stream's unit views to read (ids as the dashboard gives them).
    unit_ids : list of str
        Units to pick from (uniformly at random).
    num_clients : int, default: 50
        Concurrent clients, one thread and one keep-alive connection each.
    duration_s : float, default: 60.0
        How long every client keeps sending requests.
    timeout_s : float, default: 30.0
        A request slower than this counts as an error.
    seed : int, default: 0
        Seeds each client's choice of requests.

    Returns
    -------
    LoadResult
    """
    result = LoadResult(num_clients=num_clients, duration_s=duration_s)
    lock = threading.Lock()
    t0 = time.monotonic()
    stop_at = t0 + duration_s
    threads = [threading.Thread(target=_client, daemon=True,
                                args=(host, port, {"session": session, "stream": stream}, unit_ids, stop_at,
                                      seed * 1000 + i, result, lock, timeout_s))
               for i in range(num_clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(duration_s + 2 * timeout_s)
    result.duration_s = time.monotonic() - t0
    return result
