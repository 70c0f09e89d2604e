"""A folder served over HTTP on 127.0.0.1 for the length of a test: a data mirror, a package index."""

from __future__ import annotations

import functools
import http.server
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def serving(folder: Path, requests: list[str] | None = None,
            overrides: dict[str, bytes] | None = None) -> Iterator[str]:
    """Serve ``folder`` on a free port of 127.0.0.1 while the block runs and yield its URL; the paths asked
    for are appended to ``requests`` when given; a path in ``overrides`` (read at each request) answers
    200 with its bytes as an HTML page instead (a mirror's maintenance page)."""

    class Handler(http.server.SimpleHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server API)
            if overrides is not None and self.path in overrides:
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(overrides[self.path])))
                self.end_headers()
                self.wfile.write(overrides[self.path])
            else:
                super().do_GET()

        def log_message(self, *args):
            if requests is not None:
                requests.append(self.path)

    handler = functools.partial(Handler, directory=str(folder))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
