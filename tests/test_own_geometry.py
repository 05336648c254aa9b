"""A user's own data file: geometries built here with numpy (never with the package's
builder) run, or are refused before any MD with a message naming the cause.

The layered crystals below are written from the fcc definitions directly: (001) layers
a0/2 apart with the sites (i, j) a0/2, i + j + n even; (111) close-packed layers a0/sqrt(3)
apart in a rectangular a_nn x sqrt(3) a_nn cell, each layer shifted by +(a1 + a2)/3 (ABC)
or -(a1 + a2)/3 (ACB) from the one below.
"""
import numpy as np
import pytest

from lammps_recoil.builders import build_filament, measure_electrodes, system_from_types
from lammps_recoil.check import check_data, read_data
from lammps_recoil.geometry import minimum_image

A0_SHENG = 3.5957          # potentials/README.md
A0_EXP = 3.615             # experimental Cu, 300 K
POTENTIAL = "potentials/Cu_Sheng2011.eam.alloy"


def layer_sites(orientation, a0, nx, ny, n, stacking="ABC"):
    """Sites of fcc layer n (numpy only); the box and the layer spacing."""
    if orientation == "001":
        i, j = np.meshgrid(np.arange(2 * nx), np.arange(2 * ny), indexing="ij")
        keep = (i + j + n) % 2 == 0
        xy = np.column_stack([i[keep], j[keep]]) * a0 / 2 + [0.31, 0.17]
        return xy, np.array([nx * a0, ny * a0]), a0 / 2
    a = a0 / np.sqrt(2)
    i, j = np.meshgrid(np.arange(nx), np.arange(ny), indexing="ij")
    base = np.column_stack([i.ravel(), j.ravel() * np.sqrt(3)]) * a
    xy = np.vstack([base, base + [a / 2, a * np.sqrt(3) / 2]])
    shift = np.array([a / 2, a * np.sqrt(3) / 6]) * ((n if stacking == "ABC" else -n) % 3)
    box = np.array([nx * a, ny * a * np.sqrt(3)])
    return np.mod(xy + shift + [0.23, 0.41], box), box, a0 / np.sqrt(3)


def structure(orientation="001", a0=A0_SHENG, nx=4, ny=4, frozen=4, electrode=2, gap=4,
              stacking="ABC", radius=lambda u: 2.6, centre=(0.5, 0.5), full=False):
    """Atoms, types and box of a filament between two fcc electrodes: the filament holds
    the sites of its layers within radius(u) (u in [0, 1) across the gap) of ``centre``
    (fractions of the box)."""
    n_el = frozen + electrode
    pos, types = [], []
    for n in range(2 * n_el + gap):
        xy, box, d = layer_sites(orientation, a0, nx, ny, n, stacking)
        t = 3 if n < frozen else 2 if n < n_el else 1 if n < n_el + gap else \
            2 if n < n_el + gap + electrode else 4
        if t == 1 and not full:
            off, _ = minimum_image(xy - np.asarray(centre) * box, box)
            xy = xy[np.linalg.norm(off, axis=1) <= radius((n - n_el) / gap)]
        pos.append(np.column_stack([xy, np.full(len(xy), n * d)]))
        types.append(np.full(len(xy), t))
    return np.vstack(pos), np.concatenate(types), box


def write_data(path, pos, types, box, n_types=4, pad=2.0):
    lines = ["numpy-built test structure", "", f"{len(pos)} atoms", f"{n_types} atom types",
             "", f"0 {box[0]:.10f} xlo xhi", f"0 {box[1]:.10f} ylo yhi",
             f"{pos[:, 2].min() - pad:.10f} {pos[:, 2].max() + pad:.10f} zlo zhi", "",
             "Masses", ""] + [f"{t} 63.55" for t in range(1, n_types + 1)]
    lines += ["", "Atoms # atomic", ""]
    lines += [f"{k + 1} {t} {x:.10f} {y:.10f} {z:.10f}"
              for k, (t, (x, y, z)) in enumerate(zip(types, pos))]
    path.write_text("\n".join(lines) + "\n")
    return path


CASES = [("001", A0_SHENG, 4, 4, "ABC"), ("001", A0_EXP, 4, 4, "ABC"),
         ("111", A0_SHENG, 4, 3, "ABC"), ("111", A0_EXP, 4, 3, "ACB")]


@pytest.mark.parametrize("orientation, a0, nx, ny, stacking", CASES)
def test_lattice_is_measured_from_the_frozen_layers(orientation, a0, nx, ny, stacking):
    pos, types, box = structure(orientation, a0, nx, ny, stacking=stacking)
    el = measure_electrodes(pos, types, box)
    assert el.left.orientation == el.right.orientation == orientation
    assert abs(el.left.a0 - a0) < 1e-9 and abs(el.right.a0 - a0) < 1e-9
    want = "AB" if orientation == "001" else stacking
    assert el.left.stacking == el.right.stacking == want
    assert el.left.n_layers == 4 and max(el.left.deviation.max(), el.right.deviation.max()) < 1e-9


@pytest.mark.parametrize("orientation, a0, nx, ny, stacking", CASES)
def test_perfect_crystal_transmits_every_open_channel(orientation, a0, nx, ny, stacking):
    """A file whose filament layers are complete is a perfect crystal: T(E) is the number
    of open channels of the lead - which holds only if the leads use the file's own
    lattice (a0 = 3.615 A included) and stacking."""
    pos, types, box = structure(orientation, a0, nx, ny, stacking=stacking, gap=2,
                                electrode=1, full=True)
    s = system_from_types(pos, types, box, device="mobile")
    E = s.fermi_level + np.array([-0.4, 0.0, 0.3])
    channels = [s.leads[0].open_channels(e) for e in E]
    np.testing.assert_allclose(s.transmission(E), channels, atol=1e-8)
    assert min(channels) >= 1


def test_a0_given_within_tolerance_uses_the_measured_lattice():
    pos, types, box = structure("001", A0_EXP)
    measured = system_from_types(pos, types, box).forces(0.5)
    given = system_from_types(pos, types, box, "001", A0_SHENG).forces(0.5)
    np.testing.assert_allclose(given.forces, measured.forces, atol=1e-12)
    with pytest.raises(ValueError, match=r"a0 = 3.4 A was given, but the frozen layers "
                                         r"measure a0 = 3.6150 A \(accepted: within 2%\)"):
        system_from_types(pos, types, box, "001", 3.4)


def test_acb_stacking_is_the_mirror_image_of_abc():
    """y -> -y turns ABC into ACB: forces mirror (F_y flips), to round-off."""
    pos, types, box = structure("111", A0_SHENG, 4, 3, stacking="ABC",
                                radius=lambda u: 2.0 + 1.5 * u, centre=(0.45, 0.55))
    mirror = pos * [1, -1, 1] + [0, box[1], 0]
    el = measure_electrodes(mirror, types, box)
    assert el.left.stacking == "ACB"
    a = system_from_types(pos, types, box).forces(0.8)
    b = system_from_types(mirror, types, box).forces(0.8)
    assert np.abs(a.forces).max() > 0.05
    np.testing.assert_allclose(b.forces, a.forces * [1, -1, 1], atol=1e-10)


def test_swapped_electrode_types_keep_lower_z_as_left():
    pos, types, box = structure("001", radius=lambda u: 3.2 - 1.4 * u)
    swapped = np.where(types == 3, 4, np.where(types == 4, 3, types))
    el = measure_electrodes(pos, swapped, box)
    assert el.left_type == 4 and "type 4 is the left electrode (mu_L)" in el.note()
    a = system_from_types(pos, types, box).forces(1.0)
    b = system_from_types(pos, swapped, box).forces(1.0)
    assert abs(a.total[2]) > 0.1
    np.testing.assert_allclose(b.forces, a.forces, atol=1e-12)


def test_numpy_file_gives_the_builders_forces(tmp_path):
    """The builder's (001) cylinder, written again from numpy sites: same forces to 1e-10
    (atoms matched by position)."""
    f = build_filament("001", nx=4, ny=4, frozen_layers=4, electrode_layers=2, gap_layers=4,
                       shape="cylinder", neck_radius=2.6)
    f.write_data(tmp_path / "builder.data")
    a0 = f.a0
    pos, types, box = [], [], np.array([4 * a0, 4 * a0])
    for n in range(16):
        i, j = np.meshgrid(np.arange(8), np.arange(8), indexing="ij")
        keep = (i + j + n) % 2 == 0
        xy = np.mod(np.column_stack([i[keep], j[keep]]) * a0 / 2 + [0.225 * a0, 0.25 * a0],
                    box)
        t = 3 if n < 4 else 2 if n < 6 else 1 if n < 10 else 2 if n < 12 else 4
        if t == 1:
            xy = xy[np.linalg.norm(xy - box / 2, axis=1) <= 2.6 + 1e-6]
        pos.append(np.column_stack([xy, np.full(len(xy), (n - 7.5) * a0 / 2)]))
        types.append(np.full(len(xy), t))
    write_data(tmp_path / "numpy.data", np.vstack(pos), np.concatenate(types), box)
    res = []
    for name in ("builder", "numpy"):
        d = read_data(str(tmp_path / f"{name}.data"))
        s = system_from_types(d.positions, d.types, d.box, ids=d.ids)
        r = s.forces(1.0, tol=1e-6)
        key = np.lexsort(np.round(s.positions, 6).T)
        res.append((s.positions[key], r.forces[key]))
    assert res[0][0].shape == res[1][0].shape
    np.testing.assert_allclose(res[1][0], res[0][0], atol=1e-9)
    np.testing.assert_allclose(res[1][1], res[0][1], atol=1e-10)


def test_asymmetric_off_axis_filament_checks_and_runs(tmp_path):
    pos, types, box = structure("111", A0_EXP, 5, 3, stacking="ACB",
                                radius=lambda u: 3.4 - 2.0 * u, centre=(0.4, 0.6))
    path = write_data(tmp_path / "cone.data", pos, types, box)
    rep = check_data(str(path), V=1.0, potential=POTENTIAL)
    text = "\n".join(rep.lines)
    assert "fcc(111) a0 = 3.6150 A, stacking ACB (left) / ACB (right)" in text
    assert rep.seconds_per_update > 0


def test_cell_may_be_a_3_vector():
    """system_from_types takes the LAMMPS box lengths (Lx, Ly, Lz); Lz is not periodic."""
    pos, types, box = structure()
    a = system_from_types(pos, types, box).forces(0.6)
    b = system_from_types(pos, types, np.array([*box, 40.0])).forces(0.6)
    np.testing.assert_array_equal(b.forces, a.forces)


def test_system_from_data_is_system_from_types_of_the_file(tmp_path):
    from lammps_recoil.check import system_from_data
    pos, types, box = structure("111", A0_EXP, 4, 3, radius=lambda u: 2.8 - u)
    path = write_data(tmp_path / "s.data", pos, types, box)
    a = system_from_data(str(path)).forces(0.9)
    d = read_data(str(path))
    b = system_from_types(d.positions, d.types, d.box).forces(0.9)
    np.testing.assert_array_equal(a.forces, b.forces)
    c = system_from_types(pos, types, box).forces(0.9)
    np.testing.assert_allclose(a.forces, c.forces, atol=1e-8)     # 10 decimals in the file


def test_structure_without_a_box_is_refused_by_name():
    pos, types, _ = structure()
    with pytest.raises(ValueError, match=r"a periodic box \(Lx, Ly\) is needed"):
        system_from_types(pos, types, None)


def test_python_route_names_lammps_ids(tmp_path):
    """Errors of the Python route on a data file name its atoms by their LAMMPS IDs, as
    `check` does: two filament atoms 0.5 A apart, in a file whose IDs start at 1001."""
    from lammps_recoil.check import system_from_data
    pos, types, box = structure("001", radius=lambda u: 2.6)
    fil = np.flatnonzero(types == 1)
    pos[fil[1]] = pos[fil[0]] + [0.5, 0.0, 0.0]
    path = write_data(tmp_path / "overlap.data", pos, types, box)
    text = path.read_text().split("Atoms # atomic\n\n")
    rows = [line.split(maxsplit=1) for line in text[1].strip().splitlines()]
    path.write_text(text[0] + "Atoms # atomic\n\n" +
                    "".join(f"{int(k) + 1000} {rest}\n" for k, rest in rows))
    first, second = sorted(fil[:2] + 1001)
    with pytest.raises(ValueError, match=f"overlapping atoms: device atom {first} and "
                       f"device atom {second} are 0.500 A apart"):
        system_from_data(str(path))


def test_a_stray_frozen_atom_is_named():
    """One atom of the left mobile electrode typed 4 (the right frozen electrode's type)
    makes the right electrode's layers uneven; the error names that atom's ID and its
    layer."""
    pos, types, box = structure("001")
    stray = int(np.flatnonzero(types == 2)[5])
    types = types.copy()
    types[stray] = 4
    with pytest.raises(ValueError, match=rf"right frozen electrode.*unevenly spaced.*the "
                       rf"layer at z = {pos[stray, 2]:.3f} A holds only atom\(s\) "
                       rf"\[{stray + 1}\] \(a layer here holds 32\): check their type"):
        measure_electrodes(pos, types, box)
