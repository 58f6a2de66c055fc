#!/usr/bin/env python3
"""Fits the polynomial coefficients of crates/hlo-spirv/src/emit/math.rs.

Each polynomial approximates a smooth remainder term on a reduced interval; the fit is a
least-squares fit on Chebyshev nodes, reweighted towards minimax (Lawson's iteration),
then rounded to f32. Prints the coefficients (lowest degree first) and the largest relative
error of the rounded polynomial, as log2.

    /opt/jaxvenv/bin/python hlo-samples/math/fit_coefficients.py
"""

from math import factorial

import numpy as np


def fit(f, lo, hi, deg, scale=1.0, n=4000):
    k = np.arange(n)
    x = (lo + hi) / 2 + (hi - lo) / 2 * np.cos(np.pi * (k + 0.5) / n)
    y = f(x)
    a = np.vander(x, deg + 1, increasing=True)
    w = np.ones(n)
    for _ in range(60):
        c, *_ = np.linalg.lstsq(a * np.sqrt(w)[:, None], y * np.sqrt(w), rcond=None)
        e = np.abs(a @ c - y)
        w = w * e
        w /= w.sum()
    c32 = c.astype(np.float32)
    err = np.max(np.abs(a @ c32.astype(np.float64) - y)) / scale
    return c32, np.log2(err)


def series(terms):
    return lambda z: sum(t(z) for t in terms)


def main():
    zpi4 = (np.pi / 4) ** 2
    fits = {
        # (e^r - 1 - r) / r^2 on |r| <= ln(2)/2
        "EXP_Q": (lambda r: sum(r ** (k - 2) / factorial(k) for k in range(2, 14)), -0.3466, 0.3466, 4, 0.5),
        # (2 atanh(s) - 2 s) / s^3 in z = s^2 on z <= 0.0295
        "LOG_R": (lambda z: sum(2 * z ** (k - 1) / (2 * k + 1) for k in range(1, 14)), 0, 0.0295, 3, 0.67),
        # (sin r - r) / r^3 in z = r^2 on |r| <= pi/4
        "SIN_S": (lambda z: sum((-1) ** k * z ** (k - 1) / factorial(2 * k + 1) for k in range(1, 12)), 0, zpi4, 2, 1 / 6),
        # (cos r - 1 + r^2/2) / r^4 in z = r^2
        "COS_C": (lambda z: sum((-1) ** k * z ** (k - 2) / factorial(2 * k) for k in range(2, 12)), 0, zpi4, 2, 1 / 24),
        # (tanh x - x) / x^3 in z = x^2 on |x| <= 0.55
        "TANH_T": (lambda z: np.where(z < 1e-8, -1 / 3, (np.tanh(np.sqrt(z)) - np.sqrt(z)) / np.maximum(z, 1e-8) ** 1.5),
                   0, 0.55 ** 2, 4, 1 / 3),
        # (atan t - t) / t^3 in z = t^2 on |t| <= tan(pi/8)
        "ATAN_A": (lambda z: sum((-1) ** k * z ** (k - 1) / (2 * k + 1) for k in range(1, 40)), 0,
                   np.tan(np.pi / 8) ** 2, 4, 1 / 3),
        # cbrt on [1, 8]: a start for Halley's iteration
        "CBRT_START": (np.cbrt, 1, 8, 2, 1.0),
    }
    for name, (f, lo, hi, deg, scale) in fits.items():
        c, err = fit(f, lo, hi, deg, scale)
        print(f"{name} = {[float(v) for v in c]}  # log2 relative error {err:.1f}")


if __name__ == "__main__":
    main()
