"""lammps_recoil: quantum recoil (current-induced) forces on ions for LAMMPS.

Implements Kharlanov, "Effects of quantum recoil forces in resistive switching in
memristors": a tight-binding NEGF model of the conduction electrons (Eqs. 2-13) between
semi-infinite leads, the 1D chain toy model (Eqs. 14-19), and its coupling to LAMMPS MD.

Layout, in the order the physics flows: ``geometry`` -> ``hamiltonian`` (tight binding)
-> ``leads`` -> ``greens`` (device Green's function, transmission) -> ``integration``
(energy windows) -> ``forces`` -> ``system`` (the public entry point).
"""
from .geometry import A0_CU, A_NN_CU, chain_lattice, fcc_lattice
from .hamiltonian import HoppingModel
from .leads import LayeredLead, WireLead
from .system import G0_SIEMENS, RecoilResult, RecoilSystem

__all__ = ["A0_CU", "A_NN_CU", "G0_SIEMENS", "HoppingModel", "LayeredLead", "RecoilResult",
           "RecoilSystem", "WireLead", "chain_lattice", "fcc_lattice"]
__version__ = "0.1.0"
