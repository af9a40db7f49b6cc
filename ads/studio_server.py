"""The studio's HTTP layer: routes the page's requests to a `studio.Studio`, on the
standard library's threaded server, with limits so a bad or slow client holds up no one
(the JSON API is listed in studio.py)."""

import json
import os
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlparse

from ads import creative, sources, studio_page

MAX_BODY = 8 * 1024 * 1024
REQUEST_TIMEOUT = 4  # seconds a client may take to send its request
MAX_CONNECTIONS = 16  # handled at once; more get 503 at once instead of piling up threads
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data: blob:; "
                               "script-src 'self'; style-src 'self'; object-src 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


class RequestError(ValueError):
    """A bad request; its message goes back to the page (400, or `status`)."""

    def __init__(self, message, status=400):
        super().__init__(message)
        self.status = status


class Busy(RuntimeError):
    """The model stayed taken too long (503)."""

class Handler(BaseHTTPRequestHandler):
    """Routes requests to the `Studio` held by the server."""

    server_version = "adgan-studio"
    timeout = REQUEST_TIMEOUT  # on the socket: a client that stops sending is let go
    api = {"/api/info": "info", "/api/generate": "generate", "/api/user": "user",
           "/api/preview": "preview", "/api/compose": "compose",
           "/api/score": "score", "/api/ctr": "ctr"}

    def log_message(self, format, *args):  # quiet: the tests and the terminal stay readable
        pass

    def send(self, status, content_type, data, extra=None):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for key, value in {**SECURITY_HEADERS, **(extra or {})}.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def send_json(self, status, payload):
        self.send(status, "application/json; charset=utf-8",
                  json.dumps(payload, ensure_ascii=False).encode("utf-8"))

    def do_GET(self):
        url = urlparse(self.path)
        page = studio_page.static_file(url.path)
        if page:
            return self.send(200, *page)
        if url.path == "/api/info":
            return self.send_json(200, self.server.studio.info({}))
        found = re.fullmatch(r"/creatives/(creative-[\w.-]+)\.(png|json)", url.path)
        if found:
            path = os.path.join(self.server.studio.out_dir, f"{found[1]}.{found[2]}")
            if os.path.isfile(path):
                with open(path, "rb") as f:
                    data = f.read()
                extra = ({"Content-Disposition": f'attachment; filename="{found[1]}.png"'}
                         if "download=1" in url.query else {})
                kind = "image/png" if found[2] == "png" else "application/json; charset=utf-8"
                return self.send(200, kind, data, extra)
        self.send_json(404, {"error": f"not found: {url.path}"})

    def read_body(self):
        """The request body as a JSON object; `RequestError` (400, 411 or 413) otherwise."""
        length = self.headers.get("Content-Length")
        if length is None:
            raise RequestError("send a Content-Length header", 411)
        if not re.fullmatch(r"[0-9]+", length.strip()):  # ASCII digits only: no sign, no "²"
            raise RequestError(f"Content-Length must be a whole number, got {length[:20]!r}")
        length = int(length)
        if length > MAX_BODY:
            raise RequestError(f"request too large (over {MAX_BODY:,} bytes)", 413)
        try:
            data = self.rfile.read(length)
        except (TimeoutError, OSError):
            data = b""
        if len(data) < length:
            raise RequestError(f"the body is shorter than its Content-Length ({len(data)} of "
                               f"{length} bytes in {REQUEST_TIMEOUT} s)")
        try:
            body = json.loads(data.decode("utf-8") or "{}")
        except UnicodeDecodeError:
            raise RequestError("the request is not UTF-8 text") from None
        except (ValueError, RecursionError):  # json.JSONDecodeError is a ValueError
            raise RequestError("the request is not valid JSON") from None
        if not isinstance(body, dict):
            raise RequestError("send a JSON object")
        return body

    def do_POST(self):
        route = self.api.get(urlparse(self.path).path)
        if route is None:
            return self.send_json(404, {"error": "not found"})
        try:
            result = getattr(self.server.studio, route)(self.read_body())
        except RequestError as error:
            self.close_connection = True  # what is left of a bad body must not be parsed
            return self.send_json(error.status, {"error": str(error)})
        except (creative.CopyError, sources.SourceError) as error:
            return self.send_json(400, {"error": str(error)})
        except Busy as error:
            return self.send_json(503, {"error": str(error)})
        except Exception as error:  # never an empty reply; the page shows what went wrong
            return self.send_json(500, {"error": f"internal error ({type(error).__name__})"})
        self.send_json(200, result)


class StudioServer(ThreadingHTTPServer):
    """A thread per connection, at most `MAX_CONNECTIONS` at once (more get a 503 at once),
    each with a `REQUEST_TIMEOUT` on its socket, so a slow or silent client only holds
    its own thread."""

    daemon_threads = True

    def __init__(self, address, handler):
        super().__init__(address, handler)
        self.slots = threading.BoundedSemaphore(MAX_CONNECTIONS)

    def process_request(self, request, client_address):
        if not self.slots.acquire(blocking=False):
            request.sendall(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n"
                            b"Connection: close\r\n\r\n")
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request, client_address):
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.slots.release()


def serve(studio, host="127.0.0.1", port=8080):
    """A started `StudioServer` for the studio (port 0 picks a free one)."""
    server = StudioServer((host, port), Handler)
    server.studio = studio
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server
