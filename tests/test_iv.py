"""Static I-V curves of one geometry (iv_curve and ``lammps-recoil iv``) against independent
integrals of T(E), the forces of single solves, and the mirror symmetry V -> -V."""
import numpy as np
import pytest
from conftest import build_filament, displaced

from lammps_recoil import G0_SIEMENS
from lammps_recoil.check import system_from_data
from lammps_recoil.cli import main, parse_biases
from lammps_recoil.iv import iv_curve
from lammps_recoil.plots import read_csv


@pytest.fixture(scope="module")
def filament():
    return build_filament(nx=2, ny=2, frozen_layers=2, electrode_layers=1, gap_layers=4,
                          shape="cylinder", neck_radius=1.3)


def test_curve_against_independent_solves(filament):
    """Each bias: I equals the adaptive integral of T(E) over the window (system.current at
    tight tolerance), G(V) = I / (G0 V), the forces those of a separate solve; V = 0 gives
    I = 0 and G = T(E_F)."""
    s = filament.recoil_system()
    s.update(displaced(s.positions, 0.08, 5))
    fil = filament.mask("filament")[filament.device("filament")]
    V = np.array([0.0, 0.3, -0.6, 0.9])
    curve = iv_curve(s, V, tol=1e-6, atoms=fil)
    for k, v in enumerate(V):
        assert curve.current[k] == pytest.approx(s.current(v, tol=1e-8), rel=1e-5, abs=1e-9)
        r = s.forces(v, tol=1e-6)
        np.testing.assert_allclose(curve.force[k], r.forces[fil].sum(axis=0), atol=1e-5)
        assert curve.max_force[k] == pytest.approx(
            np.linalg.norm(r.forces[fil], axis=1).max(), abs=1e-5)
    nz = V != 0
    np.testing.assert_allclose(curve.conductance[nz],
                               curve.current[nz] / (G0_SIEMENS * 1e6 * V[nz]), rtol=1e-12)
    assert curve.current[0] == 0.0
    assert curve.conductance[0] == pytest.approx(s.transmission(s.fermi_level)[0], abs=1e-12)
    np.testing.assert_allclose(curve.fermi_transmission, curve.conductance[0], atol=1e-12)


def test_mirror_symmetric_filament_is_odd_in_v(filament):
    """The ideal filament is mirror symmetric in z: at beta = 1/2, I(-V) = -I(V) and the
    total force on the filament reverses along z."""
    s = filament.recoil_system()
    fil = filament.mask("filament")[filament.device("filament")]
    curve = iv_curve(s, [0.4, -0.4, 0.8, -0.8], tol=1e-6, atoms=fil)
    np.testing.assert_allclose(curve.current[1::2], -curve.current[::2], rtol=1e-6)
    np.testing.assert_allclose(curve.force[1::2, 2], -curve.force[::2, 2], atol=1e-5)
    assert curve.force[2, 2] > curve.force[0, 2] > 0


def test_cli_table_and_refusal(filament, tmp_path, capsys):
    """lammps-recoil iv writes the curve of the data file's geometry (the CSV's currents
    are system.current of that file); a bias whose window meets the 2x2 cell's flat band
    (E = 0) is refused before anything is written."""
    data = tmp_path / "f.data"
    filament.write_data(str(data))
    out = tmp_path / "iv"
    assert main(["iv", str(data), "--biases", "0.2,0.5", "-o", str(out)]) == 0
    table = read_csv(str(out) + ".csv")
    s = system_from_data(str(data))
    np.testing.assert_allclose(table["V"], [0.2, 0.5])
    for v, I in zip(table["V"], table["I_uA"]):
        assert I == pytest.approx(s.current(v, tol=1e-8), rel=1e-4)
    bad = tmp_path / "bad"
    capsys.readouterr()
    assert main(["iv", str(data), "--biases", "0.5", "1.4", "-o", str(bad)]) == 2
    assert not (tmp_path / "bad.csv").exists() and not (tmp_path / "bad.png").exists()
    assert "flat band" in (err := capsys.readouterr().err)
    assert "(here: --leads infinite, or --lead-eta 0.01)" in err       # the command's flags


def test_bias_lists_and_ranges():
    np.testing.assert_allclose(parse_biases(["0:1:0.25"]), [0, 0.25, 0.5, 0.75, 1.0])
    np.testing.assert_allclose(parse_biases(["1:-1:-1,0.3", "2"]), [1, 0, -1, 0.3, 2])
    for bad in ("one", "0:1:-0.1", "0:1:0", "0:1"):
        with pytest.raises(ValueError, match="bias"):
            parse_biases([bad])


def test_cli_takes_infinite_leads(tmp_path):
    """`iv --leads infinite` solves the shipped filament between laterally infinite leads:
    its total filament force equals system_from_data(leads="infinite")'s, about twice
    the periodic cell's (docs/geometry.md), and its current is that system's."""
    from pathlib import Path
    data = str(Path(__file__).resolve().parents[1] / "inputs" / "filament.data")
    out = {}
    for leads in ("periodic", "infinite"):
        prefix = str(tmp_path / leads)
        assert main(["iv", data, "--biases", "1", "--leads", leads, "--tol", "1e-4",
                     "-o", prefix]) == 0
        out[leads] = read_csv(prefix + ".csv")
    s = system_from_data(data, leads="infinite")
    r = s.forces(1.0, tol=1e-4)
    assert out["infinite"]["Frec_z"][0] == pytest.approx(r.forces[:, 2].sum(), abs=1e-3)
    assert out["infinite"]["I_uA"][0] == pytest.approx(s.current(1.0, tol=1e-6), rel=1e-3)
    assert 1.7 < out["infinite"]["Frec_z"][0] / out["periodic"]["Frec_z"][0] < 2.1
