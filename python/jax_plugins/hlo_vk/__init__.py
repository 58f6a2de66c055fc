"""Registers the hlo-vk Vulkan PJRT plugin with JAX as the platform "vulkan".

The shared library `libhlo_pjrt.so` is looked up, first found wins:
  1. `$HLO_VK_PJRT_LIBRARY` (a path to the .so);
  2. `libhlo_pjrt.so` next to this file (copied there before `pip install`);
  3. `$CARGO_TARGET_DIR/release/libhlo_pjrt.so`;
  4. `target/release/libhlo_pjrt.so` of the repository this file lives in (editable installs).
`HLO_VK_PRIORITY` overrides the backend priority (JAX's default for plugins, 400, makes
"vulkan" the default backend when `JAX_PLATFORMS` is unset).
"""

import logging
import os
from pathlib import Path

logger = logging.getLogger(__name__)

LIBRARY_NAME = "libhlo_pjrt.so"


def library_path() -> str | None:
    """The plugin library to load, or None when none is found."""
    candidates = []
    env = os.environ.get("HLO_VK_PJRT_LIBRARY")
    if env:
        candidates.append(Path(env))
    here = Path(__file__).resolve().parent
    candidates.append(here / LIBRARY_NAME)
    target = os.environ.get("CARGO_TARGET_DIR")
    if target:
        candidates.append(Path(target) / "release" / LIBRARY_NAME)
    candidates.append(here.parents[2] / "target" / "release" / LIBRARY_NAME)
    for path in candidates:
        if path.is_file():
            return str(path)
    if env:
        logger.warning("HLO_VK_PJRT_LIBRARY=%s: no such file", env)
    return None


def initialize() -> None:
    path = library_path()
    if path is None:
        logger.warning(
            "hlo-vk: %s not found; set HLO_VK_PJRT_LIBRARY or copy the library into %s",
            LIBRARY_NAME,
            Path(__file__).resolve().parent,
        )
        return
    from jax._src import xla_bridge

    priority = int(os.environ.get("HLO_VK_PRIORITY", "400"))
    xla_bridge.register_plugin("vulkan", priority=priority, library_path=path)
    enable_donation()


def enable_donation() -> None:
    """Lets JAX lower `donate_argnums` for "vulkan".

    JAX writes donations into the program (`tf.aliasing_output`) only for the platforms listed in
    `jax._src.interpreters.mlir._platforms_with_donation` (cpu, cuda, rocm, tpu, neuron in 0.8.3) and
    otherwise warns "Donation is not implemented"; the plugin implements donation, so it joins the list.
    """
    try:
        from jax._src.interpreters import mlir
    except ImportError:
        return
    platforms = getattr(mlir, "_platforms_with_donation", None)
    if isinstance(platforms, list) and "vulkan" not in platforms:
        platforms.append("vulkan")
