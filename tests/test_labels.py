"""The AI-generated labels (labels.py): written by Pillow, spliced in-graph, checked."""

import json
import struct
import subprocess

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image, PngImagePlugin

from adgan import labels
from conftest import assert_labelled, exiftool

MASK = 2 ** 64 - 1


def siphash24(key, message):
    """SipHash-2-4, written out from its paper: what the README tells a verifier to use."""
    k0, k1 = key
    v = [k0 ^ 0x736F6D6570736575, k1 ^ 0x646F72616E646F6D, k0 ^ 0x6C7967656E657261,
         k1 ^ 0x7465646279746573]
    rotate = lambda x, b: ((x << b) | (x >> (64 - b))) & MASK  # noqa: E731

    def rounds(count):
        for _ in range(count):
            v[0] = (v[0] + v[1]) & MASK
            v[1] = rotate(v[1], 13) ^ v[0]
            v[0] = rotate(v[0], 32)
            v[2] = (v[2] + v[3]) & MASK
            v[3] = rotate(v[3], 16) ^ v[2]
            v[0] = (v[0] + v[3]) & MASK
            v[3] = rotate(v[3], 21) ^ v[0]
            v[2] = (v[2] + v[1]) & MASK
            v[1] = rotate(v[1], 17) ^ v[2]
            v[2] = rotate(v[2], 32)

    end = len(message) - len(message) % 8
    words = [struct.unpack_from("<Q", message, i)[0] for i in range(0, end, 8)]
    last = (len(message) & 0xFF) << 56
    for j, byte in enumerate(message[end:]):
        last |= byte << (8 * j)
    for word in words + [last]:
        v[3] ^= word
        rounds(2)
        v[0] ^= word
    v[2] ^= 0xFF
    rounds(4)
    return v[0] ^ v[1] ^ v[2] ^ v[3]


def picture(seed=0, size=(12, 20)):
    return np.random.default_rng(seed).integers(0, 256, (*size, 3), dtype=np.uint8)


def test_the_digest_is_the_documented_siphash_of_header_and_pixels():
    assert siphash24((0x0706050403020100, 0x0F0E0D0C0B0A0908), bytes(range(15))) == \
        0xA129CA6149BE45E5  # the SipHash paper's test vector
    pixels = picture()
    header = labels.digest_header("adgan", "0123", "AI生成", 12, 20)
    assert header == "adgan-aigc-1\nadgan\n0123\nAI生成\n12x20\n".encode()
    expected = labels.DIGEST_PREFIX + "".join(
        f"{siphash24(key, header + pixels.tobytes()) % (2 ** 63 - 1):016x}"
        for key in labels.DIGEST_KEYS)
    assert labels.pixel_digest(pixels, "adgan", "0123", "AI生成") == expected


def test_a_labelled_png_reads_back_and_an_edit_breaks_the_hash(tmp_path, capsys):
    path = tmp_path / "a.png"
    label = labels.save_labelled_png(picture(), str(path), "某某科技 & Co", "AI-generated")
    aigc = assert_labelled(path, "AI-generated")
    assert aigc["ContentProducer"] == "某某科技 & Co" == label["ContentProducer"]
    assert set(aigc) == {"Label", "ContentProducer", "ProduceID", "ReservedCode1",
                         "ContentPropagator", "PropagateID", "ReservedCode2"}
    assert np.array_equal(np.asarray(Image.open(path)), picture())
    assert labels.main([str(path)]) == 0
    assert "ok: AIGC label yes" in capsys.readouterr().out

    # one pixel changed, the labels copied over as an editor would keep them
    with Image.open(path) as original:
        kept = PngImagePlugin.PngInfo()
        kept.add_text("AIGC", original.text["AIGC"])
        kept.add_itxt("XML:com.adobe.xmp", original.text["XML:com.adobe.xmp"])
        edited = np.asarray(original).copy()
    edited[3, 4, 1] ^= 1
    Image.fromarray(edited).save(tmp_path / "edited.png", pnginfo=kept)
    Image.fromarray(edited).save(tmp_path / "stripped.png")  # labels dropped
    Image.fromarray(edited).save(tmp_path / "photo.jpg")
    (tmp_path / "notes.png").write_text("not a picture")
    files = [str(tmp_path / name) for name in ("edited.png", "stripped.png", "photo.jpg",
                                               "notes.png", "missing.png")]
    assert labels.main([str(path), *files]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].endswith("hash matches") and "FAILED" not in lines[0]
    assert "FAILED" in lines[1] and "hash DOES NOT MATCH" in lines[1]
    assert "AIGC label MISSING" in lines[2] and "XMP trainedAlgorithmicMedia MISSING" in lines[2]
    assert "not a PNG" in lines[3] and "not a readable image" in lines[4]
    assert "No such file" in lines[5]
    assert labels.main(["--json", files[0]]) == 1
    assert json.loads(capsys.readouterr().out)["hash"] == "does not match"


def test_a_creative_with_its_visible_label_off_fails_the_checker(tmp_path, capsys):
    path = tmp_path / "off.png"
    labels.save_labelled_png(picture(), str(path), explicit=labels.EXPLICIT_OFF)
    report = labels.check(str(path))
    assert report["aigc"] and report["xmp"] and report["hash"] == "matches"
    assert not report["ok"] and labels.main([str(path)]) == 1
    assert "explicit label OFF" in capsys.readouterr().out


def test_labels_spliced_in_the_graph_are_valid_pngs_with_matching_hashes(tmp_path):
    images = tf.constant(np.stack([picture(k, (16, 24)) for k in range(3)]))

    @tf.function
    def serve(images):
        encoded = tf.map_fn(tf.io.encode_png, images, fn_output_signature=tf.string)
        return labels.label_png_in_graph(encoded, images, "shop-42")

    ids = set()
    for k, png in enumerate(serve(images).numpy()):
        path = tmp_path / f"served{k}.png"
        path.write_bytes(png)
        aigc = assert_labelled(path)  # Pillow checks every chunk's CRC while reading
        assert aigc["ContentProducer"] == "shop-42"
        assert np.array_equal(tf.io.decode_png(png).numpy(), images[k].numpy())
        ids.add(aigc["ProduceID"])
    assert len(ids) == 3
    if exiftool(tmp_path / "served0.png") is not None:
        result = subprocess.run(["exiftool", "-validate", "-warning", "-a",
                                 str(tmp_path / "served0.png")], capture_output=True, text=True)
        assert "Validate                        : OK" in result.stdout, result.stdout


def test_the_producer_is_checked():
    assert labels.producer_name() == "adgan"
    assert labels.producer_name("某某科技") == "某某科技"
    for bad in ("", "   ", "x" * 65, "a\nb", "{ID}"):
        with pytest.raises(ValueError, match="producer must be"):
            labels.producer_name(bad)
