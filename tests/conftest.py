"""Shared pytest setup.

Eight virtual CPU devices let the multi-device tests (pmap, sharded jit) run on
any machine; XLA reads the flag once, when jax initialises its backend, so it
is set here, before any test module imports jax.
"""

import os

_DEVICES_FLAG = "--xla_force_host_platform_device_count=8"
if _DEVICES_FLAG not in os.environ.get("XLA_FLAGS", ""):
  os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "") + " " + _DEVICES_FLAG
  ).strip()
