"""Benchmark: one NEGF update of the default filament, this code against other commits.

    python benchmarks/bench_update.py [--commits 3355f23 HEAD] [--updates 30] [--repeat 3]

The default filament between periodic fcc(001) leads (``build_filament().recoil_system()``,
34 device atoms) at V = 1 V, tol = 1e-2 eV/A (the deck's): ``--updates`` updates, each
``system.update`` with every atom moved by a random 0.05 A (Gaussian per coordinate, the
same sequence for every commit) and ``system.forces`` reusing the previous partition, as in
MD. Each commit's ``lammps_recoil`` is taken from git (``git archive``) and run in a fresh
process, the commits alternating ``--repeat`` times (the machine is shared); reported per
commit: the median update over all its runs, the mean energy points, the median ratio to
the first commit within a round, the largest force difference to the first commit, and
(where the code has it) the median of the same updates with ``unbroadened=True``, which
looks for the states no lead channel broadens.
"""
import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

CHILD = """
import inspect, json, sys, time
import numpy as np
from lammps_recoil.builders import build_filament
updates = int(sys.argv[1])
system = build_filament().recoil_system()
x0 = system.positions.copy()
rng = np.random.default_rng(2026)
system.forces(1.0, tol=1e-2)                       # the leads' first energies
times, points, forces = [], [], []
for _ in range(updates):
    x = x0 + 0.05 * rng.standard_normal(x0.shape)
    t0 = time.perf_counter()
    system.update(x)
    res = system.forces(1.0, tol=1e-2)
    times.append(time.perf_counter() - t0)
    points.append(res.n_energies)
    forces.append(res.forces.tolist())
search = []                                        # the same updates, states looked for
if "unbroadened" in inspect.signature(system.forces).parameters:
    rng = np.random.default_rng(2026)
    for _ in range(updates):
        x = x0 + 0.05 * rng.standard_normal(x0.shape)
        t0 = time.perf_counter()
        system.update(x)
        system.forces(1.0, tol=1e-2, unbroadened=True)
        search.append(time.perf_counter() - t0)
import lammps_recoil
print(json.dumps(dict(times=times, points=points, forces=forces, search=search,
                      package=lammps_recoil.__file__)))
"""


def export(commit: str, into: Path) -> Path:
    """The commit's lammps_recoil package under ``into``/<commit>."""
    dest = into / commit
    dest.mkdir()
    archive = subprocess.run(["git", "archive", commit, "lammps_recoil"], cwd=ROOT,
                             capture_output=True, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(dest)
    return dest


def run(path: Path, updates: int) -> dict:
    env = dict(os.environ, PYTHONPATH=str(path), OMP_NUM_THREADS="1")
    # (run in the export: ``python -c`` puts the working directory first on sys.path)
    out = subprocess.run([sys.executable, "-c", CHILD, str(updates)], env=env, cwd=path,
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--commits", nargs="+", default=["3355f23", "HEAD"])
    ap.add_argument("--updates", type=int, default=30)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    names = [subprocess.run(["git", "rev-parse", "--short", c], cwd=ROOT, capture_output=True,
                            text=True, check=True).stdout.strip() for c in args.commits]
    print(f"# python benchmarks/bench_update.py --commits {' '.join(args.commits)} "
          f"--updates {args.updates} --repeat {args.repeat} ({time.strftime('%Y-%m-%d')})\n")
    with tempfile.TemporaryDirectory() as tmp:
        paths = [export(c, Path(tmp)) for c in names]
        results = {c: [] for c in names}
        ratios = {c: [] for c in names}
        for _ in range(args.repeat):
            medians = {}
            for c, path in zip(names, paths):
                r = run(path, args.updates)
                assert r["package"].startswith(str(path)), r["package"]
                results[c].append(r)
                medians[c] = statistics.median(r["times"])
            for c in names:
                ratios[c].append(medians[c] / medians[names[0]])
    ref = np.array(results[names[0]][0]["forces"])
    print("| commit | update (ms, median) | energy points (mean) | ratio to "
          f"{names[0]} | max abs(dF) to {names[0]} (eV/A) | update looking for unbroadened "
          "states (ms, median) |")
    print("| --- | --- | --- | --- | --- | --- |")
    for c in names:
        times = [t for r in results[c] for t in r["times"]]
        points = [p for r in results[c] for p in r["points"]]
        search = [t for r in results[c] for t in r["search"]]
        df = np.abs(np.array(results[c][0]["forces"]) - ref).max()
        looked = f"{1e3 * statistics.median(search):.1f}" if search else "-"
        print(f"| {c} | {1e3 * statistics.median(times):.2f} | {statistics.mean(points):.1f} "
              f"| {statistics.median(ratios[c]):.3f} | {df:.1e} | {looked} |")


if __name__ == "__main__":
    main()
