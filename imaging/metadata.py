"""Colour profiles and EXIF: read from the input's header, written into the encoded output.

Policy (``docs/filters.md``, "Colour and metadata"):
- The ICC profile is kept by default: the output carries the input's profile, so a wide-gamut
  photo displays with the same colours (no conversion, no CPU). ``COLOUR_PROFILE=srgb``
  converts the pixels to sRGB instead and writes no profile.
- EXIF is dropped by default (it can hold GPS position, camera serial numbers, the owner's
  name). The orientation is always applied to the pixels first. A request with
  ``"keep_metadata": true`` copies the EXIF into the output with the orientation reset to 1.

OpenCV's encoders write neither, so the segments are added to the encoded bytes here: JPEG
APP1 (Exif) and APP2 (ICC_PROFILE, split in 64 KB chunks) after SOI; PNG iCCP and eXIf
after IHDR. WebP goes through Pillow, which takes both as arguments.
"""

from __future__ import annotations

import io
import struct
import zlib
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageCms

__all__ = ["COLOUR_PROFILES", "Metadata", "embed", "read_metadata", "to_srgb"]

COLOUR_PROFILES = ("keep", "srgb")
_ICC_CHUNK = 65_519  # 65535 - 2 (length) - 12 ("ICC_PROFILE\0") - 2 (sequence, count)
_EXIF_HEADER = b"Exif\x00\x00"
_ORIENTATION = 0x0112


@dataclass(frozen=True)
class Metadata:
    icc_profile: bytes | None = None
    exif: bytes | None = None  # TIFF-structured EXIF (no "Exif\0\0" header), orientation 1

    def keep(self, *, exif: bool) -> Metadata:
        """What goes into the output: the profile always, EXIF only when asked."""
        return Metadata(self.icc_profile, self.exif if exif else None)


def read_metadata(image: Image.Image) -> Metadata:
    """The profile and EXIF of an opened (not necessarily loaded) Pillow image."""
    icc = image.info.get("icc_profile") or None
    exif_data = None
    try:
        exif = image.getexif()
        if len(exif):
            exif[_ORIENTATION] = 1  # the pixels are turned already
            exif_data = exif.tobytes()
    except (OSError, SyntaxError, ValueError, TypeError, KeyError, struct.error):
        exif_data = None
    if exif_data and exif_data.startswith(_EXIF_HEADER):
        exif_data = exif_data[len(_EXIF_HEADER):]
    return Metadata(icc_profile=icc, exif=exif_data)


def embed(encoded: bytes, fmt: str, metadata: Metadata) -> bytes:
    """``encoded`` (from OpenCV) with the profile and EXIF added (JPEG and PNG)."""
    if metadata.icc_profile is None and metadata.exif is None:
        return encoded
    if fmt == "jpeg":
        return _embed_jpeg(encoded, metadata)
    if fmt == "png":
        return _embed_png(encoded, metadata)
    raise ValueError(f"embed() writes JPEG and PNG, not {fmt}")


def _segment(marker: int, payload: bytes) -> bytes:
    return struct.pack(">BBH", 0xFF, marker, len(payload) + 2) + payload


def _embed_jpeg(encoded: bytes, metadata: Metadata) -> bytes:
    segments = b""
    if metadata.exif is not None and len(metadata.exif) + 8 <= 0xFFFF:
        segments += _segment(0xE1, _EXIF_HEADER + metadata.exif)
    if metadata.icc_profile is not None:
        chunks = [metadata.icc_profile[i:i + _ICC_CHUNK]
                  for i in range(0, len(metadata.icc_profile), _ICC_CHUNK)]
        if len(chunks) <= 255:
            for number, chunk in enumerate(chunks, start=1):
                segments += _segment(
                    0xE2, b"ICC_PROFILE\x00" + bytes((number, len(chunks))) + chunk)
    return encoded[:2] + segments + encoded[2:]  # right after SOI


def _chunk(kind: bytes, payload: bytes) -> bytes:
    return (struct.pack(">I", len(payload)) + kind + payload
            + struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF))


def _embed_png(encoded: bytes, metadata: Metadata) -> bytes:
    after_ihdr = 8 + 8 + 13 + 4  # signature, IHDR header, IHDR data, CRC
    chunks = b""
    if metadata.icc_profile is not None:
        chunks += _chunk(b"iCCP", b"icc\x00\x00" + zlib.compress(metadata.icc_profile))
    if metadata.exif is not None:
        chunks += _chunk(b"eXIf", metadata.exif)
    return encoded[:after_ihdr] + chunks + encoded[after_ihdr:]


_SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


def to_srgb(image: np.ndarray, icc_profile: bytes | None) -> np.ndarray:
    """Convert BGR(A) pixels from ``icc_profile`` to sRGB (a no-op without a profile or for
    grey images)."""
    if icc_profile is None or image.ndim == 2:
        return image
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc_profile))
    except (OSError, ImageCms.PyCMSError):
        return image  # an unreadable profile: keep the pixels as they are
    alpha = image[:, :, 3] if image.shape[2] == 4 else None
    rgb = Image.fromarray(np.ascontiguousarray(image[:, :, 2::-1]), "RGB")
    try:
        converted = ImageCms.profileToProfile(rgb, source, _SRGB, outputMode="RGB")
    except ImageCms.PyCMSError:
        return image
    assert converted is not None
    out = np.asarray(converted)[:, :, ::-1]
    return np.ascontiguousarray(out if alpha is None else np.dstack((out, alpha)))
