#!/usr/bin/env python3
"""Writes a relaid-out copy of an index, as `hloop relayout` would, for the
tests of the readers (issue 14) while relayout itself is written elsewhere.

usage: layout_index.py STORE OLD NEW IMAGE HOT... [--zero OFFSET:LEN]...

HOT is OFFSET:LEN: the image ranges packed, in order, into one hot chunk
(stored uncompressed, codec 0); --zero adds a zero extent (the image must be
zero there). The byte layout is docs/format.md's ("EXTENTS record")."""
import hashlib
import os
import struct
import sys


def main(argv):
    store, old, new, image = argv[1:5]
    hot, zeros, args = [], [], argv[5:]
    while args:
        a = args.pop(0)
        target = zeros if a == "--zero" else hot
        if a == "--zero":
            a = args.pop(0)
        off, length = (int(x) for x in a.split(":"))
        target.append((off, length))
    img = open(image, "rb").read()
    ix = bytearray(open(f"{store}/{old}.idx", "rb").read())
    meta_off, meta_len = struct.unpack_from("<QQ", ix, 48)
    raw = b"".join(img[o:o + n] for o, n in hot)
    digest = hashlib.sha256(raw).digest()
    chunk = b"HLCK" + bytes([1, 0, 0, 0]) + struct.pack("<I", len(raw)) + raw
    d = f"{store}/chunks/{digest.hex()[:2]}"
    os.makedirs(d, exist_ok=True)
    with open(f"{d}/{digest.hex()}", "wb") as f:
        f.write(chunk)
    extents, pos = [], 0
    for o, n in hot:
        extents.append((o, n, 0, pos))
        pos += n
    for o, n in zeros:
        assert img[o:o + n] == bytes(n), f"image bytes [{o}, {o + n}) are not zero"
        extents.append((o, n, 0xFFFFFFFF, 0))
    extents.sort()
    value = struct.pack("<II", 1, len(extents)) + digest + struct.pack("<II", len(chunk), len(raw))
    for e in extents:
        value += struct.pack("<QIII", *e)
    record = struct.pack("<HHI", 5, 1, len(value)) + value  # type 5, flag CRITICAL
    body = ix[:meta_off + meta_len] + record
    struct.pack_into("<Q", body, 56, meta_len + len(record))
    stored, unique = struct.unpack_from("<QQ", body, 64)
    struct.pack_into("<QQ", body, 64, stored + len(chunk), unique + 1)
    with open(f"{store}/{new}.idx", "wb") as f:
        f.write(bytes(body) + hashlib.sha256(bytes(body)).digest())
    print(digest.hex())


if __name__ == "__main__":
    main(sys.argv)
