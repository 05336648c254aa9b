"""Benchmark: transmission per energy point, lammps_recoil vs Kwant, same system.

    python benchmarks/bench_kwant.py                  # needs kwant (see .ci/run)

Cu constrictions in fcc(001) wires (the geometry of tests/test_kwant.py, wider wires and
longer necks here) between semi-infinite wire leads, the same hopping law in both codes.
Each code gets fresh energies (no cached lead solutions); times are per energy point,
single process, OMP_NUM_THREADS=1; the largest |T_ours - T_kwant| is reported.
"""
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import numpy as np  # noqa: E402
from test_kwant import HOP, column, kwant_system, kwant_transmission  # noqa: E402

from lammps_recoil import RecoilSystem, WireLead  # noqa: E402

CASES = [("001", (3.7,) * 2 + (2.2, 1.9, 2.2) + (3.7,) * 2),
         ("001", (5.2,) * 2 + (3.0,) * 4 + (5.2,) * 2),
         ("001", (6.5,) * 2 + (3.7,) * 10 + (6.5,) * 2)]


def main():
    print(f"# bench_kwant.py ({time.strftime('%Y-%m-%d')})\n")
    print("| wire radius (A) | sites | lead cell | ours (ms/point) | Kwant (ms/point) | "
          "speed-up | max abs(dT) |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for n, (ori, radii) in enumerate(CASES):
        ijk, sites, P = column(ori, radii)
        T = np.array([0.0, 0.0, P])
        first = sites[sites[:, 2] < P - 1e-6]
        last = sites[sites[:, 2] > sites[:, 2].max() - P + 1e-6]
        energies = np.linspace(-3.1, 1.9, 6) + 0.0137 * n
        system = RecoilSystem(sites, WireLead(first - T, -T, "left", HOP),
                              WireLead(last + T, T, "right", HOP), HOP, fermi_level=0.6)
        fsys = kwant_system(ori, ijk)
        t0 = time.perf_counter()
        ours = system.transmission(energies)
        t1 = time.perf_counter()
        theirs = kwant_transmission(fsys, energies)
        t2 = time.perf_counter()
        a, b = 1e3 * (t1 - t0) / len(energies), 1e3 * (t2 - t1) / len(energies)
        print(f"| {radii[0]} | {len(sites)} | {len(first)} | {a:.1f} | {b:.1f} | "
              f"{b / a:.1f} | {np.abs(ours - theirs).max():.1e} |", flush=True)
    print("\nBoth exclude building the system; both solve the leads afresh at each energy "
          "(Lopez-Sancho decimation here, Kwant's mode solver there).")


if __name__ == "__main__":
    main()
