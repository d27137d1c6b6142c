// The trading screen: market data for everyone, the ticket and account tables once logged in.

import { publicGet } from "../lib/api";
import { byId, h } from "../lib/dom";
import { clock, countdown, fixed, fromUnits, toUnits } from "../lib/num";
import { Stream } from "../lib/ws";
import { Account } from "./account";
import { Book, type DepthDiff } from "./book";
import { type KlineEvent, PriceChart } from "./chart";
import { type Market, marketOf, type SymbolInfo } from "./market";

interface Ticker24h {
  lastPrice: string;
  priceChangePercent: string;
  highPrice: string;
  lowPrice: string;
  volume: string;
}

interface PremiumIndex {
  markPrice: string;
  indexPrice: string;
  lastFundingRate: string;
  nextFundingTime: number;
}

interface TradeRow {
  price: string;
  qty: string;
  time: number;
  isBuyerMaker: boolean;
}

const GROUPS = [1, 10, 100, 1000];
const TAPE_ROWS = 30;

class Screen {
  markets: Market[] = [];
  market!: Market;
  book!: Book;
  chart = new PriceChart(byId("chart"));
  stream: Stream | null = null;
  nextFundingMs = 0;
  markPrice = 0;
  account = new Account(this);
  private frame = 0;

  async start(): Promise<void> {
    this.account.bind();
    const info = await publicGet<{ symbols: SymbolInfo[] }>("/fapi/v1/exchangeInfo");
    this.markets = info.symbols.map(marketOf);
    const select = byId<HTMLSelectElement>("market");
    select.replaceChildren(...this.markets.map((m) => h("option", { value: m.symbol }, m.symbol)));
    const wanted = new URLSearchParams(location.search).get("symbol");
    const first = this.markets.find((m) => m.symbol === wanted) ?? this.markets[0];
    if (first === undefined) throw new Error("the venue lists no markets");
    select.value = first.symbol;
    select.addEventListener("change", () => void this.open(select.value));
    byId<HTMLSelectElement>("interval").addEventListener("change", (e) => {
      this.chart.interval = (e.target as HTMLSelectElement).value;
      void this.chart.load(this.market.symbol, this.market.tickSize);
      this.connect();
    });
    byId<HTMLSelectElement>("group").addEventListener("change", () => this.book.render(this.group(), byId("asks"), byId("bids"), byId("spread")));
    window.setInterval(() => {
      byId("st-countdown").textContent = this.nextFundingMs ? countdown(this.nextFundingMs - Date.now()) : "-";
    }, 1000);
    await this.open(first.symbol);
    await this.account.start();
  }

  group(): number {
    const n = Number(byId<HTMLSelectElement>("group").value);
    return Number.isFinite(n) && n > 0 ? n : 1;
  }

  async open(symbol: string): Promise<void> {
    const market = this.markets.find((m) => m.symbol === symbol);
    if (market === undefined) return;
    this.market = market;
    const url = new URL(location.href);
    url.searchParams.set("symbol", symbol);
    history.replaceState(null, "", url);
    byId<HTMLSelectElement>("group").replaceChildren(
      ...GROUPS.map((g) => h("option", { value: g }, fromUnits(g, market.tickSize))),
    );
    this.book = new Book(market, () => this.schedule());
    this.connect();
    await Promise.all([this.book.load(), this.chart.load(symbol, market.tickSize), this.loadStats(), this.loadTrades()]);
    this.account.marketChanged();
  }

  connect(): void {
    this.stream?.close();
    const s = this.market.symbol.toLowerCase();
    const names = [`${s}@depth@100ms`, `${s}@trade`, `${s}@kline_${this.chart.interval}`, `${s}@markPrice@1s`, `${s}@ticker`];
    const symbol = this.market.symbol;
    this.stream = new Stream(
      `/stream?streams=${names.join("/")}`,
      (msg) => this.onStream(msg as { stream: string; data: Record<string, unknown> }, symbol),
      (live) => {
        const el = byId("live");
        el.textContent = live ? "live" : "reconnecting";
        el.classList.toggle("on", live);
      },
      () => void this.book.load(),
    );
  }

  onStream(msg: { stream: string; data: Record<string, unknown> }, symbol: string): void {
    if (symbol !== this.market.symbol || !msg.data) return;
    const data = msg.data;
    switch (data.e) {
      case "depthUpdate":
        this.book.onDiff(data as unknown as DepthDiff);
        break;
      case "trade":
        this.addTrade({ price: String(data.p), qty: String(data.q), time: Number(data.T), isBuyerMaker: Boolean(data.m) }, true);
        break;
      case "kline":
        this.chart.onKline(data as unknown as KlineEvent);
        break;
      case "markPriceUpdate":
        this.markPrice = Number(data.p);
        byId("st-mark").textContent = String(data.p);
        byId("st-index").textContent = String(data.i);
        byId("st-funding").textContent = `${fixed(Number(data.r) * 100, 4)}%`;
        this.nextFundingMs = Number(data.T);
        this.chart.onMark(Number(data.E), String(data.p), String(data.i));
        this.account.onMark();
        break;
      case "24hrTicker":
        this.setStats({
          lastPrice: String(data.c),
          priceChangePercent: String(data.P),
          highPrice: String(data.h),
          lowPrice: String(data.l),
          volume: String(data.v),
        });
        break;
    }
  }

  schedule(): void {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.book.render(this.group(), byId("asks"), byId("bids"), byId("spread"));
    });
  }

  async loadStats(): Promise<void> {
    const symbol = this.market.symbol;
    const [ticker, premium] = await Promise.all([
      publicGet<Ticker24h>("/fapi/v1/ticker/24hr", { symbol }),
      publicGet<PremiumIndex>("/fapi/v1/premiumIndex", { symbol }),
    ]);
    this.setStats(ticker);
    this.markPrice = Number(premium.markPrice);
    byId("st-mark").textContent = premium.markPrice;
    byId("st-index").textContent = premium.indexPrice;
    byId("st-funding").textContent = `${fixed(Number(premium.lastFundingRate) * 100, 4)}%`;
    this.nextFundingMs = premium.nextFundingTime;
  }

  setStats(t: Ticker24h): void {
    byId("st-last").textContent = t.lastPrice;
    const change = byId("st-change");
    change.textContent = `${fixed(t.priceChangePercent, 2)}%`;
    change.className = Number(t.priceChangePercent) >= 0 ? "up" : "down";
    byId("st-high").textContent = t.highPrice;
    byId("st-low").textContent = t.lowPrice;
    byId("st-volume").textContent = `${t.volume} ${this.market.baseAsset}`;
  }

  async loadTrades(): Promise<void> {
    const rows = await publicGet<TradeRow[]>("/fapi/v1/trades", { symbol: this.market.symbol, limit: TAPE_ROWS });
    byId("trades").replaceChildren();
    for (const row of rows) this.addTrade(row, false);
  }

  addTrade(t: TradeRow, live: boolean): void {
    const body = byId("trades");
    const ticks = toUnits(t.price, this.market.tickSize);
    const row = h(
      "tr",
      { class: t.isBuyerMaker ? "sell" : "buy" },
      h("td", {}, fromUnits(ticks, this.market.tickSize)),
      h("td", {}, t.qty),
      h("td", {}, clock(t.time)),
    );
    if (live) row.classList.add("flash");
    body.prepend(row);
    while (body.children.length > TAPE_ROWS) body.lastElementChild?.remove();
  }
}

const screen = new Screen();
screen.start().catch((err: unknown) => {
  byId("live").textContent = `could not load: ${err instanceof Error ? err.message : String(err)}`;
});
