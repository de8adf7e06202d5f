"""``FileReader``: the shared base of readers of whole files (plan by file, bytes, gzip, errors)."""

from __future__ import annotations

import gzip

import numpy as np
import pytest
from hpcprep import Column, RecordError, record_id
from hpcprep.file_reader import FileParams, FileReader
from pydantic import Field


class Sizes(FileReader):
    """Each file's length after gunzipping."""

    name = "test.sizes"
    outputs = (Column("source", "string"), Column("record_id", "string"), Column("length", "int64"))

    def read(self, item):
        data = self.read_bytes(item)
        yield {
            "source": np.array([item.source], dtype=object),
            "record_id": np.array([record_id(item.source)], dtype=object),
            "length": np.array([len(data)]),
        }


def test_a_folder_lists_its_files_not_hidden_ones_nor_what_links_lead_outside(tmp_path):
    """Hidden files are skipped, a link to a file is a file, a link to a folder is not
    entered (a loop of links would never end), a broken link is nothing."""
    data = tmp_path / "data"
    (data / "deep" / "er").mkdir(parents=True)
    (data / ".hidden").mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "o.txt").write_text("oooo")
    for name, text in {"a.txt": "a", "deep/er/b.txt": "bb", ".secret.txt": "s", ".hidden/h.txt": "hh"}.items():
        (data / name).write_text(text)
    (data / "to_file.txt").symlink_to(outside / "o.txt")
    (data / "to_folder").symlink_to(outside, target_is_directory=True)
    (data / "loop").symlink_to(data, target_is_directory=True)
    (data / "broken.txt").symlink_to(tmp_path / "nowhere.txt")
    items = Sizes({"paths": [str(data)], "suffixes": [".TXT"]}).plan()
    assert [(it.source, it.size) for it in items] == [
        (str(data / ".hidden" / "h.txt"), 2),  # a hidden folder's files are not hidden names
        (str(data / "a.txt"), 1),
        (str(data / "deep" / "er" / "b.txt"), 2),
        (str(data / "to_file.txt"), 4),
    ]


def test_plan_lists_each_file_once_sorted_with_its_size(tmp_path):
    (tmp_path / "sub").mkdir()
    for name, text in {"b.txt": "bb", "a.txt": "a", "sub/c.txt": "ccc", "skip.bin": "x"}.items():
        (tmp_path / name).write_text(text)
    items = Sizes({"paths": [str(tmp_path)], "suffixes": [".txt"]}).plan()
    assert [(it.source, it.index, it.size) for it in items] == [
        (str(tmp_path / "a.txt"), 0, 1),
        (str(tmp_path / "b.txt"), 1, 2),
        (str(tmp_path / "sub" / "c.txt"), 2, 3),
    ]
    assert len(Sizes({"paths": [str(tmp_path)]}).plan()) == 4  # no suffixes: every file
    with pytest.raises(FileNotFoundError, match="nothing-here"):
        Sizes({"paths": [str(tmp_path / "nothing-here")]}).plan()


def test_read_bytes_gunzips_and_names_the_file_it_cannot_read(tmp_path):
    plain = tmp_path / "plain.txt"
    plain.write_bytes(b"hello")
    packed = tmp_path / "packed.txt.gz"
    packed.write_bytes(gzip.compress(b"hello, world"))
    cut = tmp_path / "cut.txt.gz"
    cut.write_bytes(gzip.compress(b"x" * 10_000)[:30])
    reader = Sizes({"paths": [str(tmp_path)]})
    items = {it.source: it for it in reader.plan()}
    assert reader.read_bytes(items[str(plain)]) == b"hello"
    assert reader.read_bytes(items[str(packed)]) == b"hello, world"
    assert reader.read_bytes(items[str(packed)], gunzip=False) == packed.read_bytes()
    with pytest.raises(RecordError, match=r"cut\.txt\.gz: damaged or truncated gzip"):
        reader.read_bytes(items[str(cut)])
    gone = items[str(plain)]
    plain.unlink()
    with pytest.raises(RecordError, match=r"plain\.txt: cannot read the file"):
        reader.read_bytes(gone)


def test_params_give_paths_suffixes_and_s3_and_can_be_specialised():
    class MeshLike(FileParams):
        suffixes: list[str] | None = Field([".stl"], description="mesh files only")

    assert set(FileParams.model_fields) >= {"paths", "suffixes", "endpoint_url", "access_key", "secret_key"}
    assert MeshLike(paths=["a"]).suffixes == [".stl"]
    with pytest.raises(ValueError, match="paths"):
        FileParams()
