"""Shopper privacy: pseudonyms, and no shopper's id or words in any creative."""

import json
import os
import re
import stat

import pytest
from PIL import Image

from ads import personalize, privacy
from conftest import ROOT, assert_labelled, exiftool

# they draw through the commands' main(): one load of each model file (conftest)
pytestmark = pytest.mark.usefixtures("shared_models")

EXAMPLE_LOG = os.path.join(ROOT, "data", "examples", "events.jsonl")
SHIPPED = os.path.join(ROOT, "models", "adgan")


def test_pseudonyms_are_salted_stable_and_the_salt_is_private(tmp_path):
    path = str(tmp_path / "salt" / "pseudonym-salt")
    salt = privacy.load_salt(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600 and len(salt) == 64
    assert privacy.load_salt(path) == salt  # made once, then kept
    first = privacy.pseudonym("u1", salt)
    assert re.fullmatch(r"shopper-[0-9a-f]{12}", first) and first == privacy.pseudonym("u1", salt)
    assert first != privacy.pseudonym("u2", salt)
    assert first != privacy.pseudonym("u1", privacy.load_salt(str(tmp_path / "other")))
    (tmp_path / "short").write_text("abc")
    with pytest.raises(ValueError, match="salt is too short"):
        privacy.load_salt(str(tmp_path / "short"))


def output_texts(folder):
    """{file: the text a reader finds in it}: JSON files whole, PNGs' metadata (Pillow's text
    chunks and exiftool's reading), never the compressed pixels."""
    texts = {}
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        if name.endswith(".png"):
            with Image.open(path) as picture:
                texts[name] = json.dumps(picture.text, ensure_ascii=False)
            texts[name] += json.dumps(exiftool(path) or {}, ensure_ascii=False)
        else:
            with open(path, encoding="utf-8") as f:
                texts[name] = f.read()
    return texts


def example_events():
    """The example event log's events, and its shoppers' ids in order."""
    with open(EXAMPLE_LOG, encoding="utf-8") as f:
        events = [json.loads(line) for line in f if line.strip()]
    return events, sorted({e["user"] for e in events})


# one test per shopper: each draws with the shipped model, so they can run on separate workers
@pytest.mark.parametrize("user", example_events()[1])
def test_example_shoppers_creatives_carry_no_id_and_no_event_text(user, tmp_path, capsys):
    events, users = example_events()
    report = tmp_path / "private" / "reasons.json"
    out = tmp_path / "ads" / f"campaign-{users.index(user)}"
    files = personalize.main(["--run", SHIPPED, "--user-events", EXAMPLE_LOG, "--user", user,
                              "--out-dir", str(out), "-n", "1", "--user-prompts", "2",
                              "--max-tries", "2", "--personal-report", str(report)])
    assert len(files) == 2
    for path in files:
        assert_labelled(path, json.load(open(path[:-4] + ".json", encoding="utf-8"))[
            "layout"]["ai_label"]["text"])
    texts = output_texts(out)
    assert any(name.startswith("shopper-") for name in texts)  # the list, by pseudonym
    for name, text in texts.items():
        for other in users:
            assert not re.search(rf"(?<![0-9A-Za-z]){re.escape(other)}(?![0-9A-Za-z])",
                                 text), (name, other)
        for event in events:
            assert event["text"] not in text, (name, event["text"])
    stdout = capsys.readouterr().out
    assert user not in stdout.split() and not any(e["text"] in stdout for e in events)
    # asked for, the reasons quote the shopper's own events, in a report marked personal
    why = json.load(open(report, encoding="utf-8"))
    assert why["personal_data"] and why["shopper"] == privacy.pseudonym(
        user, privacy.load_salt())
    quoted = json.dumps(why["creatives"], ensure_ascii=False)
    assert any(e["text"] in quoted for e in events if e["user"] == user)
    assert not any(e["text"] in quoted for e in events if e["user"] != user)
