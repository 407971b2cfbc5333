"""Multi-resolution bin integration of whole peak profiles (the engine behind ``render_profiles``).

Coordinates are grid steps shifted by ½: grid point i owns t ∈ [i, i + 1). Level ℓ has bins of h = 2^ℓ steps,
bin j = [j·h, (j + 1)·h), so every bin is exactly two bins of the level below. Level ℓ holds densities
(intensity per degree); the pattern is collapsed coarse → fine as y_{ℓ−1} += U(y_ℓ), where U is the
locally mass-conserving 2× subdivision of bin averages that is exact for quartic densities:
    left, right = v_j ∓ (22 (v_{j+1} − v_{j−1}) − 3 (v_{j+2} − v_{j−2})) / 128.
Its error on a smooth density is O(h⁵ f⁽⁵⁾): 1.3e-3 of f for a 1/x² tail 6 bins from the peak, 1.5e-2 at 4.
Only bins [−4, n_ℓ + 4) of each level can reach the grid through U, so those are the ones kept exact.

Telescoping ("exact minus predicted"): a peak is written on a nested set of windows W_ℓ, one per level, as
E_ℓ − U(E_{ℓ+1}) on W_ℓ, where E_ℓ are its exact bin integrals [F(b) − F(a)]/h from the CDF F. Each W_{ℓ+1}
contains the level-(ℓ+1) bins that U reads for W_ℓ, so after the collapse the content of level ℓ is exactly E_ℓ
inside W_ℓ; outside it is U(level ℓ + 1), accurate because it is ≥ K bins of level ℓ + 1 from the peak where
the profile is a smooth Lorentzian tail (K ≥ 4: ≲ 4e-5 of the peak's height, measured over widths 5e-4–3°).
The coarsest window of each peak covers the whole grid and has no prediction, so nothing is cut: every peak
reaches every grid point. Summed over W_ℓ, E_ℓ − U(E_{ℓ+1}) is 0 (U conserves mass inside each parent bin),
so the mass on an unbounded grid is exactly the profile's, Σ_k I_k, up to float32 rounding.

Rows (one window of one peak at one level), evaluated in float32 in groups of equal width:
- *core*, at level ℓ_c with ≥ m bins per narrow-side FWHM, m = ``samples_per_fwhm``·(1 + 2|ρ|) (level 0 for
  narrower peaks), on ±a·2^s bins (a ∈ [6, 12] level-ℓ_1 bins, ≥ 2.5 Γ_side): the full pseudo-Voigt, less
  U^s of its Lorentzian part at level ℓ_1 = ℓ_c + s. The Gaussian part beyond ±2.5 Γ_side (< 4e-9 of its
  area, 3e-8 of its height) is dropped; a pure Gaussian (η = 0) is one core row without prediction.
- *rings*, at levels ℓ_1, ℓ_1 + 1, … : the Lorentzian part η·L on ±K parent bins (K = ``RING_K``).
- *far*: the whole far level L_f (the first with ≤ ``FAR_BINS`` bins), the top of every peak with ℓ_1 ≤ L_f;
  broader peaks ring on until a ring covers the grid.
- *outside*: a peak centred outside the grid (its tail may be all the pattern has, so errors must be small
  relative to the tail, not to the peak) is one row, the whole profile on the whole of a level ≥ 16 bins away.
Bin integrals keep full relative precision in far tails (:mod:`pxrdbench.physics.profile_kernels`).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from pxrdbench.physics import profile_kernels as kernels

GAUSS_HALF_FWHM = 2.5
"""The Gaussian part is integrated on ±2.5 Γ_side (mass beyond: 4e-9; density: 3e-8 of the top)."""
CORE_BINS = 6
"""a₀: minimum core half-width in level-ℓ_1 bins (core edge ≥ 6 coarse bins from the peak)."""
RING_K = (8, 5, 4)
"""Ring half-widths K (parent bins) at levels ℓ_1, ℓ_1 + 1 and above: the first ring holds the core's U^s
stencil (⌈(a + 4)/2⌉ ≤ 8), each next one the ±2-bin stencil of the last (⌈(K + 2)/2⌉), never below 4."""
VALID = 4
"""Bins kept beyond the grid at every level: the collapse of [−4, n + 4) to the level below needs no more."""
FAR_BINS = 48
"""The far level L_f is the first with ≤ 48 bins; peaks are integrated on all of it (no more rings above)."""


class _Group:
    """Rows sharing (kind, width, s): per row the level, first bin, pattern and float32 coefficients."""

    def __init__(self, kind: str, width: int, s: int, level: int | Tensor, first: Tensor, pattern: Tensor):
        self.kind, self.width, self.s, self.pattern = kind, width, s, pattern
        self.first = first.to(torch.int64)
        self.level = level if isinstance(level, int) else level.to(torch.int64)
        self.alpha = self.beta = self.coef_l = self.coef_g = self.rho = self.flag = self.origin = None


class PyramidRenderer:
    """Plans rows (peak, level, window) for live peaks and sums them into a (B, N) float32 pattern.

    Args (all per live peak, float64, Tensor[n]): ``t`` centre in shifted steps, ``gamma`` FWHM in steps,
    ``eta``, ``rho``, ``weight`` = I/Δ (intensity per degree of 2θ per unit area), ``pattern`` row in the batch.
    """

    def __init__(self, t, gamma, eta, rho, weight, pattern, *, batch, n_points, samples_per_fwhm, asym):
        self.t, self.gamma, self.eta, self.rho, self.pattern = t, gamma, eta, rho, pattern
        self.batch, self.n_points, self.asym = batch, n_points, asym
        self.per_peak = (2.0 / gamma, 2.0 * t / gamma, eta * weight / math.pi, (1.0 - eta) * weight / 2.0)
        self.groups: list[_Group] = []
        self._plan(samples_per_fwhm)

    def _plan(self, samples_per_fwhm: float) -> None:
        narrow, wide = self.gamma * (1.0 - self.rho.abs()), self.gamma * (1.0 + self.rho.abs())
        core = torch.floor(torch.log2(narrow / (samples_per_fwhm * (1.0 + 2.0 * self.rho.abs()))))
        core = core.clamp_min(0.0)
        reach = GAUSS_HALF_FWHM * wide / torch.exp2(core)  # Gaussian half-extent D in level-ℓ_c bins
        lorentz, outside = self.eta > 0, (self.t < 0) | (self.t > self.n_points)
        # pure Gaussians: [p − A, p + A] at level ℓ_c, A = ⌈D⌉ rounded up to 2^j·{1, 1.25, 1.5, 1.75}
        half = _bucket(torch.ceil(reach))
        self._add_core_rows("gauss", ~lorentz & ~outside, core, torch.zeros_like(core), half)
        # pseudo-Voigt cores: level-ℓ_1 bins [p₁ − a, p₁ + a] with s ≥ 1, a ∈ [a₀, 2a₀] and a·2^s ≥ D
        s = torch.floor(torch.log2(reach / CORE_BINS)).clamp_min(1.0)
        a = torch.ceil(reach / torch.exp2(s)).clamp_min(CORE_BINS)
        covered = self._add_core_rows("core", lorentz & ~outside, core, s, a)
        self._add_ring_rows(torch.nonzero(lorentz & ~covered & ~outside).squeeze(1), core + s)
        self._add_outside_rows(torch.nonzero(outside).squeeze(1), core)

    def _add_outside_rows(self, idx: Tensor, core: Tensor) -> None:
        """A peak centred outside the grid, at d steps from it, may be all the pattern has; it is one row, the
        whole profile on the whole of level ℓ_o = min(⌊log2(d/16)⌋, ℓ_c) (no prediction): ≥ 16 bins from the
        grid, U errs by < 1e-5 of its tail there, and no coarse bin holding the peak mixes into the grid."""
        if idx.numel() == 0:
            return
        t = self.t[idx]
        d = torch.where(t < 0, -t, t - self.n_points).clamp_min(1.0)
        level = torch.minimum(torch.floor(torch.log2(d / 16.0)).clamp_min(0.0), core[idx])
        for lv in torch.unique(level).tolist():
            rows = idx[level == lv]
            per_peak = [x[rows] for x in self.per_peak]
            first, width = (
                torch.full_like(per_peak[0], -VALID),
                -(-self.n_points // (1 << int(lv))) + 2 * VALID,
            )
            self._add_group(
                "far", width, 0, int(lv), first, None, per_peak, self.pattern[rows], self.rho[rows]
            )

    def _add_core_rows(self, kind, sel, level, s, half) -> Tensor:
        """Group core rows by (ℓ_c, s, half); return whether each peak's core covers the whole grid."""
        step = torch.exp2(s)
        first = (torch.floor(self.t / torch.exp2(level + s)) - half) * step
        width = (2.0 * half + 1.0) * step
        n_level = torch.ceil(self.n_points / torch.exp2(level))
        covered = (first <= -VALID) & (first + width >= n_level + VALID)
        idx = torch.nonzero(sel & (first < n_level + VALID) & (first + width > -VALID)).squeeze(1)
        key = ((level * 64 + s) * 2.0**32 + half)[idx].to(torch.int64)
        order = torch.argsort(key, stable=True)
        values, counts = torch.unique_consecutive(key[order], return_counts=True)
        for value, rows in zip(values.tolist(), torch.split(idx[order], counts.tolist()), strict=True):
            s_i, half_i = (value >> 32) % 64, value & 0xFFFFFFFF
            per_peak = [x[rows] for x in self.per_peak]
            width = (2 * half_i + 1) << s_i
            group = (kind, width, s_i, level[rows], first[rows], ~covered[rows], per_peak)
            self._add_group(*group, self.pattern[rows], self.rho[rows])
        return covered

    def _add_ring_rows(self, idx: Tensor, level1: Tensor) -> None:
        """Rings at levels ℓ_1, ℓ_1 + 1, … (half-widths ``RING_K``) up to the far level L_f (the first with
        ≤ ``FAR_BINS`` bins), where the peak is integrated on the whole level; peaks whose ℓ_1 is above L_f
        ring on until one ring covers the grid. The topmost row of a peak has no prediction."""
        if idx.numel() == 0:
            return
        t, lv1 = self.t[idx], level1[idx]
        src = [x[idx] for x in (*self.per_peak[:3], self.pattern, self.rho)]
        far = max(0, math.ceil(math.log2(self.n_points / FAR_BINS)))
        active = torch.ones_like(idx, dtype=torch.bool)
        level = int(lv1.min().item())
        while bool(active.any()):
            if level == far:  # the far level: every active peak with ℓ_1 ≤ L_f ends here
                done = active & (lv1 <= far)
                n_far = -(-self.n_points // (1 << far))
                minus = torch.full_like(t, -VALID)
                self._store("far", n_far + 2 * VALID, 0, far, minus, None, src, done)
                active &= ~done
            j = level - lv1
            n_level = -(-self.n_points // (1 << level))
            for cls, k in enumerate(RING_K):
                sel = active & (j == cls if cls + 1 < len(RING_K) else j >= cls)
                first = 2.0 * (torch.floor(t * 2.0 ** -(level + 1)) - k)
                covers = (first <= -VALID) & (first + 4 * k + 2 >= n_level + VALID)
                take = sel & (first < n_level + VALID) & (first + 4 * k + 2 > -VALID)
                self._store("ring", 4 * k + 2, 1, level, first, ~covers, src, take)
                active &= ~(sel & covers)
            level += 1

    def _store(self, kind, width, s, level, first, flag, src, take) -> None:
        """Add the rows ``take`` (bool mask over ``src``, the per-peak arrays of the ring peaks) as a group."""
        count = int(take.sum())
        if count == 0:
            return
        if count < take.numel():
            where = torch.nonzero(take).squeeze(1)
            first, src = first[where], [x[where] for x in src]
            flag = None if flag is None else flag[where]
        inv, tv, cl, pattern, rho = src
        self._add_group(kind, width, s, level, first, flag, (inv, tv, cl, None), pattern, rho)

    def _add_group(self, kind, width, s, level, first, flag, per_peak, pattern, rho) -> None:
        """Store a group with its per-row float32 coefficients (v = α + k·β at edge k, coefficients c/h).

        ``level`` is an int (one level for the group) or a Tensor per row; ``per_peak`` = (2/Γ, 2t/Γ, ηw/π,
        (1 − η)w/2) of the rows, the last None for rows without a Gaussian part.
        """
        inv, tv, cl, cg = per_peak
        h = 2.0**level if isinstance(level, int) else torch.exp2(level)
        beta = inv * h
        group = _Group(kind, width, s, level, first, pattern)
        alpha = first * beta - tv
        if (
            kind == "far"
        ):  # long rows: v = (k − k₀)·β + α₀ from the edge k₀ next to the peak, exact in float32
            origin = torch.floor(-alpha / beta)
            group.origin, alpha = origin.to(torch.float32)[:, None], alpha + origin * beta
        group.alpha, group.beta = alpha.to(torch.float32)[:, None], beta.to(torch.float32)[:, None]
        group.coef_l = (cl / h).to(torch.float32)[:, None]
        if cg is not None and not bool((cg == 0).all()):
            group.coef_g = (cg / h).to(torch.float32)[:, None]
        group.rho = rho.to(torch.float32)[:, None] if self.asym else None
        group.flag = None if flag is None else flag.to(torch.float32)[:, None]
        self.groups.append(group)

    def render(self, max_chunk_elements: int) -> Tensor:
        """Evaluate every group chunk by chunk into the level buffers, then collapse them to the grid."""
        device = self.t.device
        if not self.groups:  # e.g. only Gaussians far outside the grid
            return torch.zeros(self.batch, self.n_points, dtype=torch.float32, device=device)
        n_levels = 1 + max(int(g.level if isinstance(g.level, int) else g.level.max()) for g in self.groups)
        n_list = [-(-self.n_points // (1 << lv)) for lv in range(n_levels)]
        n_tab = torch.tensor(n_list, device=device)
        over = torch.full((n_levels,), VALID, dtype=torch.int64, device=device)
        for g in self.groups:
            if isinstance(g.level, int):
                hang = max(int(-g.first.min()), int(g.first.max()) + g.width - n_list[g.level])
                over[g.level] = max(int(over[g.level]), hang)
            else:
                hang = torch.maximum(-g.first, g.first + g.width - n_tab[g.level])
                over.scatter_reduce_(0, g.level, hang, "amax")
        margin = over.tolist()
        lengths = [n_list[lv] + 2 * margin[lv] for lv in range(n_levels)]
        offsets = [0]
        for lv in range(n_levels):
            offsets.append(offsets[-1] + self.batch * lengths[lv])
        buffers = torch.zeros(offsets[-1], dtype=torch.float32, device=device)
        start = [o + m for o, m in zip(offsets[:-1], margin, strict=True)]
        start_tab, length_tab = torch.tensor(start, device=device), torch.tensor(lengths, device=device)
        for g in self.groups:
            if isinstance(g.level, int):
                base = g.pattern * lengths[g.level] + (g.first + start[g.level])
            else:
                base = start_tab[g.level] + g.pattern * length_tab[g.level] + g.first
            cols = torch.arange(g.width, device=device)
            rows = max(1, max_chunk_elements // (g.width + 16))
            for lo in range(0, base.numel(), rows):
                values = self._evaluate(g, slice(lo, lo + rows))
                target = base[lo : lo + rows, None] + cols
                buffers.scatter_add_(0, target.view(-1), values.view(-1))
        acc = None
        for lv in range(n_levels - 1, -1, -1):
            level = buffers[offsets[lv] : offsets[lv + 1]].view(self.batch, lengths[lv])
            n_keep = n_list[lv] + 2 * VALID
            level = level[:, margin[lv] - VALID : margin[lv] - VALID + n_keep]
            acc = level if acc is None else level.add_(kernels.upsample(acc)[:, :n_keep])
        return acc[:, VALID : VALID + self.n_points]

    def _evaluate(self, g: _Group, sl: slice) -> Tensor:
        """Densities (rows, width) to add for rows ``sl`` of group ``g``."""
        alpha, beta, coef_l = g.alpha[sl], g.beta[sl], g.coef_l[sl]
        flag = 0.0 if g.flag is None else g.flag[sl]
        rho = None if g.rho is None else g.rho[sl]
        sides = None if rho is None else (1.0 + rho, 1.0 - rho)
        width, device = g.width, alpha.device
        if g.kind == "ring":  # bins k ∈ [−4, width + 4); parent bins are pairs of them
            v = torch.addcmul(alpha, torch.arange(-4.0, width + 5.0, device=device), beta)
            fine = kernels.lorentz(v, beta, sides).mul_(coef_l)
            parent = kernels.pair_sums(fine, 1).mul_(0.5 * flag)
            return fine[:, 4 : width + 4].sub(kernels.upsample(parent))
        k = torch.arange(width + 1.0, device=device)
        if g.origin is None:
            v = torch.addcmul(alpha, k, beta)
        else:
            v = torch.sub(k, g.origin[sl]).mul_(beta).add_(alpha)
        lorentz = None if g.kind == "gauss" else kernels.lorentz(v, beta, sides).mul_(coef_l)
        dens = lorentz
        if g.coef_g is not None:
            gauss = kernels.gauss(v, g.coef_g[sl], rho, precise=g.kind != "core")
            dens = gauss if dens is None else gauss.add_(dens)
        if g.kind != "core":
            return dens
        # prediction: U^s of the Lorentzian part on level-ℓ_1 bins [p₁ − a − 4, p₁ + a + 5), the 2a + 1 inner
        # ones summed from the core's own bins, 4 more on each side
        ratio = 1 << g.s
        k4 = torch.arange(5.0, device=device) * ratio
        outer = [
            kernels.lorentz(torch.addcmul(alpha, k, beta), beta * ratio, sides)
            for k in (k4 - 4 * ratio, k4 + width)
        ]
        inner = kernels.pair_sums(lorentz, g.s)
        pred = torch.cat([outer[0].mul_(coef_l), inner, outer[1].mul_(coef_l)], dim=1).mul_(flag / ratio)
        for _ in range(g.s):
            pred = kernels.upsample(pred)
        return dens.sub_(pred[:, 4 : 4 + width])


def _bucket(count: Tensor) -> Tensor:
    """Round up to 2^j·{1, 1.25, 1.5, 1.75} (≤ 1.25× waste, four shapes per octave)."""
    pow2 = torch.exp2(torch.floor(torch.log2(count.clamp_min(1.0))))
    quarter = torch.ceil(count / (0.25 * pow2)).clamp_max(8.0)
    return torch.ceil(quarter * 0.25 * pow2)
