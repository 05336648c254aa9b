"""States the leads cannot broaden: found in closed form, and kept out of Eq. 9's window.

The systems are two-leg ladders between ladder wire leads (``WireLead`` cells of one rung).
Swapping the legs is a symmetry, so the even (bonding) and odd (antibonding) rung states
form two decoupled chains with on-site energies +t_r and -t_r (t_r the rung hopping) and
the leg hopping t_l; a device rung with its on-site energies shifted by Delta is a
one-site impurity in each chain. An impurity Delta in a chain of on-site e and hopping t
binds one state at

    E_b = e + sign(Delta) sqrt(Delta^2 + 4 t^2)

(the textbook result for a single site in an infinite chain; the device's other rungs are
ideal chain sites). With Delta < 0 the odd chain's state lies below the odd band but
inside the even band: a bound state in the continuum that only the odd channel's
evanescent tail reaches, so a lead eta gives it a Lorentzian of full weight. With short
rungs and long legs the two subbands leave a gap, and a positive Delta puts the even
chain's state in it.

The leads are exact (``WireLead`` at eta = 0: modes at real energy), so the states are real
poles of zero width; broadened leads (decimation at E + i eta) give them Lorentzians of
width ~eta, which are removed.
"""
import numpy as np
import pytest
from conftest import run_on_ranks, wire_constriction

from lammps_recoil import (HoppingModel, LayeredLead, RecoilSystem, WireLead,
                           chain_lattice)
from lammps_recoil.boundstates import BOUND_WIDTH_FACTOR
from lammps_recoil.integration import adaptive_integral, bias_window

HOP = HoppingModel()


def ladder(eta, fermi_level, rung=2.5, leg=2.5, delta=-0.5, n_rungs=6, defect=2):
    cell = np.array([[-rung / 2, 0.0, 0.0], [rung / 2, 0.0, 0.0]])
    device = np.concatenate([cell + [0.0, 0.0, leg * (k + 1)] for k in range(n_rungs)])
    left = WireLead(cell, [0.0, 0.0, -leg], "left", HOP, eta=eta)
    right = WireLead(cell + [0.0, 0.0, leg * (n_rungs + 1)], [0.0, 0.0, leg], "right", HOP,
                     eta=eta)
    onsite = np.zeros(len(device))
    onsite[2 * defect:2 * defect + 2] = delta
    return RecoilSystem(device, left, right, HOP, fermi_level=fermi_level, onsite=onsite)


def impurity_state(e, t, delta):
    return e + np.sign(delta) * np.sqrt(delta ** 2 + 4 * t ** 2)


T_RUNG = T_LEG = HOP.hopping(2.5)[0]
#: the odd chain (on-site -t_r) with the impurity -0.5 eV: below the odd band, inside the
#: even band [t_r - 2|t_l|, t_r + 2|t_l|]
E_BIC = impurity_state(-T_RUNG, T_LEG, -0.5)


def test_wire_channel_edges_are_the_ladder_subband_edges():
    edges = ladder(1e-9, 0.0).leads[0].channel_edges()
    expected = np.sort([s * T_RUNG + c * 2 * T_LEG for s in (1, -1) for c in (1, -1)])
    assert edges == pytest.approx(expected, abs=1e-9)
    assert ladder(1e-9, 0.0).band_edges == pytest.approx((expected[0], expected[-1]), abs=1e-9)


def test_bound_state_in_the_continuum_found_in_closed_form():
    assert T_RUNG - 2 * abs(T_LEG) < E_BIC < -T_RUNG - 2 * abs(T_LEG)   # even band, odd gap
    for eta in (0.0, 1e-10, 1e-8):
        s = ladder(eta, -0.7)
        (b,) = s.unbroadened_states(-0.85, -0.55)
        assert b.energy == pytest.approx(E_BIC, abs=1e-11)
        w = b.device_weight
        assert w[0::2] == pytest.approx(w[1::2], rel=1e-9)      # odd: both legs alike
        # the odd chain's impurity state decays as q^|n| from the defect rung (n = 2):
        # q = |E - e|/|t| - sqrt(...) with e the odd on-site energy
        x = abs(E_BIC + T_RUNG) / abs(T_LEG) / 2
        q = x - np.sqrt(x * x - 1)
        rung_weight = w[0::2] + w[1::2]
        assert rung_weight[3] / rung_weight[2] == pytest.approx(q ** 2, rel=1e-6)
        assert rung_weight[1] / rung_weight[2] == pytest.approx(q ** 2, rel=1e-6)
        # the whole weight, device and tails, is one, and only eta broadens it: exact
        # leads not at all
        assert w.sum() + sum(b.lead_weights) == pytest.approx(1.0, abs=1e-8)
        if eta == 0.0:
            assert b.width < 1e-15
        else:
            assert 0 < b.width <= 2 * eta * (1 + 1e-6)
            assert b.width == pytest.approx(2 * eta * sum(b.lead_weights), rel=1e-4)


def test_bound_state_in_a_subband_gap_found_in_closed_form():
    t_r, t_l = HOP.hopping(1.6)[0], HOP.hopping(3.2)[0]
    gap = (t_r + 2 * abs(t_l), -t_r - 2 * abs(t_l))          # even band top, odd bottom
    E_gap = impurity_state(t_r, t_l, 0.8)
    assert gap[0] < E_gap < gap[1]
    s = ladder(0.0, -0.3, rung=1.6, leg=3.2, delta=0.8)
    (b,) = s.unbroadened_states(-0.6, 0.0)
    assert b.energy == pytest.approx(E_gap, abs=1e-11)
    assert b.width <= 1e-15
    # no channel is open at E_gap: the window's forces do not see the state, and broadened
    # leads differ only by their own smooth O(eta)
    f = [ladder(eta, -0.3, rung=1.6, leg=3.2, delta=0.8).forces(0.6, tol=1e-6)
         for eta in (0.0, 1e-12, 1e-8)]
    assert all(r.n_unbroadened == 1 for r in f)
    for r, eta in zip(f[1:], (1e-12, 1e-8)):
        assert np.abs(r.forces - f[0].forces).max() <= (10 * eta + 1e-9) * np.abs(
            f[0].forces).max()


def test_a_state_a_micro_ev_from_a_channel_edge_is_found():
    """An impurity Delta = -1.6 meV binds the odd chain's state 1e-6 eV below its subband
    bottom (inside the even band), with 99% of its weight in the lead tails: found at the
    closed-form energy between exact leads, and between broadened ones with a width of
    2 eta times that weight (its norm's Lambda' taken on the state's side of the edge)."""
    t = abs(T_LEG)
    delta = -np.sqrt((1e-6 + 2 * t) ** 2 - 4 * t * t)
    E = impurity_state(-T_RUNG, T_LEG, delta)
    assert -T_RUNG - 2 * t - E == pytest.approx(1e-6, rel=1e-6)
    for eta in (0.0, 1e-9):
        (b,) = ladder(eta, E + 0.05, delta=delta).unbroadened_states(E - 1e-3, E + 1e-3)
        assert b.energy == pytest.approx(E, abs=1e-10)
        assert sum(b.lead_weights) > 0.99
        assert b.width == pytest.approx(2 * eta * sum(b.lead_weights), rel=1e-2, abs=1e-15)


def test_exact_leads_are_the_limit_of_broadened_ones():
    """Exact leads have no eta: their forces and conductance are the eta -> 0 limit of
    broadened leads with the bound state's Lorentzian removed. What is left of a lead
    eta from 1e-12 to 1e-6 eV is linear in it (the broadened lead's own smooth change,
    3.6 eta/eV relative); without the removal a fixed rule sees far more."""
    ref = ladder(0.0, -0.7).forces(0.3, tol=1e-6)
    assert ref.error <= 1e-6                                  # converged at tol 1e-6
    assert ref.n_unbroadened == 1 and ref.unbroadened[0].energy == pytest.approx(E_BIC)
    scale = np.abs(ref.forces).max()
    change = {}
    for eta in (1e-12, 1e-10, 1e-8, 1e-6):
        r = ladder(eta, -0.7).forces(0.3, tol=1e-6)
        assert r.error <= 1e-6
        change[eta] = np.abs(r.forces - ref.forces).max() / scale
        assert change[eta] <= 4 * eta + 1e-9
        assert abs(r.conductance - ref.conductance) <= 4 * eta + 1e-9
    assert change[1e-6] / change[1e-8] == pytest.approx(100, rel=0.05)      # linear
    broad = [ladder(eta, -0.7).forces(0.3, tol=1e-9).forces for eta in (1e-8, 2e-8)]
    exact = ladder(0.0, -0.7).forces(0.3, tol=1e-9).forces
    assert np.abs(2 * broad[0] - broad[1] - exact).max() <= 1e-8 * scale
    fixed = [ladder(eta, -0.7).forces(0.3, n_points=3000, unbroadened=False).forces
             for eta in (1e-10, 1e-8)]
    assert np.abs(fixed[1] - fixed[0]).max() / scale > 10 * (10 * 1e-8)


def test_agrees_with_a_brute_force_rule_that_steps_over_the_state():
    """With exact leads the state carries no weight: a fixed rule whose nodes stay far
    from it integrates the scattering states alone (window [-0.86, -0.70] eV, no channel
    edge inside)."""
    bias, EF = 0.16, -0.78
    s = ladder(0.0, EF)
    seg_nodes, _ = bias_window(EF, bias)[0].nodes(2000)
    assert np.abs(seg_nodes - E_BIC).min() > 1e-7
    brute = s.forces(bias, n_points=2000, unbroadened=False)
    r = ladder(0.0, EF).forces(bias, tol=1e-7)
    assert np.abs(r.forces - brute.forces).max() <= 1e-7
    assert r.conductance == pytest.approx(brute.conductance, abs=1e-6)


@pytest.mark.parametrize("beta", [0.0, 0.5])
def test_error_estimate_holds_with_channel_edges_in_the_window(beta):
    """The window ([-0.9, -0.6] eV at beta = 0) holds the odd subband's bottom edge and the
    bound state; the true error against an integral with ten times the points is below
    the tolerance."""
    s = ladder(0.0, -0.6 if beta == 0.0 else -0.75)
    assert np.any(np.abs(s._kinks() - (-T_RUNG - 2 * abs(T_LEG))) < 1e-9)
    ref = s.forces(0.3, beta=beta, tol=1e-12)
    for tol in (1e-4, 1e-6):
        r = s.forces(0.3, beta=beta, tol=tol)
        assert np.abs(r.forces - ref.forces).max() <= tol
        assert abs(r.conductance - ref.conductance) <= tol
    assert ref.n_energies >= 10 * r.n_energies


@pytest.fixture(scope="module")
def constriction():
    return wire_constriction("001", (2.2, 2.2, 1.9, 1.9, 2.2, 2.2), fermi_level=-0.2)


@pytest.mark.parametrize("model", ["paper", "hellmann-feynman"])
def test_error_estimate_holds_on_a_wire_constriction_at_beta_zero(constriction, model):
    """A 30-atom fcc(001) constriction between exact wire leads of six atoms per cell,
    V = 1 V at beta = 0 (window [-1.2, -0.2] eV): three channel edges of the wire and a
    state no channel broadens lie inside. The true error of forces, conductance and
    charges against an integral with ten times the points is below the tolerance."""
    s = constriction
    edges = np.unique(np.round(s._kinks(), 9))
    assert np.count_nonzero((edges > -1.2) & (edges < -0.2)) == 3
    ref = s.forces(1.0, beta=0.0, tol=1e-13, model=model)
    assert any(-1.2 < b.energy < -0.2 and b.width < 1e-15 for b in ref.unbroadened)
    for tol in (1e-4, 1e-6):
        r = s.forces(1.0, beta=0.0, tol=tol, model=model)
        assert r.error <= tol
        assert np.abs(r.forces - ref.forces).max() <= tol
        assert abs(r.conductance - ref.conductance) <= tol
        assert np.abs(r.density - ref.density).max() <= tol
    assert ref.n_energies >= 10 * r.n_energies


def test_unbroadened_states_of_lossless_leads_carry_no_weight():
    """With eta = 0 in the leads and the device a bound state has no Lorentzian: looking
    for it ('auto' does not) changes nothing but the integration's interval ends."""
    from lammps_recoil.builders import build_filament
    s = build_filament().recoil_system()
    a = s.forces(1.0, tol=1e-6)
    b = s.forces(1.0, tol=1e-6, unbroadened=True)
    assert a.unbroadened == b.unbroadened == ()
    assert np.abs(a.forces - b.forces).max() <= 1e-6
    with pytest.raises(ValueError, match="unbroadened must be"):
        s.forces(1.0, unbroadened="yes")


def test_width_threshold_separates_eta_from_open_channels():
    """Breaking the leg symmetry (one atom of the defect rung moved by 0.05 A along z)
    couples the odd state to the open even channel: a resonance, no longer unbroadened."""
    s = ladder(0.0, -0.7)
    x = s.positions.copy()
    x[4, 2] += 0.05
    s.update(x)
    assert s.unbroadened_states(-0.85, -0.55) == []
    assert BOUND_WIDTH_FACTOR * 1e-9 < 1e-6


def two_path_loop(onsite, fermi_level=0.0):
    """A site on the axis of the left chain lead, two sites A, B at x = +-1.8 A (3.6 A
    apart: no A-B bond), a site on the axis of the right chain lead. Each of A, B bonds to
    both axis sites by mirror images, so the odd combination (A - B)/sqrt 2 couples to
    nothing: a bound state in the continuum at exactly the on-site energy of A and B."""
    lat = chain_lattice(2.5)
    device = np.array([[0.0, 0.0, 0.0], [1.8, 0.0, 1.6], [-1.8, 0.0, 1.6], [0.0, 0.0, 3.2]])
    left = LayeredLead(lat, [[0.0, 0.0, -2.5]], "left", HOP)
    right = LayeredLead(lat, [[0.0, 0.0, 5.7]], "right", HOP)
    return RecoilSystem(device, left, right, HOP, onsite=[0.0, onsite, onsite, 0.0],
                        fermi_level=fermi_level)


def first_round_nodes(system, bias):
    """The energies of the adaptive rule's first round on the bias window."""
    seen = []

    def record(E):
        seen.append(E)
        return np.zeros((len(E), 1))

    adaptive_integral(record, bias_window(system.fermi_level, bias)[0].pieces(system._kinks()),
                      tol=np.inf)
    return seen[0]


def test_a_node_on_an_undetected_state_is_cut_and_the_integral_redone():
    """Chain leads are exact and not searched: a node of the rule exactly on the loop's
    state, where G_F(E)^-1 is singular, becomes an interval end, the state is reported,
    and the forces are those of the same rule cut there beforehand (``unbroadened=True``)
    and continuous in the state's energy."""
    node = first_round_nodes(two_path_loop(0.1), 0.5)[9]
    s = two_path_loop(node)
    (b,) = s.unbroadened_states(node, node)
    assert b.energy == pytest.approx(node, abs=1e-12) and b.width < 1e-15
    with pytest.raises(FloatingPointError, match=f"singular at E = {float(node)!r} eV"):
        s.transmission([node])
    r = s.forces(0.5, tol=1e-8)
    assert r.n_unbroadened == 1 and r.unbroadened[0].energy == pytest.approx(node, abs=1e-12)
    cut = s.forces(0.5, tol=1e-8, unbroadened=True)
    assert np.abs(r.forces - cut.forces).max() <= 1e-12
    near = two_path_loop(node + 1e-9).forces(0.5, tol=1e-8)
    assert near.n_unbroadened == 0
    assert np.abs(r.forces - near.forces).max() <= 1e-8
    assert s.conductance(0.5, tol=1e-8) == pytest.approx(near.conductance, abs=1e-8)
    # a node of a fixed rule
    nodes, _ = bias_window(0.0, 0.5)[0].nodes(16)
    s = two_path_loop(nodes[5])
    fixed = s.forces(0.5, n_points=16)
    assert fixed.n_unbroadened == 1
    assert np.abs(fixed.forces - s.forces(0.5, n_points=16, unbroadened=True).forces).max() \
        <= 1e-12


def test_the_pole_check_reads_nan_and_infinities_as_out_of_bounds():
    """The check on the solved columns (|Re|, |Im| <= G_SINGULAR) fails on a NaN or an
    infinity anywhere, holds on the bound itself and on an empty array."""
    from lammps_recoil.system import G_SINGULAR, _within
    a = np.linspace(-G_SINGULAR, G_SINGULAR, 12).reshape(3, 4)
    assert _within(a, G_SINGULAR) and _within(np.zeros((0, 3)), G_SINGULAR)
    for bad in (np.nan, np.inf, -np.inf, 1.0001 * G_SINGULAR, -1.0001 * G_SINGULAR):
        b = a.copy()
        b[2, 1] = bad
        assert not _within(b, G_SINGULAR)


def test_a_state_exactly_at_the_fermi_level_leaves_t_of_ef_finite():
    """The state at E_F, where T(E_F) is probed: T is analytic through a pole of zero
    width, so T(E_F) is the limit of its values on both sides."""
    s = two_path_loop(0.0)
    T = s.transmission([-1e-4, 1e-4]).mean()
    assert s.forces(0.5, tol=1e-6).fermi_transmission == pytest.approx(T, abs=1e-8)
    assert s.conductance(0.0) == pytest.approx(T, abs=1e-8)


MPI_RUN = """
import sys
import numpy as np
from mpi4py import MPI
sys.path.insert(0, "tests")
from test_bound_states import first_round_nodes, two_path_loop
s = two_path_loop(first_round_nodes(two_path_loop(0.1), 0.5)[9])
s.comm = MPI.COMM_WORLD
r = s.forces(0.5, tol=1e-8)
if s.comm.Get_rank() == 0:
    np.save(sys.argv[1], np.append(r.forces.ravel(), r.n_unbroadened))
"""


def test_a_node_on_a_state_of_one_rank_is_redone_by_all(tmp_path):
    """On two ranks the node on the state is the second rank's: both redo the integral
    and get the serial forces."""
    got = run_on_ranks(MPI_RUN, 2, tmp_path)
    node = first_round_nodes(two_path_loop(0.1), 0.5)
    assert 9 >= len(node) // 2                                 # on the second rank
    serial = two_path_loop(node[9]).forces(0.5, tol=1e-8)
    assert got[-1] == 1
    assert np.abs(got[:-1] - serial.forces.ravel()).max() <= 1e-12
