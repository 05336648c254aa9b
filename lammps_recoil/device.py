"""The NEGF device's topology: its atoms' bonds, among themselves and to the two leads.

Built again each time the device atoms move (:meth:`~lammps_recoil.system.RecoilSystem.
update`), from their positions and the leads' surface blocks, which never move:

* the device atoms are ordered along z (which makes G_F^-1 banded, block tridiagonal);
* the bonds among device atoms (the device Hamiltonian H_F of Eq. 5) and between device
  atoms and each lead's block atoms (the device-lead matrices V_S of Eq. 5, as
  :class:`~lammps_recoil.greens.LeadContact`), oriented so that ``i`` is the device atom;
* the bonds of the *extended* region (device atoms, then each lead's contact atoms), on
  which the density matrix of Eq. 9 is accumulated for the forces of Eq. 4.

Building validates the geometry: no overlaps (named by device atom id or lead atom), every
device atom connected to a lead by bonds (else it would carry bound states), nothing
reaching past the lead blocks.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .geometry import NeighborList, Pairs, bond_components, check_overlaps, neighbor_pairs
from .greens import LeadContact
from .hamiltonian import Bonds, HoppingModel, find_bonds


def lead_neighbors(left, right, hopping: HoppingModel, box) -> NeighborList:
    """The neighbour list of moving device atoms against both leads' block atoms (left,
    then right); refuses leads bonded to each other (a device region too short)."""
    blocks = np.vstack([left.positions, right.positions])
    i, j, _, _ = neighbor_pairs(blocks, hopping.r_off, box)
    if np.any((i < len(left.positions)) != (j < len(left.positions))):
        raise ValueError("the left and right leads are bonded to each other: the device "
                         "region is too short")
    return NeighborList(blocks, hopping.r_off, box)


@dataclass
class Topology:
    """The bonds of a device configuration, device atoms numbered in z order.

    ``order``: internal index -> the caller's index of each device atom;
    ``device_bonds``: bonds among device atoms; ``lead_contacts``: one
    :class:`~lammps_recoil.greens.LeadContact` per lead (left, right); ``ext_bonds``: the
    bonds of device atoms to device atoms or lead contacts in the extended numbering (N
    device atoms, then the left lead's contacts, then the right's; ``n_ext`` in all);
    ``at_lead``: device atoms bonded to a lead (internal order).
    """

    order: np.ndarray
    device_bonds: Bonds
    lead_contacts: list
    ext_bonds: Bonds
    n_ext: int
    at_lead: np.ndarray


def device_topology(positions: np.ndarray, neighbors: NeighborList, leads, hopping,
                    box, ids: np.ndarray, names, need_both: bool = True) -> Topology:
    """The :class:`Topology` of device atoms at ``positions`` (the caller's order, checked
    finite) between ``leads`` (left, right; ``neighbors``: :func:`lead_neighbors`).

    ``ids`` label the atoms in error messages (``names(idx)``: labels of several);
    ``need_both``: the device must be bonded to both leads (when it is built; later it
    may lose one: a ruptured filament, T = 0, the detached lead injects nothing).
    """
    n = len(positions)
    order = np.argsort(positions[:, 2], kind="stable")
    # pairs among the device atoms and with the lead atoms near them (the leads are
    # ideal: no pairs among them), renumbered to the z order
    i, j, d, shift = neighbors.pairs(positions)
    near = neighbors.near
    n_left = len(leads[0].positions)
    rank = np.empty(n + len(near), dtype=int)
    rank[order] = np.arange(n)
    rank[n:] = np.arange(n, n + len(near))
    pairs = Pairs(rank[i], rank[j], d, shift)
    allpos = np.vstack([positions[order], neighbors.fixed[near]])
    kind = np.concatenate([np.zeros(n, dtype=int), np.where(near < n_left, 1, 2)])
    local = np.concatenate([order, np.where(near < n_left, near, near - n_left)])
    check_overlaps(allpos, box, label=lambda a: (
        f"device atom {ids[local[a]]}" if kind[a] == 0 else
        f"{('left', 'right')[kind[a] - 1]} lead atom {local[a]}"), pairs=pairs)
    bonds = find_bonds(allpos, hopping, box, pairs)
    i, j, d, shift, t, dtdr = (bonds.i, bonds.j, bonds.vec, bonds.shift, bonds.t,
                               bonds.dtdr)
    for lead in leads:
        lead.check_reach(positions, names)
    # orient device-lead bonds so that i is the device atom
    flip = (kind[i] != 0) & (kind[j] == 0)
    i, j = np.where(flip, j, i), np.where(flip, i, j)
    d[flip] *= -1
    shift[flip] *= -1
    ki, kj = kind[i], kind[j]
    dd = (ki == 0) & (kj == 0)
    device_bonds = Bonds(i[dd], j[dd], d[dd], t[dd], dtdr[dd], shift[dd])

    contacts, ext_j = [], j.copy()
    offset = n
    for s, lead in enumerate(leads):
        m = (ki == 0) & (kj == s + 1)
        if not m.any() and need_both:
            raise ValueError(f"the device has no bond to the {lead.side} lead")
        atoms, con = np.unique(local[j[m]], return_inverse=True)
        contacts.append(LeadContact(atoms, np.unique(i[m]), i[m], con, d[m], t[m]))
        ext_j[m] = offset + con
        offset += len(atoms)
    bonded = (ki == 0) & (kj <= 2)
    ext_bonds = Bonds(i[bonded], ext_j[bonded], d[bonded], t[bonded], dtdr[bonded],
                      shift[bonded])
    check_connected(device_bonds, contacts, order, names)
    at_lead = np.zeros(n, dtype=bool)
    for c in contacts:
        at_lead[c.boundary] = True
    return Topology(order, device_bonds, contacts, ext_bonds, offset, at_lead)


def check_connected(device_bonds: Bonds, contacts, order, names) -> None:
    """Every device atom must have a bonded path to a lead (else: bound states)."""
    n = len(order)
    rows = np.concatenate([device_bonds.i, np.concatenate([c.boundary for c in contacts])])
    cols = np.concatenate([device_bonds.j, np.concatenate(
        [np.full(len(c.boundary), n + s) for s, c in enumerate(contacts)])])
    label = bond_components(rows, cols, n + 2)
    lost = np.sort(order[(label[:n] != label[n]) & (label[:n] != label[n + 1])])
    if lost.size:
        raise ValueError(f"device atoms {names(lost)} are not connected to either "
                         "lead (isolated cluster or atom that flew off)")
