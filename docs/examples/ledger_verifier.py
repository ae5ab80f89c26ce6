#!/usr/bin/env python3
"""Independent verifier for a sealtrail case ledger, written from docs/ledger-format.md alone.

Usage: python3 ledger_verifier.py CASE_FOLDER [--trust PUBFILE ...] [--checkpoint FILE ...]

Prints ``OK`` and exits 0, or prints one ``PROBLEM <where>: <message>`` line per problem and
exits 1. Notices (section 7 torn tail, trust on first use, ...) go to stderr and never change
the verdict. Needs only the standard library and PyNaCl. Section numbers ("s1", "s4.5", ...)
refer to docs/ledger-format.md; "bf" to docs/bundle-format.md.

Bundles are checked only as far as the ledger needs: present, envelope signed by the key that
signed the bundle_sealed entry, manifest digest and case_id. The member checks of
docs/bundle-format.md section 5 are left to that document's own example verifier.
"""

import argparse
import base64
import binascii
import datetime
import hashlib
import json
import re
import sys
import zipfile
from pathlib import Path

from nacl.exceptions import CryptoError
from nacl.signing import VerifyKey

ENTRY_TYPE = b"application/vnd.sealtrail.ledger-entry.v1+json"  # s3
MANIFEST_TYPE = b"application/vnd.sealtrail.bundle-manifest.v1+json"  # bf s3
ENTRY_KEYS = {"v", "case_id", "index", "time", "clock", "action", "actor", "subject",
              "custody", "details", "prev", "sig"}  # s2
ACTOR_KEYS = {"name", "key_id", "role"}  # s2
HEX16 = re.compile(r"[0-9a-f]{16}")
HEX64 = re.compile(r"[0-9a-f]{64}")
TIME = re.compile(r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})\.(\d{6})Z")  # s2
ACTION = re.compile(r"[a-z][a-z0-9]*(_[a-z0-9]+)*")  # s5
BUNDLE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")  # s5
MAX_INT = 2**53 - 1  # s1
NOTE_NAME_BAD = set("+\u0020\u0085\u00a0\u1680\u2028\u2029\u202f\u205f\u3000") | {
    chr(c) for c in range(0x2000, 0x200B)}  # s6


class Bad(Exception):
    """A value that breaks a rule; the message says which."""


# ---- s1: canonical JSON (RFC 8785 restricted to what sealtrail writes) ----------------------

def _canon_str(s):
    out = ['"']
    for ch in s:
        short = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n",
                 "\f": "\\f", "\r": "\\r"}.get(ch)
        if short:
            out.append(short)
        elif ord(ch) < 0x20:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def canon(v):
    """The one canonical byte string of a value (raises Bad if it has none)."""
    return _canon(v).encode("utf-8")  # lone surrogates fail here: UnicodeEncodeError


def _canon(v):
    if v is None or v is True or v is False:
        return {None: "null", True: "true", False: "false"}[v]
    if isinstance(v, int):
        if not -MAX_INT <= v <= MAX_INT:
            raise Bad("integer out of range")
        return str(v)
    if isinstance(v, str):
        return _canon_str(v)
    if isinstance(v, list):
        return "[" + ",".join(_canon(x) for x in v) + "]"
    if isinstance(v, dict):
        if not all(k.isascii() for k in v):
            raise Bad("non-ASCII object key")
        return "{" + ",".join(_canon_str(k) + ":" + _canon(v[k]) for k in sorted(v)) + "}"
    raise Bad(f"value of type {type(v).__name__} not allowed")


def _pairs(pairs):
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        raise Bad("duplicate key")
    return dict(pairs)


def _no_float(text):
    raise Bad(f"floating-point number {text}")


def parse_canonical(line):
    """Parse one ledger line; it must be exactly the canonical JSON of what it parses to."""
    try:
        value = json.loads(line.decode("utf-8"), object_pairs_hook=_pairs,
                           parse_float=_no_float, parse_constant=_no_float)
        if canon(value) != line:
            raise Bad("not canonical JSON")
    except (ValueError, UnicodeError) as e:
        raise Bad(f"not canonical JSON ({e})") from None
    return value


# ---- s2 base64, s3 hashes and signatures ----------------------------------------------------

def b64(text, length=None, at_least=None):
    """Strict base64 (s2): standard alphabet, padded, zero unused bits, exact length."""
    if not isinstance(text, str) or not re.fullmatch(r"[A-Za-z0-9+/]*={0,2}", text):
        raise Bad("not strict base64")
    try:
        raw = base64.b64decode(text, validate=True)
    except binascii.Error:
        raise Bad("not strict base64") from None
    if base64.b64encode(raw).decode() != text:
        raise Bad("not strict base64 (padding or unused bits)")
    if length is not None and len(raw) != length:
        raise Bad(f"base64 of {len(raw)} bytes, expected {length}")
    if at_least is not None and len(raw) < at_least:
        raise Bad(f"base64 of {len(raw)} bytes, expected at least {at_least}")
    return raw


def pae(ptype, body):
    return b"DSSEv1 %d %s %d %s" % (len(ptype), ptype, len(body), body)


def ed25519_ok(pub, msg, sig):
    try:
        VerifyKey(pub).verify(msg, sig)
        return True
    except (CryptoError, ValueError, TypeError):
        return False


def key_id(pub):
    return hashlib.sha256(pub).hexdigest()[:16]  # s3


def merkle_root(leaves):
    """RFC 6962 section 2.1 Merkle Tree Hash of the given line bytes (s3)."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return hashlib.sha256(b"\x00" + leaves[0]).digest()
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return hashlib.sha256(b"\x01" + merkle_root(leaves[:k]) + merkle_root(leaves[k:])).digest()


# ---- s7: bytes after the last newline -------------------------------------------------------

def declared_keys(lines):
    """s7: key id -> public key of every well-formed key record the lines declare: entry 0's
    details.trusted_keys (all records well-formed, roles non-empty) and each key_trusted
    entry's details.key (with a non-empty details.role), good entries or not; first wins."""
    keys = {}
    for i, line in enumerate(lines):
        try:
            e = json.loads(line.decode("utf-8"))
        except (ValueError, UnicodeError):
            continue
        details = e.get("details") if isinstance(e, dict) else None
        if not isinstance(details, dict):
            continue
        if i == 0 and e.get("action") == "case_opened":
            records = details.get("trusted_keys")
            records = records if isinstance(records, list) and records else [None]
            parsed = [key_record(r, with_role=True) for r in records]
            found = [] if None in parsed else parsed
        elif e.get("action") == "key_trusted":
            role = details.get("role")
            found = [key_record(details.get("key"), with_role=False)]
            if None in found or not isinstance(role, str) or not role:
                found = []
        else:
            continue
        for kid, pub in found:
            keys.setdefault(kid, pub)
    return keys


def key_record(r, with_role):
    """(key id, public key) of a {name, public_key, key_id[, role]} record, or None."""
    if not isinstance(r, dict) or not isinstance(r.get("name"), str):
        return None
    if with_role and (not isinstance(r.get("role"), str) or not r["role"]):
        return None
    try:
        pub = b64(r.get("public_key"), length=32)
    except Bad:
        return None
    return (r["key_id"], pub) if r.get("key_id") == key_id(pub) else None


def tail_is_entry(lines, tail):
    """s7: the tail is the last entry, missing only its newline: canonical JSON of an object
    with exactly the entry keys, well-formed index, actor and sig, chained onto the last line,
    and signed by a key the ledger declares (with no complete line, by one it declares)."""
    try:
        e = parse_canonical(tail)
    except Bad:
        return False
    if not isinstance(e, dict) or set(e) != ENTRY_KEYS:
        return False
    a, index = e["actor"], e["index"]
    if not isinstance(a, dict) or set(a) != ACTOR_KEYS or not all(
            isinstance(a[k], str) for k in ACTOR_KEYS) or not HEX16.fullmatch(a["key_id"]):
        return False
    if type(index) is not int or index < 0:
        return False
    try:
        sig = b64(e["sig"], length=64)
    except Bad:
        return False
    if lines:
        try:
            last = json.loads(lines[-1].decode("utf-8"))
        except (ValueError, UnicodeError):
            return False
        last_index = last.get("index") if isinstance(last, dict) else None
        if type(last_index) is not int:
            return False
        prev, expected = hashlib.sha256(lines[-1]).hexdigest(), last_index + 1
    else:
        prev, expected = "0" * 64, 0
    if e["prev"] != prev or index != expected:
        return False
    pub = declared_keys(lines if lines else [tail]).get(a["key_id"])
    body = canon({k: v for k, v in e.items() if k != "sig"})
    return pub is not None and ed25519_ok(pub, pae(ENTRY_TYPE, body), sig)


# ---- the verifier ----------------------------------------------------------------------------

class Verifier:
    def __init__(self, case, pins, extra_checkpoints):
        self.case = Path(case)
        self.pins = pins  # set of raw 32-byte public keys (s4.2)
        self.extra_checkpoints = extra_checkpoints
        self.problems = []
        self.notices = []
        self.keys = {}  # key_id -> {"pub", "name", "from", "revoked"} (s4: one set of keys)
        self.revoked = {}  # key_id -> index of the good key_revoked

    def problem(self, where, msg):
        self.problems.append(f"PROBLEM {where}: {msg}")

    def notice(self, where, msg):
        self.notices.append(f"NOTICE {where}: {msg}")

    def trusted_at(self, kid, i):
        """s4: declared/added at t < i (declared: from 0), and not revoked at r < i."""
        k = self.keys.get(kid)
        if k is None or k["from"] > i:
            return None
        r = self.revoked.get(kid)
        return None if r is not None and r < i else k

    # -- s9 case.json ------------------------------------------------------------------------
    def read_case_json(self):
        try:
            cj = json.loads((self.case / "case.json").read_text("utf-8"))
        except (OSError, ValueError) as e:
            raise Bad(f"no readable case.json ({e})") from None
        if not isinstance(cj, dict) or cj.get("type") != "sealtrail.case":
            raise Bad('case.json is not of type "sealtrail.case"')
        missing = [k for k in ("case_id", "title", "examiner", "origin") if k not in cj]
        if missing:
            raise Bad(f"case.json lacks {', '.join(missing)}")
        return cj

    def run(self):
        try:
            case_json = self.read_case_json()
        except Bad as e:  # s9: not a case, verify stops with one problem
            self.problem("case.json", str(e))
            return
        try:
            data = (self.case / "ledger.jsonl").read_bytes()
        except OSError as e:
            self.problem("ledger", f"cannot read ledger.jsonl ({e})")
            return
        *self.lines, tail = data.split(b"\n")
        if tail and tail_is_entry(self.lines, tail):  # s7: an entry missing its newline
            self.lines.append(tail)
            self.notice("ledger", "the last entry lacks its final newline")
        elif tail:  # s7: other bytes after the last newline are a torn append
            self.notice("ledger", f"torn tail of {len(tail)} bytes after the last newline")
        if not self.lines:
            self.problem("ledger", "no entry 0")
            return
        entries = [self.check_entry(i, line) for i, line in enumerate(self.lines)]
        self.entries = entries
        e0 = entries[0]
        self.check_case_json(case_json, e0)
        self.check_bundles(entries)
        self.check_checkpoints(e0)

    # -- s1, s2, s3, s4, s5 for one line ------------------------------------------------------
    def check_entry(self, i, line):
        where = f"ledger entry {i}"
        try:
            e = parse_canonical(line)  # s1
            self.check_form(e)  # s2
        except Bad as err:
            self.problem(where, f"malformed: {err}")
            return None
        if e["index"] != i:
            self.problem(where, f"index is {e['index']}, expected {i}")
        if i > 0 and self.case_id is not None and e["case_id"] != self.case_id:
            self.problem(where, "case_id differs from entry 0's")
        prev = "0" * 64 if i == 0 else hashlib.sha256(self.lines[i - 1]).hexdigest()
        if e["prev"] != prev:  # s3
            self.problem(where, "prev is not the hash of the previous line")
        body = canon({k: v for k, v in e.items() if k != "sig"})
        msg = pae(ENTRY_TYPE, body)  # s3
        sig = b64(e["sig"])  # length already checked in check_form
        kid = e["actor"]["key_id"]
        if i == 0:
            self.case_id = e["case_id"]
            good = self.check_entry0(e, msg, sig)
        else:
            key = self.trusted_at(kid, i)  # s4.6
            if key is None:
                self.problem(where, f"signed by key {kid}, which is not trusted at index {i}")
                good = False
            elif not ed25519_ok(key["pub"], msg, sig):
                self.problem(where, "bad signature")
                good = False
            else:
                good = True
        e["_good"] = good
        self.check_action(i, e, good)
        return e

    case_id = None

    def check_form(self, e):
        """s2: exactly twelve keys, actor exactly three, the types and forms of the table."""
        if not isinstance(e, dict):
            raise Bad("not a JSON object")
        if set(e) != ENTRY_KEYS:
            raise Bad(f"key set differs (extra {sorted(set(e) - ENTRY_KEYS)}, "
                      f"missing {sorted(ENTRY_KEYS - set(e))})")
        a = e["actor"]
        if not isinstance(a, dict) or set(a) != ACTOR_KEYS:
            raise Bad("actor must have exactly name, key_id, role")
        if not all(isinstance(a[k], str) for k in ACTOR_KEYS) or not HEX16.fullmatch(a["key_id"]):
            raise Bad("actor fields must be strings, key_id 16 lower-case hex")
        if type(e["v"]) is not int or e["v"] != 1:
            raise Bad("v must be 1")
        if type(e["index"]) is not int:
            raise Bad("index must be an integer")
        for k in ("case_id", "time", "clock", "action", "prev", "sig"):
            if not isinstance(e[k], str):
                raise Bad(f"{k} must be a string")
        for k in ("case_id", "clock"):  # s2: non-empty strings
            if not e[k]:
                raise Bad(f"{k} must not be empty")
        for k in ("subject", "custody", "details"):
            if not isinstance(e[k], dict):
                raise Bad(f"{k} must be an object")
        m = TIME.fullmatch(e["time"])
        try:
            datetime.datetime(*map(int, m.groups()), tzinfo=datetime.UTC) if m else None
        except ValueError:
            m = None
        if not m:
            raise Bad(f"time {e['time']!r} is not YYYY-MM-DDTHH:MM:SS.ffffffZ")
        if not ACTION.fullmatch(e["action"]):
            raise Bad(f"action {e['action']!r} is not lower-case snake case")
        if not HEX64.fullmatch(e["prev"]):
            raise Bad("prev must be 64 lower-case hex digits")
        b64(e["sig"], length=64)

    def check_entry0(self, e, msg, sig):
        """s4 rules 1-3: entry 0 declares the keys and must be signed by one of them."""
        where = "ledger entry 0"
        if e["action"] != "case_opened":
            self.problem(where, "entry 0 is not case_opened")
            return False
        declared = {}
        tk = e["details"].get("trusted_keys")
        try:
            if not isinstance(tk, list) or not tk:
                raise Bad("details.trusted_keys must be a non-empty list")
            for k in tk:
                fields = ("name", "public_key", "key_id", "role")
                if not isinstance(k, dict) or not all(isinstance(k.get(f), str) for f in fields):
                    raise Bad("a trusted key lacks name, public_key, key_id or role")
                if not k["role"]:  # s4: role is a non-empty string
                    raise Bad("a trusted key has an empty role")
                pub = b64(k["public_key"], length=32)
                if key_id(pub) != k["key_id"]:
                    raise Bad(f"trusted key {k['key_id']} is not the key id of its public_key")
                if k["key_id"] in declared and declared[k["key_id"]]["pub"] != pub:
                    raise Bad(f"two declared keys share key id {k['key_id']}")
                declared[k["key_id"]] = {"pub": pub, "name": k["name"], "from": 0}
        except Bad as err:
            self.problem(where, str(err))
            return False
        kid = e["actor"]["key_id"]
        key = declared.get(kid)
        if key is None or not ed25519_ok(key["pub"], msg, sig):  # rule 1
            self.problem(where, f"case was opened by key {kid} which is not among its declared "
                                "trusted keys (or the signature does not verify)")
            return False
        if self.pins and key["pub"] not in self.pins:  # rule 2
            self.problem(where, f"case was opened by key {kid} which is not among the trusted keys")
            return False
        if not self.pins:
            self.notice(where, "no --trust given: the case's own keys are believed (TOFU)")
        self.keys = declared  # rule 3; pins never grant (rule 4): only declared keys enter
        return True

    def check_action(self, i, e, good):
        """s4.5 and s5: the checked actions."""
        where, act, d = f"ledger entry {i}", e["action"], e["details"]
        if act == "case_opened" and i != 0:
            self.problem(where, "case_opened after entry 0")
        elif act == "ledger_repaired":  # s5: recorded; s7: a writer moved a line aside
            self.notice(where, f"a writer moved an invalid last line aside to {d.get('file')!r}")
        elif act == "key_trusted":
            k, role = d.get("key"), d.get("role")
            try:
                if not isinstance(k, dict) or not isinstance(role, str) or not role or not all(
                        isinstance(k.get(f), str) for f in ("name", "public_key", "key_id")):
                    raise Bad("key_trusted needs details.key {name, public_key, key_id} and role")
                pub = b64(k["public_key"], length=32)
                if key_id(pub) != k["key_id"]:
                    raise Bad("details.key.key_id is not the key id of its public_key")
            except Bad as err:
                self.problem(where, str(err))
                return
            kid = k["key_id"]
            if kid in self.revoked:
                self.problem(where, f"key_trusted of revoked key {kid}")
            elif kid in self.keys and self.keys[kid]["pub"] != pub:
                self.problem(where, f"key_trusted of a different key with the id {kid}")
            elif good and kid not in self.keys:
                self.keys[kid] = {"pub": pub, "name": k["name"], "from": i + 1}
        elif act == "key_revoked":
            kid = d.get("key_id")
            if not isinstance(kid, str) or not HEX16.fullmatch(kid):
                self.problem(where, "key_revoked needs details.key_id (16 lower-case hex)")
            elif good and kid not in self.revoked:
                self.revoked[kid] = i
        elif act == "bundle_sealed":
            bid = e["subject"].get("bundle_id")
            if not isinstance(bid, str) or not BUNDLE_ID.fullmatch(bid):
                self.problem(where, f"bundle_id {bid!r} is not a plain file name")
        elif act == "checkpoint_signed":
            if set(d) != {"size", "root", "file"}:
                self.problem(where, "details must have exactly size, root, file")
                return
            size = d["size"]
            if type(size) is not int or not 0 <= size <= i or not isinstance(d["file"], str):
                self.problem(where, f"checkpoint size {size!r} not an integer in 0..{i}"
                                    " (or file not a string)")
                return
            try:
                root = b64(d["root"], length=32)
            except Bad as err:
                self.problem(where, f"root: {err}")
                return
            if root != merkle_root(self.lines[:size]):
                self.problem(where, f"root is not the Merkle root of the first {size} lines: "
                                    "the ledger was rewritten after that checkpoint")
            if not (self.case / "checkpoints" / d["file"]).is_file():
                self.notice(where, f"checkpoint file {d['file']} is not in checkpoints/")

    # -- s9 case.json against entry 0 ---------------------------------------------------------
    def check_case_json(self, cj, e0):
        if e0 is None:
            return
        d = e0["details"]
        pairs = {"case_id": e0["case_id"], "title": d.get("title"),
                 "examiner": d.get("examiner"), "origin": d.get("origin")}
        for k, v in pairs.items():
            if cj[k] != v:
                self.problem("case.json", f"{k} differs from entry 0")

    # -- s5 bundle_sealed and s9 bundles/ -----------------------------------------------------
    def check_bundles(self, entries):
        last = {}  # bundle_id -> last bundle_sealed entry naming it
        for e in entries:
            if e and e["action"] == "bundle_sealed":
                bid = e["subject"].get("bundle_id")
                if isinstance(bid, str) and BUNDLE_ID.fullmatch(bid):
                    last[bid] = e
        for bid, e in last.items():
            try:
                self.check_bundle(bid, e)
            except Bad as err:
                self.problem(f"bundle {bid}", str(err))
        bdir = self.case / "bundles"
        for f in sorted(bdir.glob("*.stb")) if bdir.is_dir() else []:
            if f.is_file() and f.name[:-4] not in last:
                self.problem(f"bundle {f.name[:-4]}", "bundle file that no bundle_sealed names")
        for f in sorted(bdir.glob("*.stb.partial")) if bdir.is_dir() else []:
            self.notice(f"bundle {f.name}", "partial collection (not evidence)")
        started = {}
        for e in entries:  # s5 collection_started with no end: notice
            bid = e and isinstance(e["subject"], dict) and e["subject"].get("bundle_id")
            if e and e["action"] == "collection_started":
                started[bid] = e["index"]
            elif e and e["action"] in ("bundle_sealed", "collection_failed"):
                started.pop(bid, None)
        for bid in started:
            self.notice(f"bundle {bid}", "collection started and never ended")

    def check_bundle(self, bid, e):
        path = self.case / "bundles" / f"{bid}.stb"
        if not path.is_file():
            raise Bad(f"bundles/{bid}.stb is missing")
        key = self.trusted_at(e["actor"]["key_id"], e["index"]) if e["_good"] else None
        if key is None:
            raise Bad("its bundle_sealed entry is not signed by a trusted key: no trusted key")
        try:
            with zipfile.ZipFile(path) as z:
                env = json.loads(z.read("manifest.dsse.json"))
            payload = base64.b64decode(env["payload"], validate=True)
            ptype = env["payloadType"].encode()
            sigs = env["signatures"]
        except (OSError, KeyError, ValueError, TypeError, AttributeError, zipfile.BadZipFile):
            raise Bad("no readable manifest.dsse.json envelope") from None
        if ptype != MANIFEST_TYPE:
            raise Bad("wrong payload type")
        ok = [s for s in sigs if isinstance(s, dict) and s.get("keyid") == key_id(key["pub"])]
        if not ok or not all(ed25519_ok(key["pub"], pae(ptype, payload),
                                        b64(s.get("sig"), length=64)) for s in ok):
            raise Bad("manifest not signed by the key that signed its bundle_sealed entry")
        if hashlib.sha256(payload).hexdigest() != e["subject"].get("manifest_sha256"):
            raise Bad("manifest digest differs from subject.manifest_sha256")
        try:
            manifest = json.loads(payload)
        except ValueError:
            raise Bad("manifest is not JSON") from None
        if not isinstance(manifest, dict) or manifest.get("case_id") != self.case_id:
            raise Bad("manifest case_id is not the ledger's")
        if manifest.get("bundle_id") != bid:
            raise Bad("manifest bundle_id is not the file name")

    # -- s6 checkpoints -----------------------------------------------------------------------
    def check_checkpoints(self, e0):
        files = []
        cdir = self.case / "checkpoints"
        if cdir.is_dir():
            files += [(f"checkpoints/{p.name}", p) for p in sorted(cdir.glob("*.checkpoint"))]
        files += [(str(p), Path(p)) for p in self.extra_checkpoints]
        good = {}  # size -> (root, where) of the first good checkpoint of that size
        origin = e0["details"].get("origin") if e0 else None
        for where, path in files:
            try:
                size, root = self.check_checkpoint(path, origin)
            except Bad as err:
                self.problem(f"checkpoint {where}", str(err))
                continue
            if size in good and good[size][0] != root:
                self.problem(f"checkpoint {where}",
                             f"equivocation: same size {size} as {good[size][1]}, other root")
            good.setdefault(size, (root, where))

    def check_checkpoint(self, path, origin):
        try:
            raw = path.read_bytes()
        except OSError as e:
            raise Bad(f"cannot read ({e})") from None
        if len(raw) > 1 << 20:
            raise Bad("larger than 1 MiB")
        try:
            text = raw.decode("utf-8")
        except UnicodeError:
            raise Bad("not UTF-8") from None
        if any(ch != "\n" and (ord(ch) < 0x20 or 0x7F <= ord(ch) <= 0x9F) for ch in text):
            raise Bad("contains a CR or another control character")
        if not text.endswith("\n") or "\n\n" not in text:
            raise Bad("no newline at the end or no blank line before the signatures")
        cut = text.rindex("\n\n")
        body, sig_lines = text[:cut + 1], text[cut + 2:].split("\n")[:-1]
        if not 1 <= len(sig_lines) <= 100:
            raise Bad(f"{len(sig_lines)} signature lines (1 to 100 allowed)")
        sigs = []
        for sl in sig_lines:
            parts = sl[2:].split(" ") if sl.startswith("\u2014 ") else []
            if len(parts) != 2 or not parts[0] or NOTE_NAME_BAD & set(parts[0]):
                raise Bad(f"bad signature line {sl!r}")
            raw_sig = b64(parts[1], at_least=5)
            sigs.append((parts[0], raw_sig[:4], raw_sig[4:]))
        blines = body.split("\n")[:-1]
        if len(blines) < 3 or not all(blines):
            raise Bad("body needs origin, size and root lines, and no empty line")
        if not re.fullmatch(r"0|[1-9][0-9]*", blines[1]) or int(blines[1]) > 2**63 - 1:
            raise Bad(f"size {blines[1]!r} is not canonical decimal")
        size, root = int(blines[1]), b64(blines[2], length=32)
        # Which signatures count: keys the ledger trusted at some index (pins never count).
        counted = False
        for name, hint, sig in sigs:
            for kid, k in self.keys.items():
                note_id = hashlib.sha256(name.encode() + b"\n\x01" + k["pub"]).digest()[:4]
                if k["name"] != name or note_id != hint:
                    continue  # rule 1: not ours (a witness, maybe)
                if not ed25519_ok(k["pub"], body.encode(), sig):
                    raise Bad(f"signature by {name} does not verify (tampered or forged)")
                if self.trusted_at(kid, size):  # rule 3: trusted at index N
                    counted = True
        if not counted:
            raise Bad(f"no good signature by a key trusted at index {size}")
        # Against the ledger
        if blines[0] != origin:
            raise Bad(f"origin {blines[0]!r} is not entry 0's details.origin")
        if size > len(self.lines):
            raise Bad(f"size {size} exceeds the ledger's {len(self.lines)} entries: "
                      "entries were removed")
        if root != merkle_root(self.lines[:size]):
            raise Bad(f"root differs from the ledger's first {size} lines: rewritten or forked")
        return size, root


def load_pin(path):
    """s9 key files: a public key file; key_id must be that of public_key."""
    k = json.loads(Path(path).read_text("utf-8"))
    if k.get("type") != "sealtrail.ed25519.public":
        raise Bad(f"{path} is not a sealtrail public key file")
    pub = b64(k["public_key"], length=32)
    if key_id(pub) != k.get("key_id"):
        raise Bad(f"{path} is corrupt: key_id is not that of public_key")
    return pub


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("case")
    ap.add_argument("--trust", action="append", default=[], metavar="PUBFILE")
    ap.add_argument("--checkpoint", action="append", default=[], metavar="FILE")
    args = ap.parse_args(argv)
    try:
        pins = {load_pin(p) for p in args.trust}
    except (Bad, OSError, ValueError, KeyError) as e:
        print(f"error: --trust: {e}", file=sys.stderr)
        return 2
    v = Verifier(args.case, pins, args.checkpoint)
    v.run()
    for n in v.notices:
        print(n, file=sys.stderr)
    for p in v.problems:
        print(p)
    if v.problems:
        return 1
    print("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
