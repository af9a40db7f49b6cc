"""AI-generated labels on every PNG: written with Pillow, spliced into served PNGs in-graph, checked.

    adgan-label FILE... [--json]   # which labels each image carries; do its pixels still match?

GB 45438-2025 (《网络安全技术 人工智能生成合成内容标识方法》) asks for an implicit label in
the file's metadata; the EU AI Act (Article 50) for machine-readable marking. Each
PNG gets two text chunks after its header:

  tEXt "AIGC"               {"AIGC": {"Label": "1", "ContentProducer": PRODUCER,
                             "ContentPropagator": "", "PropagateID": "", "ReservedCode2": "",
                             "ProduceID": ID, "ReservedCode1": DIGEST}}  (ASCII JSON)
  iTXt "XML:com.adobe.xmp"  XMP: Iptc4xmpExt:DigitalSourceType = trainedAlgorithmicMedia
                            (IPTC), the same JSON as TC260:AIGC, and adgan:ExplicitLabel:
                            the visible label drawn ("AI生成", "AI-generated"), "off" when
                            turned off, or "none" for a product picture (not a creative)

ID is unique per picture: 12 hex digits of milliseconds since 1970 and 20 random ones.
DIGEST ("siphash24:" + 32 hex digits) binds the label to the pixels: SipHash-2-4 under
the two published keys `DIGEST_KEYS`, each value taken modulo 2^63 - 1 (TensorFlow's
`tf.strings.to_hash_bucket_strong`, which is what computes it, in and out of the served
graph), of `digest_header(...)` followed by the RGB pixels, row by row. It detects an
edit; it is not a signature: whoever edits a picture can label it again.
"""

import argparse
import io
import json
import os
import secrets
import sys
import time
import xml.etree.ElementTree as ElementTree
import zlib
from xml.sax.saxutils import escape

import numpy as np
import tensorflow as tf
from PIL import Image, PngImagePlugin, UnidentifiedImageError

from adgan.helpers import atomic_path, run_command

DEFAULT_PRODUCER = "adgan"
AIGC_KEY, XMP_KEY = "AIGC", "XML:com.adobe.xmp"
DIGITAL_SOURCE_TYPE = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
NAMESPACES = {"x": "adobe:ns:meta/", "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
              "Iptc4xmpExt": "http://iptc.org/std/Iptc4xmpExt/2008-02-29/",
              "TC260": "http://www.tc260.org.cn/ns/AIGC/1.0/",
              "adgan": "https://github.com/adgan/adgan/ns/label/1.0/"}
NO_EXPLICIT, EXPLICIT_OFF = "none", "off"  # adgan:ExplicitLabel of a product picture / turned off
DIGEST_KEYS = ((0x616467616E2D6169, 0x67632D6C6162656C), (0x2D706978656C732D, 0x62696E64696E6721))
DIGEST_PREFIX = "siphash24:"
MAX_PRODUCER = 64
HEX = np.array(list("0123456789abcdef"))
PNG_HEADER_BYTES = 33  # the 8-byte signature and the IHDR chunk (4 + 4 + 13 + 4)


def producer_name(name=None):
    """The ContentProducer: `name`, else $ADGAN_PRODUCER, else "adgan"; ValueError when it is
    empty, longer than `MAX_PRODUCER` characters or holds control characters or braces (the
    served graph's placeholders)."""
    name = name if name is not None else os.environ.get("ADGAN_PRODUCER") or DEFAULT_PRODUCER
    if (not name.strip() or len(name) > MAX_PRODUCER or not name.isprintable()
            or "{" in name or "}" in name):
        raise ValueError(f"producer must be 1-{MAX_PRODUCER} printable characters without "
                         f"braces, got {name!r}")
    return name


def add_producer_flag(parser):
    """`--producer NAME` for a command that writes or serves pictures: checked while the
    flags are parsed (a bad $ADGAN_PRODUCER too), so `args.producer` is always usable."""
    def checked(name):
        try:
            return producer_name(name)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    parser.add_argument("--producer", type=checked,
                        default=os.environ.get("ADGAN_PRODUCER") or DEFAULT_PRODUCER,
                        help="ContentProducer of the AI-generated label (GB 45438): your "
                             "service's name or code (default $ADGAN_PRODUCER or adgan)")


def new_produce_id():
    """A unique content id: 12 hex digits of milliseconds since 1970, 20 random ones."""
    return f"{int(time.time() * 1000):012x}{secrets.token_hex(10)}"


# ----------------------------------------------------------------------------- the texts

def aigc_json(producer, produce_id, digest):
    """The GB 45438 label as ASCII JSON; ProduceID and ReservedCode1 come last (the served
    graph fills them in after a fixed prefix)."""
    return json.dumps({AIGC_KEY: {"Label": "1", "ContentProducer": producer,
                                  "ContentPropagator": "", "PropagateID": "", "ReservedCode2": "",
                                  "ProduceID": produce_id, "ReservedCode1": digest}},
                      separators=(",", ":"))


def xmp_packet(aigc, explicit):
    """An XMP packet: IPTC's DigitalSourceType, the AIGC JSON as TC260:AIGC, the explicit
    label's state as adgan:ExplicitLabel."""
    spaces = " ".join(f'xmlns:{k}="{v}"' for k, v in NAMESPACES.items() if k not in ("x", "rdf"))
    return ('<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>'
            f'<x:xmpmeta xmlns:x="{NAMESPACES["x"]}"><rdf:RDF xmlns:rdf="{NAMESPACES["rdf"]}">'
            f'<rdf:Description rdf:about="" {spaces} '
            f'Iptc4xmpExt:DigitalSourceType="{DIGITAL_SOURCE_TYPE}" '
            f'adgan:ExplicitLabel="{escape(explicit, {chr(34): "&quot;"})}">'
            f"<TC260:AIGC>{escape(aigc)}</TC260:AIGC></rdf:Description></rdf:RDF></x:xmpmeta>"
            '<?xpacket end="r"?>')


def digest_header(producer, produce_id, explicit, height, width):
    """What the digest reads before the pixels (UTF-8): the label's fields and the size."""
    return f"adgan-aigc-1\n{producer}\n{produce_id}\n{explicit}\n{height}x{width}\n".encode()


def nibbles(values, digits):
    """int64 tensor [B] -> its last `digits` hex digits [B, digits] (int64, most significant
    first)."""
    shifts = tf.constant([4 * (digits - 1 - k) for k in range(digits)], tf.int64)
    return tf.bitwise.bitwise_and(tf.bitwise.right_shift(values[:, None], shifts), 15)


def hex_text(digits):
    """Hex digits [B, N] -> [B] strings of N lower-case hex characters."""
    return tf.strings.reduce_join(tf.gather(tf.constant(HEX), digits), axis=1)


def digest_digits(messages):
    """string tensor [B] -> the digest's 32 hex digits [B, 32] (module docstring)."""
    return tf.concat([nibbles(tf.strings.to_hash_bucket_strong(messages, 2 ** 63 - 1, list(key)),
                              16) for key in DIGEST_KEYS], axis=1)


def pixel_digest(pixels, producer, produce_id, explicit):
    """The digest (str) of a uint8 RGB array [H, W, 3] under this label."""
    pixels = np.ascontiguousarray(pixels, np.uint8)
    header = digest_header(producer, produce_id, explicit, *pixels.shape[:2])
    digits = digest_digits(tf.constant([header + pixels.tobytes()]))
    return DIGEST_PREFIX + hex_text(digits)[0].numpy().decode()


# ----------------------------------------------------------------------------- Pillow files

def png_info(pixels, producer=None, explicit=NO_EXPLICIT):
    """(Pillow PngInfo with both labels, the label dict) for uint8 RGB pixels [H, W, 3]."""
    producer = producer_name(producer)
    produce_id = new_produce_id()
    code = pixel_digest(pixels, producer, produce_id, explicit)
    aigc = aigc_json(producer, produce_id, code)
    info = PngImagePlugin.PngInfo()
    info.add_text(AIGC_KEY, aigc)
    info.add_itxt(XMP_KEY, xmp_packet(aigc, explicit), zip=False)
    return info, {**json.loads(aigc)[AIGC_KEY], "ExplicitLabel": explicit}


def rgb(image):
    """A uint8 [H, W, 3] array or a PIL image -> an RGB PIL image."""
    return (image if isinstance(image, Image.Image) else Image.fromarray(np.asarray(image, np.uint8))
            ).convert("RGB")


def save_labelled_png(image, path, producer=None, explicit=NO_EXPLICIT):
    """Save a picture as a labelled PNG, atomically; returns the label dict."""
    picture = rgb(image)
    info, label = png_info(np.asarray(picture), producer, explicit)
    with atomic_path(path) as tmp:
        picture.save(tmp, format="PNG", pnginfo=info)
    return label


def labelled_png_bytes(image, producer=None, explicit=NO_EXPLICIT):
    """The labelled PNG file of a picture, as bytes."""
    picture = rgb(image)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG", pnginfo=png_info(np.asarray(picture), producer, explicit)[0])
    return buffer.getvalue()


# ----------------------------------------------------------------------------- in the graph

def crc_table():
    """CRC-32 (PNG's, zlib's) of each byte value: the table of the byte-at-a-time loop."""
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0xEDB88320 if crc & 1 else 0)
        table.append(crc)
    return table


def digit_effects(length, positions):
    """[len(positions), 16]: what each hex character at each of `positions` of a `length`-byte
    message XORs into its CRC-32, against the message with zero bytes there. CRC-32 is
    linear in the message, so a chunk's CRC is its template's with the digits' effects
    XORed in: no byte-by-byte loop in the graph."""
    table = crc_table()
    current = [table[ord(digit)] for digit in HEX]  # a digit at the last byte
    wanted, found = set(positions), {}
    for position in range(length - 1, min(positions) - 1, -1):
        if position in wanted:
            found[position] = list(current)
        current = [table[r & 0xFF] ^ (r >> 8) for r in current]  # one more byte after it
    return [found[position] for position in positions]


def xor_across(values):
    """int64 tensor [B, N] of 32-bit values -> [B]: their XOR (bit by bit, parity of sums)."""
    bits = tf.bitwise.bitwise_and(tf.bitwise.right_shift(values[..., None],
                                                         tf.range(32, dtype=tf.int64)), 1)
    parity = tf.math.floormod(tf.reduce_sum(bits, axis=1), 2)
    return tf.reduce_sum(tf.bitwise.left_shift(parity, tf.range(32, dtype=tf.int64)), axis=1)


def big_endian(values):
    """int64 tensor [B] of 32-bit values -> [B] 4-byte big-endian strings."""
    shifts = tf.constant([24, 16, 8, 0], tf.int64)
    parts = tf.bitwise.bitwise_and(tf.bitwise.right_shift(values[:, None], shifts), 255)
    return tf.strings.reduce_join(tf.gather(tf.constant([bytes([b]) for b in range(256)]), parts),
                                  axis=1)


def text_chunk(kind, text, ids, digests):
    """PNG chunks [B] of type `kind` whose data is `text` with its "{ID}" and "{DIGEST}"
    placeholders filled by the hex digits `ids` and `digests` [B, 32]."""
    prefix, rest = (kind + text).encode().split(b"{ID}")
    middle, suffix = rest.split(b"{DIGEST}")
    middle += DIGEST_PREFIX.encode()
    template = prefix + bytes(32) + middle + bytes(32) + suffix  # the digits as zero bytes
    positions = [*range(len(prefix), len(prefix) + 32),
                 *range(len(prefix) + 32 + len(middle), len(prefix) + 64 + len(middle))]
    effects = tf.constant(digit_effects(len(template), positions), tf.int64)  # [64, 16]
    digits = tf.concat([ids, digests], axis=1)  # [B, 64], in the order of `positions`
    crc = tf.bitwise.bitwise_xor(tf.constant(zlib.crc32(template), tf.int64), xor_across(
        tf.gather(tf.reshape(effects, [-1]), tf.range(64, dtype=tf.int64) * 16 + digits)))
    return tf.strings.join([(len(template) - 4).to_bytes(4, "big") + prefix, hex_text(ids),
                            middle, hex_text(digests), suffix, big_endian(crc)])


def label_png_in_graph(png_bytes, images, producer, explicit=NO_EXPLICIT):
    """PNG files [B] (tf.io.encode_png of uint8 `images` [B, H, W, 3]) -> the same files
    with both labels spliced in after the header chunk, inside the graph."""
    batch, height, width = tf.unstack(tf.shape(images)[:3])
    milliseconds = tf.cast(tf.timestamp() * 1000.0, tf.int64)
    ids = tf.concat([nibbles(tf.fill([batch], milliseconds), 12),
                     tf.random.uniform([batch, 20], 0, 16, tf.int64)], axis=1)  # [B, 32]
    before_id, after_id = digest_header(producer, "{ID}", explicit, 0, 0).decode(
        ).rsplit("0x0", 1)[0].split("{ID}")
    headers = tf.strings.join([before_id, hex_text(ids), after_id, tf.strings.as_string(height),
                               "x", tf.strings.as_string(width), "\n"])
    # the raw RGB bytes: a serialized uint8 tensor ends with them (TensorProto's
    # tensor_content, its last field), 60 times faster than joining one string a byte
    serialized = tf.map_fn(tf.io.serialize_tensor, images, fn_output_signature=tf.string)
    size = tf.fill([batch], height * width * 3)
    pixels = tf.strings.substr(serialized, tf.strings.length(serialized) - size, size)
    digests = digest_digits(tf.strings.join([headers, pixels]))
    aigc = aigc_json(producer, "{ID}", "{DIGEST}")
    chunks = [text_chunk("tEXt", f"{AIGC_KEY}\0{aigc}", ids, digests),
              text_chunk("iTXt", f"{XMP_KEY}\0\0\0\0\0{xmp_packet(aigc, explicit)}", ids,
                         digests)]
    return tf.strings.join([tf.strings.substr(png_bytes, 0, PNG_HEADER_BYTES), *chunks,
                            tf.strings.substr(png_bytes, PNG_HEADER_BYTES, -1)])


# ----------------------------------------------------------------------------- reading

def read_labels(source):
    """The labels of a PNG file (a path or a binary file object): {"aigc": the AIGC fields or
    None, "xmp": {"digital_source_type", "explicit", "aigc"} or None, "pixels": uint8
    RGB [H, W, 3], "problems": [what is unreadable]}. Not a PNG: ValueError."""
    try:
        with Image.open(source) as picture:
            if picture.format != "PNG":
                raise ValueError(f"a {picture.format} file, not a PNG: no labels to read")
            picture.load()
            texts, pixels = dict(getattr(picture, "text", {})), np.asarray(picture.convert("RGB"))
    except (UnidentifiedImageError, Image.DecompressionBombError, SyntaxError) as error:
        raise ValueError(f"not a readable image ({type(error).__name__}: {error})") from None
    found = {"aigc": None, "xmp": None, "pixels": pixels, "problems": []}
    if AIGC_KEY in texts:
        found["aigc"] = aigc_fields(texts[AIGC_KEY], found["problems"], "the AIGC chunk")
    if XMP_KEY in texts:
        found["xmp"] = xmp_fields(texts[XMP_KEY], found["problems"])
    return found


def aigc_fields(text, problems, where):
    """The fields of an AIGC JSON label, or None (the problem added to `problems`)."""
    try:
        fields = json.loads(text)[AIGC_KEY]
        if not isinstance(fields, dict):
            raise TypeError("AIGC is not an object")
        return fields
    except (ValueError, KeyError, TypeError) as error:
        problems.append(f"{where} is not AIGC JSON ({error})")
        return None


def xmp_fields(text, problems):
    """DigitalSourceType, adgan:ExplicitLabel and TC260:AIGC of an XMP packet (None where
    absent), or None when the packet does not parse."""
    try:
        root = ElementTree.fromstring(text.split("?>", 1)[1].rsplit("<?xpacket", 1)[0]
                                      if text.startswith("<?xpacket") else text)
    except (ElementTree.ParseError, IndexError) as error:
        problems.append(f"the XMP does not parse ({error})")
        return None
    out = {"digital_source_type": None, "explicit": None, "aigc": None}
    names = {"digital_source_type": ("Iptc4xmpExt", "DigitalSourceType"),
             "explicit": ("adgan", "ExplicitLabel"), "aigc": ("TC260", "AIGC")}
    for description in root.iter(f"{{{NAMESPACES['rdf']}}}Description"):
        for field, (prefix, name) in names.items():
            tag = f"{{{NAMESPACES[prefix]}}}{name}"
            value = description.get(tag)
            element = description.find(tag)
            value = value if value is not None else (element.text if element is not None else None)
            out[field] = value if value is not None else out[field]
    if out["aigc"] is not None:
        out["aigc"] = aigc_fields(out["aigc"], problems, "the XMP's TC260:AIGC")
    return out


def check(source):
    """What `adgan-label` reports for one file: {"aigc", "xmp", "explicit", "hash",
    "problems", "ok"}; "hash" is "matches", "does not match" or "cannot check"."""
    found = read_labels(source)
    aigc, xmp, problems = found["aigc"], found["xmp"], found["problems"]
    report = {"aigc": aigc is not None and aigc.get("Label") == "1",
              "xmp": xmp is not None and xmp["digital_source_type"] == DIGITAL_SOURCE_TYPE,
              "explicit": (xmp or {}).get("explicit"), "hash": "cannot check",
              "problems": problems, "label": aigc}
    if aigc is not None and aigc.get("Label") != "1":
        problems.append(f"the AIGC Label is {aigc.get('Label')!r}, not \"1\" (generated)")
    fields = ("ContentProducer", "ProduceID", "ReservedCode1")
    if aigc and all(isinstance(aigc.get(k), str) for k in fields):
        expected = pixel_digest(found["pixels"], aigc["ContentProducer"], aigc["ProduceID"],
                                report["explicit"] or NO_EXPLICIT)
        report["hash"] = "matches" if expected == aigc["ReservedCode1"] else "does not match"
    if xmp and xmp["aigc"] is not None and xmp["aigc"] != aigc:
        problems.append("the XMP's TC260:AIGC differs from the AIGC chunk")
    report["ok"] = (report["aigc"] and report["xmp"] and report["hash"] == "matches"
                    and report["explicit"] != EXPLICIT_OFF and not problems)
    return report


def describe(path, report):
    """One line a person reads: each label, the explicit label's state, the hash."""
    label = report["label"] or {}
    explicit = {None: "not recorded", NO_EXPLICIT: "none (a product picture, not a creative)",
                EXPLICIT_OFF: "OFF (turned off when it was made)"}.get(
        report["explicit"], repr(report["explicit"]))
    parts = [f"AIGC label {'yes' if report['aigc'] else 'MISSING'}"
             + (f" (producer {label.get('ContentProducer')!r}, id {label.get('ProduceID')})"
                if report["aigc"] else ""),
             f"XMP trainedAlgorithmicMedia {'yes' if report['xmp'] else 'MISSING'}",
             f"explicit label {explicit}",
             f"hash {report['hash'].upper() if report['hash'] != 'matches' else 'matches'}"]
    return f"{path}: {'ok' if report['ok'] else 'FAILED'}: " + "; ".join(
        parts + report["problems"])


def main(argv=None):
    """CLI: one line per file; exit status 1 when any file lacks a label, has the explicit
    label off, or no longer matches its hash; 2 on a usage error."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", metavar="FILE", help="PNG files to check")
    parser.add_argument("--json", action="store_true", help="one JSON object per file instead")
    args = parser.parse_args(argv)
    failed = 0
    for path in args.files:
        try:
            report = check(path)
        except (OSError, ValueError) as error:
            report = {"ok": False, "problems": [str(getattr(error, "strerror", None) or error)]}
            line = f"{path}: FAILED: {report['problems'][0]}"
        else:
            line = describe(path, report)
        failed += not report["ok"]
        print(json.dumps({"file": path, **report}, ensure_ascii=False) if args.json else line)
    if failed:
        print(f"adgan-label: {failed} of {len(args.files)} file(s) failed", file=sys.stderr)
    return 1 if failed else 0


def console_main(argv=None):
    """Entry point of the installed console script (`helpers.run_command`)."""
    run_command(lambda: sys.exit(main(argv)), "adgan-label")


if __name__ == "__main__":
    console_main()
