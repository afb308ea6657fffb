"""Regularized linear models (ridge / L2 logistic) with their preprocessing stored as JSON.

Built so that a trial cannot end far worse than predicting the mean (issue 17: on solubility data the old
ridge, alpha down to 1e-2 on ~3,000 standardized fingerprint/descriptor columns, had CV MAE 1.0-1.2 where the
mean scores ~0.5; the cause is near-interpolation when the penalty is tiny next to the number of molecules):

1. **Scaling**: signed log (count fingerprints, heavy-tailed descriptors), median imputation, standardization,
   and z-scores clipped to +-``CLIP`` (3): a bit set in 1 of 1,000 molecules would otherwise have z ~ 30 and
   give that one molecule a lever on the fit and on every new molecule that shares the bit.
2. **Penalty relative to the data size**: the tuned ``alpha`` multiplies the number of training molecules
   (``lambda = alpha * n`` on the summed squared error), so one range means the same on 200 and on 10,000
   molecules; searched over [1e-3, 1e2] (on TDC caco2, AqSolDB and half-life the best values were 0.1-1).
3. **Shrinkage toward the mean, chosen by leave-one-out** (regression): after the ridge fit, its coefficients are
   multiplied by ``s`` in [0, 1] that minimises the exact leave-one-out squared error of
   ``mean + s * (ridge - mean)`` (closed form from the hat-matrix diagonal; the leave-one-out mean is the
   constant predictor). ``s = 0`` is the mean predictor itself, so the leave-one-out error is never above the
   constant predictor's, and with noise-only features the fit collapses to the mean.
"""
from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np

from uniqsar.models.base import Learner
from uniqsar.registry import register_learner

CLIP = 3.0  # |z| cap of standardized features (runs saved before it used 10; their files say so)
LEGACY_CLIP = 10.0


def _signed_log(X: np.ndarray) -> np.ndarray:
    return np.sign(X) * np.log1p(np.abs(X))


def _ridge_loo(Z: np.ndarray, y: np.ndarray, lam: float) -> tuple[np.ndarray, float, float]:
    """Ridge with an unpenalized intercept on ``Z`` (n, p): ``(coef, intercept, s)`` with the coefficients already
    multiplied by the leave-one-out-optimal shrinkage ``s`` in [0, 1] toward the mean."""
    from scipy.linalg import cho_factor, cho_solve, solve_triangular

    n, p = Z.shape
    z_mean, y_mean = Z.mean(axis=0), float(y.mean())
    Zc, yc = Z - z_mean, y - y_mean
    lam = max(lam, 1e-8)
    if p <= n:  # primal: (Zc'Zc + lam I) w = Zc'y ; h_i = z_i' A^-1 z_i
        A = Zc.T @ Zc
        A[np.diag_indices(p)] += lam
        c = cho_factor(A, lower=True, check_finite=False)
        coef = cho_solve(c, Zc.T @ yc, check_finite=False)
        W = solve_triangular(c[0], Zc.T, lower=True, check_finite=False)  # (p, n)
        h = np.einsum("ij,ij->j", W, W)
    else:  # dual: a = (K + lam I)^-1 y, w = Zc'a ; diag(K (K + lam I)^-1) = 1 - lam diag((K + lam I)^-1)
        K = Zc @ Zc.T
        K[np.diag_indices(n)] += lam
        c = cho_factor(K, lower=True, check_finite=False)
        coef = Zc.T @ cho_solve(c, yc, check_finite=False)
        Linv = solve_triangular(c[0], np.eye(n), lower=True, check_finite=False)  # (n, n)
        h = 1.0 - lam * np.einsum("ij,ij->j", Linv, Linv)
    h = np.clip(h + 1.0 / n, 0.0, 1.0 - 1e-9)  # + the intercept's share of the hat matrix
    resid = yc - Zc @ coef
    loo = y - resid / (1.0 - h)  # exact leave-one-out predictions of the ridge
    mean_loo = (n * y_mean - y) / max(n - 1, 1)  # leave-one-out predictions of the constant predictor
    d = loo - mean_loo
    dd = float(d @ d)
    s = float(np.clip((y - mean_loo) @ d / dd, 0.0, 1.0)) if dd > 0 else 0.0
    coef = s * coef
    return coef, y_mean - float(z_mean @ coef), s


@register_learner
class Linear(Learner):
    """Ridge regression or L2 logistic regression on signed-log, standardized, clipped features (median-imputed).
    Cheap, stable, and a different bias from the trees for the stacker. See the module docstring for why no
    trial can end far worse than the mean."""

    key = "linear"
    defaults = {"alpha": 0.3}  # penalty per training molecule

    @staticmethod
    def search_space(trial, task):
        return {"alpha": trial.suggest_float("alpha", 1e-3, 1e2, log=True)}

    def _prep_fit(self, X):
        X = _signed_log(np.asarray(X, np.float64))
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns -> median 0
            self.median_ = np.nan_to_num(np.nanmedian(X, axis=0)) if len(X) else np.zeros(X.shape[1])
        X = np.where(np.isnan(X), self.median_, X)
        self.mean_ = X.mean(axis=0)
        std = X.std(axis=0)
        self.scale_ = np.where(std > 1e-12, std, 1.0)
        self.clip_ = CLIP
        return self._prep(X, logged=True)

    def _prep(self, X, logged: bool = False):
        if not logged:
            X = _signed_log(np.asarray(X, np.float64))
            X = np.where(np.isnan(X), self.median_, X)
        return np.clip((X - self.mean_) / self.scale_, -self.clip_, self.clip_)

    def fit(self, X, y, X_valid=None, y_valid=None):
        from threadpoolctl import threadpool_limits

        with threadpool_limits(max(1, self.n_threads)):  # BLAS threads beyond the job's share only oversubscribe
            return self._fit(X, y)

    def _fit(self, X, y):
        Z = self._prep_fit(X)
        alpha = float(self._param("alpha")) * len(Z)
        y = np.asarray(y, float)
        if self.task == "regression":
            self.coef_, self.intercept_, self.shrink_ = _ridge_loo(Z, y, alpha)
        elif self.task == "multiclass":
            self._fit_multinomial(Z, y, alpha)
        else:
            from sklearn.linear_model import LogisticRegression

            m = LogisticRegression(C=1.0 / alpha, max_iter=2000, random_state=self.seed).fit(Z, y)
            self.coef_, self.intercept_, self.shrink_ = m.coef_.ravel(), float(m.intercept_[0]), 1.0
        return self

    def _fit_multinomial(self, Z, y, alpha):
        """Multinomial (softmax) L2 logistic regression; classes absent from the training part keep a -inf
        intercept (probability 0); with a single class present, that class has probability 1."""
        from sklearn.linear_model import LogisticRegression

        k = self._classes(y)
        present = np.unique(y).astype(int)
        self.coef_ = np.zeros((k, Z.shape[1]))
        self.intercept_ = np.full(k, -np.inf)
        self.shrink_ = 1.0
        if len(present) == 1:
            self.intercept_[present[0]] = 0.0
            return
        m = LogisticRegression(C=1.0 / alpha, max_iter=2000, random_state=self.seed).fit(Z, y.astype(int))
        coef, icpt = m.coef_, m.intercept_
        if len(present) == 2:  # sklearn fits one logit for two classes: as a softmax pair
            coef, icpt = np.vstack([-coef / 2, coef / 2]), np.array([-icpt[0] / 2, icpt[0] / 2])
        self.coef_[present], self.intercept_[present] = coef, icpt

    def predict(self, X):
        if self.task == "multiclass":
            z = self._prep(X) @ self.coef_.T + self.intercept_  # (n, K)
            z = np.exp(z - z.max(axis=1, keepdims=True))
            return z / z.sum(axis=1, keepdims=True)
        z = self._prep(X) @ self.coef_ + self.intercept_
        return 1.0 / (1.0 + np.exp(-z)) if self.task == "binary" else z

    def _save_state(self, path: Path):
        state = {k: np.asarray(getattr(self, k)).tolist() for k in ("median_", "mean_", "scale_", "coef_")}
        intercept = (np.where(np.isfinite(self.intercept_), self.intercept_, -1e300).tolist()  # JSON has no -inf
                     if self.task == "multiclass" else self.intercept_)
        state.update(intercept_=intercept, clip_=self.clip_, shrink_=self.shrink_)
        (path / "linear.json").write_text(json.dumps(state))

    def _load_state(self, path: Path):
        state = json.loads((path / "linear.json").read_text())
        for k in ("median_", "mean_", "scale_", "coef_"):
            setattr(self, k, np.asarray(state[k], float))
        self.intercept_ = np.asarray(state["intercept_"], float) if self.task == "multiclass" \
            else float(state["intercept_"])
        self.clip_ = float(state.get("clip_", LEGACY_CLIP))
        self.shrink_ = float(state.get("shrink_", 1.0))
