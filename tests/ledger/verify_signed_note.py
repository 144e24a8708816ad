"""Independent check of a Probity checkpoint, written only from the public specs.

Verifies a C2SP signed-note with Ed25519 (python3-cryptography), recomputing the key id from
the verifier key, parses the C2SP tlog-checkpoint body, and, given the ledger directory,
recomputes the RFC 6962 root over the stored entries from the documented segment layout
(format 2), checking that every commit marker in the segments is a checkpoint signed by the
same key whose size and root match the entries before it.

usage: verify_signed_note.py NOTE_FILE VERIFIER_KEY [LEDGER_DIR]; exit 0 when all checks pass.
"""
import base64
import hashlib
import os
import struct
import sys

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey


def fail(message):
    print("FAIL:", message)
    sys.exit(1)


def parse_verifier_key(vkey):
    name, key_id_hex, key_b64 = vkey.split("+", 2)
    key = base64.b64decode(key_b64, validate=True)
    if len(key) != 33 or key[0] != 0x01:
        fail("not an Ed25519 verifier key")
    key_id = hashlib.sha256(name.encode() + b"\n" + key).digest()[:4]
    if key_id.hex() != key_id_hex:
        fail("verifier key id does not match SHA-256(name || 0x0A || 0x01 || key)")
    return name, key_id, Ed25519PublicKey.from_public_bytes(key[1:])


def open_note(note, name, key_id, public_key):
    split = note.rfind("\n\n")
    if split < 0:
        fail("no blank line before signatures")
    text, signatures = note[: split + 1], note[split + 2 :]
    if not signatures.endswith("\n"):
        fail("signature block must end with a newline")
    verified = False
    for line in signatures[:-1].split("\n"):
        if not line.startswith("\u2014 "):
            fail("signature line must start with an em dash and a space")
        signer, blob_b64 = line[2:].split(" ")
        blob = base64.b64decode(blob_b64, validate=True)
        if signer != name or blob[:4] != key_id:
            continue
        try:
            public_key.verify(blob[4:], text.encode())
        except InvalidSignature:
            fail("signature does not verify")
        verified = True
    if not verified:
        fail("no signature by the given key")
    return text


def leaf_hash(entry):
    return hashlib.sha256(b"\x00" + entry).digest()


def tree_root(leaves):
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return hashlib.sha256(b"\x01" + tree_root(leaves[:k]) + tree_root(leaves[k:])).digest()


def crc32c(data):
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def parse_checkpoint(text):
    lines = text.split("\n")
    origin, size, root = lines[0], int(lines[1]), base64.b64decode(lines[2], validate=True)
    if len(root) != 32:
        fail("checkpoint root malformed")
    return origin, size, root


def read_entries(ledger_dir, key):
    """Entries covered by the last commit marker; every marker checked on the way."""
    entries = []
    committed = 0
    for name in sorted(n for n in os.listdir(ledger_dir) if n.startswith("segment-")):
        data = open(os.path.join(ledger_dir, name), "rb").read()
        if data[:8] != b"PRBLSEG2" or struct.unpack("<Q", data[8:16])[0] != len(entries):
            fail(f"segment {name} does not continue the log")
        if struct.unpack("<I", data[24:28])[0] != crc32c(data[:24]):
            fail(f"segment {name}: header checksum")
        offset = 28
        while offset + 9 <= len(data):
            record_type, length, checksum = struct.unpack("<BII", data[offset : offset + 9])
            payload = data[offset + 9 : offset + 9 + length]
            if len(payload) < length or crc32c(data[offset : offset + 5] + payload) != checksum:
                break  # a torn write at the end, after the last commit marker
            if record_type == 1:
                entries.append(payload)
            elif record_type == 2:
                text = open_note(payload.decode("utf-8"), *key)
                _, size, root = parse_checkpoint(text)
                if size != len(entries) or tree_root([leaf_hash(e) for e in entries]) != root:
                    fail(f"segment {name}: commit marker does not match the entries before it")
                committed = size
            else:
                fail(f"segment {name}: unknown record type {record_type}")
            offset += 9 + length
    return entries[:committed]


def main():
    note = open(sys.argv[1], encoding="utf-8").read()
    key = parse_verifier_key(sys.argv[2])
    origin, size, root = parse_checkpoint(open_note(note, *key))
    if origin != key[0]:
        fail("checkpoint origin is not the key name")
    if len(sys.argv) > 3:
        entries = read_entries(sys.argv[3], key)
        if len(entries) < size or tree_root([leaf_hash(e) for e in entries[:size]]) != root:
            fail("root recomputed from the entries differs from the checkpoint")
    print("OK", origin, size)


if __name__ == "__main__":
    main()
