"""Benchmark: large NEGF devices - update time, energy points and memory versus size, the
solvers' crossover, where an update goes, recoil MD against plain EAM MD, MPI ranks and
BLAS threads, and the true force error along MD.

    OMP_NUM_THREADS=1 python benchmarks/bench_large.py sizes [--quick] [--reps 3]
    OMP_NUM_THREADS=1 python benchmarks/bench_large.py crossover [--reps 3]
    OMP_NUM_THREADS=1 python benchmarks/bench_large.py stages [--reps 5]
    OMP_NUM_THREADS=1 python benchmarks/bench_large.py md [--ps 2] [--repeat 2]
    OMP_NUM_THREADS=1 python benchmarks/bench_large.py ranks [--repeat 2] [--rounds 3]
    OMP_NUM_THREADS=1 python benchmarks/bench_large.py accuracy
    OMP_NUM_THREADS=1 python benchmarks/bench_large.py precision
    OMP_NUM_THREADS=1 python benchmarks/bench_large.py pools [--rounds 3]

Each prints Markdown tables headed by its command. An update is ``system.update``
(positions displaced 0.05 A rms, a new seed each repetition) plus ``system.forces(1.0,
tol=1e-2)`` (the deck's tolerance) after a warm-up evaluation, as in MD: lead Green's
functions cached, energy partitions reused. Single process unless stated. The machine may
be shared: besides wall times the tables give CPU (process) times, which another process
on the machine changes less.

``sizes``: two series of (111) hourglass filaments (the default filament device): in
length, the 10x6 cell with neck 5 A and base 8 A from 12 to 96 filament layers, after the
default (001) 4x4 filament; in cross-section, 12 layers in cells from 6x4 to 36x20 with
the radii grown with the cell. Columns: slabs of the recursive Green's function and the
largest, the boundary atoms (B_L, B_R), energy points, the median update (wall and CPU)
and its CPU cost per point, and the peak memory traced during one update (tracemalloc,
numpy arrays included; a separate untimed pass). Then least-squares exponents against
log(atoms) (the length series without the default filament).

``crossover``: the dense Schur solver and the RGF on the same devices of 120-434 atoms,
thin and fat, each with its own system, side by side (CPU time of an update).

``stages``: where a batch of energies goes, for the two devices of ``md`` and the default
filament (ideal positions, one batch of the system's size in the upper half of the
window, the right lead injecting): CPU time per energy of the self-energies and the solve
for the scattering states of the right lead's open channels (above SCHUR_MAX atoms; else
for G_F's columns at B_R) (``Scattering``), the number of those columns, the density factors of Eq. 9, the bond
densities as the system forms them and T(E), and the bond densities gathered per bond
(``greens.bond_density``) for comparison; median of ``--reps``.

``md``: the decks of the 878-atom (111) 14x8 filament (24 layers, neck 7 A, base 10 A;
4014 atoms) and of the 963-atom mobile device of the (111) 10x6 filament (12 layers, neck
5 A, base 8 A; 1923 atoms) run as plain EAM MD and with recoil forces every 100 steps,
side by side in one invocation (tests/in.checks through `lammps-recoil run`: Langevin at
300 K, 1 V, no minimization or warm-up, only the timed production; ``--repeat`` runs per
configuration, interleaved, the fastest counts). The recoil update is the median of the
run's time series (``negf_s``, the first update at setup left out). The last column
compares the two within the recoil run alone (LAMMPS's timing breakdown: the recoil
callbacks' time, Modify beyond the plain run's, against the EAM work, Pair, of the same
run), which the load of a shared machine moves less than two runs' wall times.

``ranks``: the 878-atom device's updates replayed on 1 and 2 MPI ranks (the venv's
mpiexec; energy points shared among the ranks as in MD), and on 1 rank with 2 BLAS
threads, from the frames of a 300 K plain EAM run of its deck (1 ps, a frame every 100
steps); each configuration replays the frames ``--repeat`` times from a fresh system, in
``--rounds`` rounds that run the configurations in turn (so that a change of the shared
host's load falls on all of them), the fastest time of each frame over all counts, the
first two frames (partitions settling) are left out. Besides the wall time, the CPU time
of the busiest rank (the division of the work). The replicated fraction f is the part of
one rank's update that every rank repeats, from t_2 / t_1 = f + (1 - f) / 2; the model
t_n / t_1 = f + (1 - f) / n extends it to more ranks.

``accuracy``: frames of a 300 K plain EAM run of each deck (3 ps, every third frame) at
tol 3e-2, 1e-2 (the deck's), 3e-3 and 1e-3, and at 1e-2 with a cut at every channel edge,
against tol 1e-5, each replaying the frames on its own with its partitions reused: energy
points, the true force error (largest component, eV/A), the error estimate and the update
(wall), for the 878-atom filament device, the 963-atom mobile device and the 243-atom
filament device of the same deck.

``precision``: the frames of a 300 K plain EAM run of each deck of ``md`` (3 ps, every
third frame) replayed by two systems, RecoilSystem's precision "double" and "mixed" (the
default: the recursive Green's function of the forces' integrand in single precision),
each with its own partitions: median CPU time of an update (the first two frames left
out), energy points, the largest difference of a force component, of the conductance and
of T(E_F) and its transmission eigenvalues; the smallest pivot ratio that the
single-precision LU factorizations met (rgf.pivot_ratio, of how many) and the number of
them below rgf.SINGLE_PIVOT, whose energies were solved again in double.

``pools``: the 878-atom device's updates on the frames of a 300 K plain EAM run of its
deck (1 ps, a frame every 100 steps) with numpy's and scipy's OpenBLAS thread pools set
to one or two threads through the libraries (parallel.openblas_pools), in "double" and
"mixed", and in "mixed" with both pools threaded and RecoilSystem._single's rule on the
pools left out (the contention the rule avoids); each configuration replays the frames
from a fresh system, ``--rounds`` rounds of the configurations in turn, the median wall
time of an update without the first two frames, the fastest round counts.
"""
import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import tracemalloc
from unittest import mock
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from lammps_recoil import greens, rgf  # noqa: E402
from lammps_recoil.analysis import read_dump  # noqa: E402
from lammps_recoil.builders import build_filament, check_device, system_from_types  # noqa: E402
from lammps_recoil.parallel import keep_heap  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
MPIEXEC = Path(sys.executable).parent / "mpiexec"
TOL, BIAS, AMPLITUDE = 1e-2, 1.0, 0.05
hourglass = lambda nx, ny, layers, neck, base: dict(orientation="111", nx=nx, ny=ny,
                                                    gap_layers=layers, neck_radius=neck,
                                                    base_radius=base)
DEFAULT = ("(001) 4x4, 6 layers (default)", dict())
LENGTH = [(f"(111) 10x6, {n} layers, neck 5, base 8", hourglass(10, 6, n, 5.0, 8.0))
          for n in (12, 24, 48, 96)]
SECTION = [(f"(111) {nx}x{ny}, 12 layers, neck {r:g}, base {b:g}",
            hourglass(nx, ny, 12, r, b))
           for nx, ny, r, b in ((6, 4, 3.0, 4.5), (10, 6, 5.0, 8.0), (14, 8, 7.0, 10.0),
                                (18, 10, 9.0, 13.0), (26, 15, 13.0, 19.0),
                                (36, 20, 19.0, 26.0))]
#: The decks of the md, ranks and accuracy sections: (label, build_filament arguments,
#: NEGF device).
DECKS = {"878": ("(111) 14x8, 24 layers, neck 7, base 10; filament device",
                 hourglass(14, 8, 24, 7.0, 10.0), "filament"),
         "963": ("(111) 10x6, 12 layers, neck 5, base 8; mobile device",
                 hourglass(10, 6, 12, 5.0, 8.0), "mobile")}
#: The accuracy section's decks: those above and the 243-atom filament device of the 963's.
ACCURACY = dict(DECKS, **{"243": ("(111) 10x6, 12 layers, neck 5, base 8; filament device",
                                  hourglass(10, 6, 12, 5.0, 8.0), "filament")})


def header(command):
    print(f"`OMP_NUM_THREADS=1 python benchmarks/bench_large.py {command}` "
          f"({datetime.date.today()}, {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} cores, Python {sys.version.split()[0]}, numpy {np.__version__}; "
          f"V = {BIAS} V, tol {TOL})\n", flush=True)


def displaced(x0, seed):
    return x0 + AMPLITUDE * np.random.default_rng(seed).standard_normal(x0.shape)


def use_solver(system, solver):
    """Rebuild the system's device matrices with one solver (cheap: factors are lazy)."""
    system._M = [greens.DeviceMatrix(H, system.lead_contacts, system.eta, solver)
                 for H in system._H]


def measure(args, reps, solvers=("auto",)):
    """Atoms, slab sizes, boundary sizes, energy points and, per solver, the median wall
    and CPU time of an update; each solver has its own system (its own lead caches and
    partitions, as in MD), all timed side by side on the same positions."""
    geometry = build_filament(**args)
    systems = {name: geometry.recoil_system() for name in solvers}
    x0 = systems[solvers[0]].positions.copy()
    wall, cpu = ({name: [] for name in solvers} for _ in range(2))
    points = []
    for name, system in systems.items():                  # warm-up
        use_solver(system, name)
        system.forces(BIAS, tol=TOL)
    for rep in range(reps):
        x = displaced(x0, rep)
        for name, system in systems.items():
            t0, c0 = time.perf_counter(), time.process_time()
            system.update(x)
            use_solver(system, name)
            r = system.forces(BIAS, tol=TOL)
            wall[name].append(time.perf_counter() - t0)
            cpu[name].append(time.process_time() - c0)
            if name == solvers[0]:
                points.append(r.n_energies)
    system = systems[solvers[0]]
    slabs = np.diff(greens.DeviceMatrix(system._H[0], system.lead_contacts, 0.0,
                                        "rgf").slabs().bounds)
    return (system, slabs, [len(c.boundary) for c in system.lead_contacts],
            int(np.median(points)), {k: float(np.median(v)) for k, v in wall.items()},
            {k: float(np.median(v)) for k, v in cpu.items()})


def peak_memory(system, x0, seed) -> int:
    """The largest memory traced (bytes) during one update of the system."""
    tracemalloc.start()
    system.update(displaced(x0, seed))
    system.forces(BIAS, tol=TOL)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


def exponent(n, t):
    return float(np.polyfit(np.log(n), np.log(t), 1)[0])


def sizes(opt):
    header(f"sizes{' --quick' if opt.quick else ''} --reps {opt.reps}")
    series = [("length", [DEFAULT] + (LENGTH[:2] if opt.quick else LENGTH)),
              ("cross-section", SECTION[:3] if opt.quick else SECTION)]
    print("| series | device | atoms | slabs (largest) | B_L, B_R | energy points | update, "
          "wall (s) | update, CPU (s) | CPU ms per point | peak memory (MB) |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    fits = []
    for name, cases in series:
        rows = []
        for label, args in cases:
            system, slabs, bnd, p, wall, cpu = measure(args, opt.reps)
            peak = peak_memory(system, system.positions.copy(), opt.reps)
            n, t, c = system.n_atoms, wall["auto"], cpu["auto"]
            rows.append((n, c, p, peak))
            print(f"| {name} | {label} | {n} | {len(slabs)} ({slabs.max()}) | {bnd[0]}, {bnd[1]} "
                  f"| {p} | {t:.3f} | {c:.3f} | {1e3 * c / p:.2f} | {peak / 2**20:.0f} |",
                  flush=True)
        n, c, p, peak = (np.array(v) for v in zip(*rows[1:] if name == "length" else rows))
        fits.append((name, n, exponent(n, p), exponent(n, c), exponent(n, c / p),
                     exponent(n, peak)))
    print("\n| series | atoms | exponent of: energy points | update (CPU) | update per point "
          "| peak memory |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    for name, n, ep, et, eq, em in fits:
        print(f"| {name} | {n[0]}-{n[-1]} | {ep:.2f} | {et:.2f} | {eq:.2f} | {em:.2f} |")


CROSSOVER = [("(001) 4x4 cylinder, 24 layers", dict(gap_layers=24, shape="cylinder")),
             ("(001) 4x4 cylinder, 48 layers", dict(gap_layers=48, shape="cylinder")),
             ("(111) 8x5, 12 layers, neck 4, base 6.5", hourglass(8, 5, 12, 4.0, 6.5)),
             ("(111) 8x5, 18 layers, neck 4, base 6.5", hourglass(8, 5, 18, 4.0, 6.5)),
             ("(111) 10x6, 12 layers, neck 5, base 8", hourglass(10, 6, 12, 5.0, 8.0)),
             ("(111) 14x8, 12 layers, neck 7, base 10", hourglass(14, 8, 12, 7.0, 10.0))]


def crossover(opt):
    """The dense Schur solver against the RGF around SCHUR_MAX atoms."""
    header(f"crossover --reps {opt.reps}")
    print(f"(`\"auto\"`: Schur up to SCHUR_MAX = {greens.SCHUR_MAX} atoms.)\n")
    print("| device | atoms | slabs (largest) | B_L, B_R | energy points | update Schur, CPU (s) "
          "| update RGF, CPU (s) | Schur / RGF |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for label, args in CROSSOVER:
        system, slabs, bnd, p, _, cpu = measure(args, opt.reps, ("schur", "rgf"))
        print(f"| {label} | {system.n_atoms} | {len(slabs)} ({slabs.max()}) | {bnd[0]}, "
              f"{bnd[1]} | {p} | {cpu['schur']:.3f} | {cpu['rgf']:.3f} | "
              f"{cpu['schur'] / cpu['rgf']:.2f} |", flush=True)


def stages(opt):
    """CPU time per energy point of the stages of a batch of energies (one Bloch vector,
    the right lead injecting: energies in (E_F, mu_R]), for the two deck devices."""
    header(f"stages --reps {opt.reps}")
    print("| device | atoms | B_L, B_R | energies per batch | columns solved | self-energies "
          "and solve (Scattering) | density factors | bond densities | transmission | all "
          "(ms per energy) | bond densities gathered per bond |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for label, args, device in [DECKS[k] for k in DECKS] + [("(001) 4x4, 6 layers (default); "
                                                            "filament device", {}, "filament")]:
        system = build_filament(**args).recoil_system(device=device)
        ne = system._batch
        E = system.fermi_level + np.linspace(0.02, 0.48, ne)
        gs = [system._lead_gf(s, E, 0) for s in (0, 1)]
        phase = system.ext_bonds.phases(None)
        b = system.ext_bonds
        parts = {k: [] for k in ("solve", "factors", "bonds", "T", "gathered")}
        for _ in range(opt.reps):
            c0 = time.process_time()
            sc = system.scattering(E, 0, (1,), gs, system._states)
            c1 = time.process_time()
            X, P, _ = sc.density_factors(1)
            c2 = time.process_time()
            system._bond_density(X, P, phase)
            c3 = time.process_time()
            sc.transmission()
            c4 = time.process_time()
            greens.bond_density(b.i, b.j, X, P, phase)
            c5 = time.process_time()
            for key, dt in zip(parts, (c1 - c0, c2 - c1, c3 - c2, c4 - c3, c5 - c4)):
                parts[key].append(1e3 * dt / ne)
        med = {k: float(np.median(v)) for k, v in parts.items()}
        bnd = ", ".join(str(len(c.boundary)) for c in system.lead_contacts)
        total = med["solve"] + med["factors"] + med["bonds"] + med["T"]
        print(f"| {label} | {system.n_atoms} | {bnd} | {ne} | {X.shape[2]} | "
              f"{med['solve']:.3f} | "
              f"{med['factors']:.3f} | {med['bonds']:.3f} | {med['T']:.3f} | {total:.3f} | "
              f"{med['gathered']:.3f} |", flush=True)


# ------------------------------------------------------------------ decks and frames
def deck_data(key, outdir) -> str:
    """Write the deck's data file (build_filament); returns its path."""
    _, args, _ = ACCURACY[key]
    path = f"{outdir}/deck{key}.data"
    build_filament(**args).write_data(path)
    return path


def frames_run(key, outdir, ps) -> str:
    """A 300 K plain EAM run of the deck (tests/in.checks, no bias), a frame every 100
    steps; returns the dump's path."""
    name = f"frames{key}"
    cmd = [sys.executable, "-m", "lammps_recoil.cli", "run", "tests/in.checks"]
    for k, v in dict(data=deck_data(key, outdir), production_ps=ps, recoil="no",
                     outdir=outdir, name=name, dump_every=100, thermo_every=1000,
                     overwrite="yes").items():
        cmd += ["-var", k, str(v)]
    subprocess.run(cmd, cwd=ROOT, capture_output=True, check=True,
                   env=dict(os.environ, OMP_NUM_THREADS="1"))
    return f"{outdir}/{name}.dump"


def replay(dump, device, comm=None, every=1):
    """The NEGF system of the dump's first frame (``device`` atoms) and the device atoms'
    positions and ids in every ``every``-th frame."""
    frames = read_dump(dump)[::every]
    order = np.argsort(frames[0]["id"])
    types, ids = frames[0]["type"][order], frames[0]["id"][order]
    box = frames[0].box[:2, 1] - frames[0].box[:2, 0]
    xyz = [np.column_stack([f["x"], f["y"], f["z"]])[np.argsort(f["id"])] for f in frames]
    system = system_from_types(xyz[0], types, box, ids=ids, device=device, comm=comm)
    inside = np.isin(types, check_device(device))
    return system, [x[inside] for x in xyz], ids[inside]


def md(opt):
    header(f"md --ps {opt.ps:g} --repeat {opt.repeat}")
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from bench_md import run
    print("| deck | atoms (NEGF device) | MD | wall s per 100 steps | EAM (Pair) s per 100 "
          "steps | ratio to plain EAM | update, median (s) | energy points | update / 100 "
          "plain EAM steps | within the run: recoil / EAM |")
    print("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    with tempfile.TemporaryDirectory() as tmp:
        data = {key: deck_data(key, tmp) for key in DECKS}
        best = {}
        for _ in range(opt.repeat):
            for key, (_, _, device) in DECKS.items():
                for recoil in ("no", "yes"):
                    res = run(tmp, f"md{key}{recoil}", 1, opt.ps, TOL, data=data[key],
                              device=device, recoil=recoil, every=100)
                    if (key, recoil) not in best or (res[0]["loop"]
                                                     < best[key, recoil][0]["loop"]):
                        best[key, recoil] = res
        for key, (label, args, device) in DECKS.items():
            geometry = build_filament(**args)
            atoms = f"{len(geometry.positions)} ({len(geometry.device(device))})"
            base = best[key, "no"][0]                    # seconds per ps of the run
            plain = base["loop"] / 10                     # s per 100 steps
            for recoil in ("no", "yes"):
                t, update, points = best[key, recoil]
                loop = t["loop"] / 10
                # within the recoil run: the callbacks' time (Modify beyond the plain run's)
                # against the EAM work (Pair) of the same run
                extra = ("- | - | - | -" if update is None else
                         f"{update[1]:.3f} | {points:.0f} | {update[1] / plain:.2f} | "
                         f"{(t['modify'] - base['modify']) / t['pair']:.2f}")
                what = "plain EAM" if recoil == "no" else "recoil every 100 steps"
                print(f"| {label} | {atoms} | {what} | {loop:.3f} | {t['pair'] / 10:.3f} | "
                      f"{loop / plain:.2f} | {extra} |", flush=True)


# ------------------------------------------------------------------ MPI ranks
def ranks_child(dump, repeat):
    from mpi4py import MPI
    keep_heap()
    comm = MPI.COMM_WORLD
    _, xyz, ids = replay(dump, DECKS["878"][2])
    best = np.full(len(xyz), np.inf)
    cpu = np.full(len(xyz), np.inf)
    points = []
    for _ in range(repeat):
        system, _, _ = replay(dump, DECKS["878"][2],
                              comm=comm if comm.Get_size() > 1 else None)
        for k, x in enumerate(xyz):
            comm.Barrier()
            t0, c0 = MPI.Wtime(), time.process_time()
            system.update(x, ids)
            r = system.forces(BIAS, tol=TOL)
            c1 = time.process_time()
            comm.Barrier()
            best[k] = min(best[k], MPI.Wtime() - t0)
            cpu[k] = min(cpu[k], comm.allreduce(c1 - c0, op=MPI.MAX))
            points.append(r.n_energies)
    if comm.Get_rank() == 0:
        print(json.dumps([best.tolist(), cpu.tolist(), float(np.mean(points))]))


def ranks(opt):
    header(f"ranks --repeat {opt.repeat} --rounds {opt.rounds}")
    print("| ranks | update, median (s) | energy points, mean | median / 1 rank | CPU time "
          "of the busiest rank, median (s) | CPU / 1 rank |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    configs = ((1, 1), (2, 1), (1, 2))
    best = {}
    with tempfile.TemporaryDirectory() as tmp:
        dump = frames_run("878", tmp, 1.0)
        for _ in range(opt.rounds):
            for n, threads in configs:
                cmd = [sys.executable, __file__, "ranks", "--child", dump, "--repeat",
                       str(opt.repeat)]
                if n > 1:
                    cmd = [str(MPIEXEC), "-n", str(n)] + cmd
                out = subprocess.run(cmd, capture_output=True, text=True, check=True,
                                     env=dict(os.environ, OMP_NUM_THREADS=str(threads)))
                times, cpu, points = json.loads(out.stdout.strip().splitlines()[-1])
                got = (np.array(times), np.array(cpu), points)
                old = best.get((n, threads), got)
                best[n, threads] = (np.minimum(old[0], got[0]), np.minimum(old[1], got[1]),
                                    points)
    t, c = {}, {}
    for n, threads in configs:
        times, cpu, points = best[n, threads]
        wall, busy = float(np.median(times[2:])), float(np.median(cpu[2:]))
        if threads == 1:
            t[n], c[n] = wall, busy
        print(f"| {n}{', 2 BLAS threads' if threads > 1 else ''} | {wall:.3f} | "
              f"{points:.0f} | {wall / t[1]:.2f} | {busy:.3f} | {busy / c[1]:.2f} |",
              flush=True)
    for what, x in (("wall", t), ("CPU", c)):
        f = 2.0 * x[2] / x[1] - 1.0
        model = ", ".join(f"{n}: {f + (1 - f) / n:.2f}" for n in (4, 8, 16, 32))
        print(f"\nReplicated fraction by {what} time f = 2 t_2 / t_1 - 1 = {f:.3f}; modelled "
              f"t_n / t_1 = f + (1 - f) / n for n = {model}.")


# ------------------------------------------------------------------ accuracy
def accuracy(opt):
    header("accuracy")
    tols = (3e-2, 1e-2, 3e-3, 1e-3)
    print("| device | tol | energy points, mean (max) | true force error, median / max (eV/A) "
          "| error estimate, median | update, median (s) |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    with tempfile.TemporaryDirectory() as tmp:
        for key, (label, _, device) in ACCURACY.items():
            dump = frames_run(key, tmp, 3.0)
            system, xyz, ids = replay(dump, device, every=3)
            xyz = xyz[1:]
            refs = []
            for x in xyz:
                system.update(x, ids)
                refs.append(system.forces(BIAS, tol=1e-5).forces)
            window = system.fermi_level + np.array([-0.5, 0.5]) * BIAS
            edges = system._kinks()
            inside = edges[(edges > window[0]) & (edges < window[1])]
            print(f"| {label} | (channel edges in the window: {len(inside)}, cut at tol "
                  f"{TOL:g}: {len(np.intersect1d(inside, system._cuts(TOL)))}) | | | | |")
            for tol in tols + ("every edge cut",):
                system, _, _ = replay(dump, device)
                if tol == "every edge cut":
                    system._cuts = lambda _, s=system: s._kinks()
                rows = []
                for x, ref in zip(xyz, refs):
                    t0 = time.perf_counter()
                    system.update(x, ids)
                    r = system.forces(BIAS, tol=TOL if isinstance(tol, str) else tol)
                    rows.append((r.n_energies, np.abs(r.forces - ref).max(), r.error,
                                 time.perf_counter() - t0))
                n, err, est, t = (np.array(c) for c in zip(*rows))
                what = (f"{TOL:g}, {tol}" if isinstance(tol, str) else
                        f"{tol:g}{' (deck)' if tol == TOL else ''}")
                print(f"| {label} | {what} | {n.mean():.0f} "
                      f"({n.max()}) | {np.median(err):.1e} / {err.max():.1e} | "
                      f"{np.median(est):.1e} | {np.median(t):.3f} |", flush=True)


def precision(opt):
    """RecoilSystem's precision "mixed" (the default) against "double" on the frames of a
    300 K plain EAM run of each deck of ``md``."""
    header("precision")
    print("| device | update, double: median CPU (s) | update, mixed: median CPU (s) | "
          "mixed / double | energy points, double / mixed (mean) | force difference, "
          "median / max (eV/A) | largest force (eV/A) | conductance difference, max "
          "(relative) | T(E_F) and channels, largest difference | smallest pivot ratio "
          "(single-precision LUs) | energies solved again in double |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    ratio = rgf.pivot_ratio
    seen = []

    def watched(diagonal, size):             # the pivot ratios the single solves meet
        r = ratio(diagonal, size)
        seen.extend(r)
        return r
    with tempfile.TemporaryDirectory() as tmp:
        for key, (label, _, device) in DECKS.items():
            dump = frames_run(key, tmp, 3.0)
            systems = {}
            for name in ("double", "mixed"):
                systems[name], xyz, ids = replay(dump, device, every=3)
                systems[name].precision = name
            cpu = {name: [] for name in systems}
            points = {name: [] for name in systems}
            dF, dG, dT, big = [], [], [], 0.0
            seen.clear()
            with mock.patch.object(rgf, "pivot_ratio", watched):
                for x in xyz:
                    res = {}
                    for name, system in systems.items():
                        c0 = time.process_time()
                        system.update(x, ids)
                        res[name] = system.forces(BIAS, tol=TOL)
                        cpu[name].append(time.process_time() - c0)
                        points[name].append(res[name].n_energies)
                    d, m = res["double"], res["mixed"]
                    dF.append(np.abs(m.forces - d.forces).max())
                    dG.append(abs(m.conductance / d.conductance - 1.0))
                    dT.append(max(abs(m.fermi_transmission - d.fermi_transmission),
                                  np.abs(m.channels - d.channels).max(initial=0.0)))
                    big = max(big, float(np.abs(d.forces).max()))
            # the first two frames: the partitions settle
            t = {name: float(np.median(v[2:])) for name, v in cpu.items()}
            print(f"| {label} | {t['double']:.3f} | {t['mixed']:.3f} | "
                  f"{t['mixed'] / t['double']:.2f} | {np.mean(points['double']):.0f} / "
                  f"{np.mean(points['mixed']):.0f} | {np.median(dF):.1e} / {max(dF):.1e} | "
                  f"{big:.2f} | {max(dG):.1e} | {max(dT):.1e} | {min(seen):.3f} of "
                  f"{len(seen)} | {sum(r < rgf.SINGLE_PIVOT for r in seen)} |", flush=True)


def pools(opt):
    """Updates of the 878-atom device with numpy's and scipy's OpenBLAS pools at one or two
    threads, in each precision."""
    from lammps_recoil import parallel
    from lammps_recoil import system as system_module
    header(f"pools --rounds {opt.rounds}")
    found = parallel.openblas_pools()
    if len(found) != 2:
        sys.exit(f"pools: needs numpy's and scipy's OpenBLAS (pip wheels); found {len(found)}")
    names = ["numpy" if "numpy" in path else "scipy" for path, _, _ in found]
    configs = [((1, 1), "double", True), ((1, 1), "mixed", True), ((2, 1), "mixed", True),
               ((1, 2), "mixed", True), ((2, 2), "double", True), ((2, 2), "mixed", True),
               ((2, 2), "mixed", False)]
    rule = system_module.threaded_pools
    before = [get() for _, get, _ in found]
    best = {}
    with tempfile.TemporaryDirectory() as tmp:
        dump = frames_run("878", tmp, 1.0)
        for _ in range(opt.rounds):
            for config in configs:
                threads, precision, keep = config
                for (_, _, put), n in zip(found, threads):
                    put(n)
                system_module.threaded_pools = rule if keep else (lambda: 0)
                try:
                    system, xyz, ids = replay(dump, DECKS["878"][2])
                    system.precision = precision
                    wall = []
                    for x in xyz[:8]:
                        t0 = time.perf_counter()
                        system.update(x, ids)
                        system.forces(BIAS, tol=TOL)
                        wall.append(time.perf_counter() - t0)
                finally:
                    system_module.threaded_pools = rule
                    for (_, _, put), n in zip(found, before):
                        put(n)
                best[config] = min(best.get(config, np.inf), float(np.median(wall[2:])))
    print(f"| {names[0]} threads | {names[1]} threads | precision | update, median wall (s) "
          "| / one thread, mixed |")
    print("| ---: | ---: | --- | ---: | ---: |")
    ref = best[(1, 1), "mixed", True]
    for (threads, precision, keep), t in best.items():
        label = precision + ("" if keep else ", rule on the pools left out")
        print(f"| {threads[0]} | {threads[1]} | {label} | {t:.3f} | {t / ref:.2f} |",
              flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("what", choices=("sizes", "crossover", "stages", "md", "ranks",
                                     "accuracy", "precision", "pools"))
    ap.add_argument("--quick", action="store_true", help="sizes: the smaller cases only")
    ap.add_argument("--reps", type=int, default=3,
                    help="sizes, crossover: updates per device; stages: repetitions")
    ap.add_argument("--ps", type=float, default=2.0, help="md: timed production (ps)")
    ap.add_argument("--repeat", type=int, default=2, help="md, ranks: runs per case")
    ap.add_argument("--rounds", type=int, default=3,
                    help="ranks, pools: rounds of the configurations in turn")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    opt = ap.parse_args()
    keep_heap()
    if opt.child:
        return ranks_child(opt.child, opt.repeat)
    dict(sizes=sizes, crossover=crossover, stages=stages, md=md, ranks=ranks,
         accuracy=accuracy, precision=precision, pools=pools)[opt.what](opt)


if __name__ == "__main__":
    main()
