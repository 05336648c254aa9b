"""OVITO sees the dump's recoil force as one 3-vector and draws it as arrows.

Pictures are drawn by ``lammps-recoil render`` in a process of their own (as a user runs
it): OVITO's scene and task state are per process."""
import re
import subprocess
import sys

import numpy as np
import pytest

from lammps_recoil import render
from lammps_recoil.builders import build_filament

ovito = pytest.importorskip("ovito")
pytestmark = pytest.mark.ovito

COLUMNS = "id type mass x y z vx vy vz fx fy fz d2_frec[1] d2_frec[2] d2_frec[3]".split()


def write_dump(path, fil, recoil, times=(0.0, 0.1)):
    """A LAMMPS text dump of the filament's atoms, one frame per time (as the deck's)."""
    n = len(fil.positions)
    rng = np.random.default_rng(3)
    with open(path, "w") as fh:
        for frame, t in enumerate(times):
            fh.write(f"ITEM: TIME\n{t:.15g}\nITEM: TIMESTEP\n{100 * frame}\n"
                     f"ITEM: NUMBER OF ATOMS\n{n}\nITEM: BOX BOUNDS pp pp ff\n"
                     f"0 {fil.box[0]:.15g}\n0 {fil.box[1]:.15g}\n"
                     f"{fil.positions[:, 2].min() - 1:.15g} "
                     f"{fil.positions[:, 2].max() + 1:.15g}\n"
                     f"ITEM: ATOMS {' '.join(COLUMNS)}\n")
            v, f = rng.standard_normal((2, n, 3))
            for i in range(n):
                row = [i + 1, fil.types[i], 63.55, *fil.positions[i], *v[i], *f[i],
                       *recoil[frame][i]]
                fh.write(" ".join(f"{x:.15g}" for x in row) + "\n")


@pytest.fixture(scope="module")
def filament():
    return build_filament(nx=2, ny=2, frozen_layers=2, electrode_layers=1, gap_layers=4,
                          shape="cylinder", neck_radius=1.3)


def recoil_on_filament(fil, seed):
    rng = np.random.default_rng(seed)
    recoil = np.zeros((len(fil.positions), 3))
    on = fil.types == 1
    recoil[on] = rng.uniform(-1, 1, (on.sum(), 3))
    return recoil


def render_cli(*args):
    """Run ``lammps-recoil render``; (return code, stdout, stderr)."""
    out = subprocess.run([sys.executable, "-m", "lammps_recoil.cli", "render", *args],
                         capture_output=True, text=True, timeout=300)
    return out.returncode, out.stdout, out.stderr


def largest_force(stdout):
    return float(re.search(r"largest recoil force ([0-9.eE+-]+) eV/A", stdout).group(1))


def arrow_pixels(png):
    """Pixels of the arrows' colour (green; atoms are copper or grey, background white)."""
    import matplotlib.image
    rgb = matplotlib.image.imread(png)[..., :3]
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    return int(np.count_nonzero((g > 0.35) & (g > 2.0 * r) & (g > 2.0 * b)))


def test_columns_map_to_standard_and_vector_properties():
    assert render.ovito_columns(COLUMNS) == [
        "Particle Identifier", "Particle Type", "Mass", "Position.X", "Position.Y",
        "Position.Z", "Velocity.X", "Velocity.Y", "Velocity.Z", "Force.X", "Force.Y",
        "Force.Z", "Recoil Force.1", "Recoil Force.2", "Recoil Force.3"]


def test_recoil_force_is_one_vector_equal_to_the_columns(filament, tmp_path):
    recoil = [recoil_on_filament(filament, s) for s in (1, 2)]
    path = str(tmp_path / "run.dump")
    write_dump(path, filament, recoil)
    pipeline = render.load(path)
    assert pipeline.source.num_frames == 2
    for frame in (0, 1):
        data = pipeline.compute(frame)
        prop = np.asarray(data.particles[render.RECOIL])
        assert prop.shape == (len(filament.positions), 3)
        order = np.argsort(np.asarray(data.particles["Particle Identifier"]))
        np.testing.assert_allclose(prop[order], recoil[frame], rtol=0, atol=1e-14)
        assert data.attributes["Time"] == pytest.approx((0.0, 0.1)[frame])


def test_arrows_drawn_only_where_forces_are(filament, tmp_path):
    recoil = recoil_on_filament(filament, 5)
    with_forces, without = str(tmp_path / "a.dump"), str(tmp_path / "b.dump")
    write_dump(with_forces, filament, [recoil, recoil])
    write_dump(without, filament, [0 * recoil, 0 * recoil])
    rc, out, err = render_cli(with_forces, "-o", str(tmp_path / "a.png"), "--size", "240",
                              "320")
    assert rc == 0, err
    assert "frame 1 (step 100, t = 0.1 ps)" in out
    assert largest_force(out) == pytest.approx(np.linalg.norm(recoil, axis=1).max(),
                                               rel=1e-3)
    rc, out, err = render_cli(without, "-o", str(tmp_path / "b.png"), "--size", "240", "320")
    assert rc == 0, err
    assert largest_force(out) == 0.0
    assert arrow_pixels(str(tmp_path / "b.png")) == 0
    assert arrow_pixels(str(tmp_path / "a.png")) > 50


def test_bad_frame_names_the_range(filament, tmp_path):
    path = str(tmp_path / "run.dump")
    recoil = recoil_on_filament(filament, 1)
    write_dump(path, filament, [recoil, recoil])
    rc, out, err = render_cli(path, "--frame", "5", "-o", str(tmp_path / "x.png"))
    assert rc == 2
    assert "frame 5 is not in the dump (2 frames" in err
    assert not (tmp_path / "x.png").exists()
    rc, out, err = render_cli(path)              # the last frame, named by its index
    assert rc == 0 and (tmp_path / "run.frame1.png").stat().st_size > 5000


def test_cut_dumps_and_dumps_without_forces(filament, tmp_path):
    """A dump cut within its last frame (a killed run) draws its last complete frame; one
    cut within its first frame is a one-line error naming the file; a dump without the
    recoil columns draws the atoms and says it has no forces."""
    recoil = recoil_on_filament(filament, 2)
    full = tmp_path / "full.dump"
    write_dump(str(full), filament, [recoil, recoil, recoil], times=(0.0, 0.1, 0.2))
    text = full.read_text()
    cut = tmp_path / "cut.dump"
    cut.write_text(text[:len(text) - 200])
    rc, out, err = render_cli(str(cut), "-o", str(tmp_path / "cut.png"), "--size", "240",
                              "320")
    assert rc == 0, err
    assert "frame 1 (step 100, t = 0.1 ps)" in out
    first = tmp_path / "first.dump"
    first.write_text(text[:text.index("ITEM: TIME\n", 10) - 300])
    rc, out, err = render_cli(str(first), "-o", str(tmp_path / "first.png"))
    assert rc == 2 and f"OVITO cannot read {first}: Parsing error" in err
    assert "Traceback" not in err and not (tmp_path / "first.png").exists()
    plain = tmp_path / "plain.dump"
    rows = [line.split()[:6] if line and line[0].isdigit() and len(line.split()) == 15
            else line.split() for line in text.splitlines()]
    plain.write_text("\n".join(" ".join(r[:8] if r[:2] == ["ITEM:", "ATOMS"] else r)
                               for r in rows) + "\n")
    rc, out, err = render_cli(str(plain), "-o", str(tmp_path / "plain.png"), "--size", "240",
                              "320")
    assert rc == 0, err
    assert "no recoil-force columns (d2_frec) in the dump: atoms only" in out
    assert arrow_pixels(str(tmp_path / "plain.png")) == 0
