"""The built-in synthetic sample images."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import numpy as np
import pytest

from imaging.codecs import decode_image, inspect_image
from imaging.samples import SAMPLES, SCENE_KINDS, make_scene
from imaging.storage import ensure_samples

LIMITS = {"max_bytes": 50_000_000, "max_pixels": 50_000_000}


def test_ensure_samples_writes_the_documented_set(tmp_path: Path):
    paths = ensure_samples(tmp_path / "samples")
    assert [path.name for path in paths] == [spec.filename for spec in SAMPLES]
    assert 6 <= len(paths) <= 10
    sizes = set()
    for spec, path in zip(SAMPLES, paths, strict=True):
        info = inspect_image(path.read_bytes(), **LIMITS)
        assert (info.format, info.width, info.height) == (spec.format, spec.width, spec.height)
        sizes.add((spec.width, spec.height))
    assert {(1920, 1080), (1280, 720), (800, 600), (640, 480)} <= sizes
    assert {spec.format for spec in SAMPLES} == {"jpeg", "png"}


def test_samples_are_real_pictures_not_flat_fills(tmp_path: Path):
    for path in ensure_samples(tmp_path):
        image = decode_image(path.read_bytes(), max_pixels=LIMITS["max_pixels"])
        assert image.std() > 20, path.name
        pixels = image[::4, ::4, :3].astype(np.int32)
        colours = np.unique(pixels[..., 0] << 16 | pixels[..., 1] << 8 | pixels[..., 2])
        assert len(colours) > 50, path.name


def test_the_badge_sample_has_a_transparent_background(tmp_path: Path):
    (badge,) = [p for p in ensure_samples(tmp_path) if p.stem == "badge"]
    image = decode_image(badge.read_bytes(), max_pixels=LIMITS["max_pixels"])
    assert image.shape[2] == 4
    assert image[0, 0, 3] == 0 and image[256, 256, 3] == 255


def test_ensure_samples_is_idempotent_and_does_not_rewrite(tmp_path: Path):
    first = ensure_samples(tmp_path)
    stamps = [path.stat().st_mtime_ns for path in first]
    second = ensure_samples(tmp_path)
    assert second == first
    assert [path.stat().st_mtime_ns for path in second] == stamps


def test_ensure_samples_replaces_only_what_is_missing(tmp_path: Path):
    paths = ensure_samples(tmp_path)
    original = paths[2].read_bytes()
    paths[2].unlink()
    untouched = paths[0].stat().st_mtime_ns
    ensure_samples(tmp_path)
    assert paths[2].read_bytes() == original
    assert paths[0].stat().st_mtime_ns == untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(s.filename for s in SAMPLES)


def test_samples_are_deterministic_across_directories(tmp_path: Path):
    one = ensure_samples(tmp_path / "one")
    two = ensure_samples(tmp_path / "two")
    for a, b in zip(one, two, strict=True):
        assert a.read_bytes() == b.read_bytes()


def _ensure_in_child(directory: str) -> list[str]:
    return [path.name for path in ensure_samples(Path(directory))]


def test_two_processes_generating_at_once_both_succeed_with_complete_files(tmp_path: Path):
    context = multiprocessing.get_context("spawn")
    with context.Pool(2) as pool:
        results = pool.map(_ensure_in_child, [str(tmp_path)] * 2)
    assert results[0] == results[1] == [spec.filename for spec in SAMPLES]
    reference = ensure_samples(tmp_path / "reference")
    for spec, ref in zip(SAMPLES, reference, strict=True):
        assert (tmp_path / spec.filename).read_bytes() == ref.read_bytes()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_make_scene_is_deterministic_per_seed_and_kind():
    a = make_scene(320, 200, 7, kind="landscape")
    assert a.shape == (200, 320, 3) and a.dtype == np.uint8
    assert (make_scene(320, 200, 7, kind="landscape") == a).all()
    assert not (make_scene(320, 200, 8, kind="landscape") == a).all()
    # Without a kind, the seed picks one.
    assert (make_scene(320, 200, 0) == make_scene(320, 200, 0, kind=SCENE_KINDS[0])).all()
    assert (make_scene(320, 200, 9) == make_scene(320, 200, 9, kind=SCENE_KINDS[1])).all()


@pytest.mark.parametrize("kind", SCENE_KINDS)
def test_every_scene_kind_draws_something_at_odd_sizes(kind):
    scene = make_scene(101, 77, 3, kind=kind)
    assert scene.shape == (77, 101, 3)
    assert scene.std() > 10


def test_make_scene_rejects_unknown_kinds_and_tiny_sizes():
    with pytest.raises(ValueError, match="kind"):
        make_scene(64, 64, 0, kind="volcano")
    with pytest.raises(ValueError):
        make_scene(8, 8, 0)
