"""A real ICC v2 matrix/TRC RGB profile, built in the test (no profile file ships with the
machine): Display P3 primaries (adapted to D50) with a gamma 2.2 curve. Wide-gamut photos from
phones carry a profile like it."""

from __future__ import annotations

import struct


def _s15(value: float) -> bytes:
    return struct.pack(">i", round(value * 65536))


def _xyz(x: float, y: float, z: float) -> bytes:
    return b"XYZ " + b"\x00" * 4 + _s15(x) + _s15(y) + _s15(z)


def _curve(gamma: float) -> bytes:
    return b"curv" + b"\x00" * 4 + struct.pack(">IH", 1, round(gamma * 256)) + b"\x00\x00"


def _desc(text: str) -> bytes:
    ascii_text = text.encode() + b"\x00"
    body = b"desc" + b"\x00" * 4 + struct.pack(">I", len(ascii_text)) + ascii_text
    return body + b"\x00" * 8 + b"\x00" * 3 + b"\x00" * 67  # no Unicode, no ScriptCode


def _text(text: str) -> bytes:
    return b"text" + b"\x00" * 4 + text.encode() + b"\x00"


def display_p3_profile() -> bytes:
    tags = [
        (b"desc", _desc("Display P3 (test)")),
        (b"cprt", _text("public domain")),
        (b"wtpt", _xyz(0.9642, 1.0, 0.8249)),
        (b"rXYZ", _xyz(0.5151, 0.2412, -0.0011)),
        (b"gXYZ", _xyz(0.2920, 0.6922, 0.0419)),
        (b"bXYZ", _xyz(0.1571, 0.0666, 0.7841)),
        (b"rTRC", _curve(2.2)),
        (b"gTRC", _curve(2.2)),
        (b"bTRC", _curve(2.2)),
    ]
    table_size = 4 + 12 * len(tags)
    offset = 128 + table_size
    table, data = struct.pack(">I", len(tags)), b""
    for signature, body in tags:
        padded = body + b"\x00" * (-len(body) % 4)
        table += signature + struct.pack(">II", offset + len(data), len(body))
        data += padded
    size = 128 + table_size + len(data)
    header = (struct.pack(">I", size) + b"lcms" + bytes((2, 0x10, 0, 0)) + b"mntr" + b"RGB "
              + b"XYZ " + b"\x00" * 12 + b"acsp" + b"APPL" + b"\x00" * 4 + b"\x00" * 8
              + b"\x00" * 8 + b"\x00" * 4 + _s15(0.9642) + _s15(1.0) + _s15(0.8249)
              + b"\x00" * 4 + b"\x00" * 16 + b"\x00" * 28)
    assert len(header) == 128, len(header)
    return header + table + data
