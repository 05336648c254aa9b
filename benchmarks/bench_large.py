"""Benchmark: recoil-force update time of large devices, sparse LU against the recursive
Green's function (RGF), versus device length and cross-section.

    OMP_NUM_THREADS=1 python benchmarks/bench_large.py          # a few minutes
    OMP_NUM_THREADS=1 python benchmarks/bench_large.py --quick  # smaller cases only

An update is system.update(displaced positions) + system.forces(bias=1.0, tol=1e-2) (the
deck's tolerance), after one warm-up evaluation (lead Green's functions cached, as in an MD
run). Each repetition displaces the device atoms by 0.05 A rms (new seed) and times both
solvers on the same positions, side by side; the table gives the median over the
repetitions. Length: the default (001) 4x4 hourglass filament, then (001) 4x4 cylinders
(2.9 A) of growing length. Cross-section: (111) n x m electrodes with a 12-layer hourglass
whose radii grow with the cell. Exponents: least-squares slopes against log(atoms) over each
series of log(energy points), log(update) and log(update / energy points). Last row: the (111) 14x8 device, 24 layers, neck 7 A, base
10 A. Single process.
"""
import argparse
import datetime
import os
import platform
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from lammps_recoil import greens  # noqa: E402
from lammps_recoil.builders import build_filament  # noqa: E402

TOL, BIAS, AMPLITUDE = 1e-2, 1.0, 0.05
SOLVERS = ("lu", "rgf")
#: Devices up to this many atoms are timed with the dense Schur solver too (the crossover).
SCHUR_UP_TO = 300
LENGTH = [  # (label, build_filament arguments)
    ("(001) 4x4 hourglass (default)", dict()),
    ("(001) 4x4 cylinder, 24 layers", dict(gap_layers=24, shape="cylinder")),
    ("(001) 4x4 cylinder, 96 layers", dict(gap_layers=96, shape="cylinder")),
    ("(001) 4x4 cylinder, 192 layers", dict(gap_layers=192, shape="cylinder")),
]
SECTION = [
    ("(111) 6x4, 12 layers, neck 3, base 4.5",
     dict(orientation="111", nx=6, ny=4, gap_layers=12, neck_radius=3.0, base_radius=4.5)),
    ("(111) 10x6, 12 layers, neck 5, base 8",
     dict(orientation="111", nx=10, ny=6, gap_layers=12, neck_radius=5.0, base_radius=8.0)),
    ("(111) 14x8, 12 layers, neck 7, base 10",
     dict(orientation="111", nx=14, ny=8, gap_layers=12, neck_radius=7.0, base_radius=10.0)),
    ("(111) 18x10, 12 layers, neck 9, base 13",
     dict(orientation="111", nx=18, ny=10, gap_layers=12, neck_radius=9.0, base_radius=13.0)),
]
ISSUE = ("(111) 14x8, 24 layers, neck 7, base 10",
         dict(orientation="111", nx=14, ny=8, gap_layers=24, neck_radius=7.0,
              base_radius=10.0))


def use_solver(system, solver):
    """Rebuild the system's device matrices with one solver (cheap: factors are lazy)."""
    system._M = [greens.DeviceMatrix(H, system.lead_contacts, system.eta, solver)
                 for H in system._H]


def measure(args, reps):
    """Median update time and energy points per solver, and the slab sizes. Each solver
    has its own system (its own cache of lead Green's functions and energy partitions, as
    in an MD run)."""
    geometry = build_filament(**args)
    system = geometry.recoil_system()
    solvers = SOLVERS + (("schur",) if system.n_atoms <= SCHUR_UP_TO else ())
    systems = {s: geometry.recoil_system() for s in solvers}
    x0 = system.positions.copy()
    times = {s: [] for s in solvers}
    points = {s: [] for s in solvers}
    for solver in solvers:                    # warm-up: lead Green's functions cached
        use_solver(systems[solver], solver)
        systems[solver].forces(BIAS, tol=TOL)
    for rep in range(reps):
        x = x0 + AMPLITUDE * np.random.default_rng(rep).standard_normal(x0.shape)
        for solver in solvers:
            t0 = time.perf_counter()
            systems[solver].update(x)
            use_solver(systems[solver], solver)
            r = systems[solver].forces(BIAS, tol=TOL)
            times[solver].append(time.perf_counter() - t0)
            points[solver].append(r.n_energies)
    slabs = np.diff(systems["rgf"]._M[0].slabs().bounds)
    return (system.n_atoms, {s: float(np.median(times[s])) for s in solvers},
            {s: int(np.median(points[s])) for s in solvers}, slabs)


def exponent(n, t):
    return float(np.polyfit(np.log(n), np.log(t), 1)[0])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="the smaller cases only")
    ap.add_argument("--reps", type=int, default=3)
    opt = ap.parse_args()
    series = [("length", LENGTH[:3] if opt.quick else LENGTH),
              ("cross-section", SECTION[:3] if opt.quick else SECTION)]
    if not opt.quick:
        series.append(("large", [ISSUE]))
    print(f"`OMP_NUM_THREADS=1 python benchmarks/bench_large.py{' --quick' if opt.quick else ''}`"
          f" ({datetime.date.today()}, {platform.processor() or platform.machine()}, "
          f"Python {sys.version.split()[0]}, numpy {np.__version__}; V = {BIAS} V, "
          f"tol {TOL}, median of {opt.reps})\n")
    print("| series | device | atoms | slabs (largest) | energy points | update LU (s) "
          "| update RGF (s) | update Schur (s) | LU / RGF | ms per point LU | ms per point RGF |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    fits = []
    for name, cases in series:
        n_atoms, tt, pp = [], {s: [] for s in SOLVERS}, []
        for label, args in cases:
            n, t, p, slabs = measure(args, opt.reps)
            n_atoms.append(n)
            pp.append(p["rgf"])
            for s in SOLVERS:
                tt[s].append(t[s])
            schur = f"{t['schur']:.3f}" if "schur" in t else "-"
            print(f"| {name} | {label} | {n} | {len(slabs)} ({slabs.max()}) | "
                  f"{p['lu']} / {p['rgf']} | {t['lu']:.3f} | {t['rgf']:.3f} | {schur} | "
                  f"{t['lu'] / t['rgf']:.2f} | {1e3 * t['lu'] / p['lu']:.2f} | "
                  f"{1e3 * t['rgf'] / p['rgf']:.2f} |", flush=True)
        if len(n_atoms) > 1:
            per = {s: np.array(tt[s]) / np.array(pp) for s in SOLVERS}
            fits.append((name, n_atoms, exponent(n_atoms, pp),
                         {s: exponent(n_atoms, tt[s]) for s in SOLVERS},
                         {s: exponent(n_atoms, per[s]) for s in SOLVERS}))
    print("\n| series | atoms | exponent of: energy points | update LU | update RGF "
          "| per point LU | per point RGF |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for name, n, ep, e, q in fits:
        print(f"| {name} | {n[0]}-{n[-1]} | {ep:.2f} | {e['lu']:.2f} | {e['rgf']:.2f} | "
              f"{q['lu']:.2f} | {q['rgf']:.2f} |")


if __name__ == "__main__":
    main()
