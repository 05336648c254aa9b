"""The project's own promises: CI runs README's test command; the CLI answers."""
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def readme_commands():
    return re.findall(r"```bash\n# (.*?)\n(.*?)\n```", (ROOT / "README.md").read_text())


def test_ci_runs_the_readme_test_command():
    commands = dict(readme_commands())
    assert set(commands) == {"run the main job on the small default case", "run the tests"}
    assert commands["run the tests"] in (ROOT / ".ci" / "run").read_text()


def test_info_reports_the_fermi_level():
    out = subprocess.run([sys.executable, "-m", "lammps_recoil.cli", "info"], check=True,
                         capture_output=True, text=True, cwd=ROOT).stdout
    assert re.search(r"fcc\(001\) lead: E_0 = -7\.9462 eV.*E_F \(1 e/atom\) = 0\.6077 eV", out)


def test_decks_read_like_lammps_examples():
    """The production deck keeps at most 4 `if` lines; both decks no line over 120
    characters and a thermo line of named columns without `thermo_modify temp` (whose
    group-temperature warning every run printed); the test deck's thermo line is the
    production deck's without the bias columns."""
    thermo = {}
    production = (ROOT / "inputs/in.filament").read_text().splitlines()
    assert sum(line.startswith("if ") for line in production) <= 4
    for deck in ("inputs/in.filament", "tests/in.checks"):
        lines = (ROOT / deck).read_text().splitlines()
        assert max(len(line) for line in lines) <= 120, deck
        text = "\n".join(lines)
        assert "thermo_modify   temp" not in text and "f_recoil[" not in text.split(
            "thermo_style")[1], deck
        thermo[deck] = text.split("thermo_style    custom ")[1].split("\n")[0].split()
        for name in ("G_EF", "G_V", "Frec_x", "Frec_z"):
            assert f"variable {name}" in text and f"v_{name}" in thermo[deck], (deck, name)
    assert thermo["tests/in.checks"] == thermo["inputs/in.filament"][:8]


def test_python_defaults_are_the_decks():
    """Every recoil parameter the production deck defines with ``variable NAME index
    VALUE`` has that VALUE as its params.DEFAULTS entry (used by `check` and by decks that
    leave it out), and the bath's Te follows T there as in the deck."""
    from lammps_recoil.params import DEFAULTS, parse_params
    deck = (ROOT / "inputs" / "in.filament").read_text()
    found = dict(re.findall(r"^variable\s+(\w+)\s+index\s+(\S+)", deck, re.M))
    shared = set(found) & set(DEFAULTS)
    assert len(shared) >= 35
    assert {k: found[k] for k in shared} == {k: DEFAULTS[k] for k in shared}
    assert parse_params(T="600")["Te"] == 600.0 and parse_params(Te="50")["Te"] == 50.0
