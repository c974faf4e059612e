"""Storage of uploads, samples and outputs under one root, and its path checks."""

from __future__ import annotations

import json
import os
import re
from datetime import datetime
from pathlib import Path

import pytest

from imaging.codecs import encode_image, inspect_image
from imaging.samples import SAMPLES
from imaging.storage import Storage, is_image_id
from tests.imaging import photo

LIMITS = {"max_bytes": 10_000_000, "max_pixels": 10_000_000}


@pytest.fixture
def storage(tmp_path: Path) -> Storage:
    return Storage(tmp_path / "media")


def upload(storage: Storage, data: bytes, name: str | None = "photo.png") -> str:
    return storage.save_upload(data, inspect_image(data, **LIMITS), name)


# --- uploads ------------------------------------------------------------------------------


def test_save_upload_stores_bytes_and_metadata_under_a_fresh_id(storage: Storage):
    data = encode_image(photo(30, 40), "png")
    image_id = upload(storage, data, "holiday.png")
    assert re.fullmatch(r"img_[0-9a-f]{32}", image_id)
    assert upload(storage, data) != image_id
    path = storage.image_path(image_id)
    assert path == storage.root / "uploads" / f"{image_id}.png"
    assert path.read_bytes() == data
    meta = storage.image_meta(image_id)
    assert meta == json.loads((storage.root / "uploads" / f"{image_id}.json").read_text())
    assert {k: meta[k] for k in ("id", "format", "width", "height", "bytes", "original_name")} == {
        "id": image_id,
        "format": "png",
        "width": 40,
        "height": 30,
        "bytes": len(data),
        "original_name": "holiday.png",
    }
    assert datetime.fromisoformat(meta["created_at"]).tzinfo is not None


def test_a_png_named_jpg_is_stored_as_png(storage: Storage):
    data = encode_image(photo(), "png")
    image_id = upload(storage, data, "really-a-photo.jpg")
    assert storage.image_meta(image_id)["format"] == "png"
    assert storage.image_path(image_id).suffix == ".png"


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\me\\cat.jpg", "cat.jpg"),
        ("bad\x00name\n.png", "badname.png"),
        ("x" * 500 + ".png", "x" * 200),
        ("", None),
        (None, None),
        ("/", None),
    ],
)
def test_the_original_name_is_sanitised_and_never_part_of_a_path(storage: Storage, name, shown):
    image_id = upload(storage, encode_image(photo(), "png"), name)
    assert storage.image_meta(image_id)["original_name"] == shown
    files = sorted(p.name for p in (storage.root / "uploads").iterdir())
    assert files == [f"{image_id}.json", f"{image_id}.png"]
    assert sorted(p.name for p in storage.root.iterdir()) == ["uploads"]


def test_no_temporary_files_are_left_behind(storage: Storage):
    upload(storage, encode_image(photo(), "png"))
    storage.write_key("outputs/job1/0000-img.png", b"data")
    leftovers = [p for p in storage.root.rglob("*") if p.name.startswith(".")]
    assert leftovers == []


# --- ids ----------------------------------------------------------------------------------

BAD_IDS = [
    "../uploads/x",
    "img_../../etc/passwd",
    "img_" + "0" * 31,
    "img_" + "0" * 33,
    "img_" + "A" * 32,
    "img_" + "0" * 32 + "/../x",
    "img_" + "0" * 32 + "\n",
    "sample-../../etc",
    "sample-Landscape",
    "sample-",
    "/etc/passwd",
    "",
]


@pytest.mark.parametrize("image_id", BAD_IDS)
def test_malformed_ids_are_unknown_without_touching_disk(storage: Storage, image_id):
    assert not is_image_id(image_id)
    assert storage.image_meta(image_id) is None
    with pytest.raises(KeyError):
        storage.image_path(image_id)
    assert not storage.root.exists()  # nothing was created, not even the samples


def test_well_formed_but_unknown_ids_are_unknown(storage: Storage):
    for image_id in ("img_" + "0" * 32, "sample-volcano"):
        assert is_image_id(image_id)
        assert storage.image_meta(image_id) is None
        with pytest.raises(KeyError):
            storage.image_path(image_id)


def test_an_upload_whose_bytes_vanished_has_no_path(storage: Storage):
    image_id = upload(storage, encode_image(photo(), "png"))
    storage.image_path(image_id).unlink()
    with pytest.raises(KeyError):
        storage.image_path(image_id)


def test_non_string_ids_are_unknown(storage: Storage):
    assert storage.image_meta(None) is None  # type: ignore[arg-type]
    assert storage.image_meta(["img_x"]) is None  # type: ignore[arg-type]


# --- samples ------------------------------------------------------------------------------


def test_sample_ids_create_the_samples_and_resolve_to_their_files(storage: Storage):
    ids = storage.sample_ids()
    assert ids == [f"sample-{spec.slug}" for spec in SAMPLES]
    spec = SAMPLES[0]
    meta = storage.image_meta(ids[0])
    assert meta["id"] == ids[0]
    assert (meta["format"], meta["width"], meta["height"]) == (spec.format, spec.width, spec.height)
    path = storage.image_path(ids[0])
    assert path == storage.root / "samples" / spec.filename
    assert meta["bytes"] == path.stat().st_size


def test_a_sample_id_works_before_sample_ids_was_ever_called(storage: Storage):
    path = storage.image_path("sample-shapes")
    assert inspect_image(path.read_bytes(), **LIMITS).format == "png"


# --- keys ---------------------------------------------------------------------------------


def test_output_key_is_built_from_checked_parts(storage: Storage):
    image_id = "img_" + "a" * 32
    assert storage.output_key("job_123", 7, image_id, "webp") == (
        f"outputs/job_123/0007-{image_id}.webp"
    )
    assert storage.output_key("j", 12345, "sample-landscape", "jpeg") == (
        "outputs/j/12345-sample-landscape.jpg"
    )


@pytest.mark.parametrize(
    ("job_id", "index", "image_id", "fmt"),
    [
        ("../x", 0, "sample-landscape", "png"),
        ("a/b", 0, "sample-landscape", "png"),
        ("", 0, "sample-landscape", "png"),
        ("job", -1, "sample-landscape", "png"),
        ("job", True, "sample-landscape", "png"),
        ("job", 0, "../../x", "png"),
        ("job", 0, "sample-landscape", "exe"),
        ("job", 0, "sample-landscape", "bmp"),
    ],
)
def test_output_key_rejects_unsafe_parts(storage: Storage, job_id, index, image_id, fmt):
    with pytest.raises(ValueError):
        storage.output_key(job_id, index, image_id, fmt)


TRAVERSALS = [
    "../outside.png",
    "outputs/../../outside.png",
    "outputs/job/../../../outside.png",
    "/etc/passwd",
    "//etc/passwd",
    "outputs\\..\\..\\outside.png",
    "outputs//x.png",
    "outputs/./x.png",
    "outputs/x/",
    ".",
    "..",
    "",
    "outputs/x\x00.png",
]


@pytest.mark.parametrize("key", TRAVERSALS)
def test_keys_that_could_escape_the_root_are_rejected(storage: Storage, key):
    with pytest.raises(ValueError):
        storage.path_for_key(key)
    with pytest.raises(ValueError):
        storage.write_key(key, b"x")
    assert not (storage.root.parent / "outside.png").exists()


def test_a_symlink_pointing_out_of_the_root_cannot_be_followed(storage: Storage, tmp_path: Path):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    storage.root.mkdir()
    os.symlink(outside, storage.root / "outputs")
    with pytest.raises(ValueError, match="leaves"):
        storage.write_key("outputs/job/0000-x.png", b"x")
    assert list(outside.iterdir()) == []


def test_write_key_creates_directories_and_replaces_atomically(storage: Storage):
    key = "outputs/job_1/0000-sample-landscape.png"
    storage.write_key(key, b"first")
    storage.write_key(key, b"second")
    path = storage.path_for_key(key)
    assert path == (storage.root / key).resolve()
    assert path.read_bytes() == b"second" == storage.read_key(key)
    assert sorted(p.name for p in path.parent.iterdir()) == ["0000-sample-landscape.png"]
