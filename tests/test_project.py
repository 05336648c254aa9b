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
