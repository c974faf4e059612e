"""The CLI's pure pieces: filter specs, SSE parsing, names, Retry-After, chunks, keys, and
writing a file whole or not at all."""

from __future__ import annotations

import os
import tomllib
from datetime import UTC, datetime
from pathlib import Path

import click
import pytest

from imgproc_cli.client import retry_after_seconds
from imgproc_cli.download import disposition_filename
from imgproc_cli.files import LocalImage, atomic_output, chunks, safe_name, unique_name, walk
from imgproc_cli.follow import progress_of, sse_events
from imgproc_cli.submit import SubmitOptions, idempotency_key
from imgproc_cli.submit_cmd import parse_filter
from tests.support.workers import ROOT


def test_filter_specs_become_steps_with_typed_values():
    assert parse_filter("edges:threshold1=50,threshold2=150.5") == {
        "filter": "edges", "params": {"threshold1": 50, "threshold2": 150.5}}
    assert parse_filter("grayscale") == {"filter": "grayscale", "params": {}}
    assert parse_filter("x:flag=true,mode=reflect") == {
        "filter": "x", "params": {"flag": True, "mode": "reflect"}}


@pytest.mark.parametrize("spec", ["", ":a=1", "sharpen:intensity", "sharpen:=3", "a b",
                                  "sharpen:intensity="])
def test_malformed_filter_specs_are_refused(spec):
    with pytest.raises(click.BadParameter):
        parse_filter(spec)


def test_sse_events_survive_any_split_and_skip_keepalives():
    body = (b": keepalive\n\nevent: progress\ndata: {\"a\": 1}\n\n"
            b"event: end\r\ndata: {\"b\": 2}\r\n\r\n")
    for size in (1, 3, 7, len(body)):
        parts = [body[i:i + size] for i in range(0, len(body), size)]
        assert list(sse_events(parts)) == [("progress", '{"a": 1}'), ("end", '{"b": 2}')]


def test_progress_counts_a_summary_and_a_local_jobs_results():
    summary = {"status": "running", "total": 5,
               "progress": {"completed": 2, "failed": 1, "cancelled": 0, "open": 2}}
    assert progress_of(summary).done == 3 and not progress_of(summary).finished
    local = {"status": "completed_with_errors", "total": 2,
             "results": [{"status": "completed"}, {"status": "failed"}]}
    assert (progress_of(local).completed, progress_of(local).failed) == (1, 1)
    assert progress_of(local).finished


def test_names_from_the_server_stay_inside_the_output_folder():
    assert safe_name("../../etc/passwd", "x") == "passwd"
    assert safe_name("..\\..\\boot.ini", "x") == "boot.ini"
    assert safe_name("..", "fallback.png") == "fallback.png"
    assert safe_name(".hidden.png", "x") == "hidden.png"
    assert safe_name("a\x00b\nc.png", "x") == "abc.png"
    assert len(safe_name("a" * 500 + ".png", "x")) <= 200
    assert safe_name("a" * 500 + ".png", "x").endswith(".png")
    assert disposition_filename('inline; filename="holiday.png"') == "holiday.png"
    assert disposition_filename("attachment; filename*=utf-8''%C3%A9t%C3%A9.png") == "été.png"
    assert disposition_filename(None) is None


def test_repeated_names_get_a_number():
    taken: set[str] = set()
    assert [unique_name(n, taken) for n in ["a.png", "a.png", "A.png", "b.jpg", "a.png"]] == [
        "a.png", "a (2).png", "A (3).png", "b.jpg", "a (4).png"]


def test_retry_after_takes_seconds_or_a_date():
    assert retry_after_seconds("3") == 3.0
    assert retry_after_seconds(None) == 1.0 and retry_after_seconds("soon") == 1.0
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert retry_after_seconds("Thu, 01 Jan 2026 12:00:07 GMT", now=now) == 7.0
    assert retry_after_seconds("-5") == 0.0


def image(name: str, size: int, digest: str = "0") -> LocalImage:
    return LocalImage(path=Path(name), name=name, size=size, sha256=digest)


def test_chunks_bound_files_and_bytes():
    images = [image(f"{i}", size) for i, size in enumerate([5, 5, 5, 20, 1, 1, 1])]
    groups = [[i.name for i in group] for group in chunks(images, max_files=3, max_bytes=12)]
    assert groups == [["0", "1"], ["2"], ["3"], ["4", "5", "6"]]


def test_the_idempotency_key_follows_contents_names_order_and_options():
    a, b = image("a.png", 1, "aa"), image("b.png", 1, "bb")
    options = SubmitOptions(steps=[{"filter": "blur", "params": {"radius": 2}}])
    key = idempotency_key([a, b], options)
    assert key == idempotency_key([a, b], SubmitOptions(steps=list(options.steps)))
    assert key != idempotency_key([b, a], options)
    assert key != idempotency_key([a, image("b.png", 1, "cc")], options)
    assert key != idempotency_key([a, b], SubmitOptions(steps=options.steps, mode="threading"))
    assert key != idempotency_key([a, b], SubmitOptions(steps=options.steps, priority="high"))


def test_an_interrupted_write_leaves_neither_file_nor_temporary(tmp_path):
    target = tmp_path / "out.png"
    target.write_bytes(b"old")
    with pytest.raises(KeyboardInterrupt), atomic_output(target) as handle:
        handle.write(b"half")
        raise KeyboardInterrupt
    assert target.read_bytes() == b"old" and os.listdir(tmp_path) == ["out.png"]
    with atomic_output(target) as handle:
        handle.write(b"new")
    assert target.read_bytes() == b"new" and os.listdir(tmp_path) == ["out.png"]
    assert target.stat().st_mode & 0o044  # readable as a new file would be, not 0600


def test_walk_skips_non_images_the_output_folder_and_temporaries(tmp_path):
    (tmp_path / "in" / "out").mkdir(parents=True)
    for name in ["b.PNG", "a.jpg", "notes.txt", ".imgproc-x.part", "out/done.png"]:
        (tmp_path / "in" / name).write_bytes(b"x")
    found = walk([tmp_path / "in"], exclude=tmp_path / "in" / "out")
    assert [p.name for p in found.images] == ["a.jpg", "b.PNG"]
    assert [p.name for p in found.skipped] == ["notes.txt"]


def test_the_console_script_names_the_cli_entry_point():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert project["project"]["scripts"] == {"imgproc": "imgproc_cli.main:main"}
    from imgproc_cli.main import main
    assert callable(main)


def test_a_file_named_and_in_a_named_folder_is_sent_once(tmp_path):
    (tmp_path / "x.png").write_bytes(b"x")
    assert walk([tmp_path, tmp_path / "x.png"]).images == [tmp_path / "x.png"]


def test_the_client_reports_the_projects_version():
    import imgproc_cli

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert imgproc_cli.__version__ == project["project"]["version"]
