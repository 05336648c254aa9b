"""Bias protocols V(t) against their closed forms, and refused parameters."""
import warnings
from pathlib import Path

import numpy as np
import pytest

from lammps_recoil.protocols import make_protocol

T = np.arange(0, 60.0001, 0.1)          # update times (ps): every 100 steps of 1 fs


def test_constant_is_V():
    assert np.all(make_protocol("constant", V=0.7).bias(T) == 0.7)


def test_ramp_closed_form():
    p = make_protocol("ramp", V_min=-0.5, V_max=1.0, rate=0.05, update_ps=0.1)
    np.testing.assert_allclose(p.bias(T), np.minimum(-0.5 + 0.05 * T, 1.0), atol=1e-14)
    assert p.bias(30.0) == pytest.approx(1.0) and p.bias(15.0) == pytest.approx(0.25)


def test_bipolar_triangle_points_and_closed_form():
    """0 -> 1.5 -> -1.5 -> 0 V at 0.25 V/ps: one cycle of 24 ps, two cycles, then 0."""
    p = make_protocol("triangle", V_min=-1.5, V_max=1.5, rate=0.25, cycles=2, update_ps=0.1)
    for t, v in [(0, 0), (6, 1.5), (12, 0), (18, -1.5), (24, 0), (30, 1.5), (42, -1.5),
                 (48, 0), (55, 0), (3, 0.75), (21, -0.75)]:
        assert p.bias(t) == pytest.approx(v, abs=1e-12), t
    # closed form: V_0 + the integral of +-rate, legs of 6, 12 and 6 ps
    tt = np.mod(np.minimum(T, 48), 24)
    ref = np.where(tt < 6, 0.25 * tt, np.where(tt < 18, 1.5 - 0.25 * (tt - 6),
                                                -1.5 + 0.25 * (tt - 18)))
    np.testing.assert_allclose(p.bias(T), ref, atol=1e-12)
    assert np.abs(np.diff(p.bias(T[T <= 48]))).max() <= 0.25 * 0.1 + 1e-12


def test_unipolar_triangle_starts_at_V_min():
    p = make_protocol("triangle", V_min=0.2, V_max=1.0, rate=0.1)
    assert p.bias(0) == pytest.approx(0.2) and p.bias(8) == pytest.approx(1.0)
    assert p.bias(16) == pytest.approx(0.2) and p.bias(100) == pytest.approx(0.2)


def test_sine_closed_form():
    p = make_protocol("sine", V_min=-1.0, V_max=0.5, period=8.0, cycles=3, update_ps=0.1)
    ref = np.where(T < 24, -0.25 + 0.75 * np.sin(2 * np.pi * T / 8), -0.25)
    np.testing.assert_allclose(p.bias(T), ref, atol=1e-12)


def test_pulse_train_alternating():
    p = make_protocol("pulse", V_min=0.0, V_max=1.2, width=2.0, period=10.0, count=3,
                      polarity="alternate", update_ps=0.1)
    v = p.bias(T)
    on = T % 10 < 2
    ref = np.where(on & (T < 30), 1.2 * (-1.0) ** np.floor(T / 10), 0.0)
    np.testing.assert_allclose(v, ref)
    assert p.extremes() == (-1.2, 1.2)
    assert np.isclose(np.sum(v[T < 30] != 0) * 0.1, 3 * 2.0)     # 3 pulses of 2 ps


def test_file_interpolates_and_holds(tmp_path):
    f = tmp_path / "v.txt"
    f.write_text("0 0\n10 1\n20 -1\n")
    p = make_protocol("file", file=f)
    np.testing.assert_allclose(p.bias([0, 5, 10, 15, 20, 40]), [0, 0.5, 1, 0, -1, -1])


@pytest.mark.parametrize("args, words", [
    (dict(kind="square"), "protocol must be one of"),
    (dict(kind="pulse", width=0.05, period=10), "at least the NEGF update interval 0.1"),
    (dict(kind="pulse", width=10, period=10), "pulse width must lie in (0, period"),
    (dict(kind="triangle", V_min=1, V_max=0), "needs V_min < V_max, got V_min = 1.0"),
    (dict(kind="triangle", V_min=0, V_max=1, rate=10), "accepted rate <= 5 V/ps"),
    (dict(kind="ramp", rate=-1), "sweep rate must be > 0 V/ps, got -1.0"),
    (dict(kind="sine", period=0.1), "sine period must be >= two NEGF updates (0.2 ps)"),
    (dict(kind="pulse", count=1.5), "count must be an integer >= 1, got 1.5"),
    (dict(kind="pulse", polarity="both"), "polarity must be same or alternate, got both"),
    (dict(kind="ramp", V_max="nan"), "V_max must be a finite number"),
    (dict(kind="file", file="/nonexistent"), "cannot read two columns"),
])
def test_bad_parameters_are_refused(args, words):
    with pytest.raises(ValueError) as err:
        make_protocol(update_ps=0.1, **args)
    assert words in str(err.value)


def test_an_empty_protocol_file_is_one_clear_error(tmp_path):
    """An empty file is refused as such, with no numpy warning on the way."""
    empty = tmp_path / "v.txt"
    empty.write_text("")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError, match=r"protocol file '.*v.txt': cannot read two "
                           r"columns time \(ps\), voltage \(V\): .*no data"):
            make_protocol("file", file=str(empty), update_ps=0.1)


ROOT = Path(__file__).resolve().parents[1]
DECK = dict(data=str(ROOT / "inputs/filament.data"),
            potential=str(ROOT / "potentials/Cu_Sheng2011.eam.alloy"))


@pytest.mark.parametrize("values, words", [
    # the default 4x4 cell's leads have a flat band at E = 0: |V| < 2 (E_F - 0.02 eV)
    (dict(protocol="triangle", V_min="-1.5", V_max="1.5", rate="0.1"),
     r"bias V = -1.5 V: the periodic leads have a decoupled flat band at E = 0.0000 eV.*"
     r"accepted: -1.175 V < V < 1.175 V"),
    (dict(protocol="pulse", V_min="0", V_max="1.0", width="0.05", period="2"),
     r"pulse width 0.05 ps and gap 1.95 ps must each be at least the NEGF update interval "
     r"0.1 ps"),
    (dict(protocol="triangle", V_min="0", V_max="1", rate="20", every="100"),
     r"lasts 0.05 ps, less than two NEGF updates \(0.2 ps\): accepted rate <= 5 V/ps"),
    (dict(protocol="file", vfile="no/such/file"), "protocol file 'no/such/file'"),
    (dict(protocol="zigzag"), "protocol .* must be one of constant, ramp, triangle"),
    (dict(compliance="-5"), r"compliance .* must be >= 0 uA \(0: none\), got '-5'"),
])
def test_deck_refuses_bad_protocols_before_writing(tmp_path, values, words):
    """check_inputs (both deck routes, before any output): a sweep beyond the accepted
    bias range of the leads, a pulse or sweep leg shorter than the NEGF updates, a missing
    voltage file, unknown names and a negative compliance; nothing is written."""
    from lammps_recoil.hooks import check_inputs
    out = tmp_path / "runs" / "p"
    with pytest.raises(ValueError, match=words):
        check_inputs(None, dict(out=str(out), **DECK, **values))
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("kind, kw, duration", [
    ("ramp", dict(V_min=0.0, V_max=1.0, rate=0.25), 4.0),
    ("triangle", dict(V_min=-1.0, V_max=1.1, rate=0.5, cycles=2), 2 * 2 * 2.1 / 0.5),
    ("sine", dict(V_min=0.0, V_max=1.0, period=3.0, cycles=3), 9.0),
    ("pulse", dict(V_min=0.0, V_max=1.0, period=5.0, width=1.0, count=3), 11.0),
    ("constant", dict(V=1.0), None)])
def test_protocol_duration_closed_form(kind, kw, duration):
    p = make_protocol(kind, **kw)
    assert p.duration == (None if duration is None else pytest.approx(duration))
    if duration is not None:           # V is held from there on
        assert p.bias(duration + 1.0) == pytest.approx(p.bias(duration + 7.3))
        assert p.coverage(duration) is None


def test_truncated_protocol_is_noted_before_the_run(tmp_path, capsys, monkeypatch):
    """Triangle 0 -> 1.1 V at 0.5 V/ps lasts 2 x 1.1 / 0.5 = 4.4 ps; 2 ps of production
    cover 2 / 4.4 = 45% and reach V = 0.5 x 2 = 1.0 V: check and the run's own check
    (both routes' check_inputs) say so on stderr before anything runs."""
    from lammps_recoil.cli import main
    from lammps_recoil.hooks import check_inputs
    p = make_protocol("triangle", V_min=0.0, V_max=1.1, rate=0.5, cycles=1)
    cover = p.coverage(2.0)
    assert cover.fraction == pytest.approx(2 / 4.4) and cover.V_high == pytest.approx(1.0)
    assert cover.V_low == 0.0 and cover.duration == pytest.approx(4.4)
    note = ("the triangle protocol lasts 4.4 ps but the production (production_ps) is 2 ps: "
            "it covers 45% of the protocol and applies V from 0 to 1 V of the protocol's 0 "
            "to 1.1 V; the whole protocol needs -var production_ps 4.4")
    assert cover.note("triangle", 2.0) == note
    root = Path(__file__).resolve().parents[1]
    monkeypatch.chdir(root)
    deck = dict(protocol="triangle", rate="0.5", V_max="1.1", production_ps="2")
    check_inputs(None, dict(deck, out=str(tmp_path / "r")))
    assert f"lammps-recoil: note: {note}" in capsys.readouterr().err
    args = ["check", "inputs/filament.data"] + [w for k, v in deck.items()
                                                for w in ("-var", k, v)]
    assert main(args) == 0
    assert f"note: {note}" in capsys.readouterr().out
    check_inputs(None, dict(deck, production_ps="4.4", out=str(tmp_path / "s")))
    assert "note" not in capsys.readouterr().err


def test_pulse_edges_on_the_update_grid_are_exact():
    """Update times are step * dt in floating point (0.3 / 0.2 = 1.4999999999999998):
    every pulse train of widths and periods on the 0.1 ps grid gives, at every update,
    the on/off pattern of exact integer arithmetic, and the limits 'at least one update'
    and 'at least two updates' accept their boundary values."""
    steps = np.arange(0, 1500, 100)
    t = steps * 0.001                                    # as the coupling computes it
    k = steps // 100
    for W in range(1, 12):
        for P in range(W + 1, 25):
            p = make_protocol("pulse", V_min=0.0, V_max=1.0, width=W / 10, period=P / 10,
                              count=4, update_ps=0.1)
            expected = np.where((k % P < W) & (k // P < 4), 1.0, 0.0)
            np.testing.assert_array_equal(p.bias(t), expected, err_msg=f"{W}, {P}")
    make_protocol("pulse", V_min=0.0, V_max=1.0, width=0.2, period=0.3, update_ps=0.1)
    make_protocol("ramp", V_min=0.0, V_max=0.6, rate=3.0, update_ps=0.1)
    make_protocol("sine", V_min=0.0, V_max=0.6, period=0.2, update_ps=0.1)


def test_pulses_off_the_update_grid_get_a_note():
    """A pulse width or period that is not a whole number of updates is noted with what
    the sampled pulse lasts (0.55 ps at 0.1 ps updates: 0.6 ps); on the grid, no note."""
    p = make_protocol("pulse", V_max=1.0, width=0.55, period=1.5, count=3, update_ps=0.1)
    note = p.grid_note(0.1)
    assert "width 0.55 ps is not a whole number of NEGF updates (0.1 ps)" in note
    assert "each pulse lasts 0.6 ps" in note
    t = np.round(np.arange(0, 30) * 0.1, 10)
    on = t[p.bias(t) == 1.0]
    assert on[on < 1.0].tolist() == [0.0, 0.1, 0.2, 0.3, 0.4, 0.5]      # 6 updates: 0.6 ps
    assert make_protocol("pulse", width=0.3, period=1.2, update_ps=0.1).grid_note(0.1) is None
    assert make_protocol("triangle", update_ps=0.1).grid_note(0.1) is None


def test_file_protocol_messages(tmp_path):
    """Without a vfile, the message says to set one; a NaN names its row."""
    with pytest.raises(ValueError, match="needs its voltages: -var vfile PATH"):
        make_protocol("file", file="none")
    path = tmp_path / "v.txt"
    path.write_text("0 0\n1 nan\n2 1\n")
    with pytest.raises(ValueError, match=r"non-finite values in data row 2: \[1.0, nan\]"):
        make_protocol("file", file=str(path))


def test_off_grid_periods_give_pulses_of_two_lengths():
    """Width 0.55 ps every 1.25 ps at 0.1 ps updates: the sampled pulses last 0.6 and 0.5
    ps in turn, as the note says and the protocol's bias at the updates shows."""
    p = make_protocol("pulse", V_max=1.0, width=0.55, period=1.25, count=4, update_ps=0.1)
    assert "the pulses last 0.5 to 0.6 ps" in p.grid_note(0.1)
    t = np.round(np.arange(0, 60) * 0.1, 10)
    on = p.bias(t) == 1.0
    runs = np.diff(np.flatnonzero(np.diff(np.concatenate([[0], on.astype(int), [0]]))))[::2]
    assert sorted(set(np.round(runs * 0.1, 9))) == [0.5, 0.6]
