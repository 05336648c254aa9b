"""Studies of the electronic bath on the default filament (docs/bath.md): tables and figures.

    python benchmarks/study_bath.py kernels [--out docs/figures/bath]   (and its figures)
    python benchmarks/study_bath.py figures [--out docs/figures/bath]
    python benchmarks/study_bath.py resonance [--out docs/figures/bath]
    python benchmarks/study_bath.py runaway [--out docs/figures/bath]
    python benchmarks/study_bath.py md --runs runs/bath_md [--biases 0 0.5 1 1.5] [--ps 30]
        [--filament-thermostat yes|no]
    python benchmarks/study_bath.py switching --runs runs/bath_ens
        (reads <runs>/thermo_none and <runs>/thermo_full)
    python benchmarks/study_bath.py hold --runs runs/bath_hold [--intervals 100 500 1000 2000]
        [--seeds 1 2 3] [--ps 12] [--scale 20]

``kernels``: the kernels at the EAM-minimized default filament (the production deck's
minimization) for V = 0 to 1.5 V: at T_e = 0 without lead broadening (accepted up to
1.175 V) and at T_e = 300 K with lead_eta = 0.05 eV (the bath's window then meets no flat
band); mean and largest diagonal friction and noise, effective temperatures, lowest
friction eigenvalue; and the per-atom friction and noise at 1 V (T_e = 0).
``resonance``: the friction of the unrelaxed filament (``build_filament()``) near 0.75 V
and the same kernels at vibration energies hbar omega = 1-30 meV (golden rule).
``runaway``: the linear stability of the minimized filament with the EAM Hessian, the mean
force's Jacobian and the kernels (T_e = 0, 0 to 1.125 V). ``md``: production runs of
inputs/in.filament with the Langevin thermostat on the filament
too (the paper's setup) or on the electrodes only, with and without the full bath
(T_e = 300 K, lead_eta 0.05), and the filament's kinetic temperature from the dump's
velocities. ``switching``: the 1 V ensembles with and
without the bath (run by ``lammps-recoil ensemble``, commands in docs/bath.md). ``hold``:
the filament's temperature under the scaled bath at 0.2 V with the kernels held for 100
to 2000 steps (a few seeds each): what holding them costs in accuracy.
"""
import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lammps_recoil import bath  # noqa: E402
from lammps_recoil.analysis import read_dump, read_series  # noqa: E402
from lammps_recoil.bathmd import MASS_UNIT  # noqa: E402
from lammps_recoil.builders import CU_MASS  # noqa: E402
from lammps_recoil.check import system_from_data  # noqa: E402
from lammps_recoil.integration import K_B  # noqa: E402

DATA = ROOT / "inputs" / "filament.data"
MASS = CU_MASS * MASS_UNIT             # Cu (the data file's mass), eV ps^2 / A^2


def deck(outdir, name, **var):
    cmd = [sys.executable, "-m", "lammps_recoil.cli", "run", "inputs/in.filament"]
    for k, v in dict(outdir=outdir, name=name, overwrite="yes", **var).items():
        cmd += ["-var", k, str(v)]
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    subprocess.run(cmd, cwd=ROOT, env=env, check=True, capture_output=True, text=True)


def minimized(tmp, lead_eta=None, atoms=False):
    """The default filament's NEGF system at the production deck's EAM minimum (and, with
    ``atoms``, all atoms' positions, types and the periodic box)."""
    if not (Path(tmp) / "mini.dump").exists():
        deck(tmp, "mini", warmup_ps=0, production_ps=0.001, dump_every=1, V=0.5)
    frame = read_dump(Path(tmp) / "mini.dump")[0]
    order = np.argsort(frame["id"])
    x = np.column_stack([frame["x"], frame["y"], frame["z"]])[order]
    types = np.asarray(frame["type"])[order]
    system = system_from_data(str(DATA), lead_eta=lead_eta)
    system.update(x[types == 1])
    if atoms:
        return system, x, types, np.diff(frame.box[:2], axis=1).ravel()
    return system


def summary(b):
    t = bath.effective_temperature(b)
    f, d = np.diagonal(b.friction), np.diagonal(b.noise)
    return dict(friction_mean=f.mean(), friction_max=f.max(), noise_mean=d.mean(),
                noise_max=d.max(), T_balance=t.balance,
                T_mode_median=np.median(t.modes) if len(t.modes) else np.nan,
                friction_min_eig=np.linalg.eigvalsh(b.friction).min(),
                berry_max=np.abs(b.berry).max(), energies=b.n_energies)


def write_table(path, rows, header):
    keys = list(rows[0])
    cell = lambda v, digits: v if isinstance(v, str) else f"{v:.{digits}g}"
    with open(path, "w") as fh:
        fh.write(f"# {header}\n" + ",".join(keys) + "\n")
        for r in rows:
            fh.write(",".join(cell(r[k], 6) for k in keys) + "\n")
    print(f"\n{header}\n")
    print("| " + " | ".join(keys) + " |\n" + "| --- " * len(keys) + "|")
    for r in rows:
        print("| " + " | ".join(cell(r[k], 4) for k in keys) + " |")


def kernels(out, tmp):
    rows = {}
    for label, te, eta, biases in (("Te0", 0.0, None, np.arange(0.0, 1.126, 0.125)),
                                   ("Te300_eta0.05", 300.0, 0.05, np.arange(0.0, 1.51, 0.125))):
        s = minimized(tmp, eta)
        rows[label] = []
        for V in biases:
            t0 = time.perf_counter()
            b = bath.electronic_bath(s, float(V), temperature=te, tol=1e-2)
            rows[label].append(dict(V=V, **summary(b), seconds=time.perf_counter() - t0))
        write_table(out / f"kernels_{label}.csv", rows[label],
                    f"kernels of the minimized default filament, T_e = {te} K, lead_eta = "
                    f"{eta or 0} eV (friction eV ps/A^2, noise eV^2 ps/A^2, T K)")
        if label == "Te0":
            b = bath.electronic_bath(s, 1.0, temperature=0.0, tol=1e-2)
            fr = np.trace(b.per_atom(b.friction), axis1=1, axis2=2) / 3
            no = np.trace(b.per_atom(b.noise), axis1=1, axis2=2) / 3
            z = s.positions[:, 2]
            per = [dict(atom=i, z=z[i], friction=fr[i], noise=no[i],
                        T_atom=no[i] / (2 * K_B * fr[i])) for i in np.argsort(z)]
            write_table(out / "per_atom_1V.csv", per, "per-atom friction and noise at 1 V, "
                        "T_e = 0 (trace of the 3x3 block / 3), minimized default filament")
    figures(out)


def read_table(path):
    lines = [ln for ln in Path(path).read_text().splitlines() if not ln.startswith("#")]
    keys = lines[0].split(",")
    return {k: np.array([float(ln.split(",")[i]) for ln in lines[1:]])
            for i, k in enumerate(keys)}


def figures(out):
    """The figures of docs/bath.md from the tables of ``kernels``."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    per = read_table(out / "per_atom_1V.csv")
    fig, ax = plt.subplots(2, 1, figsize=(6, 5), sharex=True)
    ax[0].plot(per["z"], per["friction"], "o")
    ax[0].axhline(0.0, color="0.6", lw=0.8)
    ax[0].set_ylabel("friction (eV ps/A$^2$)")
    ax[1].semilogy(per["z"], per["noise"], "o", color="C1")
    ax[1].set_ylabel("noise (eV$^2$ ps/A$^2$)")
    ax[1].set_xlabel("z (A); electrons are injected from the right")
    ax[0].set_title("default filament at 1 V, T$_e$ = 0: per atom (trace / 3)")
    fig.tight_layout()
    fig.savefig(out / "per_atom_1V.png", dpi=120)
    fig, ax = plt.subplots(figsize=(6, 4))
    for label, style, text in (("Te0", "o-", "T$_e$ = 0"),
                               ("Te300_eta0.05", "s-", "T$_e$ = 300 K, lead_eta 0.05 eV")):
        r = read_table(out / f"kernels_{label}.csv")
        keep = r["T_balance"] > 0
        ax.semilogy(r["V"][keep], r["T_balance"][keep], style, label=f"{text}: power balance")
        ax.semilogy(r["V"][keep], r["T_mode_median"][keep], style, alpha=0.4,
                    label=f"{text}: median mode")
    finish(fig, ax, "effective temperature (K)", "kernels of the minimized default filament",
           out / "kernel_temperature.png")
    md_tables = sorted(out.glob("md_temperature_thermostat_*.csv"))
    if md_tables:
        fig, ax = plt.subplots(figsize=(6, 4))
        for n, path in enumerate(md_tables):
            r = read_table(path)
            which = path.stem.split("_")[-1]
            for label, marker in (("none", "o"), ("full", "s")):
                ax.errorbar(r["V"], r[f"T_fil_{label}"], r[f"err_{label}"], fmt=marker + "-",
                            color=f"C{2 * n + (label == 'full')}",
                            label=f"filament thermostat {which}, bath {label}")
        ax.axhline(300.0, color="0.6", lw=0.8)
        finish(fig, ax, "filament kinetic temperature (K)",
               "default filament, 20 ps MD (T = T$_e$ = 300 K, lead_eta 0.05 eV)",
               out / "md_temperature.png")


def finish(fig, ax, ylabel, title, path):
    """Axis labels against V, legend, and the figure written to ``path``."""
    ax.set_xlabel("V (V)")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def resonance(out, tmp):
    from lammps_recoil.builders import build_filament
    s = build_filament().recoil_system()
    rows = []
    for V in np.arange(0.70, 0.801, 0.01):
        b = bath.electronic_bath(s, float(V), temperature=0.0, tol=1e-3)
        rows.append(dict(V=V, friction_mean=np.diagonal(b.friction).mean(),
                         friction_max=np.abs(b.friction).max(),
                         mu_L=s.fermi_level - V / 2))
    write_table(out / "resonance_scan.csv", rows, "unrelaxed default filament "
                "(build_filament()), T_e = 0: friction across 0.75 V")
    rows = []
    cases = [("ideal", s, V) for V in (0.75, 1.0)] + [("minimized", minimized(tmp), 1.0)]
    for geometry, system, V in cases:
        b = bath.electronic_bath(system, V, temperature=0.0, tol=1e-3)
        kernels = [(0.0, b)] + [(e, bath.kernels_at_frequency(system, V, e, temperature=0.0,
                                                              tol=1e-3))
                                for e in (0.001, 0.005, 0.01, 0.02, 0.03)]
        for e, k in kernels:
            rows.append(dict(geometry=geometry, V=V, hbar_omega=e,
                             friction_mean=np.diagonal(k.friction).mean(),
                             friction_max=np.abs(k.friction).max(),
                             friction_min_eig=np.linalg.eigvalsh(k.friction).min(),
                             noise_mean=np.diagonal(k.noise).mean(),
                             noise_max=np.abs(k.noise).max()))
    write_table(out / "frequency.csv", rows, "default filament (ideal: build_filament(); "
                "minimized: at the production deck's EAM minimum), T_e = 0: symmetric "
                "friction and noise at vibration energy hbar omega (eV; 0: adiabatic)")


def runaway(out, tmp):
    """Linear stability of the minimized filament: M x'' = -(H_EAM - dF/dX) x - gamma x'
    with the EAM Hessian of the filament atoms (electrodes fixed), the mean force's
    Jacobian and the bath's kernels at T_e = 0, for: the mean force alone (gamma = 0),
    with the friction, with friction and Berry force."""
    from lammps_recoil import eam
    s, x, types, box = minimized(tmp, atoms=True)
    H = eam.hessian(eam.EAMPotential.read(str(ROOT / "potentials/Cu_Sheng2011.eam.alloy")),
                    x, np.flatnonzero(types == 1), box)
    masses = np.full(H.shape[0], MASS)
    rows = []
    for V in np.arange(0.0, 1.126, 0.125):
        b = bath.electronic_bath(s, float(V), temperature=0.0, tol=1e-2, jacobian=True)
        K = H - b.force_jacobian
        Ka = 0.5 * (b.force_jacobian - b.force_jacobian.T)
        row = dict(V=V, curl_max=np.abs(np.linalg.eigvals(Ka)).max(),
                   min_eig_K_sym=np.linalg.eigvalsh(0.5 * (K + K.T)).min())
        for label, gamma in (("nc", 0 * b.friction), ("friction", b.friction),
                             ("full", b.gamma)):
            st = bath.linear_stability(gamma, masses, K)
            row[f"rate_{label}"], row[f"omega_{label}"] = st.rate, st.frequency
        rows.append(row)
    write_table(out / "runaway.csv", rows, "linear stability of the minimized default "
                "filament, T_e = 0: largest growth rate (1/ps) and its angular frequency "
                "(rad/ps) with the mean force alone, with the friction, with friction and "
                "Berry force; curl: largest |eigenvalue| of the Jacobian's antisymmetric "
                "part (eV/A^2); lowest eigenvalue of the symmetric stiffness")


def filament_temperature(dump, start_ps):
    """Mean kinetic temperature (K) of the type-1 atoms over the dump frames after
    ``start_ps``, and its standard error from 5 blocks."""
    values = []
    for f in read_dump(dump):
        if f.time is not None and f.time < start_ps:
            continue
        fil = np.asarray(f["type"]) == 1
        v = np.column_stack([f["vx"], f["vy"], f["vz"]])[fil]
        values.append(MASS * np.sum(v * v) / (3 * fil.sum() * K_B))
    blocks = np.array([b.mean() for b in np.array_split(np.array(values), 5)])
    return float(np.mean(values)), float(blocks.std(ddof=1) / np.sqrt(5))


def md(out, runs, biases, ps, thermostat):
    rows = []
    for V in biases:
        row = dict(V=V)
        for label, b in (("none", "none"), ("full", "full")):
            name = f"V{V:g}_{label}"
            if not (Path(runs) / f"{name}.dump").exists():
                try:
                    deck(runs, name, V=V, bath=b, Te=300, lead_eta=0.05,
                         filament_thermostat=thermostat, production_ps=ps, dump_every=100,
                         restart_every=0)
                except subprocess.CalledProcessError:
                    pass                      # a filament that breaks up: the dump so far
            row[f"T_fil_{label}"], row[f"err_{label}"] = filament_temperature(
                Path(runs) / f"{name}.dump", 5.0)
            series = read_series(Path(runs) / f"{name}.recoil.csv")
            row[f"G_end_{label}"] = float(series["G_EF"][-1])
            row[f"t_end_{label}"] = float(series["time_ps"][-1])
        s = read_series(Path(runs) / f"V{V:g}_full.recoil.csv")
        kern = np.asarray(s["bath_s"]) > 0
        row["Te_balance"] = (np.mean(np.asarray(s["D_mean"])[kern])
                             / (2 * K_B * np.mean(np.asarray(s["gamma_mean"])[kern])))
        row["gamma_mean"] = float(np.mean(np.asarray(s["gamma_mean"])[kern]))
        row["P_noise"] = float(np.mean(s["P_noise"][1:]))
        row["P_fric"] = float(np.mean(s["P_fric"][1:]))
        row["P_rec"] = float(np.mean(s["P_rec"][1:]))
        rows.append(row)
    write_table(out / f"md_temperature_thermostat_{thermostat}.csv", rows,
                f"filament kinetic temperature (K, dump velocities after 5 ps of {ps} ps "
                f"production; filament_thermostat {thermostat}), without and with the full "
                "bath (T_e = 300 K, lead_eta 0.05); kernels' power-balance temperature; mean "
                "powers (eV/ps)")


def hold(out, runs, intervals, seeds, ps, scale):
    """How long the kernels may be held: the heating run of tests/test_bath_md.py (the
    filament alone moving, no thermostat, no mean force, V = 0.2 V, T_e = 50 K, the full
    bath scaled by ``scale``, so that m/gamma is 10-100 ps / scale) with the kernels
    every ``intervals`` steps, ``seeds`` runs each (a run in which an atom leaves, under a
    scaled negative-friction mode, is counted and left out): the filament's kinetic
    temperature (the series' T_fil) averaged from 4 ps to the end, its mean over the seeds
    with the standard error, the kernels' power-balance temperature <tr D> / (2 k_B
    <tr gamma>) over the same time, and the seconds spent on the kernels per run."""
    rows = []
    for every in intervals:
        temps, balance, seconds, lost = [], [], [], 0
        for seed in seeds:
            name = f"hold{every}_seed{seed}_ps{ps:g}_x{scale:g}"
            done = Path(runs) / f"{name}.done"
            if not done.exists():
                cmd = [sys.executable, "-m", "lammps_recoil.cli", "run", "tests/in.checks"]
                for k, v in dict(outdir=runs, name=name, overwrite="yes", moving="filament",
                                 thermostat="no", mean_force="no", bath="full",
                                 bath_scale=scale, V=0.2, Te=50.0, T=100.0, every=100,
                                 bath_every=every, seed=seed, production_ps=ps,
                                 thermo_every=1000, dump_every=100000).items():
                    cmd += ["-var", k, str(v)]
                env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
                proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
                if proc.returncode and "left the simulation" not in proc.stderr:
                    raise SystemExit(f"{name} failed:\n{proc.stderr[-2000:]}")
                done.write_text("ok" if proc.returncode == 0 else "an atom left")
            if done.read_text() != "ok":
                lost += 1               # an atom left the filament (a runaway mode)
                continue
            s = read_series(Path(runs) / f"{name}.recoil.csv")
            late = np.asarray(s["time_ps"]) >= 4.0
            kern = late & (np.asarray(s["bath_s"]) > 0)
            temps.append(float(np.mean(np.asarray(s["T_fil"])[late])))
            balance.append(np.mean(np.asarray(s["D_mean"])[kern])
                           / (2 * K_B * np.mean(np.asarray(s["gamma_mean"])[kern])))
            seconds.append(float(np.sum(s["bath_s"])))
        n = len(temps)
        rows.append({"bath_every": every, "runs": n, "runs that lost an atom": lost,
                     "T_fil (K)": np.mean(temps) if n else np.nan,
                     "standard error (K)": (np.std(temps, ddof=1) / np.sqrt(n) if n > 1
                                            else np.nan),
                     "lowest (K)": min(temps, default=np.nan),
                     "highest (K)": max(temps, default=np.nan),
                     "kernels' T_bal (K)": np.mean(balance) if n else np.nan,
                     "kernels (s per run)": np.mean(seconds) if n else np.nan})
    write_table(out / "hold.csv", rows,
                f"filament kinetic temperature (K, T_fil from 4 to {ps:g} ps, mean over "
                f"the seeds {', '.join(map(str, seeds))} that kept their atoms and its "
                f"standard error) with the kernels every bath_every steps (V = 0.2 V, "
                f"T_e = 50 K, bath x {scale:g}, electrodes frozen, no thermostat, no mean "
                "force); runs in which an atom left; the kernels' power-balance "
                "temperature; seconds on the kernels per run")


def switching(out, runs):
    """The 1 V ensembles without and with the full bath (``<runs>/thermo_none`` and
    ``thermo_full``, the docs' commands) side by side, one row per seed."""
    from lammps_recoil.plots import read_csv
    tables = {}
    for label in ("thermo_none", "thermo_full"):
        path = Path(runs) / label / "ensemble.csv"
        if not path.exists():
            raise SystemExit(f"no {path}: run the ensembles of docs/bath.md first")
        tables[label] = read_csv(path)

    def cell(t, i):
        if not t["switched"][i]:
            return f"no switch, {t['G_initial'][i]:.2f} -> {t['G_final'][i]:.2f} G0"
        final = "0 (broken)" if t["G_final"][i] < 0.05 else f"{t['G_final'][i]:.2f} G0"
        way = "up" if t["direction"][i] > 0 else "down"
        return f"{way} at {t['switching_time_ps'][i]:.1f} ps, {t['G_initial'][i]:.2f} -> {final}"

    print("| seed | without the bath | with the full bath |")
    print("| --- | --- | --- |")
    none, full = tables["thermo_none"], tables["thermo_full"]
    for i, seed in enumerate(none["seed"]):
        j = int(np.flatnonzero(full["seed"] == seed)[0]) if seed in full["seed"] else None
        print(f"| {int(seed)} | {cell(none, i)} | "
              f"{'-' if j is None else cell(full, j)} |")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("what", choices=("kernels", "figures", "resonance", "runaway", "md",
                                     "switching", "hold"))
    ap.add_argument("--out", default=str(ROOT / "docs" / "figures" / "bath"))
    ap.add_argument("--runs", default=str(ROOT / "runs" / "bath_md"))
    ap.add_argument("--biases", nargs="+", type=float, default=[0.0, 0.5, 1.0, 1.5])
    ap.add_argument("--ps", type=float, default=30.0)
    ap.add_argument("--filament-thermostat", choices=("yes", "no"), default="yes")
    ap.add_argument("--intervals", nargs="+", type=int, default=[100, 500, 1000, 2000])
    ap.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    ap.add_argument("--scale", type=float, default=20.0)
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    print(f"Command: python benchmarks/study_bath.py {' '.join(sys.argv[1:])}  "
          f"({time.strftime('%Y-%m-%d')})")
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        if args.what == "kernels":
            kernels(out, tmp)
        elif args.what == "figures":
            figures(out)
        elif args.what == "resonance":
            resonance(out, tmp)
        elif args.what == "runaway":
            runaway(out, tmp)
        elif args.what == "md":
            Path(args.runs).mkdir(parents=True, exist_ok=True)
            md(out, args.runs, args.biases, args.ps, args.filament_thermostat)
        elif args.what == "hold":
            Path(args.runs).mkdir(parents=True, exist_ok=True)
            hold(out, args.runs, args.intervals, args.seeds, args.ps, args.scale)
        else:
            switching(out, args.runs)


if __name__ == "__main__":
    sys.exit(main())
