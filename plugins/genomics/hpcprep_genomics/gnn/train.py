"""Train the de Bruijn GNN as a graph classifier, with PyG on CPU.

The encoder (``embedding``, L2-normalised) gets a linear head ``head`` and is trained end to end
with cross-entropy and Adam. The held-out set is a stratified ``val_fraction`` of every class,
chosen by the seed; it never feeds a gradient. Deterministic for a seed: NumPy initialisation
(:func:`~.weights.random_weights`), seeded shuffling, torch seeded and on one thread while it trains.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from .features import check_graph
from .weights import GnnConfig, random_weights

CLIP_NORM = 1.0


@dataclass
class TrainReport:
    """What :func:`train_classifier` saw: class counts per split, per-epoch loss. ``on_epoch``,
    when set, is called after each epoch with ``(epoch, epochs, mean loss)`` (progress)."""

    train_counts: dict[str, int] = field(default_factory=dict)
    held_out_counts: dict[str, int] = field(default_factory=dict)
    losses: list[float] = field(default_factory=list)
    train_accuracy: float = math.nan
    on_epoch: Callable[[int, int, float], None] | None = None


def split_indices(labels: list[str], val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Stratified ``(train, held_out)`` indices: about ``val_fraction`` of each class held out.

    A class with at least two examples keeps at least one on each side.
    """
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction={val_fraction}: must be in [0, 1)")
    rng = np.random.default_rng(seed)
    labels_arr = np.asarray(labels, dtype=object)
    train, held = [], []
    for c in sorted(set(labels)):
        idx = np.flatnonzero(labels_arr == c)
        idx = idx[rng.permutation(idx.size)]
        n_val = int(round(val_fraction * idx.size))
        if val_fraction > 0 and idx.size >= 2:
            n_val = min(max(n_val, 1), idx.size - 1)
        held.append(idx[:n_val])
        train.append(idx[n_val:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(held))


def train_classifier(
    graphs,
    labels,
    config: GnnConfig,
    seed: int = 0,
    epochs: int = 30,
    val_fraction: float = 0.2,
    lr: float = 0.002,
    batch_graphs: int = 16,
    weight_decay: float = 0.0,
    report: TrainReport | None = None,
) -> tuple[dict[str, np.ndarray], list[str], float]:
    """Train on labelled graphs; returns ``(arrays, classes, held_out_accuracy)``.

    ``classes`` are the sorted distinct labels (class i is ``classes[i]``); ``arrays`` fit
    ``config.with_classes(classes)`` and load in both backends. ``held_out_accuracy`` is NaN
    when nothing is held out (``val_fraction=0``). Pass a :class:`TrainReport` to get counts
    and losses back.
    """
    import torch

    from .model_pyg import GraphEncoder, to_batch

    labels = [str(x) for x in labels]
    if len(graphs) != len(labels):
        raise ValueError(f"{len(graphs)} graphs but {len(labels)} labels")
    checked = [check_graph(g, i) for i, g in enumerate(graphs)]
    empty = [i for i, g in enumerate(checked) if g[0].size == 0]
    if empty:
        raise ValueError(f"{len(empty)} graph(s) without nodes (first: #{empty[0]}): no valid k-mer to learn from")
    classes = sorted(set(labels))
    if len(classes) < 2:
        raise ValueError(f"training a classifier needs at least two labels, got {classes}")
    config = config.with_classes(classes)
    y_all = np.array([classes.index(x) for x in labels], dtype=np.int64)
    train_idx, held_idx = split_indices(labels, val_fraction, seed)
    report = report if report is not None else TrainReport()
    report.train_counts = dict(sorted(Counter(labels[i] for i in train_idx).items()))
    report.held_out_counts = dict(sorted(Counter(labels[i] for i in held_idx).items()))

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.manual_seed(seed)
        init = random_weights(config, seed)
        # A zero head starts every class at the same logit, so early steps shape the encoder, not noise.
        init["head.weight"][:] = 0.0
        init["head.bias"][:] = 0.0
        model = GraphEncoder(config).load_arrays(init)
        opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
        steps_per_epoch = max(1, math.ceil(train_idx.size / batch_graphs))
        # Cosine decay to zero: the last steps settle instead of kicking the weights around.
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs * steps_per_epoch)
        rng = np.random.default_rng(seed)
        node_k = config.node_k

        def accuracy(idx) -> float:
            if idx.size == 0:
                return math.nan
            model.eval()
            hits = 0
            with torch.no_grad():
                for s in range(0, idx.size, 256):
                    part = idx[s : s + 256]
                    pred = model.logits(to_batch([checked[i] for i in part], node_k)).argmax(-1).numpy()
                    hits += int((pred == y_all[part]).sum())
            return hits / idx.size

        for epoch in range(epochs):
            model.train()
            order = train_idx[rng.permutation(train_idx.size)]
            total = 0.0
            for s in range(0, order.size, batch_graphs):
                part = order[s : s + batch_graphs]
                logits = model.logits(to_batch([checked[i] for i in part], node_k))
                loss = torch.nn.functional.cross_entropy(logits, torch.from_numpy(y_all[part]))
                opt.zero_grad()
                loss.backward()
                # The L2 normalisation has large gradients where ||z|| is small; clipping keeps Adam stable.
                torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=CLIP_NORM)
                opt.step()
                sched.step()
                total += loss.item() * part.size
            report.losses.append(total / max(order.size, 1))
            if report.on_epoch is not None:
                report.on_epoch(epoch + 1, epochs, report.losses[-1])
        report.train_accuracy = accuracy(train_idx)
        held_out = accuracy(held_idx)
        return model.arrays(), classes, held_out
    finally:
        torch.set_num_threads(threads)
