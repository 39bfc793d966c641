"""Shared sympy helpers of ``bilevel.analysis``: exact conversion, validation, lambdify.

Numeric input (numpy arrays, Python floats) is converted to *exact* rationals, so that every
identity the analysis package proves about a numeric instance is proven in exact arithmetic,
not up to rounding. Callables for the ``"numpy"`` and ``"torch"`` backends are produced by
``sympy.lambdify`` of a list of scalar entries (the route that keeps torch autograd working,
see ``VERIFICATION.md`` section 1).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import sympy as sp

Backend = str | None
BACKENDS = (None, "numpy", "torch")


def to_exact(value: Any) -> sp.Expr:
    """Return ``value`` as an exact sympy number or expression (floats become exact rationals)."""
    if isinstance(value, sp.Basic):
        return value
    if isinstance(value, bool):
        raise TypeError("booleans are not matrix entries")
    if isinstance(value, (int, np.integer)):
        return sp.Integer(int(value))
    if isinstance(value, (float, np.floating)):
        if not np.isfinite(value):
            raise ValueError(f"entry {value!r} is not finite")
        return sp.Rational(float(value))  # the exact binary value of the float
    return sp.sympify(value)


def as_matrix(value: Any, name: str, shape: tuple[int, int] | None = None) -> sp.Matrix:
    """Convert ``value`` (sympy Matrix, numpy array, nested list) to an exact sympy ``Matrix``.

    One-dimensional input becomes a column. ``shape`` is checked when given; the error names
    ``name``, the expected and the received shape.
    """
    if isinstance(value, sp.MatrixBase):
        mat = sp.Matrix(value)
    else:
        arr = np.asarray(value, dtype=object)
        if arr.ndim == 0:
            raise ValueError(f"{name} must be a vector or a matrix, got a scalar")
        if arr.ndim == 1:
            arr = arr.reshape(-1, 1)
        if arr.ndim != 2:
            raise ValueError(f"{name} must have at most 2 dimensions, got {arr.ndim}")
        mat = sp.Matrix(arr.shape[0], arr.shape[1], [to_exact(v) for v in arr.ravel()])
    if shape is not None and mat.shape != shape:
        raise ValueError(f"{name} has shape {mat.shape}, expected {shape}")
    return mat


def is_numeric(mat: sp.MatrixBase) -> bool:
    """True when ``mat`` has no free symbols."""
    return not mat.free_symbols


def to_float_array(mat: sp.MatrixBase) -> np.ndarray:
    """Round an exact numeric matrix to float64."""
    return np.array(mat.evalf(30).tolist(), dtype=np.float64)


def check_symmetric(mat: sp.Matrix, name: str) -> None:
    """Raise ``ValueError`` unless ``mat`` is square and exactly symmetric."""
    if mat.shape[0] != mat.shape[1]:
        raise ValueError(f"{name} must be square, got shape {mat.shape}")
    diff = (mat - mat.T).applyfunc(sp.simplify)
    if any(entry != 0 for entry in diff):
        i, j = next((i, j) for i in range(mat.rows) for j in range(mat.cols) if diff[i, j] != 0)
        raise ValueError(
            f"{name} must be symmetric: entry ({i},{j}) = {mat[i, j]} but ({j},{i}) = {mat[j, i]}"
        )


def check_positive_definite(mat: sp.Matrix, name: str) -> None:
    """Raise ``ValueError`` when ``mat`` is (provably) not positive definite.

    Numeric matrices: float64 eigenvalues decide when the smallest lies farther from 0 than
    their error bound (a symmetric eigensolver is backward stable: |lambda_computed - lambda| <=
    c d u ||A||_2, taken here with c = 10); in between, sympy decides exactly (Gaussian
    elimination over the rationals, whose cost grows fast with the size). Symbolic matrices are
    rejected only when sympy can prove they are not positive definite, otherwise positive
    definiteness is an assumption of the instance.
    """
    if is_numeric(mat):
        floats = to_float_array(mat)
        eigs = np.linalg.eigvalsh(floats)
        margin = 10 * floats.shape[0] * np.finfo(np.float64).eps * max(abs(eigs).max(), 1e-300)
        if eigs.min() > margin:
            return
        if eigs.min() < -margin or not mat.is_positive_definite:
            raise ValueError(
                f"{name} must be positive definite; its smallest eigenvalue is {eigs.min():.6g}"
            )
        return
    if mat.is_positive_definite is False:
        raise ValueError(f"{name} must be positive definite; sympy proves it is not: {mat}")


def check_nonnegative_int(value: Any, name: str) -> int:
    """Return ``value`` as an int, or raise ``ValueError`` naming ``name`` (bools rejected)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    if value < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {value}")
    return int(value)


def check_positive_scalar(value: Any, name: str) -> sp.Expr:
    """Return ``value`` as an exact sympy scalar, or raise when it is provably <= 0 or not finite."""
    expr = to_exact(value)
    if expr.is_positive is False or expr.is_finite is False:
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    return expr


def symbol_vector(prefix: str, n: int) -> sp.Matrix:
    """Column vector of real symbols ``prefix0 .. prefix{n-1}``."""
    return sp.Matrix(sp.symbols(f"{prefix}0:{n}", real=True)) if n else sp.zeros(0, 1)


def check_backend(backend: Backend) -> None:
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")


def lambdify_vector(
    expr: sp.MatrixBase, inputs: Sequence[sp.Matrix], backend: str
) -> Callable[..., Any]:
    """Lambdify a column ``expr`` of the input vectors; the callable returns a 1-D array/tensor.

    ``inputs`` are symbol vectors; the callable takes one array (or tensor) per input vector.
    The torch version stacks scalar entries, so gradients flow through it.
    """
    flat_symbols = [list(vec) for vec in inputs]
    entries = list(expr)
    fn = sp.lambdify(flat_symbols, entries, modules="numpy" if backend == "numpy" else "torch")
    n_inputs = len(inputs)

    if backend == "numpy":

        def numpy_callable(*args: Any) -> np.ndarray:
            _check_call_arity(args, n_inputs)
            values = fn(*[np.asarray(a, dtype=np.float64).reshape(-1) for a in args])
            return np.asarray([float(v) for v in values], dtype=np.float64)

        return numpy_callable

    import torch  # only when the torch backend is asked for; analysis does not need torch

    def torch_callable(*args: Any) -> Any:
        _check_call_arity(args, n_inputs)
        tensors = [torch.as_tensor(a, dtype=torch.float64).reshape(-1) for a in args]
        like = tensors[0] if tensors else torch.zeros((), dtype=torch.float64)
        values = fn(*tensors)
        return torch.stack(
            [v if isinstance(v, torch.Tensor) else like.new_tensor(float(v)) for v in values]
        )

    return torch_callable


def lambdify_scalar(expr: sp.Expr, inputs: Sequence[sp.Matrix], backend: str) -> Callable:
    """Lambdify a scalar expression; the callable returns a float (numpy) or 0-d tensor (torch)."""
    vector_fn = lambdify_vector(sp.Matrix([expr]), inputs, backend)

    def scalar_callable(*args: Any) -> Any:
        return vector_fn(*args)[0]

    return scalar_callable


def _check_call_arity(args: tuple, expected: int) -> None:
    if len(args) != expected:
        raise TypeError(f"this callable takes {expected} vector argument(s), got {len(args)}")


def norm2(vec: sp.MatrixBase) -> sp.Expr:
    """Euclidean norm of a column vector, as a sympy expression."""
    return sp.sqrt(sum((entry**2 for entry in vec), sp.Integer(0)))
