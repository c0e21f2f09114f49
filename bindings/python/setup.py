"""Builds the bnnative package with the native libraries inside it (bnnative/_lib), as a platform wheel.

The libraries come from the source tree's build output (../../artifacts/lib, made by ./build.sh) or from
$BNNATIVE_LIBRARY_DIR. Offline, as this machine is: pip wheel --no-build-isolation --no-deps ./bindings/python
(./build.sh does it) or pip install --no-build-isolation ./bindings/python.
"""
import os
import re
import shutil

from setuptools import Distribution, setup
from setuptools.command.build_py import build_py

try:
    from wheel.bdist_wheel import bdist_wheel
except ImportError:  # without the wheel package only sdists and in-place installs are possible
    bdist_wheel = None

HERE = os.path.dirname(os.path.abspath(__file__))
LIBRARIES = ["libbnnative.so", "libbnnative_avx2.so", "libbnnative_avx512.so"]


def version():
    with open(os.path.join(HERE, "bnnative", "_abi.py")) as abi:
        return ".".join(re.search(r"VERSION = \((\d+), (\d+), (\d+)\)", abi.read()).groups())


class BuildWithLibraries(build_py):
    """build_py, then the native libraries into the built package (real files: the links of artifacts/lib resolved)."""

    def run(self):
        super().run()
        source = os.environ.get("BNNATIVE_LIBRARY_DIR") or os.path.join(HERE, "..", "..", "artifacts", "lib")
        if not os.path.exists(os.path.join(source, "libbnnative.so")):
            raise SystemExit(f"bnnative: no libbnnative.so in {source}: run ./build.sh first, or set BNNATIVE_LIBRARY_DIR")
        target = os.path.join(self.build_lib, "bnnative", "_lib")
        os.makedirs(target, exist_ok=True)
        for name in LIBRARIES:
            path = os.path.join(source, name)
            if os.path.exists(path):
                shutil.copyfile(os.path.realpath(path), os.path.join(target, name))


class BinaryDistribution(Distribution):
    """Native code inside: the package goes to the platform's library directory (the wheel's root)."""

    def has_ext_modules(self):
        return True


commands = {"build_py": BuildWithLibraries}
if bdist_wheel is not None:
    class PlatformWheel(bdist_wheel):
        """The native code is not Python's: any Python 3 on this platform (py3-none-<platform>)."""

        def get_tag(self):
            _, _, platform = super().get_tag()
            return "py3", "none", platform

    commands["bdist_wheel"] = PlatformWheel

setup(version=version(), cmdclass=commands, distclass=BinaryDistribution)
