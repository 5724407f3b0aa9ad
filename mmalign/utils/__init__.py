"""Small shared helpers at the lowest layer (no imports from the rest of mmalign).

- :mod:`~mmalign.utils.validation`: the argument checks (numpy only);
- :mod:`~mmalign.utils.tensors`: user data read as torch tensors;
- :mod:`~mmalign.utils.token_ids`: token-id sequences read as padded int64 batches;
- :mod:`~mmalign.utils.devices`: the device argument;
- :mod:`~mmalign.utils.files`: output files written safely;
- :mod:`~mmalign.utils.embedding_table`: the word-vector table data sets build and evaluations read;
- :mod:`~mmalign.utils.lazy`: lazy package names (PEP 562).

Importing this package loads none of torch, numba or scikit-learn.
"""

from .files import atomic_write, check_output_file

__all__ = ["atomic_write", "check_output_file"]
