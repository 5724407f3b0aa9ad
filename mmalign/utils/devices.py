"""The one reader of device arguments (torch is imported when a device is read, not before)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

__all__ = ["resolve_device"]

_USE = "use 'cpu', 'cuda', 'cuda:N' or 'auto'"


def resolve_device(device: Any) -> "torch.device":
    """A usable ``torch.device`` from ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or a device.

    Strings are read without regard to case or surrounding spaces. ``"auto"``
    is CUDA when it is available, else the CPU. A CUDA device without an index
    gets one: ``$LOCAL_RANK`` under an initialised ``torch.distributed`` process
    group, else the current CUDA device.

    Parameters
    ----------
    device : str or torch.device

    Returns
    -------
    device : torch.device
        ``cpu``, or ``cuda`` with an index.

    Raises
    ------
    ValueError
        Naming ``device``: not a str or ``torch.device``, unknown, neither CPU
        nor CUDA, CUDA when it is not available, or a CUDA index beyond the
        devices present.

    Examples
    --------
    >>> resolve_device(" CPU ")
    device(type='cpu')
    >>> resolve_device("tpu")
    Traceback (most recent call last):
    ...
    ValueError: device 'tpu' is not a valid device (use 'cpu', 'cuda', 'cuda:N' or 'auto')
    """
    import torch

    if not isinstance(device, (str, torch.device)):
        raise ValueError(f"device must be a str or torch.device, got {type(device).__name__}")
    text = device if isinstance(device, torch.device) else device.strip().lower()
    if text == "auto":
        if not torch.cuda.is_available():
            return torch.device("cpu")
        dev = torch.device("cuda")
    else:
        try:
            dev = torch.device(text)
        except (RuntimeError, TypeError, ValueError):
            raise ValueError(f"device {device!r} is not a valid device ({_USE})") from None
    if dev.type == "cpu":
        return torch.device("cpu")
    if dev.type != "cuda":
        raise ValueError(f"device {device!r} is not supported ({_USE})")
    if not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested but CUDA is not available")
    index = dev.index
    if index is None:
        distributed = torch.distributed.is_available() and torch.distributed.is_initialized()
        index = int(os.environ.get("LOCAL_RANK", 0)) if distributed else torch.cuda.current_device()
    if not 0 <= index < torch.cuda.device_count():
        raise ValueError(f"device {device!r} requested but only {torch.cuda.device_count()} "
                         "CUDA device(s) exist")
    return torch.device("cuda", index)
