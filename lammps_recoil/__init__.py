"""lammps_recoil: quantum recoil (current-induced) forces on ions for LAMMPS.

Implements Kharlanov, "Effects of quantum recoil forces in resistive switching in
memristors": a tight-binding NEGF model of the conduction electrons (Eqs. 2-13) between
semi-infinite leads, the 1D chain toy model (Eqs. 14-19), and its coupling to LAMMPS MD.

Layout, in the order the physics flows: ``geometry`` -> ``hamiltonian`` (tight binding)
-> ``leads`` -> ``greens`` (device Green's function, transmission) -> ``boundstates``
(states no lead broadens) -> ``integration``
(energy windows) -> ``forces`` -> ``system`` (the public entry point).
"""
import os

# The NEGF solves are many small dense and sparse operations: BLAS threads only add
# overhead and oversubscribe cores next to MPI ranks. Set before numpy
# loads; an explicit OMP_NUM_THREADS in the environment wins.
os.environ.setdefault("OMP_NUM_THREADS", "1")

from .geometry import A0_CU, A_NN_CU, chain_lattice, fcc_lattice  # noqa: E402
from .hamiltonian import HoppingModel  # noqa: E402
from .leads import LayeredLead, WireLead  # noqa: E402
from .system import G0_SIEMENS, RecoilResult, RecoilSystem  # noqa: E402

__all__ = ["A0_CU", "A_NN_CU", "G0_SIEMENS", "HoppingModel", "LayeredLead", "RecoilResult",
           "RecoilSystem", "WireLead", "chain_lattice", "fcc_lattice"]
__version__ = "0.1.0"
