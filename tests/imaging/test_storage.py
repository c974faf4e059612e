"""Storage of uploads, samples and outputs under one root, and its path checks."""

from __future__ import annotations

import errno
import json
import os
import pickle
import re
from datetime import datetime
from pathlib import Path

import pytest

from imaging.codecs import encode_image, inspect_image
from imaging.samples import SAMPLES
from imaging.storage import Freed, InsufficientStorage, Storage, is_image_id
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


# --- counting bytes and the free-space floor -------------------------------------------------


def test_write_key_says_what_it_added_and_a_rewrite_adds_only_the_difference(storage: Storage):
    key = storage.output_key("job_1", 0, "sample-badge", "png")
    assert storage.write_key(key, b"x" * 1000) == 1000
    assert storage.write_key(key, b"x" * 1000) == 0  # a redelivered task writes it again
    assert storage.write_key(key, b"x" * 400) == -600
    assert storage.path_for_key(key).stat().st_size == 400


def test_removing_marked_outputs_frees_their_bytes_for_their_tenant(storage: Storage):
    # Given two outputs of a job marked as tenant t1's
    storage.mark_outputs("job_1", "t1")
    storage.mark_outputs("job_1", "t2")  # the first mark stays
    written = sum(storage.write_key(storage.output_key("job_1", i, "sample-badge", "png"),
                                    b"y" * (100 + i)) for i in range(2))
    assert storage.outputs_tenant("job_1") == "t1"
    # When the directory is removed
    freed = storage.remove_outputs("job_1")
    # Then what it freed is what was written, the marker not counted among the files
    assert (freed.tenant, freed.bytes, freed.files) == ("t1", written, 2) and written == 201
    assert not (storage.root / "outputs" / "job_1").exists()
    assert storage.remove_outputs("job_1").files == 0


def test_unmarked_outputs_free_no_ones_bytes(storage: Storage):
    storage.write_key(storage.output_key("job_2", 0, "sample-badge", "png"), b"z" * 50)
    freed = storage.remove_outputs("job_2")
    assert (freed.tenant, freed.bytes, freed.files) == (None, 0, 1)


def test_a_removed_upload_gives_back_its_bytes_only_if_they_were_counted(storage: Storage):
    data = encode_image(photo(30, 40), "png")
    info = inspect_image(data, **LIMITS)
    counted = storage.save_upload(data, info, "a.png", owner="t1", counted=True)
    uncounted = storage.save_upload(data, info, "b.png", owner="t1")
    assert storage.remove_upload(counted) == Freed(tenant="t1", bytes=len(data), files=1)
    assert storage.remove_upload(uncounted) == Freed(tenant=None, bytes=len(data), files=1)
    assert storage.remove_upload(counted) is None


def test_free_bytes_is_the_filesystems_and_writes_keep_the_floor(storage: Storage):
    # The floor is set against the real free space of the test's filesystem.
    stat = os.statvfs(storage.root.parent)
    free = stat.f_bavail * stat.f_frsize
    assert abs(storage.free_bytes() - free) < 64 * 1024 * 1024  # others write meanwhile
    full = Storage(storage.root, min_free_bytes=free + 1024**3)
    key = full.output_key("job_3", 0, "sample-badge", "png")
    with pytest.raises(InsufficientStorage) as refused:
        full.write_key(key, b"w" * 10)
    assert refused.value.code == "insufficient_storage" and refused.value.errno == errno.ENOSPC
    assert refused.value.floor_bytes == free + 1024**3
    with pytest.raises(InsufficientStorage):
        upload(full, encode_image(photo(), "png"))
    assert not (storage.root / "outputs").exists() and not list(storage.root.rglob("img_*"))
    roomy = Storage(storage.root, min_free_bytes=max(1, free - 1024**3))
    assert roomy.write_key(key, b"w" * 10) == 10


def test_insufficient_storage_survives_pickling_with_its_figures():
    exc = InsufficientStorage(free_bytes=5, needed_bytes=7, floor_bytes=9)
    copy = pickle.loads(pickle.dumps(exc))
    assert isinstance(copy, OSError) and (copy.free_bytes, copy.needed_bytes,
                                          copy.floor_bytes) == (5, 7, 9)
    assert str(copy) == str(exc) and "9 bytes" in str(copy)
