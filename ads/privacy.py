"""Shopper privacy: pseudonyms for user ids, and the one report that may hold personal data.

A shopper's id never leaves the event log: wherever adgan writes or shows a shopper
it uses a pseudonym, "shopper-" and 12 hex digits of HMAC-SHA256(salt, id). The salt
is 32 random bytes kept in one file outside every output (`--salt-file`, else
$ADGAN_SALT_FILE, else ~/.config/adgan/pseudonym-salt, made on first use, readable by
its owner only), so the same shopper keeps one pseudonym across runs while a reader
of the outputs cannot recompute it from a guessed id. Deleting the salt file
unlinks every pseudonym made with it from its shopper.

Creatives and their sidecars carry no shopper at all. The reasons a prompt was
chosen for a shopper (their events' texts, types and ages) are personal data: they
are written only when asked for (`--personal-report FILE`), into a report that says so.
"""

import hashlib
import hmac
import os
import secrets

from adgan.helpers import atomic_path, write_json

SALT_BYTES = 32
PREFIX = "shopper-"
NOTICE = ("PERSONAL DATA: this report links a shopper's pseudonym to their searches, clicks "
          "and purchases. Keep it inside the shop, share it with no ad platform or agency, and "
          "delete it when the campaign is done.")


def salt_path(path=None):
    """The salt file: `path`, else $ADGAN_SALT_FILE, else ~/.config/adgan/pseudonym-salt."""
    return path or os.environ.get("ADGAN_SALT_FILE") or os.path.join(
        os.path.expanduser("~"), ".config", "adgan", "pseudonym-salt")


def load_salt(path=None):
    """The pseudonym salt (bytes); made (random, mode 0600, atomically) when the file does
    not exist yet. A file that is too short is a ValueError naming it."""
    path = salt_path(path)
    if not os.path.exists(path):
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        with atomic_path(path) as tmp:
            with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as f:
                f.write(secrets.token_hex(SALT_BYTES))
    with open(path, encoding="ascii", errors="replace") as f:
        salt = f.read().strip()
    if len(salt) < 32:
        raise ValueError(f"{path}: the pseudonym salt is too short ({len(salt)} characters); "
                         "delete the file to make a new one (old pseudonyms then change)")
    return salt.encode()


def pseudonym(user, salt):
    """"shopper-" + 12 hex digits of HMAC-SHA256(salt, user id)."""
    return PREFIX + hmac.new(salt, str(user).encode("utf-8"), hashlib.sha256).hexdigest()[:12]


def write_personal_report(path, shopper, prompts, events):
    """Write the report of why each prompt was chosen for one shopper (personal data,
    `NOTICE`); `prompts`: [{"prompt", "file", "reasons"}]; `events`: how many were read."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    write_json({"personal_data": True, "notice": NOTICE, "shopper": shopper, "events": events,
                "creatives": prompts}, path)
