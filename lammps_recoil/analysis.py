"""Analysis of recoil MD outputs: LAMMPS dumps and the recoil time series."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Frame:
    """One dump snapshot: timestep, box bounds (3 x 2) and per-atom columns by name."""

    step: int
    box: np.ndarray
    columns: dict

    def __getitem__(self, name):
        return self.columns[name]

    @property
    def recoil(self) -> np.ndarray:
        """Per-atom recoil force (N, 3) from the d2_frec columns (eV/A)."""
        return np.column_stack([self.columns[f"d2_frec[{i}]"] for i in (1, 2, 3)])


def read_dump(path: str) -> list[Frame]:
    """Read a LAMMPS text ``dump custom`` file (all frames, columns as floats/ints)."""
    frames = []
    with open(path) as fh:
        lines = fh.read().splitlines()
    i = 0
    while i < len(lines):
        if not lines[i].startswith("ITEM: TIMESTEP"):
            i += 1
            continue
        step = int(lines[i + 1])
        j = i + 2
        while not lines[j].startswith("ITEM: NUMBER OF ATOMS"):
            j += 1
        n = int(lines[j + 1])
        box = np.array([[float(v) for v in lines[j + 3 + d].split()[:2]] for d in range(3)])
        names = lines[j + 6].split()[2:]
        data = np.array([row.split() for row in lines[j + 7:j + 7 + n]], dtype=float)
        data = data.reshape(n, len(names))
        cols = {name: (data[:, c].astype(np.int64) if name in ("id", "type") else data[:, c])
                for c, name in enumerate(names)}
        frames.append(Frame(step, box, cols))
        i = j + 7 + n
    return frames


def read_series(path: str) -> dict:
    """Read the recoil time series ``<out>.recoil.csv`` into arrays by column name."""
    with open(path) as fh:
        header = fh.readline().strip().split(",")
    data = np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2)
    return {name: data[:, c] for c, name in enumerate(header)}
