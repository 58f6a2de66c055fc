"""Bundles the plugin library that cargo built into the package, so that
`cargo build --release -p hlo-pjrt && pip install ./python` is the whole install."""

import os
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

LIBRARY = "libhlo_pjrt.so"


def built_library():
    """`$HLO_VK_PJRT_LIBRARY`, else the newest release (then debug) build of the checkout."""
    env = os.environ.get("HLO_VK_PJRT_LIBRARY")
    if env:
        return Path(env)
    repo = Path(__file__).resolve().parent.parent
    target = Path(os.environ.get("CARGO_TARGET_DIR", repo / "target"))
    for profile in ("release", "debug"):
        lib = target / profile / LIBRARY
        if lib.is_file():
            return lib
    return None


class BuildPyWithLibrary(build_py):
    def run(self):
        super().run()
        lib = built_library()
        if lib is not None and lib.is_file():
            dest = Path(self.build_lib) / "jax_plugins" / "hlo_vk" / LIBRARY
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(lib, dest)
        else:
            print("hlo-vk-jax: no %s built (cargo build --release -p hlo-pjrt); "
                  "set HLO_VK_PJRT_LIBRARY at run time" % LIBRARY)


setup(cmdclass={"build_py": BuildPyWithLibrary})
