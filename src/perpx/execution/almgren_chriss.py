"""The Almgren-Chriss optimal liquidation schedule, in the paper's notation.

Almgren & Chriss, "Optimal execution of portfolio transactions", J. Risk 3(2), 2000. Sell
``X`` units over ``T`` in ``N`` periods of ``tau = T/N``; ``x_k`` is still held after period
``k`` (``x_0 = X``, ``x_N = 0``) and ``n_k = x_{k-1} - x_k`` is sold in period ``k``.

* temporary impact ``h(v) = epsilon sgn(v) + eta v``, permanent impact ``g(v) = gamma v``;
* ``eta_tilde = eta - gamma tau / 2`` (must be positive);
* ``E[C] = gamma X^2 / 2 + epsilon sum|n_k| + (eta_tilde / tau) sum n_k^2``;
* ``Var[C] = sigma^2 tau sum_{k=1..N} x_k^2``;
* minimising ``E + lambda Var`` gives ``x_j = X sinh(kappa (T - t_j)) / sinh(kappa T)`` with
  ``kappa`` solving ``cosh(kappa tau) = 1 + kappa_tilde^2 tau^2 / 2``,
  ``kappa_tilde^2 = lambda sigma^2 / eta_tilde``. ``lambda = 0`` gives the straight line (TWAP).

This is model arithmetic on floats (the model's parameters are estimates); the schedule becomes
integer lots only in :mod:`perpx.execution.algos.shortfall`, which rounds with the rule stated there.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

LINEAR_KAPPA_T = 1e-4
"""Below this ``kappa T`` the closed forms lose digits to cancellation (their numerators are
``O((kappa T)^3)``); the straight line is then exact to ``(kappa T)^2 = 1e-8`` and is used."""


class ScheduleError(ValueError):
    """Parameters that give no schedule; the message names the parameter."""


@dataclass(frozen=True, slots=True)
class AcParams:
    """The model's inputs; units are the caller's (e.g. shares, seconds, currency per share)."""

    qty: float
    horizon: float
    steps: int
    sigma: float
    eta: float
    gamma: float
    epsilon: float
    risk_aversion: float

    @property
    def tau(self) -> float:
        return self.horizon / self.steps

    @property
    def eta_tilde(self) -> float:
        return self.eta - self.gamma * self.tau / 2


@dataclass(frozen=True, slots=True)
class AcSchedule:
    """The optimal trajectory and its closed-form expected cost and variance."""

    kappa: float
    holdings: tuple[float, ...]
    """``x_0 .. x_N``: ``X`` first, ``0`` last."""
    trades: tuple[float, ...]
    """``n_1 .. n_N``."""
    expected_cost: float
    variance: float


def check_params(p: AcParams) -> None:
    """Raise :class:`ScheduleError` naming the first parameter that makes the model meaningless."""
    checks = [
        ("qty", p.qty > 0 and math.isfinite(p.qty), "must be a positive number"),
        ("horizon", p.horizon > 0 and math.isfinite(p.horizon), "must be a positive number"),
        ("steps", p.steps >= 1, "must be at least 1"),
        ("sigma", p.sigma >= 0 and math.isfinite(p.sigma), "must be zero or positive"),
        ("eta", p.eta > 0 and math.isfinite(p.eta), "must be positive"),
        ("gamma", p.gamma >= 0 and math.isfinite(p.gamma), "must be zero or positive"),
        ("epsilon", p.epsilon >= 0 and math.isfinite(p.epsilon), "must be zero or positive"),
        (
            "risk-aversion",
            p.risk_aversion >= 0 and math.isfinite(p.risk_aversion),
            "must be zero or positive",
        ),
    ]
    for name, ok, message in checks:
        if not ok:
            raise ScheduleError(f"{name} {message}")
    if p.eta_tilde <= 0:
        raise ScheduleError(
            f"eta - gamma*tau/2 = {p.eta_tilde:g} is not positive: raise eta, lower gamma or use more steps"
        )


def solve_kappa(p: AcParams) -> float:
    """``kappa = arccosh(kappa_tilde^2 tau^2 / 2 + 1) / tau``; zero when ``lambda sigma^2`` is zero."""
    kappa_tilde_sq = p.risk_aversion * p.sigma**2 / p.eta_tilde
    return math.acosh(kappa_tilde_sq * p.tau**2 / 2 + 1) / p.tau


def optimal_schedule(p: AcParams) -> AcSchedule:
    """The Almgren-Chriss trajectory for ``p``, with ``E[C]`` and ``Var[C]`` in closed form.

    Raises
    ------
    ScheduleError
        When a parameter is out of range, or ``kappa T`` is so large that ``sinh`` overflows
        (the schedule would sell everything in the first period: lower the risk aversion).
    """
    check_params(p)
    x0, t_end, n, tau = p.qty, p.horizon, p.steps, p.tau
    kappa = solve_kappa(p)
    eta_t = p.eta_tilde
    if kappa * t_end > 700:
        raise ScheduleError("risk-aversion too high: kappa*T overflows; the schedule would be a single block")
    if kappa * t_end < LINEAR_KAPPA_T:
        holdings = tuple(x0 * (n - j) / n for j in range(n + 1))
        expected = p.gamma * x0**2 / 2 + p.epsilon * x0 + eta_t * x0**2 / t_end
        variance = p.sigma**2 * x0**2 * t_end * (1 - 1 / n) * (1 - 1 / (2 * n)) / 3
    else:
        sinh_kt = math.sinh(kappa * t_end)
        holdings = tuple(x0 * math.sinh(kappa * (t_end - j * tau)) / sinh_kt for j in range(n + 1))
        expected = (
            p.gamma * x0**2 / 2
            + p.epsilon * x0
            + eta_t
            * x0**2
            * math.tanh(kappa * tau / 2)
            * (tau * math.sinh(2 * kappa * t_end) + 2 * t_end * math.sinh(kappa * tau))
            / (2 * tau**2 * sinh_kt**2)
        )
        variance = (
            p.sigma**2
            * x0**2
            / 2
            * (tau * sinh_kt * math.cosh(kappa * (t_end - tau)) - t_end * math.sinh(kappa * tau))
            / (sinh_kt**2 * math.sinh(kappa * tau))
        )
    holdings = (x0, *holdings[1:-1], 0.0)
    trades = tuple(holdings[k - 1] - holdings[k] for k in range(1, n + 1))
    return AcSchedule(kappa, holdings, trades, expected, variance)


def cost_of_trades(p: AcParams, trades: tuple[float, ...]) -> tuple[float, float]:
    """``(E[C], Var[C])`` of any trade list by the direct sums, to check a schedule against."""
    holdings = [p.qty]
    for n in trades:
        holdings.append(holdings[-1] - n)
    expected = (
        p.gamma * p.qty**2 / 2
        + p.epsilon * sum(abs(n) for n in trades)
        + p.eta_tilde / p.tau * sum(n * n for n in trades)
    )
    variance = p.sigma**2 * p.tau * sum(x * x for x in holdings[1:])
    return expected, variance
