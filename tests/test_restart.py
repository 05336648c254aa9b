"""Fault injection: a run killed with SIGKILL resumes from its last restart, both routes.

The killed-and-resumed run must have every update in its time series and every frame in
its dump exactly once, and (the test deck's NVE, no thermostat: LAMMPS keeps no
random-number state in restart files) follow the uninterrupted run to round-off. The
production deck resumes in the widening test (a thermostatted run).
"""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from test_lammps import HAVE_LMP, HAVE_WHEEL

from lammps_recoil.analysis import read_dump, read_series
from lammps_recoil.protocols import make_protocol

ROOT = Path(__file__).resolve().parents[1]
RUN = dict(production_ps=0.6, every=20, restart_every=100, thermo_every=100, dump_every=50)
NVE_DECK = dict(deck="tests/in.checks", thermostat="no")


def command(route, outdir, name, deck="inputs/in.filament", **extra):
    var = []
    for k, v in {**RUN, "outdir": outdir, "name": name, **extra}.items():
        var += ["-var", k, str(v)]
    if route == "deck":
        return ["lmp", "-in", deck] + var
    return [sys.executable, "-m", "lammps_recoil.cli", "run", deck] + var


def env():
    return dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")


def last_step(csv):
    try:
        rows = csv.read_text().splitlines()[1:]
        return int(rows[-1].split(",")[0]) if rows else -1
    except (FileNotFoundError, ValueError, IndexError):
        return -1


#: A 0 -> 1 -> -1 -> 0 V triangle of 0.4 ps (legs of 5 updates) under a 150 uA compliance,
#: with bond currents in the dump and two transmission eigenvalues in the series.
TRIANGLE = dict(protocol="triangle", V_min=-1, V_max=1, rate=10, cycles=2, compliance=150,
                currents="yes", channels=2)


@pytest.mark.parametrize("protocol", [{}, TRIANGLE], ids=["constant", "triangle"])
@pytest.mark.parametrize("route", [
    pytest.param("python", marks=pytest.mark.skipif(not HAVE_WHEEL, reason="no wheel")),
    pytest.param("deck", marks=pytest.mark.skipif(not HAVE_LMP, reason="no Debian lmp"))])
def test_kill_and_resume(tmp_path, route, protocol):
    """Killed at step 340 or later and resumed, a run equals the uninterrupted one; under
    a triangle protocol the bias at each update is the protocol's V(t) (lowered where the
    current would exceed the compliance, and then |I| = I_cc), in both."""
    deck = dict(NVE_DECK, **protocol)
    ref = subprocess.run(command(route, tmp_path, "ref", **deck), cwd=ROOT, env=env(),
                         capture_output=True, text=True, timeout=600)
    assert ref.returncode == 0, ref.stderr[-2000:]

    proc = subprocess.Popen(command(route, tmp_path, "run", **deck), cwd=ROOT, env=env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    csv = tmp_path / "run.recoil.csv"
    deadline = time.time() + 300
    while last_step(csv) < 340 and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    killed_at = last_step(csv)
    assert 340 <= killed_at < 600, f"kill came too late or too early (step {killed_at})"

    again = subprocess.run(command(route, tmp_path, "run", **deck), cwd=ROOT, env=env(),
                           capture_output=True, text=True, timeout=600)
    assert again.returncode != 0 and "outputs of an earlier run exist" in again.stderr
    resumed = subprocess.run(command(route, tmp_path, "run", resume="yes", **deck), cwd=ROOT,
                             env=env(), capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-2000:]

    a, b = read_series(tmp_path / "ref.recoil.csv"), read_series(csv)
    assert list(b["step"]) == list(range(0, 601, 20))             # every update once
    for col in ("G_EF", "G_V", "Frec_z", "work", "V", "I_uA", "in_compliance"):
        np.testing.assert_allclose(b[col], a[col], rtol=1e-7, atol=1e-9)
    p = make_protocol(**{k: v for k, v in TRIANGLE.items() if k in ("V_min", "V_max",
                                                                    "rate", "cycles")},
                      kind=protocol.get("protocol", "constant"), V=1.0)
    for s in (a, b):
        np.testing.assert_allclose(s["V_protocol"], p.bias(s["time_ps"]), atol=1e-12)
        limited = s["in_compliance"] == 1
        assert np.all(np.abs(s["V"]) <= np.abs(s["V_protocol"]))
        np.testing.assert_array_equal(s["V"][~limited], s["V_protocol"][~limited])
        if protocol:
            assert 4 <= limited.sum() <= 20
            np.testing.assert_allclose(np.abs(s["I_uA"][limited]), 150.0, rtol=1e-3)
            assert np.all(np.abs(s["I_uA"]) <= 150.0 * (1 + 1e-3))
            assert np.all(s["T_1"] >= s["T_2"])
    fa, fb = read_dump(tmp_path / "ref.dump"), read_dump(tmp_path / "run.dump")
    assert [f.step for f in fb] == list(range(0, 601, 50))         # every frame once
    columns = ["d_dn"] + (["d2_jcur[3]", "d_icur"] if protocol else [])
    for x, y in zip(fa, fb):
        pos = lambda f: np.column_stack([f["x"], f["y"], f["z"]])
        assert np.abs(pos(x) - pos(y)).max() < 1e-7
        np.testing.assert_allclose(y.recoil, x.recoil, rtol=1e-6, atol=1e-9)
        for col in columns:
            np.testing.assert_allclose(y[col], x[col], rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("route", [
    pytest.param("python", marks=pytest.mark.skipif(not HAVE_WHEEL, reason="no wheel")),
    pytest.param("deck", marks=pytest.mark.skipif(not HAVE_LMP, reason="no Debian lmp"))])
def test_a_finished_run_is_extended_from_its_end(tmp_path, route):
    """A finished 0.3 ps run has the recoil state of a restart file at its last step 300
    (restart files every 100 steps: LAMMPS's; every 200: the one written at the end), so
    that resuming it with production_ps 0.4 continues from step 300: the first 300 steps'
    updates stay as they were, and the extended run equals an uninterrupted 0.4 ps one
    (NVE); resuming the extended run with the same length changes nothing. A production
    that ends between updates (0.31 ps) says which steps a resume would repeat."""
    for restart_every in (100, 200):
        _extend(tmp_path / str(restart_every), route, restart_every)
    proc = subprocess.run(command(route, tmp_path, "odd", **NVE_DECK, production_ps=0.31),
                          cwd=ROOT, env=env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert ("ended at step 310, after its last restart file (step 300) and between NEGF "
            "updates") in proc.stderr


def _extend(tmp_path, route, restart_every):
    tmp_path.mkdir()
    run = lambda name, **kw: subprocess.run(
        command(route, tmp_path, name, **NVE_DECK, restart_every=restart_every, **kw),
        cwd=ROOT, env=env(), capture_output=True, text=True, timeout=600)
    for name, kw in (("ref", dict(production_ps=0.4)), ("ext", dict(production_ps=0.3))):
        proc = run(name, **kw)
        assert proc.returncode == 0, proc.stderr[-2000:]
    from lammps_recoil.runstate import load_state
    assert int(load_state(str(tmp_path / "ext"))["step"]) == 300
    before = (tmp_path / "ext.recoil.csv").read_text()
    for _ in range(2):
        proc = run("ext", production_ps=0.4, resume="yes")
        assert proc.returncode == 0, proc.stderr[-2000:]
        after = (tmp_path / "ext.recoil.csv").read_text()
        assert after.startswith(before)                  # the rows up to step 300 kept
        assert int(load_state(str(tmp_path / "ext"))["step"]) == 400
    a, b = read_series(tmp_path / "ref.recoil.csv"), read_series(tmp_path / "ext.recoil.csv")
    assert list(b["step"]) == list(range(0, 401, 20))
    for col in ("G_EF", "Frec_z", "work"):
        np.testing.assert_allclose(b[col], a[col], rtol=1e-7, atol=1e-9)


@pytest.mark.skipif(not HAVE_WHEEL, reason="no wheel")
def test_atoms_in_trouble_stop_the_run_cleanly(tmp_path):
    """At 20000 K atoms collide within a few updates: the run stops with a message naming
    the atoms, writes the last state of all atoms as a data file, and never writes a
    non-finite number to the time series."""
    from lammps_recoil.builders import build_filament
    build_filament(nx=2, ny=2, frozen_layers=4, electrode_layers=1, gap_layers=3,
                   shape="cylinder", neck_radius=1.3).write_data(tmp_path / "tiny.data")
    proc = subprocess.run(command("python", tmp_path, "hot", data=tmp_path / "tiny.data",
                                  T=20000, warmup_ps=0, every=10,
                                  production_ps=2),
                          cwd=ROOT, env=env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode != 0
    assert "lammps-recoil: error: " in proc.stderr
    assert ("overlapping atoms: device atom" in proc.stderr
            or "not connected to either lead" in proc.stderr)
    crash = (tmp_path / "hot.crash.data").read_text()
    n = int(crash.splitlines()[2].split()[0])
    atoms = crash.split("Atoms # atomic")[1].split("Velocities")[0].split()
    assert n == 83 and len(atoms) == 5 * n and np.all(np.isfinite(np.array(atoms, float)))
    series = read_series(tmp_path / "hot.recoil.csv")
    assert len(series["step"]) >= 2
    assert all(np.all(np.isfinite(v)) for v in series.values())


@pytest.mark.parametrize("route", [
    pytest.param("deck", marks=pytest.mark.skipif(not HAVE_LMP, reason="no lmp")),
    pytest.param("python", marks=pytest.mark.skipif(not HAVE_WHEEL, reason="no wheel"))])
def test_filament_device_widens_when_electrodes_melt(tmp_path, route):
    """At 2000 K an electrode surface atom leaves its lattice site: the 'filament' device
    widens to all mobile atoms for the rest of the run (n_device 3 -> 19) instead of
    stopping, and a run resumed after that restores the widened device."""
    from lammps_recoil.builders import build_filament
    build_filament(nx=2, ny=2, frozen_layers=4, electrode_layers=1, gap_layers=3,
                   shape="cylinder", neck_radius=1.3).write_data(tmp_path / "tiny.data")
    hot = dict(data=tmp_path / "tiny.data", T=2000, warmup_ps=0,
               restart_every=100)
    first = subprocess.run(command(route, tmp_path, "hot", production_ps=1.0, **hot),
                           cwd=ROOT, env=env(), capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stderr[-2000:]
    assert "the NEGF device is now all 19 mobile atoms" in first.stderr
    series = read_series(tmp_path / "hot.recoil.csv")
    n = series["n_device"]
    widened = np.flatnonzero(n == 19)[0]
    assert np.all(n[:widened] == 3) and np.all(n[widened:] == 19)
    from lammps_recoil.builders import SITE_TOLERANCE              # 1.27125 A
    assert series["dX_site"][widened] > SITE_TOLERANCE
    assert np.all(series["dX_site"][:widened] <= SITE_TOLERANCE)
    more = subprocess.run(command(route, tmp_path, "hot", production_ps=1.2, resume="yes",
                                  **hot), cwd=ROOT, env=env(), capture_output=True, text=True,
                          timeout=600)
    assert more.returncode == 0, more.stderr[-2000:]
    assert "the saved run had widened its NEGF device" in more.stderr
    resumed = read_series(tmp_path / "hot.recoil.csv")
    assert resumed["step"][-1] == 1200 and np.all(resumed["n_device"][len(n):] == 19)


def test_resume_refuses_a_time_series_of_another_version(tmp_path):
    """Appending rows with other columns would corrupt the time series: a run whose file
    has another header is not resumed (checked before anything runs)."""
    from lammps_recoil.hooks import check_inputs
    out = tmp_path / "old"
    (tmp_path / "old.recoil.csv").write_text("step,time_ps,G_EF,G_V\n0,0.0,3.0,3.0\n")
    values = dict(out=str(out), resume="yes", data=str(ROOT / "inputs/filament.data"),
                  potential=str(ROOT / "potentials/Cu_Sheng2011.eam.alloy"))
    with pytest.raises(ValueError, match="written by another version of lammps-recoil"):
        check_inputs(None, values)


def test_overwrite_removes_the_earlier_runs_restart_files(tmp_path):
    """The restart files <out>.restart.<step> of an earlier run count as its outputs: a
    fresh run is refused beside them, and overwrite removes them with the others, so that
    none stays beside the new run's."""
    from lammps_recoil import runstate
    out = str(tmp_path / "run")
    for name in ("run.log", "run.restart.500", "run.restart.3000", "run.restart.old",
                 "other.restart.100"):
        (tmp_path / name).write_text("x")
    with pytest.raises(ValueError, match=r"run.log, .*run.restart.500, .*run.restart.3000\)"):
        runstate.check_fresh(out, overwrite=False)
    runstate.check_fresh(out, overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.restart.100",
                                                          "run.restart.old"]
    runstate.check_fresh(str(tmp_path / "missing" / "run"), overwrite=False)   # no folder yet
