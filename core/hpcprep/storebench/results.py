"""The storage benchmark's results file, grown by later runs (``benchmarks/storage.py --add``)."""

from __future__ import annotations


def add_tables(results: dict, tables: list[dict], run: dict) -> dict:
    """``results`` with ``tables`` added, a table of the same name replaced, the others and the DNA rows kept.

    ``run`` describes the run that measured them (``date``, ``seconds``, ``s3``, ``feast``, ``queries``,
    ``machine``); it is listed under ``added`` with the tables' names, so the document says which figures came
    from which run and machine."""
    names = {t["name"] for t in tables}
    kept = [t for t in results["tables"] if t["name"] not in names]
    results["tables"] = sorted(kept + tables, key=lambda t: (t["rows"], t["dim"], t["name"]))
    results["parameters"]["rows"] = sorted({t["rows"] for t in results["tables"]})
    results["parameters"]["dims"] = sorted({t["dim"] for t in results["tables"]})
    results.setdefault("added", []).append(run | {"tables": sorted(names)})
    return results
