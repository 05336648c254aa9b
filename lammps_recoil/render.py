"""Trajectory pictures with OVITO: the dump of a recoil run, recoil forces as arrows.

The deck's dump (``inputs/in.filament``) writes the per-atom recoil force as three scalar
columns ``d2_frec[1] d2_frec[2] d2_frec[3]`` (a LAMMPS ``fix property/atom`` array). OVITO
does not map such columns to a vector by itself: imported with its defaults they arrive
as three unrelated scalar properties. :func:`ovito_columns` names every column of a dump
for OVITO's ``import_file(..., columns=...)``: LAMMPS's standard columns to OVITO's
standard properties, ``d2_frec[i]`` to the components of one 3-vector property
``"Recoil Force"`` (eV/Angstrom), any other ``name[i]`` to component i of a property
``name``. :func:`load` returns the OVITO pipeline with that mapping, and :func:`render`
draws one frame (atoms coloured by role, recoil forces as arrows, the time as a label)
with OVITO's software ray tracer (Tachyon), which needs no screen; OVITO's Python module
itself needs a Vulkan loader on the machine (Debian: ``libvulkan1 mesa-vulkan-drivers``).

OVITO is an optional extra (``pip install ovito``, or ``pip install -e ".[ovito]"`` in
the repository).
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass

import numpy as np

#: LAMMPS dump columns -> OVITO standard properties.
STANDARD = {"id": "Particle Identifier", "type": "Particle Type", "mass": "Mass",
            "x": "Position.X", "y": "Position.Y", "z": "Position.Z",
            "xu": "Position.X", "yu": "Position.Y", "zu": "Position.Z",
            "vx": "Velocity.X", "vy": "Velocity.Y", "vz": "Velocity.Z",
            "fx": "Force.X", "fy": "Force.Y", "fz": "Force.Z"}
#: Per-atom arrays the deck defines (``fix property/atom d2_NAME 3``) -> OVITO property.
PER_ATOM = {"d2_frec": "Recoil Force", "d2_jcur": "Current"}
#: The property drawn as arrows.
RECOIL = "Recoil Force"
#: Colours (RGB, 0..1) of the atom types of the data-file contract (docs/geometry.md):
#: 1 filament, 2 mobile electrode, 3 and 4 frozen electrode slabs (two greys, for the
#: legend); and of the arrows.
TYPE_COLORS = {1: (0.85, 0.50, 0.25), 2: (0.72, 0.72, 0.76), 3: (0.40, 0.40, 0.46),
               4: (0.28, 0.28, 0.34)}
TYPE_NAMES = {1: "filament", 2: "electrode", 3: "frozen (left)", 4: "frozen (right)"}
ARROW_COLOR = (0.0, 0.80, 0.0)
#: Radius of the atom spheres (Angstrom): small enough that arrows of ARROW_LENGTH show.
ATOM_RADIUS = 0.55
#: Length (Angstrom) of the arrow of the largest recoil force of the frame.
ARROW_LENGTH = 3.0

_INDEXED = re.compile(r"^(.+)\[(\d+)\]$")


@dataclass(frozen=True)
class Picture:
    """One rendered frame: the image file, the frame's index, step and time (ps), and the
    largest recoil force (eV/Angstrom) that sets the arrows' scale (0: no arrows; None: the
    dump has no recoil-force columns)."""
    path: str
    frame: int
    step: int
    time: float
    max_force: float | None


def dump_columns(path: str) -> list:
    """Column names of a LAMMPS text dump (its first ``ITEM: ATOMS`` line)."""
    with open(path) as fh:
        for line in fh:
            if line.startswith("ITEM: ATOMS"):
                return line.split()[2:]
    raise ValueError(f"{path} is not a LAMMPS text dump: no 'ITEM: ATOMS' line")


def ovito_columns(columns) -> list:
    """OVITO property names for LAMMPS dump ``columns`` (see the module docstring)."""
    names = []
    for col in columns:
        match = _INDEXED.match(col)
        if col in STANDARD:
            names.append(STANDARD[col])
        elif match:
            base, index = match.groups()
            names.append(f"{PER_ATOM.get(base, base)}.{index}")
        else:
            names.append(col)
    return names


def _ovito():
    try:
        import ovito.io
        import ovito.vis
    except ModuleNotFoundError as err:
        raise ModuleNotFoundError(f"rendering needs OVITO's Python module ({err}): pip "
                                  "install ovito; on Debian also apt-get "
                                  "install libvulkan1 mesa-vulkan-drivers",
                                  name="ovito") from None
    return ovito.io, ovito.vis


def load(path: str):
    """OVITO pipeline of a dump with :func:`ovito_columns`; ``"Recoil Force"`` (N x 3,
    eV/Angstrom) is a vector property of every frame."""
    io, _ = _ovito()
    if not os.path.isfile(path):
        raise ValueError(f"no such dump file: {path}")
    try:
        return io.import_file(path, columns=ovito_columns(dump_columns(path)))
    except RuntimeError as err:
        raise ValueError(unreadable(path, err)) from None


def unreadable(path: str, err: Exception) -> str:
    """The message for a dump OVITO cannot parse. (A dump cut short by a killed run
    renders: OVITO drops its incomplete last frame; one cut within its first frame does
    not.)"""
    first = " ".join(str(err).split()).rstrip(".")
    return (f"OVITO cannot read {path}: {first}; a dump cut short within its first frame "
            "(a run killed before its first complete frame) has nothing to draw")


def render(path: str, output: str | None = None, frame: int = -1, size=(480, 640),
           arrow_length: float = ARROW_LENGTH, label: str = "") -> Picture:
    """Draw ``frame`` of the dump ``path`` (negative: from the end) to the PNG ``output``
    (default: the dump's name with ``.frame<index>.png``, the index counted from 0).

    Atoms are coloured by role (:data:`TYPE_COLORS`), seen along -y (z up, the current's
    axis); the recoil forces are arrows from the atoms' centres, the largest
    ``arrow_length`` Angstrom long; the label is ``label`` and the frame's time.
    """
    _, vis = _ovito()
    from PySide6.QtCore import Qt
    pipeline = load(path)
    n = pipeline.source.num_frames
    index = frame + n if frame < 0 else frame
    if not 0 <= index < n:
        raise ValueError(f"frame {frame} is not in the dump ({n} frames: 0..{n - 1} or "
                         f"-{n}..-1)")
    output = output or f"{os.path.splitext(path)[0]}.frame{index}.png"
    try:
        data = pipeline.compute(index)
    except RuntimeError as err:
        raise ValueError(unreadable(path, err)) from None
    forces = np.asarray(data.particles[RECOIL]) if RECOIL in data.particles else None
    largest = None if forces is None else float(np.linalg.norm(forces, axis=1).max())
    arrows = vis.VectorVis(color=ARROW_COLOR, width=0.25,
                           scaling=arrow_length / largest if largest else 0.0,
                           alignment=vis.VectorVis.Alignment.Base, enabled=bool(largest))

    def style(frame, data):
        types = data.particles_.particle_types_
        for t in list(types.types):
            t = types.make_mutable(t)
            t.color = TYPE_COLORS.get(t.id, (0.6, 0.6, 0.6))
            t.name = TYPE_NAMES.get(t.id, t.name)
            t.radius = ATOM_RADIUS
        if RECOIL in data.particles:
            data.particles_[RECOIL + "_"].vis = arrows

    pipeline.modifiers.append(style)
    pipeline.add_to_scene()
    try:
        viewport = vis.Viewport(type=vis.Viewport.Type.Front)
        time = float(data.attributes.get("Time", np.nan))
        text = f"{label}  t = {time:g} ps" if label else f"t = {time:g} ps"
        viewport.overlays.append(vis.TextLabelOverlay(text=text, font_size=0.025,
                                                      text_color=(0, 0, 0)))
        viewport.overlays.append(vis.ColorLegendOverlay(
            property="particles/Particle Type", alignment=Qt.AlignmentFlag.AlignRight
            | Qt.AlignmentFlag.AlignBottom, orientation=Qt.Orientation.Vertical, title=" ",
            legend_size=0.25, font_size=0.07, text_color=(0, 0, 0)))
        viewport.zoom_all(size)
        viewport.render_image(size=tuple(size), filename=output, frame=index,
                              background=(1, 1, 1), renderer=vis.TachyonRenderer())
    finally:
        pipeline.remove_from_scene()
    return Picture(output, index, int(data.attributes.get("Timestep", -1)), time, largest)
