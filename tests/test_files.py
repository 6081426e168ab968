"""Atomic writes and the clean-up of writes a kill left unfinished."""

from __future__ import annotations

from pathlib import Path

from rldispatch.files import atomic_write_json, remove_unfinished_writes


def test_an_atomic_write_leaves_only_the_file(tmp_path: Path) -> None:
    path = atomic_write_json(tmp_path / "a" / "report.json", {"x": 1})
    assert path.read_text() == '{\n  "x": 1\n}\n'
    assert [p.name for p in path.parent.iterdir()] == ["report.json"]


def test_unfinished_writes_are_removed_and_finished_files_kept(tmp_path: Path) -> None:
    done = atomic_write_json(tmp_path / "checkpoints" / "resume.json", {"episode": 3})
    killed = tmp_path / "checkpoints" / ".resume.json.abc123.tmp"
    killed.write_bytes(b"half a file")
    other = tmp_path / "notes.tmp"  # not one of ours: no leading dot
    other.write_text("keep me")
    assert remove_unfinished_writes(tmp_path) == [killed]
    assert not killed.exists()
    assert done.exists() and other.exists()
    assert remove_unfinished_writes(tmp_path / "missing") == []


def test_a_folders_size_names_the_file_that_is_most_of_it(tmp_path: Path) -> None:
    from rldispatch.files import describe_folder_size

    (tmp_path / "run" / "checkpoints").mkdir(parents=True)
    (tmp_path / "run" / "checkpoints" / "resume.pt").write_bytes(b"x" * 3_000_000)
    (tmp_path / "run" / "model.safetensors").write_bytes(b"x" * 1_000_000)
    assert describe_folder_size(tmp_path / "run") == (
        f"{tmp_path / 'run'}: 4.0 MB (75% of it checkpoints/resume.pt)"
    )
    (tmp_path / "run" / "report.json").write_bytes(b"x" * 3_000_000)
    assert describe_folder_size(tmp_path / "run") == f"{tmp_path / 'run'}: 7.0 MB"
