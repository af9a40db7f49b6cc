"""Personalised creatives from a shopper's behaviour: ranked prompts, the closest candidate.

    python -m ads.personalize --run RUN --user-events events.jsonl --user u1 --out-dir ADS

Each ranked prompt gets `-n` gated candidates; the one closest to the user's
interest becomes a finished creative (ads/creative.py) in --out-dir, with a JSON
sidecar giving the reasons; OUT_DIR/user-U.json summarises them.

An event log is JSONL, one event a line:

    {"user": "u1", "type": "search", "text": "黑色羽绒服", "ts": "2026-11-20T10:00:00"}

`type` is search, click or purchase; `ts` is ISO 8601 or Unix seconds. Each
event weighs TYPE_WEIGHTS[type] x 0.5 ** (age / half-life), its age counted back
from the user's latest event (so a log gives the same answer whenever it is
read). Malformed lines are skipped and counted with their line number, never fatal.

`rank_prompts` turns a user's events into prompts, each with the reasons it was
chosen: the user's own recent texts, and their preferred colour with the
catalogue concepts closest to their interest (in the text-image encoder's space).
`pick_closest` chooses among gated candidates the image nearest that interest.
"""

import argparse
import datetime
import json
import math
import os
import sys

import numpy as np
import tensorflow as tf

import colors
import runs
from ads import creative, sources
from bundles import CONNECTORS
from data_loader import ManifestError
from helpers import has_han, run_command, to_float, write_json
from sampling import DEFAULT_MAX_TRIES
from tokenizer import clean_text, split_tokens

TYPE_WEIGHTS = {"search": 1.0, "click": 1.5, "purchase": 2.0}
HALF_LIFE_DAYS = 7.0


class EventLogError(ValueError):
    """A log with nothing usable for the user asked for (or no such file)."""


# Timestamps outside these years are typing errors, not events (seconds since 1970).
EARLIEST, LATEST = 0.0, datetime.datetime(2200, 1, 1, tzinfo=datetime.timezone.utc).timestamp()
MAX_FIELD_CHARACTERS = 1000


def parse_time(value):
    """ISO 8601 text or Unix seconds -> Unix seconds (float) in 1970..2200; ValueError
    otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError("ts must be ISO 8601 text or Unix seconds")
    if isinstance(value, str):
        try:
            moment = datetime.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"ts is not ISO 8601: {value[:40]!r}") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=datetime.timezone.utc)
        value = moment.timestamp()
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("ts is not finite")
    if not EARLIEST <= value <= LATEST:
        raise ValueError(f"ts is outside 1970-2200: {str(value)[:40]}")
    return float(value)


def text_field(event, name):
    """The event's `name` as clean one-line text; ValueError unless it is text (or, for the
    user, a whole number) of at most `MAX_FIELD_CHARACTERS`."""
    value = event[name]
    if name == "user" and isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise ValueError(f"{name} must be text, got {type(value).__name__}")
    text, _ = clean_text(value)
    if not text:
        raise ValueError(f"empty {name}")
    if len(value) > MAX_FIELD_CHARACTERS:
        raise ValueError(f"{name} is {len(value):,} characters; at most {MAX_FIELD_CHARACTERS:,}")
    return text


def parse_event(raw):
    """One log line -> {user, type, text, ts}; ValueError naming the problem."""
    try:
        event = json.loads(raw)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None
    if not isinstance(event, dict):
        raise ValueError("not a JSON object")
    missing = [k for k in ("user", "type", "text", "ts") if k not in event]
    if missing:
        raise ValueError(f"missing {', '.join(missing)}")
    if not isinstance(event["type"], str) or event["type"] not in TYPE_WEIGHTS:
        raise ValueError(f"type must be one of {', '.join(TYPE_WEIGHTS)}, got "
                         f"{str(event['type'])[:40]!r}")
    return {"user": text_field(event, "user"), "type": event["type"],
            "text": text_field(event, "text"), "ts": parse_time(event["ts"])}


def read_events(path):
    """(events [{user, type, text, ts (seconds), line}], skipped [{line, reason}]).

    A line that is not UTF-8 JSON of the documented fields and types is skipped with
    its line number and reason (see `parse_event`), never fatal.
    """
    if not os.path.exists(path):
        raise EventLogError(f"{path}: event log not found")
    if os.path.isdir(path):
        raise EventLogError(f"{path}: is a folder; give the JSONL event log file")
    events, skipped = [], []
    with open(path, "rb") as f:
        for number, raw in enumerate(f, 1):
            if not raw.strip():
                continue
            try:
                event = parse_event(raw.decode("utf-8"))
                events.append({**event, "line": number})
            except ValueError as error:  # UnicodeDecodeError and JSONDecodeError included
                reason = ("not UTF-8 text" if isinstance(error, UnicodeDecodeError)
                          else str(error).split("\n")[0][:200])
                skipped.append({"line": number, "reason": reason})
    return events, skipped


def user_events(events, user, path="the log"):
    """The user's events, oldest first; `EventLogError` names the problem if there are none."""
    mine = sorted((e for e in events if e["user"] == user), key=lambda e: e["ts"])
    if not mine:
        users = sorted({e["user"] for e in events})
        if not users:
            raise EventLogError(f"{path} has no usable event")
        raise EventLogError(f"user {user!r} has no events in {path} ({len(users)} users, e.g. "
                            f"{', '.join(users[:5])})")
    return mine


def weigh(events, half_life_days=HALF_LIFE_DAYS, now=None):
    """Each event's weight: its type's weight, halved every `half_life_days` of age."""
    now = max(e["ts"] for e in events) if now is None else now
    return np.array([TYPE_WEIGHTS[e["type"]]
                     * 0.5 ** (max(0.0, now - e["ts"]) / 86400.0 / half_life_days)
                     for e in events])


def color_preferences(events, weights):
    """{palette index: total weight} of the colour words in the user's texts."""
    totals = {}
    for event, weight in zip(events, weights):
        for k, (english, chinese, *_) in enumerate(colors.PALETTE):
            if chinese in event["text"] or english in event["text"].lower().split():
                totals[k] = totals.get(k, 0.0) + weight
    return totals


def interest_vector(encoder, events, weights):
    """Unit vector: the weighted mean of the events' text embeddings [T]."""
    vectors = encoder.embed_texts([e["text"] for e in events])
    mean = (weights[:, None] * vectors).sum(0)
    return mean / (np.linalg.norm(mean) + 1e-12)


def bundle_of_interests(events, weights):
    """(prompt, weight) of a bundle of the user's two strongest distinct texts in one
    language ("咖啡和蛋糕", "coffee and cake"), or None when there are not two."""
    totals = {}
    for event, weight in zip(events, weights):
        totals[event["text"]] = totals.get(event["text"], 0.0) + float(weight)
    ranked = sorted(totals, key=lambda text: -totals[text])
    for first in ranked:
        second = next((t for t in ranked if t != first and has_han(t) == has_han(first)), None)
        if second is not None:
            connector = CONNECTORS["zh" if has_han(first) else "en"][0]
            return f"{first}{connector}{second}", totals[first] + totals[second]
    return None


def rank_prompts(events, weights, concepts, encoder=None, known=None, count=5, bundle=False):
    """Ranked prompts for one user: [{"prompt", "score", "reasons": [...]}].

    concepts: catalogue names the model was trained on (e.g. "coat", "外套");
    encoder: a dual encoder (encoder.py) to find the concepts nearest the user's
    interest (None: only the user's own texts); known: text -> bool, whether the
    model knows any token of it (prompts it cannot draw are left out); bundle: also
    suggest the user's two strongest interests in one picture (a model trained on
    bundles, `bundles.py`).
    """
    known = known or (lambda text: True)
    total = float(weights.sum())
    latest = max(e["ts"] for e in events)
    ranked = {}

    def add(prompt, score, *reasons):
        if not known(prompt):
            return
        entry = ranked.setdefault(prompt, {"prompt": prompt, "score": 0.0, "reasons": []})
        entry["score"] += score
        entry["reasons"].extend(reasons)

    for event, weight in zip(events, weights):
        days = (latest - event["ts"]) / 86400.0
        add(event["text"], weight / total,
            f"{event['type']} {event['text']!r} {days:.1f} days before the latest event "
            f"(weight {weight:.2f})")
    paired = bundle_of_interests(events, weights) if bundle else None
    if paired:
        # between the two texts' own shares: a bundle shows both interests at once
        add(paired[0], paired[1] / total * 0.5,
            f"a bundle of the user's two strongest interests ({paired[1] / total:.2f} of the "
            "weight)")
    favourite = color_preferences(events, weights)
    if encoder is not None and concepts:
        interest = interest_vector(encoder, events, weights)
        similarity = encoder.embed_texts(list(concepts)) @ interest
        chinese = sum(has_han(e["text"]) for e in events) * 2 >= len(events)
        same_language = [i for i, c in enumerate(concepts) if has_han(c) == chinese]
        nearest = sorted(same_language, key=lambda i: -similarity[i])[:count]
        color = max(favourite, key=favourite.get) if favourite else None
        for i in nearest:
            reason = f"close to the user's interest: {concepts[i]!r} (cosine {similarity[i]:.2f})"
            # a suggestion counts less than what the user typed themselves
            share = max(0.0, float(similarity[i])) * 0.25
            if color is not None:
                add(colors.color_prompt(concepts[i], color),
                    share + favourite[color] / total * 0.1,
                    f"preferred colour {colors.PALETTE[color][1 if chinese else 0]} "
                    f"(weight {favourite[color]:.2f} of {total:.2f})", reason)
            else:
                add(concepts[i], share, reason)
    return sorted(ranked.values(), key=lambda r: -r["score"])[:count]


def pick_closest(encoder, images, interest):
    """Index of the uint8 image [N, S, S, 3] nearest the interest vector, and all cosines."""
    codes = encoder.embed_images(to_float(images))[1]
    similarity = codes @ interest
    return int(np.argmax(similarity)), similarity


def load_interest_encoder(run_dir, encoder_dir=None):
    """The dual encoder for interests (`runs.load_text_encoder`), or None; an `encoder_dir`
    that holds none is an `EventLogError`."""
    try:
        return runs.load_text_encoder(run_dir, encoder_dir)
    except (OSError, ValueError) as error:  # FileNotFoundError is an OSError
        where = f"--encoder {encoder_dir}" if encoder_dir else "the run's text encoder"
        raise EventLogError(f"{where}: {error}") from None


def known_words(vocabulary):
    """text -> True if the model's vocabulary has any of its tokens (it can draw it)."""
    vocabulary = set(vocabulary)
    return lambda text: any(t.decode("utf-8") in vocabulary for t in split_tokens([text]))


def suggest(events_path, user, run_dir, count=5, encoder_dir=None):
    """Read a log and rank one user's prompts against a run's catalogue.

    Returns {"events", "weights", "ranked", "encoder", "skipped"}; raises
    `EventLogError` for an unknown user, an empty log or no drawable prompt.
    """
    events, skipped = read_events(events_path)
    mine = user_events(events, user, events_path)
    weights = weigh(mine)
    encoder = load_interest_encoder(run_dir, encoder_dir)
    known = known_words(runs.load_vocabulary(run_dir))
    config = runs.load_config(run_dir)
    # a bundle is suggested when the model can draw one: product by product (composition.py)
    # or, for a run taught bundles, in one pass
    drawable = config.bundle_share > 0 or runs.load_splitter(run_dir) is not None
    ranked = rank_prompts(mine, weights, runs.concept_names(config), encoder, known, count,
                          bundle=drawable)
    if not ranked:
        raise EventLogError(f"none of user {user!r}'s texts has a word the model knows")
    return {"events": mine, "weights": weights, "ranked": ranked, "encoder": encoder,
            "skipped": skipped}


def make_user_creatives(source, run_dir, events_path, user, out_dir, prompts=3, candidates=4,
                        seed=0, num_candidates=8, template="hero", size="1080x1080",
                        encoder_dir=None):
    """A user's personalised creatives: ranked prompts, per prompt `candidates` gated images
    (seeds seed, seed+1, ...), the one nearest the user's interest composed into an ad.

    Returns the summary dict (also written to OUT_DIR/user-<user>.json).
    """
    found = suggest(events_path, user, run_dir, prompts, encoder_dir)
    encoder = found["encoder"]
    interest = (interest_vector(encoder, found["events"], found["weights"])
                if encoder is not None else None)
    summary = {"user": user, "events": len(found["events"]),
               "skipped_lines": len(found["skipped"]), "skipped": found["skipped"],
               "creatives": []}
    for entry in found["ranked"]:
        seeds = [seed + k for k in range(candidates)]
        drawn = source.generate([entry["prompt"]] * candidates, seeds, num_candidates)
        if interest is not None:
            # judged at the model's own size: the encoder's bilinear resize of an enlarged
            # 256 px picture straight to its 32 px would alias
            native = tf.image.resize(drawn["images"], [source.image_size] * 2, "area")
            best, similarity = pick_closest(encoder, np.round(native.numpy()).astype(np.uint8),
                                            interest)
            why = (f"candidate {best + 1} of {candidates}: the closest to the user's interest "
                   f"(cosine {similarity[best]:.2f}; others "
                   f"{', '.join(f'{s:.2f}' for i, s in enumerate(similarity) if i != best)})")
        else:
            best = int(np.argmax(drawn["score"]))
            why = (f"candidate {best + 1} of {candidates}: the highest gate score (no "
                   "text-image encoder for interests; pass --encoder)")
        image, sidecar = creative.compose_with_sidecar(
            {k: v[best] for k, v in drawn.items()}, entry["prompt"],
            creative.Copy(creative.drawable(entry["prompt"])[:creative.MAX_COPY["headline"]]
                          or entry["prompt"]), seeds[best], template, size, num_candidates,
            source.describe())
        sidecar.update(user=user, reasons=entry["reasons"] + [why], rank_score=entry["score"])
        name = creative.creative_name(entry["prompt"], seeds[best], template, size)
        path = creative.save_creative(image, sidecar, out_dir, f"{name}")
        summary["creatives"].append({"prompt": entry["prompt"], "file": path,
                                     "reasons": sidecar["reasons"]})
    safe_user = "".join(ch if ch.isalnum() else "-" for ch in user)[:60]
    write_json(summary, os.path.join(out_dir, f"user-{safe_user}.json"))
    return summary


def make_parser():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", help="training run folder (default: the shipped model, "
                                      "models/adgan)")
    parser.add_argument("--user-events", required=True, help="a JSONL event log")
    parser.add_argument("--user", required=True, help="the user whose creatives to make")
    parser.add_argument("--out-dir", required=True, help="where the creatives go")
    parser.add_argument("-n", "--num-images", type=int, default=4,
                        help="candidates per prompt to choose the closest from")
    parser.add_argument("--user-prompts", type=int, default=3,
                        help="how many ranked prompts to draw")
    parser.add_argument("--seed", type=int, default=0, help="candidate k uses SEED+k")
    parser.add_argument("--max-tries", type=int, default=DEFAULT_MAX_TRIES,
                        help="the gate's budget per candidate")
    parser.add_argument("--no-gate", action="store_true", help="keep each seed's first draw")
    parser.add_argument("--encoder", help="dual encoder for the user's interest (default: the "
                                          "run's own RUN/text_encoder)")
    return parser


def main(argv=None):
    """CLI: a shopper's personalised creatives; returns the PNG paths."""
    parser = make_parser()
    args = parser.parse_args(argv)
    for name in ("num_images", "user_prompts", "max_tries"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    try:
        args.run = runs.run_or_shipped(args.run)
        summary = make_user_creatives(
            sources.RunSource(args.run, gated=not args.no_gate), args.run, args.user_events,
            args.user, args.out_dir, prompts=args.user_prompts, candidates=args.num_images,
            seed=args.seed, num_candidates=args.max_tries, encoder_dir=args.encoder)
    except (EventLogError, sources.SourceError, runs.RunError, ManifestError) as error:
        parser.exit(1, f"personalize: {error}\n")
    if summary["skipped_lines"]:
        print(f"personalize: skipped {summary['skipped_lines']} malformed line(s) of "
              f"{args.user_events}: " + "; ".join(f"line {s['line']}: {s['reason']}"
                                                  for s in summary["skipped"][:5]),
              file=sys.stderr)
    for item in summary["creatives"]:
        print(f"personalize: {item['file']}: {item['prompt']!r} because "
              + "; ".join(item["reasons"]))
    return [item["file"] for item in summary["creatives"]]


def console_main(argv=None):
    """Entry point of the installed console script: exit status 0 on success, else one line
    saying what went wrong (`helpers.run_command`)."""
    run_command(lambda: main(argv), "personalize")


if __name__ == "__main__":
    console_main()
