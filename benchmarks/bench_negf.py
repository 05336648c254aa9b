"""Benchmark: recoil-force evaluation and transmission per energy point vs device size.

    python benchmarks/bench_negf.py            # prints Markdown tables (a few minutes)

Devices: the default Cu filament (fcc(001) hourglass, neck 2.9 A, 4 x 4 cubic cells) as
the paper's filament-only NEGF device and with its 1 or 3 mobile electrode layers per
side in the device ("mobile"), longer filaments (cylinder, 2.9 A) in the same cell, and
wider electrodes in fcc(111) cells (n x m rectangles of a x sqrt(3) a; square fcc(001)
cells other than 1, 2, 4 put flat lead bands into a 1 V window). Forces: adaptive integral
at V = 1 V, tol = 1e-2 eV/A (the deck's), after one warm-up evaluation (lead Green's
functions cached, as in an MD run: the atoms are displaced by 0.05 A between the two
calls). Peak memory: the largest memory traced (tracemalloc, numpy arrays included) during
one update and force evaluation, in a separate untimed pass. Trajectory: tolerances from
1 eV/A down to 1e-3 against the true force error and the update time over an MD run (100
updates of the default deck at 300 K and 1 V, replayed from its dump; reference tol 1e-9):
the speed the accuracy buys. Single process, OMP_NUM_THREADS=1.
"""
import os
import platform
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from lammps_recoil import greens  # noqa: E402
from lammps_recoil.analysis import read_dump  # noqa: E402
from lammps_recoil.builders import (ElectrodeSites, build_filament, check_device,  # noqa: E402
                                    system_from_types)
from lammps_recoil.geometry import fcc_lattice  # noqa: E402
from lammps_recoil.integration import DEFAULT_TOL  # noqa: E402

TOL = 1e-2
CASES = [  # (label, build_filament arguments, NEGF device)
    ("(001) 4x4, hourglass (default)", dict(), "filament"),
    ("(001) 4x4, 24-layer cylinder", dict(gap_layers=24, shape="cylinder"), "filament"),
    ("(001) 4x4, 96-layer cylinder", dict(gap_layers=96, shape="cylinder"), "filament"),
    ("(001) 4x4, hourglass, 1 electrode layer", dict(electrode_layers=1), "mobile"),
    ("(001) 4x4, hourglass", dict(), "mobile"),
    ("(001) 4x4, 96-layer cylinder", dict(gap_layers=96, shape="cylinder"), "mobile"),
    ("(111) 8x5, hourglass", dict(orientation="111", nx=8, ny=5), "mobile"),
    ("(111) 10x6, hourglass", dict(orientation="111", nx=10, ny=6), "mobile"),
    ("(111) 12x7, hourglass, 5 electrode layers", dict(orientation="111", nx=12, ny=7,
                                                       electrode_layers=5), "mobile"),
]


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def length_scaling(rng):
    """Cost vs filament length at a fixed cross-section (4x4 cell, cylinder 2.9 A)."""
    print("\nLength scaling, fcc(001) 4x4 cell, cylinder of radius 2.9 A, filament device:\n")
    print("| filament layers | device atoms | solver | fixed 32 points (s) | per point (ms) | "
          "adaptive points | adaptive update (s) |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    rows = []
    for layers in (6, 12, 24, 48, 96):
        system = build_filament(gap_layers=layers, shape="cylinder").recoil_system()
        system.forces(1.0, n_points=16)                       # warm-up (lead caches)
        system.update(system.positions + 0.05 * rng.standard_normal(system.positions.shape))
        _, fixed = timed(lambda: system.forces(1.0, n_points=16))
        res, adaptive = timed(lambda: system.forces(1.0, tol=TOL))
        rows.append((layers, fixed, adaptive))
        solver = "dense" if system.n_atoms <= greens.SCHUR_MAX else "sparse"
        print(f"| {layers} | {system.n_atoms} | {solver} | {fixed:.3f} | {1e3 * fixed / 32:.2f} | "
              f"{res.n_energies} | {adaptive:.3f} |", flush=True)
    n, fixed, adaptive = (np.array(c) for c in zip(*rows))
    slope = lambda y: np.polyfit(np.log(n), np.log(y), 1)[0]
    print(f"\nfitted exponent, time ~ (filament layers)^p: fixed energy grid p = "
          f"{slope(fixed):.2f}, adaptive update p = {slope(adaptive):.2f} (the number of "
          "resonances in the bias window grows with the length)")


def solver_crossover(rng):
    """Cost of an update (new positions, then forces on 32 fixed points) with the dense
    boundary solver and with the sparse per-energy solver vs filament length, and the
    exponent of each solver's growth."""
    print("\nSolvers: update on new positions plus forces on 32 fixed energy points, per point "
          "(ms), filament devices of growing length (4x4 cell, cylinder):\n")
    print("| filament layers | device atoms | dense on the boundary atoms, batched | sparse LU, "
          "per energy |")
    print("| --- | --- | --- | --- |")
    default, layers, cost = greens.SCHUR_MAX, (6, 12, 24, 48, 72, 96), []
    for n in layers:
        row = []
        for schur_max in (10**6, 0):
            greens.SCHUR_MAX = schur_max
            system = build_filament(gap_layers=n, shape="cylinder").recoil_system()
            x0 = system.positions
            system.forces(1.0, n_points=16)                       # lead caches
            best = np.inf
            for _ in range(3):
                system.update(x0 + 0.05 * rng.standard_normal(x0.shape))
                best = min(best, timed(lambda: system.forces(1.0, n_points=16))[1])
            row.append(1e3 * best / 32)
        cost.append(row)
        print(f"| {n} | {system.n_atoms} | {row[0]:.3f} | {row[1]:.3f} |", flush=True)
    greens.SCHUR_MAX = default
    slope = [np.polyfit(np.log(layers), np.log(c), 1)[0] for c in np.transpose(cost)]
    print(f"\nfitted exponent, time ~ (filament layers)^p: dense on the boundary p = "
          f"{slope[0]:.2f}, sparse p = {slope[1]:.2f} (SCHUR_MAX = {default} atoms)")


def md_dump(outdir) -> str:
    """Run the default deck (2 ps warm-up, 10 ps at 1 V) with a dump at every recoil update;
    returns the dump's path."""
    root = Path(__file__).resolve().parents[1]
    subprocess.run([sys.executable, "-m", "lammps_recoil.cli", "run",
                    str(root / "inputs/in.filament"), "-var", "warmup_ps", "2", "-var",
                    "production_ps", "10", "-var", "dump_every", "100", "-var", "outdir",
                    outdir, "-var", "name", "traj"], cwd=root, check=True, capture_output=True)
    return f"{outdir}/traj.dump"


def replay(dump, n=100, comm=None, device="filament"):
    """The NEGF system (``device`` filament or mobile) of the dump's first of the last
    ``n`` frames and the device atoms' positions and ids in those frames, for replaying the
    MD updates."""
    frames = read_dump(dump)[-n:]
    order = np.argsort(frames[0]["id"])
    types, ids = frames[0]["type"][order], frames[0]["id"][order]
    box = frames[0].box[:2, 1] - frames[0].box[:2, 0]
    xyz = [np.column_stack([f["x"], f["y"], f["z"]])[np.argsort(f["id"])] for f in frames]
    sites = ElectrodeSites(xyz[0], types, box, fcc_lattice("001"), ids)
    system = system_from_types(xyz[0], types, box, ids=ids, sites=sites, comm=comm,
                               device=device)
    inside = np.isin(types, check_device(device))
    return system, [x[inside] for x in xyz], ids[inside]


def trajectory_accuracy(tols=(1.0, 1e-1, 3e-2, 1e-2, 1e-3)):
    """Energy points, true force errors and update times of the adaptive rule along an MD
    trajectory: each tolerance replays the whole trajectory on its own (its partitions
    reused from update to update, as in MD), an update being system.update and
    system.forces."""
    with tempfile.TemporaryDirectory() as tmp:
        system, xyz, ids = replay(md_dump(tmp))
    refs = {}
    for k in range(0, len(xyz), 2):
        system.update(xyz[k], ids)
        refs[k] = system.forces(1.0, tol=1e-9).forces
    rows = {tol: [] for tol in tols}
    seconds = {tol: [] for tol in tols}           # (energy points, system.update, update)
    for tol in tols:
        for k, x in enumerate(xyz):
            t0 = time.perf_counter()
            system.update(x, ids)
            t1 = time.perf_counter()
            res = system.forces(1.0, tol=tol)
            seconds[tol].append((res.n_energies, t1 - t0, time.perf_counter() - t0))
            if k in refs:
                rows[tol].append((res.n_energies, np.abs(res.forces - refs[k]).max(),
                                  res.error))
    print(f"\nAdaptive rule along an MD trajectory ({len(xyz)} updates of the default deck at "
          f"300 K, V = 1 V, filament device; true error against tol 1e-9 at every second "
          "update; update: the median wall time of system.update and system.forces, and of\n"
          "system.update alone, the geometry):\n")
    print("| tol | energy points, mean (max) | true force error, median / 90% / max (eV/A) | "
          "error estimate, median | update (ms) | of which system.update (ms) |")
    print("| --- | --- | --- | --- | --- | --- |")
    for tol in tols:
        n, err, est = (np.array(c) for c in zip(*rows[tol]))
        t = np.array(seconds[tol])
        label = {TOL: " (deck)", DEFAULT_TOL: " (Python)"}.get(tol, "")
        print(f"| {tol:g}{label} | {n.mean():.1f} ({n.max():.0f}) | {np.median(err):.1e} / "
              f"{np.percentile(err, 90):.1e} / {err.max():.1e} | {np.median(est):.1e} | "
              f"{1e3 * np.median(t[:, 2]):.2f} | {1e3 * np.median(t[:, 1]):.2f} |", flush=True)
    # the typical update of each tolerance (medians: updates that need a second adaptive
    # round pay a second batch set-up and would tilt a fit through all of them)
    med = np.array([np.median(seconds[tol], axis=0) for tol in tols])
    per_point, fixed = np.polyfit(med[:, 0], med[:, 2], 1)
    print(f"\nLine through the medians (energy points, update) of the {len(tols)} "
          f"tolerances: update = {1e3 * fixed:.2f} ms + {1e6 * per_point:.1f} us per energy "
          f"point; the part that does not depend on the number of energies is system.update "
          f"({1e3 * np.median(med[:, 1]):.2f} ms) and the set-up of the batch of energies.")


def main():
    rng = np.random.default_rng(0)
    print(f"# python benchmarks/bench_negf.py  ({time.strftime('%Y-%m-%d')}, "
          f"{platform.processor() or platform.machine()}, python {sys.version.split()[0]}, "
          f"numpy {np.__version__})")
    print("\n| system | NEGF device | atoms | energy points | force eval (s) | per point (ms) "
          "| leads / solve / contraction (s) | T(E) per point (ms) | peak memory of the update "
          "(MB) |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for label, kw, device in CASES:
        fil = build_filament(**kw)
        system = fil.recoil_system(device=device)
        x0 = system.positions
        system.forces(1.0, tol=TOL)                          # warm-up: lead caches
        system.update(x0 + 0.05 * rng.standard_normal(x0.shape))
        res, dt = timed(lambda: system.forces(1.0, tol=TOL))
        t = res.timings
        E = np.linspace(0.2, 1.0, 5)
        _, dtT = timed(lambda: system.transmission(E))
        tracemalloc.start()                      # numpy arrays are traced; untimed pass
        system.update(x0 + 0.05 * rng.standard_normal(x0.shape))
        system.forces(1.0, tol=TOL)
        peak = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
        print(f"| {label} | {device} | {system.n_atoms} | {res.n_energies} | {dt:.3f} | "
              f"{1e3 * dt / res.n_energies:.2f} | {t['leads']:.3f} / {t['solve']:.3f} / "
              f"{t['forces']:.3f} | {1e3 * dtT / len(E):.2f} | {peak:.1f} |", flush=True)
    solver_crossover(rng)
    length_scaling(rng)
    trajectory_accuracy()
    print("\nFixed Gauss-Legendre rules, default filament device: error vs the adaptive "
          "tol = 1e-6 result")
    print("\n| rule | energy points | force eval (s) | max force error (eV/A) |")
    print("| --- | --- | --- | --- |")
    system = build_filament().recoil_system()
    ref = system.forces(1.0, tol=1e-6)
    for n in (8, 16, 32, 64):
        res, dt = timed(lambda: system.forces(1.0, n_points=n))
        print(f"| Gauss-Legendre {n} per half window | {res.n_energies} | {dt:.3f} | "
              f"{np.abs(res.forces - ref.forces).max():.1e} |")
    for tol in (1e-1, 1e-2, 1e-3):
        system._partitions.clear()                  # a fresh adaptive integral
        res, dt = timed(lambda: system.forces(1.0, tol=tol))
        print(f"| adaptive, tol {tol:g} | {res.n_energies} | {dt:.3f} | "
              f"{np.abs(res.forces - ref.forces).max():.1e} |")
    print(f"\n(reference: adaptive tol 1e-6, {ref.n_energies} points)")


if __name__ == "__main__":
    main()
