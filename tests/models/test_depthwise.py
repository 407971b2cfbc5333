"""The FFT depthwise convolution equals PyTorch's grouped conv with 'same' padding (odd and even kernels)."""

import pytest
import torch
import torch.nn.functional as F

from pxrdbench.models.xrd.depthwise import DepthwiseConv1d, depthwise_conv1d_fft


@pytest.mark.parametrize("kernel", [3, 16, 25, 50, 100])
def test_fft_path_matches_grouped_conv(kernel: int) -> None:
    torch.manual_seed(0)
    x = torch.randn(2, 4, 300, dtype=torch.float64)
    w = torch.randn(4, 1, kernel, dtype=torch.float64)
    b = torch.randn(4, dtype=torch.float64)
    left = (kernel - 1) // 2
    reference = F.conv1d(F.pad(x, (left, kernel - 1 - left)), w, b, groups=4)
    assert torch.allclose(depthwise_conv1d_fft(x, w, b), reference, atol=1e-10)


def test_module_gradients_match_reference() -> None:
    torch.manual_seed(1)
    conv = DepthwiseConv1d(3, 40).double()
    x = torch.randn(2, 3, 128, dtype=torch.float64, requires_grad=True)
    conv(x).pow(2).sum().backward()
    grad_fft = (x.grad.clone(), conv.weight.grad.clone())
    x.grad = None
    conv.weight.grad = None
    y = F.conv1d(F.pad(x, (19, 20)), conv.weight, conv.bias, groups=3)
    y.pow(2).sum().backward()
    assert torch.allclose(grad_fft[0], x.grad, atol=1e-9)
    assert torch.allclose(grad_fft[1], conv.weight.grad, atol=1e-9)


@pytest.mark.parametrize("kernel", [16, 25, 100])
def test_channels_last_layout_gives_the_same_convolution(kernel: int) -> None:
    torch.manual_seed(2)
    x = torch.randn(2, 5, 257, dtype=torch.float64)
    for k in (kernel, 7):  # FFT path and (below FFT_MIN_KERNEL) the grouped conv
        conv = DepthwiseConv1d(5, k).double()  # below FFT_MIN_KERNEL: grouped conv in both layouts
        last = conv(x.transpose(1, 2).contiguous(), channels_last=True)
        assert torch.allclose(conv(x), last.transpose(1, 2), atol=1e-10)
