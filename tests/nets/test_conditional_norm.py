"""Conditional instance norm (one network, many styles) and the style-prediction head."""

import pytest
import torch

from brushwork.nets.inference import InferenceNet
from brushwork.nets.style_predictor import PredictorConfig, StylePredictor, flat_norm_params
from brushwork.nets.transformer import StyleTransferNet, TransformerConfig, split_norm_params

STYLES = 3


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _conditional_net(seed=0):
    torch.manual_seed(seed)
    net = StyleTransferNet(TransformerConfig(width=8, num_residual=2, num_styles=STYLES)).eval()
    with torch.no_grad():  # distinct rows per style, so that picking the wrong one would show
        for layer in net.norm_layers():
            layer.scale.normal_(1.0, 0.4)
            layer.shift.normal_(0.0, 0.4)
    return net


def _single_style_copy(net, style):
    """A plain (one-style) network with `net`'s convolutions and style `style`'s norm row."""
    plain = StyleTransferNet(TransformerConfig(width=8, num_residual=2, num_styles=1)).eval()
    state = {k: (v[style:style + 1] if k.endswith((".scale", ".shift")) else v) for k, v in net.state_dict().items()}
    plain.load_state_dict(state)
    return plain


def _one_hot(style):
    w = torch.zeros(1, STYLES)
    w[0, style] = 1.0
    return w


def test_one_style_of_a_conditional_net_equals_the_plain_net_with_its_parameters():
    net = _conditional_net()
    x = torch.rand(1, 3, 36, 44)
    outputs = []
    with torch.no_grad():
        for style in range(STYLES):
            y = net(x, _one_hot(style))
            assert torch.allclose(y, _single_style_copy(net, style)(x), atol=1e-5)
            # ... and equals the same parameters supplied from outside, as the predictor supplies them.
            flat = torch.cat([t for layer in net.norm_layers() for t in (layer.scale[style], layer.shift[style])])
            assert torch.allclose(y, net(x, split_norm_params(net, flat[None])), atol=1e-5)
            outputs.append(y)
    assert (outputs[0] - outputs[1]).abs().max() > 1e-2  # the styles really differ


def test_blend_weights_summing_to_one_reproduce_each_style_at_the_endpoints():
    net = _conditional_net(seed=1)
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        for style in range(STYLES):
            blend = [0.0] * STYLES
            blend[style] = 1.0
            alone = net(x, _one_hot(style))
            assert torch.allclose(net(x, torch.tensor([blend])), alone, atol=1e-5)
            # The deployed network (weights baked in, as `stylize --style A:1` uses) agrees.
            assert torch.allclose(InferenceNet(net, blend)(x), alone, atol=1e-4)
        # In between, the norm parameters are the weighted mean of the two styles' rows.
        mixed = InferenceNet(net, [0.3, 0.7, 0.0])
        first = net.norm_layers()[0]
        assert torch.allclose(mixed.norm_scale[0], 0.3 * first.scale[0] + 0.7 * first.scale[1], atol=1e-6)


def test_an_untrained_predictor_starts_at_the_networks_own_norm_parameters():
    torch.manual_seed(0)
    net = StyleTransferNet(TransformerConfig(width=8, num_residual=1)).eval()
    predictor = StylePredictor(PredictorConfig(norm_params=net.norm_param_count(), embedding_size=10, hidden=16))
    own = flat_norm_params(net.norm_layers())
    predictor.set_output_bias(own)
    statistics = torch.rand(2, predictor.config.statistics_size) * 5
    predictor.set_input_statistics(statistics)
    embedding = predictor.embed(statistics)
    assert embedding.shape == (2, 10)
    params = predictor(statistics)
    assert params.shape == (2, net.norm_param_count())
    assert torch.allclose(params, own.expand(2, -1), atol=0.05)  # small initial weights: close to the bias
    pairs = split_norm_params(net, params)
    assert [a.shape[1] for a, _ in pairs] == [layer.channels for layer in net.norm_layers()]
