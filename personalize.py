"""Personalised prompts from a shopper's behaviour, and the candidate closest to their taste.

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

import datetime
import json
import math
import os

import numpy as np

import colors

TYPE_WEIGHTS = {"search": 1.0, "click": 1.5, "purchase": 2.0}
HALF_LIFE_DAYS = 7.0


class EventLogError(ValueError):
    """A log with nothing usable for the user asked for (or no such file)."""


def parse_time(value):
    """ISO 8601 text or Unix seconds -> Unix seconds (float); ValueError otherwise."""
    if isinstance(value, bool):
        raise ValueError("ts must be ISO 8601 text or Unix seconds")
    if isinstance(value, (int, float)):
        if not math.isfinite(value):
            raise ValueError("ts is not finite")
        return float(value)
    if isinstance(value, str):
        moment = datetime.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=datetime.timezone.utc)
        return moment.timestamp()
    raise ValueError("ts must be ISO 8601 text or Unix seconds")


def read_events(path):
    """(events [{user, type, text, ts (seconds), line}], skipped [{line, reason}])."""
    if not os.path.exists(path):
        raise EventLogError(f"{path}: event log not found")
    events, skipped = [], []
    with open(path, encoding="utf-8", errors="replace") as f:
        for number, raw in enumerate(f, 1):
            if not raw.strip():
                continue
            try:
                event = json.loads(raw)
                if not isinstance(event, dict):
                    raise ValueError("not a JSON object")
                missing = [k for k in ("user", "type", "text", "ts") if k not in event]
                if missing:
                    raise ValueError(f"missing {', '.join(missing)}")
                if event["type"] not in TYPE_WEIGHTS:
                    raise ValueError(f"type must be one of {', '.join(TYPE_WEIGHTS)}, got "
                                     f"{event['type']!r}")
                text = " ".join(str(event["text"]).split())
                if not text:
                    raise ValueError("empty text")
                events.append({"user": str(event["user"]), "type": event["type"], "text": text,
                               "ts": parse_time(event["ts"]), "line": number})
            except ValueError as error:  # json.JSONDecodeError is a ValueError
                skipped.append({"line": number, "reason": str(error).split("\n")[0][:200]})
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


def rank_prompts(events, weights, concepts, encoder=None, known=None, count=5):
    """Ranked prompts for one user: [{"prompt", "score", "reasons": [...]}].

    concepts: catalogue names the model was trained on (e.g. "coat", "外套");
    encoder: a dual encoder (encoder.py) to find the concepts nearest the user's
    interest (None: only the user's own texts); known: text -> bool, whether the
    model knows any token of it (prompts it cannot draw are left out).
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
    favourite = color_preferences(events, weights)
    if encoder is not None and concepts:
        interest = interest_vector(encoder, events, weights)
        similarity = encoder.embed_texts(list(concepts)) @ interest
        chinese = sum(colors.HAN.search(e["text"]) is not None for e in events) * 2 >= len(events)
        same_language = [i for i, c in enumerate(concepts)
                         if (colors.HAN.search(c) is not None) == chinese]
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
    codes = encoder.embed_images(np.asarray(images, np.float32) / 127.5 - 1.0)[1]
    similarity = codes @ interest
    return int(np.argmax(similarity)), similarity


def catalogue_concepts(run_dir):
    """The names (first two caption columns) of a run's training rows: what it can draw."""
    import data_loader

    with open(os.path.join(run_dir, "config.json"), encoding="utf-8") as f:
        config = json.load(f)
    frame = data_loader.read_manifest(config["manifest"], config["image_column"],
                                      tuple(config["caption_columns"][:2]),
                                      config.get("split") or None,
                                      {"group": config.get("groups", ()),
                                       "style": config.get("styles", ())})
    return list(dict.fromkeys(c for captions in frame["captions"] for c in captions))


def load_run_encoder(run_dir, encoder_dir=None):
    """The dual encoder for interests: `encoder_dir`, else the run's own (RUN/text_encoder,
    made by --text-encoder auto), else None."""
    from encoder import ENCODER_FILE, load_encoder

    for folder in (encoder_dir, os.path.join(run_dir, "text_encoder")):
        if folder and os.path.exists(os.path.join(folder, ENCODER_FILE)):
            return load_encoder(folder)
    if encoder_dir:
        raise EventLogError(f"--encoder {encoder_dir}: no {ENCODER_FILE} there")
    return None


def known_words(vocabulary):
    """text -> True if the model's vocabulary has any of its tokens (it can draw it)."""
    from data_loader import split_tokens

    vocabulary = set(vocabulary)
    return lambda text: any(t.decode("utf-8") in vocabulary for t in split_tokens([text]))


def suggest(events_path, user, run_dir, count=5, encoder_dir=None):
    """Read a log and rank one user's prompts against a run's catalogue.

    Returns {"events", "weights", "ranked", "encoder", "skipped"}; raises
    `EventLogError` for an unknown user, an empty log or no drawable prompt.
    """
    from data_loader import load_vocabulary

    events, skipped = read_events(events_path)
    mine = user_events(events, user, events_path)
    weights = weigh(mine)
    encoder = load_run_encoder(run_dir, encoder_dir)
    known = known_words(load_vocabulary(os.path.join(run_dir, "final", "vocabulary.txt")))
    ranked = rank_prompts(mine, weights, catalogue_concepts(run_dir), encoder, known, count)
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
    import creative
    from data_loader import write_json

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
            best, similarity = pick_closest(encoder, drawn["images"], interest)
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
