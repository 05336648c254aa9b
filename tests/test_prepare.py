"""Structures built with ASE (fcc slabs of ase.build, a filament placed with numpy), written
to extxyz, POSCAR or a LAMMPS data file and read back: ``prepare`` types them as a user
would by hand (the electrodes are the crystalline end slabs, their outermost 4 layers
frozen), and the prepared data file gives the same recoil forces as the hand-typed one.
Bad structures are refused with a message naming what was found."""
import numpy as np
import pytest

ase = pytest.importorskip("ase")
from ase.build import fcc100, fcc111  # noqa: E402
import ase.io  # noqa: E402
from test_own_geometry import POTENTIAL, write_data  # noqa: E402
from test_lammps import ROOT  # noqa: E402

from lammps_recoil.builders import system_from_types  # noqa: E402
from lammps_recoil.check import check_data, read_data, system_from_data  # noqa: E402
from lammps_recoil.geometry import minimum_image  # noqa: E402
from lammps_recoil.cli import main  # noqa: E402
from lammps_recoil.prepare import prepare, system_from_atoms  # noqa: E402

A0 = 3.5957                 # potentials/README.md (Sheng EAM)
FROZEN, MOBILE = 4, 2       # layers per electrode: >= 6.5 A frozen (4 x 1.80 or 4 x 2.08 A)


def slab_structure(orientation="001", size=(4, 4), gap=4, axis=(0.5, 0.5), tilt=(0.0, 0.0),
                   radius=(3.0, 2.4), jitter=0.0, seed=1):
    """A full-height ASE slab whose middle ``gap`` layers keep only the sites within a cone
    (radius from radius[0] to radius[1] across the gap) about an axis through ``axis``
    (fractions of the cell) tilted by ``tilt`` (A per layer). Returns the atoms and the
    types a user gives by hand (from the slab's layer tags)."""
    n_el = FROZEN + MOBILE
    n = 2 * n_el + gap
    build = fcc100 if orientation == "001" else fcc111
    kw = {} if orientation == "001" else {"orthogonal": True}
    atoms = build("Cu", size=(*size, n), a=A0, **kw)
    atoms.info.clear()                                 # ASE's adsorbate hints
    layer = n - atoms.get_tags()                       # 0 at the bottom
    box = np.diag(atoms.cell)[:2]
    k = layer - n_el
    u = (k + 0.5) / gap
    centre = np.asarray(axis) * box + np.outer(k, tilt)
    off, _ = minimum_image(atoms.positions[:, :2] - centre, box)
    r = radius[0] + (radius[1] - radius[0]) * u
    gap_layer = (k >= 0) & (k < gap)
    keep = ~gap_layer | (np.linalg.norm(off, axis=1) <= r)
    atoms = atoms[keep]
    layer = layer[keep]
    fil = (layer >= n_el) & (layer < n_el + gap)
    rng = np.random.default_rng(seed)
    atoms.positions[fil] += jitter * rng.uniform(-1, 1, (fil.sum(), 3))
    types = np.select([layer < FROZEN, layer < n_el, fil, layer < n - FROZEN],
                      [3, 2, 1, 2], 4)
    atoms.center(vacuum=4.0, axis=2)                   # a 3D cell for POSCAR
    return atoms, types


def round_trip(atoms, tmp_path, fmt):
    path = tmp_path / {"extxyz": "s.xyz", "vasp": "POSCAR", "lammps-data": "s.lmp"}[fmt]
    ase.io.write(path, atoms, format=fmt)
    return path, ase.io.read(path, format=fmt)


def hand_forces(atoms, types, tmp_path, V=0.5):
    """Forces of the hand-typed atoms, through the user's own data file."""
    box = np.diag(atoms.cell)[:2]
    path = write_data(tmp_path / "hand.data", np.mod(atoms.positions, [*box, np.inf]),
                      types, box)
    return system_from_data(str(path)).forces(V).forces


@pytest.mark.parametrize("fmt", ["extxyz", "vasp", "lammps-data"])
def test_lattice_filament_types_and_forces(tmp_path, fmt):
    atoms, types = slab_structure("001")
    path, back = round_trip(atoms, tmp_path, fmt)
    prep = prepare(str(path), format=fmt)
    assert np.array_equal(prep.types, types)
    assert prep.layers == {"left": (FROZEN, MOBILE), "right": (FROZEN, MOBILE)}
    prep.write_data(tmp_path / "prep.data")
    got = system_from_data(str(tmp_path / "prep.data")).forces(0.5).forces
    want = hand_forces(back, types, tmp_path)
    assert np.max(np.abs(got - want)) < 1e-10
    assert np.max(np.abs(want)) > 1e-2                # forces that could be wrong


def test_111_abc_electrodes(tmp_path):
    atoms, types = slab_structure("111", size=(4, 4), radius=(2.7, 2.0))
    path, back = round_trip(atoms, tmp_path, "extxyz")
    prep = prepare(str(path))
    assert np.array_equal(prep.types, types)
    el = prep.electrodes
    assert el.left.orientation == "111" and el.left.stacking == el.right.stacking == "ABC"
    assert abs(el.left.a0 - A0) < 1e-6
    prep.write_data(tmp_path / "prep.data")
    got = system_from_data(str(tmp_path / "prep.data")).forces(0.5).forces
    assert np.max(np.abs(got - hand_forces(back, types, tmp_path))) < 1e-10


def test_off_axis_cone_of_displaced_atoms(tmp_path):
    """A cone off the cell centre, its axis tilted, its atoms 0.25 A off their sites
    (not crystalline): the filament is exactly the cone."""
    atoms, types = slab_structure("001", axis=(0.3, 0.6), tilt=(0.4, -0.3),
                                  radius=(3.4, 1.8), jitter=0.25, seed=7)
    path, back = round_trip(atoms, tmp_path, "extxyz")
    prep = prepare(str(path))
    assert np.array_equal(prep.types, types)
    # one call, in memory, equals the hand-typed structure in memory
    box = np.diag(back.cell)[:2]
    want = system_from_types(back.positions, types, box).forces(0.5).forces
    got = system_from_atoms(back).forces(0.5).forces
    assert np.max(np.abs(got - want)) < 1e-12


def test_prepared_file_passes_check(tmp_path):
    atoms, _ = slab_structure("001")
    path, _ = round_trip(atoms, tmp_path, "extxyz")
    out = tmp_path / "out.data"
    assert main(["prepare", str(path), "-o", str(out)]) == 0
    rep = check_data(str(out), V=0.5, potential=str(ROOT / POTENTIAL))
    text = "\n".join(rep.lines)
    assert "frozen slabs 7.191 A and 7.191 A thick" in text
    data = read_data(str(out))
    assert np.array_equal(np.bincount(data.types)[1:], np.bincount(prepare(str(path)).types)[1:])
    assert main(["prepare", str(path), "-o", str(out)]) == 2            # exists


def test_electrode_thickness_and_z_planes(tmp_path):
    """Explicit extents in A: a thinner electrode turns its inner full layers into
    filament, exactly as typing them 1 by hand."""
    atoms, types = slab_structure("001")
    d = A0 / 2
    same = prepare(atoms, electrode=(FROZEN + MOBILE) * d)
    assert np.array_equal(same.types, types)
    z = atoms.positions[:, 2]
    zl = np.unique(np.round(z, 6))
    planes = prepare(atoms, z_planes=(zl[FROZEN] + 0.5 * d, zl[-FROZEN - 1] - 0.5 * d))
    hand = types.copy()
    hand[types == 2] = 1                               # one mobile layer less each side...
    hand[(types == 2) & (z < zl[FROZEN] + 0.5 * d)] = 2
    hand[(types == 2) & (z > zl[-FROZEN - 1] - 0.5 * d)] = 2
    assert np.array_equal(planes.types, hand)
    assert planes.layers == {"left": (FROZEN, 1), "right": (FROZEN, 1)}
    box = np.diag(atoms.cell)[:2]
    want = system_from_types(atoms.positions, hand, box).forces(0.5).forces
    assert np.max(np.abs(planes.recoil_system().forces(0.5).forces - want)) < 1e-12
    thin = prepare(atoms, frozen=5.0, electrode=(5 * d, 7 * d))  # 3 frozen (5.39 A)
    assert thin.layers == {"left": (3, 2), "right": (3, 4)}


def refused(structure, message, **kw):
    with pytest.raises(ValueError) as err:
        prepare(structure, **kw)
    assert message in str(err.value), str(err.value)
    return str(err.value)


def test_no_periodic_cell():
    atoms, _ = slab_structure("001")
    atoms.pbc = [True, False, False]
    refused(atoms, "no periodic cell in x and y (pbc [True, False, False]")


def test_hexagonal_cell_is_refused():
    atoms = fcc111("Cu", size=(4, 4, 14), a=A0)
    msg = refused(atoms, "is not orthogonal")
    assert "orthogonal=True" in msg


def test_other_elements_are_named():
    atoms, _ = slab_structure("001")
    atoms.symbols[[5, 9]] = "Ag"
    refused(atoms, "atoms other than Cu: {'Ag': 2} (first atoms [6, 10]")


def test_amorphous_end_is_not_an_electrode():
    atoms, _ = slab_structure("001")
    top = np.flatnonzero(atoms.positions[:, 2] > atoms.positions[:, 2].max() - 0.1)
    atoms.positions[top[3], 0] += 0.3
    msg = refused(atoms, "fewer than two crystalline end slabs: the outermost two layers at "
                         "the high-z end are not an fcc crystal")
    assert f"atom {top[3] + 1} is 0.300 A from its site of the fcc(001) lattice" in msg


def test_thin_electrode_is_refused():
    atoms, _ = slab_structure("001")
    z = atoms.positions[:, 2]
    zl = np.unique(np.round(z, 6))
    del atoms[np.flatnonzero(z > zl[-4] + 0.1)]        # right electrode: 3 layers left
    refused(atoms, "the right electrode at the high-z end is 3 layers")
    refused(atoms, "thinner than the frozen slab of 4 layers (>= 6.5 A")


def test_a_structure_wrapped_along_z_gets_a_hint():
    """A structure wrapped into a cell without vacuum (pbc along z), its lowest three
    layers at the top, leaves a thin left electrode: the error says so and suggests
    unwrapping; a thin electrode of an unwrapped structure gets no such hint."""
    atoms, _ = slab_structure("001")
    atoms.center(vacuum=0.0, axis=2)
    d = A0 / 2
    atoms.cell[2, 2] += d                              # periodic along z, no vacuum
    atoms.pbc = True
    lz = atoms.cell[2, 2]
    z = atoms.positions[:, 2] - atoms.positions[:, 2].min()
    atoms.positions[:, 2] = np.mod(z - 2.5 * d, lz)    # the three lowest layers on top
    message = refused(atoms, "the left electrode at the low-z end is 3 layers")
    assert "if the structure was wrapped into its periodic cell along z, unwrap it" in message
    atoms.positions[:, 2] = z
    del atoms[np.flatnonzero(z > z.max() - 2.5 * d)]   # a thin right electrode, unwrapped
    assert "wrapped" not in refused(atoms, "thinner than the frozen slab")


def test_whole_crystal_has_no_filament():
    atoms = fcc100("Cu", size=(4, 4, 12), a=A0)
    refused(atoms, "all 12 layers")
    refused(atoms, "not both", electrode=3.0, z_planes=(0.0, 5.0))


def write_dump(path, frames, types, box, zb=(-5.0, 40.0)):
    """A LAMMPS text dump (id type x y z, unsorted ids) of several frames."""
    lines = []
    order = np.arange(len(types))[::-1]
    for step, x in enumerate(frames):
        lines += ["ITEM: TIMESTEP", str(1000 * step), "ITEM: NUMBER OF ATOMS", str(len(x)),
                  "ITEM: BOX BOUNDS pp pp ff", f"0 {float(box[0])!r}", f"0 {float(box[1])!r}",
                  f"{zb[0]} {zb[1]}", "ITEM: ATOMS id type x y z"]
        lines += [f"{k + 1} {types[k]} {float(x[k, 0])!r} {float(x[k, 1])!r} {float(x[k, 2])!r}" for k in order]
    path.write_text("\n".join(lines) + "\n")


def test_lammps_dump_last_frame(tmp_path):
    """A run's dump (types but no element): the last frame, atoms by ID, retyped."""
    atoms, types = slab_structure("001")
    box = np.diag(atoms.cell)[:2]
    moved = atoms.positions.copy()
    k = np.flatnonzero(types == 1)[2]
    moved[k] += [0.2, -0.1, 0.15]
    write_dump(tmp_path / "run.dump", [atoms.positions, moved], np.ones_like(types), box)
    prep = prepare(str(tmp_path / "run.dump"), format="lammps-dump-text")
    assert np.array_equal(prep.types, types)
    assert np.max(np.abs(prep.positions - moved)) < 1e-12


def test_unreadable_files_are_named(tmp_path, capsys):
    (tmp_path / "bad.xyz").write_text("not a structure\n")
    assert main(["prepare", str(tmp_path / "bad.xyz"), "-o", str(tmp_path / "o")]) == 2
    assert "bad.xyz: ASE cannot read it" in capsys.readouterr().err
    refused(str(tmp_path / "none.xyz"), "none.xyz: no such file")
    assert not (tmp_path / "o").exists()


def test_disordered_electrode_layers_need_the_mobile_device():
    """Electrode layers given by z planes that hold atoms off their sites: typed 2; the
    'filament' device refuses them by atom ID, the 'mobile' device runs them as they are."""
    atoms, types = slab_structure("001")
    z = atoms.positions[:, 2]
    k = np.flatnonzero(types == 2)[[1, 20]]
    atoms.positions[k, :2] += 0.95                    # 1.34 A from their sites
    zl = np.unique(np.round(z, 6))
    prep = prepare(atoms, z_planes=(zl[FROZEN + MOBILE] - 0.5, zl[-FROZEN - MOBILE - 1] + 0.5))
    assert np.array_equal(prep.types, types)
    with pytest.raises(ValueError, match=rf"mobile electrode atoms \[{k[1] + 1}, {k[0] + 1}\]|"
                                         rf"mobile electrode atoms \[{k[0] + 1}, {k[1] + 1}\]"):
        prep.recoil_system()
    box = np.diag(atoms.cell)[:2]
    want = system_from_types(atoms.positions, types, box, device="mobile").forces(0.5).forces
    got = prep.recoil_system("mobile").forces(0.5).forces
    assert np.max(np.abs(got - want)) < 1e-12


def test_ase_built_file_gives_the_builders_forces(tmp_path):
    """The shipped geometry (build_filament's defaults: 4x4 cubic cells, 4 frozen and 3
    mobile layers per side, 6 filament layers in an hourglass of radius 3.7 A at its ends
    and 2.9 A at its neck) built again from ASE's cubic fcc cell: the same atoms, and the
    same recoil forces to 1e-10 eV/A."""
    from ase.build import bulk
    from lammps_recoil.builders import build_filament
    f = build_filament()
    f.write_data(tmp_path / "builder.data")
    a0 = f.a0
    atoms = bulk("Cu", "fcc", a=a0, cubic=True).repeat((4, 4, 10))      # 20 layers
    box = np.array([4 * a0, 4 * a0])
    x = atoms.positions + [0.225 * a0, 0.25 * a0, -9.5 * a0 / 2]
    x[:, :2] = np.mod(x[:, :2] + 1e-9, box) - 1e-9
    layer = np.rint(x[:, 2] / (a0 / 2) + 9.5).astype(int)
    types = np.select([layer < 4, layer < 7, layer < 13, layer < 16], [3, 2, 1, 2], 4)
    u = (layer - 7 + 0.5) / 6
    radius = 2.9 + (3.7 - 2.9) * (2 * np.abs(u - 0.5)) ** 2
    keep = (types != 1) | (np.linalg.norm(x[:, :2] - box / 2, axis=1) <= radius + 1e-6)
    write_data(tmp_path / "ase.data", x[keep], types[keep], box)
    files = [read_data(str(tmp_path / f"{n}.data")) for n in ("builder", "ase")]
    order = [np.lexsort(np.round(d.positions, 6).T) for d in files]
    np.testing.assert_allclose(files[1].positions[order[1]], files[0].positions[order[0]],
                               atol=1e-9)
    np.testing.assert_array_equal(files[1].types[order[1]], files[0].types[order[0]])
    res = []
    for name in ("builder", "ase"):
        s = system_from_data(str(tmp_path / f"{name}.data"))
        r = s.forces(1.0, tol=1e-6)
        key = np.lexsort(np.round(s.positions, 6).T)
        res.append((s.positions[key], r.forces[key]))
    assert res[0][0].shape == (34, 3)
    np.testing.assert_allclose(res[1][0], res[0][0], atol=1e-9)
    np.testing.assert_allclose(res[1][1], res[0][1], atol=1e-10)
    assert np.abs(res[0][1]).max() > 0.05
