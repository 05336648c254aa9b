"""Bad input gives a clear error that names the problem."""
import numpy as np
import pytest
from conftest import build_filament, perfect_system

from lammps_recoil import LayeredLead, RecoilSystem, WireLead, fcc_lattice
from lammps_recoil.chain import chain_system
from lammps_recoil.forces import require_finite


@pytest.fixture(scope="module")
def fil():
    f = build_filament(nx=2, ny=2, frozen_layers=2, electrode_layers=1, gap_layers=3,
                       shape="cylinder", neck_radius=1.3)
    return f, f.recoil_system(device="mobile")


def test_overlapping_atoms(fil):
    _, s = fil
    x = s.positions.copy()
    x[9] = x[8] + [0.3, 0, 0]
    with pytest.raises(ValueError, match="overlapping atoms: device atom 8 and device atom 9"):
        s.update(x)


def test_nan_coordinates(fil):
    _, s = fil
    x = s.positions.copy()
    x[4, 1] = np.nan
    with pytest.raises(ValueError, match=r"non-finite.*\[4\]"):
        s.update(x)


def test_non_finite_energies(fil):
    """A NaN or inf energy is refused by the leads, layered and wire alike, naming its
    position."""
    _, s = fil
    with pytest.raises(ValueError, match=r"energies must be finite \(eV\), got nan at position 1"):
        s.transmission([0.1, np.nan])
    wire = WireLead([[0, 0, -2.5]], [0, 0, -2.5], "left")
    with pytest.raises(ValueError, match="energies must be finite"):
        wire.surface_gf(np.inf)


def test_empty_device(fil):
    _, s = fil
    with pytest.raises(ValueError, match="device is empty"):
        s.update(np.zeros((0, 3)))


def test_device_without_contact_to_a_lead(fil):
    f, s = fil
    x = f.positions[f.device("mobile")]
    keep = x[:, 2] < 1.0           # cut away the right half: nothing bonds to the right lead
    with pytest.raises(ValueError, match="no bond to the right lead"):
        RecoilSystem(x[keep], *f.leads(), box=f.box)


def test_isolated_atom(fil):
    f, s = fil
    x = s.positions.copy()
    x[9, :2] += 3.5                 # the middle filament atom leaves the chain sideways
    with pytest.raises(ValueError, match=r"device atoms \[9\] are not connected"):
        s.update(x)


def test_atom_reaching_past_the_lead_block():
    f = build_filament(nx=2, ny=2, frozen_layers=1, electrode_layers=1, gap_layers=3,
                       shape="cylinder", neck_radius=1.3)
    s = f.recoil_system(device="mobile")
    x = s.positions.copy()
    x[0, 2] -= 0.3        # an electrode atom sinks toward the lead's (unmodelled) 2nd layer
    with pytest.raises(ValueError, match=r"device atoms \[0\] come within the hopping "
                                         "cutoff of the left lead beyond its 1 surface layer"):
        s.update(x)


def test_leads_touching():
    s = perfect_system("001", 2, 2, layers=1)
    left, right = s.leads
    shifted = LayeredLead(fcc_lattice("001"), right.positions - [0, 0, 1.79782], "right",
                          box=s.box)
    with pytest.raises(ValueError, match="leads are bonded to each other"):
        RecoilSystem(s.positions[:1] + [0, 0, 30.0], left, shifted, box=s.box)


@pytest.mark.parametrize("kw, message", [
    (dict(bias=1.0, beta=1.5), r"beta .* must lie in \[0, 1\], got 1.5"),
    (dict(bias=1.0, beta=-0.1), r"beta .* must lie in \[0, 1\]"),
    (dict(bias=np.nan), "bias must be a finite"),
    (dict(bias=6.0), "leaves the lead band"),
    (dict(bias=1.0, temperature=-5.0), "temperature must be >= 0"),
    (dict(bias=1.0, model="magic"), "force model must be one of"),
    (dict(bias=1.0, n_points=0), r"\(n_points\) must be a positive integer, got 0"),
    (dict(bias=1.0, n_points=2.5), r"\(n_points\) must be a positive integer, got 2.5"),
    (dict(bias=1.0, full=True, full_points=0), "full_points must be a positive integer"),
])
def test_bad_bias_parameters(fil, kw, message):
    _, s = fil
    with pytest.raises(ValueError, match=message):
        s.forces(**kw)


@pytest.mark.parametrize("bias", ["1.0", None, [1.0, 0.5], np.array([1.0]), 1 + 0.5j, True])
def test_a_bias_that_is_not_one_real_number(fil, bias):
    """Strings, None, sequences, complex numbers and booleans are refused by name (True is
    not 1 V); numpy scalars and 0-d arrays are numbers."""
    _, s = fil
    with pytest.raises(TypeError, match=r"bias \(V\) must be one real number, got"):
        s.forces(bias)
    with pytest.raises(TypeError, match="beta must be one real number"):
        s.conductance(0.5, beta="0.5")
    assert s.forces(np.float64(0.3)).total == pytest.approx(s.forces(np.array(0.3)).total,
                                                             abs=1e-14)


def test_device_parameters(fil):
    """A negative broadening, a non-finite Fermi level, on-site energies of the wrong
    length or NaN, a Bloch index out of range and an update with other atoms are refused
    with the value found; a refused update leaves the system as it was."""
    f, s = fil
    x, (left, right) = s.positions, f.leads()
    with pytest.raises(ValueError, match=r"eta .* must be >= 0, got -0.05"):
        RecoilSystem(x, left, right, box=f.box, eta=-0.05)
    with pytest.raises(ValueError, match="fermi_level must be a finite energy in eV, got nan"):
        RecoilSystem(x, left, right, box=f.box, fermi_level=np.nan)
    with pytest.raises(ValueError, match=r"E_F = 100.0000 eV lies outside the lead band"):
        RecoilSystem(x, left, right, box=f.box, fermi_level=100.0).forces(0.5)
    with pytest.raises(ValueError, match=rf"one per device atom \({len(x)}\), got 3"):
        RecoilSystem(x, left, right, box=f.box, onsite=np.zeros(3))
    with pytest.raises(ValueError, match=r"must be finite: not for atoms \[0, 1"):
        RecoilSystem(x, left, right, box=f.box, onsite=np.full(len(x), np.nan))
    with pytest.raises(ValueError, match="ik must be a Bloch vector index 0..0, got 5"):
        s.channels(ik=5)
    g = s.conductance()
    with pytest.raises(ValueError, match=rf"same {len(x)} device atoms, got {len(x) - 1}"):
        s.update(x[:-1])
    assert s.conductance() == g


def test_nan_in_a_data_file_names_the_atom_id(tmp_path):
    """A NaN coordinate in a data file is named by its LAMMPS atom ID when the file is
    read, by check and from Python alike."""
    from lammps_recoil.check import read_data
    f = build_filament(nx=2, ny=2, frozen_layers=2, electrode_layers=1, gap_layers=3,
                       shape="cylinder", neck_radius=1.3)
    path = tmp_path / "nan.data"
    f.write_data(str(path))
    lines = path.read_text().splitlines()
    k = lines.index("Atoms # atomic") + 2 + 6            # the seventh atom line
    words = lines[k].split()
    words[2] = "nan"
    lines[k] = " ".join(words)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=rf"coordinates for atom IDs \[{words[0]}\]"):
        read_data(str(path))


def test_window_on_a_flat_band():
    s = perfect_system("001", 2, 2, layers=2)
    with pytest.raises(ValueError, match="flat band at E = 0.0000 eV"):
        s.forces(1.0, beta=0.0)


def test_bad_k_grid_and_lead_order(fil):
    f, s = fil
    left, right = f.leads()
    with pytest.raises(ValueError, match="k-point grid must be positive"):
        RecoilSystem(s.positions, left, right, box=f.box, kpoints=0)
    with pytest.raises(ValueError, match="left lead first"):
        RecoilSystem(s.positions, right, left, box=f.box)
    with pytest.raises(ValueError, match="box"):
        RecoilSystem(s.positions, left, right, box=f.box * 2)


def test_lead_side_and_box():
    with pytest.raises(ValueError, match="side must be 'left' or 'right'"):
        LayeredLead(fcc_lattice("001"), np.zeros((1, 3)), "top")
    with pytest.raises(ValueError, match="periodic box must be two positive"):
        LayeredLead(fcc_lattice("001"), np.zeros((1, 3)), "left", box=(-1, 3))


def test_non_finite_forces_are_refused():
    with pytest.raises(FloatingPointError, match=r"not finite on device atoms \[2\]"):
        require_finite(np.array([[0.0, 0, 0], [1, 2, 3], [0, np.nan, 0]]))


def test_chain_needs_negative_hopping():
    with pytest.raises(ValueError, match="must be negative"):
        chain_system(1.0, 1.0, t=1.8)
    with pytest.raises(ValueError, match="spacing a must be a positive distance in A, got 0"):
        chain_system(-1.8, -1.8, a=0.0)
    with pytest.raises(ValueError, match="zeta .* must be positive, in 1/A, got -0.4"):
        chain_system(-1.8, -1.8, zeta=-0.4)
    with pytest.raises(ValueError, match="n_side .* must be an integer >= 0, got -1"):
        chain_system(-1.8, -1.8, n_side=-1)


@pytest.mark.parametrize("kw, message", [
    (dict(a0=np.nan), r"a0 \(the lattice constant\) must be a positive length in A, got nan"),
    (dict(a0=-3.6), r"a0 .* got -3.6"),
    (dict(neck_radius=np.nan), "neck_radius must be a positive length in A, got nan"),
    (dict(base_radius=0.0), "base_radius must be a positive length in A, got 0.0"),
])
def test_builder_lengths(kw, message):
    with pytest.raises(ValueError, match=message):
        build_filament(**kw)
