// The logged-in side: the ticket, open orders, positions, balances and history. The user data stream
// drives the updates (each order, fill or balance event refreshes the tables); mark moves between
// events refresh the positions' mark-dependent figures every few seconds.

import { type Params, SignedClient, VenueError, savedCredentials, saveCredentials } from "../lib/api";
import { byId, fillRows, h, tabs } from "../lib/dom";
import { fixed, pct, stamp } from "../lib/num";
import { Stream } from "../lib/ws";
import { afterFill, type Bracket, liquidationPrice, orderCost } from "./estimate";
import type { Market } from "./market";

interface ScreenLike {
  market: Market;
  markPrice: number;
  book: { best(): { bid: number | null; ask: number | null } };
}

interface AccountInfo {
  totalWalletBalance: string;
  totalMarginBalance: string;
  totalMaintMargin: string;
  totalUnrealizedProfit: string;
  availableBalance: string;
  maxWithdrawAmount: string;
  assets: { asset: string; walletBalance: string; unrealizedProfit: string; marginBalance: string; availableBalance: string; maxWithdrawAmount: string }[];
  positions: { symbol: string; positionAmt: string; unrealizedProfit: string; maintMargin: string; isolated: boolean; isolatedWallet: string }[];
}

interface PositionRisk {
  symbol: string;
  positionAmt: string;
  entryPrice: string;
  markPrice: string;
  unRealizedProfit: string;
  liquidationPrice: string;
  leverage: string;
  marginType: string;
  isolatedWallet: string;
}

interface Order {
  orderId: number;
  symbol: string;
  side: string;
  type: string;
  price: string;
  origQty: string;
  executedQty: string;
  avgPrice: string;
  status: string;
  timeInForce: string;
  reduceOnly: boolean;
  time: number;
  updateTime: number;
}

interface AlgoOrder {
  algoId: number;
  symbol: string;
  side: string;
  orderType: string;
  triggerPrice: string;
  price: string;
  quantity: string;
  reduceOnly: boolean;
  algoStatus: string;
}

interface Fill {
  time: number;
  orderId: number;
  side: string;
  price: string;
  qty: string;
  commission: string;
  commissionAsset: string;
  realizedPnl: string;
  maker: boolean;
}

interface AdlRow {
  symbol: string;
  adlQuantile: Record<string, number>;
}

const ALGO_TYPES = new Set(["STOP_MARKET", "TAKE_PROFIT_MARKET", "STOP", "TAKE_PROFIT"]);
const MARK_REFRESH_MS = 3000;
/** A burst of user events (a fill is an order update and an account update) costs one refresh. */
const USER_EVENT_DEBOUNCE_MS = 250;

export class Account {
  client: SignedClient | null = null;
  private user: Stream | null = null;
  private keepAlive: number | undefined;
  private pending: number | undefined;
  private brackets = new Map<string, Bracket[]>();
  private fees = new Map<string, { maker: number; taker: number }>();
  private info: AccountInfo | null = null;
  private risks: PositionRisk[] = [];
  private lastRefresh = 0;
  private selectedTab = "p-positions";

  constructor(private readonly screen: ScreenLike) {}

  /** Attach the forms' handlers; called before anything is loaded, so no submit reaches the browser's default. */
  bind(): void {
    tabs(document.querySelector<HTMLElement>("[role=tablist]") as HTMLElement, (panel) => {
      this.selectedTab = panel;
      void this.refreshHistory();
    });
    byId<HTMLFormElement>("login").addEventListener("submit", (e) => {
      e.preventDefault();
      void this.login({ apiKey: byId<HTMLInputElement>("api-key").value.trim(), secret: byId<HTMLInputElement>("api-secret").value.trim() });
    });
    byId("logout").addEventListener("click", () => this.logout());
    const form = byId<HTMLFormElement>("order");
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      void this.send();
    });
    form.addEventListener("input", () => this.updateTicket());
    byId("type").addEventListener("change", () => this.updateTicket());
    byId("leverage").addEventListener("change", () => void this.setLeverage());
    byId("margin-type").addEventListener("change", () => void this.setMarginType());
    byId<HTMLButtonElement>("login-button").disabled = false;
  }

  /** Log in again with this tab's saved key, if any. */
  async start(): Promise<void> {
    const saved = savedCredentials();
    if (saved) await this.login(saved);
    this.updateTicket();
  }

  async login(credentials: { apiKey: string; secret: string }): Promise<void> {
    const error = byId("login-error");
    error.textContent = "";
    const client = new SignedClient(credentials);
    try {
      await client.init();
      await client.call("GET", "/fapi/v2/account");
    } catch (err) {
      error.textContent = message(err);
      saveCredentials(null);
      return;
    }
    saveCredentials(credentials);
    this.client = client;
    byId("login").hidden = true;
    byId("order").hidden = false;
    byId("who").textContent = `key ${credentials.apiKey.slice(0, 8)}...`;
    await this.openUserStream();
    await this.marketChanged();
  }

  logout(): void {
    saveCredentials(null);
    this.client = null;
    this.user?.close();
    this.user = null;
    window.clearInterval(this.keepAlive);
    byId("login").hidden = false;
    byId("order").hidden = true;
    for (const id of ["positions", "open-orders", "balances", "order-history", "fills"]) byId(id).replaceChildren();
  }

  private async openUserStream(): Promise<void> {
    if (!this.client) return;
    const { listenKey } = await this.client.keyed<{ listenKey: string }>("POST", "/fapi/v1/listenKey");
    this.user?.close();
    this.user = new Stream(`/ws/${listenKey}`, (msg) => this.onUserEvent(msg as { e?: string }));
    window.clearInterval(this.keepAlive);
    this.keepAlive = window.setInterval(() => void this.client?.keyed("PUT", "/fapi/v1/listenKey"), 30 * 60 * 1000);
  }

  private onUserEvent(msg: { e?: string }): void {
    if (msg.e === "listenKeyExpired") {
      void this.openUserStream();
      return;
    }
    if (msg.e === "ORDER_TRADE_UPDATE" || msg.e === "ACCOUNT_UPDATE" || msg.e === "ALGO_UPDATE" || msg.e === "ACCOUNT_CONFIG_UPDATE") {
      window.clearTimeout(this.pending);
      this.pending = window.setTimeout(() => void this.refresh(true), USER_EVENT_DEBOUNCE_MS);
    }
  }

  onMark(): void {
    if (this.client && Date.now() - this.lastRefresh > MARK_REFRESH_MS) void this.refresh(false);
    this.updateTicket();
  }

  async marketChanged(): Promise<void> {
    if (!this.client) return;
    const symbol = this.screen.market.symbol;
    if (!this.brackets.has(symbol)) {
      try {
        const [b, fee] = await Promise.all([
          this.client.call<{ brackets: Bracket[] } | { brackets: Bracket[] }[]>("GET", "/fapi/v1/leverageBracket", { symbol }),
          this.client.call<{ makerCommissionRate: string; takerCommissionRate: string }>("GET", "/fapi/v1/commissionRate", { symbol }),
        ]);
        const row = Array.isArray(b) ? b[0] : b;
        this.brackets.set(symbol, row?.brackets ?? []);
        this.fees.set(symbol, { maker: Number(fee.makerCommissionRate), taker: Number(fee.takerCommissionRate) });
      } catch (err) {
        this.showError(err);
      }
    }
    await this.refresh(true);
  }

  private async call<T>(method: string, path: string, params: Params = {}): Promise<T> {
    if (!this.client) throw new VenueError(0, null, "log in first");
    return this.client.call<T>(method, path, params);
  }

  async refresh(all: boolean): Promise<void> {
    if (!this.client) return;
    this.lastRefresh = Date.now();
    try {
      const [info, risks, adl] = await Promise.all([
        this.call<AccountInfo>("GET", "/fapi/v2/account"),
        this.call<PositionRisk[]>("GET", "/fapi/v2/positionRisk"),
        this.call<AdlRow[]>("GET", "/fapi/v1/adlQuantile"),
      ]);
      this.info = info;
      this.risks = risks;
      this.renderPositions(info, risks, adl);
      this.renderBalances(info);
      const current = risks.find((r) => r.symbol === this.screen.market.symbol);
      if (current && document.activeElement !== byId("leverage")) {
        byId<HTMLInputElement>("leverage").value = current.leverage;
        byId<HTMLSelectElement>("margin-type").value = current.marginType === "isolated" ? "ISOLATED" : "CROSSED";
      }
      if (all) {
        const [orders, algos] = await Promise.all([
          this.call<Order[]>("GET", "/fapi/v1/openOrders"),
          this.call<AlgoOrder[]>("GET", "/fapi/v1/openAlgoOrders"),
        ]);
        this.renderOpenOrders(orders, algos);
        await this.refreshHistory();
      }
      this.updateTicket();
    } catch (err) {
      if (err instanceof VenueError && err.status === 401) {
        this.logout();
        byId("login-error").textContent = message(err);
      }
    }
  }

  private async refreshHistory(): Promise<void> {
    if (!this.client) return;
    const symbol = this.screen.market.symbol;
    if (this.selectedTab === "p-orders") {
      const orders = await this.call<Order[]>("GET", "/fapi/v1/allOrders", { symbol, limit: 50 });
      fillRows(
        byId("order-history") as HTMLTableSectionElement,
        orders.reverse().map((o) =>
          h("tr", {}, h("td", {}, stamp(o.time)), h("td", {}, o.orderId), h("td", { class: o.side === "BUY" ? "up" : "down" }, o.side), h("td", {}, o.type), h("td", {}, o.price), h("td", {}, o.origQty), h("td", {}, o.executedQty), h("td", {}, o.avgPrice), h("td", {}, o.status)),
        ),
        `no orders in ${symbol}`,
      );
    } else if (this.selectedTab === "p-fills") {
      const fills = await this.call<Fill[]>("GET", "/fapi/v1/userTrades", { symbol, limit: 50 });
      fillRows(
        byId("fills") as HTMLTableSectionElement,
        fills.reverse().map((f) =>
          h("tr", {}, h("td", {}, stamp(f.time)), h("td", {}, f.orderId), h("td", { class: f.side === "BUY" ? "up" : "down" }, f.side), h("td", {}, f.price), h("td", {}, f.qty), h("td", {}, `${f.commission} ${f.commissionAsset}`), h("td", {}, f.realizedPnl), h("td", {}, f.maker ? "maker" : "taker")),
        ),
        `no fills in ${symbol}`,
      );
    }
  }

  private renderPositions(info: AccountInfo, risks: PositionRisk[], adl: AdlRow[]): void {
    const crossRatio = Number(info.totalMarginBalance) > 0 ? Number(info.totalMaintMargin) / Number(info.totalMarginBalance) : null;
    const rows = risks
      .filter((r) => Number(r.positionAmt) !== 0)
      .map((r) => {
        const acct = info.positions.find((p) => p.symbol === r.symbol);
        const isolated = r.marginType === "isolated";
        const isoBalance = Number(r.isolatedWallet) + Number(r.unRealizedProfit);
        const ratio = isolated ? (isoBalance > 0 ? Number(acct?.maintMargin ?? 0) / isoBalance : null) : crossRatio;
        const quantile = adl.find((a) => a.symbol === r.symbol)?.adlQuantile;
        const q = quantile ? (quantile.BOTH ?? Math.max(quantile.LONG ?? 0, quantile.SHORT ?? 0)) : null;
        const close = h("button", { type: "button", class: "small", "aria-label": `Close ${r.symbol} position at market` }, "Close");
        close.addEventListener("click", () => void this.closePosition(r));
        return h(
          "tr",
          { "data-symbol": r.symbol },
          h("td", {}, r.symbol),
          h("td", { class: Number(r.positionAmt) > 0 ? "up" : "down" }, r.positionAmt),
          h("td", {}, r.entryPrice),
          h("td", {}, r.markPrice),
          h("td", { class: Number(r.unRealizedProfit) >= 0 ? "up" : "down" }, r.unRealizedProfit),
          h("td", {}, ratio === null ? "-" : pct(ratio)),
          h("td", {}, Number(r.liquidationPrice) > 0 ? r.liquidationPrice : "-"),
          h("td", { title: "auto-deleverage queue: 0 (last) to 4 (first)" }, q === null ? "-" : q),
          h("td", {}, `${r.marginType} ${r.leverage}x`),
          h("td", {}, close),
        );
      });
    fillRows(byId("positions") as HTMLTableSectionElement, rows, "no open positions");
  }

  private renderBalances(info: AccountInfo): void {
    fillRows(
      byId("balances") as HTMLTableSectionElement,
      info.assets
        .filter((a) => Number(a.walletBalance) !== 0)
        .map((a) => h("tr", {}, h("td", {}, a.asset), h("td", {}, a.walletBalance), h("td", {}, a.unrealizedProfit), h("td", {}, a.marginBalance), h("td", {}, a.availableBalance), h("td", {}, a.maxWithdrawAmount))),
      "no balances",
    );
  }

  private renderOpenOrders(orders: Order[], algos: AlgoOrder[]): void {
    const rows: HTMLTableRowElement[] = [];
    for (const o of orders) {
      const cancel = h("button", { type: "button", class: "small", "aria-label": `Cancel order ${o.orderId}` }, "Cancel");
      cancel.addEventListener("click", () => void this.act(() => this.call("DELETE", "/fapi/v1/order", { symbol: o.symbol, orderId: o.orderId }), `cancelled order ${o.orderId}`));
      const amend = h("button", { type: "button", class: "small", "aria-label": `Amend order ${o.orderId}` }, "Amend");
      const row = h(
        "tr",
        { "data-order-id": o.orderId },
        h("td", {}, o.symbol),
        h("td", {}, o.orderId),
        h("td", { class: o.side === "BUY" ? "up" : "down" }, o.side),
        h("td", {}, o.type),
        h("td", {}, o.price),
        h("td", {}, o.origQty),
        h("td", {}, o.executedQty),
        h("td", {}, [o.timeInForce === "GTX" ? "post-only" : "", o.reduceOnly ? "reduce-only" : ""].filter(Boolean).join(" ")),
        h("td", { class: "actions" }, amend, cancel),
      );
      amend.addEventListener("click", () => this.amendForm(row, o));
      rows.push(row);
    }
    for (const a of algos) {
      const cancel = h("button", { type: "button", class: "small", "aria-label": `Cancel algo order ${a.algoId}` }, "Cancel");
      cancel.addEventListener("click", () => void this.act(() => this.call("DELETE", "/fapi/v1/algoOrder", { symbol: a.symbol, algoId: a.algoId }), `cancelled algo order ${a.algoId}`));
      rows.push(
        h(
          "tr",
          { "data-algo-id": a.algoId },
          h("td", {}, a.symbol),
          h("td", {}, `algo ${a.algoId}`),
          h("td", { class: a.side === "BUY" ? "up" : "down" }, a.side),
          h("td", {}, a.orderType),
          h("td", {}, `${Number(a.price) > 0 ? `${a.price} / ` : ""}trigger ${a.triggerPrice}`),
          h("td", {}, a.quantity),
          h("td", {}, "0"),
          h("td", {}, a.reduceOnly ? "reduce-only" : ""),
          h("td", { class: "actions" }, cancel),
        ),
      );
    }
    fillRows(byId("open-orders") as HTMLTableSectionElement, rows, "no open orders");
  }

  private amendForm(row: HTMLTableRowElement, o: Order): void {
    const price = h("input", { value: o.price, "aria-label": `New price of order ${o.orderId}`, inputmode: "decimal", size: 9 });
    const qty = h("input", { value: o.origQty, "aria-label": `New quantity of order ${o.orderId}`, inputmode: "decimal", size: 7 });
    const save = h("button", { type: "submit", class: "small primary" }, "Save");
    const back = h("button", { type: "button", class: "small" }, "Back");
    const form = h("form", { class: "amend" }, price, qty, save, back);
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      void this.act(
        () => this.call("PUT", "/fapi/v1/order", { symbol: o.symbol, orderId: o.orderId, side: o.side, price: price.value.trim(), quantity: qty.value.trim() }),
        `amended order ${o.orderId}`,
      );
    });
    back.addEventListener("click", () => void this.refresh(true));
    const cell = row.querySelector("td.actions");
    cell?.replaceChildren(form);
    price.focus();
  }

  private async closePosition(r: PositionRisk): Promise<void> {
    const amt = Number(r.positionAmt);
    await this.act(
      () => this.call("POST", "/fapi/v1/order", { symbol: r.symbol, side: amt > 0 ? "SELL" : "BUY", type: "MARKET", quantity: r.positionAmt.replace("-", ""), reduceOnly: "true" }),
      `closing ${r.symbol} at market`,
    );
  }

  private async setLeverage(): Promise<void> {
    const leverage = byId<HTMLInputElement>("leverage").value.trim();
    await this.act(() => this.call("POST", "/fapi/v1/leverage", { symbol: this.screen.market.symbol, leverage }), `leverage ${leverage}x`);
  }

  private async setMarginType(): Promise<void> {
    const marginType = byId<HTMLSelectElement>("margin-type").value;
    await this.act(() => this.call("POST", "/fapi/v1/marginType", { symbol: this.screen.market.symbol, marginType }), `margin mode ${marginType.toLowerCase()}`);
  }

  /** Run a request; show the venue's refusal as it is, or `done` and the venue's id and status, then refresh. */
  private async act(request: () => Promise<unknown>, done: string): Promise<boolean> {
    byId("order-error").textContent = "";
    byId("order-result").textContent = "";
    try {
      const answer = (await request()) as { orderId?: number; algoId?: number; status?: string; algoStatus?: string } | null;
      const id = answer?.orderId ?? answer?.algoId;
      const status = answer?.status ?? answer?.algoStatus;
      byId("order-result").textContent = id === undefined ? done : `${done}: ${answer?.algoId !== undefined ? "algo " : ""}${id}${status ? ` ${status}` : ""}`;
      await this.refresh(true);
      return true;
    } catch (err) {
      this.showError(err);
      await this.refresh(true);
      return false;
    }
  }

  private showError(err: unknown): void {
    byId("order-error").textContent = message(err);
  }

  private ticketValues(): { side: string; type: string; price: string; trigger: string; qty: string; postOnly: boolean; reduceOnly: boolean; leverage: number } {
    return {
      side: (document.querySelector<HTMLInputElement>("input[name=side]:checked")?.value ?? "BUY"),
      type: byId<HTMLSelectElement>("type").value,
      price: byId<HTMLInputElement>("price").value.trim(),
      trigger: byId<HTMLInputElement>("trigger").value.trim(),
      qty: byId<HTMLInputElement>("qty").value.trim(),
      postOnly: byId<HTMLInputElement>("post-only").checked,
      reduceOnly: byId<HTMLInputElement>("reduce-only").checked,
      leverage: Number(byId<HTMLInputElement>("leverage").value) || 1,
    };
  }

  updateTicket(): void {
    const v = this.ticketValues();
    const hasPrice = v.type === "LIMIT" || v.type === "STOP" || v.type === "TAKE_PROFIT";
    byId("price-field").hidden = !hasPrice;
    byId("trigger-field").hidden = !ALGO_TYPES.has(v.type);
    byId("post-only-field").hidden = v.type !== "LIMIT";
    const send = byId("send");
    send.textContent = `${v.side === "BUY" ? "Buy" : "Sell"} ${this.screen.market?.symbol ?? ""}`;
    send.className = `primary ${v.side === "BUY" ? "buy" : "sell"}`;
    const market = this.screen.market;
    if (!market) return;
    const best = this.screen.book?.best();
    const tick = Number(market.tickSize);
    const marketPrice = v.side === "BUY" ? (best?.ask ?? null) : (best?.bid ?? null);
    const price = hasPrice ? Number(v.price) : ALGO_TYPES.has(v.type) ? Number(v.trigger) : marketPrice !== null ? marketPrice * tick : this.screen.markPrice;
    const qty = Number(v.qty);
    const fee = this.fees.get(market.symbol);
    const info = this.info;
    byId("est-available").textContent = info ? `${fixed(info.availableBalance, 2)} ${market.quoteAsset}` : "-";
    if (!(price > 0) || !(qty > 0)) {
      for (const id of ["est-notional", "est-cost", "est-liq"]) byId(id).textContent = "-";
      return;
    }
    const maker = v.type === "LIMIT" && v.postOnly;
    const rate = fee ? (maker ? fee.maker : fee.taker) : 0;
    const cost = orderCost(qty, price, v.leverage, rate, v.reduceOnly);
    const places = Math.max(2, 0);
    byId("est-notional").textContent = `${fixed(cost.notional, places)} ${market.quoteAsset}`;
    byId("est-cost").textContent = `${fixed(cost.margin + cost.fee, places)} ${market.quoteAsset} (fee ${fixed(cost.fee, 4)})`;
    const risk = this.risks.find((r) => r.symbol === market.symbol);
    const signed = v.side === "BUY" ? qty : -qty;
    const before = { qty: Number(risk?.positionAmt ?? 0), entry: Number(risk?.entryPrice ?? 0) };
    const after = afterFill(before, signed, price);
    let wallet = 0;
    if (info) {
      if (risk?.marginType === "isolated") {
        wallet = Number(risk.isolatedWallet) + cost.margin - cost.fee;
      } else {
        const others = info.positions.filter((p) => p.symbol !== market.symbol && !p.isolated);
        const otherPnl = others.reduce((s, p) => s + Number(p.unrealizedProfit), 0);
        const otherMaint = others.reduce((s, p) => s + Number(p.maintMargin), 0);
        wallet = Number(info.totalWalletBalance) - cost.fee + otherPnl - otherMaint;
      }
    }
    const liq = info ? liquidationPrice(after, wallet, this.brackets.get(market.symbol) ?? []) : null;
    byId("est-liq").textContent = after.qty === 0 ? "no position" : liq === null ? "none" : `~${fixed(liq, Math.max(0, Math.round(-Math.log10(tick))))}`;
  }

  private async send(): Promise<void> {
    const v = this.ticketValues();
    const symbol = this.screen.market.symbol;
    const common: Params = { symbol, side: v.side, quantity: v.qty, reduceOnly: v.reduceOnly ? "true" : undefined };
    let ok: boolean;
    if (ALGO_TYPES.has(v.type)) {
      const params: Params = { ...common, algoType: "CONDITIONAL", type: v.type, triggerPrice: v.trigger };
      if (v.type === "STOP" || v.type === "TAKE_PROFIT") Object.assign(params, { price: v.price, timeInForce: "GTC" });
      ok = await this.act(() => this.call("POST", "/fapi/v1/algoOrder", params), `${v.type.toLowerCase().replace(/_/g, " ")} order placed`);
    } else if (v.type === "LIMIT") {
      ok = await this.act(
        () => this.call<Order>("POST", "/fapi/v1/order", { ...common, type: "LIMIT", price: v.price, timeInForce: v.postOnly ? "GTX" : "GTC" }),
        "limit order placed",
      );
    } else {
      ok = await this.act(() => this.call("POST", "/fapi/v1/order", { ...common, type: "MARKET" }), "market order sent");
    }
    if (ok) byId("order-result").textContent += ` (${stamp(Date.now())} UTC)`;
  }
}

function message(err: unknown): string {
  if (err instanceof VenueError) return err.message;
  return err instanceof Error ? err.message : String(err);
}
