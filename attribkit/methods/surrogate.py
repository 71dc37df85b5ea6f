"""The linear surrogate Kernel SHAP and LIME fit: weighted least squares (or ridge), solved exactly.

Captum's defaults for these surrogates call scikit-learn; this closed-form solve needs nothing
beyond torch, gives the same coefficients, and is deterministic.
"""

from __future__ import annotations

from typing import Any

import torch
from captum._utils.models.model import Model
from torch import Tensor


class WeightedLinearModel(Model):
    """``y ~ x @ w + b`` minimising ``sum_i s_i (y_i - x_i w - b)^2 + ridge * |w|^2`` (the intercept unpenalised).

    Args:
        ridge: L2 penalty on the coefficients (0: weighted least squares).
    """

    def __init__(self, ridge: float = 0.0) -> None:
        self.ridge = float(ridge)
        self.coefficients: Tensor | None = None
        self.intercept: Tensor | None = None

    def fit(self, train_data: Any, **kwargs: object) -> dict[str, float]:
        """Fit on Captum's one-batch loader of ``(x [N, M], y [N], similarity [N])``."""
        xs, ys, ws = [], [], []
        for x, y, *rest in train_data:
            xs.append(x)
            ys.append(y)
            ws.append(rest[0] if rest else torch.ones(len(x)))
        x = torch.cat(xs).double()
        y = torch.cat(ys).double().reshape(len(x), -1)
        w = torch.cat(ws).double().reshape(-1)
        design = torch.cat([x, torch.ones(len(x), 1, dtype=x.dtype, device=x.device)], dim=1)
        gram = design.T @ (design * w[:, None])
        if self.ridge:
            penalty = torch.full((design.shape[1],), self.ridge, dtype=x.dtype, device=x.device)
            penalty[-1] = 0.0
            gram = gram + torch.diag(penalty)
        rhs = design.T @ (y * w[:, None])
        # the pseudo-inverse: few samples leave the system singular (features always drawn together); its
        # minimum-norm fit is stable where a least-squares driver would amplify rounding differences
        solution = torch.linalg.pinv(gram, hermitian=True) @ rhs
        self.coefficients = solution[:-1].T.float()  # [outputs, M], as Captum's linear models report
        self.intercept = solution[-1].float()
        return {}

    def representation(self) -> Tensor:
        """``[outputs, M]`` the fitted coefficients (Captum reads these as the attributions)."""
        if self.coefficients is None:
            raise RuntimeError("fit the surrogate first")
        return self.coefficients

    def __call__(self, x: Tensor) -> Tensor:
        """Predictions of the fitted surrogate, ``[N, outputs]``."""
        if self.coefficients is None or self.intercept is None:
            raise RuntimeError("fit the surrogate first")
        return x.float() @ self.coefficients.T + self.intercept
