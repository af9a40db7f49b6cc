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
  POST /api/preview {prompt, seed, num_candidates, template, headline, price, cta}
                                                    the creative in every size (labelled PNG
                                                    base64), not saved: the live preview
  POST /api/compose {prompt, seed, num_candidates, template, size, headline, price, cta}
                                                    the creative saved with its sidecar
  POST /api/score {text, image: data URL}           score an uploaded image
  POST /api/ctr {csv}                               CTR report of an impressions log
  GET  /creatives/NAME.png[?download=1], NAME.json  composed creatives
"""

import argparse
import base64
import binascii
import collections
import contextlib
import io
import os
import threading

from PIL import Image, UnidentifiedImageError

from adgan import labels
from adgan.helpers import run_command
from adgan.runs.layout import RunError
from adgan.runs.release import read_export_info
from adgan.runs.run import Run
from ads import charts, creative, ctr, events, personalize, privacy, sources
from ads.studio_server import Busy, RequestError, serve
from data_loader import ManifestError, load_image

MODEL_WAIT = 120  # seconds a request waits for the model before a 503 "busy"
MAX_PROMPT = 1000
MAX_COUNT = 8
PRODUCTS_KEPT = 32  # drawn products kept, so a preview that changes only the copy is fast


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
        self.products = collections.OrderedDict()  # (prompt, seed, budget) -> drawn, LRU
        self.products_lock = threading.Lock()
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

    def product(self, prompt, seed, num_candidates):
        """The gated product drawing for (prompt, seed, budget) at the largest size, as
        `compose_with_sidecar` takes it: drawn once, then kept (the `PRODUCTS_KEPT` latest)."""
        key = (prompt, seed, num_candidates)
        with self.products_lock:
            if key in self.products:
                self.products.move_to_end(key)
                return self.products[key]
        with self.model():
            drawn = self.source.generate([prompt], [seed], num_candidates)
        drawn = {name: values[0] for name, values in drawn.items()}
        with self.products_lock:
            self.products[key] = drawn
            while len(self.products) > PRODUCTS_KEPT:
                self.products.popitem(last=False)
        return drawn

    def info(self, _body):
        return {"templates": list(creative.TEMPLATES), "sizes": list(creative.SIZES),
                "users": self.users, "image_size": self.source.image_size,
                "product_size": self.source.sizes[-1], "upsampler": self.source.upsampler,
                "num_candidates": self.num_candidates}

    def generate(self, body):
        text = prompt_of(body, "text")
        count = integer(body, "count", 4, 1, MAX_COUNT)
        seed = integer(body, "seed", 0, 0, 2 ** 62)
        seeds = [seed + k for k in range(count)]
        with self.model():
            drawn = self.source.generate([text] * count, seeds, self.num_candidates)
        reading = ({"drawn_as": str(drawn["drawn_as"][0]), "ignored": str(drawn["ignored"][0])}
                   if "drawn_as" in drawn else None)  # the same for every seed
        return {"num_candidates": self.num_candidates, "understood": reading, "candidates": [
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

    def creative_request(self, body):
        """(prompt, seed, budget, template, `Copy`) of a preview or compose request."""
        text = prompt_of(body, "prompt")
        seed = integer(body, "seed", None, 0, 2 ** 62)
        num_candidates = integer(body, "num_candidates", self.num_candidates, 1, 64)
        template = body.get("template", "hero")
        if template not in creative.TEMPLATES:
            raise RequestError(f"unknown template {template!r}")
        copy = creative.Copy(*(string(body, name) for name in ("headline", "price", "cta")))
        return text, seed, num_candidates, template, copy

    def compose_one(self, request, size):
        """(image, sidecar) of one size of the creative `request` asks for."""
        text, seed, num_candidates, template, copy = request
        return creative.compose_with_sidecar(self.product(text, seed, num_candidates), text,
                                             copy, seed, template, size, num_candidates,
                                             self.source.describe())

    def preview(self, body):
        """The creative in every size, as the labelled PNG files `compose` would save."""
        request = self.creative_request(body)
        previews = []
        for size in creative.SIZES:
            image, sidecar = self.compose_one(request, size)
            shown = sidecar["layout"]["ai_label"]
            png = labels.labelled_png_bytes(image, self.producer, shown["text"])
            previews.append({"size": size, "png": base64.b64encode(png).decode("ascii"),
                             "truncated": sidecar["layout"]["truncated"]})
        return {"previews": previews, "copy": sidecar["copy"], "score": sidecar["score"],
                "accepted": sidecar["accepted"], "ai_label": shown["text"]}

    def compose(self, body):
        request = self.creative_request(body)
        size = body.get("size", "1080x1080")
        if size not in creative.SIZES:
            raise RequestError(f"unknown size {size!r}")
        image, sidecar = self.compose_one(request, size)
        text, seed, _, template, _ = request
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
