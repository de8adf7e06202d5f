"""``hpcprep cfd ...``: the plugin's command group (added through ``hpcprep_register_commands``).

NumPy and the geometry modules are imported inside the commands, so ``hpcprep --help`` stays fast.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from .render_command import render
from .stats_command import stats

#: Named resolutions: the factor each shape's tessellation is scaled by.
RESOLUTIONS = {"coarse": 0.5, "medium": 1.0, "fine": 2.0}
DEFAULT_SHAPES = ("sphere", "box", "torus", "naca0012", "ahmed")


def register(cli: click.Group) -> None:
    """Add the ``cfd`` group to ``cli``."""
    cli.add_command(cfd)


@click.group("cfd")
def cfd():
    """CFD geometry tools from hpcprep-cfd."""


cfd.add_command(stats)
cfd.add_command(render)


def _resolution(value: str) -> float:
    if value in RESOLUTIONS:
        return RESOLUTIONS[value]
    try:
        factor = float(value)
    except ValueError:
        factor = float("nan")
    if not factor > 0 or factor == float("inf"):
        raise click.BadParameter(f"{value!r} is not one of {', '.join(RESOLUTIONS)} or a positive number")
    return factor


def _plain(value):
    """Parameters as JSON values (tuples become lists, NumPy scalars Python numbers)."""
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if hasattr(value, "item"):
        return value.item()
    return value


@cfd.command("shapes")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--shapes",
    "names",
    default=",".join(DEFAULT_SHAPES),
    show_default=True,
    help="comma-separated shapes to write",
)
@click.option(
    "--resolution",
    default="medium",
    show_default=True,
    help="coarse, medium, fine, or a positive number scaling the tessellation (1 = medium)",
)
@click.option(
    "--slant",
    "slants",
    type=click.FloatRange(0, 90, max_open=True),
    multiple=True,
    help="Ahmed body rear slant angle in degrees; repeat for one body per angle  [default: 25]",
)
@click.option("--ascii", "ascii_", is_flag=True, help="write ASCII STL instead of binary")
def shapes(directory: Path, names: str, resolution: str, slants: tuple[float, ...], ascii_: bool):
    """Write procedural test shapes with known volumes as STL files, plus shapes.json, into DIRECTORY.

    Shapes: sphere (icosphere), box, torus, naca0012 (straight wing, closed trailing edge),
    ahmed (Ahmed-style body, one file per --slant angle: ahmed_25.stl, ...).
    """
    from . import shapes as geometry
    from .stlwrite import write_stl

    factor = _resolution(resolution)
    wanted = [n.strip() for n in names.split(",") if n.strip()]
    unknown = [n for n in wanted if n not in geometry.SHAPES]
    if not wanted or unknown:
        raise click.BadParameter(
            f"unknown shapes {unknown}; choose from {', '.join(geometry.SHAPES)}" if unknown else "no shapes given",
            param_hint="--shapes",
        )
    jobs = []  # (file stem, shape name, overrides)
    for name in dict.fromkeys(wanted):
        if name == "ahmed":
            jobs += [
                (f"ahmed_{angle:g}", name, {"slant_deg": float(angle)}) for angle in dict.fromkeys(slants or (25.0,))
            ]
        else:
            jobs.append((name, name, {}))

    directory.mkdir(parents=True, exist_ok=True)
    entries = []
    for stem, name, overrides in jobs:
        spec = geometry.SHAPES[name]
        try:
            params, vertices, faces = geometry.make(name, factor, **overrides)
        except ValueError as exc:
            raise click.ClickException(f"{stem}: {exc}") from exc
        path = write_stl(directory / f"{stem}.stl", vertices, faces, name=stem, binary=not ascii_)
        entries.append(
            {
                "file": path.name,
                "shape": name,
                "description": spec.description,
                "parameters": {k: _plain(v) for k, v in params.items()},
                "vertices": int(len(vertices)),
                "triangles": int(len(faces)),
                "bounds": [vertices.min(axis=0).tolist(), vertices.max(axis=0).tolist()],
                "volume": spec.volume(**params) if spec.volume else None,
                "area": spec.area(**params) if spec.area else None,
            }
        )
        click.echo(f"wrote {path} ({len(faces)} triangles)")
    manifest = {
        "resolution": resolution,
        "resolution_factor": factor,
        "format": "stl-ascii" if ascii_ else "stl-binary",
        "note": "volume and area are those of the smooth shape (null where there is no closed form); "
        "the tessellation approaches them as the resolution grows",
        "shapes": entries,
    }
    (directory / "shapes.json").write_text(json.dumps(manifest, indent=2) + "\n")
    click.echo(f"wrote {directory / 'shapes.json'}")
