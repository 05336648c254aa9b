"""Benchmark: transmission per energy point, lammps_recoil vs Kwant, same system.

    python benchmarks/bench_kwant.py [--repeat 5]     # needs kwant (see .ci/run)

Cu constrictions in fcc(001) wires (the geometry of tests/test_kwant.py, wider wires and
longer necks here) between semi-infinite wire leads, the same hopping law in both codes.
Each code gets fresh energies (no cached lead solutions); times are per energy point, the
fastest of ``--repeat`` runs of each code, alternating (the machine is shared), single
process, OMP_NUM_THREADS=1; the largest |T_ours - T_kwant| is reported.
"""
import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import numpy as np  # noqa: E402
from conftest import column, wire_constriction  # noqa: E402
from test_kwant import kwant_system, kwant_transmission  # noqa: E402

CASES = [("001", (3.7,) * 2 + (2.2, 1.9, 2.2) + (3.7,) * 2),
         ("001", (5.2,) * 2 + (3.0,) * 4 + (5.2,) * 2),
         ("001", (6.5,) * 2 + (3.7,) * 10 + (6.5,) * 2)]


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=5, help="runs of each code, fastest counts")
    args = ap.parse_args()
    print(f"# python benchmarks/bench_kwant.py --repeat {args.repeat} "
          f"({time.strftime('%Y-%m-%d')})\n")
    print("| wire radius (A) | sites | lead cell | ours (ms/point) | Kwant (ms/point) | "
          "speed-up | max abs(dT) |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for n, (ori, radii) in enumerate(CASES):
        ijk, sites, _ = column(ori, radii)
        fsys = kwant_system(ori, ijk)
        a = b = np.inf
        for r in range(args.repeat):
            # fresh energies and a fresh system each time: no cached lead solutions
            energies = np.linspace(-3.1, 1.9, 6) + 0.0137 * n + 1e-4 * r
            system = wire_constriction(ori, radii, 0.6)
            t_ours, ours = timed(lambda: system.transmission(energies))
            t_kwant, theirs = timed(lambda: kwant_transmission(fsys, energies))
            a = min(a, 1e3 * t_ours / len(energies))
            b = min(b, 1e3 * t_kwant / len(energies))
        cell = len(system.leads[0].positions)
        print(f"| {radii[0]} | {len(sites)} | {cell} | {a:.1f} | {b:.1f} | "
              f"{b / a:.1f} | {np.abs(ours - theirs).max():.1e} |", flush=True)
    print("\nBoth exclude building the system; both solve the leads afresh at each energy "
          "(mode matching at real energy in both).")


if __name__ == "__main__":
    main()
