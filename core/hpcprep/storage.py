"""Local paths and s3:// URIs behind one interface (pyarrow filesystems).

S3 endpoint and credentials come from the spec or from the environment
(``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``,
``AWS_REGION``); they are passed to pyarrow and never logged or written to a manifest.
"""

from __future__ import annotations

import fnmatch
import glob
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import pyarrow.fs as pafs
from pydantic import Field

from .stages import Params

#: Kernel file systems: writing there fails or, worse, changes the running system.
PSEUDO_FILESYSTEMS = (Path("/proc"), Path("/sys"), Path("/dev"))


@dataclass(frozen=True)
class S3Options:
    endpoint_url: str | None = None
    access_key: str | None = None
    secret_key: str | None = None
    region: str | None = None


class S3Params(Params):
    """Parameters shared by every stage that reads or writes s3:// URIs."""

    endpoint_url: str | None = Field(None, description="S3 endpoint (default: AWS_ENDPOINT_URL)")
    access_key: str | None = Field(None, description="S3 access key (default: AWS_ACCESS_KEY_ID); never logged")
    secret_key: str | None = Field(None, description="S3 secret key (default: AWS_SECRET_ACCESS_KEY); never logged")
    region: str | None = Field(None, description="S3 region (default: AWS_REGION)")

    def s3(self) -> S3Options:
        return S3Options(self.endpoint_url, self.access_key, self.secret_key, self.region)


def is_s3(uri: str) -> bool:
    return uri.startswith("s3://")


def filesystem_for(uri: str, s3: S3Options | None = None) -> tuple[pafs.FileSystem, str]:
    """The filesystem for ``uri`` and the path inside it."""
    if not is_s3(uri):
        return pafs.LocalFileSystem(), os.path.abspath(uri)
    if _USERINFO.match(uri):
        raise ValueError(
            f"{redact_uri(uri)}: credentials inside a URI are refused (they would end up in logs and "
            "manifests); give access_key/secret_key or set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY"
        )
    s3 = s3 or S3Options()
    endpoint = s3.endpoint_url or os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    kwargs: dict = {}
    if endpoint:
        parsed = urlparse(endpoint)
        kwargs["endpoint_override"] = parsed.netloc or parsed.path
        kwargs["scheme"] = parsed.scheme or "https"
    access = s3.access_key or os.environ.get("AWS_ACCESS_KEY_ID")
    secret = s3.secret_key or os.environ.get("AWS_SECRET_ACCESS_KEY")
    if access and secret:
        kwargs["access_key"] = access
        kwargs["secret_key"] = secret
    region = s3.region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if region:
        kwargs["region"] = region
    return pafs.S3FileSystem(**kwargs), uri[len("s3://") :]


def _has_magic(p: str) -> bool:
    return any(c in p for c in "*?[")


def expand_paths(
    patterns: list[str], suffixes: tuple[str, ...] | None = None, s3: S3Options | None = None
) -> list[tuple[str, int]]:
    """Expand globs, directories and s3:// URIs into sorted ``(path, size)`` pairs.

    A directory contributes its files recursively (filtered by ``suffixes`` when
    given). Patterns that match nothing raise one ``FileNotFoundError`` naming them all.
    """
    found: dict[str, int] = {}
    unmatched = []
    for pattern in patterns:
        matches = _expand_s3(pattern, suffixes, s3) if is_s3(pattern) else _expand_local(pattern, suffixes)
        if not matches:
            unmatched.append(redact_uri(pattern))
        found.update(matches)
    if unmatched:
        wanted = ""
        if suffixes:
            wanted = f" (files ending in {', '.join(suffixes[:6])}{', ...' if len(suffixes) > 6 else ''})"
        raise FileNotFoundError(f"nothing matches {', '.join(repr(p) for p in unmatched)}{wanted}")
    return sorted(found.items())


def unmatched_local(patterns: list[str]) -> list[str]:
    """The local patterns among ``patterns`` that name nothing at all, for a spec to be refused
    on before anything starts. Cheap where they match (a glob stops at its first match, no
    folder is listed, S3 is not asked); ``expand_paths`` says the rest, e.g. a folder without
    files of the wanted suffixes, or an S3 prefix that holds nothing."""
    return [redact_uri(p) for p in patterns if not is_s3(p) and not _names_something(p)]


def _names_something(pattern: str) -> bool:
    if "**" in pattern:
        # a recursive glob that matches nothing walks its whole tree: only its root is checked
        pattern = pattern.split("**", 1)[0] or "."
    if not _has_magic(pattern):
        return os.path.exists(pattern)
    return next(glob.iglob(pattern), None) is not None


_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)[^/@\s]+@")


def redact_uri(text: str) -> str:
    """``text`` with the credentials of any ``scheme://user:password@host`` URI in it hidden."""
    return _USERINFO.sub(r"\g<scheme>***@", text)


def _wanted(name: str, suffixes: tuple[str, ...] | None) -> bool:
    return suffixes is None or name.lower().endswith(tuple(s.lower() for s in suffixes))


def _expand_local(pattern: str, suffixes) -> dict[str, int]:
    out: dict[str, int] = {}
    candidates = glob.glob(pattern, recursive=True) if _has_magic(pattern) else [pattern]
    for cand in candidates:
        p = Path(cand)
        if p.is_dir():
            out.update(_files_under(str(p.absolute()), suffixes))
        elif p.is_file():
            out[str(p.absolute())] = p.stat().st_size
    return out


def _files_under(top: str, suffixes) -> dict[str, int]:
    """Every file under the folder ``top`` with its size: hidden names skipped, links to
    files taken, links to folders not entered (a loop of links would never end); os.walk
    rather than Path.rglob, several times faster on 20 000 files."""
    out: dict[str, int] = {}
    for root, _dirs, names in os.walk(top):
        for name in names:
            if name.startswith(".") or not _wanted(name, suffixes):
                continue
            path = os.path.join(root, name)
            try:
                st = os.stat(path)
            except OSError:  # a broken link
                continue
            if stat.S_ISREG(st.st_mode):
                out[path] = st.st_size
    return out


def _expand_s3(pattern: str, suffixes, s3) -> dict[str, int]:
    fs, path = filesystem_for(pattern, s3)
    out: dict[str, int] = {}
    if _has_magic(path):
        base = path.split("*", 1)[0].split("?", 1)[0].split("[", 1)[0].rsplit("/", 1)[0]
        infos = fs.get_file_info(pafs.FileSelector(base, recursive=True, allow_not_found=True))
        for info in infos:
            if info.type == pafs.FileType.File and fnmatch.fnmatch(info.path, path):
                out["s3://" + info.path] = info.size
        return out
    info = fs.get_file_info(path)
    if info.type == pafs.FileType.File:
        out["s3://" + path] = info.size
    elif info.type == pafs.FileType.Directory:
        for sub in fs.get_file_info(pafs.FileSelector(path, recursive=True)):
            if sub.type == pafs.FileType.File and _wanted(sub.base_name, suffixes):
                out["s3://" + sub.path] = sub.size
    return out


def open_input(uri: str, s3: S3Options | None = None):
    """A binary file object for a local path or an s3:// URI."""
    fs, path = filesystem_for(uri, s3)
    return fs.open_input_file(path)


def parquet_dataset(path: str):
    """A run's Parquet output (a file, or a directory of them with hive partitions) as a
    ``pyarrow.dataset.Dataset``; ``ValueError`` naming the path when it cannot be read so."""
    import pyarrow.dataset as ds

    try:
        return ds.dataset(path, format="parquet", partitioning="hive")
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: cannot read as Parquet ({exc})") from exc


#: The file a sink leaves in its output directory: a later run may clear only directories that hold it.
SINK_MARKER = "_hpcprep_sink.json"


def check_writable(path: Path) -> str | None:
    """None if a directory can be created or written at ``path``, else why not."""
    if "\0" in str(path):
        return f"{str(path)!r} holds a NUL character, which no file name can"
    path = path.absolute()
    pseudo = next((root for root in PSEUDO_FILESYSTEMS if path.resolve().is_relative_to(root)), None)
    if pseudo:
        return f"{path} is under {pseudo}, the kernel's own files, not a place for data"
    if path.exists() and not path.is_dir():
        return f"{path} exists and is not a directory"
    probe = path
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        return f"{probe} is a file, so {path} cannot be created"
    if not os.access(probe, os.W_OK | os.X_OK):
        return f"{path} is inside {probe}, which is not writable"
    return None


def claim_sink_dir(fs: pafs.FileSystem, root: str, ctx, label: str, shown: str | None = None) -> None:
    """Make ``root`` (on ``fs``) a sink's output directory for the run ``ctx`` (a ``SinkContext``).

    A new run needs it absent or empty; ``--overwrite`` clears it, but only if an earlier hpcprep
    sink wrote it (its ``SINK_MARKER`` is there), so a mistyped path never deletes someone's data;
    ``--resume`` keeps what is there. ``label`` (the sink) and ``shown`` (the path as the user gave
    it) make the error messages.
    """
    import json

    shown = shown or root
    info = fs.get_file_info(root)
    if info.type == pafs.FileType.File:
        raise FileExistsError(f"{label}: {shown} is a file, not a directory")
    existing = []
    if info.type == pafs.FileType.Directory:
        existing = fs.get_file_info(pafs.FileSelector(root, recursive=False))
    if existing and ctx.mode != "resume":
        if not any(e.base_name == SINK_MARKER for e in existing):
            raise FileExistsError(f"{label}: {shown} is not empty and was not written by hpcprep; choose another path")
        if ctx.mode == "new":
            raise FileExistsError(f"{label}: {shown} holds an earlier run's output; pass --overwrite")
        fs.delete_dir_contents(root)
    fs.create_dir(root, recursive=True)
    with fs.open_output_stream(f"{root}/{SINK_MARKER}") as f:
        f.write(json.dumps({"run": ctx.run_name, "run_dir": ctx.run_dir}).encode())
