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


def test_open_stream_reads_plain_gzip_and_bgzip_alike_and_names_a_missing_file(tmp_path):
    from hpcprep.compressed import DECOMPRESS_ERRORS
    from hpcprep_genomics.fastx import bgzf_compress

    text = b"".join(b"line %d\n" % i for i in range(50_000))
    (tmp_path / "plain.txt").write_bytes(text)
    (tmp_path / "packed.txt.gz").write_bytes(gzip.compress(text))
    (tmp_path / "blocked.txt.gz").write_bytes(bgzf_compress(text))  # several BGZF blocks
    packed = gzip.compress(text)
    (tmp_path / "cut.txt.gz").write_bytes(packed[: len(packed) // 2])
    reader = Sizes({"paths": [str(tmp_path)]})
    items = {it.source.rsplit("/", 1)[-1]: it for it in reader.plan()}
    for name in ("plain.txt", "packed.txt.gz", "blocked.txt.gz"):
        with reader.open_stream(items[name]) as stream:
            assert stream.read() == text, name
    lines = []
    with pytest.raises(DECOMPRESS_ERRORS), reader.open_stream(items["cut.txt.gz"]) as stream:
        for line in stream:
            lines.append(line)
    assert len(lines) > 1000 and text.startswith(b"".join(lines))  # every line before the cut
    (tmp_path / "plain.txt").unlink()
    with pytest.raises(RecordError, match=r"plain\.txt: cannot read the file"):
        with reader.open_stream(items["plain.txt"]):
            pass


def test_files_is_what_plan_is_built_on(tmp_path):
    """A reader that adds to each item overrides ``files()`` (which files count) or ``plan()``."""
    for name in ("a.fa", "a.fa.fai", "b.fa"):
        (tmp_path / name).write_text(">r\nACGT\n")

    class NoIndexes(Sizes):
        def files(self):
            return [(p, s) for p, s in super().files() if not p.endswith(".fai")]

    assert [p.rsplit("/", 1)[-1] for p, _ in Sizes({"paths": [str(tmp_path)]}).files()] == ["a.fa", "a.fa.fai", "b.fa"]
    assert [it.source.rsplit("/", 1)[-1] for it in NoIndexes({"paths": [str(tmp_path)]}).plan()] == ["a.fa", "b.fa"]
