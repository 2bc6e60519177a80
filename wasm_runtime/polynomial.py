"""Polynomials with integer coefficients in a few variables, and the exact fit of one through samples on a grid.

dynamic.py fits every number of a plan as such a polynomial in the symbolic dims and stores it in the manifest
(Poly.to_json); executors evaluate the stored form (evaluate).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from fractions import Fraction
from math import prod


@dataclass(frozen=True)
class Poly:
    terms: tuple[tuple[int, tuple[int, ...]], ...]  # (coefficient, exponent per symbol), nonzero coefficients

    @staticmethod
    def const(c: int, n: int) -> Poly:
        return Poly(((int(c), (0,) * n),) if c else ())

    @property
    def constant(self) -> int | None:
        if not self.terms:
            return 0
        if len(self.terms) == 1 and not any(self.terms[0][1]):
            return self.terms[0][0]
        return None

    def __call__(self, values) -> int:
        return sum(c * prod(v**e for v, e in zip(values, exps, strict=True)) for c, exps in self.terms)

    def to_json(self):
        """A plain int when constant, else [[coef, e0, e1, ...], ...] (sum of coef * prod(sym_i ** e_i))."""
        c = self.constant
        return c if c is not None else [[coef, *exps] for coef, exps in self.terms]


def evaluate(formula, values) -> int:
    """A formula as stored in a manifest (see Poly.to_json) at concrete symbol values."""
    if isinstance(formula, int):
        return formula
    return sum(t[0] * prod(v ** e for v, e in zip(values, t[1:], strict=True)) for t in formula)


def fit_columns(points: list[tuple[int, ...]], columns: list[list[int]], degrees: list[int]) -> list[Poly | None]:
    """For each column of samples (one per point of the full grid of points, degrees[i] + 1 values of symbol
    i), the polynomial of degree <= degrees[i] in symbol i through them, or None when its exact coefficients are
    not all integers."""
    monomials = list(itertools.product(*(range(d + 1) for d in degrees)))
    size = len(monomials)
    a = [[Fraction(prod(v**e for v, e in zip(p, m, strict=True))) for m in monomials] for p in points]
    inverse = [[Fraction(int(i == j)) for j in range(size)] for i in range(size)]
    for col in range(size):  # exact Gauss-Jordan inverse of the (small) Vandermonde matrix
        pivot = next(r for r in range(col, size) if a[r][col] != 0)
        a[col], a[pivot] = a[pivot], a[col]
        inverse[col], inverse[pivot] = inverse[pivot], inverse[col]
        f = 1 / a[col][col]
        a[col] = [x * f for x in a[col]]
        inverse[col] = [x * f for x in inverse[col]]
        for r in range(size):
            if r != col and a[r][col] != 0:
                g = a[r][col]
                a[r] = [x - g * y for x, y in zip(a[r], a[col], strict=True)]
                inverse[r] = [x - g * y for x, y in zip(inverse[r], inverse[col], strict=True)]
    out: list[Poly | None] = []
    for samples in columns:
        coefs = [sum(inverse[i][k] * samples[k] for k in range(size)) for i in range(size)]
        if any(c.denominator != 1 for c in coefs):
            out.append(None)
        else:
            out.append(Poly(tuple((int(c), m) for c, m in zip(coefs, monomials, strict=True) if c != 0)))
    return out
