"""A local studio page for marketers: keywords -> gated candidates -> a finished creative.

    python -m ads.studio --model exports/adgan/1 [--user-events events.jsonl] [--port 8080]

then open http://127.0.0.1:8080/. It serves the exported SavedModel (export.py), a
run (--run) or, given neither, the shipped model (models/adgan), on 127.0.0.1 by
default, and saves every composed creative with its sidecar in --out-dir.
JSON API (errors are {"error": message}: 400 for a bad request, 411 without a length,
413 for an oversized body, 503 while busy; a client that sends less than it announced
gets its 400 after `REQUEST_TIMEOUT` seconds, and never holds up the others):
  GET  /api/info                                    templates, sizes, users
  POST /api/generate {text, count, seed}            gated candidates (PNG base64, score)
  POST /api/user {user}                             a shopper's ranked prompts with reasons
  POST /api/compose {prompt, seed, num_candidates, template, size, headline, price, cta}
  POST /api/score {text, image: data URL}           score an uploaded image
  POST /api/ctr {csv}                               CTR report of an impressions log
  GET  /creatives/NAME.png[?download=1], NAME.json  composed creatives
"""

import argparse
import base64
import binascii
import contextlib
import io
import json
import os
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlparse

from PIL import Image, UnidentifiedImageError

from adgan import labels
from adgan.helpers import run_command
from adgan.runs.layout import RunError
from adgan.runs.release import read_export_info
from adgan.runs.run import Run
from ads import charts, creative, ctr, events, personalize, privacy, sources, studio_page
from data_loader import ManifestError, load_image

MAX_BODY = 8 * 1024 * 1024
REQUEST_TIMEOUT = 4  # seconds a client may take to send its request
MAX_CONNECTIONS = 16  # handled at once; more get 503 at once instead of piling up threads
MODEL_WAIT = 120  # seconds a request waits for the model before a 503 "busy"
MAX_PROMPT = 1000
MAX_COUNT = 8
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


class Studio:
    """The studio's state: the product source, the event log, where creatives go."""

    def __init__(self, source, out_dir, events_path=None, run=None, num_candidates=8,
                 salt=None, producer=None):
        self.source = source
        self.producer = labels.producer_name(producer)
        self.out_dir = out_dir
        self.events_path = events_path
        self.run = run  # the `Run` whose catalogue the shopper suggestions come from
        self.num_candidates = num_candidates
        self.model_lock = threading.Lock()  # one model call at a time on this small machine
        self.users, self.salt = [], salt
        if events_path:  # shoppers are listed, asked for and shown by pseudonym only
            self.salt = salt or privacy.load_salt()
            self.users = sorted(events.shoppers(events.read_events(events_path)[0], self.salt))

    @contextlib.contextmanager
    def model(self):
        """Hold the model for one call; `Busy` when it stays taken for `MODEL_WAIT` seconds."""
        if not self.model_lock.acquire(timeout=MODEL_WAIT):
            raise Busy(f"the model is busy with other requests for over {MODEL_WAIT} s; "
                       "try again")
        try:
            yield
        finally:
            self.model_lock.release()

    def info(self, _body):
        return {"templates": list(creative.TEMPLATES), "sizes": list(creative.SIZES),
                "users": self.users, "image_size": self.source.image_size,
                "product_size": self.source.sizes[-1], "upsampler": self.source.upsampler}

    def generate(self, body):
        text = prompt_of(body, "text")
        count = integer(body, "count", 4, 1, MAX_COUNT)
        seed = integer(body, "seed", 0, 0, 2 ** 62)
        seeds = [seed + k for k in range(count)]
        with self.model():
            drawn = self.source.generate([text] * count, seeds, self.num_candidates)
        return {"num_candidates": self.num_candidates, "candidates": [
            {"seed": s, "png": png_base64(image, self.producer), "score": float(score),
             "accepted": bool(accepted), "tries": int(tries)}
            for s, image, score, accepted, tries in zip(
                seeds, drawn["images"], drawn["score"], drawn["accepted"], drawn["tries"])]}

    def user(self, body):
        if not self.events_path:
            raise RequestError("the studio was started without --user-events")
        if self.run is None:
            raise RequestError("the model's training run folder is not on this machine, so "
                               "its catalogue is unknown; start the studio with --run RUN")
        user = body.get("user")
        if not isinstance(user, str) or not user:
            raise RequestError("pick a user")
        try:
            found = personalize.suggest(self.events_path, user, self.run, salt=self.salt)
        except (personalize.EventLogError, RunError, ManifestError) as error:
            raise RequestError(str(error)) from None
        return {"prompts": [{"prompt": r["prompt"], "reasons": r["reasons"]}
                            for r in found["ranked"]],
                "skipped_lines": len(found["skipped"])}

    def compose(self, body):
        text = prompt_of(body, "prompt")
        seed = integer(body, "seed", None, 0, 2 ** 62)
        num_candidates = integer(body, "num_candidates", self.num_candidates, 1, 64)
        template, size = body.get("template", "hero"), body.get("size", "1080x1080")
        if template not in creative.TEMPLATES or size not in creative.SIZES:
            raise RequestError(f"unknown template {template!r} or size {size!r}")
        copy = creative.Copy(*(string(body, name) for name in ("headline", "price", "cta")))
        with self.model():
            image, sidecar = creative.make_creative(self.source, text, copy, seed, template,
                                                    size, num_candidates)
        name = creative.creative_name(text, seed, template, size)
        creative.save_creative(image, sidecar, self.out_dir, name, self.producer)
        return {"name": name, "png_url": f"/creatives/{name}.png",
                "sidecar_url": f"/creatives/{name}.json", "sidecar": sidecar}

    def score(self, body):
        text = prompt_of(body, "text")
        image = decode_upload(string(body, "image"), self.source.image_size)
        with self.model():
            value = self.source.score([text], image[None])[0]
        return {"text": text, "score": float(value)}


    def ctr(self, body):
        """The CTR report (ads/ctr.py) of an uploaded impressions CSV, with its chart."""
        text = string(body, "csv")
        if not text.strip():
            raise RequestError("choose an impressions CSV first")
        try:
            frame, rejected = ctr.read_log(io.StringIO(text), "the uploaded log")
        except ctr.LogError as error:
            raise RequestError(str(error)) from None
        report = ctr.analyse(frame, rejected)
        buffer = io.BytesIO()
        charts.ctr_chart(report).save(buffer, format="PNG")
        return {"report": report, "chart": base64.b64encode(buffer.getvalue()).decode("ascii")}


def string(body, name):
    value = body.get(name, "")
    if not isinstance(value, str):
        raise RequestError(f"{name} must be text")
    return value


def prompt_of(body, name):
    text = " ".join(string(body, name).split())
    if not text:
        raise RequestError("type some keywords first, e.g. 黑色羽绒服 or running shoes")
    if len(text) > MAX_PROMPT:
        raise RequestError(f"the keywords are {len(text):,} characters; at most {MAX_PROMPT:,}")
    return text


def integer(body, name, default, low, high):
    value = body.get(name, default)
    if value is None or isinstance(value, bool) or not isinstance(value, int):
        raise RequestError(f"{name} must be a whole number")
    if not low <= value <= high:
        raise RequestError(f"{name} must be between {low} and {high}, got {value}")
    return value


def png_base64(image, producer=None):
    """A candidate as base64 text of its PNG file, labelled AI-generated (labels.py)."""
    return base64.b64encode(labels.labelled_png_bytes(image, producer)).decode("ascii")


def decode_upload(data_url, size):
    """A data URL (or bare base64) of any image -> uint8 RGB [size, size, 3] on white."""
    if not data_url:
        raise RequestError("choose an image file to score")
    payload = data_url.split(",", 1)[1] if data_url.startswith("data:") else data_url
    try:
        return load_image(io.BytesIO(base64.b64decode(payload, validate=True)), size)
    except (binascii.Error, ValueError, UnidentifiedImageError, OSError,
            Image.DecompressionBombError) as error:
        raise RequestError(f"the upload is not an image Pillow can read ({type(error).__name__})"
                           ) from None


class Handler(BaseHTTPRequestHandler):
    """Routes requests to the `Studio` held by the server."""

    server_version = "adgan-studio"
    timeout = REQUEST_TIMEOUT  # on the socket: a client that stops sending is let go
    static = {"/": ("text/html; charset=utf-8", studio_page.HTML),
              "/studio.js": ("text/javascript; charset=utf-8", studio_page.JS),
              "/studio.css": ("text/css; charset=utf-8", studio_page.CSS)}
    api = {"/api/info": "info", "/api/generate": "generate", "/api/user": "user",
           "/api/compose": "compose", "/api/score": "score", "/api/ctr": "ctr"}

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
        if url.path in self.static:
            content_type, text = self.static[url.path]
            return self.send(200, content_type, text.encode("utf-8"))
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


def make_studio(model=None, run=None, out_dir="studio_creatives", events=None, num_candidates=8,
                gated=True, salt_file=None, producer=None):
    """A `Studio` over an exported SavedModel, a run, or (given neither) the shipped model;
    the run folder for user prompts is --run, else the one the export records
    (`read_export_info`)."""
    source = sources.load_source(model=model, run=run, gated=gated)
    if not model:
        run = source.run  # the given run, or the shipped model
    else:
        run = run or (read_export_info(model) or {}).get("run")
        run = Run(run) if run and os.path.isdir(run) else None
    salt = privacy.load_salt(salt_file) if events else None
    return Studio(source, out_dir, events, run, num_candidates, salt, producer)


def main(argv=None):
    """CLI: serve until interrupted."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="exported SavedModel version folder (export.py; "
                                        "default: the shipped model, models/adgan)")
    parser.add_argument("--run", help="training run folder (instead of, or beside, --model)")
    parser.add_argument("--user-events", help="JSONL event log: pick shoppers in the page")
    parser.add_argument("--out-dir", default="studio_creatives", help="composed creatives")
    parser.add_argument("--num-candidates", type=int, default=8, help="the gate's budget")
    parser.add_argument("--no-gate", action="store_true",
                        help="with --run: keep each seed's first candidate (an uncalibrated run)")
    parser.add_argument("--salt-file", help="the shoppers' pseudonym salt (ads/privacy.py)")
    labels.add_producer_flag(parser)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args(argv)
    try:
        studio = make_studio(args.model, args.run, args.out_dir, args.user_events,
                             args.num_candidates, not args.no_gate, args.salt_file, args.producer)
        server = serve(studio, args.host, args.port)
    except (sources.SourceError, personalize.EventLogError, RunError, OSError,
            ValueError) as error:
        parser.exit(1, f"studio: {error}\n")
    print(f"studio: http://{args.host}:{server.server_address[1]}/ (Ctrl+C stops it); "
          f"creatives go to {args.out_dir}")
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        server.shutdown()


def console_main(argv=None):
    """Entry point of the installed console script: exit status 0 on success, else one line
    saying what went wrong (`helpers.run_command`)."""
    run_command(lambda: main(argv), "studio")


if __name__ == "__main__":
    console_main()
