// What the ticket shows before sending: the order's notional, its cost (initial margin at the chosen
// leverage plus the fee) and the liquidation price the position would have after a full fill.
// Figures are estimates in floating point (labelled so); the venue's own numbers come back with the
// order. The liquidation price is Binance's one-way formula with the venue's leverage brackets
// (/fapi/v1/leverageBracket), the same formula the engine uses (perpx.engine.formulas):
//
//   margin balance at P = maintenance at P
//   W + q (P - E) = |q| P mmr - cum        =>   P = (q E - W - cum) / (q - |q| mmr)
//
// with W the wallet that backs the position (cross: the cross wallet plus the other positions' uPnL
// minus their maintenance; isolated: the isolated margin), q signed, and the bracket the one whose
// notional range holds |q| P.

export interface Bracket {
  notionalFloor: number;
  notionalCap: number;
  maintMarginRatio: number;
  cum: number;
}

export interface Position {
  qty: number;
  entry: number;
}

/** The position after a fill of `qty` (signed) at `price`: average entry when adding, kept when reducing. */
export function afterFill(position: Position, qty: number, price: number): Position {
  const next = position.qty + qty;
  if (Math.abs(next) < 1e-12) return { qty: 0, entry: 0 };
  if (position.qty === 0 || Math.sign(position.qty) === Math.sign(qty)) {
    return { qty: next, entry: (position.qty * position.entry + qty * price) / next };
  }
  if (Math.sign(next) === Math.sign(position.qty)) return { qty: next, entry: position.entry };
  return { qty: next, entry: price };
}

/** The liquidation price of `position` backed by `wallet`; null when there is none (no position, or it cannot be liquidated). */
export function liquidationPrice(position: Position, wallet: number, brackets: Bracket[]): number | null {
  const q = position.qty;
  if (q === 0 || brackets.length === 0) return null;
  for (const b of brackets) {
    const denominator = q - Math.abs(q) * b.maintMarginRatio;
    if (denominator === 0) continue;
    const price = (q * position.entry - wallet - b.cum) / denominator;
    const notional = Math.abs(q) * price;
    if (price > 0 && notional >= b.notionalFloor && notional < b.notionalCap) return price;
  }
  const last = brackets[brackets.length - 1];
  const price = (q * position.entry - wallet - last.cum) / (q - Math.abs(q) * last.maintMarginRatio);
  return price > 0 ? price : null;
}

export interface Cost {
  notional: number;
  margin: number;
  fee: number;
}

/** Initial margin at `leverage` plus the fee at `feeRate`; a reduce-only order needs no new margin. */
export function orderCost(qty: number, price: number, leverage: number, feeRate: number, reduceOnly: boolean): Cost {
  const notional = Math.abs(qty) * price;
  return { notional, margin: reduceOnly ? 0 : notional / Math.max(leverage, 1), fee: notional * feeRate };
}
