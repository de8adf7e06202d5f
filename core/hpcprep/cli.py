"""The ``hpcprep`` command line.

One module because it is the list ``hpcprep --help`` shows: each command's options, how
its errors become exit codes and how its output is printed. The work lives in the modules
each command imports when it runs (``runner``, ``plan``, ``search``, ``local_ray``,
``slurm``, ``scaffold``…), which also keeps ``hpcprep --help`` quick."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from .plugins import PluginRegistry
from .stages import STAGE_KINDS


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
@click.option(
    "--set", "overrides", multiple=True, metavar="KEY=VALUE", help="override a spec value, e.g. encoders.0.k=5"
)
@click.option("--overwrite", is_flag=True, help="replace the outputs of an earlier run")
@click.option("--resume", is_flag=True, help="continue an interrupted run, skipping committed inputs")
@click.option("--address", default=None, help="Ray cluster to join (default: the spec's, else a local Ray)")
@click.option(
    "--keep-ray",
    type=float,
    default=None,
    metavar="SECONDS",
    help="keep the local Ray this long after the run; its keeper runs the next commands' runs, in "
    "workers that stay warm (default: $HPCPREP_KEEP_RAY, else 300; 0 stops it with the run)",
)
@click.option("--quiet", is_flag=True, help="no progress lines (errors and the summary only)")
@click.option("--verbose", is_flag=True, help="Ray's own log lines too (always in RUN_DIR/_logs/ray.log)")
@click.pass_context
def run(ctx, spec, overrides, overwrite, resume, address, keep_ray, quiet, verbose):
    """Validate SPEC and run it."""
    from .local_ray import keep_seconds

    try:
        keep = keep_seconds(keep_ray)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="HPCPREP_KEEP_RAY") from None
    params = dict(
        spec=spec, overrides=list(overrides), overwrite=overwrite, resume=resume, quiet=quiet, verbose=verbose
    )
    if not address and keep > 0:
        from .hosted_runs import delegate

        code = delegate(params, keep, lambda msg: quiet or click.echo(f"[hpcprep] {msg}", err=True))
        if code is not None:
            sys.exit(code)
    FAST_EXIT.append(True)  # see _exit_now
    sys.exit(run_and_report(**params, address=address, keep=keep, registry=_registry(ctx), disconnect=False))


def run_and_report(
    spec, overrides, overwrite, resume, quiet, verbose, registry, address=None, keep=0.0, disconnect=True
) -> int:
    """``hpcprep run``'s work, in this process or in the keeper of a local Ray (``hosted_runs``):
    run the spec, print the outcome; the exit code. ``disconnect=False``: see ``runner._run``."""
    from .runner import RunError, _run
    from .spec import SpecError

    try:
        result = _run(
            spec,
            overrides=overrides,
            overwrite=overwrite,
            resume=resume,
            address=address,
            registry=registry,
            progress=not quiet,
            keep_ray=keep,
            verbose=verbose,
            disconnect=disconnect,
        )
    except SpecError as exc:
        click.echo(str(exc), err=True)
        return 2
    except RunError as exc:
        click.echo(f"error: {exc}", err=True)
        return 1
    c = result.counts
    click.echo(
        f"{result.manifest['status']}: inputs {c['inputs']} = outputs {c['outputs']} + errors {c['errors']}"
        f"{'' if c['balanced'] else '  (NOT balanced)'}"
    )
    click.echo(f"manifest: {result.output_dir / 'manifest.json'}")
    if c["errors"]:
        click.echo(f"errors table: {result.errors_path}")
    return 0


@cli.command()
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path), help="default: RUN_DIR/report.html")
@click.option("--open", "open_", is_flag=True, help="open it in the web browser")
@click.pass_context
def report(ctx, run_dir, out, open_):
    """One self-contained HTML page about a run: books, time, placement, errors, cluster,
    spec and versions, and the plugins' previews of its outputs."""
    from .report import build_report

    try:
        page = build_report(run_dir, _registry(ctx))
    except FileNotFoundError as exc:
        raise click.ClickException(str(exc)) from None
    out = out or run_dir / "report.html"
    out.write_text(page)
    if out.absolute().parent == run_dir.absolute():
        from .run_dir import record_written

        record_written(run_dir, out.name)  # hpcprep's own file: a later --overwrite replaces it
    click.echo(f"wrote {out} ({len(page) / 1e3:.0f} kB)")
    if open_:
        import webbrowser

        webbrowser.open(out.absolute().as_uri())


@cli.command()
@click.argument("spec", type=click.Path(dir_okay=False))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "mermaid", "dot", "svg", "png"]),
    default="text",
    help="svg and png are drawn by Graphviz",
)
@click.option(
    "--out",
    "out_file",
    type=click.Path(dir_okay=False),
    help="write the plan to this file (svg, png: required on a terminal)",
)
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="override a spec value")
@click.option("--address", default=None, help="plan for this Ray cluster (default: this machine)")
@click.pass_context
def plan(ctx, spec, fmt, out_file, overrides, address):
    """Show each stage, its plugin, parameters and placement, without running."""
    from .placement import ClusterInfo
    from .plan import build_plan, format_dot, format_mermaid, format_text, render
    from .spec import SpecError, resolve

    if fmt in ("svg", "png") and out_file is None and sys.stdout.isatty():
        raise click.UsageError(f"--format {fmt} writes an image: give --out FILE (or redirect the output)")

    registry = _registry(ctx)
    try:
        resolved = resolve(spec, registry, list(overrides))
    except SpecError as exc:
        click.echo(str(exc), err=True)
        sys.exit(2)
    address = address or resolved.run.address
    if address:
        from .ray_connection import start_ray

        start_ray(address, None)
        cluster = ClusterInfo.from_ray(address)
    else:
        cluster = ClusterInfo.local(resolved.run.num_cpus)
    try:
        data = build_plan(resolved, registry, cluster)
    except SpecError as exc:
        click.echo(str(exc), err=True)
        sys.exit(2)
    if fmt in ("svg", "png"):
        try:
            body = render(data, fmt)
        except RuntimeError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(1)
    else:
        text = {"json": lambda d: json.dumps(d, indent=2), "mermaid": format_mermaid, "dot": format_dot}.get(
            fmt, format_text
        )(data)
        body = (text if text.endswith("\n") else text + "\n").encode()
    if out_file:
        Path(out_file).write_bytes(body)
        click.echo(f"wrote {out_file}", err=True)
    else:
        sys.stdout.buffer.write(body)
        sys.stdout.flush()


@cli.command()
@click.argument("spec", type=click.Path(dir_okay=False))
@click.option("--nodes", type=click.IntRange(min=1), required=True, help="Slurm nodes, one Ray node on each")
@click.option("--cpus-per-node", type=click.IntRange(min=1), default=None, help="default: whole nodes (--exclusive)")
@click.option("--gpus-per-node", type=click.IntRange(min=0), default=0, show_default=True)
@click.option("--partition", default=None)
@click.option("--time", "time_limit", default=None, metavar="HH:MM:SS", help="the job's time limit")
@click.option("--account", default=None)
@click.option("--setup", multiple=True, metavar="LINE", help="shell line the job runs first, e.g. 'module load python'")
@click.option("--output-script", type=click.Path(dir_okay=False), default=None, help="write the script here")
@click.option("--submit", is_flag=True, help="submit the script with sbatch and print the job id")
@click.option("--wait", is_flag=True, help="submit, follow the run's commit groups, exit 0 only if it finished")
@click.option("--resume", is_flag=True, help="continue an interrupted run (the script also does when it finds one)")
@click.option("--overwrite", is_flag=True, help="replace the outputs of an earlier run")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="override a spec value")
@click.pass_context
def slurm(ctx, spec, nodes, cpus_per_node, gpus_per_node, time_limit, output_script, submit, wait, overrides, **opts):
    """Write an sbatch script that runs SPEC on a Slurm allocation, one Ray node per Slurm node.

    Without --submit the script goes to stdout (or --output-script) to be read and edited first.
    """
    import os
    from pathlib import Path

    from .placement import ClusterInfo
    from .plan import build_plan
    from .slurm import SlurmError, SlurmJob, read_manifest, render_script, wait_for_job
    from .slurm import submit as sbatch
    from .spec import SpecError, resolve

    if opts["resume"] and opts["overwrite"]:
        click.echo("error: --resume and --overwrite exclude each other", err=True)
        sys.exit(2)
    registry = _registry(ctx)
    cpus = float(cpus_per_node or (os.cpu_count() or 1))  # whole nodes: assume they are like this one
    cluster = ClusterInfo(cpus=nodes * cpus, gpus=float(nodes * gpus_per_node), nodes=nodes, resources={})
    try:  # the checks `hpcprep plan` makes, for the allocation asked for
        resolved = resolve(spec, registry, list(overrides))
        build_plan(resolved, registry, cluster)
    except SpecError as exc:
        click.echo(str(exc), err=True)
        sys.exit(2)
    job = SlurmJob(
        spec=Path(spec).absolute(),
        run_dir=resolved.output_dir.absolute(),
        workdir=Path.cwd(),
        nodes=nodes,
        name=resolved.run.name or Path(spec).stem,
        cpus_per_node=cpus_per_node,
        gpus_per_node=gpus_per_node,
        time=time_limit,
        setup=list(opts.pop("setup")),
        overrides=list(overrides),
        **opts,
    )
    try:
        script = render_script(job)
        if output_script:
            Path(output_script).write_text(script)
            click.echo(f"wrote {output_script}", err=True)
        if not (submit or wait):
            if not output_script:
                click.echo(script, nl=False)
            job.log_dir.mkdir(parents=True, exist_ok=True)  # Slurm does not create it
            click.echo(f"the job's log goes to {job.log_dir}/; submit with: sbatch SCRIPT", err=True)
            return
        before = read_manifest(job.run_dir)
        job_id = sbatch(script, job)
        click.echo(job_id)
        click.echo(f"log: {job.log_dir}/job-{job_id}.log", err=True)
        if wait:
            sys.exit(wait_for_job(job_id, job.run_dir, before, echo=lambda m: click.echo(m, err=True)))
    except SlurmError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)


def type_text(annotation) -> str:
    """A parameter's type as ``describe`` prints it: a choice lists its values."""
    from types import NoneType, UnionType
    from typing import Annotated, Literal, Union, get_args, get_origin

    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Annotated:
        return type_text(args[0])
    if origin is Literal:
        return "one of " + ", ".join(json.dumps(v) for v in args)
    if origin in (Union, UnionType):
        return " | ".join(type_text(a) for a in args)
    if annotation is NoneType:
        return "None"
    if origin is not None and args:
        return f"{getattr(origin, '__name__', origin)}[{', '.join(type_text(a) for a in args)}]"
    return getattr(annotation, "__name__", None) or str(annotation).replace("typing.", "")


def describe_stage(entry) -> dict:
    cls = entry.cls
    params = []
    for name, f in cls.Params.model_fields.items():
        default = None if f.is_required() else f.get_default(call_default_factory=True)
        params.append(
            {
                "name": name,
                "type": type_text(f.annotation),
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
        d.update(needs_setup=cls.needs_setup, variants=list(cls.variants), batch_size=cls.batch_size, fanout=cls.fanout)
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
    """List plugins: version, status (broken and disabled ones with why), hooks and stages."""
    registry = _registry(ctx)
    rows = [p.to_dict() for p in registry.plugins.values()]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    # One line per stage kind: a reader and a sink may share a name (the core's "parquet" is both).
    kinds: dict[str, dict[str, list[str]]] = {}
    for entry in registry.stages.values():
        kinds.setdefault(entry.plugin, {}).setdefault(entry.kind, []).append(entry.name)
    for p in rows:
        status = {"ok": "ok", "disabled": f"disabled ({p['error']})"}.get(p["status"], f"BROKEN: {p['error']}")
        click.echo(f"{p['name']} {p['version']} ({p['distribution']}): {status}")
        if p["hooks"]:
            click.echo(f"  hooks:    {', '.join(p['hooks'])}")
        for kind in STAGE_KINDS:
            names = kinds.get(p["name"], {}).get(kind)
            if names:
                click.echo(f"  {kind + 's:':<9} {', '.join(names)}")


@cli.command()
@click.argument("uri")
@click.option("--table", "-t", required=True, help="LanceDB table name")
@click.option("--vector-file", type=click.Path(exists=True, dir_okay=False), help=".npy or text file with one vector")
@click.option("--id", "rid", help="use this record's vector as the query: its record_id, or NAME:OFFSET / NAME")
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
    shown = ["record_id", "source"] + [c for c in ("name", "offset") if rows and c in rows[0]]
    click.echo("\t".join(["distance", *shown]))
    for r in rows:
        click.echo("\t".join([f"{r['_distance']:.6g}", *(str(r.get(c)) for c in shown)]))


@cli.group("local-ray")
def local_ray_group():
    """The local Ray that `hpcprep run` keeps between commands."""


@local_ray_group.command("status")
@click.option("--json", "as_json", is_flag=True)
def local_ray_status(as_json):
    """Whether a local Ray is kept, for how long, and whether a run is using it."""
    from . import local_ray

    info = local_ray.status()
    if as_json:
        click.echo(json.dumps(info, indent=2))
    elif info is None:
        click.echo("no local Ray is kept")
    else:
        idle = "in use" if info["in_use"] else f"idle {info['idle_seconds']:g} s"
        runs = "runs the next commands' runs" if info["runs_commands"] else "joined by the next commands"
        click.echo(
            f"local Ray at {info['address']} ({info['cpus']} CPUs), kept by process {info['pid']}; {idle}; {runs}"
        )


@local_ray_group.command("stop")
def local_ray_stop():
    """Stop the kept local Ray now (a run using it fails, and can be resumed)."""
    from . import local_ray

    pid = local_ray.stop()
    click.echo("no local Ray is kept" if pid is None else f"stopped the local Ray kept by process {pid}")


@cli.command("new-plugin")
@click.argument("name")
@click.option("--dir", "dest", default=".", type=click.Path(file_okay=False), help="where to create hpcprep-NAME/")
@click.option(
    "--kind",
    type=click.Choice(["encoder", "reader", "sink"]),
    default="encoder",
    show_default=True,
    help="the kind of stage the plugin starts with",
)
def new_plugin(name, dest, kind):
    """Scaffold an installable plugin that passes the test kit and runs as generated."""
    from .scaffold import ScaffoldError, create_plugin

    try:
        path = create_plugin(name, dest, kind)
    except ScaffoldError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    click.echo(f"created {path}")
    click.echo(f"next: cd {path} && pip install -e . && hpcprep run example.toml")


@cli.command("cluster-template")
@click.argument("kind", type=click.Choice(["pcluster", "ray-aws"]))
@click.option("--region", required=True, help="AWS region, e.g. us-east-1")
@click.option("--name", default="hpcprep", show_default=True, help="cluster name (Ray cluster_name; pcluster tag)")
@click.option("--head-instance-type", default="m6i.xlarge", show_default=True)
@click.option("--cpu-instance-type", default="c6i.4xlarge", show_default=True)
@click.option("--max-cpu-nodes", default=4, show_default=True, type=int)
@click.option("--gpu-instance-type", default=None, help="add a GPU queue / node type with this instance type")
@click.option("--max-gpu-nodes", default=None, type=int, help="[default: 1 with --gpu-instance-type]")
@click.option("--subnet-id", default=None, help="subnet for every node (required for pcluster)")
@click.option("--key-name", default=None, help="EC2 key pair for SSH")
@click.option("--shared-dir", default="/fsx", show_default=True, help="where FSx is mounted; put run.output here")
@click.option("--fsx-size-gib", default=None, type=int, help="new FSx for Lustre (pcluster) [default: 1200]")
@click.option("--fsx-id", default=None, help="existing FSx for Lustre file system to mount instead")
@click.option("--package", "packages", multiple=True, metavar="REQ", help="pip requirement for every node (repeat)")
@click.option("--find-links", default=None, help="wheels for pip: directory, URL, or s3:// prefix (pcluster)")
@click.option("--os", "os_name", default="alinux2023", show_default=True, help="pcluster: node OS")
@click.option("--install-script-url", default=None, help="pcluster: s3:// or https:// URL of install-hpcprep.sh")
@click.option("--venv-dir", default=None, help="pcluster: venv for the packages [default: SHARED_DIR/hpcprep/venv]")
@click.option("--script-out", default=None, type=click.Path(dir_okay=False), help="pcluster: write the script here")
@click.option("--image-id", default=None, help="ray-aws: AMI for every node (Python >= 3.11, e.g. Ubuntu 24.04)")
@click.option("--ssh-user", default="ubuntu", show_default=True, help="ray-aws: login user of the AMI")
@click.option("--ssh-private-key", default=None, help="ray-aws: private key of --key-name")
@click.option("--fsx-mount-name", default=None, help="ray-aws: mount name of --fsx-id")
@click.option("--ray-token-file", default="~/.ray/auth_token", show_default=True, help="ray-aws: Ray auth token")
@click.option("--out", default=None, type=click.Path(dir_okay=False), help="write the YAML here (default: stdout)")
def cluster_template(kind, out, script_out, **options):
    """Write an AWS ParallelCluster or Ray cluster-launcher configuration that runs hpcprep.

    Every node gets the same pinned packages: by default hpcprep, its installed plugins and
    Ray at the versions installed here. For pcluster the node install script is written to
    --script-out (default: install-hpcprep.sh beside --out); upload it to --install-script-url.
    """
    from pathlib import Path

    from .cluster_templates import ClusterOptions, ClusterTemplateError, build, install_script, render

    options["os"] = options.pop("os_name")
    options["packages"] = list(options["packages"])
    opts = ClusterOptions(**options)
    try:
        config = build(kind, opts)
    except ClusterTemplateError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    config_file = out or "CONFIG.yaml"
    script_path = script_out or (str(Path(out).with_name("install-hpcprep.sh")) if out else None)
    if kind == "pcluster":
        nxt = (
            f"aws s3 cp {script_path or 'install-hpcprep.sh'} {opts.install_script_url}\n"
            f"pcluster create-cluster --cluster-name {opts.name} --cluster-configuration {config_file}"
        )
    else:
        nxt = f"ray get-auth-token --generate   (once: the token every node gets)\nray up {config_file}"
    text = render(config, f"written by: hpcprep cluster-template {kind} (hpcprep {_version()})\nnext:\n{nxt}")
    if out is None:
        click.echo(text, nl=False)
    else:
        Path(out).write_text(text)
        click.echo(f"wrote {out}", err=True)
    if kind == "pcluster" and script_path:
        Path(script_path).write_text(install_script())
        Path(script_path).chmod(0o755)
        click.echo(f"wrote {script_path}; upload it: aws s3 cp {script_path} {opts.install_script_url}", err=True)
    elif kind == "pcluster":
        click.echo("note: --script-out FILE (or --out) writes install-hpcprep.sh, which the nodes run", err=True)


def _version() -> str:
    from importlib.metadata import version

    return version("hpcprep")


def build_cli() -> tuple[click.Group, PluginRegistry]:
    """The CLI with plugin commands added; a plugin that fails here is reported, not fatal."""
    registry = PluginRegistry()
    for plugin, error in registry.register_commands(cli):
        click.echo(f"warning: plugin {plugin} could not add its commands: {error}", err=True)
    return cli, registry


@cli.group()
def bench():
    """Measure where a run's output should live."""


@bench.command("storage")
@click.argument("source", type=click.Path(exists=True, path_type=Path))
@click.option("--vector", default=None, help="vector column (default: the first fixed-size float vector column)")
@click.option(
    "--workdir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="an empty or new folder for the local stores (default: a temporary folder, removed afterwards)",
)
@click.option(
    "--s3",
    "s3_uri",
    default=None,
    metavar="s3://BUCKET/PREFIX",
    help="also on S3, under this empty prefix, where the stores stay afterwards (endpoint, keys: AWS_*)",
)
@click.option("--redis", default=None, metavar="HOST:PORT", help="also a Feast feature view online in this Redis")
@click.option("--queries", type=click.IntRange(min=1), default=50, show_default=True, help="search queries")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None, help="results as JSON here")
def bench_storage(source, vector, workdir, s3_uri, redis, queries, out):
    """Ingest, size, scans, lookups by id, vector search (recall@10 against exact) of the table SOURCE (a
    Parquet file or folder, or a spec whose parquet sink wrote one) in Parquet, LanceDB and Feast."""
    import shutil
    import tempfile

    from .storebench.document import search_rows, store_rows
    from .storebench.run import bench_source

    work = workdir or Path(tempfile.mkdtemp(prefix="hpcprep-bench-"))
    try:
        results = bench_source(
            source,
            work,
            vector=vector,
            s3_uri=s3_uri,
            redis=redis,
            queries=queries,
            log=lambda m: click.echo(m, err=True),
        )
    except (ValueError, FileNotFoundError, OSError) as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        if workdir is None:
            shutil.rmtree(work, ignore_errors=True)
    table = results["tables"][0]
    click.echo("\n".join([*store_rows(table), "", *search_rows(table)]))
    if out:
        out.write_text(json.dumps(results, indent=1) + "\n")
        click.echo(f"results: {out}", err=True)


def main() -> None:
    if sys.argv[1:2] == ["run"]:
        # ``run`` needs no plugin commands, and loads the plugins only if it runs the spec
        # in this process (see ``hosted_runs``)
        group, obj = cli, {}
    else:
        group, registry = build_cli()
        obj = {"registry": registry}
    try:
        group(obj=obj)
    except SystemExit as exc:
        code = exc.code
    else:
        code = 0
    if FAST_EXIT:
        _exit_now(code)
    sys.exit(code)


#: Set by ``hpcprep run`` once the run has ended: nothing of it is left open.
FAST_EXIT = []


def _exit_now(code) -> None:
    """End a command that imported Ray without Python's own teardown: unloading Ray's
    modules and objects takes about half a second on 2 cores and does nothing a finished
    command needs (Ray was shut down by the run, its files are closed; exit handlers run
    and the streams are flushed here)."""
    import atexit
    import logging
    import os

    if code is None:
        code = 0
    elif not isinstance(code, int):
        print(code, file=sys.stderr)
        code = 1
    atexit._run_exitfuncs()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
