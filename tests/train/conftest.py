"""One intra-op thread per engine test: on the shared 2-core CI box, more threads than free
cores mostly wait on each other (a training step went from ~1 s to ~10 s with 2 threads)."""

import pytest
import torch


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
