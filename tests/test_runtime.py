"""The runtime: what `prepare_module` leaves a module as."""

import torch

from brushwork.runtime import resolve_runtime


def test_prepare_module_sets_the_memory_format_of_its_precision_both_ways():
    # `Module.to` works in place: a module a bf16 runtime made channels_last (AdaIN's default on a CPU with
    # native bf16, given the caller's VGG) must come back contiguous for an fp32 runtime, whose
    # convolutions would otherwise round differently from a fresh copy's (an fp32 training resumed in a
    # new process no longer matched the uninterrupted run).
    conv = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3))
    weight = lambda: conv[0].weight  # noqa: E731 - read after each in-place move
    resolve_runtime("cpu", "bf16").prepare_module(conv)
    assert weight().is_contiguous(memory_format=torch.channels_last) and not weight().is_contiguous()
    resolve_runtime("cpu", "fp32").prepare_module(conv)
    assert weight().is_contiguous()
