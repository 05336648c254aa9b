"""Benchmark: MD wall time per simulated ps, plain EAM vs recoil MD, 1 and 2 MPI ranks.

    python benchmarks/bench_md.py [--ps 2] [--tol 1e-3]     # prints a Markdown table

Runs the default deck (inputs/in.filament: 482 atoms, 226 NEGF device atoms, Langevin at
300 K) through the pip route, `lammps-recoil run`, side by side in one session: no
minimization, 1 ps warm-up, then the timed production. Times are LAMMPS's "Loop time" of
the production run; ratios are against plain EAM MD at the same rank count.
"""
import argparse
import csv
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MPIEXEC = Path(sys.executable).parent / "mpiexec"


def production_time(log: str) -> float:
    loops = re.findall(r"Loop time of ([0-9.eE+-]+) on \d+ procs for (\d+) steps", log)
    return float(loops[-1][0])


def run(outdir, name, ranks, ps, **var):
    cmd = [sys.executable, "-m", "lammps_recoil.cli", "run", "inputs/in.filament"]
    for k, v in dict(minimize="no", warmup_ps=1, production_ps=ps, outdir=outdir, name=name,
                     thermo_every=1000, dump_every=100000, **var).items():
        cmd += ["-var", k, str(v)]
    if ranks > 1:
        cmd = [str(MPIEXEC), "-n", str(ranks)] + cmd
    env = dict(os.environ, OMP_NUM_THREADS="1")
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env, check=True)
    series = Path(outdir) / f"{name}.recoil.csv"
    negf = None
    if series.exists():
        with open(series) as fh:
            rows = list(csv.DictReader(fh))
        negf = sum(float(r["negf_s"]) for r in rows[1:]) / max(1, len(rows) - 1)
    return production_time(out.stdout), negf


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ps", type=float, default=2.0, help="timed production (ps)")
    ap.add_argument("--tol", type=float, default=1e-3, help="NEGF energy-integral tolerance")
    args = ap.parse_args()
    print(f"# bench_md.py --ps {args.ps} --tol {args.tol}  ({time.strftime('%Y-%m-%d')}, "
          f"{os.cpu_count()} cores)\n")
    print("| ranks | MD | wall s per simulated ps | ratio to plain EAM | NEGF s per update |")
    print("| --- | --- | --- | --- | --- |")
    with tempfile.TemporaryDirectory() as tmp:
        for ranks in (1, 2):
            plain, _ = run(tmp, f"plain{ranks}", ranks, args.ps, recoil="no")
            plain /= args.ps
            print(f"| {ranks} | plain EAM | {plain:.2f} | 1.00 | - |", flush=True)
            for every in (100, 10):
                t, negf = run(tmp, f"rec{every}_{ranks}", ranks, args.ps, every=every,
                              tol=args.tol)
                t /= args.ps
                print(f"| {ranks} | recoil every {every} steps | {t:.2f} | {t / plain:.1f} | "
                      f"{negf:.3f} |", flush=True)


if __name__ == "__main__":
    main()
