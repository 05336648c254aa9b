"""Benchmark: laterally infinite leads (``-var leads infinite``) against the periodic ones.

    python benchmarks/bench_infinite.py            # prints Markdown tables (a few minutes)

The shipped filament (inputs/filament.data, 4x4 cubic cells of fcc(001), the 34-atom
filament device) at V = 1 V, beta = 1/2:

1. Convergence of the infinite leads in their zone mesh (n x n) and broadening eta: the
   total recoil force on the filament, the largest per-atom difference from the finest
   mesh at the same eta, and T(E) at E_F and E_F +- 0.5 eV (energy integral to 1e-5 eV/A).
2. Periodic against infinite leads: the periodic leads at the Gamma point (the deck's
   default), and with n x n transverse Bloch vectors and a lead broadening (the periodic
   array of filaments with its leads sampled finely), against the infinite leads.
3. Cost of an MD update at the deck's tol = 1e-2 eV/A: 100 updates of the default deck's
   trajectory (2 ps warm-up, 10 ps at 1 V, dumped every update) replayed with each kind of
   lead, side by side update by update (the same machine load), partitions and lead
   caches kept from update to update as in MD; the first update (empty caches) and the
   median, mean and largest of the others.

Single process, OMP_NUM_THREADS=1.
"""
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_negf import md_dump  # noqa: E402

from lammps_recoil.analysis import read_dump  # noqa: E402
from lammps_recoil.builders import system_from_types  # noqa: E402
from lammps_recoil.check import system_from_data  # noqa: E402
from lammps_recoil.geometry import minimum_image  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DATA = str(ROOT / "inputs" / "filament.data")
MESHES = (16, 32, 64, 128, 256)
ETAS = (0.1, 0.05, 0.02, 0.01, 0.005)


def convergence():
    print("| eta (eV) | mesh | Fz filament (eV/A) | max per-atom dF to mesh 256 (eV/A) "
          "| T(E_F - 0.5) | T(E_F) | T(E_F + 0.5) | seconds |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for eta in ETAS:
        rows = {}
        for n in MESHES:
            t0 = time.perf_counter()
            s = system_from_data(DATA, leads="infinite", inf_kmesh=n, inf_eta=eta)
            r = s.forces(1.0, tol=1e-5)
            T = s.transmission(s.fermi_level + np.array([-0.5, 0.0, 0.5]))
            rows[n] = (r.forces, T, time.perf_counter() - t0)
        for n in MESHES:
            F, T, sec = rows[n]
            dF = np.abs(F - rows[MESHES[-1]][0]).max()
            print(f"| {eta} | {n} | {F.sum(0)[2]:.4f} | {dF:.1e} | {T[0]:.4f} | {T[1]:.4f} "
                  f"| {T[2]:.4f} | {sec:.1f} |")


def periodic_against_infinite():
    print("| leads | Fz filament (eV/A) | Fx, Fy (eV/A) | G(V) (G0) | T(E_F) |")
    print("| --- | --- | --- | --- | --- |")
    cases = [("periodic, Gamma point (deck default)", dict())]
    cases += [(f"periodic, {k}x{k} Bloch vectors, lead_eta 0.01 eV",
               dict(kpoints=k, lead_eta=0.01)) for k in (1, 2, 4, 6, 8)]
    cases += [("infinite, mesh 64, eta 0.01 eV (deck default)", dict(leads="infinite"))]
    for label, kw in cases:
        r = system_from_data(DATA, **kw).forces(1.0, tol=1e-5)
        print(f"| {label} | {r.total[2]:.4f} | {r.total[0]:.4f}, {r.total[1]:.4f} | "
              f"{r.conductance:.4f} | {r.fermi_transmission:.4f} |")


def update_cost(n_updates=100):
    with tempfile.TemporaryDirectory() as tmp:
        frames = read_dump(md_dump(tmp))[-n_updates:]
    order = np.argsort(frames[0]["id"])
    types, ids = frames[0]["type"][order], frames[0]["id"][order]
    box = frames[0].box[:2, 1] - frames[0].box[:2, 0]
    xyz = [np.column_stack([f["x"], f["y"], f["z"]])[np.argsort(f["id"])] for f in frames]
    fil = types == 1
    kinds = ("periodic", "infinite")
    systems, build = {}, {}
    for leads in kinds:
        t0 = time.perf_counter()
        systems[leads] = system_from_types(xyz[0], types, box, ids=ids, leads=leads)
        build[leads] = time.perf_counter() - t0
    last = {leads: systems[leads].positions.copy() for leads in kinds}
    seconds = {leads: [] for leads in kinds}
    points = {leads: [] for leads in kinds}
    rebuilt = dict.fromkeys(kinds, 0)
    for x in xyz:                          # the two kinds side by side, update by update
        for leads in kinds:
            system = systems[leads]
            t0 = time.perf_counter()
            y = x[fil]
            if leads == "infinite":
                y = last[leads] + minimum_image(y - last[leads], box)[0]
                if any(np.concatenate(lead.reach(y)).size for lead in system.leads):
                    rebuilt[leads] += 1
                    xs = x.copy()
                    xs[fil] = y
                    parts = system.energy_partitions()
                    system = systems[leads] = system_from_types(xs, types, box, ids=ids,
                                                                leads=leads)
                    system.set_energy_partitions(parts)
            system.update(y, ids[fil])
            res = system.forces(1.0, tol=1e-2)
            seconds[leads].append(time.perf_counter() - t0)
            points[leads].append(res.n_energies)
            last[leads] = y
    print("| leads | built (ms) | first update (ms) | median (ms) | mean (ms) | largest (ms) "
          "| energy points (median) | patches rebuilt |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for leads in kinds:
        ms = np.array(seconds[leads]) * 1e3
        print(f"| {leads} | {build[leads] * 1e3:.0f} | {ms[0]:.1f} | {np.median(ms[1:]):.1f} "
              f"| {ms[1:].mean():.1f} | {ms[1:].max():.1f} | {int(np.median(points[leads]))} "
              f"| {rebuilt[leads]} |")


def main():
    print(f"`python benchmarks/bench_infinite.py` ({time.strftime('%Y-%m-%d')}, "
          f"{platform.machine()}, Python {platform.python_version()}, numpy "
          f"{np.__version__}, OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']})\n")
    print("Convergence of the infinite leads (shipped filament, 1 V):\n")
    convergence()
    print("\nPeriodic against infinite leads (shipped filament, 1 V):\n")
    periodic_against_infinite()
    print("\nMD update (default deck trajectory replayed, tol 1e-2):\n")
    update_cost()


if __name__ == "__main__":
    main()
