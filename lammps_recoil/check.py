"""Checks of a LAMMPS data file before any MD: what ``lammps-recoil check`` prints and what
both deck routes run before minimization (docs/geometry.md states the contract).

:func:`check_data` reads the data file, checks atom types, overlaps (LAMMPS atom IDs),
the frozen electrodes' lattice (:func:`~lammps_recoil.builders.measure_electrodes`), the
frozen slabs' thickness against the EAM cutoff, the bonds joining the filament to both
electrodes, and builds the NEGF system to check the bias window against the lead band and
its flat bands (Eq. 10's window [mu_L, mu_R], paper after Eq. 10); one update is timed.
Every failure raises ValueError naming the cause, the value found and what is accepted.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from .bathmd import zone_tags
from .builders import (ELECTRODE_TYPE, FILAMENT_TYPE, TYPE_MEANING, check_device,
                       check_leads, check_types, measure_electrodes, system_from_types)
from .geometry import (MIN_DISTANCE, bond_components, check_overlaps, check_positions,
                       neighbor_pairs)
from .hamiltonian import HoppingModel
from .integration import window_bounds
from .leads import DEFAULT_ETA, DEFAULT_KMESH
from .system import FLAT_MARGIN

#: Atom types a data file must declare (pair_coeff * * potential Cu Cu Cu Cu).
N_TYPES = 4
#: Columns of the Atoms section before x, y, z, per atom style.
STYLE_COLUMNS = {"atomic": 2, "charge": 3, "full": 4, "molecular": 3, "bond": 3,
                 "angle": 3}


@dataclass
class DataFile:
    """Atoms of a LAMMPS data file (sorted by atom ID)."""

    path: str
    ids: np.ndarray
    types: np.ndarray
    positions: np.ndarray
    bounds: np.ndarray          # (3, 2): lo, hi along x, y, z
    n_types: int

    @property
    def box(self) -> np.ndarray:
        return self.bounds[:2, 1] - self.bounds[:2, 0]


def read_data(path: str) -> DataFile:
    """Read the atoms of a LAMMPS data file (atom styles of :data:`STYLE_COLUMNS`)."""
    with open(path) as fh:
        lines = fh.read().splitlines()
    n_atoms = n_types = None
    bounds = np.zeros((3, 2))
    i = 1
    while i < len(lines):
        words = lines[i].split("#")[0].split()
        if words and not words[0][0].isdigit() and words[0][0] not in "+-.":
            break
        if len(words) >= 2 and words[-1] == "atoms":
            n_atoms = int(words[0])
        elif words[-2:] == ["atom", "types"]:
            n_types = int(words[0])
        elif len(words) == 4 and words[2][1:] == "lo" and words[2][0] in "xyz":
            bounds["xyz".index(words[2][0])] = float(words[0]), float(words[1])
        elif words[-3:] == ["xy", "xz", "yz"]:
            if any(float(w) != 0.0 for w in words[:3]):
                raise ValueError(f"{path}: triclinic box (tilts {words[:3]}): the box must be "
                                 "orthogonal, periodic in x and y")
        i += 1
    if n_atoms is None or n_types is None:
        raise ValueError(f"{path}: not a LAMMPS data file (no 'N atoms' and 'N atom types' "
                         "lines in its header)")
    while i < len(lines) and not lines[i].startswith("Atoms"):
        i += 1
    if i == len(lines):
        raise ValueError(f"{path}: no Atoms section")
    style = lines[i].split("#")[1].strip() if "#" in lines[i] else "atomic"
    if style not in STYLE_COLUMNS:
        raise ValueError(f"{path}: atom style {style!r} is not read; accepted: "
                         f"{sorted(STYLE_COLUMNS)} (the deck uses atomic)")
    skip = STYLE_COLUMNS[style]
    rows = []
    i += 1
    while i < len(lines) and len(rows) < n_atoms:
        words = lines[i].split("#")[0].split()
        i += 1
        if words:
            rows.append(words)
    if len(rows) != n_atoms:
        raise ValueError(f"{path}: the header says {n_atoms} atoms, the Atoms section holds "
                         f"{len(rows)}")
    try:
        ids = np.array([int(r[0]) for r in rows])
        types = np.array([int(r[skip - 1]) for r in rows])
        x = np.array([[float(v) for v in r[skip:skip + 3]] for r in rows])
    except (ValueError, IndexError) as err:
        raise ValueError(f"{path}: bad line in the Atoms section ({err})") from None
    order = np.argsort(ids)
    check_positions(x[order], f"{path}", ids[order])
    return DataFile(path, ids[order], types[order], x[order], bounds, n_types)


def system_from_data(path: str, device: str = "filament", **kw):
    """The NEGF system of a data file in one call (lattice measured, LAMMPS IDs in
    messages); ``kw`` goes to :func:`~lammps_recoil.builders.system_from_types`."""
    data = read_data(path)
    check_types(data.types, data.ids)
    return system_from_types(data.positions, data.types, data.box, ids=data.ids,
                             device=device, **kw)


def eam_cutoff(potential: str) -> float:
    """Cutoff radius (A) of an eam/alloy (setfl) file: the last number of its line 5."""
    with open(potential) as fh:
        head = [next(fh) for _ in range(5)]
    try:
        return float(head[4].split("#")[0].split()[4])
    except (IndexError, ValueError):
        raise ValueError(f"{potential}: not an eam/alloy (setfl) file: its line 5 should end "
                         "with the cutoff radius") from None


def largest_bias(fermi: float, beta: float, band, flat, sign: float,
                 tail: float = 0.0) -> float:
    """Largest |V| of the given sign whose window, widened by ``tail`` (eV) on each side
    (an electronic bath's Fermi tails), stays inside the band and farther than FLAT_MARGIN
    from every flat band (0 if none)."""
    up, down = (beta, 1 - beta) if sign > 0 else (1 - beta, beta)
    limits = []
    for e in flat:
        gap = abs(e - fermi) - FLAT_MARGIN - tail
        w = up if e > fermi else down
        limits.append(max(gap, 0.0) / w if w > 0 else (np.inf if gap > 0 else 0.0))
    limits += [max(band[1] - fermi - tail, 0.0) / up if up > 0 else np.inf,
               max(fermi - band[0] - tail, 0.0) / down if down > 0 else np.inf]
    return float(min(limits))


def cell_unit(orientation: str, a0: float) -> np.ndarray:
    """The builder's transverse cell (A): cubic a0 x a0 for (001), a_nn x sqrt(3) a_nn for
    (111) (:func:`~lammps_recoil.builders.build_filament`'s nx, ny count these)."""
    a_nn = a0 / np.sqrt(2.0)
    return np.array([a0, a0]) if orientation == "001" else np.array([a_nn, np.sqrt(3) * a_nn])


def flat_bands_of_cell(orientation: str, a0: float, nx: int, ny: int, kpoints=1,
                       hopping: HoppingModel = HoppingModel()) -> np.ndarray:
    """Flat-band energies (eV) of a periodic ideal lead of nx x ny builder cells."""
    from .geometry import fcc_lattice, lattice_sites
    from .leads import LayeredLead
    from .system import bloch_vectors
    lat = fcc_lattice(orientation, a0)
    box = np.array([nx, ny]) * cell_unit(orientation, a0)
    sites = lattice_sites(lat, np.array([0.1, 0.1, 0.0]), [0, -1], box=box)
    lead = LayeredLead(lat, sites, "left", hopping, box=box)
    k, _ = bloch_vectors(box, kpoints)
    return np.unique(np.concatenate([lead.flat_bands(kk) for kk in k]))


def cells_accepting(orientation: str, a0: float, V: float, beta: float, fermi: float,
                    band, near=(4, 4), count: int = 4, kpoints=1, largest: int = 12,
                    tail: float = 0.0) -> list:
    """The ``count`` cell sizes (nx, ny) nearest to ``near`` whose periodic leads accept
    bias V (no flat band within FLAT_MARGIN of the window widened by ``tail``, eV)."""
    found = []
    for nx in range(1, largest + 1):
        for ny in range(1, largest + 1):
            flat = flat_bands_of_cell(orientation, a0, nx, ny, kpoints)
            vmax = largest_bias(fermi, beta, band, flat, np.sign(V) or 1.0, tail)
            if abs(V) < vmax:
                found.append((abs(nx - near[0]) + abs(ny - near[1]), nx * ny, nx, ny))
    return [(nx, ny) for _, _, nx, ny in sorted(found)[:count]]


def _builder_cells(box, electrodes):
    """(nx, ny) of the builder's cells that the box holds, or None if it is not of them."""
    e = electrodes.left
    n = box / cell_unit(e.orientation, e.a0)
    if np.all(np.abs(n - np.rint(n)) < 1e-3):
        return tuple(int(v) for v in np.rint(n))
    return None


@dataclass
class CheckReport:
    """What :func:`check_data` found (printed by ``lammps-recoil check``)."""

    lines: list = field(default_factory=list)
    notes: list = field(default_factory=list)
    seconds_per_update: float = float("nan")      # the first update (leads computed)
    seconds_cached: float = float("nan")          # the same update again (leads cached)

    def add(self, text: str) -> None:
        self.lines.append(text)


def check_connected(data: DataFile, electrodes, r_bond: float) -> None:
    """Every mobile atom must be bonded (within r_bond) to a frozen electrode, and a path
    of bonds must join the two electrodes through the filament."""
    x, types, ids = data.positions, data.types, data.ids
    i, j, _, _ = neighbor_pairs(x, r_bond, data.box)
    label = bond_components(i, j, len(x))
    left = label[types == electrodes.left_type]
    right = label[types == electrodes.right_type]
    mobile = np.isin(types, (FILAMENT_TYPE, ELECTRODE_TYPE))
    lost = np.flatnonzero(mobile & ~np.isin(label, np.concatenate([left, right])))
    if lost.size:
        raise ValueError(f"atoms {ids[lost[:10]].tolist()} (types "
                         f"{sorted(set(types[lost].tolist()))}) have no path of bonds shorter "
                         f"than {r_bond:.2f} A (the hopping cutoff) to either frozen electrode: "
                         "an isolated atom or cluster")
    if not np.intersect1d(left, right).size:
        reach = x[np.isin(label, left), 2].max()          # the two bonded clusters' ends
        start = x[np.isin(label, right), 2].min()
        where = (f"; the atoms bonded to the left electrode reach up to z = {reach:.3f} A, "
                 f"those bonded to the right one down to z = {start:.3f} A" +
                 ("" if reach < start else " (they overlap in z: the break is sideways)"))
        raise ValueError("the filament does not join the two electrodes: no path of bonds "
                         f"shorter than {r_bond:.2f} A (the hopping cutoff) leads from the "
                         f"left frozen electrode to the right one{where}")


def check_data(path: str, V=1.0, beta: float = 0.5, lattice: str = "auto",
               device: str = "filament", potential: str | None = None, tol: float = 1e-2,
               model: str = "paper", hopping: HoppingModel = HoppingModel(),
               kpoints=1, lead_eta=None, time_update: bool = True, leads: str = "periodic",
               inf_kmesh: int = DEFAULT_KMESH, inf_eta: float = DEFAULT_ETA,
               bath_temperature: float | None = None, node_ranks: int = 1,
               bath_zone=(-np.inf, np.inf), precision: str = "mixed",
               currents: bool = False) -> CheckReport:
    """Everything about a data file that can be known before MD (module docstring).

    ``V``: the bias (volts), or the biases a protocol applies (each one checked; the update
    is timed at the largest |V|). ``leads``: "periodic" or "infinite" (laterally infinite
    leads on an ``inf_kmesh`` x
    ``inf_kmesh`` zone mesh with broadening ``inf_eta``, eV; no flat bands). With
    ``time_update`` one update is timed twice: the first computes the leads' Green's
    functions on its energies, the second (same atoms) finds them cached, as most MD
    updates do. ``bath_temperature``: the electron temperature T_e (K) of an electronic
    bath, whose windows (with their Fermi tails) are checked too, and the memory of its
    kernels on the filament atoms in ``bath_zone`` (zlo, zhi along z, A, at the data file's
    positions) for ``node_ranks`` MPI ranks on this machine. ``precision``: the
    system's (:class:`~lammps_recoil.system.RecoilSystem`), with which the update is timed
    (with bond currents if ``currents``); a note says where "mixed" solves in double.
    """
    rep = CheckReport()
    data = read_data(path)
    counts = {t: int(np.sum(data.types == t)) for t in range(1, N_TYPES + 1)}
    if data.n_types != N_TYPES:
        raise ValueError(f"{path} declares {data.n_types} atom types; {N_TYPES} are expected: "
                         f"{TYPE_MEANING}")
    check_types(data.types, data.ids)
    check_device(device)
    check_leads(leads, device, lead_eta, kpoints)
    rep.add(f"{path}: {len(data.ids)} atoms; types {TYPE_MEANING}")
    rep.add("  counts per type: " + ", ".join(f"{t}: {n}" for t, n in counts.items()))
    if np.any(np.diff(data.ids) == 0):
        k = int(np.flatnonzero(np.diff(data.ids) == 0)[0])
        raise ValueError(f"{path}: atom ID {data.ids[k]} appears twice")
    box = data.box
    inside = ((data.positions[:, 2] >= data.bounds[2, 0])
              & (data.positions[:, 2] <= data.bounds[2, 1]))
    if not inside.all():
        bad = np.flatnonzero(~inside)
        raise ValueError(f"atoms {data.ids[bad[:10]].tolist()} lie outside the box along z "
                         f"[{data.bounds[2, 0]}, {data.bounds[2, 1]}] A (boundary f)")
    check_overlaps(data.positions, box, label=lambda n: f"atom {data.ids[n]}",
                   min_distance=MIN_DISTANCE)
    rep.add(f"  no two atoms closer than {MIN_DISTANCE} A; periodic box {box[0]:.4f} x "
            f"{box[1]:.4f} A")
    el = measure_electrodes(data.positions, data.types, box, data.ids, lattice)
    rep.add(f"  electrodes: {el.describe()}; box commensurate "
            f"({round(box[0] * box[1] / el.left.lattice.cell_area)} sites per layer); "
            f"frozen atoms within "
            f"{max(el.left.deviation.max(), el.right.deviation.max()):.2g} A of their sites")
    if el.note():
        rep.notes.append(el.note())
    if potential is not None:
        rc = eam_cutoff(potential)
        for e in (el.left, el.right):
            thick = e.n_layers * e.lattice.spacing
            if thick < rc:
                need = int(np.ceil(rc / e.lattice.spacing))
                raise ValueError(
                    f"the {e.side} frozen slab is {e.n_layers} layers = {thick:.3f} A thick "
                    f"(layers x spacing {e.lattice.spacing:.4f} A), thinner than the EAM "
                    f"cutoff {rc} A of {potential}: its surface layer, which the mobile atoms "
                    f"feel, would see vacuum within the cutoff; give it at least {need} "
                    "layers")
        rep.add(f"  frozen slabs {el.left.n_layers * el.left.lattice.spacing:.3f} A and "
                f"{el.right.n_layers * el.right.lattice.spacing:.3f} A thick (layers x spacing) "
                f">= EAM cutoff {rc} A")
    check_connected(data, el, hopping.r_off)
    rep.add(f"  filament bonded to both electrodes (hopping cutoff {hopping.r_off} A)")
    t0 = time.perf_counter()
    system = system_from_types(data.positions, data.types, box, ids=data.ids, device=device,
                               electrodes=el, hopping=hopping, kpoints=kpoints,
                               lead_eta=lead_eta, leads=leads, inf_kmesh=inf_kmesh,
                               inf_eta=inf_eta, precision=precision)
    t1 = time.perf_counter()
    if note := system.precision_note(tol, currents):
        rep.notes.append(note)
    lo, hi = system.band_edges
    EF = system.fermi_level
    flat = np.unique(np.round(system._flat_bands()[0], 4))
    if leads == "infinite":
        blocks = " + ".join(str(len(lead.positions)) for lead in system.leads)
        rep.add(f"  leads: laterally infinite ideal half-crystals (zone mesh {inf_kmesh} x "
                f"{inf_kmesh}, broadening {inf_eta} eV; surface patches of {blocks} sites)")
    flats = f"flat lead bands at {rounded(flat)} eV" if flat.size else "no flat lead bands"
    rep.add(f"  NEGF device '{device}': {system.n_atoms} atoms; E_F = {EF:.4f} eV, lead band "
            f"[{lo:.4f}, {hi:.4f}] eV; {flats} (built in {t1 - t0:.2f} s)")
    vmax = {s: largest_bias(EF, beta, (lo, hi), flat, s) for s in (1.0, -1.0)}
    accepted = f"accepted: {-vmax[-1.0]:.3f} V < V < {vmax[1.0]:.3f} V at beta = {beta}"
    biases = np.unique(np.atleast_1d(np.asarray(V, dtype=float)))
    for v in biases:
        _check_bias(v, beta, EF, (lo, hi), flat, vmax, accepted, box, el, kpoints)
    V = biases[np.argmax(np.abs(biases))]
    wlo, whi = window_bounds(EF, V, beta)
    span = f"V = {V} V" if len(biases) == 1 else f"V from {biases[0]} to {biases[-1]} V"
    rep.add(f"  {span}, beta = {beta}: window [{wlo:.4f}, {whi:.4f}] eV"
            f"{' at the largest |V|' if len(biases) > 1 else ''}; {accepted}")
    if bath_temperature is not None:
        for v in biases:
            _check_bath(system, v, beta, bath_temperature, box, el, kpoints)
        rep.add(f"  electronic bath at T_e = {bath_temperature} K: windows clear of flat bands")
        z = data.positions[:, 2]
        chosen = zone_tags(data.ids, data.types, z, *bath_zone, FILAMENT_TYPE)
        rep.add("  " + _check_bath_size(len(chosen), ranks=node_ranks, zone=bath_zone))
        for name, bound in zip(("bath_zlo", "bath_zhi"), bath_zone):
            near = data.ids[(data.types == FILAMENT_TYPE) & (np.abs(z - bound) < ZONE_MARGIN)]
            if near.size:
                rep.notes.append(
                    f"filament atoms {near[:10].tolist()} lie within {ZONE_MARGIN} A of "
                    f"{name} = {bound:g} A in {path}: the bath's atoms are chosen at the "
                    "production's first step, after minimization and warm-up, and may "
                    "include or leave out these then")
    if time_update:
        seconds, results = [], []
        for _ in range(2):
            t0 = time.perf_counter()
            results.append(system.forces(V, beta, model=model, tol=tol,
                                         bond_currents=currents))
            seconds.append(time.perf_counter() - t0)
        rep.seconds_per_update, rep.seconds_cached = seconds
        res = results[0]
        total = rounded(res.forces[system_mask(data, device)].sum(0))
        rep.add(f"  one NEGF update: {seconds[0] * 1e3:.1f} ms, {res.n_energies} energy points "
                f"(tol {tol:g}); {seconds[1] * 1e3:.1f} ms with the leads' Green's functions "
                f"cached; Landauer G(V) = {res.conductance:.4f} G0 (G(E_F) = "
                f"{res.fermi_transmission:.4f} G0), total recoil force on the filament "
                f"{total} eV/A")
        if leads == "periodic" and device == "filament":
            _compare_infinite(rep, data, el, hopping, V, beta, model, tol, inf_kmesh,
                              inf_eta, res.forces[system_mask(data, device)].sum(0), kpoints,
                              lead_eta)
    return rep


#: Distance (A) of a filament atom from a bound of the bath's zone below which ``check``
#: notes that the zone, chosen at the production's first step, may hold it or not.
ZONE_MARGIN = 0.5
#: Relative difference of the filament's total recoil force between the periodic and the
#: laterally infinite leads above which ``check`` notes that the cell's transverse
#: sampling is not converged.
SAMPLING_NOTE = 0.1


def _compare_infinite(rep, data, el, hopping, V, beta, model, tol, inf_kmesh, inf_eta,
                      total, kpoints, lead_eta) -> None:
    """The same update between laterally infinite leads: the periodic leads hold only the
    cell's own transverse wave vectors (one per site of a layer, times the k grid), the
    infinite ones sum over the whole zone; a total force differing by more than
    SAMPLING_NOTE is noted (not refused: both are the model, one of them unconverged)."""
    try:
        system = system_from_types(data.positions, data.types, data.box, ids=data.ids,
                                   electrodes=el, hopping=hopping, leads="infinite",
                                   inf_kmesh=inf_kmesh, inf_eta=inf_eta)
        res = system.forces(V, beta, model=model, tol=tol)
    except (ValueError, FloatingPointError) as err:
        rep.add(f"  laterally infinite leads: not comparable here ({err})")
        return
    inf_total = res.forces[system_mask(data, "filament")].sum(0)
    rep.add(f"  between laterally infinite leads (-var leads infinite): total recoil force "
            f"{rounded(inf_total)} eV/A, G(V) = {res.conductance:.4f} G0 (G(E_F) = "
            f"{res.fermi_transmission:.4f} G0)")
    big = np.linalg.norm(inf_total)
    if big > 0 and np.linalg.norm(total - inf_total) > SAMPLING_NOTE * big:
        waves = round(data.box[0] * data.box[1] / el.left.lattice.cell_area)
        grid = np.broadcast_to(np.asarray(kpoints), (2,))
        rep.notes.append(
            f"the periodic leads sample {waves * int(np.prod(grid))} transverse wave vectors "
            f"per layer ({waves} sites per layer x a {grid[0]}x{grid[1]} k grid"
            f"{f', lead_eta {lead_eta} eV' if lead_eta else ''}): the total recoil force "
            f"on the filament, {rounded(total, 3)} eV/A, is "
            f"{np.linalg.norm(total) / big:.2f} of its size between laterally infinite "
            f"leads, {rounded(inf_total, 3)} eV/A; converged transverse sampling: "
            "-var leads infinite (or -var kpoints 8 -var lead_eta 0.01)")


def _check_bias(V, beta, EF, band, flat, vmax, accepted, box, el, kpoints) -> None:
    """Refuse a bias whose window leaves the lead band or meets a flat band, naming the
    cause and what is accepted (:func:`check_data`)."""
    lo, hi = band
    wlo, whi = window_bounds(EF, V, beta)
    if V != 0 and abs(V) >= vmax[np.sign(V)]:
        near = flat[(flat >= wlo - FLAT_MARGIN) & (flat <= whi + FLAT_MARGIN)]
        if wlo < lo or whi > hi:
            cause = (f"the window [{wlo:.3f}, {whi:.3f}] eV leaves the lead band "
                     f"[{lo:.3f}, {hi:.3f}] eV")
            band = {s: largest_bias(EF, beta, (lo, hi), (), s) for s in (1.0, -1.0)}
            if flat.size and band[np.sign(V)] > vmax[np.sign(V)]:
                accepted += (f" (the periodic leads' flat bands; the band alone, as between "
                             f"laterally infinite leads (-var leads infinite), accepts "
                             f"{-band[-1.0]:.3f} V < V < {band[1.0]:.3f} V)")
            fix = "a smaller |V|"
        else:
            cause = (f"the periodic leads have a decoupled flat band at E = {near[0]:.4f} eV, "
                     f"within {FLAT_MARGIN} eV of the window [{wlo:.3f}, {whi:.3f}] eV (a "
                     "delta peak: the integral is ill-defined)")
            cells = _other_cells(box, el, V, beta, EF, (lo, hi), kpoints)
            other = f" ({cells})" if cells else ""
            fix = (f"laterally infinite leads (-var leads infinite: the filament alone "
                   f"between ideal half-crystals, the paper's leads, which have no flat "
                   f"bands), a smaller |V|, another transverse cell{other}, or a lead "
                   "broadening (-var lead_eta 0.05, eV: the periodic leads' flat bands "
                   "become Lorentzians)")
        raise ValueError(f"bias V = {V} V: {cause}; {accepted}; use {fix}")


def _other_cells(box, el, V, beta, EF, band, kpoints, tail: float = 0.0) -> str:
    """"this box is nx x ny cells; the nearest that accept V: ..." for a box of the
    builder's cells (:func:`cells_accepting`, window widened by ``tail``), else ""."""
    cells = _builder_cells(box, el)
    if cells is None:
        return ""
    e = el.left
    ok = cells_accepting(e.orientation, e.a0, V, beta, EF, band, cells, kpoints=kpoints,
                         tail=tail)
    unit = "cubic cells" if e.orientation == "001" else "a_nn x sqrt(3) a_nn cells"
    what = f"V = {V} V" + (f" with Fermi tails of {tail:.3f} eV" if tail else "")
    named = (f"the nearest that accept {what}: {', '.join(f'{a}x{b}' for a, b in ok)}"
             if ok else f"none up to 12x12 accepts {what}")
    return f"this box is {cells[0]}x{cells[1]} {unit}; {named}"


def _check_bath(system, V, beta, temperature, box, el, kpoints) -> None:
    """Refuse an electronic bath at electron temperature ``temperature`` (K) whose energy
    window (the bias window with its Fermi tails, :func:`lammps_recoil.bath.check_window`)
    meets a flat band of the periodic leads or leaves their band, naming the cell and the
    choices that are accepted (:func:`check_data`)."""
    from .bath import check_window, largest_temperature
    from .integration import K_B, TAIL_KT
    try:
        check_window(system, V, beta, temperature)
        return
    except ValueError:
        pass
    EF, (lo, hi) = system.fermi_level, system.band_edges
    tail = TAIL_KT * K_B * temperature
    wlo, whi = window_bounds(EF, V, beta, temperature)
    flat = np.unique(np.round(system._flat_bands()[0], 4))
    near = flat[(flat >= wlo - FLAT_MARGIN) & (flat <= whi + FLAT_MARGIN)]
    window = (f"the bath's energy window [{wlo:.3f}, {whi:.3f}] eV (the bias window and its "
              f"Fermi tails, {TAIL_KT:g} k_B T_e = {tail:.3f} eV on each side)")
    t_max = largest_temperature(system, V, beta)
    te = f"-var Te below {t_max:.0f} (K)" if t_max >= 1 else "-var Te 0"
    if not near.size:
        raise ValueError(f"electronic bath at T_e = {temperature} K, V = {V} V: {window} "
                         f"leaves the lead band [{lo:.3f}, {hi:.3f}] eV; use {te} or a "
                         "smaller |V|")
    cells = _other_cells(box, el, V, beta, EF, (lo, hi), kpoints, tail)
    other = f"; {cells}" if cells else ""
    raise ValueError(
        f"electronic bath at T_e = {temperature} K, V = {V} V: the periodic leads have a "
        f"decoupled flat band at E = {near[0]:.4f} eV, within {FLAT_MARGIN} eV of {window}"
        f"{other}; use laterally infinite leads (-var leads infinite: the paper's leads, no "
        f"flat bands), {te}, or a lead broadening (-var lead_eta 0.05, eV: the flat bands "
        "become Lorentzians)")


def _check_bath_size(n_atoms: int, memory: float | None = None, ranks: int = 1,
                     zone=(-np.inf, np.inf)) -> str:
    """Refuse an electronic bath whose kernels on ``n_atoms`` filament atoms (those in
    ``zone`` along z) would not fit into this machine's memory (``memory``, bytes; default
    its physical memory) for ``ranks`` MPI ranks on it, each holding its own copy, by the
    estimate :func:`lammps_recoil.bath.kernel_memory`; else the estimate as a line of the
    report."""
    from .bath import KERNEL_POINTS, kernel_memory, largest_kernel_atoms
    from .parallel import node_memory
    memory = node_memory() if memory is None else memory
    need = kernel_memory(n_atoms)
    where = "" if tuple(zone) == (-np.inf, np.inf) else \
        f" (z from {zone[0]:g} to {zone[1]:g} A)"
    what = (f"electronic bath on {n_atoms} filament atoms{where}: one computation of its "
            f"kernels holds about {need / 2**30:.2g} GB per MPI rank (rows of 2 (3N)^2 numbers per "
            f"energy point, up to {KERNEL_POINTS} points)")
    if ranks * need > memory:
        mine = f"{memory / 2**30:.3g} GB"
        over = (f"{ranks * need / 2**30:.2g} GB for the {ranks} MPI ranks on this machine, "
                f"more than its {mine}" if ranks > 1 else f"more than this machine's {mine}")
        here = f" with {ranks} ranks" if ranks > 1 else ""
        raise ValueError(
            f"{what}, {over}; accepted: up to {largest_kernel_atoms(memory / ranks)} "
            f"filament atoms here{here} (the kernels' time grows about as N^2.4 too: "
            "docs/bath.md, Cost); put the bath on a part of the filament (-var bath_zlo "
            "and -var bath_zhi, its atoms' range along z in A), or run without it "
            "(-var bath none)")
    return what


def rounded(x, digits: int = 4) -> list:
    """``x`` rounded to ``digits`` decimals as a list, with -0.0 printed as 0.0."""
    return (np.round(np.asarray(x, dtype=float), digits) + 0.0).tolist()


def system_mask(data: DataFile, device: str) -> np.ndarray:
    """Filament atoms among the device atoms of ``device`` (in file order)."""
    members = data.types[np.isin(data.types, check_device(device))]
    return members == FILAMENT_TYPE
