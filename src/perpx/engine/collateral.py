"""Multi-Assets Mode: collateral assets in the cross margin balance (Binance ``multiAssetsMargin``).

An account in the mode counts every collateral asset it holds (an ``[assets.X]`` with an index,
other than the settlement asset) in its cross margin balance at ``index x (1 - haircut)``, tiered
by the size held (:func:`formulas.collateral_value_atoms`). Its settlement balance may then go
below zero through realised losses, fees and funding (the fill guard allows it while the margin
balance, collateral included, stays at or above zero): a debt against the collateral. When a
liquidation closes the account's positions and leaves the debt, or the collateral's value falls
below a debt with no position left, the venue sells collateral to the insurance fund at the
index less the asset's ``conversion_discount_bps`` (:meth:`MultiAssets.convert`).

Cost
----
``Account.collateral_atoms`` holds each account's figure, so every margin formula adds one
number. It is recomputed only for the account whose collateral balance moved
(:meth:`MultiAssets.revalue`) and, when an asset's index moves, only for the accounts in the
mode holding that asset (``holders``): never a scan of all accounts.

Stale prices
------------
An asset is valued at its last fresh index (``prices``, state): a stale or below-quorum index
never moves a collateral value, so no liquidation is driven by a stale collateral price, and no
conversion happens at one. For new risk (orders, withdrawals) collateral whose index is stale
now counts at zero (:meth:`MultiAssets.stale_shortfall_atoms`); the refusal says so
(``COLLATERAL_STALE_FOR_RISK``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from perpx.engine import formulas
from perpx.engine.accounts import Account
from perpx.engine.codes import RejectCode
from perpx.engine.commands import MarginMode, SetMultiAssetsMode
from perpx.engine.events import CollateralConverted, ConversionStep, MultiAssetsModeChanged
from perpx.engine.liquidation.insurance import INSURANCE_ACCOUNT, fund_equity, move_cash
from perpx.engine.pricing.index import IndexPolicy, compute_index
from perpx.engine.values import AccountId, AssetId

if TYPE_CHECKING:
    from perpx.engine.core import Core


def asset_index_atoms(core: Core, asset: AssetId) -> int | None:
    """An asset's price now (settlement atoms per whole unit), ``None`` if stale, unpriced or unknown.

    The settlement asset is worth one unit of itself. Other assets use their ``[assets.X.index]``
    policy, staleness and quorum over the quotes in ``core.asset_quotes``.
    """
    spec = core.config.assets.get(asset)
    if spec is None:
        return None
    if asset == core.asset:
        return int(10**spec.decimals)
    index = spec.index
    if index is None:
        return None
    return compute_index(
        IndexPolicy(index.policy),
        index.weights,
        core.asset_quotes.get(asset, {}),
        core.now_ns,
        index.stale_after_ns,
        index.min_sources,
        index.outlier_e8,
    ).price_ticks


class MultiAssets:
    """Which accounts are in Multi-Assets Mode, the prices their collateral is valued at, who holds what."""

    def __init__(self, core: Core) -> None:
        self.core = core
        self.assets: tuple[AssetId, ...] = tuple(
            sorted(a for a, spec in core.config.assets.items() if a != core.asset and spec.index is not None)
        )
        """The collateral assets: every listed asset with an index but the settlement asset."""
        self.enabled: dict[AccountId, None] = {}
        """Accounts in the mode (state)."""
        self.prices: dict[AssetId, int] = {}
        """The last fresh index of each collateral asset, at which collateral is valued (state)."""
        self.holders: dict[AssetId, dict[AccountId, None]] = {a: {} for a in self.assets}
        """Accounts in the mode holding some of each asset (derived: an index move revalues these)."""

    def handlers(self) -> dict[type, Callable[[Any], None]]:
        """The engine commands this part handles."""
        return {SetMultiAssetsMode: self._set_mode}

    # ------------------------------------------------------------------ queries

    def is_enabled(self, account_id: AccountId) -> bool:
        return account_id in self.enabled

    def holds_collateral(self, account: Account) -> bool:
        """In the mode and holding some collateral asset (its settlement debt is backed, not a deficit)."""
        if account.account_id not in self.enabled:
            return False
        return any(account.balances.get(asset, 0) > 0 for asset in self.assets)

    def asset_value_atoms(self, asset: AssetId, amount_atoms: int, price_atoms: int | None) -> int:
        """What ``amount_atoms`` of ``asset`` counts for at ``price_atoms`` (``None``: nothing)."""
        if price_atoms is None:
            return 0
        spec = self.core.config.assets[asset]
        return formulas.collateral_value_atoms(amount_atoms, price_atoms, spec.decimals, spec.haircut_tiers)

    def value_atoms(
        self, account: Account, fresh_only: bool, less: AssetId | None = None, less_atoms: int = 0
    ) -> int:
        """The account's collateral value at the valuation prices (0 outside the mode).

        ``fresh_only`` counts an asset whose index is stale now at zero (for new risk); ``less``
        and ``less_atoms`` value the holding as if ``less_atoms`` of ``less`` had left.
        """
        if account.account_id not in self.enabled:
            return 0
        total = 0
        for asset in self.assets:
            held = account.balances.get(asset, 0)
            if asset == less:
                held -= less_atoms
            if held <= 0:
                continue
            if fresh_only and asset_index_atoms(self.core, asset) is None:
                continue
            total += self.asset_value_atoms(asset, held, self.prices.get(asset))
        return total

    def stale_shortfall_atoms(self, account: Account) -> int:
        """How much of ``account.collateral_atoms`` rests on an index that is stale now (counts 0 for new risk)."""
        if account.collateral_atoms == 0:
            return 0
        return account.collateral_atoms - self.value_atoms(account, fresh_only=True)

    def stale_held(self, account: Account) -> list[AssetId]:
        """The collateral assets the account holds whose index is stale now."""
        return [
            asset
            for asset in self.assets
            if account.balances.get(asset, 0) > 0 and asset_index_atoms(self.core, asset) is None
        ]

    def removal_refusal(
        self, account: Account, asset: AssetId, amount_atoms: int
    ) -> tuple[RejectCode, str] | None:
        """Why ``amount_atoms`` of a collateral asset may not leave ``account`` (a withdrawal, a loan's
        collateral), or ``None``.

        In the mode the account must stay at or above its initial margin with the collateral valued
        as after the removal, and with collateral on a stale index counted at zero (refused with
        ``COLLATERAL_STALE_FOR_RISK`` when only that stands in the way). Outside the mode, or for a
        non-collateral asset, nothing here refuses (the balance check does).
        """
        if account.account_id not in self.enabled or asset not in self.holders:
            return None
        risk = self.core.risk(account.account_id)
        used = risk.free_atoms - risk.collateral_atoms  # the free margin without any collateral
        after_fresh = self.value_atoms(account, fresh_only=True, less=asset, less_atoms=amount_atoms)
        if used + after_fresh >= 0:
            return None
        after_all = self.value_atoms(account, fresh_only=False, less=asset, less_atoms=amount_atoms)
        if used + after_all >= 0:
            return (
                RejectCode.COLLATERAL_STALE_FOR_RISK,
                f"the {', '.join(self.stale_held(account))} index is stale, so that collateral counts at zero"
                " for new risk; try again when the index is fresh",
            )
        return (
            RejectCode.BALANCE_INSUFFICIENT,
            f"taking that {asset} out would leave the account below its initial margin: its collateral"
            f" would count for {self.core.money(after_all)} against {self.core.money(max(0, -used))}"
            " of margin in use and settlement debt",
        )

    def max_removal_atoms(self, account: Account, asset: AssetId) -> int:
        """The most of ``asset`` that could leave ``account`` now (its ``maxWithdrawAmount``).

        Outside the mode, or for a non-collateral asset, the balance; in it, the largest amount
        :meth:`removal_refusal` would let go (found by bisection: the free margin falls as the
        amount grows).
        """
        held = max(0, account.balances.get(asset, 0))
        if account.account_id not in self.enabled or asset not in self.holders or held == 0:
            return held
        risk = self.core.risk(account.account_id)
        used = risk.free_atoms - risk.collateral_atoms
        low, high = 0, held
        if used + self.value_atoms(account, fresh_only=True, less=asset, less_atoms=held) >= 0:
            return held
        while low < high:
            middle = (low + high + 1) // 2
            if used + self.value_atoms(account, fresh_only=True, less=asset, less_atoms=middle) >= 0:
                low = middle
            else:
                high = middle - 1
        return low

    # ------------------------------------------------------------------ keeping the figures

    def revalue(self, account: Account, notify: bool = True) -> None:
        """Recompute ``account.collateral_atoms`` and its ``holders`` entries; a change is a margin
        change (``notify``: the liquidation stage rechecks the account; not when restoring)."""
        account_id = account.account_id
        enabled = account_id in self.enabled
        total = 0
        for asset in self.assets:
            held = account.balances.get(asset, 0)
            holders = self.holders[asset]
            if enabled and held > 0:
                holders[account_id] = None
                total += self.asset_value_atoms(asset, held, self.prices.get(asset))
            else:
                holders.pop(account_id, None)
        if total != account.collateral_atoms:
            account.collateral_atoms = total
            if notify:
                self.core.margin_changed(account_id)

    def asset_moved(self, account_id: AccountId, asset: AssetId) -> None:
        """``account_id``'s balance of ``asset`` changed (a deposit, withdrawal, loan or conversion)."""
        if asset in self.holders and account_id in self.enabled:
            self.revalue(self.core.accounts[account_id])

    def index_moved(self, asset: AssetId) -> None:
        """An asset's index may have moved (a quote): revalue the accounts in the mode that hold it.

        A stale index changes nothing (the last fresh price stays). Prices are only kept while some
        account is in the mode (a venue that never uses it keeps its old state hashes).
        """
        if asset not in self.holders or not self.enabled:
            return
        index = asset_index_atoms(self.core, asset)
        if index is None or index == self.prices.get(asset):
            return
        self.prices[asset] = index
        accounts = self.core.accounts
        for account_id in list(self.holders[asset]):
            self.revalue(accounts[account_id])

    # ------------------------------------------------------------------ the command

    def _set_mode(self, cmd: SetMultiAssetsMode) -> None:
        core = self.core
        account = core.accounts.get(cmd.account_id)
        refusal: tuple[RejectCode, str] | None = None
        if account is None:
            refusal = RejectCode.UNKNOWN_ACCOUNT, f"account {cmd.account_id} does not exist"
        elif (cmd.account_id in self.enabled) == cmd.enabled:
            refusal = (
                RejectCode.MULTI_ASSETS_UNCHANGED,
                "Adjusted asset mode is currently set and does not need to be adjusted.",
            )
        elif cmd.account_id == INSURANCE_ACCOUNT:
            refusal = RejectCode.UNKNOWN_ACCOUNT, "the insurance fund's account has no asset mode"
        else:
            for market in sorted(account.positions):
                position = account.positions[market]
                if position.open_orders:
                    refusal = (
                        RejectCode.MULTI_ASSETS_OPEN_ORDERS,
                        f"Unable to adjust Multi-Assets Mode with open orders ({market}); cancel them first.",
                    )
                elif position.qty_lots or position.isolated_margin_atoms:
                    refusal = (
                        RejectCode.MULTI_ASSETS_OPEN_ORDERS,
                        f"Unable to adjust Multi-Assets Mode with an open position ({market}); close it first.",
                    )
                elif cmd.enabled and position.margin_mode is MarginMode.ISOLATED:
                    refusal = (
                        RejectCode.MULTI_ASSETS_ISOLATED,
                        f"Unable to adjust to Multi-Assets mode with symbols under isolated-margin mode"
                        f" ({market}); set it to cross first.",
                    )
                if refusal is not None:
                    break
            if refusal is None and not cmd.enabled and account.balance(core.asset) < 0:
                refusal = (
                    RejectCode.MULTI_ASSETS_NEGATIVE_BALANCE,
                    f"Unable to adjust Multi-Assets Mode with a negative {core.asset} wallet balance"
                    f" ({core.money(account.balance(core.asset))}); deposit to bring it to zero first.",
                )
        if refusal is not None:
            core.reject_command(cmd, cmd.account_id, *refusal)
            return
        assert account is not None
        if cmd.enabled:
            self.enabled[cmd.account_id] = None
            for asset in self.assets:  # take up fresh prices kept while no account was in the mode
                self.index_moved(asset)
        else:
            del self.enabled[cmd.account_id]
        self.revalue(account)
        core.margin_changed(cmd.account_id)
        core.emit(
            MultiAssetsModeChanged(
                ts_ns=core.now_ns,
                account_id=cmd.account_id,
                enabled=cmd.enabled,
                collateral_atoms=account.collateral_atoms,
            )
        )

    # ------------------------------------------------------------------ liquidation

    def convert(self, account: Account) -> list[ConversionStep]:
        """Sell collateral to the insurance fund until the settlement debt is paid (assets in name order).

        Each asset sells at ``index x (1 - conversion discount)`` (rounded down), the fewest atoms
        that cover the debt (rounded up), at most what the account holds and what the fund's
        equity can pay for; never at a stale index (that asset waits). Emits
        :class:`CollateralConverted` per sale and returns the steps for the liquidation record.
        """
        core = self.core
        steps: list[ConversionStep] = []
        fund = core.accounts[INSURANCE_ACCOUNT]
        for asset in self.assets:
            debt = -account.balance(core.asset)
            if debt <= 0:
                break
            held = account.balances.get(asset, 0)
            index = asset_index_atoms(core, asset) if held > 0 else None
            if index is None:
                continue
            spec = core.config.assets[asset]
            price = formulas.conversion_price_atoms(index, spec.conversion_discount_e8)
            if price <= 0:
                continue
            sold = min(held, formulas.conversion_needed_atoms(debt, price, spec.decimals))
            room = max(0, fund_equity(core))
            if formulas.conversion_proceeds_atoms(sold, price, spec.decimals) > room:
                sold = room * int(10**spec.decimals) // price
            if sold <= 0:
                break
            proceeds = formulas.conversion_proceeds_atoms(sold, price, spec.decimals)
            haircut_value = self.asset_value_atoms(
                asset, held, self.prices.get(asset)
            ) - self.asset_value_atoms(asset, held - sold, self.prices.get(asset))
            account.credit(asset, -sold)
            fund.credit(asset, sold)
            move_cash(core, account, None, -proceeds, "COLLATERAL_CONVERSION", False)
            core.emit(
                CollateralConverted(
                    ts_ns=core.now_ns,
                    account_id=account.account_id,
                    asset=asset,
                    sold_atoms=sold,
                    index_atoms=index,
                    discount_e8=spec.conversion_discount_e8,
                    price_atoms=price,
                    proceeds_atoms=proceeds,
                    balance_atoms=account.balance(core.asset),
                )
            )
            steps.append(
                ConversionStep(
                    asset=asset,
                    sold_atoms=sold,
                    index_atoms=index,
                    discount_e8=spec.conversion_discount_e8,
                    price_atoms=price,
                    proceeds_atoms=proceeds,
                    haircut_value_atoms=haircut_value,
                    debt_before_atoms=debt,
                    debt_after_atoms=max(0, -account.balance(core.asset)),
                )
            )
        self.revalue(account)
        return steps

    def debt_due(self, account: Account) -> bool:
        """In the mode, no position left, and a settlement debt its collateral no longer covers."""
        if account.account_id not in self.enabled or account.balance(self.core.asset) >= 0:
            return False
        for position in account.positions.values():
            if position.qty_lots or position.isolated_margin_atoms:
                return False
        return account.balance(self.core.asset) + account.collateral_atoms < 0

    # ------------------------------------------------------------------ snapshot

    def to_data(self) -> dict[str, Any] | None:
        """The state as canonical plain data, or ``None`` when the mode was never used (old hashes stay)."""
        if not self.enabled and not self.prices:
            return None
        return {"accounts": sorted(self.enabled), "prices": sorted(self.prices.items())}

    def load(self, data: dict[str, Any] | None) -> None:
        """Restore from :meth:`to_data` (after the accounts), and recompute every figure it derives."""
        if data is None:
            return
        self.enabled = {AccountId(a): None for a in data["accounts"]}
        self.prices = {AssetId(a): int(p) for a, p in data["prices"]}
        for account_id in self.enabled:
            self.revalue(self.core.accounts[account_id], notify=False)
