"""Draw what ``cfd.vtk`` wrote, with ParaView; run by ``hpcprep cfd render`` under ``pvpython``.

This file is a script for ParaView's own Python (``pvpython --force-offscreen-rendering
pv_render.py JOB.json``), which has ``paraview.simple`` but not hpcprep: it imports
nothing of the project. The job says what to draw:

- ``{"mode": "cells", "files": [.vtu ...], "color": "p"}``: OpenFOAM cells coloured by a
  cell field (blue to red over its range, with a colour bar), seen along -z, as a 2-D
  case is laid out;
- ``{"mode": "geometry", "mesh": .vtp, "samples": .vtp or null, "sdf": .vti or null}``:
  the surface (half transparent), its sampled points, and the SDF grid's slice through
  the middle in z coloured by distance (blue inside, red outside) with its zero contour,
  seen from above at an angle;

and ``"out"`` (a .png) and ``"size"`` ([width, height]).
"""

import json
import sys


def _view(size):
    from paraview import simple

    view = simple.CreateView("RenderView")
    view.ViewSize = size
    view.OrientationAxesVisibility = 0
    if hasattr(view, "UseColorPaletteForBackground"):
        view.UseColorPaletteForBackground = 0
    view.Background = [1.0, 1.0, 1.0]
    return view


def _colour(display, view, association, name, centred=False):
    from paraview import simple

    simple.ColorBy(display, (association, name))
    display.RescaleTransferFunctionToDataRange(True, False)
    lut = simple.GetColorTransferFunction(name)
    lut.ApplyPreset("Cool to Warm", True)
    if centred:  # a signed distance: white at zero
        lo, hi = lut.RGBPoints[0], lut.RGBPoints[-4]
        m = max(abs(lo), abs(hi)) or 1.0
        lut.RescaleTransferFunction(-m, m)
    display.SetScalarBarVisibility(view, True)
    bar = simple.GetScalarBar(lut, view)
    bar.TitleColor = bar.LabelColor = [0.1, 0.1, 0.1]


def cells(job, view):
    from paraview import simple

    # one reader per file: a reader given several files takes them as time steps
    readers = [simple.XMLUnstructuredGridReader(FileName=[f]) for f in job["files"]]
    merged = simple.AppendDatasets(Input=readers) if len(readers) > 1 else readers[0]
    display = simple.Show(merged, view)
    if job.get("color"):
        _colour(display, view, "CELLS", job["color"])
    # ParaView places the camera at the first render: place ours after it
    simple.Render(view)
    view.CameraParallelProjection = 1  # a 2-D case seen flat; zoom by the visible height
    view.ResetActiveCameraToNegativeZ()
    view.ResetCamera()
    if job.get("zoom"):
        view.CameraParallelScale = view.CameraParallelScale / job["zoom"]


def geometry(job, view):
    from paraview import simple

    mesh = simple.XMLPolyDataReader(FileName=[job["mesh"]])
    shown = simple.Show(mesh, view)
    shown.ColorArrayName = ["POINTS", ""]
    shown.DiffuseColor = shown.AmbientColor = [0.75, 0.75, 0.8]
    shown.Opacity = 0.45
    if job.get("samples"):
        samples = simple.XMLPolyDataReader(FileName=[job["samples"]])
        points = simple.Show(samples, view)
        points.ColorArrayName = ["POINTS", ""]
        points.SetRepresentationType("Points")
        points.PointSize = 2.0
        points.DiffuseColor = points.AmbientColor = [0.05, 0.25, 0.6]
    if job.get("sdf"):
        grid = simple.XMLImageDataReader(FileName=[job["sdf"]])
        grid.UpdatePipeline()
        lo, hi = grid.GetDataInformation().GetBounds()[4:6]
        x0, x1, y0, y1 = grid.GetDataInformation().GetBounds()[:4]
        cut = simple.Slice(Input=grid)
        cut.SliceType = "Plane"
        cut.SliceType.Origin = [(x0 + x1) / 2, (y0 + y1) / 2, (lo + hi) / 2]
        cut.SliceType.Normal = [0.0, 0.0, 1.0]
        plane = simple.Show(cut, view)
        _colour(plane, view, "POINTS", "sdf", centred=True)
        zero = simple.Contour(Input=cut, ContourBy=["POINTS", "sdf"], Isosurfaces=[0.0])
        line = simple.Show(zero, view)
        line.ColorArrayName = ["POINTS", ""]
        line.DiffuseColor = line.AmbientColor = [0.0, 0.0, 0.0]
        line.LineWidth = 3.0
    simple.Render(view)  # ParaView places the camera at the first render: place ours after it
    view.ResetActiveCameraToNegativeZ()
    view.ResetCamera()
    camera = view.GetActiveCamera()
    camera.Elevation(35)
    camera.Azimuth(30)
    view.ResetCamera()


def main(argv):
    from paraview import simple

    with open(argv[1]) as f:
        job = json.load(f)
    view = _view(job["size"])
    {"cells": cells, "geometry": geometry}[job["mode"]](job, view)
    simple.Render(view)
    simple.SaveScreenshot(job["out"], view, ImageResolution=job["size"])
    print("RENDERED " + job["out"])


if __name__ == "__main__":
    main(sys.argv)
