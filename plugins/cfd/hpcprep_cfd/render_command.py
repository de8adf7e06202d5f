"""``hpcprep cfd render``: a picture of what ``cfd.vtk`` wrote, drawn by ParaView offscreen.

The drawing runs in ParaView's own Python (``pvpython``, Debian ``paraview`` /
``python3-paraview``), which the project's virtual environment does not hold: this
command finds the files, writes a small job, and runs ``pv_render.py`` there (inside
``xvfb-run`` when there is no display).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import click

#: What a geometry record's files are called, after its base name (see ``vtk_sink``).
SAMPLES, SDF = "_samples.vtp", "_sdf.vti"
_DERIVED = ("_samples.vtp", "_sdf_points.vtp")


def vtk_folder(target: Path) -> Path:
    """The folder of VTK files for ``target``: a run directory (its ``cfd.vtk`` sink's
    path, from the manifest), a folder of VTK files, or a file in one."""
    if target.is_file():
        return target.parent
    manifest = target / "manifest.json"
    if manifest.exists():
        spec = json.loads(manifest.read_text()).get("spec", {})
        paths = [s.get("path") for s in spec.get("sinks", []) if s.get("stage") == "cfd.vtk"]
        if not paths:
            raise click.ClickException(f"{target}: this run has no cfd.vtk sink, so there is nothing to draw")
        folder = Path(paths[0])
        return folder if folder.is_absolute() else Path.cwd() / folder
    if target.is_dir():
        return target
    raise click.ClickException(f"{target}: no such run directory, folder or file")


def plan_job(target: Path, record: str | None, color: str | None) -> dict:
    """The drawing job for ``target`` (see ``pv_render``): OpenFOAM cells where there are
    ``.vtu`` files, else the geometry whose file name contains ``record`` (default: the
    first by name)."""
    folder = vtk_folder(target)
    if not folder.is_dir():
        raise click.ClickException(f"{folder}: the VTK folder is not there (has the run finished?)")
    chosen = target if target.is_file() else None
    cells = sorted(folder.glob("*.vtu"))
    if (chosen is not None and chosen.suffix == ".vtu") or (chosen is None and cells):
        files = [chosen] if chosen is not None else cells
        if record:
            files = [f for f in files if record in f.name]
        if not files:
            raise click.ClickException(f"{folder}: no .vtu file has {record!r} in its name")
        return {"mode": "cells", "files": [str(f) for f in files], "color": color}
    meshes = [f for f in sorted(folder.glob("*.vtp")) if not f.name.endswith(_DERIVED)]
    if chosen is not None and chosen.suffix == ".vtp":
        meshes = [chosen]
    if record:
        meshes = [f for f in meshes if record in f.name]
    if not meshes:
        what = f" with {record!r} in its name" if record else ""
        raise click.ClickException(f"{folder}: no surface mesh (.vtp){what} to draw")
    mesh = meshes[0]
    base = mesh.name[: -len(".vtp")]
    samples, sdf = folder / (base + SAMPLES), folder / (base + SDF)
    return {
        "mode": "geometry",
        "mesh": str(mesh),
        "samples": str(samples) if samples.exists() else None,
        "sdf": str(sdf) if sdf.exists() else None,
    }


#: Now and then ParaView cannot open the display it was given and aborts ("bad X server
#: connection"), although the X server is up and takes other connections: 2-5 in 100 runs here
#: with three drawing at once on 2 cores, on their own virtual displays or on one long-lived
#: server alike. A second try usually connects, so a picture is tried up to this many times.
_TRIES = 3
_NO_CONNECTION = "bad X server connection"


def pvpython_command() -> list[str]:
    """``pvpython`` offscreen. Debian's ParaView draws through X even offscreen, so without a
    display it runs inside a virtual one (``xvfb-run``)."""
    found = shutil.which("pvpython")
    if not found:
        raise click.ClickException("pvpython not found: install ParaView (Debian: apt-get install paraview)")
    command = [found, "--force-offscreen-rendering"]
    if os.environ.get("DISPLAY"):
        return command
    xvfb = shutil.which("xvfb-run")
    if not xvfb:
        raise click.ClickException(
            "no display to draw on: set DISPLAY, or install a virtual one (Debian: apt-get install xvfb)"
        )
    return [xvfb, "-a", "-s", "-screen 0 1920x1080x24", *command]


@click.command("render")
@click.argument("target", type=click.Path(exists=True, path_type=Path))
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False, path_type=Path), help="PNG to write")
@click.option("--record", default=None, help="draw the files whose name contains this (default: the first)")
@click.option("--color", default="p", show_default=True, help="cell field that colours OpenFOAM cells")
@click.option("--size", default="1200x800", show_default=True, help="image size, WIDTHxHEIGHT")
@click.option("--zoom", type=float, default=None, help="move the camera this many times closer (cells)")
def render(target: Path, out: Path, record: str | None, color: str, size: str, zoom: float | None):
    """Draw a run's VTK files with ParaView, offscreen: OpenFOAM cells coloured by a field, or
    a geometry with its surface samples and the SDF grid's middle slice with its zero contour."""
    try:
        width, height = (int(x) for x in size.lower().split("x"))
    except ValueError:
        raise click.BadParameter(f"{size!r} is not WIDTHxHEIGHT", param_hint="--size") from None
    job = plan_job(target, record, color)
    job.update(out=str(out.absolute()), size=[width, height], zoom=zoom)
    out.parent.mkdir(parents=True, exist_ok=True)
    script = Path(__file__).with_name("pv_render.py")
    with tempfile.TemporaryDirectory(prefix="hpcprep-render-") as tmp:
        job_file = Path(tmp) / "job.json"
        job_file.write_text(json.dumps(job))
        # ParaView's Python is the system's: keep the venv's packages out of its path
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
        env.setdefault("HOME", tmp)
        for _ in range(_TRIES):
            proc = subprocess.run(
                [*pvpython_command(), str(script), str(job_file)],
                capture_output=True,
                text=True,
                env=env,
                timeout=600,
            )
            if proc.returncode == 0 or _NO_CONNECTION not in proc.stdout + proc.stderr:
                break
    if proc.returncode != 0 or not out.exists():
        raise click.ClickException(f"ParaView could not draw {target}:\n{_what_went_wrong(proc.stdout + proc.stderr)}")
    what = ", ".join(Path(f).name for f in job.get("files", [])[:3]) or Path(job["mesh"]).name
    click.echo(f"wrote {out} ({job['mode']}: {what})")


def _what_went_wrong(output: str, lines: int = 15) -> str:
    """ParaView's error lines (``ERR|``, ``Error``, ``Traceback``), then the end of its output:
    on a crash the end is a stack trace, and the reason is printed before it."""
    text = output.strip().splitlines()
    errors = [line for line in text if "ERR|" in line or line.startswith(("Error", "Traceback"))][:5]
    return "\n".join(errors + [line for line in text[-lines:] if line not in errors])
