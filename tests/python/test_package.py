"""The Python package as a user installs it: the wheel of artifacts/python into a fresh venv (with the system's
numpy and torch), and pip install --no-build-isolation of the source directory into another; each imports and
runs bnnative.torch from /, away from the source tree, with the native libraries the package carries."""
import glob
import os
import subprocess
import sys

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))

PROBE = """
import bnnative, bnnative.torch, torch
y = bnnative.torch.BatchNorm2d(3)(torch.randn(4, 3, 2, 2))
assert not bnnative._native.library().path.startswith({root!r}), bnnative._native.library().path
print(bnnative.__version__, bnnative.isa(), tuple(y.shape), bnnative._native.library().path)
"""


def run(command, cwd=None):
    environment = {k: v for k, v in os.environ.items() if k not in ("BNNATIVE_LIBRARY", "PYTHONPATH")}
    result = subprocess.run(command, cwd=cwd, env=environment, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"{' '.join(command)}:\n{result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.mark.parametrize("source", ["wheel", "directory"])
def test_the_package_installs_into_a_venv_and_runs_from_anywhere(tmp_path, source):
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)])
    python = str(venv / "bin" / "python")
    if source == "wheel":
        wheels = glob.glob(os.path.join(ROOT, "artifacts", "python", "bnnative-*.whl"))
        assert wheels, "no wheel in artifacts/python: ./build.sh makes it"
        run([python, "-m", "pip", "install", "--no-deps", "--no-index", "-q", wheels[0]])
    else:
        run([python, "-m", "pip", "install", "--no-build-isolation", "--no-deps", "--no-index", "-q",
             os.path.join(ROOT, "bindings", "python")])
    output = run([python, "-c", PROBE.format(root=ROOT)], cwd="/")
    assert "(4, 3, 2, 2)" in output and str(venv) in output, output
