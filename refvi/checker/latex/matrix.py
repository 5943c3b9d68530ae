"""Values of matrix notation for the LaTeX evaluator (``evaluate.py``).

A matrix-valued side (``W W^\\top + \\Psi``, ``S W^\\top \\Psi^{-1} (x - \\mu)``)
is a :class:`Mat`: a real array of shape ``(n, Mx, Mz, r, c)`` whose leading
axes broadcast like the evaluator's scalars (the datum, the nodes of a bound
x, the nodes of a bound z) and whose last two are the matrix's; a vector is a
column (c = 1). The arrays of the symbols are the instance's own
(``models.matrix_symbol``); this module only does what the notation says
with them: products, sums, transposes, inverses (by a solve), square roots of
symmetric positive-definite matrices, determinants (``numpy.linalg.slogdet``,
already the signed-log pair the evaluator works in), traces and norms. A
1 x 1 result is a number (``x^\\top A x``) wherever a number is needed.

Dimensions that do not match are an ``EvaluationError`` naming both shapes.
"""

from dataclasses import dataclass

import numpy as np

from refvi.checker.latex import ir
from refvi.gaussian import _log_prob_chol


class ShapeError(ValueError):
    """Matrix dimensions that do not match (raised as an EvaluationError)."""


@dataclass(frozen=True)
class Mat:
    """A matrix (or column vector) per point: ``a`` has shape (..., r, c)."""

    a: np.ndarray

    @property
    def shape(self):
        return self.a.shape[-2:]

    @classmethod
    def of(cls, array):
        """The instance's array as a Mat: (r, c) shared by the data, (r,) a
        column, (n, r, c) or (n, r) per datum."""
        a = np.asarray(array, dtype=np.float64)
        if a.ndim == 1:
            return cls(a[None, None, None, :, None])
        if a.ndim == 2:
            return cls(a[None, None, None])
        raise ValueError(f"a matrix symbol of shape {a.shape}")

    @classmethod
    def per_datum(cls, array):
        """Per-datum rows (n, r) as columns, or matrices (n, r, c)."""
        a = np.asarray(array, dtype=np.float64)
        if a.ndim == 2:
            return cls(a[:, None, None, :, None])
        return cls(a[:, None, None])

    @property
    def is_number(self):
        return self.shape == (1, 1)


@dataclass(frozen=True)
class Eye(Mat):
    """``I`` written without its size: ``a`` (..., 1, 1) times the identity
    of the size its neighbours in a sum or product give."""

    @property
    def shape(self):
        return None

    @property
    def is_number(self):
        return False

    def expand(self, size):
        return Mat(self.a * np.eye(size))


def _shape(m):
    r, c = m.shape
    return f"{r}x{c}"


def add(terms, signs):
    """Sum of Mats with signs; raises ShapeError on dimensions that differ."""
    sized = [t for t in terms if not isinstance(t, Eye)]
    if not sized:
        return Eye(sum(s * t.a for t, s in zip(terms, signs, strict=True)))
    size = sized[0].shape[0]
    terms = [t.expand(size) if isinstance(t, Eye) else t for t in terms]
    shapes = {t.shape for t in terms}
    if len(shapes) > 1:
        raise ShapeError(
            "a sum of matrices of different sizes ("
            + ", ".join(_shape(t) for t in terms)
            + ")"
        )
    out = 0.0
    for t, s in zip(terms, signs, strict=True):
        out = out + s * t.a
    return Mat(np.asarray(out))


def matmul(a, b):
    if isinstance(a, Eye) or isinstance(b, Eye):
        eye, other = (a, b) if isinstance(a, Eye) else (b, a)
        return type(other)(eye.a * other.a)
    if a.shape[1] != b.shape[0]:
        if a.is_number or b.is_number:  # a 1 x 1 value is a number
            return Mat(a.a * b.a) if a.is_number else Mat(a.a * b.a)
        raise ShapeError(f"a product of a {_shape(a)} and a {_shape(b)} matrix")
    return Mat(a.a @ b.a)


def scale(m, number):
    """``number`` (an array over the leading axes) times ``m``."""
    return type(m)(np.asarray(number)[..., None, None] * m.a)


def transpose(m):
    return type(m)(np.swapaxes(m.a, -1, -2))


def _square(m, what):
    if isinstance(m, Eye):
        raise ShapeError(f"{what} of I without its size: write I_k or I_d")
    if m.shape[0] != m.shape[1]:
        raise ShapeError(f"{what} of a {_shape(m)} matrix")


def power(m, r):
    """``m^r``: r = -1 by a solve, +-1/2 for a symmetric positive-definite m
    (its eigenvalues), integers by repeated products; of a column vector,
    entry by entry (``\\sigma^2``: the variances)."""
    if isinstance(m, Eye):
        return Eye(m.a**r)
    if m.shape[1] == 1 and m.shape[0] > 1:  # a vector's power is entrywise
        return Mat(m.a**r)
    _square(m, "a power")
    if r == np.round(r):
        if r < 0:
            eye = np.broadcast_to(np.eye(m.shape[0]), m.a.shape)
            base = Mat(np.linalg.solve(m.a, eye))
        else:
            base = m
        return Mat(np.linalg.matrix_power(base.a, int(abs(r))))
    if abs(r) != 0.5:
        raise ir.Unsupported(f"the matrix power {r:g}")
    sym = 0.5 * (m.a + np.swapaxes(m.a, -1, -2))
    if not np.allclose(sym, m.a, rtol=1e-12, atol=0.0):
        raise ir.Unsupported("a square root of a matrix that is not symmetric")
    lam, U = np.linalg.eigh(sym)
    if np.any(lam <= 0):
        raise ShapeError("a square root of a matrix that is not positive definite")
    return Mat((U * lam[..., None, :] ** r) @ np.swapaxes(U, -1, -2))


def slogdet(m):
    """(log |det m|, sign det m) over the leading axes."""
    _square(m, "a determinant")
    sign, logabs = np.linalg.slogdet(m.a)
    return logabs, sign


def trace(m):
    _square(m, "a trace")
    return np.trace(m.a, axis1=-2, axis2=-1)


def diag(m):
    """The diagonal matrix of a column (or row) vector; the column of the
    diagonal of a square matrix (numpy's ``diag``, batched)."""
    r, c = m.shape
    if c == 1 or r == 1:
        v = m.a[..., :, 0] if c == 1 else m.a[..., 0, :]
        return Mat(v[..., :, None] * np.eye(v.shape[-1]))
    _square(m, "diag")
    return Mat(np.einsum("...jj->...j", m.a)[..., None])


def tril(m):
    """The lower triangle of a matrix, the diagonal kept."""
    return Mat(np.tril(m.a))


def cholesky(m):
    """The lower Cholesky factor of a symmetric positive-definite matrix."""
    _square(m, "a Cholesky factor")
    if not np.allclose(m.a, np.swapaxes(m.a, -1, -2), rtol=1e-12, atol=0.0):
        raise ShapeError("a Cholesky factor of a matrix that is not symmetric")
    try:
        return Mat(np.linalg.cholesky(m.a))
    except np.linalg.LinAlgError:
        raise ShapeError("a Cholesky factor of an indefinite matrix") from None


def norm(m):
    """Euclidean norm of a vector, Frobenius of a matrix."""
    return np.sqrt(np.sum(m.a**2, axis=(-2, -1)))


def entry(m, positions):
    """The entry at 0-based ``positions`` (one for a vector, two for a matrix)."""
    r, c = m.shape
    if len(positions) == 1:
        if c != 1 and r != 1:
            raise ShapeError(f"one index into a {_shape(m)} matrix")
        flat = m.a[..., :, 0] if c == 1 else m.a[..., 0, :]
        return flat[..., positions[0]]
    if len(positions) == 2:
        return m.a[..., positions[0], positions[1]]
    raise ShapeError(f"{len(positions)} indices into a matrix")


def entry_range(m, which):
    """The size of the axis index ``which`` (of how many) ranges over."""
    r, c = m.shape
    if c == 1 or r == 1:
        return max(r, c)
    return m.shape[which]


def log_normal(y, mean, cov):
    """log N(y; mean, cov) of column vectors over the leading axes, by the
    Cholesky factor of ``cov`` and ``refvi.gaussian``'s kernel."""
    _square(cov, "a covariance")
    if y.shape != mean.shape or y.shape[0] != cov.shape[0] or y.shape[1] != 1:
        raise ShapeError(
            f"a normal density of a {_shape(y)} vector with mean {_shape(mean)} "
            f"and covariance {_shape(cov)}"
        )
    try:
        L = np.linalg.cholesky(cov.a)
    except np.linalg.LinAlgError:
        raise ShapeError("a covariance that is not positive definite") from None
    return _log_prob_chol(y.a[..., 0], mean.a[..., 0], L)
