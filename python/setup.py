# SPDX-License-Identifier: Apache-2.0
"""`pip install ./python`: builds the `zss` module with setuptools and pybind11's setup helpers.

Why this backend: it is the only one that works offline on Debian 12 from Debian packages alone
(python3-setuptools, python3-pybind11, python3-wheel). There is deliberately no pyproject.toml:
with one, pip would build in an isolated environment and try to download setuptools and pybind11
from PyPI; without one, pip 23 builds with the setuptools, wheel and pybind11 it can import.
scikit-build-core (which would reuse CMakeLists.txt) is not packaged in Debian 12.

The build compiles the same single translation unit as CMake (src/zss_module.cpp) against the
headers of this checkout (../include) and Debian's Eigen, xtensor and xsimd, for this machine's
CPU (-march=native, as the CMake build). Debian's Python is externally managed (PEP 668): install
into a virtual environment that sees the system packages (numpy, torch)::

    python3 -m venv --system-site-packages ~/zss-venv
    ~/zss-venv/bin/pip install ./python
"""

import os
import re

from pybind11.setup_helpers import Pybind11Extension, build_ext
from setuptools import setup

here = os.path.dirname(os.path.abspath(__file__))
root = os.path.dirname(here)
include = os.path.join(root, "include")
if not os.path.isfile(os.path.join(include, "zss", "version.hpp")):
    raise SystemExit(f"zss setup.py: the C++ headers are not at {include} (build from a checkout)")
with open(os.path.join(root, "CMakeLists.txt"), encoding="utf-8") as f:
    version = re.search(r"project\(zss VERSION ([0-9.]+)", f.read()).group(1)

ext = Pybind11Extension(
    "zss._zss",
    [os.path.relpath(os.path.join(here, "src", "zss_module.cpp"))],
    include_dirs=[include, "/usr/include/eigen3"],
    cxx_std=20,
    extra_compile_args=["-O3", "-march=native", "-fopenmp"],
    extra_link_args=["-fopenmp"],
)

setup(
    name="zss",
    version=version,
    description="CLIP-ZSS's CPU half from NumPy and PyTorch: K-Means, pseudo labels, losses",
    license="Apache-2.0",
    packages=["zss"],
    package_dir={"zss": os.path.relpath(os.path.join(here, "zss"))},
    package_data={"zss": ["*.pyi", "py.typed"]},
    ext_modules=[ext],
    cmdclass={"build_ext": build_ext},
    python_requires=">=3.8",
    install_requires=["numpy"],
    zip_safe=False,
)
