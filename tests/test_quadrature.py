"""Energy quadrature: closed-form integrals with the square-root branch points of lead
channel edges, the partition reused between MD updates, and the lead Green's function
cache."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from lammps_recoil.integration import (_GK_WG, _GK_WK, _GK_X, Piece, Segment,
                                       adaptive_integral, coarsen, isolated)
from lammps_recoil import HoppingModel, RecoilSystem, WireLead
from lammps_recoil.leads import EnergyCache


def _vector(f):
    return lambda E: np.column_stack([f(E), np.ones_like(E)])


@pytest.mark.parametrize("root_lo, root_hi", [(True, False), (False, True), (True, True)])
@given(lo=st.floats(-2.0, 2.0), width=st.floats(0.01, 3.0), u=st.floats(0.0, 1.0))
@settings(max_examples=30, deadline=None)
def test_piece_coordinate_inverts_energy(root_lo, root_hi, lo, width, u):
    piece = Piece(lo, lo + width, root_lo, root_hi)
    E, J = piece.energy(np.array([u]))
    assert lo - 1e-12 <= E[0] <= lo + width + 1e-12
    assert piece.coordinate(E)[0] == pytest.approx(u, abs=1e-7)
    h = 1e-6                                   # Jacobian: central difference of E(u)
    if h < u < 1 - h:
        dE = (piece.energy(np.array([u + h]))[0] - piece.energy(np.array([u - h]))[0]) / (2 * h)
        assert J[0] == pytest.approx(dE[0], rel=1e-5, abs=1e-8)


def test_square_root_kinks_integrate_to_closed_forms():
    """sqrt|E - c| with a channel edge c inside: the root substitution integrates it to
    round-off in the first intervals (one per piece); without it, plain bisection needs
    many more points for far less accuracy. With roots at both ends the error estimate
    overstates the true error by orders of magnitude. Closed forms: the integral of sqrt|x| over
    [-1, 2] is 2/3 (1 + 2^1.5); of sqrt(x (1 - x)) over [0, 1] (roots at both ends) pi/8.
    """
    c, exact = 0.3, 2.0 / 3.0 * (1.0 + 2.0**1.5)
    f = _vector(lambda E: np.sqrt(np.abs(E - c)))
    seg = Segment(c - 1.0, c + 2.0, occupation=None, landauer=None)
    val, err, n, _, _ = adaptive_integral(f, seg.pieces(kinks=[c]), 1e-10)
    assert val[0] == pytest.approx(exact, abs=1e-12) and val[1] == pytest.approx(3.0)
    assert n == 14 and err < 1e-10
    plain, _, n_plain, _, _ = adaptive_integral(f, [Piece(c - 1.0, c), Piece(c, c + 2.0)], 1e-6)
    assert n_plain > 10 * n and abs(plain[0] - exact) > 1e-9
    # the estimate |K7 - G3| is that of the 3-point rule: the K7 result is far better
    both, err, n, _, _ = adaptive_integral(_vector(lambda E: np.sqrt(E * (1.0 - E))),
                                           [Piece(0.0, 1.0, True, True)], 1e-4)
    assert both[0] == pytest.approx(np.pi / 8.0, abs=1e-10) and n == 21 and err > 1e-5


def test_crowded_weak_edges_are_cut_at_tight_tolerances_only():
    """Edges closer than EDGE_GAP x tol to another are not cut. Ten pairs of weak branch
    points 5 meV apart (each sqrt|E - c| / 20, as the many channels of a wide lead) on a
    smooth background: at tol 1e-2 none is cut, and 7 points reach the closed form
    sum_c (2/3) (|c - a|^1.5 + |b - c|^1.5) / 20 + (cos 8a - cos 8b) / 8 within tol, where
    a cut at each edge costs 147; at tol 1e-4 every edge is cut, and the result is within
    1e-8 (stepping over them there misses by 2.7e-4, more than tol)."""
    np.testing.assert_array_equal(isolated([0.0, 0.01, 0.1, 0.5, 0.52, 0.9], 0.01),
                                  [0.1, 0.9])
    np.testing.assert_array_equal(isolated([0.0, 0.01, 0.1], 0.001), [0.0, 0.01, 0.1])
    a, b = -0.5, 0.5
    edges = np.linspace(-0.45, 0.4, 10)
    edges = np.sort(np.concatenate([edges, edges + 0.005]))
    exact = (sum((2.0 / 3.0) * (abs(c - a) ** 1.5 + abs(b - c) ** 1.5) for c in edges) / 20
             + (np.cos(8 * a) - np.cos(8 * b)) / 8)
    f = lambda E, s: np.column_stack([np.sqrt(np.abs(E[:, None] - edges)).sum(axis=1) / 20
                                      + np.sin(8 * E), np.ones_like(E)])
    seg = Segment(a, b, occupation=None, landauer=None)
    loose = seg.integrate(f, tol=1e-2, kinks=isolated(edges, 1e-2))
    assert len(isolated(edges, 1e-2)) == 0 and loose.n_evals == 7
    assert abs(loose.value[0] - exact) < 1e-4
    assert seg.integrate(f, tol=1e-2, kinks=edges).n_evals == 147
    tight = seg.integrate(f, tol=1e-4, kinks=isolated(edges, 1e-4))
    assert len(isolated(edges, 1e-4)) == 20 and abs(tight.value[0] - exact) < 1e-8
    assert abs(seg.integrate(f, tol=1e-4).value[0] - exact) > 1e-4


def test_error_is_the_largest_column_sum():
    """Six Lorentzians 5 meV wide at different energies (as the forces on atoms whose
    resonances lie apart), integrated together: each column is within the error estimate
    of its closed form (arctan), and the estimate is the largest over the columns of the
    intervals' |K7 - G3| summed (recomputed here from the returned partition with the
    Gauss-Kronrod (3, 7) weights): below tol, where the sum over the intervals of their
    largest column, which bounds the error no better, is above it."""
    w, centres = 0.005, np.linspace(-0.8, 0.8, 6)
    f = lambda E: w / ((E[:, None] - centres) ** 2 + w**2)
    exact = np.arctan((1.0 - centres) / w) + np.arctan((1.0 + centres) / w)
    res = adaptive_integral(f, [Piece(-1.0, 1.0)], 1e-6)
    assert np.abs(res.value - exact).max() <= res.error <= 1e-6
    x, wk, wg = _GK_X, _GK_WK, _GK_WG
    a, b = res.ends[:-1], res.ends[1:]
    y = f((0.5 * (a + b)[:, None] + 0.5 * (b - a)[:, None] * x).ravel()).reshape(len(a), 7, 6)
    err = np.abs(np.einsum("k,nkc->nc", wk - wg, y)) * 0.5 * (b - a)[:, None]
    assert res.error == pytest.approx(err.sum(axis=0).max(), rel=1e-9)
    np.testing.assert_allclose(res.errors, err.max(axis=1), rtol=1e-9, atol=1e-14)
    assert err.max(axis=1).sum() > 1e-6


def test_band_edge_singularity_and_steps():
    """The band-bottom edge 1/sqrt(E - E0) (integral 2 sqrt(b - E0)) and a jump at a step,
    through Segment.integrate, adaptive and fixed."""
    seg = Segment(-1.0, 3.0, occupation=None, landauer=None, edge=True, steps=(1.0,))
    f = lambda E, s: np.column_stack([1.0 / np.sqrt(E + 1.0) + (E > 1.0), np.ones_like(E)])
    val, err, n, ends = seg.integrate(f, tol=1e-10)
    assert val[0] == pytest.approx(2.0 * 2.0 + 2.0, abs=1e-10)
    assert 1.0 in ends
    fixed, _, m, _ = seg.integrate(f, n_points=8)
    assert fixed[0] == pytest.approx(6.0, abs=1e-12) and m == 16


def test_an_edge_on_a_step_is_the_step():
    """A channel edge within round-off of E_F (a step) or of a window end is that step or
    end, approached as a root: no piece of round-off length whose nodes would sit on the
    branch point. A 2x2 square wire whose E_F lies on a subband edge (0 eV, found at
    -3.7e-17) has T = 3 across the window: G(1 V) = 3 G0."""
    seg = Segment(-0.5, 0.5, occupation=None, landauer=None, steps=(0.0,))
    pieces = seg.pieces(kinks=[-3.7e-17, 0.5 + 1e-17, -0.2])
    assert [(p.lo, p.hi) for p in pieces] == [(-0.5, -0.2), (-0.2, 0.0), (0.0, 0.5)]
    assert [(p.root_lo, p.root_hi) for p in pieces] == [(False, True), (True, True),
                                                        (True, True)]
    L = 2.5
    cell = np.array([[0, 0, 0], [L, 0, 0], [0, L, 0], [L, L, 0]], float)
    hop = HoppingModel()
    left = WireLead(cell - [0, 0, L], [0, 0, -L], "left", hop)
    right = WireLead(cell + [0, 0, 4 * L], [0, 0, L], "right", hop)
    wire = RecoilSystem(np.concatenate([cell + [0, 0, L * c] for c in range(4)]), left, right,
                        hop, fermi_level=0.0)
    assert np.min(np.abs(wire._kinks())) < 1e-15
    assert wire.conductance(1.0) == pytest.approx(3.0, abs=1e-9)
    assert np.abs(wire.forces(0.4).total).max() < 1e-12


def test_coarsen_merges_only_over_refined_pairs():
    ends = np.array([0.0, 1.0, 2.0, 3.0, 4.0, 5.0])
    errors = np.array([1e-9, 1e-9, 0.3, 1e-9, 1e-9])
    # pairs (0,1) and (3,4) carry 32 x 2e-9 << tol / 5; the large error blocks (2)
    np.testing.assert_array_equal(coarsen(ends, errors, 1.0), [0.0, 2.0, 3.0, 5.0])
    # a tolerance below 32 x their error merges nothing
    np.testing.assert_array_equal(coarsen(ends, errors, 1e-7), ends)


def test_reused_partition_gives_the_same_integral():
    """Starting from a (coarsened) earlier partition changes the nodes, not the result
    beyond the tolerance; a resonance that moved is still resolved."""
    lorentz = lambda x0: _vector(lambda E: 0.01 / ((E - x0) ** 2 + 0.01**2))
    exact = lambda x0: np.arctan((1 - x0) / 0.01) + np.arctan((1 + x0) / 0.01)
    v1, _, n1, ends, errors = adaptive_integral(lorentz(0.2), [Piece(-1.0, 1.0)], 1e-8)
    start = coarsen(ends, errors, 1e-8)
    v2, _, n2, _, _ = adaptive_integral(lorentz(0.25), [Piece(-1.0, 1.0)], 1e-8, start)
    assert v1[0] == pytest.approx(exact(0.2), abs=1e-8)
    assert v2[0] == pytest.approx(exact(0.25), abs=1e-8)


def test_energy_cache_returns_computed_values_and_stays_bounded():
    calls = []

    def compute(E):
        calls.append(len(E))
        return np.stack([np.full((2, 2), e) for e in E])

    cache = EnergyCache(max_bytes=10 * 32)          # room for ten 2 x 2 float arrays
    E = np.array([0.5, 0.1, 0.3, 0.1])              # a repeat within one batch
    slot = cache.slots(E, compute)
    np.testing.assert_array_equal(cache.values[slot][:, 0, 0], E)
    assert calls == [3]
    cache.slots(np.array([0.3, 0.5]), compute)      # all cached
    assert calls == [3]
    slot = cache.slots(np.linspace(1.0, 2.0, 8), compute)   # beyond max_bytes: cleared
    np.testing.assert_array_equal(cache.values[slot][:, 1, 1], np.linspace(1.0, 2.0, 8))
    assert len(cache.energies) == 8
    assert cache.slots(np.array([0.1]), compute)[0] >= 0 and calls[-1] == 1


def test_energy_cache_clear_keeps_the_cached_part_of_a_batch():
    """A batch mixing cached and new energies that overflows the bound: after the clear
    every energy of the batch still maps to its own value (no stale slot)."""
    compute = lambda E: np.stack([np.full((2, 2), e) for e in E])
    cache = EnergyCache(max_bytes=10 * 32)
    cache.slots(np.linspace(0.0, 0.7, 8), compute)
    E = np.array([0.1, 5.0, 6.0, 7.0])                   # 0.1 cached, 3 new: 11 > 10
    slot = cache.slots(E, compute)
    assert np.all(slot >= 0)
    np.testing.assert_array_equal(cache.values[slot][:, 0, 0], E)


def test_energy_cache_batches_arriving_out_of_order_keep_their_values():
    """Energies inserted in several batches, below, between and above the held ones (the
    sorted index is updated in place): every energy still finds its own value."""
    compute = lambda E: np.stack([np.full((2, 2), e) for e in E])
    cache = EnergyCache()
    batches = [np.array([0.4, 0.2]), np.array([0.3, -1.0, 0.2]), np.array([9.0, 0.25, 0.35])]
    for E in batches:
        cache.slots(E, compute)
    E = np.concatenate(batches)
    np.testing.assert_array_equal(cache.values[cache.slots(E, compute)][:, 1, 0], E)
    np.testing.assert_array_equal(cache.energies, np.unique(E))


def test_a_bad_tolerance_and_tiny_biases():
    """tol <= 0 is refused (not run to the interval limit); a bias below TINY_BIAS is the
    zero-bias limit (G = T(E_F) exactly, no force), and just above it the window's ends
    carry no round-off that shows in G (the default filament: G(V) - T(E_F) = O(V^2))."""
    from conftest import build_filament
    from lammps_recoil.integration import TINY_BIAS
    s = build_filament().recoil_system()
    for tol in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError, match=r"tol \(the energy integral's accuracy: eV/A "
                           r"for forces, G0 for the conductance\) must be positive"):
            s.forces(1.0, tol=tol)
    T_F = float(s.transmission([s.fermi_level])[0])
    tiny = s.forces(0.5 * TINY_BIAS)
    assert tiny.conductance == T_F and np.abs(tiny.forces).max() == 0.0
    assert abs(s.forces(2 * TINY_BIAS, tol=1e-6).conductance - T_F) < 1e-7


def test_an_unconverged_integral_says_how_to_proceed():
    """Away from channel edges and unbroadened states the failure names crowded
    resonances and a larger tol."""
    from lammps_recoil.integration import _near
    assert "resonances crowd the window" in _near((0.1, 0.2), kinks=[0.5], cuts=[])
    assert _near((0.1, 0.2), kinks=[0.15], cuts=[]).startswith(": a lead channel edge")
