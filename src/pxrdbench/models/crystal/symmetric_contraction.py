"""The ACE product basis: a symmetric contraction of the atomic basis A to correlation order ν (MACE eq. 10–11).

Per atom i, channel c, the atomic basis A_{i,c} is a vector of D components, the concatenation of one irrep per
spherical-harmonic degree (here 0e + 1o + 2e + 3o, D = 16). For every output irrep L (e.g. 0e and 1o) and order
ν = 1..ν_max, the equivariant polynomials of degree ν in A_{i,c} that transform as L are spanned by a reduced basis

    U^{ν,L}_{k,M; j_1..j_ν}     k = 1..K_{ν,L} paths, M = 1..2L+1, fully symmetric in (j_1..j_ν),

the change of basis of the ν-fold symmetric tensor power (``e3nn.o3.ReducedTensorProducts`` with the formula
"i", "ij=ji", "ijk=jik=ikj", … and ``filter_ir_out``). The product basis and its element-dependent mixing are

    B^{ν,L}_{i,c,k,M} = Σ_{j_1..j_ν} U^{ν,L}_{k,M; j_1..j_ν} Π_t A_{i,c,j_t}
    m_{i,c,M}^L       = Σ_ν Σ_k w^{ν,L}_{z_i,k,c} · B^{ν,L}_{i,c,k,M}

with learnable weights w per element z_i, path and channel (MACE's parameterisation; channels never mix here).

Evaluation: because U is fully symmetric, the sum over all D^ν index tuples equals a sum over the sorted tuples
(multisets) j_1 ≤ … ≤ j_ν weighted by their number of distinct permutations. Only multisets with a non-zero
coefficient are kept (for D = 16, ν = 3 and outputs 0e + 1o: a few hundred of the 816), so B is a product of
column selections of A (one-hot matrices: fast forward and backward) and one dense matrix product, with the exact result of the full contraction (the tests
compare it to the brute-force einsum over D^ν). The bases are computed once per (irreps, ν, L) in float64.
"""

from __future__ import annotations

import functools
import itertools
import math
import string

import torch
from e3nn import o3
from torch import Tensor, nn

from pxrdbench.errors import ConfigError, InputError

_FORMULA_LETTERS = string.ascii_lowercase[8:]  # "ijkl…": e3nn formula indices


def symmetric_formula(order: int) -> str:
    """e3nn formula of a fully symmetric tensor of ``order`` indices: 'i', 'ij=ji', 'ijk=jik=ikj', …"""
    if not 1 <= order <= len(_FORMULA_LETTERS):
        raise ConfigError(f"correlation order {order} is outside 1..{len(_FORMULA_LETTERS)}")
    base = _FORMULA_LETTERS[:order]
    swaps = [base[:t] + base[t + 1] + base[t] + base[t + 2 :] for t in range(order - 1)]
    return "=".join([base, *swaps])


@functools.lru_cache(maxsize=32)
def reduced_symmetric_basis(irreps_in: str, order: int, irrep_out: str) -> torch.Tensor:
    """U^{ν,L} as float64 [K, 2L+1, D, …, D] (ν copies of D = dim of ``irreps_in``); K = 0 if none exist."""
    ir_out = o3.Irrep(irrep_out)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)  # e3nn builds its bases in the default dtype
    try:
        reduced = o3.ReducedTensorProducts(
            symmetric_formula(order), i=o3.Irreps(irreps_in), filter_ir_out=[ir_out]
        )
        basis = reduced.change_of_basis.detach().to(torch.float64)
    finally:
        torch.set_default_dtype(previous)
    dim_in = o3.Irreps(irreps_in).dim
    return basis.reshape(-1, ir_out.dim, *([dim_in] * order))


def _monomial_table(basis: Tensor) -> tuple[Tensor, Tensor]:
    """(indices Long[P, ν], weights float64 [P, K·(2L+1)]) of the sorted index tuples with a non-zero coefficient.

    weights[p] = (number of distinct permutations of tuple p) × U[:, :, *tuple p], flattened over (k, M).
    """
    n_paths, dim_out = basis.shape[:2]
    order, dim_in = basis.dim() - 2, basis.shape[-1]
    flat = basis.reshape(n_paths * dim_out, *([dim_in] * order))
    rows, coefficients = [], []
    for combo in itertools.combinations_with_replacement(range(dim_in), order):
        column = flat[(slice(None), *combo)]
        if float(column.abs().max()) < 1e-12:
            continue
        counts = [combo.count(j) for j in set(combo)]
        permutations = math.factorial(order) // math.prod(math.factorial(c) for c in counts)
        rows.append(combo)
        coefficients.append(permutations * column)
    if not rows:
        return torch.zeros(0, order, dtype=torch.long), torch.zeros(0, n_paths * dim_out, dtype=torch.float64)
    return torch.tensor(rows, dtype=torch.long), torch.stack(coefficients)


def _channel_irreps(irreps: o3.Irreps, what: str) -> tuple[int, o3.Irreps]:
    """(channels C, one-channel irreps) of ``C x ir_1 + C x ir_2 + …`` (each irrep once, equal multiplicities)."""
    irreps = o3.Irreps(irreps)
    muls = {mul for mul, _ in irreps}
    irs = [ir for _, ir in irreps]
    if len(muls) != 1 or len(set(irs)) != len(irs):
        raise ConfigError(
            f"SymmetricContraction: {what} {irreps} must be C x ir_1 + C x ir_2 + … (distinct irreps)"
        )
    return muls.pop(), o3.Irreps([(1, ir) for ir in irs])


class SymmetricContraction(nn.Module):
    """Element-dependent ACE product basis: x [N, irreps_in.dim] and element Long[N] → [N, irreps_out.dim].

    Args:
        irreps_in: the atomic basis, ``C x 0e + C x 1o + C x 2e + C x 3o`` (e3nn layout, channel-major per irrep).
        irreps_out: the product basis kept, ``C x 0e + C x 1o`` (same C; each irrep once).
        correlation: ν_max (3 in MACE and EACNN's reading).
        num_elements: size of the element index (weights per element; 101 for Z = 0..100).
    """

    def __init__(
        self, irreps_in: str, irreps_out: str, correlation: int = 3, num_elements: int = 101
    ) -> None:
        super().__init__()
        self.irreps_in, self.irreps_out = o3.Irreps(irreps_in), o3.Irreps(irreps_out)
        channels, self.per_channel = _channel_irreps(self.irreps_in, "irreps_in")
        channels_out, per_channel_out = _channel_irreps(self.irreps_out, "irreps_out")
        if channels_out != channels or correlation < 1:
            raise ConfigError(
                f"SymmetricContraction: irreps_out {irreps_out} must have the {channels} channels of irreps_in, "
                f"correlation {correlation} must be ≥ 1"
            )
        self.channels, self.correlation, self.num_elements = channels, int(correlation), int(num_elements)
        self.out_irreps_per_channel = per_channel_out
        self.path_counts: list[int] = []
        self.weights = nn.ParameterList()
        for l_index, (_, ir) in enumerate(per_channel_out):
            n_paths = 0
            for order in range(1, correlation + 1):
                basis = reduced_symmetric_basis(str(self.per_channel), order, str(ir))
                indices, table = _monomial_table(basis)
                selectors = torch.zeros(order, basis.shape[-1], indices.shape[0])  # one-hot [ν, D, P]
                for t in range(order):
                    selectors[t, indices[:, t], torch.arange(indices.shape[0])] = 1.0
                self.register_buffer(f"selectors_{l_index}_{order}", selectors, persistent=False)
                self.register_buffer(
                    f"table_{l_index}_{order}", table.to(torch.get_default_dtype()), persistent=False
                )
                n_paths += basis.shape[0]
            if n_paths == 0:
                raise ConfigError(f"SymmetricContraction: no product of {self.per_channel} up to order "
                                  f"{correlation} transforms as {ir}")  # fmt: skip
            self.path_counts.append(n_paths)
            self.weights.append(nn.Parameter(torch.randn(num_elements, n_paths, channels) / n_paths))

    def _per_channel(self, x: Tensor) -> Tensor:
        """[N, irreps_in.dim] (e3nn layout) → [N, C, D] (the D components of each channel's atomic basis)."""
        blocks = [block.reshape(x.shape[0], self.channels, ir.dim) for block, (_, ir) in
                  zip(x.split([mul * ir.dim for mul, ir in self.irreps_in], dim=-1), self.irreps_in, strict=True)]  # fmt: skip
        return torch.cat(blocks, dim=-1)

    def basis(self, x: Tensor) -> list[Tensor]:
        """The product basis B per output irrep: a list of [N, C, K_L, 2L+1] (all orders, paths concatenated)."""
        if x.dim() != 2 or x.shape[1] != self.irreps_in.dim:
            raise InputError("atomic basis", f"expected [N, {self.irreps_in.dim}], got {tuple(x.shape)}")
        a = self._per_channel(x)  # [N, C, D]
        out = []
        for l_index, (_, ir) in enumerate(self.out_irreps_per_channel):
            parts = []
            for order in range(1, self.correlation + 1):
                selectors = getattr(self, f"selectors_{l_index}_{order}").to(a.dtype)
                table = getattr(self, f"table_{l_index}_{order}")
                if selectors.shape[-1] == 0:
                    continue
                monomials = a @ selectors[0]  # column selection as a product: its gradient is a product too
                for t in range(1, order):
                    monomials = monomials * (a @ selectors[t])
                parts.append((monomials @ table.to(a.dtype)).reshape(*a.shape[:2], -1, ir.dim))
            out.append(torch.cat(parts, dim=2))
        return out

    def forward(self, x: Tensor, element: Tensor) -> Tensor:
        """x [N, irreps_in.dim], element Long[N] (0..num_elements−1) → [N, irreps_out.dim] (e3nn layout)."""
        element = element.long().reshape(-1)
        if element.shape[0] != x.shape[0]:
            raise InputError("element", f"{element.shape[0]} element indices for {x.shape[0]} atoms")
        outputs = []
        for weights, b in zip(self.weights, self.basis(x), strict=True):
            mixed = torch.einsum("nkc,nckm->ncm", weights[element].to(b.dtype), b)
            outputs.append(mixed.reshape(x.shape[0], -1))
        return torch.cat(outputs, dim=-1)

    def extra_repr(self) -> str:
        return (f"{self.irreps_in} -> {self.irreps_out}, correlation={self.correlation}, "
                f"paths={self.path_counts}, elements={self.num_elements}")  # fmt: skip
