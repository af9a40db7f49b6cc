"""A shopper event log: reading it line by line, finding a shopper, weighing events by age.

An event log is JSONL, one event a line:

    {"user": "u1", "type": "search", "text": "黑色羽绒服", "ts": "2026-11-20T10:00:00"}

`type` is search, click or purchase; `ts` is ISO 8601 or Unix seconds. Each
event weighs TYPE_WEIGHTS[type] x 0.5 ** (age / half-life), its age counted back
from the user's latest event (so a log gives the same answer whenever it is
read). Malformed lines are skipped and counted with their line number, never fatal.
A shopper is named by their id or by their pseudonym (ads/privacy.py), and only the
pseudonym is ever shown.
"""

import datetime
import json
import math
import os

import numpy as np

from adgan.text.tokenizer import clean_text
from ads import privacy

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


def user_events(events, user, path="the log", salt=None):
    """The shopper's events, oldest first: `user` is their id or, given the `salt`, their
    pseudonym. `EventLogError` names the problem if there are none (listing some of the
    log's shoppers by pseudonym, never by id)."""
    named = (lambda e: e["user"] == user or privacy.pseudonym(e["user"], salt) == user
             ) if salt is not None else (lambda e: e["user"] == user)
    mine = sorted((e for e in events if named(e)), key=lambda e: e["ts"])
    if not mine:
        users = sorted({e["user"] for e in events})
        if not users:
            raise EventLogError(f"{path} has no usable event")
        hint = f", e.g. {', '.join(sorted(shoppers(events, salt))[:5])}" if salt else ""
        raise EventLogError(f"shopper {user!r} has no events in {path} ({len(users)} "
                            f"shoppers{hint})")
    return mine


def shoppers(events, salt):
    """{pseudonym: user id} of the log's shoppers."""
    return {privacy.pseudonym(e["user"], salt): e["user"] for e in events}


def weigh(events, half_life_days=HALF_LIFE_DAYS, now=None):
    """Each event's weight: its type's weight, halved every `half_life_days` of age."""
    now = max(e["ts"] for e in events) if now is None else now
    return np.array([TYPE_WEIGHTS[e["type"]]
                     * 0.5 ** (max(0.0, now - e["ts"]) / 86400.0 / half_life_days)
                     for e in events])
