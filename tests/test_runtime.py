"""The runtime: what `prepare_module` and `adopt_module` leave a module as."""

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


def test_adopt_module_leaves_the_callers_module_as_it_was():
    # A network passed to runtimes of two precisions must not flip layout under its other users.
    conv = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3))
    bf16, fp32 = resolve_runtime("cpu", "bf16"), resolve_runtime("cpu", "fp32")
    adopted = bf16.adopt_module(conv)
    assert adopted is not conv
    assert adopted[0].weight.is_contiguous(memory_format=torch.channels_last)
    assert conv[0].weight.is_contiguous() and not conv[0].weight.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(adopted[0].weight, conv[0].weight)
    # Already in the runtime's layout: the module itself, no copy.
    assert fp32.adopt_module(conv) is conv
    assert bf16.adopt_module(adopted) is adopted


def test_a_bf16_run_does_not_re_lay_out_the_callers_vgg(content_path, style_path, vgg):
    from brushwork.methods.optimize import OptimizeOptions, run_optimization

    weights = {name: p.detach().clone() for name, p in vgg.named_parameters()}
    run_optimization(content_path, style_path,
                     OptimizeOptions(size=32, steps=1, scales=1, device="cpu", precision="bf16"), vgg=vgg)
    for name, p in vgg.named_parameters():
        assert p.is_contiguous(), name
        assert torch.equal(p, weights[name]), name
