"""Discrete fractional Fourier transform (Candan, Kutay, Ozaktas 2000).

``frft_matrix(n, a)`` is the unitary ``n x n`` matrix ``F^a`` built from the eigenvectors of
the matrix ``S`` that commutes with the DFT, ordered by their number of zero crossings, with
eigenvalues ``exp(-i pi a k / 2)``. ``a = 0`` is the identity, ``a = 1`` the unitary DFT
(``np.fft.fft(x) / sqrt(n)``), and orders add: ``F^a F^b = F^(a+b)``. The matrix costs one
symmetric eigendecomposition per size, cached, then one matrix product per frame.
"""

from __future__ import annotations

import functools

import numpy as np

__all__ = ["frft", "frft_matrix"]


@functools.lru_cache(maxsize=4)
def _eigenvectors(n: int) -> tuple[np.ndarray, np.ndarray]:
    """DFT eigenvectors (columns) and their orders k, from the even/odd split of ``S``."""
    from scipy import sparse

    idx = np.arange(n)
    s = sparse.diags(2 * np.cos(2 * np.pi * idx / n) - 4) + sparse.csr_matrix(
        (np.ones(2 * n), (np.r_[idx, idx], np.r_[(idx + 1) % n, (idx - 1) % n])), shape=(n, n)
    )
    # P maps to even/odd symmetric parts, which decouples the degenerate eigenspaces
    half = n // 2
    r = 1 / np.sqrt(2)
    rows, cols_, vals = [0], [0], [1.0]
    for i in range(1, (n + 1) // 2):
        rows += [i, i, n - i, n - i]
        cols_ += [i, n - i, i, n - i]
        vals += [r, r, r, -r]
    if n % 2 == 0:
        rows.append(half)
        cols_.append(half)
        vals.append(1.0)
    p = sparse.csr_matrix((vals, (rows, cols_)), shape=(n, n))
    even_count = half + 1
    cs = (p @ s @ p.T).toarray()
    ev_e, vec_e = np.linalg.eigh(cs[:even_count, :even_count])
    ev_o, vec_o = np.linalg.eigh(cs[even_count:, even_count:])
    vec_e = vec_e[:, np.argsort(-ev_e)]
    vec_o = vec_o[:, np.argsort(-ev_o)]
    even = p.T @ np.vstack([vec_e, np.zeros((n - even_count, even_count))])
    odd = p.T @ np.vstack([np.zeros((even_count, n - even_count)), vec_o])
    cols, orders = [], []
    for j in range(even_count):
        cols.append(even[:, j])
        orders.append(2 * j)
        if j < n - even_count:
            cols.append(odd[:, j])
            orders.append(2 * j + 1)
    orders_arr = np.array(orders)
    if n % 2 == 0:
        orders_arr[-1] = n  # the last even eigenvector of an even size has order n, not n-1
    return np.stack(cols, axis=1), orders_arr


@functools.lru_cache(maxsize=4)
def frft_matrix(n: int, a: float) -> np.ndarray:
    """The unitary discrete fractional Fourier transform matrix of size ``n`` and order ``a``."""
    vecs, orders = _eigenvectors(int(n))
    angle = -0.5 * np.pi * float(a) * orders
    # two real products instead of one complex one
    mat = ((vecs * np.cos(angle)) @ vecs.T) + 1j * ((vecs * np.sin(angle)) @ vecs.T)
    mat.setflags(write=False)
    return mat


def frft(x: np.ndarray, a: float, *, axis: int = -1) -> np.ndarray:
    """Fractional Fourier transform of order ``a`` of ``x`` along ``axis`` (unitary scaling)."""
    x = np.moveaxis(np.asarray(x), axis, -1)
    out = x @ frft_matrix(x.shape[-1], a).T
    return np.moveaxis(out, -1, axis)
