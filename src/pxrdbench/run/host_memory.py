"""Large CPU tensors backed by transparent huge pages (a measured speed-up for CPU training, no numerical change).

PyTorch's CPU allocator returns every large block to the kernel when it is freed, so each training step faults
in its activations again, 4 KiB at a time: for AlphaDiffract's first block one [64, 8192, 320] float32 tensor
(671 MB) costs ~0.15 s of page faults before any arithmetic. With ``THP_MEM_ALLOC_ENABLE=1`` (read once by c10's CPU
allocator: it must be set before the process allocates its first large tensor, which is why the ``pxrdbench``
command sets it before anything else) allocations of ≥ 2 MiB are 2 MiB-aligned and
advised ``MADV_HUGEPAGE``; on Linux with ``/sys/kernel/mm/transparent_hugepage/enabled`` set to ``madvise`` or
``always`` the same tensor faults in ~3× faster, and a whole AlphaDiffract encoder step (batch 64, 2 cores) went from
~5.9 s to ~3.5 s once the rest of the speed work was in (``benchmarks/train_throughput.py``). Elsewhere the variable is ignored.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ENV = "THP_MEM_ALLOC_ENABLE"
THP_SETTING = Path("/sys/kernel/mm/transparent_hugepage/enabled")


def huge_pages_available() -> bool:
    """Whether the kernel grants transparent huge pages on request (Linux, mode ``always`` or ``madvise``)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        text = THP_SETTING.read_text()
    except OSError:
        return False
    return "[always]" in text or "[madvise]" in text


def use_huge_pages_for_tensors() -> bool:
    """Set ``THP_MEM_ALLOC_ENABLE=1`` unless the user set it; True when huge pages are now in use.

    Data-loader workers and DDP processes started afterwards inherit the setting.
    """
    if ENV in os.environ:
        return os.environ[ENV] == "1" and huge_pages_available()
    if not huge_pages_available():
        return False
    os.environ[ENV] = "1"
    return True


def skip_filling_new_tensors() -> None:
    """Stop deterministic mode from filling every new tensor with NaN (call after ``Trainer(deterministic=True)``).

    ``torch.use_deterministic_algorithms(True)`` (which the Trainer's ``deterministic`` flag calls) also sets
    ``torch.utils.deterministic.fill_uninitialized_memory``, a debugging aid that writes NaN into each
    ``torch.empty``: ~1,100 extra full-tensor writes per AlphaDiffract step (0.8 s of 6.6 s on 2 cores). No
    operation here reads memory it has not written, so results are unchanged (the determinism tests compare
    two runs bit for bit).
    """
    import torch.utils.deterministic

    torch.utils.deterministic.fill_uninitialized_memory = False
