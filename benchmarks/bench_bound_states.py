"""Benchmark: wire constrictions with unbroadened states, adaptive rule against brute force.

    python benchmarks/bench_bound_states.py [--quick]

fcc(111) constrictions between exact wire leads (``WireLead``, eta = 0) of radius 3.0 A
(16 atoms per cell), E_F = 0.6 eV, V = 1 V, both force models, beta = 1/2 (window
[0.1, 1.1] eV) and beta = 0 ([-0.4, 0.6] eV):

* 87 atoms, cell radii 3.0, 3.0, 2.25, 2.0, 2.25, 3.0, 3.0 A: a single-atom neck (atoms
  per layer 7 5 4 7 5 4 2 3 3 1 3 3 2 3 3 7 5 4 7 5 4);
* 68 atoms, radii 3.0, 3.0, 1.6, 3.0, 3.0 A (the column of tests/test_kwant.py):
  a neck of two single atoms (7 5 4 7 5 4 1 1 2 7 5 4 7 5 4).

For each: the unbroadened states the package finds in and near the window, its adaptive
integral at tol 1e-4 and 1e-6 (fresh partitions: points, error estimate, seconds), and two
brute-force composite Gauss-Legendre rules written here. Their panels end at the window
ends, E_F, every channel edge, every unbroadened state and every resonance narrower than
0.02 eV (found here as fixed points E = Re lambda(E) of the eigenvalues of H + Sigma_L(E)
+ Sigma_R(E), predicted from a 2 meV scan that closes in on the channel edges and refined
by secant steps); panels shrink geometrically toward a channel edge (down to 1e-10 eV; the
innermost panel in u with E - E_c = 1e-10 u^2, which takes the inverse square root of a
lead's van Hove singularity exactly) and a resonance (to a hundredth of its width, at
least 1e-10 eV; the smaller of the two where a resonance sits within 1e-9 eV of an edge).
An unbroadened state is a panel end where the panels do not shrink: the scattering states'
density is analytic through a real pole of zero width, and no node falls on it (the rule
steps over the state). Rule A: 12 points per panel, ratio 0.25, panels of at most 0.02 eV;
rule B: 20 points, ratio 0.15, 0.01 eV. Reported: the largest |A - B| and |adaptive - B|
("true error") of the forces (eV/A) and the conductance (G0), and max |F|. A second table:
the same constrictions between broadened wire leads (lead eta 1e-9 and 3e-9 eV,
decimation), against rule B with the exact leads.
"""
import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import numpy as np  # noqa: E402
from conftest import wire_constriction  # noqa: E402

from lammps_recoil import integration as quad  # noqa: E402
from lammps_recoil.boundstates import effective_hamiltonian  # noqa: E402

CASES = [("87 atoms, single-atom neck", (3.0, 3.0, 2.25, 2.0, 2.25, 3.0, 3.0)),
         ("68 atoms, two-atom neck", (3.0, 3.0, 1.6, 3.0, 3.0))]
FERMI, BIAS = 0.6, 1.0
MODELS = ("paper", "hellmann-feynman")
ETAS = (1e-9, 3e-9)
RULES = {"A": dict(n=12, ratio=0.25, panel=0.02), "B": dict(n=20, ratio=0.15, panel=0.01)}
#: Panels stop shrinking this close (eV) to a channel edge.
EDGE_FLOOR = 1e-10
#: The resonance scan's distances (eV) from each channel edge.
OFFSETS = 10.0 ** np.arange(-7.0, -1.9, 0.5)
#: Breakpoints closer than this (eV) are one.
MERGE = 1e-9


def resonances(system, lo, hi, step=0.002, widest=0.02):
    """Centres and widths (eV) of the device's resonances (and real poles) in [lo, hi]:
    fixed points E = Re lambda(E) of eigenvalues lambda of H + Sigma(E). From each energy
    of a scan of spacing ``step`` that also closes in on every channel edge (1e-7 to 1e-2
    eV on both sides, where lambda(E) moves fast), each eigenvalue predicts its fixed point
    by a Newton step (lambda' by a difference of 1e-7 eV; lambda' is large and negative for
    states with long tails in the leads); a prediction within the scan cell is refined by
    secant steps. The width is -2 Im lambda / (1 - Re lambda'), kept up to ``widest``."""
    def eigvals(E):
        return np.linalg.eigvals(effective_hamiltonian(system, np.atleast_1d(E), 0))

    def nearest(E, target):
        vals = eigvals(E)[0]
        return vals[np.argmin(np.abs(vals - target))]

    edges = system._kinks()
    near = (edges[:, None] + np.concatenate([OFFSETS, -OFFSETS])).ravel()
    scan = np.unique(np.concatenate([np.arange(lo, hi + step, step),
                                     near[(near > lo) & (near < hi)]]))
    cell = np.diff(scan).max(initial=step)
    lam, moved = eigvals(scan), eigvals(scan + 1e-7)
    found = {}
    for E0, vals, after in zip(scan, lam, moved):
        pair = after[np.argmin(np.abs(after[None, :] - vals[:, None]), axis=1)]
        slope = ((pair - vals) / 1e-7).real
        guess = E0 + (vals.real - E0) / np.maximum(1.0 - slope, 1.0)
        for v, x1 in zip(vals, guess):
            if abs(x1 - E0) > cell or -2 * v.imag > widest * 100 or any(
                    abs(x1 - e) < 1e-5 for e in found):       # (found from a neighbour)
                continue
            x0, f0, f1 = E0, v.real - E0, np.inf
            for _ in range(60):
                if not lo <= x1 <= hi:                 # left the window: not this one's
                    break
                v = nearest(x1, v)
                f1 = v.real - x1
                if abs(f1) < 1e-12 or f1 == f0:
                    break
                x0, x1, f0 = x1, x1 - f1 * (x1 - x0) / (f1 - f0), f1
            if lo <= x1 <= hi and abs(f1) < 1e-10:
                d = (nearest(x1 + 1e-9, v) - nearest(x1 - 1e-9, v)).real / 2e-9
                width = max(-2.0 * v.imag, 0.0) / max(1.0 - d, 1.0)
                if width <= widest:
                    found[x1] = width
    return found


def graded(a, b, toward, ratio, floor):
    """Panel ends on [a, b] shrinking geometrically toward ``toward`` (a or b) down to
    ``floor``."""
    L, d, ends = b - a, 0.5 * (b - a), []
    while d > floor:
        ends.append(d)
        d *= ratio
    ends = np.array(ends + [floor] if floor < L else ends)
    return a + ends if toward == a else b - ends


def composite_rule(breaks, floors, n, ratio, panel):
    """Nodes and weights of composite Gauss-Legendre on the intervals between ``breaks``;
    panels shrink geometrically toward each end with a ``floors`` entry (down to it), and
    the rest have at most ``panel`` eV. The innermost panel at such an end, of width
    ``floor``, is integrated in u with E - end = floor u^2, which takes an inverse square
    root at a channel edge (the lead's van Hove singularity) exactly."""
    x, w = np.polynomial.legendre.leggauss(n)
    u, wu = 0.5 * (x + 1.0), 0.5 * w
    nodes, weights = [], []
    for a, b, fa, fb in zip(breaks[:-1], breaks[1:], floors[:-1], floors[1:]):
        pts = [a, b]
        for end, floor in ((a, fa), (b, fb)):
            if floor is not None:
                pts += list(graded(a, b, end, ratio, floor))
        pts = np.unique(pts)
        for p, q in zip(pts[:-1], pts[1:]):
            if p == a and fa is not None:              # innermost at a
                nodes.append(a + (q - a) * u * u)
                weights.append(2.0 * (q - a) * u * wu)
            elif q == b and fb is not None:            # innermost at b
                nodes.append(b - (b - p) * u * u)
                weights.append(2.0 * (b - p) * u * wu)
            else:
                m = max(1, int(np.ceil((q - p) / panel)))
                ends = np.linspace(p, q, m + 1)
                h, c = 0.5 * np.diff(ends), 0.5 * (ends[1:] + ends[:-1])
                nodes.append((c[:, None] + h[:, None] * x).ravel())
                weights.append((h[:, None] * w).ravel())
    return np.concatenate(nodes), np.concatenate(weights)


def breakpoints(system, seg, poles, narrow):
    """The window's breakpoints and how far the panels shrink toward each: to EDGE_FLOOR
    at a channel edge, to a hundredth of the width at a resonance (at least EDGE_FLOOR:
    closer to an energy the nodes meet round-off), not at all at a window end, E_F or a
    real pole (None). Breakpoints within MERGE are one, with the smallest floor, at the
    channel edge if one of them is (edges are exact, the others found to round-off)."""
    points = [(e, None, False) for e in (seg.a, seg.b, *seg.steps, *poles)]
    points += [(e, EDGE_FLOOR, True) for e in system._kinks() if seg.a < e < seg.b]
    points += [(e, max(width / 100, EDGE_FLOOR), False) for e, width in narrow.items()
               if width > 1e-12]                # (else a real pole)
    points.sort()
    groups = [[points[0]]]
    for p in points[1:]:
        if p[0] - groups[-1][-1][0] <= MERGE:
            groups[-1].append(p)
        else:
            groups.append([p])
    breaks, floors = [], []
    for g in groups:
        edges = [e for e, _, edge in g if edge]
        known = [f for _, f, _ in g if f is not None]
        breaks.append(edges[0] if edges else g[0][0])
        floors.append(min(known) if known else None)
    inside = [(e, f) for e, f in zip(breaks, floors) if seg.a <= e <= seg.b]
    return np.array([e for e, _ in inside]), [f for _, f in inside]


def brute_force(system, seg, poles, narrow, rule):
    """Forces (both models) and conductance by a composite rule."""
    breaks, floors = breakpoints(system, seg, poles, narrow)
    E, w = composite_rule(breaks, floors, **rule)
    n = system.n_atoms
    out = {}
    for model in MODELS:
        timings = dict.fromkeys(("leads", "solve", "forces"), 0.0)
        rows = system._map(lambda e: system._integrand(e, seg, model, timings)[0], E)
        total = w @ rows
        out[model] = (system._to_user(total[:3 * n].reshape(n, 3)), float(total[3 * n]))
    return out, len(E)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="the 87-atom case at beta = 1/2")
    args = ap.parse_args()
    cases = CASES[:1] if args.quick else CASES
    betas = (0.5,) if args.quick else (0.5, 0.0)
    print(f"# python benchmarks/bench_bound_states.py{' --quick' if args.quick else ''} "
          f"({time.strftime('%Y-%m-%d')})\n")
    print("| constriction | beta | unbroadened states (eV) | model | tol 1e-4: points, "
          "estimate, true error | tol 1e-6: points, estimate, true error, s | "
          "rules A, B: points | abs(A - B) | max abs(F) (eV/A) |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    broadened = []
    for name, radii in cases:
        system = wire_constriction("111", radii, FERMI)
        windows = [quad.bias_window(FERMI, BIAS, beta)[0] for beta in betas]
        lo, hi = min(w.a for w in windows), max(w.b for w in windows)
        states = system.unbroadened_states(lo, hi)
        poles = sorted({round(b.energy, 12) for b in states})
        narrow = resonances(system, lo, hi)
        for beta, seg in zip(betas, windows):
            ref = {k: brute_force(system, seg, poles, narrow, r) for k, r in RULES.items()}
            for model in MODELS:
                (FA, GA), nA = ref["A"][0][model], ref["A"][1]
                (FB, GB), nB = ref["B"][0][model], ref["B"][1]
                cells = []
                for tol in (1e-4, 1e-6):
                    t0 = time.perf_counter()
                    fresh = wire_constriction("111", radii, FERMI)       # fresh partitions
                    r = fresh.forces(BIAS, beta=beta, model=model, tol=tol)
                    seconds = time.perf_counter() - t0
                    true = max(np.abs(r.forces - FB).max(), abs(r.conductance - GB))
                    cells.append(f"{r.n_energies}, {r.error:.1e}, {true:.1e}")
                cells[-1] += f", {seconds:.1f}"
                shown = ", ".join(f"{e:.4f}" for e in poles if seg.a <= e <= seg.b) or "-"
                ab = max(np.abs(FA - FB).max(), abs(GA - GB))
                print(f"| {name} | {beta:g} | {shown} | {model} | {cells[0]} | {cells[1]} | "
                      f"{nA}, {nB} | {ab:.1e} | {np.abs(FB).max():.3f} |", flush=True)
            if beta == 0.5:                   # broadened leads against the exact reference
                FB = ref["B"][0]["paper"][0]
                for eta in ETAS:
                    r = wire_constriction("111", radii, FERMI, eta=eta).forces(BIAS, tol=1e-6)
                    broadened.append(f"| {name} | {eta:g} | {r.n_unbroadened} | "
                                     f"{r.n_energies} | {np.abs(r.forces - FB).max():.1e} | "
                                     f"{np.abs(r.forces - FB).max() / np.abs(FB).max():.1e} |")
    print("\nSeconds include building the system and its leads' channel edges, and the "
          "search for unbroadened states.\n")
    print("Broadened wire leads (decimation at E + i eta), beta = 1/2, paper model, tol 1e-6, "
          "against rule B with the exact leads:\n")
    print("| constriction | lead eta (eV) | unbroadened states | points | "
          "max abs(F - F_exact) (eV/A) | relative to max abs(F) |")
    print("| --- | --- | --- | --- | --- | --- |")
    print("\n".join(broadened))


if __name__ == "__main__":
    main()
