"""Framework-neutral files: GNN weights (``.npz`` + JSON config) and graph bundles.

Only NumPy here: the DGL environment (numpy < 2, torch 2.2.1, dgl) imports this module too.

Weights file
    An ``.npz`` holding ``__config__`` (a JSON string: format tag, :class:`GnnConfig` fields,
    optional ``meta``) and one float32 array per parameter, named as in :func:`param_shapes`.
    Shapes follow torch's ``Linear`` convention ``(out_features, in_features)``.

Graph bundle
    An ``.npz`` with the graphs of a batch concatenated: ``node_codes`` (uint64), ``node_ptr``
    (int64, n_graphs + 1), ``src``, ``dst`` (int32, local node indices), ``edge_counts`` (uint32)
    and ``edge_ptr`` (int64, n_graphs + 1). It is how graphs reach the DGL subprocess.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, fields, replace

import numpy as np

FORMAT = "hpcprep-genomics-gnn/1"
CONFIG_KEY = "__config__"


@dataclass(frozen=True)
class GnnConfig:
    """Shape of the de Bruijn GNN.

    ``k`` is the de Bruijn k the graphs were built with (nodes are (k-1)-mers, ``node_k``);
    ``n_classes``/``classes`` describe the training head, which embedding does not use.
    """

    k: int = 5
    hidden_dim: int = 64
    embed_dim: int = 64
    layers: int = 2
    n_classes: int = 2
    classes: tuple[str, ...] = field(default=())

    def __post_init__(self):
        problems = []
        if not 2 <= self.k <= 32:
            problems.append(f"k={self.k} (2..32)")
        for name in ("hidden_dim", "embed_dim", "n_classes"):
            if getattr(self, name) < 1:
                problems.append(f"{name}={getattr(self, name)} (>= 1)")
        if self.layers < 0:
            problems.append(f"layers={self.layers} (>= 0)")
        if self.classes and len(self.classes) != self.n_classes:
            problems.append(f"{len(self.classes)} class names for n_classes={self.n_classes}")
        if problems:
            raise ValueError("GnnConfig: bad " + ", ".join(problems))
        object.__setattr__(self, "classes", tuple(str(c) for c in self.classes))

    @property
    def node_k(self) -> int:
        return self.k - 1

    def with_classes(self, classes) -> GnnConfig:
        classes = tuple(str(c) for c in classes)
        return replace(self, n_classes=len(classes), classes=classes)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["classes"] = list(self.classes)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> GnnConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"GnnConfig: unknown field(s) {unknown}")
        return cls(**{k: (tuple(v) if k == "classes" else v) for k, v in d.items()})


DEFAULT_CONFIG = GnnConfig()


def param_shapes(config: GnnConfig) -> dict[str, tuple[int, ...]]:
    """Every parameter's name and shape; both backends name their modules the same way."""
    from .features import N_FEATURES

    h, e = config.hidden_dim, config.embed_dim
    shapes = {"input.weight": (h, N_FEATURES), "input.bias": (h,)}
    for i in range(config.layers):
        shapes[f"layers.{i}.self.weight"] = (h, h)
        shapes[f"layers.{i}.self.bias"] = (h,)
        shapes[f"layers.{i}.neighbor.weight"] = (h, h)
    shapes["readout.weight"] = (e, 2 * h)
    shapes["readout.bias"] = (e,)
    shapes["head.weight"] = (config.n_classes, e)
    shapes["head.bias"] = (config.n_classes,)
    return shapes


def check_arrays(config: GnnConfig, arrays: dict) -> dict[str, np.ndarray]:
    """``arrays`` as float32, after checking that names and shapes match ``config``."""
    shapes = param_shapes(config)
    missing = sorted(set(shapes) - set(arrays))
    extra = sorted(set(arrays) - set(shapes))
    wrong = sorted(
        f"{n} {tuple(np.shape(arrays[n]))} (expected {s})"
        for n, s in shapes.items()
        if n in arrays and tuple(np.shape(arrays[n])) != s
    )
    if missing or extra or wrong:
        parts = [f"missing {missing}"] * bool(missing) + [f"unexpected {extra}"] * bool(extra) + wrong
        raise ValueError("GNN weights do not match the config: " + "; ".join(parts))
    return {n: np.ascontiguousarray(arrays[n], dtype=np.float32) for n in shapes}


def random_weights(config: GnnConfig, seed: int) -> dict[str, np.ndarray]:
    """Untrained weights, deterministic for ``seed`` (NumPy's PCG64).

    Each parameter is uniform in ±1/sqrt(fan_in), as torch initialises ``Linear``; biases use
    the fan-in of their layer's weight.
    """
    rng = np.random.default_rng(seed)
    shapes = param_shapes(config)
    arrays = {}
    for name, shape in shapes.items():
        fan_in = shapes[name.rsplit(".", 1)[0] + ".weight"][1]
        bound = 1.0 / np.sqrt(fan_in)
        arrays[name] = rng.uniform(-bound, bound, size=shape).astype(np.float32)
    return arrays


def save_weights(path, config: GnnConfig, arrays: dict, meta: dict | None = None) -> None:
    """Write ``arrays`` (checked against ``config``) and the config to ``path`` (.npz)."""
    arrays = check_arrays(config, arrays)
    header = {"format": FORMAT, "config": config.to_dict(), "meta": meta or {}}
    path = os.fspath(path)
    tmp = path + ".tmp.npz"
    np.savez(tmp, **{CONFIG_KEY: np.array(json.dumps(header))}, **arrays)
    os.replace(tmp, path)


def _read(path):
    path = os.fspath(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            data = {name: z[name] for name in z.files}
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: not a GNN weights file ({exc})") from exc
    if CONFIG_KEY not in data:
        raise ValueError(f"{path}: not a GNN weights file (no {CONFIG_KEY} entry)")
    header = json.loads(str(data.pop(CONFIG_KEY)))
    if header.get("format") != FORMAT:
        raise ValueError(f"{path}: weights format {header.get('format')!r}, this version reads {FORMAT!r}")
    return header, data


def load_weights(path) -> tuple[GnnConfig, dict[str, np.ndarray]]:
    """``(config, arrays)`` from a file written by :func:`save_weights`."""
    header, data = _read(path)
    config = GnnConfig.from_dict(header["config"])
    try:
        return config, check_arrays(config, data)
    except ValueError as exc:
        raise ValueError(f"{os.fspath(path)}: {exc}") from exc


def weights_meta(path) -> dict:
    """The free-form ``meta`` stored with the weights (training data, accuracy, seed...)."""
    return _read(path)[0].get("meta", {})


# -- graph bundles ----------------------------------------------------------------------


def _ptr(sizes) -> np.ndarray:
    ptr = np.zeros(len(sizes) + 1, dtype=np.int64)
    np.cumsum(sizes, out=ptr[1:])
    return ptr


def save_graphs(path, graphs) -> None:
    """Write graphs ``(node_codes, src, dst, edge_counts)`` to one ``.npz`` bundle."""
    graphs = [tuple(np.asarray(a) for a in g) for g in graphs]

    def cat(i, dtype):
        return np.concatenate([g[i].astype(dtype, copy=False) for g in graphs]) if graphs else np.zeros(0, dtype)

    np.savez(
        os.fspath(path),
        node_codes=cat(0, np.uint64),
        node_ptr=_ptr([len(g[0]) for g in graphs]),
        src=cat(1, np.int32),
        dst=cat(2, np.int32),
        edge_counts=cat(3, np.uint32),
        edge_ptr=_ptr([len(g[1]) for g in graphs]),
    )


def load_graphs(path) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """The graphs of a bundle written by :func:`save_graphs`."""
    with np.load(os.fspath(path), allow_pickle=False) as z:
        codes, nptr, src, dst, cnt, eptr = (
            z[n] for n in ("node_codes", "node_ptr", "src", "dst", "edge_counts", "edge_ptr")
        )
    return [
        (
            codes[nptr[i] : nptr[i + 1]],
            src[eptr[i] : eptr[i + 1]],
            dst[eptr[i] : eptr[i + 1]],
            cnt[eptr[i] : eptr[i + 1]],
        )
        for i in range(len(nptr) - 1)
    ]
