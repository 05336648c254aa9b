"""Benchmark: the extra cost of bond currents per NEGF update.

    python benchmarks/bench_current.py [--updates 200] [--tol 1e-2]   # Markdown table

Two systems of the default filament (inputs/filament.data) follow the same trajectory of
thermal-size displacements (a random walk of the device atoms around their sites, 0.1 A
rms, correlated over about ten updates, as in 300 K MD sampled every 0.1 ps); at each
update one computes the forces alone, the other also the bond currents and the per-atom
current vectors and throughputs a dump would write. The currents do not change the
adaptive rule's nodes, so both do the same NEGF work apart from the currents; the calls
alternate (which goes first swaps every update) so that the shared host's slow spells
hit both; each update's pair of times gives a ratio, and the table holds the median of
those ratios (robust against the host's slow spells) beside the ratio of the total times.
Medians of the update times: the first tenth of the updates (the partition settling) is
left out. Rows: the filament device (34 atoms, the deck's default) and the mobile device
(226 atoms); V = 1 V, the deck's tol = 1e-2 eV/A. Single process, OMP_NUM_THREADS=1.
"""
import argparse
import os
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from lammps_recoil.check import system_from_data  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def trajectory(x0, n, seed=1, rms=0.1, memory=10):
    """Positions of n updates: an AR(1) walk around x0 with the given rms displacement per
    coordinate and correlation time (updates)."""
    rng = np.random.default_rng(seed)
    a = np.exp(-1.0 / memory)
    u = rms * rng.standard_normal(x0.shape)
    for _ in range(n):
        u = a * u + rms * np.sqrt(1 - a * a) * rng.standard_normal(x0.shape)
        yield x0 + u


def measure(device, updates, tol, bias=1.0):
    data = str(ROOT / "inputs" / "filament.data")
    plain, full = system_from_data(data, device), system_from_data(data, device)
    times = {False: [], True: []}
    for k, x in enumerate(trajectory(plain.positions.copy(), updates)):
        for currents in ((False, True) if k % 2 else (True, False)):
            s = full if currents else plain
            t0 = time.perf_counter()
            s.update(x)
            r = s.forces(bias, tol=tol, bond_currents=currents)
            if currents:
                r.bond_currents.atom_vectors()
                r.bond_currents.atom_throughput()
            times[currents].append(time.perf_counter() - t0)
    skip = updates // 10                   # the first updates, before the partition settles
    plain_t, full_t = (np.array(times[c][skip:]) for c in (False, True))
    return (plain.n_atoms, len(plain.ext_bonds), np.median(plain_t), np.median(full_t),
            np.median(full_t / plain_t) - 1, full_t.sum() / plain_t.sum() - 1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--updates", type=int, default=200, help="updates per device")
    ap.add_argument("--tol", type=float, default=1e-2, help="energy-integral tolerance")
    args = ap.parse_args()
    print(f"# python benchmarks/bench_current.py --updates {args.updates} --tol {args.tol:g}\n"
          f"# {time.strftime('%Y-%m-%d')}, {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} cores, python {sys.version.split()[0]}, numpy {np.__version__}\n")
    print("| device | atoms | bonds | update, forces (ms) | update, forces + currents (ms) | "
          "extra, median of the paired ratios | extra, total time |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for device in ("filament", "mobile"):
        n, bonds, plain, full, paired, total = measure(device, args.updates, args.tol)
        print(f"| {device} | {n} | {bonds} | {1e3 * plain:.2f} | {1e3 * full:.2f} | "
              f"{100 * paired:+.1f}% | {100 * total:+.1f}% |", flush=True)


if __name__ == "__main__":
    main()
