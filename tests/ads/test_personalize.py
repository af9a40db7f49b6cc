import json
import os

import numpy as np
import pytest

from adgan.data import colors
from adgan.runs.run import Run
from ads import personalize, privacy

# they draw through the commands' main(): one load of each model file (conftest)
pytestmark = pytest.mark.usefixtures("shared_models")

EVENTS = [
    {"user": "u1", "type": "search", "text": "黑色羽绒服", "ts": "2026-11-20T10:00:00"},
    {"user": "u1", "type": "click", "text": "red dress", "ts": "2026-11-27T10:00:00"},
    {"user": "u1", "type": "search", "text": "jeans", "ts": "2026-11-13T10:00:00+00:00"},
    {"user": "u2", "type": "purchase", "text": "pizza", "ts": 1795000000},
]


def write_log(path, events, extra_lines=()):
    with open(path, "w", encoding="utf-8") as f:
        for event in events:
            f.write(json.dumps(event, ensure_ascii=False) + "\n")
        for line in extra_lines:
            f.write(line + "\n")
    return str(path)


class WordEncoder:
    """A stand-in dual encoder: a text's vector is the sum of one-hot word directions."""

    words = ["dress", "jeans", "coat", "pizza", "red", "black", "黑", "服", "外套"]

    def embed_texts(self, texts):
        out = np.zeros((len(texts), len(self.words)))
        for i, text in enumerate(texts):
            for j, word in enumerate(self.words):
                out[i, j] = word in text
        return out / (np.linalg.norm(out, axis=1, keepdims=True) + 1e-12)

    def embed_images(self, images):
        # image "features": mean colour channels mapped onto the first three directions
        codes = np.zeros((len(images), len(self.words)))
        codes[:, :3] = (np.asarray(images, np.float32) + 1.0).mean((1, 2))  # from [-1, 1]
        codes /= np.linalg.norm(codes, axis=1, keepdims=True) + 1e-12
        return codes, codes


def test_malformed_lines_are_skipped_and_counted(tmp_path):
    path = write_log(tmp_path / "e.jsonl", EVENTS, [
        "not json", "[1, 2]", json.dumps({"user": "u1", "type": "like", "text": "x", "ts": 1}),
        json.dumps({"user": "u1", "type": "search", "text": "  ", "ts": 1}),
        json.dumps({"user": "u1", "type": "search", "ts": 1}),
        json.dumps({"user": "u1", "type": "search", "text": "x", "ts": "yesterday"})])
    events, skipped = personalize.read_events(path)
    assert len(events) == 4 and [s["line"] for s in skipped] == [5, 6, 7, 8, 9, 10]
    reasons = " | ".join(s["reason"] for s in skipped)
    for expected in ("Expecting value", "not a JSON object", "type must be one of",
                     "empty text", "missing text", "ts is not ISO 8601"):
        assert expected in reasons
    with pytest.raises(personalize.EventLogError, match="shopper 'u9' has no events .*2 shoppers"):
        personalize.user_events(events, "u9", path)
    with pytest.raises(personalize.EventLogError, match="event log not found"):
        personalize.read_events(str(tmp_path / "none.jsonl"))
    empty = write_log(tmp_path / "empty.jsonl", [], ["garbage"])
    with pytest.raises(personalize.EventLogError, match="no usable event"):
        personalize.user_events(personalize.read_events(empty)[0], "u1", empty)


def test_recency_halves_a_weight_every_half_life(tmp_path):
    events, _ = personalize.read_events(write_log(tmp_path / "e.jsonl", EVENTS))
    mine = personalize.user_events(events, "u1")
    assert [e["text"] for e in mine] == ["jeans", "黑色羽绒服", "red dress"]  # oldest first
    weights = personalize.weigh(mine)
    # a week apart each: search 1.0 x 0.25, search 1.0 x 0.5, click 1.5 x 1
    np.testing.assert_allclose(weights, [0.25, 0.5, 1.5])


def test_prompts_are_catalogue_phrases_never_the_shoppers_texts(tmp_path):
    events, _ = personalize.read_events(write_log(tmp_path / "e.jsonl", EVENTS))
    mine = personalize.user_events(events, "u1")
    weights = personalize.weigh(mine)
    concepts = ["coat", "外套", "dress", "pizza", "jeans", "衣服"]
    ranked = personalize.rank_prompts(mine, weights, concepts)
    # "red dress" names dress (its colour kept), "jeans" names jeans; 黑色羽绒服 names none
    assert [r["prompt"] for r in ranked] == ["red dress", "jeans"]
    assert ("click 'red dress' 0.0 days before the latest event names 'dress' (weight 1.50)"
            in ranked[0]["reasons"][0])
    ranked = personalize.rank_prompts(mine, weights, concepts, WordEncoder(), count=6)
    prompts = [r["prompt"] for r in ranked]
    assert prompts[0] == "red dress"
    # with an encoder, 黑色羽绒服 points at its nearest Chinese name, 衣服 (服 matches)
    coat = next(r for r in ranked if r["prompt"] == "黑色衣服")
    assert "is nearest (cosine" in coat["reasons"][0]
    # English is the majority language; the favourite colour (red, by weight) joins a concept
    suggestion = next(r for r in ranked if r["prompt"] == "red jeans")
    assert any(reason.startswith("preferred colour red") for reason in suggestion["reasons"])
    assert any("close to the shopper's interest: 'jeans'" in r for r in suggestion["reasons"])
    colour_words = [w for english, chinese, *_ in colors.PALETTE for w in (english + " ", chinese)]
    for prompt in prompts:  # a catalogue name, maybe after a colour word: nothing typed
        assert next((prompt[len(w):] for w in colour_words if prompt.startswith(w)),
                    prompt) in concepts, prompt
    # a catalogue name inside a longer one is the longer one's; plurals and case are words
    assert personalize.catalogue_matches("Two Red Apples", ["apple", "red apple"]) == [(1, 1.0)]
    assert personalize.catalogue_matches("pineapple juice", ["apple"]) == []
    assert personalize.catalogue_matches("梨", ["梨"]) == [(0, 1.0)]
    assert personalize.catalogue_matches("梨花", ["梨"]) == []  # one Han character: whole text


def test_pick_closest_prefers_the_image_nearest_the_interest():
    encoder = WordEncoder()
    images = np.zeros((3, 4, 4, 3), np.uint8)
    images[0, ..., 2] = 255  # its code points at "coat"
    images[1, ..., 0] = 255  # at "dress"
    images[2, ..., 1] = 255  # at "jeans"
    interest = encoder.embed_texts(["dress"])[0]
    best, similarity = personalize.pick_closest(encoder, images, interest)
    assert best == 1 and similarity[1] == pytest.approx(1.0)


def test_the_command_makes_a_shoppers_creatives(trained_run, tmp_path, capsys):
    log = write_log(tmp_path / "e.jsonl", EVENTS, ["{broken"])
    out, report = tmp_path / "ads", tmp_path / "private" / "why.json"
    files = personalize.main(["--run", trained_run, "--user-events", log, "--user", "u1",
                              "--out-dir", str(out), "-n", "2", "--user-prompts", "2",
                              "--personal-report", str(report)])
    captured = capsys.readouterr()
    assert "skipped 1 malformed line(s)" in captured.err and "line 5" in captured.err
    assert len(files) == 2 and all(os.path.exists(f) for f in files)
    shopper = privacy.pseudonym("u1", privacy.load_salt())
    assert shopper in captured.out and "u1" not in captured.out and "red dress" in captured.out
    summary = json.load(open(out / f"{shopper}.json", encoding="utf-8"))
    assert summary["skipped_lines"] == 1 and len(summary["creatives"]) == 2
    assert [c["prompt"] for c in summary["creatives"]] == ["red dress", "dress and jeans"]
    sidecar = json.load(open(files[0][:-4] + ".json", encoding="utf-8"))
    assert sidecar["prompt"] == "red dress" and sidecar["personalised"] == {"rank": 1, "of": 2}
    assert "user" not in sidecar and "reasons" not in sidecar
    why = json.load(open(report, encoding="utf-8"))  # asked for: the reasons, marked personal
    assert why["personal_data"] is True and "PERSONAL DATA" in why["notice"]
    assert why["shopper"] == shopper and "u1" not in json.dumps(why)
    assert any("highest gate score" in r for r in why["creatives"][0]["reasons"])  # no encoder
    again = personalize.main(["--run", trained_run, "--user-events", log, "--user", shopper,
                              "--out-dir", str(tmp_path / "again"), "-n", "2",
                              "--user-prompts", "1"])  # the pseudonym names the shopper too
    assert os.path.basename(again[0]) == os.path.basename(files[0])
    with pytest.raises(SystemExit) as exit_info:
        personalize.main(["--run", trained_run, "--user-events", log, "--user", "nobody",
                          "--out-dir", str(out)])
    err = capsys.readouterr().err
    assert exit_info.value.code == 1 and "shopper 'nobody' has no events" in err
    assert "shopper-" in err and "u2" not in err  # the log's shoppers by pseudonym only
    with pytest.raises(SystemExit):
        personalize.main(["--run", trained_run, "--user-events", log, "--out-dir", str(out)])
    assert "the following arguments are required: --user" in capsys.readouterr().err


def test_a_shopper_of_coffee_and_cake_gets_a_bundle_of_catalogue_names(tmp_path):
    log = [{"user": "s", "type": "search", "text": "现磨咖啡", "ts": "2026-11-01T10:00:00"},
           {"user": "s", "type": "search", "text": "蛋糕 外卖", "ts": "2026-11-01T10:05:00"},
           {"user": "s", "type": "click", "text": "咖啡豆", "ts": "2026-11-01T10:06:00"},
           {"user": "s", "type": "search", "text": "jeans", "ts": "2026-11-01T10:07:00"}]
    events, _ = personalize.read_events(write_log(tmp_path / "e.jsonl", log))
    mine = personalize.user_events(events, "s")
    weights = personalize.weigh(mine)
    concepts = ["咖啡", "蛋糕", "jeans"]
    plain = [r["prompt"] for r in personalize.rank_prompts(mine, weights, concepts, None)]
    assert plain[0] == "咖啡" and sorted(plain) == sorted(concepts)
    ranked = personalize.rank_prompts(mine, weights, concepts, None, bundle=True)
    bundle = next(r for r in ranked if r["prompt"] == "咖啡和蛋糕")  # same language only
    assert "two strongest products" in bundle["reasons"][0]
    scores = {r["prompt"]: r["score"] for r in ranked}
    assert scores["咖啡"] > scores["咖啡和蛋糕"] > 0


def test_a_model_that_draws_bundles_product_by_product_suggests_one(trained_run, tmp_path):
    # the tiny run was not taught bundles, but its manifest lets it split and compose them
    log = [{"user": "s", "type": "search", "text": "热饮 外带", "ts": "2026-11-01T10:00:00"},
           {"user": "s", "type": "click", "text": "水果蛋糕 六寸", "ts": "2026-11-01T10:05:00"}]
    found = personalize.suggest(write_log(tmp_path / "e.jsonl", log), "s", Run(trained_run))
    assert "水果蛋糕和热饮" in [r["prompt"] for r in found["ranked"]]  # the stronger first
