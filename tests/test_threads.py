"""numba's thread pool must not change torch's thread count (they can share one OpenMP runtime)."""

import subprocess
import sys

import pytest

pytest.importorskip("torch")

_SCRIPT = """
{imports}
torch.set_num_threads(1)
assert torch.get_num_threads() == 1   # torch's OpenMP threads now set up (the reset needs this)
X = np.random.default_rng(0).standard_normal((6, 15, 2))
{call}
print(torch.get_num_threads(), numba.get_num_threads() == numba.config.NUMBA_NUM_THREADS)
"""
_IMPORTS = {
    "torch first": "import torch\nimport numba, numpy as np\nimport mmalign",
    "mmalign first": "import mmalign\nimport numba, numpy as np, torch",
}
_CALLS = {
    "cdist_dtw": "mmalign.cdist_dtw(X, n_jobs=-1); mmalign.cdist_dtw(X, n_jobs=1)",
    "KNeighborsDTW": "mmalign.KNeighborsDTW(1, radius=2, n_jobs=1).fit(X, np.arange(6) % 2).predict(X[:2])",
    "SoftDTWLoss": "mmalign.SoftDTWLoss()(torch.tensor(X[:3], requires_grad=True), torch.as_tensor(X[3:])).backward()",
}


@pytest.mark.parametrize("imports", list(_IMPORTS))
@pytest.mark.parametrize("call", list(_CALLS))
def test_numba_kernels_leave_torch_threads_alone(imports, call):
    # a fresh process: numba's threading layer starts once per process (at the first parallel
    # kernel, or numba.get_num_threads()), and starting it used to put torch on every core
    # after the caller had set torch.set_num_threads(1)
    code = _SCRIPT.format(imports=_IMPORTS[imports], call=_CALLS[call])
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["1", "True"]


_FORK = """
import multiprocessing as mp
import numpy as np
import mmalign
X = np.random.default_rng(0).standard_normal((6, 15, 2))

def work(_):
    return float(mmalign.cdist_dtw(X, n_jobs=-1).sum())

with mp.get_context("fork").Pool(2) as pool:
    print(len(set(pool.map(work, range(2)))))
"""


@pytest.mark.skipif(sys.platform != "linux", reason="fork with GNU OpenMP")
def test_importing_mmalign_leaves_fork_pools_usable():
    # GNU OpenMP does not survive fork once started: importing mmalign must not start
    # numba's threading layer (starting it at import would have cured the thread reset)
    out = subprocess.run([sys.executable, "-c", _FORK], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["1"]
