"""CUDA paths against the CPU paths (run by ``pytest -m gpu``, e.g. from ``make gpu-check``; skipped without CUDA).

The CPU uses different kernels for the same functions (FFT depthwise convolution, channels-last matrix products,
oneDNN 1 × K convolutions); on CUDA the cuDNN kernels run. Both must compute the same network.
"""

from __future__ import annotations

import pytest
import torch

from pxrdbench.models.xrd.convnext1d import ConvNeXt1D
from pxrdbench.models.xrd.depthwise import DepthwiseConv1d
from pxrdbench.models.xrd.resnet1d import ResNet1D

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


def _same_on_both(module: torch.nn.Module, x: torch.Tensor, atol: float) -> None:
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    module = module.double().eval()
    cpu = module(x.double())
    gpu = module.cuda()(x.double().cuda()).cpu()
    assert torch.allclose(cpu, gpu, atol=atol), float((cpu - gpu).abs().max())


def test_depthwise_convolution_cudnn_equals_the_cpu_fft_path() -> None:
    torch.manual_seed(0)
    _same_on_both(DepthwiseConv1d(8, 100), torch.randn(2, 8, 1000), atol=1e-9)


def test_convnext_equals_its_cpu_result() -> None:
    torch.manual_seed(1)
    model = ConvNeXt1D(channels=8, kernel_sizes=(40, 20, 16), expansion=2, block_pool=2, input_length=512,
                       layer_scale_init=0.5)  # fmt: skip
    _same_on_both(model, torch.rand(3, 512), atol=1e-9)


def test_resnet_equals_its_cpu_result() -> None:
    torch.manual_seed(2)
    model = ResNet1D(widths=(4, 8), blocks_per_stage=(1, 1), pool_after_stage=(3, 2))
    _same_on_both(model, torch.rand(3, 301), atol=1e-9)


def test_rendering_on_cuda_equals_the_cpu_rendering() -> None:
    from pxrdbench.physics.peak_batch import batch_peaks
    from pxrdbench.physics.profiles import ProfileParams, render_profiles
    from pxrdbench.physics.wavelength import parse_wavelength

    torch.manual_seed(3)
    wavelength = parse_wavelength("CuKa")
    d = 1.2 + 4.0 * torch.rand(4, 50, dtype=torch.float64)
    mf2 = torch.rand(4, 50, dtype=torch.float64)
    grid = torch.linspace(10.0, 80.0, 3500)
    profile = ProfileParams("pseudo_voigt", fwhm=0.1, eta=0.5)
    cpu = render_profiles(batch_peaks(d, mf2, wavelength, (10.0, 80.0)), grid, profile)
    peaks = batch_peaks(d.cuda(), mf2.cuda(), wavelength, (10.0, 80.0))
    gpu = render_profiles(peaks, grid.cuda(), profile).cpu()
    assert torch.allclose(cpu, gpu, atol=1e-4 * float(cpu.max()))
