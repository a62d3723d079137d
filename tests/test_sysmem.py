"""gcann.sysmem: after keep_freed_memory(), a large CPU tensor comes from malloc's heap, not from a fresh
mmap (read off /proc/self/maps), so re-allocating it costs no page faults."""
import platform

import pytest
import torch

from gcann.sysmem import keep_freed_memory


def _heap_ranges() -> list[tuple[int, int]]:
    out = []
    with open("/proc/self/maps") as f:
        for line in f:
            if line.rstrip().endswith("[heap]"):
                a, b = line.split()[0].split("-")
                out.append((int(a, 16), int(b, 16)))
    return out


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's malloc settings")
def test_large_tensors_come_from_the_heap_once_freed_memory_is_kept():
    assert keep_freed_memory() and keep_freed_memory()   # idempotent
    x = torch.empty(64 * 400 * 400)                      # 41 MB: above glibc's largest mmap threshold (32 MB)
    ptr = x.data_ptr()
    assert any(a <= ptr < b for a, b in _heap_ranges())
