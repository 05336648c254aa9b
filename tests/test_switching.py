"""SET/RESET detection with hysteresis on conductance traces whose switching times are
known by construction."""
import numpy as np
import pytest

from lammps_recoil.protocols import make_protocol
from lammps_recoil.switching import per_cycle, smoothed, switching_events

t = np.round(np.arange(0.0, 48.0, 0.1), 10)            # updates every 0.1 ps


def noisy(levels, seed=0, sigma=0.15):
    """A piecewise-constant G(t) (levels: (start time, G)) with Gaussian noise and a few
    one-update spikes across both thresholds."""
    rng = np.random.default_rng(seed)
    G = np.zeros_like(t)
    for start, g in levels:
        G[t >= start - 1e-9] = g
    G = G + sigma * rng.standard_normal(len(t))
    G[[37, 152, 301]] = [0.9, 3.1, 0.8]                    # spikes: no events
    return G


def test_events_of_a_triangle_cycle():
    """Two cycles of a 0 -> 1.2 -> -1.2 -> 0 V triangle (24 ps each at 0.2 V/ps); the
    conductance drops at 7.0 and 31.0 ps and recovers at 19.5 and 43.5 ps: RESETs and SETs
    at those times (within the median's half window), at the protocol's bias there, one of
    each per cycle."""
    p = make_protocol("triangle", V_min=-1.2, V_max=1.2, rate=0.2, cycles=2, update_ps=0.1)
    V = p.bias(t)
    G = noisy([(0, 3.0), (7.0, 1.0), (19.5, 3.0), (31.0, 1.0), (43.5, 3.0)])
    events = switching_events(t, G, V, window=1.0, cycle_length=p.cycle_length)
    assert [e.kind for e in events] == ["RESET", "SET", "RESET", "SET"]
    for e, when in zip(events, (7.0, 19.5, 31.0, 43.5)):
        assert abs(e.time - when) <= 0.15
        assert e.bias == pytest.approx(p.bias(e.time), abs=1e-12)
    assert [e.cycle for e in events] == [0, 0, 1, 1]
    rows = per_cycle(events)
    assert [r["cycle"] for r in rows] == [0, 1]
    for r, (reset, set_) in zip(rows, ((7.0, 19.5), (31.0, 43.5))):
        assert r["n_SET"] == r["n_RESET"] == 1
        assert r["V_RESET"] == pytest.approx(p.bias(r["t_RESET"]))
        assert abs(r["t_SET"] - set_) <= 0.15


def test_hysteresis_ignores_noise_between_the_thresholds():
    """G wandering around 2 G0 with 0.3 G0 noise crosses 2 G0 hundreds of times: a single
    threshold would chatter, the pair (2.5, 1.5) reports nothing."""
    G = noisy([(0, 2.0)], seed=3, sigma=0.3)
    assert np.count_nonzero(np.diff(np.sign(G - 2.0))) > 100
    assert switching_events(t, G, np.ones_like(t), 2.5, 1.5, window=1.0) == []


def test_undetermined_start_is_fixed_by_the_first_threshold():
    """Starting between the thresholds, the first threshold reached fixes the state; only
    the later change is an event."""
    G = noisy([(0, 2.0), (5.0, 1.0), (20.0, 3.0)], seed=4, sigma=0.05)
    events = switching_events(t, G, np.zeros_like(t), 2.5, 1.5, window=0.5)
    assert [e.kind for e in events] == ["SET"]
    assert abs(events[0].time - 20.0) <= 0.15


def test_median_window_and_bad_thresholds():
    G = np.array([1.0, 1.0, 5.0, 1.0, 1.0])
    np.testing.assert_array_equal(smoothed(np.arange(5) * 0.1, G, 0.3), np.ones(5))
    np.testing.assert_array_equal(smoothed(np.arange(5) * 0.1, G, 0.1), G)
    with pytest.raises(ValueError, match="g_reset < g_set"):
        switching_events(t, np.ones_like(t), t, g_set=1.0, g_reset=2.0)


def test_device_analysis_of_a_triangle_run(tmp_path):
    """A time series in the deck's format (header and columns of a triangle run) whose
    G(E_F) drops and recovers at known times: events.csv and cycles.csv hold those events
    at the protocol's voltages, and the I-V loop and V(t)-G(t) figures are drawn."""
    from lammps_recoil import G0_SIEMENS
    from lammps_recoil.analysis import read_run_header, read_series, run_label
    from lammps_recoil.coupling import series_header
    from lammps_recoil.params import parse_params, run_header
    from lammps_recoil.plots import read_csv
    from lammps_recoil.study import device_analysis

    params = parse_params(protocol="triangle", V_min="-1.2", V_max="1.2", rate="0.2",
                          cycles="2", out=str(tmp_path / "tri"))
    p = make_protocol("triangle", V_min=-1.2, V_max=1.2, rate=0.2, cycles=2)
    V = p.bias(t)
    G = noisy([(0, 3.0), (7.0, 1.0), (19.5, 3.0), (31.0, 1.0), (43.5, 3.0)])
    I = G0_SIEMENS * 1e6 * G * V
    names = series_header(params).split(",")
    columns = {"step": np.round(t * 1000), "time_ps": t, "G_EF": G, "G_V": G, "V": V,
               "V_protocol": V, "I_uA": I, "P_uW": I * V, "in_compliance": 0 * t}
    rows = np.column_stack([columns.get(n, 0 * t) for n in names])
    with open(tmp_path / "tri.recoil.csv", "w") as fh:
        fh.write("".join(f"# {line}\n" for line in run_header(params, 20250722)))
        fh.write(",".join(names) + "\n")
        np.savetxt(fh, rows, delimiter=",", fmt="%.10g")
    series = read_series(tmp_path / "tri.recoil.csv")
    assert run_label(read_run_header(tmp_path / "tri.recoil.csv")) == \
        "tri: triangle -1.2 to 1.2 V, T = 300.0 K"
    summary = device_analysis(str(tmp_path / "tri"), str(tmp_path), series, "tri")
    assert summary["protocol"] == "triangle"
    assert summary["I_max_uA"] == pytest.approx(np.abs(I).max())
    events = read_csv(tmp_path / "events.csv")
    np.testing.assert_array_equal(events["SET"], [0, 1, 0, 1])
    np.testing.assert_allclose(events["time_ps"], [7.0, 19.5, 31.0, 43.5], atol=0.15)
    np.testing.assert_allclose(events["V"], p.bias(events["time_ps"]), atol=1e-9)
    cycles = read_csv(tmp_path / "cycles.csv")
    np.testing.assert_array_equal(cycles["cycle"], [0, 1])
    np.testing.assert_allclose(cycles["V_RESET"], p.bias(cycles["t_RESET"]), atol=1e-9)
    for name in ("iv_loop", "bias"):
        assert (tmp_path / f"{name}.png").stat().st_size > 5000


def test_events_and_cycles_tables_without_events(tmp_path, capsys):
    """A run whose G(E_F) stays at 3 G0 has no events: events.csv and cycles.csv are written
    with their headers and no rows, and the events header says what SET = 1 and 0 mean."""
    from lammps_recoil.analysis import read_series
    from lammps_recoil.coupling import series_header
    from lammps_recoil.params import parse_params, run_header
    from lammps_recoil.plots import read_csv
    from lammps_recoil.study import device_analysis
    from lammps_recoil.switching import CYCLE_COLUMNS
    params = parse_params(out=str(tmp_path / "flat"))
    names = series_header(params).split(",")
    columns = {"step": np.round(t * 1000), "time_ps": t, "G_EF": 3.0 + 0 * t,
               "G_V": 3.0 + 0 * t, "V": 1.0 + 0 * t, "V_protocol": 1.0 + 0 * t,
               "I_uA": 232.4 + 0 * t, "P_uW": 232.4 + 0 * t, "in_compliance": 0 * t}
    with open(tmp_path / "flat.recoil.csv", "w") as fh:
        fh.write("".join(f"# {line}\n" for line in run_header(params, 20250722)))
        fh.write(",".join(names) + "\n")
        np.savetxt(fh, np.column_stack([columns.get(n, 0 * t) for n in names]),
                   delimiter=",", fmt="%.10g")
    series = read_series(tmp_path / "flat.recoil.csv")
    summary = device_analysis(str(tmp_path / "flat"), str(tmp_path), series, "flat")
    assert summary["events"] == [] and summary["cycles"] == []
    cycles = read_csv(tmp_path / "cycles.csv")
    assert tuple(cycles) == CYCLE_COLUMNS and all(len(v) == 0 for v in cycles.values())
    head = (tmp_path / "events.csv").read_text().splitlines()
    assert head[0] == (f"# switching events of {tmp_path / 'flat'}, one row each: column SET "
                       "is 1 for a SET (the 1.0 ps running median of G(E_F) rose to 2.0 G0) "
                       "and 0 for a RESET (it fell to 1.5 G0); G is that median (G0), V the "
                       "applied bias (V)")
    assert head[1:] == ["time_ps,V,G,cycle,SET"]


def test_cycle_colours_end_with_the_last_cycle():
    """One 8 ps cycle sampled every 0.1 ps, the last sample at its end: all of cycle 0;
    two cycles: 0 up to 8 ps, 1 after; a hold after the last of ``count`` cycles gets the
    one index ``count`` however long it lasts; an event's cycle is the same index (an
    event at a cycle's end belongs to that cycle)."""
    from lammps_recoil.switching import cycle_index
    t = np.round(np.arange(0, 81) * 0.1, 10)
    assert set(cycle_index(t, 0.0, 8.0)) == {0}
    t2 = np.round(np.arange(0, 161) * 0.1, 10)
    c = cycle_index(t2, 0.0, 8.0)
    assert c[t2 <= 8.0].max() == 0 and c[t2 > 8.0].min() == 1 and c.max() == 1
    assert cycle_index(np.append(t, 8.1), 0.0, 8.0)[-1] == 1
    hold = np.round(np.arange(0, 401) * 0.1, 10)            # 2 cycles, then 24 ps held
    assert set(cycle_index(hold, 0.0, 8.0, count=2)[hold > 16.0]) == {2}
    G = np.where(hold < 8.0, 3.0, 1.0)                         # a RESET at the first end
    G[hold >= 30.0] = 3.0                                      # a SET during the hold
    events = switching_events(hold, G, np.zeros_like(hold), window=0.1, cycle_length=8.0,
                              cycles=2)
    assert [(e.kind, e.time, e.cycle) for e in events] == [("RESET", 8.0, 0),
                                                            ("SET", 30.0, 2)]


def test_a_step_down_and_a_step_up_are_found_at_the_same_update():
    """The running median is centred (5 updates on each side for 1 ps at 0.1 ps): a clean
    RESET step and a clean SET step at 20 ps are both found at 20.0 ps (a window of 5
    updates before and 4 after would find the RESET at 20.1 ps)."""
    t = np.round(np.arange(0, 400) * 0.1, 10)
    down = switching_events(t, np.where(t < 20.0, 3.0, 1.0), np.ones_like(t))
    up = switching_events(t, np.where(t < 20.0, 1.0, 3.0), np.ones_like(t))
    assert [(e.kind, e.time) for e in down + up] == [("RESET", 20.0), ("SET", 20.0)]
    g = smoothed(t, np.where(t < 20.0, 3.0, 1.0))
    assert g[199] == 3.0 and g[200] == 1.0


def test_a_run_without_its_dump_is_analyzed_from_its_series(tmp_path, capsys):
    """The stored triangle sweep of docs/protocols.md (its .recoil.csv alone): analyze
    notes the missing dump, leaves out the geometry figures and finds the events of
    docs/figures/protocols/triangle_events.csv."""
    from pathlib import Path
    import shutil
    from lammps_recoil.plots import read_csv
    from lammps_recoil.study import analyze
    docs = Path(__file__).resolve().parents[1] / "docs" / "figures" / "protocols"
    shutil.copy(docs / "triangle.recoil.csv", tmp_path / "tri.recoil.csv")
    summary = analyze(str(tmp_path / "tri"), str(tmp_path / "out"))
    assert "no dump" in capsys.readouterr().err
    assert "layers.csv" not in summary["files"] and summary["moved_layers"] is None
    stored = read_csv(docs / "triangle_events.csv")
    assert [(e.kind == "SET", e.time, e.bias, e.cycle) for e in summary["events"]] == \
        list(zip(stored["SET"], stored["time_ps"], stored["V"], stored["cycle"]))
    assert [(e.kind, e.time) for e in summary["events"]][:2] == [("RESET", 22.9),
                                                                 ("SET", 31.8)]
