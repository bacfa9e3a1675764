"""rpm header blobs written and taken apart by the tests' own reading of format_header.md (never the
module under test): ``build`` lays out a header as rpm does, ``entries`` gives a region's entries back
in the form ``build`` takes, so a real header can be rewritten (an rpm v6 package made from a v4 one).

An entry is ``(tag, type, data, count)``; ``text``, ``texts`` and ``numbers`` make the common ones.
"""

from __future__ import annotations

import struct

BIN, STRING, STRING_ARRAY, I18NSTRING, INT16, INT32, INT64 = 7, 6, 8, 9, 3, 4, 5
HEADERSIGNATURES, HEADERIMMUTABLE = 62, 63
MAGIC = b"\x8e\xad\xe8\x01\x00\x00\x00\x00"
_ALIGN = {INT16: 2, INT32: 4, INT64: 8}
_FIXED = {0: 0, 1: 1, 2: 1, INT16: 2, INT32: 4, INT64: 8, BIN: 1}
_CODES = {INT16: "H", INT32: "I", INT64: "Q"}


def text(tag: int, value: str) -> tuple:
    return (tag, STRING, value.encode() + b"\0", 1)


def texts(tag: int, values: list[str]) -> tuple:
    return (tag, STRING_ARRAY, b"".join(v.encode() + b"\0" for v in values), len(values))


def numbers(tag: int, values: list[int], kind: int = INT32) -> tuple:
    return (tag, kind, struct.pack(f">{len(values)}{_CODES[kind]}", *values), len(values))


def build(
    region: list[tuple],
    dribbles: list[tuple] = (),
    *,
    legacy: bool = False,
    region_tag: int = HEADERIMMUTABLE,
) -> bytes:
    """A header as rpm lays one out (il, dl, index, data; no magic): an immutable region (``region_tag``,
    its trailer after the region's data) holding ``region`` in the order given, then ``dribbles``;
    ``legacy``: no region at all. HEADERSIGNATURES is the signature header's region tag."""
    index: list[tuple] = []
    data = bytearray()

    def add(tag, kind, payload, count):
        data.extend(b"\0" * (-len(data) % _ALIGN.get(kind, 1)))
        index.append((tag, kind, len(data), count))
        data.extend(payload)

    for entry in region:
        add(*entry)
    if not legacy:
        trailer = len(data)
        data.extend(struct.pack(">iIiI", region_tag, BIN, -16 * (len(region) + 1), 16))
        index.insert(0, (region_tag, BIN, trailer, 16))
    for entry in dribbles:
        add(*entry)
    entries = b"".join(struct.pack(">iIiI", *entry) for entry in index)
    return struct.pack(">II", len(index), len(data)) + entries + bytes(data)


def entries(blob: bytes) -> list[tuple]:
    """The entries of a header written as ``build`` writes it (magic optional), region tag left out."""
    if blob.startswith(MAGIC):
        blob = blob[len(MAGIC) :]
    il, dl = struct.unpack(">II", blob[:8])
    store = blob[8 + 16 * il : 8 + 16 * il + dl]
    found = []
    for i in range(il):
        tag, kind, offset, count = struct.unpack(">iIiI", blob[8 + 16 * i : 24 + 16 * i])
        if tag in (HEADERSIGNATURES, HEADERIMMUTABLE):
            continue
        if kind in _FIXED:
            size = _FIXED[kind] * count
        else:  # strings: count NUL-terminated values
            end = offset
            for _ in range(count):
                end = store.index(b"\0", end) + 1
            size = end - offset
        found.append((tag, kind, store[offset : offset + size], count))
    return found
