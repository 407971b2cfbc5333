"""Row kernels of the profile pyramid (:mod:`pxrdbench.physics.profile_pyramid`), float32, rows × bins.

v = 2(t − t_k)/Γ at bin edges (t in grid steps, Γ the FWHM in steps); a split profile (asymmetry ρ) has
side = 1 + ρ·sign(v) and CDF side·S(v/side). Bin integrals are formed so that they keep full relative
precision far from the peak, where a difference of two CDF values near their limits would not:
- Lorentzian part: atan(b) − atan(a) = atan2(b − a, 1 + a·b) with the exact width b − a;
- Gaussian part (where the peak's top may be off the grid): side·erf(x) = r − r·erfc(|x|), r = side·sign(x).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

_SQRT_LN2 = math.sqrt(math.log(2.0))


def upsample(v: Tensor) -> Tensor:
    """2× subdivision of bin averages along the last axis: (R, n) → (R, 2(n − 4)), bins 2..n−3 refined."""
    mid, d = v[:, 2:-2], slope(v)
    out = torch.empty(v.shape[0], v.shape[1] - 4, 2, dtype=v.dtype, device=v.device)
    torch.sub(mid, d, out=out[:, :, 0])
    torch.add(mid, d, out=out[:, :, 1])
    return out.view(v.shape[0], -1)


def slope(v: Tensor) -> Tensor:
    """(22 (v_{j+1} − v_{j−1}) − 3 (v_{j+2} − v_{j−2})) / 128 for j = 2..n−3."""
    d = torch.sub(v[:, 3:-1], v[:, 1:-3]).mul_(22.0 / 128.0)
    return d.sub_(torch.sub(v[:, 4:], v[:, :-4]), alpha=3.0 / 128.0)


def lorentz(v: Tensor, width: Tensor, sides: tuple[Tensor, Tensor] | None) -> Tensor:
    """Increments of atan(v) (split: s·atan(v/s), s = 1 ± ρ) over the bins [v_j, v_{j+1}] of edges v.

    v = α + k·w = 2(t − t_k)/Γ at edges k; atan(b) − atan(a) = atan2(b − a, 1 + a·b) with the exact width
    b − a = w keeps full relative precision in far tails (the difference of two atan values near ±π/2
    would keep only ~1e-7 of the peak's height). For a split profile each bin takes the side of its middle
    and the one bin per row that holds the peak (v = 0) is recomputed from both sides (:func:`fix_peak_bin`).
    """
    va, vb = v[:, :-1], v[:, 1:]
    full = width.expand(-1, va.shape[1]).contiguous()  # atan2 vectorises only without broadcasting
    den = torch.mul(va, vb)
    if sides is None:
        return torch.atan2(full, den.add_(1.0))
    right, left = sides
    side = torch.add(va, vb).gt_(0.0).mul_(right - left).add_(left)  # side of the bin's middle
    inv = torch.reciprocal(side)
    out = torch.atan2(full.mul_(inv), den.mul_(inv).mul_(inv).add_(1.0)).mul_(side)
    return fix_peak_bin(out, v[:, :1], width, sides)


def fix_peak_bin(out: Tensor, v0: Tensor, width: Tensor, sides: tuple[Tensor, Tensor]) -> Tensor:
    """Replace, per row, the bin [v0 + j·w, v0 + (j + 1)·w] that holds v = 0 by (1+ρ)atan(b/(1+ρ)) −
    (1−ρ)atan(a/(1−ρ)) (exact for any bin that holds the peak, to ~1e-7 for one merely touching it)."""
    right, left = sides
    j = torch.floor(-v0 / width).clamp_(0.0, out.shape[1] - 1.0)
    va = torch.addcmul(v0, j, width)
    vb = va + width
    exact = right * torch.atan(vb / right) - left * torch.atan(va / left)
    hit = (va <= 0.0) & (vb >= 0.0)
    index = j.to(torch.int64)
    return out.scatter_(1, index, torch.where(hit, exact, out.gather(1, index)))


def gauss(v: Tensor, coef_g: Tensor, rho: Tensor | None, precise: bool) -> Tensor:
    """Increments of c_G·side·erf(√ln2 v/side), side = 1 + ρ·sign(v), over the bins between edges v.

    ``precise``: with r = side·sign(x), side·erf(x) = r − r·erfc(|x|), so a bin on one side is −Δ(r·erfc|x|),
    exact in relative terms far from the peak (needed only where the peak's own top is not on the grid).
    """
    side = None if rho is None else torch.sign(v).mul_(rho).add_(1.0)
    x = v * _SQRT_LN2 if side is None else v * _SQRT_LN2 / side
    if not precise:
        f = torch.erf(x).mul_(coef_g)
        return torch.diff(f if side is None else f.mul_(side), dim=1)
    r = torch.sign(x) if side is None else torch.sign(x).mul_(side)
    q = torch.erfc(x.abs_()).mul_(r)
    return torch.diff(r, dim=1).sub_(torch.diff(q, dim=1)).mul_(coef_g)


def pair_sums(x: Tensor, times: int) -> Tensor:
    """Sums of 2^times adjacent bins along the last axis (strided adds: a reduction over 2 is slow)."""
    for _ in range(times):
        x = x[:, 0::2] + x[:, 1::2]
    return x
