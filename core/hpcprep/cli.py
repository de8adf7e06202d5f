"""The ``hpcprep`` command line."""

from __future__ import annotations

import json
import sys

import click

from .plugins import PluginRegistry


def _registry(ctx: click.Context) -> PluginRegistry:
    obj = ctx.find_root().obj
    if obj is None or "registry" not in obj:
        ctx.find_root().obj = {"registry": PluginRegistry()}
    return ctx.find_root().obj["registry"]


@click.group()
@click.version_option(package_name="hpcprep")
def cli():
    """Prepare scientific data for machine learning and simulation, on Ray."""


@cli.command()
@click.argument("spec", type=click.Path(dir_okay=False))
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="override a spec value, e.g. encoders.0.k=5")
@click.option("--overwrite", is_flag=True, help="replace the outputs of an earlier run")
@click.option("--resume", is_flag=True, help="continue an interrupted run, skipping committed inputs")
@click.option("--address", default=None, help="Ray cluster to join (default: the spec's, else a local Ray)")
@click.option("--quiet", is_flag=True, help="no progress lines")
@click.pass_context
def run(ctx, spec, overrides, overwrite, resume, address, quiet):
    """Validate SPEC and run it."""
    from .runner import RunError
    from .runner import run as do_run
    from .spec import SpecError

    try:
        result = do_run(
            spec,
            overrides=list(overrides),
            overwrite=overwrite,
            resume=resume,
            address=address,
            registry=_registry(ctx),
            progress=not quiet,
        )
    except SpecError as exc:
        click.echo(str(exc), err=True)
        sys.exit(2)
    except RunError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    c = result.counts
    click.echo(
        f"{result.manifest['status']}: inputs {c['inputs']} = outputs {c['outputs']} + errors {c['errors']}"
        f"{'' if c['balanced'] else '  (NOT balanced)'}"
    )
    click.echo(f"manifest: {result.output_dir / 'manifest.json'}")
    if c["errors"]:
        click.echo(f"errors table: {result.errors_path}")


@cli.command()
@click.argument("spec", type=click.Path(dir_okay=False))
@click.option("--format", "fmt", type=click.Choice(["text", "json", "mermaid"]), default="text")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="override a spec value")
@click.option("--address", default=None, help="plan for this Ray cluster (default: this machine)")
@click.pass_context
def plan(ctx, spec, fmt, overrides, address):
    """Show each stage, its plugin, parameters and placement, without running."""
    from .placement import ClusterInfo
    from .plan import build_plan, format_mermaid, format_text
    from .spec import SpecError, resolve

    registry = _registry(ctx)
    try:
        resolved = resolve(spec, registry, list(overrides))
    except SpecError as exc:
        click.echo(str(exc), err=True)
        sys.exit(2)
    address = address or resolved.run.address
    if address:
        import ray

        ray.init(address=address, log_to_driver=False)
        cluster = ClusterInfo.from_ray(address)
    else:
        cluster = ClusterInfo.local(resolved.run.num_cpus)
    try:
        data = build_plan(resolved, registry, cluster)
    except SpecError as exc:
        click.echo(str(exc), err=True)
        sys.exit(2)
    if fmt == "json":
        click.echo(json.dumps(data, indent=2))
    elif fmt == "mermaid":
        click.echo(format_mermaid(data))
    else:
        click.echo(format_text(data))


def describe_stage(entry) -> dict:
    cls = entry.cls
    params = []
    for name, f in cls.Params.model_fields.items():
        default = None if f.is_required() else f.get_default(call_default_factory=True)
        params.append(
            {
                "name": name,
                "type": getattr(f.annotation, "__name__", None) or str(f.annotation).replace("typing.", ""),
                "required": f.is_required(),
                "default": default,
                "doc": f.description or "",
            }
        )
    d = {
        "name": cls.name,
        "kind": cls.kind,
        "plugin": entry.plugin,
        "version": entry.version,
        "summary": cls.summary(),
        "parameters": params,
        "outputs": [{"name": c.name, "type": c.type, "doc": c.doc} for c in cls.outputs],
    }
    if cls.kind == "encoder":
        d.update(
            needs_setup=cls.needs_setup, variants=list(cls.variants), batch_size=cls.batch_size, fanout=cls.fanout
        )
    return d


@cli.command()
@click.argument("stage")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def describe(ctx, stage, as_json):
    """Print a stage's parameters (with defaults and docs) and its output columns."""
    registry = _registry(ctx)
    entries = registry.find(stage)
    if not entries:
        click.echo(f"error: {registry.explain_unknown(stage, None)}", err=True)
        sys.exit(2)
    described = [describe_stage(e) for e in entries]
    if as_json:
        click.echo(json.dumps(described if len(described) > 1 else described[0], indent=2, default=str))
        return
    for i, d in enumerate(described):
        if i:
            click.echo("")
        _print_description(d)


def _print_description(d: dict) -> None:
    click.echo(f"{d['name']} ({d['kind']}) from {d['plugin']} {d['version']}")
    click.echo(f"  {d['summary']}")
    click.echo("parameters:")
    for p in d["parameters"]:
        default = "required" if p["required"] else f"default {json.dumps(p['default'], default=str)}"
        click.echo(f"  {p['name']}: {p['type']} ({default})  {p['doc']}")
    if not d["parameters"]:
        click.echo("  (none)")
    if d["outputs"]:
        click.echo("outputs:")
        for c in d["outputs"]:
            click.echo(f"  {c['name']}: {c['type']}  {c['doc']}")
    if d["kind"] == "encoder":
        click.echo(
            f"runs: needs_setup={d['needs_setup']}, variants={','.join(d['variants'])}, "
            f"batch_size={d['batch_size']}, fanout={d['fanout']}"
        )


@cli.command()
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def plugins(ctx, as_json):
    """List plugins: version, status (broken ones with their error), hooks and stages."""
    registry = _registry(ctx)
    rows = [p.to_dict() for p in registry.plugins.values()]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for p in rows:
        status = "ok" if p["status"] == "ok" else f"BROKEN: {p['error']}"
        click.echo(f"{p['name']} {p['version']} ({p['distribution']}): {status}")
        if p["hooks"]:
            click.echo(f"  hooks:  {', '.join(p['hooks'])}")
        if p["stages"]:
            click.echo(f"  stages: {', '.join(p['stages'])}")


@cli.command()
@click.argument("uri")
@click.option("--table", "-t", required=True, help="LanceDB table name")
@click.option("--vector-file", type=click.Path(exists=True, dir_okay=False), help=".npy or text file with one vector")
@click.option("--id", "rid", help="use the vector of this record_id as the query")
@click.option("-k", default=10, show_default=True, help="number of neighbours")
@click.option("--vector-column", default=None, help="vector column (default: the table's only vector column)")
@click.option("--json", "as_json", is_flag=True)
def search(uri, table, vector_file, rid, k, vector_column, as_json):
    """Nearest records in a LanceDB table, with distances."""
    from .search import SearchError, nearest, read_query_vector

    if bool(vector_file) == bool(rid):
        click.echo("error: give exactly one of --vector-file or --id", err=True)
        sys.exit(2)
    try:
        query = read_query_vector(vector_file) if vector_file else None
        rows = nearest(uri, table, vector=query, record_id=rid, k=k, vector_column=vector_column)
    except SearchError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    if as_json:
        click.echo(json.dumps(rows, indent=2, default=str))
        return
    for r in rows:
        click.echo(f"{r['_distance']:.6g}\t{r.get('record_id')}\t{r.get('source')}")


@cli.command("new-plugin")
@click.argument("name")
@click.option("--dir", "dest", default=".", type=click.Path(file_okay=False), help="where to create hpcprep-NAME/")
def new_plugin(name, dest):
    """Scaffold an installable plugin that passes the test kit and runs as generated."""
    from .scaffold import ScaffoldError, create_plugin

    try:
        path = create_plugin(name, dest)
    except ScaffoldError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    click.echo(f"created {path}")
    click.echo(f"next: cd {path} && pip install -e . && hpcprep run example.toml")


def build_cli() -> tuple[click.Group, PluginRegistry]:
    """The CLI with plugin commands added; a plugin that fails here is reported, not fatal."""
    registry = PluginRegistry()
    for plugin, error in registry.register_commands(cli):
        click.echo(f"warning: plugin {plugin} could not add its commands: {error}", err=True)
    return cli, registry


def main() -> None:
    group, registry = build_cli()
    group(obj={"registry": registry})
