"""``spikeline view`` under load: 50 concurrent clients reading unit views on loopback get no error.

The short version of ``benchmarks/webapp_load.py`` (50 clients x 60 s, with p50/p95 latencies): 50 clients x 10 s
on the web app's tiny sorted session, then the server must still answer.
"""

from __future__ import annotations

import json
import urllib.request
from http.server import ThreadingHTTPServer

from spikeline.web import ViewerServer
from spikeline.web.load import run_load

STREAM = "block0_imec0.ap_recording1"


def test_fifty_clients_reading_unit_views_get_no_error(webapp_results_source):
    server = ViewerServer(webapp_results_source, port=0).start()  # only reads: the shared results need no copy
    try:
        assert isinstance(server.httpd, ThreadingHTTPServer) and server.httpd.daemon_threads
        base = f"http://127.0.0.1:{server.port}"
        with urllib.request.urlopen(f"{base}/api/stream?session=.&stream={STREAM}", timeout=60) as response:
            unit_ids = [str(u) for u in json.loads(response.read())["unit_ids"]]
        result = run_load("127.0.0.1", server.port, ".", STREAM, unit_ids, num_clients=50, duration_s=10.0)
        summary = result.summary()
        print(summary)
        assert result.errors == [], result.errors[:5]
        assert summary["unit"]["num_requests"] > 100
        with urllib.request.urlopen(f"{base}/api/dashboard", timeout=30) as response:
            assert response.status == 200
    finally:
        server.stop()
