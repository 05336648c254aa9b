"""Benchmark: recoil-force evaluation and transmission per energy point vs device size.

    python benchmarks/bench_negf.py            # prints a Markdown table (a few minutes)

Device: the default Cu filament (fcc(001) hourglass, neck 2.9 A, 4 x 4 cubic cells) with
1 or 3 mobile electrode layers per side, longer filaments (cylinder, 2.9 A) in the same
cell, and wider electrodes in fcc(111) cells (n x m rectangles of a x sqrt(3) a; square
fcc(001) cells other than 1, 2, 4 put flat lead bands into a 1 V window). Forces: adaptive integral at V = 1 V, tol = 1e-3 eV/A,
after one warm-up evaluation (lead Green's functions cached, as in an MD run: the atoms
are displaced by 0.05 A between the two calls). Single process, OMP_NUM_THREADS=1.
"""
import os
import platform
import resource
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from lammps_recoil.builders import build_filament  # noqa: E402

CASES = [
    ("(001) 4x4, hourglass, 1 electrode layer", dict(electrode_layers=1)),
    ("(001) 4x4, hourglass (default)", dict()),
    ("(001) 4x4, 24-layer cylinder", dict(gap_layers=24, shape="cylinder")),
    ("(001) 4x4, 96-layer cylinder", dict(gap_layers=96, shape="cylinder")),
    ("(111) 8x5, hourglass", dict(orientation="111", nx=8, ny=5)),
    ("(111) 10x6, hourglass", dict(orientation="111", nx=10, ny=6)),
    ("(111) 12x7, hourglass, 5 electrode layers", dict(orientation="111", nx=12, ny=7,
                                                       electrode_layers=5)),
]


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def length_scaling(rng):
    """Cost vs filament length at a fixed cross-section (4x4 cell, cylinder 2.9 A)."""
    print("\nLength scaling, fcc(001) 4x4 cell, cylinder of radius 2.9 A:\n")
    print("| filament layers | device atoms | fixed 32 points (s) | per point (ms) | adaptive "
          "points | adaptive update (s) |")
    print("| --- | --- | --- | --- | --- | --- |")
    rows = []
    for layers in (6, 12, 24, 48, 96):
        system = build_filament(gap_layers=layers, shape="cylinder").recoil_system()
        system.forces(1.0, n_points=16)                       # warm-up (lead caches)
        system.update(system.positions + 0.05 * rng.standard_normal(system.positions.shape))
        _, fixed = timed(lambda: system.forces(1.0, n_points=16))
        res, adaptive = timed(lambda: system.forces(1.0))
        rows.append((layers, fixed, adaptive))
        print(f"| {layers} | {system.n_atoms} | {fixed:.3f} | {1e3 * fixed / 32:.2f} | "
              f"{res.n_energies} | {adaptive:.2f} |", flush=True)
    n, fixed, adaptive = (np.array(c) for c in zip(*rows))
    slope = lambda y: np.polyfit(np.log(n), np.log(y), 1)[0]
    print(f"\nfitted exponent, time ~ (filament layers)^p: fixed energy grid p = "
          f"{slope(fixed):.2f}, adaptive update p = {slope(adaptive):.2f} (the number of "
          "resonances in the bias window grows with the length)")


def main():
    rng = np.random.default_rng(0)
    print(f"# bench_negf.py  {time.strftime('%Y-%m-%d')}  {platform.processor() or platform.machine()}"
          f"  python {sys.version.split()[0]}  numpy {np.__version__}")
    print("\n| device | atoms | energy points | force eval (s) | per point (ms) | leads / solve "
          "/ contraction (s) | T(E) per point (ms) | peak RSS so far (MB) |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for label, kw in CASES:
        fil = build_filament(**kw)
        system = fil.recoil_system()
        x0 = system.positions
        system.forces(1.0)                                   # warm-up: lead caches
        system.update(x0 + 0.05 * rng.standard_normal(x0.shape))
        res, dt = timed(lambda: system.forces(1.0))
        t = res.timings
        E = np.linspace(0.2, 1.0, 5)
        _, dtT = timed(lambda: system.transmission(E))
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"| {label} | {system.n_atoms} | {res.n_energies} | {dt:.2f} | "
              f"{1e3 * dt / res.n_energies:.1f} | {t['leads']:.2f} / {t['solve']:.2f} / "
              f"{t['forces']:.2f} | {1e3 * dtT / len(E):.1f} | {rss:.0f} |", flush=True)
    length_scaling(rng)
    print("\nFixed Gauss-Legendre rules, default filament (4x4, 226 atoms): error vs the "
          "adaptive tol = 1e-5 result")
    print("\n| rule | energy points | force eval (s) | max force error (eV/A) |")
    print("| --- | --- | --- | --- |")
    system = build_filament().recoil_system()
    ref = system.forces(1.0, tol=1e-5)
    for n in (8, 16, 32, 64):
        res, dt = timed(lambda: system.forces(1.0, n_points=n))
        print(f"| Gauss-Legendre {n} per half window | {res.n_energies} | {dt:.2f} | "
              f"{np.abs(res.forces - ref.forces).max():.1e} |")
    for tol in (1e-2, 1e-3):
        system._partitions.clear()                  # a fresh adaptive integral
        res, dt = timed(lambda: system.forces(1.0, tol=tol))
        print(f"| adaptive, tol {tol:g} | {res.n_energies} | {dt:.2f} | "
              f"{np.abs(res.forces - ref.forces).max():.1e} |")
    print(f"\n(reference: adaptive tol 1e-5, {ref.n_energies} points)")


if __name__ == "__main__":
    main()
