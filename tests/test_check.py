"""Bad data files are refused before any MD, by ``lammps-recoil check`` and by both deck
routes, with a message naming the cause (LAMMPS atom IDs, expected and found values), and
a refused run writes no output file; the corrected rerun then just runs."""
import sys

import numpy as np
import pytest
from test_lammps import DECK, HAVE_LMP, HAVE_WHEEL, PRODUCTION, ROOT, route1, route2
from test_own_geometry import A0_SHENG, POTENTIAL, layer_sites, structure, write_data

from lammps_recoil.builders import build_filament
from lammps_recoil.check import check_data, eam_cutoff, largest_bias, read_data
from lammps_recoil.cli import main


def refused(path, message, **kw):
    with pytest.raises(ValueError) as err:
        check_data(str(path), potential=str(ROOT / POTENTIAL), **kw)
    assert message in str(err.value), str(err.value)
    return str(err.value)


def test_good_file_passes(tmp_path):
    pos, types, box = structure()
    rep = check_data(str(write_data(tmp_path / "ok.data", pos, types, box)),
                     potential=str(ROOT / POTENTIAL))
    text = "\n".join(rep.lines)
    assert "counts per type: 1: " in text and "fcc(001) a0 = 3.5957 A" in text
    assert "frozen slabs 7.191 A and 7.191 A thick (layers x spacing) >= EAM cutoff 6.5 A" \
        in text


def test_eam_cutoff_is_read_from_the_potential():
    line5 = (ROOT / POTENTIAL).read_text().splitlines()[4].split()
    assert eam_cutoff(str(ROOT / POTENTIAL)) == float(line5[4]) == 6.5


def _overlap():
    pos, types, box = structure()
    fil = np.flatnonzero(types == 1)
    pos[fil[1]] = pos[fil[0]] + [0.5, 0.0, 0.0]
    return pos, types, box, {}


def _hcp_frozen_slab():
    pos, types, box = structure("111", nx=4, ny=3)
    # the left frozen slab stacked A B A B (layers 0-3): layers 2, 3 shifted back onto 0, 1
    d = A0_SHENG / np.sqrt(3)
    for n in (2, 3):
        xy, _, _ = layer_sites("111", A0_SHENG, 4, 3, n - 2)
        pos[(types == 3) & np.isclose(pos[:, 2], n * d)] = np.column_stack(
            [xy, np.full(len(xy), n * d)])
    return pos, types, box, {}


def _mobile_layers_off_the_frozen_stacking():
    pos, types, box = structure("111", nx=4, ny=3)
    # the left mobile layers 4, 5 stacked back (C B after A B C A: a twin at layer 3)
    d = A0_SHENG / np.sqrt(3)
    for n in (4, 5):
        xy, _, _ = layer_sites("111", A0_SHENG, 4, 3, 6 - n)
        pos[(types == 2) & np.isclose(pos[:, 2], n * d)] = np.column_stack(
            [xy, np.full(len(xy), n * d)])
    return pos, types, box, {}


def _moved(kind, shift):
    def make():
        pos, types, box = structure()
        k = np.flatnonzero(types == kind)[5]
        pos[k] += shift
        return pos, types, box, {}
    return make


def _broken():
    pos, types, box = structure(gap=6)
    gone = (types == 1) & (pos[:, 2] > 8.5 * 1.79785) & (pos[:, 2] < 10.5 * 1.79785)
    return pos[~gone], types[~gone], box, {}


def _isolated_atom():
    pos, types, box = structure(gap=6)
    fil = np.flatnonzero(types == 1)
    middle = fil[np.argsort(np.abs(pos[fil, 2] - pos[fil, 2].mean()))[0]]
    pos[middle, :2] += 0.5 * box               # to the empty corner of a middle layer
    return pos, types, box, {}


#: Bad inputs: (the structure and the deck's variables, what the message must say).
BAD = {
    "five atom types": (lambda: structure() + ({},), {"n_types": 5},
                        ["declares 5 atom types; 4 are expected: 1 filament",
                         "3 and 4 the frozen electrode slabs"]),
    "atoms 0.5 A apart": (_overlap, {}, ["overlapping atoms: atom {f0} and atom {f1} are "
                                         "0.500 A apart (minimum allowed 1.2 A)"]),
    "(111) file run with lattice 001": (
        lambda: structure("111", nx=4, ny=3) + ({"lattice": "001"},), {},
        ["is fcc(111) (layer spacing 2.0760 A", "but lattice 001 was requested: leave the "
         "lattice to be measured (-var lattice auto, the default) or give -var lattice 111"]),
    "hcp frozen slab": (_hcp_frozen_slab, {},
                        ["its (111) layers stack as ABAB (from low to high z), not as fcc "
                         "ABC... or ACB..."]),
    "mobile layers off the frozen stacking": (
        _mobile_layers_off_the_frozen_stacking, {},
        ["share lattice sites", "do not continue the frozen lattice", "-var device mobile"]),
    "box not commensurate": (lambda: (*structure()[:2], structure()[2] + [0.4, 0.0], {}), {},
                             ["the periodic box (14.7828 x 14.3828 A) is not commensurate",
                              "expected whole numbers", "Lx a multiple of 3.5957 A"]),
    "frozen atom 0.3 A off its site": (
        _moved(4, [0.3, 0.0, 0.0]), {},
        ["the right frozen electrode (type 4): atom {t4} is 0.300 A from its site"]),
    "a0 not Cu's": (lambda: structure(a0=3.9) + ({},), {},
                    ["a0 = 3.9000 A is more than 5% from Cu's 3.5956 A"]),
    "mobile electrode atom off its site": (
        _moved(2, [0.0, 0.0, 1.5]), {},
        ["from their lattice sites (> 1.27 A)", "-var device mobile"]),
    "frozen slab thinner than the EAM cutoff": (
        lambda: structure(frozen=3) + ({},), {},
        ["the left frozen slab is 3 layers = 5.394 A thick (layers x spacing 1.797",
         "A), thinner than the EAM cutoff 6.5 A"]),
    "broken filament": (_broken, {}, ["the filament does not join the two electrodes",
                                      "the atoms bonded to the left electrode reach up to z "
                                      "= 14.383 A, those bonded to the right one down to z = "
                                      "19.776 A"]),
    "isolated atom": (_isolated_atom, {}, ["have no path of bonds shorter than 3.40 A"]),
    "V = 50": (lambda: structure() + ({"V": "50"},), {},
               ["bias V = 50.0 V: the window", "leaves the lead band", "accepted: -"]),
    "5x5 cell at 1 V": (lambda: structure(nx=5, ny=5) + ({},), {},
                        ["flat band at E = ", "(-var leads infinite:",
                         "the nearest that accept V = 1.0 V: 4x5, 5x4, 5x6, 6x5",
                         "-var lead_eta 0.05"]),
    "mobile device between infinite leads": (
        lambda: structure() + ({"device": "mobile", "leads": "infinite"},), {},
        ["the NEGF device 'mobile' (all mobile atoms at their positions) is not supported "
         "between laterally infinite leads", "Use device filament with leads infinite"]),
    "filament spanning the box between infinite leads": (
        lambda: structure(full=True, gap=2, electrode=1) + ({"leads": "infinite"},), {},
        ["bonded to its own periodic image"]),
}


@pytest.mark.parametrize("case", BAD)
def test_refused_input_names_the_cause_and_leaves_outputs_alone(tmp_path, case):
    """Each bad input is refused by the deck's first step (before read_data, both routes:
    hooks.check_inputs), with a message naming the cause; the outputs of an earlier run
    in its place stay as they were (even with overwrite yes) and nothing is added."""
    from lammps_recoil.hooks import check_inputs
    make, write_kw, messages = BAD[case]
    pos, types, box, deck_vars = make()
    data = write_data(tmp_path / "in.data", pos, types, box, **write_kw)
    out = tmp_path / "runs"
    out.mkdir()
    for suffix in (".log", ".recoil.csv", ".dump"):
        (out / f"r{suffix}").write_text(f"an earlier run's {suffix}\n")
    before = {p.name: (p.read_text(), p.stat().st_mtime_ns) for p in out.iterdir()}
    with pytest.raises(ValueError) as err:
        check_inputs(None, {"data": str(data), "potential": str(ROOT / POTENTIAL),
                            "out": str(out / "r"), "overwrite": "yes", **deck_vars})
    fil, t4 = np.flatnonzero(types == 1) + 1, np.flatnonzero(types == 4) + 1
    for m in messages:
        m = m.format(f0=fil[0], f1=fil[1], t4=t4[5] if len(t4) > 5 else 0)
        assert m in str(err.value), str(err.value)
    assert {p.name: (p.read_text(), p.stat().st_mtime_ns) for p in out.iterdir()} == before


def test_bias_beyond_the_window_names_the_largest_accepted(tmp_path):
    pos, types, box = structure()
    path = write_data(tmp_path / "ok.data", pos, types, box)
    msg = refused(path, "bias V = 50.0 V", V=50.0)
    lo, hi = [float(v) for v in msg.split("accepted: ")[1].split(" V at")[0].split(" V < V < ")]
    # at the largest accepted bias the window's upper end reaches the flat band at
    # E = 2 E_F-distance... checked against the closed form of largest_bias
    assert 0 < hi < 50 and lo < 0
    check_data(str(path), V=0.99 * hi, time_update=False)
    refused(path, f"bias V = {1.01 * hi}", V=1.01 * hi)


def test_largest_bias_closed_form():
    # flat band 0.3 eV above E_F, beta 0.25: the upper end E_F + beta V reaches it less the
    # margin at V = (0.3 - 0.02) / 0.25
    assert largest_bias(0.0, 0.25, (-5, 5), np.array([0.3]), 1.0) == pytest.approx(1.12)
    assert largest_bias(0.0, 0.25, (-5, 5), np.array([0.3]), -1.0) == pytest.approx(
        0.28 / 0.75)
    assert largest_bias(0.0, 0.5, (-1, 2), np.zeros(0), 1.0) == pytest.approx(2.0)


def test_cli_check_and_missing_extra(tmp_path, capsys, monkeypatch):
    pos, types, box = structure()
    path = write_data(tmp_path / "five.data", pos, types, box, n_types=5)
    monkeypatch.chdir(ROOT)
    assert main(["check", str(path)]) == 2
    assert "declares 5 atom types; 4 are expected" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "matplotlib", None)     # as if not installed
    assert main(["chain", "fig1a", "--points", "2", "--outdir", str(tmp_path / "c")]) == 2
    assert ("'chain' needs matplotlib, which is not installed: "
            'pip install matplotlib (or, in the repository, pip install -e ".[plot]")'
            ) in capsys.readouterr().err
    assert not (tmp_path / "c").exists()                    # refused before any output


def test_report_reads_a_data_file(tmp_path, capsys, monkeypatch):
    """report --data gives the forces of system_from_types on the file's atoms."""
    from lammps_recoil.builders import system_from_types
    pos, types, box = structure(radius=lambda u: 3.0 - 1.0 * u)
    path = write_data(tmp_path / "r.data", pos, types, box)
    assert main(["report", "--data", str(path), "--bias", "0.7", "--tol", "1e-6"]) == 0
    text = capsys.readouterr().out
    total = system_from_types(pos, np.asarray(types), np.array([*box, 30.0])).forces(
        0.7, tol=1e-6).forces.sum(0)
    printed = text.split("total recoil force on the filament (eV/A): [")[1].split("]")[0]
    np.testing.assert_allclose(np.array(printed.split(), float), total, atol=6e-5)


def _bad_and_good(tmp_path):
    pos, types, box = structure()
    good = write_data(tmp_path / "good.data", pos, types, box)
    fil = np.flatnonzero(types == 1)
    pos[fil[1]] = pos[fil[0]] + [0.5, 0.0, 0.0]
    bad = write_data(tmp_path / "bad.data", pos, types, box)
    return bad, good, fil[:2] + 1


@pytest.mark.skipif(not HAVE_WHEEL, reason="PyPI lammps wheel / mpi4py not installed")
@pytest.mark.parametrize("deck", [PRODUCTION, DECK])
def test_pip_route_refuses_before_minimization_and_writes_nothing(tmp_path, deck):
    bad, good, ids = _bad_and_good(tmp_path)
    out = tmp_path / "runs"
    proc = route2(out, "r", data=bad, deck=deck)
    assert proc.returncode == 2, proc.stderr
    assert f"overlapping atoms: atom {ids[0]} and atom {ids[1]} are 0.500 A apart" \
        in proc.stderr
    assert not out.exists()                     # no log, dump, CSV or crash file
    warm = dict(warmup_ps=0.01) if deck == PRODUCTION else {}   # tests/in.checks has none
    proc = route2(out, "r", data=good, deck=deck, production_ps=0.05, **warm)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert len((out / "r.recoil.csv").read_text().splitlines()) >= 2


@pytest.mark.skipif(not HAVE_LMP, reason="Debian lmp with PYTHON not installed")
def test_deck_route_refuses_before_minimization_and_writes_nothing(tmp_path):
    bad, good, ids = _bad_and_good(tmp_path)
    out = tmp_path / "runs"
    proc = route1(out, "r", data=bad, deck=PRODUCTION)
    assert proc.returncode != 0
    assert f"overlapping atoms: atom {ids[0]} and atom {ids[1]} are 0.500 A apart" \
        in proc.stderr + proc.stdout
    assert "Minimization" not in proc.stdout
    assert not out.exists()
    proc = route1(out, "r", data=good, production_ps=0.05)
    assert proc.returncode == 0, proc.stderr[-2000:] + proc.stdout[-2000:]
    assert len((out / "r.recoil.csv").read_text().splitlines()) >= 2


@pytest.mark.parametrize("n, nearest", [(5, "4x5, 5x4, 5x6, 6x5"), (8, "7x8, 8x7, 8x9, 9x8")])
def test_wide_001_cells_at_1V_name_the_cells_and_the_broadening_that_work(tmp_path, n,
                                                                           nearest):
    pos, types, box = structure("001", nx=n, ny=n)
    path = write_data(tmp_path / f"c{n}.data", pos, types, box)
    msg = refused(path, f"(this box is {n}x{n} cubic cells; the nearest that accept V = 1.0 V: "
                        f"{nearest})", V=1.0)
    assert "-var lead_eta 0.05" in msg
    # the first cell named is accepted, and so is this one with broadened leads
    a, b = (int(v) for v in nearest.split(",")[0].split("x"))
    pos2, types2, box2 = structure("001", nx=a, ny=b)
    check_data(str(write_data(tmp_path / "named.data", pos2, types2, box2)), V=1.0,
               time_update=False)
    check_data(str(path), V=1.0, lead_eta=0.05, time_update=False)


def test_flat_band_of_a_5x5_cell_is_where_the_layers_decouple():
    """Closed form: a (001) layer of the periodic lead couples to the next through the 4
    neighbours at in-plane offsets (+-a0/2, 0), (0, +-a0/2), h1 = 2 t1 (cos(qx a0/2) +
    cos(qy a0/2)); it decouples where h1 = 0 and is then a flat band at its in-plane energy
    h0 = 4 t1 cos(qx a0/2) cos(qy a0/2) (second neighbours at a0 lie beyond the hopping
    cutoff). q runs over the Bloch vectors of the 5 x 5 cubic cell, folded into the zone."""
    from lammps_recoil.check import flat_bands_of_cell
    from lammps_recoil.hamiltonian import HoppingModel
    a0 = 3.5957
    flat = flat_bands_of_cell("001", a0, 5, 5)
    t = lambda r: HoppingModel().hopping(np.array([r]))[0][0]
    assert t(a0) == 0.0
    m = np.arange(5)
    kx, ky = np.meshgrid(2 * np.pi * m / (5 * a0), 2 * np.pi * m / (5 * a0), indexing="ij")
    found = []
    for qx in (kx.ravel(), kx.ravel() + 2 * np.pi / a0):
        for qy in (ky.ravel(), ky.ravel() + 2 * np.pi / a0):
            h1 = t(a0 / np.sqrt(2)) * 2 * (np.cos(qx * a0 / 2) + np.cos(qy * a0 / 2))
            h0 = t(a0 / np.sqrt(2)) * 4 * np.cos(qx * a0 / 2) * np.cos(qy * a0 / 2)
            found += list(h0[np.abs(h1) < 1e-9])
    np.testing.assert_allclose(np.sort(flat), np.unique(np.round(found, 9)), atol=1e-8)


@pytest.mark.skipif(not HAVE_WHEEL, reason="PyPI lammps wheel / mpi4py not installed")
def test_pip_route_runs_a_5x5_cell_at_1V_with_broadened_leads(tmp_path):
    pos, types, box = structure("001", nx=5, ny=5)
    path = write_data(tmp_path / "c5.data", pos, types, box)
    proc = route2(tmp_path / "no", "r", data=path)
    assert proc.returncode == 2 and "the nearest that accept V = 1.0 V" in proc.stderr
    assert not (tmp_path / "no").exists()
    proc = route2(tmp_path / "eta", "r", data=path, lead_eta=0.05, production_ps=0.05)
    assert proc.returncode == 0, proc.stderr[-2000:]
    series = (tmp_path / "eta" / "r.recoil.csv").read_text().splitlines()
    assert len(series) >= 2


def test_build_filament_111_hint_runs(tmp_path, capsys, monkeypatch):
    """The printed hints name the orientation and the check, and the check accepts the file."""
    monkeypatch.chdir(ROOT)
    out = tmp_path / "f111.data"
    assert main(["build-filament", "--orientation", "111", "--nx", "5", "--ny", "3",
                 "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert f"lmp -in inputs/in.filament -var data {out} -var lattice 111" in text
    hint = text.split("check it:  ")[1].split("\n")[0].split()
    assert hint == ["lammps-recoil", "check", str(out)]
    assert main(hint[1:]) == 0
    assert "fcc(111) a0 = 3.5956 A, stacking ABC (left) / ABC (right)" in capsys.readouterr().out


@pytest.mark.skipif(not HAVE_WHEEL, reason="PyPI lammps wheel / mpi4py not installed")
def asymmetric_filament(pos, types, box, axes=(3.8, 2.3), lean=2.0):
    """Keep the filament atoms (type 1) inside an elliptic cross-section whose centre moves
    ``lean`` A along x across the gap: no lateral symmetry, leaning to one side."""
    fil = types == 1
    u = (pos[:, 2] - pos[fil, 2].min()) / np.ptp(pos[fil, 2])
    centre = np.column_stack([0.35 * box[0] + lean * u, np.full(len(u), 0.5 * box[1])])
    off = pos[:, :2] - centre
    off -= box * np.rint(off / box)
    keep = ~fil | ((off[:, 0] / axes[0]) ** 2 + (off[:, 1] / axes[1]) ** 2 <= 1)
    return pos[keep], types[keep], box


@pytest.mark.parametrize("kind", ["111 ACB 3.615 off-axis cone", "001 types swapped",
                                  "111 ABC asymmetric"])
def test_pip_route_runs_own_geometries(tmp_path, kind):
    if kind.startswith("111 ACB"):
        pos, types, box = structure("111", 3.615, 5, 3, stacking="ACB",
                                    radius=lambda u: 3.2 - 1.5 * u, centre=(0.45, 0.55))
    elif kind.startswith("111 ABC"):
        pos, types, box = asymmetric_filament(*structure("111", A0_SHENG, 5, 3, gap=5,
                                                         full=True))
    else:
        pos, types, box = structure("001", radius=lambda u: 3.0 - 1.0 * u)
        types = np.where(types == 3, 4, np.where(types == 4, 3, types))
    path = write_data(tmp_path / "own.data", pos, types, box)
    proc = route2(tmp_path / "out", "r", data=path, production_ps=0.05)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "lammps-recoil check: " in proc.stdout
    if "swapped" in kind:
        assert "type 4 is the left electrode (mu_L)" in proc.stderr
    # the first update (step 0, the file's positions) is the Python system's
    from lammps_recoil.analysis import read_series
    from lammps_recoil.builders import system_from_types
    series = read_series(tmp_path / "out" / "r.recoil.csv")
    res = system_from_types(pos, types, box).forces(1.0, tol=1e-2)
    total = res.forces.sum(0)                   # the device: the filament atoms
    found = [series[c][0] for c in ("Frec_x", "Frec_y", "Frec_z")]
    np.testing.assert_allclose(found, total, atol=1e-8)
    assert abs(total[2]) > 0.1


def test_check_compares_the_periodic_leads_with_infinite_ones():
    """The 4x4 cell's periodic leads at Gamma hold 32 transverse wave vectors per layer:
    check prints the total force between laterally infinite leads (equal to a direct
    solve) and notes the unconverged sampling (Fz 1.068 against 2.041 eV/A, ratio 0.52);
    an 8x8 k grid with lead_eta 0.01 eV converges to within 10% and gets no note."""
    from lammps_recoil.check import system_from_data
    data = str(ROOT / "inputs" / "filament.data")
    rep = check_data(data, V=1.0)
    line = next(ln for ln in rep.lines if "between laterally infinite leads" in ln)
    printed = np.array(line.split("total recoil force [")[1].split("]")[0].split(","), float)
    direct = system_from_data(data, leads="infinite").forces(1.0, tol=1e-2)
    np.testing.assert_allclose(printed, direct.total, atol=1e-4)   # (device = filament)
    assert 2.0 < printed[2] < 2.1
    note = next(n for n in rep.notes if "transverse wave vectors" in n)
    assert "32 transverse wave vectors per layer" in note and " is 0.52 of its size" in note
    converged = check_data(data, V=1.0, kpoints=8, lead_eta=0.01)
    assert not any("transverse wave vectors" in n for n in converged.notes)


DEFAULT_DATA = str(ROOT / "inputs" / "filament.data")


def test_check_applies_the_bath_window_of_the_run(capsys, monkeypatch):
    """`check -var bath friction` refuses what the run refuses: at V = 1 V the default 4x4
    cell's flat band at E = 0 lies mu_L - E = 0.1077 eV below the window, so the Fermi tails
    (20 k_B T_e) allow T_e < (0.1077 - FLAT_MARGIN) / (20 k_B) = 51 K; the message names the
    cell and the fixes, each of which check then accepts."""
    from lammps_recoil.hooks import check_inputs
    from lammps_recoil.integration import K_B, TAIL_KT
    from lammps_recoil.system import FLAT_MARGIN
    monkeypatch.chdir(ROOT)
    assert main(["check", DEFAULT_DATA, "-var", "bath", "friction"]) == 2
    err = capsys.readouterr().err
    limit = (0.6077 - 0.5 - FLAT_MARGIN) / (TAIL_KT * K_B)
    assert round(limit) == 51
    for text in ("electronic bath at T_e = 300.0 K, V = 1.0 V", "flat band at E = 0.0000 eV",
                 "this box is 4x4 cubic cells", "-var leads infinite",
                 f"-var Te below {limit:.0f} (K)", "-var lead_eta 0.05"):
        assert text in err, err
    assert "Choose another transverse cell" not in err
    with pytest.raises(ValueError) as run:          # the run's own check: the same message
        check_inputs(None, dict(bath="friction", data=DEFAULT_DATA))
    assert f"lammps-recoil: error: {run.value}" == err.strip()
    for fix in (["-var", "Te", f"{np.floor(limit):g}"], ["-var", "lead_eta", "0.05"],
                ["-var", "leads", "infinite"]):
        assert main(["check", DEFAULT_DATA, "-var", "bath", "friction"] + fix) == 0, fix
        assert "windows clear of flat bands" in capsys.readouterr().out
    assert main(["check", DEFAULT_DATA, "-var", "bath", "friction", "-var", "Te",
                 f"{np.ceil(limit):g}"]) == 2


def test_bath_message_names_cells_that_accept_the_bath():
    """The cells the bath's message names accept the window with its tails (check_window
    passes on them), and the largest T_e of the default cell is the closed form above."""
    from lammps_recoil import bath
    from lammps_recoil.builders import build_filament
    from lammps_recoil.check import cells_accepting
    from lammps_recoil.integration import K_B, TAIL_KT
    s = build_filament().recoil_system()
    tail = TAIL_KT * K_B * 300.0
    ok = cells_accepting("001", 3.5956, 1.0, 0.5, s.fermi_level, s.band_edges, (4, 4),
                         count=2, tail=tail)
    assert (4, 4) not in ok and len(ok) == 2
    for nx, ny in ok:
        thin = build_filament(nx=nx, ny=ny, neck_radius=1.5, base_radius=2.0)
        bath.check_window(thin.recoil_system(), 1.0, 0.5, 300.0)     # no error
    assert bath.largest_temperature(s, 1.0, 0.5) == pytest.approx(
        (s.fermi_level - 0.5 - 0.02) / (TAIL_KT * K_B))


def test_check_refuses_a_missing_potential_as_the_run_does(tmp_path, capsys, monkeypatch):
    """From another directory the deck's relative potential path is not found: check
    refuses with the run's message (path and working directory) and prints no OK; an
    explicit potential that exists is checked (its cutoff against the frozen slabs)."""
    from lammps_recoil.hooks import check_inputs
    monkeypatch.chdir(tmp_path)
    assert main(["check", DEFAULT_DATA]) == 2
    out = capsys.readouterr()
    message = (f"missing potential file: potentials/Cu_Sheng2011.eam.alloy (paths are "
               f"relative to the working directory {tmp_path})")
    assert out.err.strip() == f"lammps-recoil: error: {message}" and "OK" not in out.out
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        check_inputs(None, dict(data=DEFAULT_DATA, out=str(tmp_path / "r")))
    assert list(tmp_path.iterdir()) == []                    # nothing written
    assert main(["check", DEFAULT_DATA, "-var", "potential", str(ROOT / POTENTIAL)]) == 0
    assert ">= EAM cutoff 6.5 A" in capsys.readouterr().out
    assert main(["check", str(tmp_path / "none.data")]) == 2
    assert f"missing data file: {tmp_path / 'none.data'}" in capsys.readouterr().err
    assert main(["check", str(tmp_path)]) == 2
    assert f"data file {tmp_path} is a directory, not a file" in capsys.readouterr().err


def test_misspelled_variables_are_refused_naming_the_closest(tmp_path, capsys, monkeypatch):
    """A -var the deck neither defines nor uses is refused by check and by the pip route
    before LAMMPS starts (nothing written), naming the closest defined names; deck
    variables that the Python side does not read (warmup_ps) are accepted by check."""
    from lammps_recoil.driver import run_deck
    monkeypatch.chdir(ROOT)
    assert main(["check", DEFAULT_DATA, "-var", "producton_ps", "5"]) == 2
    err = capsys.readouterr().err
    assert "inputs/in.filament defines no variable producton_ps" in err
    assert "(-var producton_ps (closest: production_ps))" in err
    assert main(["check", DEFAULT_DATA, "-var", "warmup_ps", "1", "-var", "leads",
                 "infinite"]) == 0
    capsys.readouterr()
    pytest.importorskip("mpi4py")
    pytest.importorskip("lammps")
    out = tmp_path / "runs"
    assert run_deck("inputs/in.filament", [("producton_ps", "5"), ("outdir", str(out)),
                                           ("Vmax", "1")]) == 2
    err = capsys.readouterr().err
    assert "defines no variable producton_ps, Vmax" in err
    assert "-var Vmax (closest: V_max" in err
    assert not out.exists()


@pytest.mark.skipif(not HAVE_LMP, reason="Debian lmp with PYTHON not installed")
def test_deck_route_refuses_a_misspelled_variable(tmp_path):
    proc = route1(tmp_path / "runs", "typo", deck=PRODUCTION, producton_ps=5)
    assert proc.returncode != 0
    assert "defines no variable producton_ps (-var producton_ps (closest: production_ps))" \
        in proc.stderr, proc.stderr[-2000:]             # not prod_steps: -var cannot set it
    assert not (tmp_path / "runs").exists()


def test_input_file_is_read_from_the_command_line(tmp_path):
    from lammps_recoil.hooks import input_file
    cmdline = tmp_path / "cmdline"
    cmdline.write_bytes(b"lmp\0-var\0V\0" + b"1\0-in\0" + str(PRODUCTION).encode() + b"\0")
    assert input_file(str(cmdline)) == str(PRODUCTION)
    cmdline.write_bytes(b"lmp\0-var\0V\0" + b"1\0")              # input from stdin
    assert input_file(str(cmdline)) is None


def test_check_labels_both_conductances_and_prints_no_negative_zero(capsys, monkeypatch):
    """check prints G(V) and G(E_F) = T(E_F) (Eq. 7, the system's own conductance at the
    file's geometry), and vectors without -0.0."""
    from lammps_recoil.check import rounded, system_from_data
    monkeypatch.chdir(ROOT)
    assert main(["check", DEFAULT_DATA]) == 0
    out = capsys.readouterr().out
    G_EF = system_from_data(DEFAULT_DATA).conductance()
    assert f"(G(E_F) = {G_EF:.4f} G0)" in out and "Landauer G(V) = " in out
    assert "-0.0," not in out and "-0.0]" not in out
    assert rounded([-1e-7, 0.123449, -0.5]) == [0.0, 0.1234, -0.5]
    assert str(rounded([-1e-7])) == "[0.0]"


def test_variables_the_deck_computes_and_bad_seeds_are_refused(tmp_path, capsys,
                                                                 monkeypatch):
    """-var of a variable the deck computes (prod_steps: equal style, which LAMMPS will not
    redefine over a -var) or that lammps-recoil sets (resume_step) and seeds outside
    LAMMPS's Marsaglia range are refused by check and by the pip route before LAMMPS
    starts, naming the value and what is accepted; nothing is written."""
    from lammps_recoil.driver import run_deck
    from lammps_recoil.params import SEED_MAX
    monkeypatch.chdir(ROOT)
    for var in (["prod_steps", "100"], ["lseed", "3"], ["resume_step", "200"]):
        assert main(["check", DEFAULT_DATA, "-var", *var]) == 2
        err = capsys.readouterr().err
        assert f"-var {var[0]}: inputs/in.filament and lammps-recoil set it" in err
        assert "production_ps" in err                           # what -var does take
    for seed in ("0", "-3", str(SEED_MAX + 1), "1.5"):
        assert main(["check", DEFAULT_DATA, "-var", "seed", seed]) == 2
        assert (f"seed (Langevin and velocity seed) must be an integer from 1 to "
                f"{SEED_MAX}, got '{seed}'") in capsys.readouterr().err
    pytest.importorskip("mpi4py")
    pytest.importorskip("lammps")
    out = tmp_path / "runs"
    for var in (("prod_steps", "100"), ("seed", "0")):
        assert run_deck("inputs/in.filament", [var, ("outdir", str(out))]) == 2
        assert var[0] in capsys.readouterr().err
    assert not out.exists()


def test_a_missing_run_or_file_is_a_one_line_error(tmp_path, capsys, monkeypatch):
    """analyze takes a run's prefix or its .recoil.csv; a missing run, data file or
    control names the path instead of a traceback."""
    monkeypatch.chdir(tmp_path)
    assert main(["analyze", "runs/none.recoil.csv"]) == 2
    assert "no run at runs/none: runs/none.recoil.csv does not exist" in \
        capsys.readouterr().err
    for argv in (["iv", "none.data"], ["report", "--data", "none.data"]):
        assert main(argv) == 2
        assert "error: no such file: none.data" in capsys.readouterr().err


def test_report_of_a_data_file_draws_its_forces(tmp_path, capsys):
    """report --data --figure draws the file's atoms with the recoil-force arrows: at 1 V
    the arrows' colour covers many more pixels than at 0 V (the key's arrow alone)."""
    image = pytest.importorskip("matplotlib.image")
    red = {}
    for V in (0.0, 1.0):
        png = tmp_path / f"f{V:g}.png"
        assert main(["report", "--data", DEFAULT_DATA, "--bias", str(V), "--figure",
                     str(png)]) == 0
        assert f"wrote {png}" in capsys.readouterr().out
        rgb = image.imread(str(png))[..., :3]
        red[V] = int(np.sum((rgb[..., 0] > 0.75) & (rgb[..., 1] < 0.25) & (rgb[..., 2] < 0.35)))
    assert red[1.0] > red[0.0] + 300 and red[0.0] > 0


def test_build_filament_refuses_a_frozen_slab_check_would_refuse(tmp_path, capsys):
    """build-filament refuses frozen slabs thinner than the EAM cutoff (6.5 A) before
    writing, naming the layers needed: 4 of 1.798 A in (001), 4 of 2.076 A in (111); the
    least accepted file passes check."""
    for ori, bad in (("001", 3), ("111", 3)):
        out = tmp_path / f"f{ori}.data"
        size = ["--nx", "5", "--ny", "3"] if ori == "111" else []
        assert main(["build-filament", "--orientation", ori, *size, "--frozen-layers",
                     str(bad), "-o", str(out)]) == 2
        assert "give at least 4 layers" in capsys.readouterr().err and not out.exists()
    out = tmp_path / "ok.data"
    assert main(["build-filament", "--frozen-layers", "4", "-o", str(out)]) == 0
    capsys.readouterr()
    assert main(["check", str(out), "--deck", str(ROOT / "inputs" / "in.filament")]) == 0


def test_a_variable_given_twice_is_refused(tmp_path, capsys, monkeypatch):
    """LAMMPS keeps the first of two -var of one name and ignores the second: check, the
    pip route and the deck route refuse it, naming both values, before any output."""
    from lammps_recoil.hooks import check_deck_variables
    monkeypatch.chdir(ROOT)
    assert main(["check", DEFAULT_DATA, "-var", "V", "1", "-var", "V", "0.5"]) == 2
    assert "-var V is given twice (1 and 0.5)" in capsys.readouterr().err
    cmdline = tmp_path / "cmdline"
    cmdline.write_bytes(b"\0".join([b"lmp", b"-in", b"inputs/in.filament", b"-var",
                                    b"production_ps", b"120", b"-v", b"production_ps",
                                    b"4"]) + b"\0")
    monkeypatch.setattr("lammps_recoil.hooks._argv",
                        lambda cmd="/proc/self/cmdline": cmdline.read_bytes().decode()
                        .split("\0"))
    with pytest.raises(ValueError, match=r"-var production_ps is given twice \(120 and 4\)"):
        check_deck_variables(None)
    pytest.importorskip("mpi4py")
    pytest.importorskip("lammps")
    from lammps_recoil.driver import run_deck
    out = tmp_path / "runs"
    assert run_deck("inputs/in.filament", [("production_ps", "0.3"), ("outdir", str(out)),
                                           ("production_ps", "0.5")]) == 2
    assert "-var production_ps is given twice (0.3 and 0.5)" in capsys.readouterr().err
    assert not out.exists()


def test_bath_zone_chooses_the_filament_atoms_between_its_bounds(capsys, monkeypatch):
    """bath_zlo <= z <= bath_zhi (A, at the data file's positions; INF: unbounded) chooses
    the bath's atoms among the filament's (type 1) alone; a zone without one, reversed
    bounds, or bounds without a bath are refused, with the filament's extent named."""
    from lammps_recoil.bathmd import zone_tags
    data = read_data(str(ROOT / DEFAULT_DATA))
    z = data.positions[:, 2]
    fil = data.types == 1
    for lo, hi in ((-np.inf, np.inf), (-np.inf, 0.0), (0.5, 3.0), (-4.49, 4.49)):
        want = data.ids[fil & (z >= lo) & (z <= hi)]
        np.testing.assert_array_equal(zone_tags(data.ids, data.types, z, lo, hi), np.sort(want))
    assert len(zone_tags(data.ids, data.types, z, -np.inf, np.inf)) == 34
    assert len(zone_tags(data.ids, data.types, z, -np.inf, 0.0)) == 17
    with pytest.raises(ValueError, match="holds no filament atom .type 1.: its 34 atoms lie "
                                         "at z = -4.495 to 4.495 A"):
        zone_tags(data.ids, data.types, z, 1.0, 1.5)
    monkeypatch.chdir(ROOT)
    base = ["check", DEFAULT_DATA, "-var", "Te", "0"]
    for extra, message in (
            (["-var", "bath", "full", "-var", "bath_zlo", "1", "-var", "bath_zhi", "1.5"],
             "bath_zlo = 1 to bath_zhi = 1.5 A holds no filament atom (type 1): its 34 atoms "
             "lie at z = -4.495 to 4.495 A, the nearest below at z = 0.899 A and above at "
             "z = 2.697 A"),
            (["-var", "bath", "full", "-var", "bath_zlo", "2", "-var", "bath_zhi", "-2"],
             "bath_zlo must be below bath_zhi, got bath_zlo 2 A and bath_zhi -2 A"),
            (["-var", "bath_zlo", "-2"], "with bath none they would do nothing"),
            (["-var", "bath", "full", "-var", "bath_zhi", "nan"],
             "bath_zhi (the bath acts on the filament atoms with z <= bath_zhi) must be a "
             "number (A) or INF (no upper bound), got 'nan'"),
            (["-var", "bath", "full", "-var", "bath_zlo", "+INF"],
             "must be a number (A) or INF (no lower bound), got '+INF'")):
        assert main(base + extra) == 2, extra
        assert message in capsys.readouterr().err, extra
    # a value that argparse alone would take for an option (LAMMPS takes it as the value)
    assert main(base + ["-var", "bath", "full", "-var", "bath_zlo", "-1e1", "-var",
                        "bath_zhi", "-0.5"]) == 0
    assert "electronic bath on 17 filament atoms (z from -10 to -0.5 A)" in \
        capsys.readouterr().out
    assert main(base + ["-var", "bath", "full", "-var", "bath_zlo", "-INF"]) == 2
    assert "must be a number (A) or INF (no lower bound), got '-INF'" in \
        capsys.readouterr().err
    # a bound 0.3 A from the layer at z = 0.9 A: accepted, with a note that the zone is
    # chosen after minimization and warm-up
    assert main(base + ["-var", "bath", "full", "-var", "bath_zlo", "-2", "-var", "bath_zhi",
                        "0.6"]) == 0
    out, err = capsys.readouterr()
    assert "electronic bath on 5 filament atoms (z from -2 to 0.6 A)" in out, out
    near = data.ids[fil & (np.abs(z - 0.6) < 0.5)].tolist()
    assert len(near) == 5
    assert f"note: filament atoms {near} lie within 0.5 A of bath_zhi = 0.6 A" in out, out


def test_bath_too_large_for_the_memory_is_refused(capsys, monkeypatch):
    """The kernels of N filament atoms hold KERNEL_BYTES (3N)^2 per energy point of a round
    of up to KERNEL_POINTS: a machine with less memory than that for the default filament's
    34 atoms refuses the bath before anything runs, naming the atoms, the memory and the
    most atoms it accepts (the inverse of the estimate); with enough memory check states
    the estimate."""
    from lammps_recoil import bath, parallel
    from lammps_recoil.check import _check_bath_size
    assert bath.kernel_memory(34) == 32 * 102 ** 2 * 180
    limit = 0.99 * bath.kernel_memory(100)
    assert bath.largest_kernel_atoms(limit) == 99
    assert "99 filament atoms: one computation" in _check_bath_size(99, limit)
    with pytest.raises(ValueError, match="up to 99 filament atoms here"):
        _check_bath_size(100, limit)
    # every rank on the node holds its own rows: 4 ranks accept half the atoms
    assert "49 filament atoms: one computation" in _check_bath_size(49, limit, ranks=4)
    with pytest.raises(ValueError, match="for the 4 MPI ranks on this machine, more than its "
                                         ".*up to 49 filament atoms here with 4 ranks"):
        _check_bath_size(50, limit, ranks=4)
    monkeypatch.chdir(ROOT)
    monkeypatch.setattr(parallel, "node_memory", lambda: bath.kernel_memory(20.5))
    assert main(["check", DEFAULT_DATA, "-var", "bath", "friction", "-var", "Te", "0"]) == 2
    err = capsys.readouterr().err
    for text in ("electronic bath on 34 filament atoms", "up to 20 filament atoms here",
                 "-var bath none", "-var bath_zlo and -var bath_zhi"):
        assert text in err, err
    # the filament's middle layers (z = -0.9 and 0.9 A, 5 atoms each) fit; the kernels'
    # memory is that of those atoms alone
    zone = ["-var", "bath_zlo", "-2", "-var", "bath_zhi", "2"]
    assert main(["check", DEFAULT_DATA, "-var", "bath", "friction", "-var", "Te", "0"]
                + zone) == 0
    out = capsys.readouterr().out
    assert f"electronic bath on 10 filament atoms (z from -2 to 2 A): one computation of " \
           f"its kernels holds about {bath.kernel_memory(10) / 2**30:.2g} GB" in out, out
    monkeypatch.undo()
    monkeypatch.chdir(ROOT)
    assert main(["check", DEFAULT_DATA, "-var", "bath", "friction", "-var", "Te", "0"]) == 0
    assert "electronic bath on 34 filament atoms: one computation of its kernels holds " \
           "about 0.056 GB per MPI rank" in capsys.readouterr().out


def test_the_data_check_says_where_mixed_precision_solves_in_double(tmp_path):
    """On a device above SCHUR_MAX atoms the data check (lammps-recoil check, the deck's
    check) notes where precision "mixed" solves in double: below SINGLE_TOL and with bond
    currents, naming the reason; not for these reasons at the deck's tolerance, nor with
    precision "double"."""
    f = build_filament(orientation="111", nx=6, ny=4, frozen_layers=2, electrode_layers=3,
                       gap_layers=4, neck_radius=3.0, base_radius=4.0)
    path = tmp_path / "wide.data"
    f.write_data(str(path))

    def notes(**kw):
        rep = check_data(str(path), device="mobile", time_update=False, **kw)
        return [n for n in rep.notes if n.startswith("precision mixed")]

    assert notes(tol=1e-6) == [
        "precision mixed: the forces of this 311-atom device are solved in double "
        "precision, as tol 1e-06 is below SINGLE_TOL = 0.0001 eV/A (docs/large.md)"]
    assert "as bond currents are on" in notes(tol=1e-2, currents=True)[0]
    assert not any("SINGLE_TOL" in n or "bond currents" in n for n in notes(tol=1e-2))
    assert notes(tol=1e-6, precision="double") == []
