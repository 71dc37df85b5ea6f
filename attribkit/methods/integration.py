"""Integration rules for Integrated Gradients: points in (0, 1] and their weights.

The rules and their names are Captum's (``riemann_right`` ... ``gausslegendre``), so a rule and a
step count mean the same thing in ``fast_ig`` and in Captum's ``IntegratedGradients`` (except trapezoid: Captum weights its points 1/m, which sum
to 1 - 1/m and break completeness; here they are 1/(m-1), ends halved, summing to 1). Unlike
Captum, ``steps=1`` is allowed for the Riemann rules: right with one step is gradient x
(input - baseline), the single-step IG of AD-KD.
"""

from __future__ import annotations

import numpy as np

from attribkit.errors import OptionError

RULES = ("riemann_right", "riemann_left", "riemann_middle", "riemann_trapezoid", "gausslegendre")


def integration_points(rule: str, steps: int) -> tuple[list[float], list[float]]:
    """Alphas and weights of an integration rule over [0, 1].

    Args:
        rule: One of :data:`RULES`.
        steps: Number of points, >= 1 (>= 2 for trapezoid and Gauss-Legendre).

    Returns:
        ``(alphas, weights)``, each of length ``steps``; weights sum to 1.
    """
    if rule not in RULES:
        raise OptionError(f"unknown integration rule {rule!r}; choose one of: {', '.join(RULES)}")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise OptionError(f"steps must be a positive integer; got {steps!r}")
    m = steps
    if rule == "gausslegendre":
        if m < 2:
            raise OptionError("gausslegendre needs steps >= 2; use rule='riemann_right' for single-step IG")
        gl_nodes, gl_weights = np.polynomial.legendre.leggauss(m)
        return [float(a) for a in 0.5 * gl_nodes + 0.5], [float(w) for w in 0.5 * gl_weights]
    if rule == "riemann_trapezoid":
        if m < 2:
            raise OptionError("riemann_trapezoid needs steps >= 2")
        alphas = [k / (m - 1) for k in range(m)]
        weights = [1.0 / (m - 1)] * m  # Captum uses 1/m here, so its weights sum to 1 - 1/m
        weights[0] /= 2
        weights[-1] /= 2
        return alphas, weights
    offset = {"riemann_right": 1.0, "riemann_left": 0.0, "riemann_middle": 0.5}[rule]
    return [(k + offset) / m for k in range(m)], [1.0 / m] * m
