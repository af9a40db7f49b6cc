"""Personalised creatives from a shopper's behaviour: ranked prompts, the closest candidate.

    python -m ads.personalize --run RUN --user-events events.jsonl --user u1 --out-dir ADS
                              [--personal-report why-u1.json] [--salt-file FILE]

Each ranked prompt gets `-n` gated candidates; the one closest to the shopper's
interest becomes a finished creative (ads/creative.py) in --out-dir;
OUT_DIR/shopper-PSEUDONYM.json lists them. The event log is read by ads/events.py.

A prompt is always a catalogue phrase, never text the shopper typed: a product name
the model was trained on (the run's catalogue), with the colour word the shopper's
event names, or two such names as a bundle. `rank_prompts` scores the catalogue
names each event's text contains (or, with the run's text-image encoder, the one
nearest it), the bundle of the two strongest, and the names nearest the shopper's
whole interest with their preferred colour. `pick_closest` chooses among gated
candidates the image nearest that interest. Creatives and sidecars carry no
shopper: the reasons (which quote the events) go, only when asked for, to a report
marked as personal data, under the shopper's pseudonym (ads/privacy.py).
"""

import argparse
import os
import re
import sys

import numpy as np
import tensorflow as tf

from adgan.data import colors
from adgan.data.bundles import CONNECTORS
from adgan.drawing.sampling import DEFAULT_MAX_TRIES
from adgan.helpers import has_han, run_command, to_float, write_json
from adgan.labels import add_producer_flag
from adgan.runs.artifacts import load_text_encoder, load_vocabulary
from adgan.runs.layout import RunError
from adgan.runs.rows import concept_names
from adgan.runs.run import Run
from adgan.text.tokenizer import split_tokens
from ads import creative, privacy, sources
from ads.events import EventLogError, read_events, user_events, weigh
from data_loader import ManifestError

def color_named(text):
    """Palette index of the first colour word in `text` (红色, red), or None."""
    for k, (english, chinese, *_) in enumerate(colors.PALETTE):
        if chinese in text or english in text.lower().split():
            return k
    return None


def names_in(concept, text):
    """True if `text` names the catalogue product `concept`: a Han name of two or more
    characters anywhere in it, a one-character one as the whole text, an English one as
    whole words (a plural "s" / "es" allowed)."""
    if has_han(concept):
        return concept in text if len(concept) > 1 else concept == text.strip()
    return re.search(rf"(?<![\w-]){re.escape(concept)}(?:e?s)?(?![\w-])", text, re.I) is not None


def catalogue_matches(text, concepts, similarity=None):
    """[(concept index, strength in (0, 1])]: the catalogue names `text` contains (1; a name
    inside a longer named one is dropped), else, given the encoder's cosines [C] of the
    text, the nearest name of its language (its cosine, when positive)."""
    named = [i for i, c in enumerate(concepts) if names_in(c, text)]
    named = [i for i in named if not any(concepts[i] != concepts[j] and concepts[i] in concepts[j]
                                         for j in named)]
    if named or similarity is None:
        return [(i, 1.0) for i in named]
    same = [i for i, c in enumerate(concepts) if has_han(c) == has_han(text)]
    best = max(same, key=lambda i: similarity[i], default=None)
    return [(best, float(similarity[best]))] if best is not None and similarity[best] > 0 else []


def interest_vector(encoder, events, weights):
    """Unit vector: the weighted mean of the events' text embeddings [T]."""
    vectors = encoder.embed_texts([e["text"] for e in events])
    mean = (weights[:, None] * vectors).sum(0)
    return mean / (np.linalg.norm(mean) + 1e-12)


def strongest_pair(totals):
    """(bundle prompt, weight) of the two strongest catalogue names of one language in
    {name: weight} ("外套和手提包", "backpack and hamburger"), or None."""
    ranked = sorted(totals, key=lambda name: -totals[name])
    for first in ranked:
        second = next((n for n in ranked if n != first and has_han(n) == has_han(first)), None)
        if second is not None:
            connector = CONNECTORS["zh" if has_han(first) else "en"][0]
            return f"{first}{connector}{second}", totals[first] + totals[second]
    return None


def rank_prompts(events, weights, concepts, encoder=None, known=None, count=5, bundle=False):
    """Ranked catalogue prompts for one shopper: [{"prompt", "score", "reasons": [...]}];
    the reasons quote the events (personal data: `privacy.write_personal_report`).

    concepts: catalogue names the model was trained on (e.g. "coat", "外套"), the only
    products a prompt names; encoder: a dual encoder (encoder.py) to match texts that
    name no product and to find the names nearest the shopper's interest; known:
    text -> bool, whether the model can draw it; bundle: also suggest the two strongest
    names in one picture (a model that draws bundles, composition.py).
    """
    known = known or (lambda text: True)
    total, latest = float(weights.sum()), max(e["ts"] for e in events)
    ranked, named = {}, {}

    def add(prompt, score, *reasons):
        if known(prompt):
            entry = ranked.setdefault(prompt, {"prompt": prompt, "score": 0.0, "reasons": []})
            entry["score"] += score
            entry["reasons"].extend(reasons)

    cosines = (encoder.embed_texts([e["text"] for e in events])
               @ encoder.embed_texts(list(concepts)).T if encoder is not None and concepts
               else [None] * len(events))
    for event, weight, cosine in zip(events, weights, cosines):
        color = color_named(event["text"])
        for i, strength in catalogue_matches(event["text"], concepts, cosine):
            name = concepts[i]
            named[name] = named.get(name, 0.0) + weight * strength
            how = "names" if strength == 1.0 else f"is nearest (cosine {strength:.2f})"
            add(colors.color_prompt(name, color) if color is not None else name,
                weight * strength / total,
                f"{event['type']} {event['text']!r} {(latest - event['ts']) / 86400.0:.1f} days "
                f"before the latest event {how} {name!r} (weight {weight:.2f})")
    paired = strongest_pair(named) if bundle else None
    if paired:  # between the two names' own shares: a bundle shows both interests at once
        add(paired[0], paired[1] / total * 0.5, f"a bundle of the shopper's two strongest "
            f"products ({paired[1] / total:.2f} of the weight)")
    if encoder is not None and concepts:
        suggest_nearest(add, encoder, events, weights, concepts, count)
    return sorted(ranked.values(), key=lambda r: -r["score"])[:count]


def suggest_nearest(add, encoder, events, weights, concepts, count):
    """`add` the `count` catalogue names nearest the shopper's interest (in their main
    language), with their preferred colour; each counts less than a product they named."""
    total = float(weights.sum())
    similarity = encoder.embed_texts(list(concepts)) @ interest_vector(encoder, events, weights)
    chinese = sum(has_han(e["text"]) for e in events) * 2 >= len(events)
    same_language = [i for i, c in enumerate(concepts) if has_han(c) == chinese]
    favourite = {}
    for event, weight in zip(events, weights):
        color = color_named(event["text"])
        if color is not None:
            favourite[color] = favourite.get(color, 0.0) + weight
    color = max(favourite, key=favourite.get) if favourite else None
    for i in sorted(same_language, key=lambda i: -similarity[i])[:count]:
        reason = f"close to the shopper's interest: {concepts[i]!r} (cosine {similarity[i]:.2f})"
        share = max(0.0, float(similarity[i])) * 0.25
        if color is None:
            add(concepts[i], share, reason)
        else:
            add(colors.color_prompt(concepts[i], color), share + favourite[color] / total * 0.1,
                f"preferred colour {colors.PALETTE[color][1 if chinese else 0]} "
                f"(weight {favourite[color]:.2f} of {total:.2f})", reason)


def pick_closest(encoder, images, interest):
    """Index of the uint8 image [N, S, S, 3] nearest the interest vector, and all cosines."""
    codes = encoder.embed_images(to_float(images))[1]
    similarity = codes @ interest
    return int(np.argmax(similarity)), similarity


def load_interest_encoder(run_dir, encoder_dir=None):
    """The dual encoder for interests (`load_text_encoder`), or None; an `encoder_dir`
    that holds none is an `EventLogError`."""
    try:
        return load_text_encoder(run_dir, encoder_dir)
    except (OSError, ValueError) as error:  # FileNotFoundError is an OSError
        where = f"--encoder {encoder_dir}" if encoder_dir else "the run's text encoder"
        raise EventLogError(f"{where}: {error}") from None


def known_words(vocabulary):
    """text -> True if the model's vocabulary has any of its tokens (it can draw it)."""
    vocabulary = set(vocabulary)
    return lambda text: any(t.decode("utf-8") in vocabulary for t in split_tokens([text]))


def suggest(events_path, user, run, count=5, encoder_dir=None, salt=None):
    """Read a log and rank one shopper's catalogue prompts (`user`: their id or, given the
    `salt`, their pseudonym) from what the model of `run` (an opened `Run`) can draw.

    Returns {"events", "weights", "ranked", "encoder", "skipped"}; raises
    `EventLogError` for an unknown shopper, an empty log or no drawable prompt.
    """
    events, skipped = read_events(events_path)
    mine = user_events(events, user, events_path, salt)
    weights = weigh(mine)
    encoder = load_interest_encoder(run.folder, encoder_dir)
    known = known_words(load_vocabulary(run.folder))
    # a bundle is suggested when the model can draw one: product by product (composition.py)
    # or, for a run taught bundles, in one pass
    drawable = run.config.bundle_share > 0 or run.splitter is not None
    ranked = rank_prompts(mine, weights, concept_names(run.config), encoder, known, count,
                          bundle=drawable)
    if not ranked:
        raise EventLogError(f"none of shopper {user!r}'s events names or (without a text "
                            "encoder) resembles a product of the model's catalogue")
    return {"events": mine, "weights": weights, "ranked": ranked, "encoder": encoder,
            "skipped": skipped}


def pick_candidate(source, encoder, interest, drawn):
    """(index, why) of the drawn candidate to compose: the nearest the interest, or without
    an encoder the highest gate score."""
    count = len(drawn["score"])
    if interest is None:
        best = int(np.argmax(drawn["score"]))
        return best, (f"candidate {best + 1} of {count}: the highest gate score (no text-image "
                      "encoder for interests; pass --encoder)")
    # judged at the model's own size: the encoder's bilinear resize of an enlarged 256 px
    # picture straight to its 32 px would alias
    native = tf.image.resize(drawn["images"], [source.image_size] * 2, "area")
    best, similarity = pick_closest(encoder, np.round(native.numpy()).astype(np.uint8), interest)
    return best, (f"candidate {best + 1} of {count}: the closest to the shopper's interest "
                  f"(cosine {similarity[best]:.2f}; others "
                  f"{', '.join(f'{s:.2f}' for i, s in enumerate(similarity) if i != best)})")


def make_user_creatives(source, events_path, user, out_dir, prompts=3, candidates=4,
                        seed=0, num_candidates=8, template="hero", size="1080x1080",
                        encoder_dir=None, salt=None, personal_report=None, producer=None):
    """A shopper's personalised creatives: ranked catalogue prompts, per prompt `candidates`
    gated images (seeds seed, seed+1, ...), the one nearest their interest composed into an
    ad. Creatives and sidecars name no shopper; OUT_DIR/shopper-PSEUDONYM.json lists them
    under the pseudonym (`salt`: `privacy.load_salt`), and the reasons go to
    `personal_report` only when it is given. Returns the summary dict."""
    salt = salt or privacy.load_salt()
    found = suggest(events_path, user, source.run, prompts, encoder_dir, salt)
    encoder = found["encoder"]
    interest = (interest_vector(encoder, found["events"], found["weights"])
                if encoder is not None else None)
    shopper = privacy.pseudonym(found["events"][0]["user"], salt)
    summary = {"shopper": shopper, "events": len(found["events"]),
               "skipped_lines": len(found["skipped"]), "skipped": found["skipped"],
               "creatives": []}
    reasons = []
    for rank, entry in enumerate(found["ranked"], 1):
        seeds = [seed + k for k in range(candidates)]
        drawn = source.generate([entry["prompt"]] * candidates, seeds, num_candidates)
        best, why = pick_candidate(source, encoder, interest, drawn)
        image, sidecar = creative.compose_with_sidecar(
            {k: v[best] for k, v in drawn.items()}, entry["prompt"],
            creative.Copy(creative.drawable(entry["prompt"])[:creative.MAX_COPY["headline"]]
                          or entry["prompt"]), seeds[best], template, size, num_candidates,
            source.describe())
        sidecar["personalised"] = {"rank": rank, "of": len(found["ranked"])}  # no shopper
        name = creative.creative_name(entry["prompt"], seeds[best], template, size)
        path = creative.save_creative(image, sidecar, out_dir, name, producer)
        summary["creatives"].append({"prompt": entry["prompt"], "file": path, "rank": rank})
        reasons.append({"prompt": entry["prompt"], "file": path,
                        "reasons": entry["reasons"] + [why]})
    write_json(summary, os.path.join(out_dir, f"{shopper}.json"))
    if personal_report:
        privacy.write_personal_report(personal_report, shopper, reasons, len(found["events"]))
    return summary


def make_parser():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", help="training run folder (default: the shipped model, "
                                      "models/adgan)")
    parser.add_argument("--user-events", required=True, help="a JSONL event log")
    parser.add_argument("--user", required=True,
                        help="the shopper whose creatives to make: their id or pseudonym")
    parser.add_argument("--out-dir", required=True, help="where the creatives go")
    parser.add_argument("-n", "--num-images", type=int, default=4,
                        help="candidates per prompt to choose the closest from")
    parser.add_argument("--user-prompts", type=int, default=3,
                        help="how many ranked prompts to draw")
    parser.add_argument("--seed", type=int, default=0, help="candidate k uses SEED+k")
    parser.add_argument("--max-tries", type=int, default=DEFAULT_MAX_TRIES,
                        help="the gate's budget per candidate")
    parser.add_argument("--no-gate", action="store_true", help="keep each seed's first draw")
    parser.add_argument("--encoder", help="dual encoder for the shopper's interest (default: "
                                          "the run's own RUN/text_encoder)")
    parser.add_argument("--personal-report", metavar="FILE",
                        help="also write why each prompt was chosen (quotes the shopper's "
                             "events: personal data, marked so) to FILE")
    parser.add_argument("--salt-file", help="the pseudonym salt (default $ADGAN_SALT_FILE or "
                                            "~/.config/adgan/pseudonym-salt; made if missing)")
    add_producer_flag(parser)
    return parser


def main(argv=None):
    """CLI: a shopper's personalised creatives; returns the PNG paths."""
    parser = make_parser()
    args = parser.parse_args(argv)
    for name in ("num_images", "user_prompts", "max_tries"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    try:
        salt = privacy.load_salt(args.salt_file)
        summary = make_user_creatives(
            sources.RunSource(Run(args.run, gated=not args.no_gate)), args.user_events,
            args.user, args.out_dir, prompts=args.user_prompts, candidates=args.num_images,
            seed=args.seed, num_candidates=args.max_tries, encoder_dir=args.encoder, salt=salt,
            personal_report=args.personal_report, producer=args.producer)
    except (EventLogError, sources.SourceError, RunError, ManifestError,
            ValueError) as error:
        parser.exit(1, f"personalize: {error}\n")
    if summary["skipped_lines"]:
        print(f"personalize: skipped {summary['skipped_lines']} malformed line(s) of "
              f"{args.user_events}: " + "; ".join(f"line {s['line']}: {s['reason']}"
                                                  for s in summary["skipped"][:5]),
              file=sys.stderr)
    for item in summary["creatives"]:
        print(f"personalize: {item['file']}: {item['prompt']!r} (prompt {item['rank']} for "
              f"{summary['shopper']})")
    if args.personal_report:
        print(f"personalize: the reasons are in {args.personal_report} (personal data)")
    return [item["file"] for item in summary["creatives"]]


def console_main(argv=None):
    """Entry point of the installed console script: exit status 0 on success, else one line
    saying what went wrong (`helpers.run_command`)."""
    run_command(lambda: main(argv), "personalize")


if __name__ == "__main__":
    console_main()
