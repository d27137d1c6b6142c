// The live order book: REST depth, then the diff stream applied in journal order.
// Binance's rule: drop diffs with u <= lastUpdateId, then every diff's pu must be the previous u;
// a gap means a lost message, and the book is fetched again rather than shown wrong.

import { publicGet } from "../lib/api";
import { h } from "../lib/dom";
import { decimals, fromUnits, toUnits } from "../lib/num";
import type { Market } from "./market";

interface DepthSnapshot {
  lastUpdateId: number;
  bids: [string, string][];
  asks: [string, string][];
}

export interface DepthDiff {
  e: string;
  s: string;
  U: number;
  u: number;
  pu: number;
  b: [string, string][];
  a: [string, string][];
}

const ROWS = 8;

export class Book {
  private bids = new Map<number, number>();
  private asks = new Map<number, number>();
  private lastU = -1;
  private buffered: DepthDiff[] = [];
  private loading = true; // diffs wait in the buffer until the first snapshot
  private dirty = true;
  updates = 0;

  constructor(
    readonly market: Market,
    private readonly onChange: () => void,
  ) {}

  private inflight: Promise<void> | null = null;

  /** Fetch the book; one fetch at a time (a second caller waits for the one in flight, keeping its buffered diffs). */
  load(): Promise<void> {
    if (this.inflight === null) this.inflight = this.fetch().finally(() => (this.inflight = null));
    return this.inflight;
  }

  private async fetch(): Promise<void> {
    this.loading = true;
    try {
      const snap = await publicGet<DepthSnapshot>("/fapi/v1/depth", { symbol: this.market.symbol, limit: 500 });
      this.bids = this.side(snap.bids);
      this.asks = this.side(snap.asks);
      this.lastU = snap.lastUpdateId;
      this.loading = false;
      const pending = this.buffered.filter((d) => d.u > this.lastU);
      this.buffered = [];
      for (const diff of pending) this.apply(diff, true);
      this.changed();
    } finally {
      this.loading = false;
    }
  }

  private side(levels: [string, string][]): Map<number, number> {
    const map = new Map<number, number>();
    for (const [price, qty] of levels) map.set(toUnits(price, this.market.tickSize), toUnits(qty, this.market.stepSize));
    return map;
  }

  onDiff(diff: DepthDiff): void {
    if (this.loading) {
      this.buffered.push(diff);
      return;
    }
    this.apply(diff, false);
  }

  private apply(diff: DepthDiff, first: boolean): void {
    if (diff.u <= this.lastU) return;
    const continuous = diff.pu === this.lastU || (first && diff.U <= this.lastU + 1);
    if (!continuous && this.lastU >= 0) {
      void this.load();
      return;
    }
    for (const [price, qty] of diff.b) this.set(this.bids, price, qty);
    for (const [price, qty] of diff.a) this.set(this.asks, price, qty);
    this.lastU = diff.u;
    this.updates += 1;
    this.changed();
  }

  private set(map: Map<number, number>, price: string, qty: string): void {
    const p = toUnits(price, this.market.tickSize);
    const q = toUnits(qty, this.market.stepSize);
    if (q === 0) map.delete(p);
    else map.set(p, q);
  }

  private changed(): void {
    this.dirty = true;
    this.onChange();
  }

  best(): { bid: number | null; ask: number | null } {
    const bid = this.bids.size ? Math.max(...this.bids.keys()) : null;
    const ask = this.asks.size ? Math.min(...this.asks.keys()) : null;
    return { bid, ask };
  }

  /** Levels grouped into buckets of `group` ticks (bids down, asks up), best first. */
  grouped(group: number, bids: boolean): [number, number][] {
    const buckets = new Map<number, number>();
    for (const [price, qty] of bids ? this.bids : this.asks) {
      const bucket = bids ? Math.floor(price / group) * group : Math.ceil(price / group) * group;
      buckets.set(bucket, (buckets.get(bucket) ?? 0) + qty);
    }
    const sorted = [...buckets.entries()].sort((x, y) => (bids ? y[0] - x[0] : x[0] - y[0]));
    return sorted.slice(0, ROWS);
  }

  render(group: number, asksBody: HTMLElement, bidsBody: HTMLElement, spread: HTMLElement): void {
    if (!this.dirty) return;
    this.dirty = false;
    const { tickSize, stepSize } = this.market;
    const groupStep = fromUnits(group, tickSize);
    const priceText = (ticks: number): string => (ticks * Number(tickSize)).toFixed(Math.max(decimals(groupStep), 0));
    const rows = (levels: [number, number][], cls: string): HTMLTableRowElement[] => {
      let total = 0;
      const max = levels.reduce((sum, [, q]) => sum + q, 0) || 1;
      return levels.map(([price, qty]) => {
        total += qty;
        const row = h("tr", { class: cls }, h("td", {}, priceText(price)), h("td", {}, fromUnits(qty, stepSize)), h("td", {}, fromUnits(total, stepSize)));
        row.style.setProperty("--depth", `${Math.round((total / max) * 100)}%`);
        return row;
      });
    };
    const asks = this.grouped(group, false);
    asksBody.replaceChildren(...rows(asks, "ask").reverse());
    bidsBody.replaceChildren(...rows(this.grouped(group, true), "bid"));
    const { bid, ask } = this.best();
    spread.textContent =
      bid !== null && ask !== null
        ? `spread ${fromUnits(ask - bid, tickSize)} (${(((ask - bid) / ask) * 10000).toFixed(1)} bps)`
        : "no two-sided market";
  }
}
