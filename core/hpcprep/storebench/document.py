"""``docs/storage.md`` and its figures, made from a storage benchmark's results file only: every number in the
document, the recommendations' included, is read from the results, none is typed by hand."""

from __future__ import annotations

from pathlib import Path

#: Documented by AWS (SageMaker Developer Guide, "Quotas, naming rules and data types"), not measured here:
#: no SageMaker endpoint runs on these machines.
SAGEMAKER_LIMITS = [
    "a record (one row) at most 350 KB, a record identifier at most 2 KB, a feature value at most 350 KB",
    "`BatchGetRecord`: at most 100 records per call, a soft limit of 500 calls/s per account; "
    "`PutRecord` and `GetRecord`: a soft limit of 10 000 calls/s per API per account",
    "writes are billed by 1 KB write units and reads by 4 KB read units per record: a 768-d float32 "
    "vector (3 KB as binary, more as the text a feature value is) costs several units per row",
    "no vector search: similarity search needs a copy of the vectors elsewhere (the offline store is "
    "Parquet on S3, scanned like the Parquet rows below)",
]


def _mb(n: float) -> str:
    return f"{n / 1e6:,.1f}"


def _ms(x) -> str:
    return "–" if x is None else f"{x:,.2f}"


def _where(row: dict) -> str:
    return f"{row['store']} ({row['place']})"


def _plots(results: dict, img: Path) -> list[tuple[str, str]]:
    """PNG figures beside the document; (file name, caption) of each."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    img.mkdir(parents=True, exist_ok=True)
    tables = results["tables"]

    def save(fig, name):
        fig.tight_layout()
        fig.savefig(img / name, dpi=110)
        plt.close(fig)

    def per_table(name, points, style, **axes_settings):
        """One panel per table, one series per store: ``points(store_row)`` gives its (x, y) pairs."""
        fig, axes = plt.subplots(1, len(tables), figsize=(5 * len(tables), 4), squeeze=False)
        for ax, t in zip(axes[0], tables, strict=True):
            for s in t["stores"]:
                pts = points(s)
                if pts:
                    ax.plot(*zip(*pts, strict=True), style, label=_where(s), alpha=0.8)
            ax.set(title=t["name"], **axes_settings)
            ax.grid(alpha=0.3)
        axes[0][0].legend(fontsize=7)
        save(fig, name)

    def bars(name, xlabel, value):
        fig, ax = plt.subplots(figsize=(8, 0.35 * sum(len(t["stores"]) for t in tables) + 1))
        rows = [(f"{t['name']}: {_where(s)}", value(s)) for t in tables for s in t["stores"]]
        ax.barh([r[0] for r in rows], [r[1] for r in rows])
        ax.invert_yaxis()
        ax.set(xlabel=xlabel)
        ax.tick_params(axis="y", labelsize=7)
        save(fig, name)

    per_table(
        "storage_search.png",
        lambda s: [(x["recall_at_10"], x["p50_ms"]) for x in s["search"] if x["p50_ms"] is not None],
        "o",
        xlabel="recall@10",
        ylabel="p50 latency per query (ms)",
        yscale="log",
    )
    bars("storage_ingest.png", "ingest (MB/s of Arrow data)", lambda s: s["ingest"]["mb_per_s"])
    bars("storage_size.png", "size at rest / Arrow size in memory", lambda s: s["size_over_arrow"])
    per_table(
        "storage_lookup.png",
        lambda s: sorted((int(b), v["p50_ms"]) for b, v in s["lookup"].items()),
        "o-",
        xlabel="ids per lookup",
        ylabel="p50 (ms)",
        xscale="log",
        yscale="log",
    )
    return [
        ("storage_search.png", "Top-10 search: latency against recall@10, every store and setting"),
        ("storage_ingest.png", "Ingest rate"),
        ("storage_size.png", "Size at rest"),
        ("storage_lookup.png", "Lookups by record_id: p50 latency by batch size"),
    ]


def store_rows(t: dict) -> list[str]:
    """The table's stores as markdown rows: ingest, size, scans, lookups, append, update."""
    out = [
        "| store | ingest rows/s (MB/s) | size MB (× Arrow) | full scan MB/s | projection s "
        "| lookup p50 ms: 1 / 100 / 10 000 ids | append s | update s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for s in t["stores"]:
        look = " / ".join(_ms(s["lookup"].get(b, {}).get("p50_ms")) for b in ("1", "100", "10000"))
        scan = f"{s['scan']['mb_per_s']:,.0f}" if "scan" in s else "(offline = Parquet)"
        proj = f"{s['projection']['seconds']:.3f}" if "projection" in s else "–"
        upd = f"{s['update']['seconds']:.3f}" if "update" in s else "–"
        out.append(
            f"| {_where(s)} | {s['ingest']['rows_per_s']:,} ({s['ingest']['mb_per_s']:,.1f}) "
            f"| {_mb(s['size_bytes'])} ({s['size_over_arrow']:.2f}×) | {scan} | {proj} | {look} "
            f"| {s['append']['seconds']:.3f} | {upd} |"
        )
    return out


def search_rows(t: dict) -> list[str]:
    """Every store's search settings as markdown rows: latency, recall@10, filtered too."""
    out = [
        "| store | setting | index build s | p50 / p95 ms | recall@10 | filtered p50 / p95 ms | filtered recall@10 |",
        "|---|---|---|---|---|---|---|",
    ]
    for s in t["stores"]:
        filtered = {f["setting"]: f for f in s["filtered_search"]}
        for x in s["search"]:
            f = filtered.get(x["setting"], {})
            out.append(
                f"| {_where(s)} | {x['setting']} | {x['index_seconds']:.1f} | {_ms(x['p50_ms'])} / {_ms(x['p95_ms'])} "
                f"| {x['recall_at_10']:.3f} | {_ms(f.get('p50_ms'))} / {_ms(f.get('p95_ms'))} "
                f"| {f.get('recall_at_10', float('nan')):.3f} |"
            )
    return out


def _build_seconds(store: dict, setting: dict) -> float:
    """The build time of a setting's index (timed on the first setting that used it)."""
    kind = setting["setting"].split()[0]
    return max(x["index_seconds"] for x in store["search"] if x["setting"].split()[0] == kind)


def _largest(results: dict, every_store: bool = False) -> dict:
    """The largest table; with ``every_store``, the largest whose local rows hold every store measured locally
    in any table (a large table measured without Feast does not decide a question Feast answers)."""
    tables = results["tables"]
    if every_store:
        names = [{s["store"] for s in t["stores"] if s["place"] == "local"} for t in tables]
        complete = [t for t, have in zip(tables, names, strict=True) if have == set().union(*names)]
        tables = complete or tables
    return max(tables, key=lambda x: (x["rows"], x["dim"]))


def _local(t: dict) -> list[dict]:
    return [s for s in t["stores"] if s["place"] == "local"]


def recommendations(results: dict) -> list[str]:
    """One line per workload, each naming the figures it rests on (the largest table that has every store the
    workload compares, the local rows)."""
    t = _largest(results)
    local = _local(t)
    out = []

    scans = sorted((s for s in local if "scan" in s), key=lambda s: -s["scan"]["mb_per_s"])
    if scans:
        best, rest = scans[0], scans[1:]
        others = ", ".join(f"{_where(s)} {s['scan']['mb_per_s']:,.0f}" for s in rest)
        out.append(
            f"**Training scans**: {_where(best)}, {best['scan']['mb_per_s']:,.0f} MB/s over the whole "
            f"{t['name']} table (against {others} MB/s), at {best['size_over_arrow']:.2f}× the Arrow size on disk."
        )

    lt = _largest(results, every_store=True)
    for batch in ("1", "100"):
        looks = sorted((s for s in _local(lt) if batch in s["lookup"]), key=lambda s: s["lookup"][batch]["p50_ms"])
        if looks:
            best = looks[0]
            others = ", ".join(f"{_where(s)} {s['lookup'][batch]['p50_ms']:,.2f}" for s in looks[1:])
            out.append(
                f"**Online lookup by id, {batch} id{'s' * (batch != '1')} per call**: {_where(best)}, "
                f"p50 {best['lookup'][batch]['p50_ms']:,.2f} ms (against {others} ms; {lt['name']})."
            )

    good = [(s, x) for s in local for x in s["search"] if x["recall_at_10"] >= 0.95 and x["p50_ms"] is not None]
    if good:
        s, x = min(good, key=lambda p: p[1]["p50_ms"])
        exact = [(s2, x2) for s2 in local for x2 in s2["search"] if x2["setting"].startswith("exact")]
        ex = ", ".join(f"{_where(s2)} {x2['setting']} {x2['p50_ms']:,.1f} ms" for s2, x2 in exact)
        out.append(
            f"**Similarity search**: {_where(s)} with {x['setting']}, p50 {x['p50_ms']:,.2f} ms at recall@10 "
            f"{x['recall_at_10']:.3f} (the fastest setting with recall ≥ 0.95; exact search: {ex}); "
            f"the index took {_build_seconds(s, x):.1f} s to build for {t['rows']:,} rows."
        )

    pq = {x["setting"]: x["recall_at_10"] for s in local for x in s["search"] if x["setting"].startswith("IVF_PQ")}
    plain = sorted((k, v) for k, v in pq.items() if "refine" not in k)
    refined = [v for k, v in pq.items() if "refine" in k]
    if len(plain) > 1 and refined:
        out.append(
            "**Reading the IVF_PQ rows**: recall@10 "
            + " and ".join(f"{v:.3f} at {k.split(' ', 1)[1]}" for k, v in plain)
            + f", {max(refined):.3f} with refine=10 ({t['name']}): what bounds it is the PQ code (LanceDB's "
            "default, d/16 sub-vectors of 8 bits), not the partitions probed (the query plan shows each nprobes "
            "reaching the search); refine re-ranks 10 × k candidates by their exact distance."
        )

    dna = [d for d in results.get("dna", []) if d["place"] == "local"]
    if dna:
        best = min(dna, key=lambda d: d["bits_per_base"])
        others = ", ".join(f"{d['form']} in {d['store']} {d['bits_per_base']:.2f}" for d in dna if d is not best)
        out.append(
            f"**DNA at rest**: {best['form']} in {best['store']}, {best['bits_per_base']:.2f} bits per base "
            f"(against {others}); scanned at {best['scan_mbases_per_s']:,.0f} Mbases/s."
        )
    return out


def _added_runs(results: dict) -> list[str]:
    """A line per later run that added tables (``storage.py --add``): which tables, when, where measured."""
    out = []
    for a in results.get("added", []):
        where = "local disk and S3" if a["s3"] else "local disk only (no S3)"
        feast = "Feast included" if a["feast"] else "no Feast"
        m = a["machine"]
        out.append(
            f"Added by `benchmarks/storage.py --add` ({a['date']}, {a['seconds']:,.0f} s, {m['cpus']} CPUs, "
            f"{m['memory_gib']} GiB): {', '.join(a['tables'])}, measured on {where}, {feast}; {a['queries']} queries."
        )
    return ["", *out] if out else []


def write_document(results: dict, doc: Path) -> None:
    """Write ``doc`` (markdown) and its PNG figures (in ``img/`` beside it) from ``results``."""
    doc = Path(doc)
    figures = _plots(results, doc.parent / "img")
    m = results["machine"]
    p = results["parameters"]
    lines = [
        "# Where embeddings and sequences should live",
        "",
        f"Made by `benchmarks/storage.py` (`make bench-storage`) from `benchmarks/results/storage.json` "
        f"({results['date']}, {results['seconds']:,.0f} s). Do not edit: run the benchmark again.",
        *_added_runs(results),
        "",
        f"Machine: {m['cpus']} CPUs ({m['processor']}), {m['memory_gib']} GiB; pyarrow {m['pyarrow']}, "
        f"LanceDB {m['lancedb']}, Feast {m['feast']}, redis-server {m['redis_server']}. S3: {m['s3']}, so S3 rows "
        "show the cost of the S3 path on this machine, not AWS's throughput. Moto copies the whole object for every "
        "ranged read, so on S3 only single-row lookups are timed and LanceDB is searched exactly, without an index (10 "
        "queries): scattered reads there, and an index build, would measure moto's copying.",
        "",
        f"Tables: {', '.join(str(r) for r in p['rows'])} rows of `record_id`, `source`, `category` (0–99), "
        f"`score` and a float32 `vector` of d = {', '.join(str(d) for d in p['dims'])}: points around 256 centres "
        f"in a {p.get('latent_dim', 32)}-dimensional space mapped linearly to d dimensions, plus a little noise (real "
        "embeddings have a low intrinsic dimension); "
        f"{p['queries']} query vectors drawn the same way; top-{p['k']} by l2. Recall@10 is against exact search "
        "(brute force in float64 over all vectors); the filtered search keeps `category < 10` (a tenth of the rows). "
        "Lookups fetch whole rows by `record_id`, ids drawn at random. Append adds 1 % of the rows; update sets "
        "`score` on 1 000 random rows (Parquet: every file holding one is rewritten; LanceDB: `update`; Feast: "
        "the rows written to the online store again). LanceDB lookups use a BTREE index on `record_id` "
        "(its build time is not in the ingest).",
        "",
        "## Recommendations",
        "",
        *[f"- {r}" for r in recommendations(results)],
        "",
        "Amazon SageMaker Feature Store could not be run here; its documented limits (not measured):",
        "",
        *[f"- {x}" for x in SAGEMAKER_LIMITS],
        "",
    ]
    for t in results["tables"]:
        lines += [
            f"## {t['name']}: {t['rows']:,} rows, d = {t['dim']} ({_mb(t['arrow_bytes'])} MB in Arrow)",
            "",
            *([f"Left out: {'; '.join(t['left_out'])}.", ""] if t.get("left_out") else []),
            *store_rows(t),
            "",
            *search_rows(t),
            "",
        ]
    if results.get("dna"):
        lines += [
            "## DNA windows: text against 2-bit",
            "",
            "1 kb windows of M. tuberculosis H37Rv and M. leprae (kmer-examples); 2-bit: four bases per byte and a "
            "bit mask of the non-ACGT positions.",
            "",
            "| form | store | size MB | bits per base | ingest s | scan Mbases/s |",
            "|---|---|---|---|---|---|",
        ]
        for d in results["dna"]:
            lines.append(
                f"| {d['form']} | {d['store']} ({d['place']}) | {_mb(d['size_bytes'])} | {d['bits_per_base']:.2f} "
                f"| {d['ingest_seconds']:.3f} | {d['scan_mbases_per_s']:,.0f} |"
            )
        lines.append("")
    lines += ["## Figures", ""]
    for name, caption in figures:
        lines += [f"![{caption}](img/{name})", "", f"*{caption}.*", ""]
    doc.write_text("\n".join(lines))
