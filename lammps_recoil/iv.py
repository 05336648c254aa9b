"""Static current-voltage curves of one geometry: no MD, the atoms held where they are.

At each bias V: the Landauer current I = G(V) V and conductance G(V) (Eq. 11), the
zero-bias conductance T(E_F) of the same geometry, and the renormalized recoil forces
(Eq. 10 with Eq. 4) summed over the filament atoms and their largest per-atom magnitude.
The biases are solved in the order given, each starting from the previous one's energy
partition (a sweep costs less than separate calls); every bias is checked against the
lead band before the first solve.

    >>> from lammps_recoil.check import system_from_data
    >>> curve = iv_curve(system_from_data("inputs/filament.data"), [0.25, 0.5, 1.0])
    >>> curve.current                                   # microamperes
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .integration import DEFAULT_TOL


@dataclass
class IVCurve:
    """One geometry's static curves (arrays over ``bias``, volts).

    ``current`` (uA), ``conductance`` (Landauer G(V)/G0, T(E_F) at V = 0),
    ``fermi_transmission`` (G(E_F)/G0), ``force`` (total recoil force on the filament
    atoms, eV/A, one row per bias), ``max_force`` (largest per-atom recoil force on them,
    eV/A), ``n_energies`` (energy points of each solve).
    """

    bias: np.ndarray
    current: np.ndarray
    conductance: np.ndarray
    fermi_transmission: np.ndarray
    force: np.ndarray
    max_force: np.ndarray
    n_energies: np.ndarray

    def columns(self) -> dict:
        """The curves as named columns (for :func:`~lammps_recoil.plots.write_csv`)."""
        return {"V": self.bias, "I_uA": self.current, "G_V": self.conductance,
                "G_EF": self.fermi_transmission, "Frec_x": self.force[:, 0],
                "Frec_y": self.force[:, 1], "Frec_z": self.force[:, 2],
                "Frec_max": self.max_force, "n_energies": self.n_energies}

    def table(self) -> list[str]:
        """Aligned text lines, one per bias."""
        lines = ["     V (V)     I (uA)   G(V)/G0  G(E_F)/G0   Frec_x   Frec_y   Frec_z  "
                 "Frec_max (eV/A)"]
        for V, I, G, G0, F, Fm in zip(self.bias, self.current, self.conductance,
                                      self.fermi_transmission, self.force, self.max_force):
            lines.append(f"{V:10.4f} {I:10.3f} {G:9.4f} {G0:10.4f} " +
                         " ".join(f"{f:8.4f}" for f in F) + f" {Fm:9.4f}")
        return lines


def iv_curve(system, biases, beta: float = 0.5, temperature: float = 0.0,
             model: str = "paper", tol: float = DEFAULT_TOL, atoms=None) -> IVCurve:
    """I(V), G(V), G(E_F) and the recoil forces of ``system`` (a
    :class:`~lammps_recoil.system.RecoilSystem`) at each bias (volts, in the order given).

    ``atoms``: boolean mask of the device atoms whose forces count (the filament; all
    device atoms by default). ``tol``: the energy integral's accuracy (eV/A, G0).
    """
    biases = np.atleast_1d(np.asarray(biases, dtype=float))
    if biases.ndim != 1 or not biases.size:
        raise ValueError("give at least one bias (volts)")
    mask = np.ones(system.n_atoms, dtype=bool) if atoms is None else np.asarray(atoms, bool)
    if mask.shape != (system.n_atoms,):
        raise ValueError(f"atom mask has {mask.size} entries for {system.n_atoms} device atoms")
    for V in biases:
        system.check_bias(V, beta, temperature)
    rows = []
    for V in biases:
        r = system.forces(V, beta, temperature, model=model, tol=tol)
        f = r.forces[mask]
        rows.append((r.current, r.conductance, r.fermi_transmission, f.sum(axis=0),
                     np.linalg.norm(f, axis=1).max(initial=0.0), r.n_energies))
    I, G, GF, F, Fm, n = zip(*rows)
    return IVCurve(biases, np.array(I), np.array(G), np.array(GF), np.array(F),
                   np.array(Fm), np.array(n))


def iv_figure(path: str, curve: IVCurve, title: str = "") -> None:
    """Panels of I(V), G(V) with G(E_F), and the filament's total (z) and largest
    per-atom recoil force against V (PNG)."""
    from .plots import panels
    order = np.argsort(curve.bias, kind="stable")
    V = curve.bias[order]
    panels(path, V, [
        {"ylabel": "I (µA)", "zero": True, "lines": {"I(V)": curve.current[order]},
         "styles": {"I(V)": "o-"}},
        {"ylabel": "G / G0", "lines": {"G(V) = I/V": curve.conductance[order],
                                       "G(E_F)": curve.fermi_transmission[order]},
         "styles": {"G(V) = I/V": "o-", "G(E_F)": "s--"}},
        {"ylabel": "recoil force (eV/Å)", "zero": True,
         "lines": {"total on filament, z": curve.force[order, 2],
                   "largest per atom": curve.max_force[order]},
         "styles": {"total on filament, z": "o-", "largest per atom": "s--"}}],
        "bias V (V)", title)
