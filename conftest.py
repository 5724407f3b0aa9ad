"""Root pytest configuration: skip collecting modules whose optional backend is missing."""

import importlib.util

# --doctest-modules imports every module of the package; the Triton kernels need triton
# (shipped with CUDA builds of torch, absent from CPU-only ones)
collect_ignore_glob = [] if importlib.util.find_spec("triton") else ["mmalign/warping/_triton_*.py"]
