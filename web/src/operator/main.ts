// The operator console: the risk monitor (polled every 2 s), markets with proposals and the audit log,
// the risk lab.
// Everything is read through the admin API with the token from session storage; nothing is changed
// from this page.

import { ColorType, createChart, type IChartApi, type ISeriesApi, LineSeries, type UTCTimestamp } from "lightweight-charts";
import { VenueError, adminGet, adminText, savedToken, saveToken } from "../lib/api";
import { byId, fillRows, h, tabs } from "../lib/dom";
import { clock, countdown, fixed, pct, stamp } from "../lib/num";

interface Source {
  source: string;
  weight: number;
  price: string | null;
  ageMs: number | null;
  used: boolean;
  dropped: string | null;
}

interface MarketRisk {
  symbol: string;
  mode: string;
  markPrice: string | null;
  indexPrice: string | null;
  indexStale: boolean;
  markIndexGapBps: string | null;
  fundingRate: string | null;
  nextFundingTime: number | null;
  openInterest: string;
  openInterestCap: string | null;
  openInterestOfCapPct: string | null;
  sources: Source[];
}

interface AccountRisk {
  accountId: number;
  name: string;
  marginBalance: string;
  maintMargin: string;
  worstMarginRatio: string | null;
  positions: { symbol: string; positionAmt: string; marginType: string; markPrice: string | null; liquidationPrice: string | null; distanceToLiquidationPct: string | null }[];
}

interface RiskAnswer {
  venueTimeMs: number;
  asset: string;
  accounts: AccountRisk[];
  markets: MarketRisk[];
}

interface Explained {
  seq: number;
  time: number;
  accountId: number;
  scope: string;
  symbol: string | null;
  outcome: string;
  steps: string[];
  adlCounterparties: number[];
  explanation: string;
}

interface Insurance {
  asset: string;
  cash: string;
  wallet: string;
  equity: string;
  positions: { symbol: string; positionAmt: string; entryPrice: string; markPrice: string | null }[];
  history: { seq: number; time: number; accountId: number; symbol: string | null; reason: string; amount: string; fundCash: string }[];
}

interface Step {
  action: string;
  operator: string;
  wall_ms: number;
  detail: string;
}

type Figures = Record<string, string | number | null>;

interface DryRunRow {
  applicable?: boolean;
  why?: string;
  error?: string;
  current?: Figures;
  proposed?: Figures;
}

interface Proposal {
  id: number;
  symbol: string;
  params: Record<string, string>;
  reason: string;
  proposer: string;
  approver: string | null;
  state: string;
  dry_run: { scenarios: string[]; results: Record<string, DryRunRow> } | null;
  trail: Step[];
}

type AuditRow =
  | { kind: "param"; seq: number; operator: string; time: number; symbol: string; param: string; old: string; new: string }
  | { kind: "proposal"; proposal: number; action: string; operator: string; time: number; symbol: string; params: Record<string, string>; detail: string };

/** The dry run's figures, as the proposals table shows them (risk lab summary names). */
const COMPARED: [string, string][] = [
  ["liquidations", "liq."],
  ["adl_events", "ADL"],
  ["bad_debt", "bad debt"],
  ["insurance_fund_min", "fund min"],
  ["max_mark_index_gap_bps", "max gap (bps)"],
];

function changeText(params: Record<string, string>): string {
  return Object.entries(params)
    .map(([k, v]) => `${k} = ${v}`)
    .join(", ");
}

function figureText(figures: Figures | undefined, key: string): string {
  if (figures === undefined) return "-";
  const value = figures[key];
  if (value === undefined || value === null) return String(figures.error ?? "-");
  return typeof value === "number" && !Number.isInteger(value) ? value.toFixed(2) : String(value);
}

/** One line per scenario: each compared figure as current / proposed, or why it did not apply. */
function dryRunText(p: Proposal): string {
  if (p.dry_run === null) return "not run yet";
  return Object.entries(p.dry_run.results)
    .map(([name, row]) => {
      if (!row.applicable) return `${name}: ${row.why ?? row.error ?? "not applicable"}`;
      const figures = COMPARED.map(([key, label]) => `${label} ${figureText(row.current, key)} / ${figureText(row.proposed, key)}`);
      return `${name}: ${figures.join(", ")}`;
    })
    .join("\n");
}

/** A token handed over in the address's fragment (the demo's banner link): taken once, then removed. */
function tokenFromLink(): string | null {
  const token = new URLSearchParams(window.location.hash.slice(1)).get("token");
  if (token === null) return null;
  window.history.replaceState(null, "", window.location.pathname + window.location.search);
  return token;
}

const POLL_MS = 2000;
/** The accounts scan costs the sequencer about one full margin scan (docs/console.md): every 10 s, or on demand. */
const ACCOUNTS_POLL_MS = 10000;

class Console {
  token: string | null = null;
  private timer: number | undefined;
  private view = "v-risk";
  private fundChart: IChartApi | null = null;
  private fundCash: ISeriesApi<"Line"> | null = null;
  private seen = new Set<number>();
  private lastVenueMs = 0;
  private lastRisk: RiskAnswer | null = null;
  private lastRiskAt = 0;

  start(): void {
    tabs(byId("views"), (panel) => {
      this.view = panel;
      void this.poll();
    });
    byId<HTMLFormElement>("login").addEventListener("submit", (e) => {
      e.preventDefault();
      void this.login(byId<HTMLInputElement>("token").value);
    });
    byId("logout").addEventListener("click", () => this.logout());
    byId<HTMLButtonElement>("login-button").disabled = false;
    const saved = tokenFromLink() ?? savedToken();
    if (saved) void this.login(saved);
  }

  async login(token: string): Promise<void> {
    const error = byId("login-error");
    error.textContent = "";
    try {
      await adminGet(token, "/state");
    } catch (err) {
      error.textContent = err instanceof Error ? err.message : String(err);
      saveToken(null);
      return;
    }
    saveToken(token);
    this.token = token;
    byId("login").hidden = true;
    byId("app").hidden = false;
    byId("logout").hidden = false;
    await this.poll();
  }

  logout(): void {
    saveToken(null);
    this.token = null;
    window.clearTimeout(this.timer);
    byId("login").hidden = false;
    byId("app").hidden = true;
    byId("logout").hidden = true;
    byId("live").textContent = "logged out";
  }

  async poll(): Promise<void> {
    window.clearTimeout(this.timer);
    if (!this.token) return;
    const live = byId("live");
    try {
      if (this.view === "v-risk") await this.risk(this.token);
      else if (this.view === "v-markets") await this.markets(this.token);
      else await this.lab(this.token);
      live.textContent = `updated ${clock(Date.now())}`;
      live.classList.add("on");
    } catch (err) {
      live.classList.remove("on");
      live.textContent = err instanceof Error ? err.message : String(err);
      if (err instanceof VenueError && (err.status === 401 || err.status === 403 || err.status === 429)) {
        this.logout();
        byId("login-error").textContent = err.message;
        return;
      }
    }
    if (this.view !== "v-lab") this.timer = window.setTimeout(() => void this.poll(), POLL_MS);
  }

  private async risk(token: string): Promise<void> {
    const [feed, fund] = await Promise.all([
      adminGet<{ records: Explained[] }>(token, "/liquidations/explained", { limit: 30 }),
      adminGet<Insurance>(token, "/insurance", { limit: 500 }),
    ]);
    const fresh = feed.records.some((r) => !this.seen.has(r.seq));
    const scan = this.lastRisk === null || fresh || Date.now() - this.lastRiskAt >= ACCOUNTS_POLL_MS;
    const risk = await adminGet<RiskAnswer>(token, "/risk", { limit: scan ? 50 : 0 });
    if (scan) {
      this.lastRisk = risk;
      this.lastRiskAt = Date.now();
    }
    const accounts = scan ? risk : (this.lastRisk as RiskAnswer);
    this.lastVenueMs = risk.venueTimeMs;
    byId("venue-time").textContent = `venue time ${stamp(risk.venueTimeMs)} UTC`;
    this.renderMarkets(risk);
    this.renderAccounts(accounts);
    this.renderFeed(feed.records);
    this.renderFund(fund);
  }

  private renderMarkets(risk: RiskAnswer): void {
    fillRows(
      byId("market-risk") as HTMLTableSectionElement,
      risk.markets.map((m) => {
        const capPct = m.openInterestOfCapPct === null ? null : Number(m.openInterestOfCapPct);
        const bar = h("span", { class: "meter" }, h("span", {}));
        (bar.firstChild as HTMLElement).style.width = `${Math.min(capPct ?? 0, 100)}%`;
        const gap = m.markIndexGapBps === null ? null : Number(m.markIndexGapBps);
        return h(
          "tr",
          { "data-symbol": m.symbol },
          h("td", {}, m.symbol),
          h("td", { class: m.mode.toLowerCase() === "normal" ? "" : "warn" }, m.mode + (m.indexStale ? " (index stale)" : "")),
          h("td", {}, m.markPrice ?? "-"),
          h("td", {}, m.indexPrice ?? "-"),
          h("td", { class: gap !== null && Math.abs(gap) > 50 ? "warn" : "" }, gap === null ? "-" : `${m.markIndexGapBps} bps`),
          h("td", {}, m.fundingRate === null ? "-" : pct(m.fundingRate, 4)),
          h("td", {}, m.nextFundingTime === null ? "-" : countdown(m.nextFundingTime - this.lastVenueMs)),
          h("td", {}, `${m.openInterest} / ${m.openInterestCap ?? "no cap"} `, capPct === null ? "" : bar, capPct === null ? "" : ` ${fixed(capPct, 1)}%`),
        );
      }),
      "no markets",
    );
    const sources: HTMLTableRowElement[] = [];
    for (const m of risk.markets) {
      for (const s of m.sources) {
        sources.push(
          h(
            "tr",
            {},
            h("td", {}, m.symbol),
            h("td", {}, s.source),
            h("td", {}, s.price ?? "-"),
            h("td", {}, s.ageMs === null ? "no quote" : `${fixed(s.ageMs / 1000, 1)} s`),
            h("td", {}, s.weight),
            h("td", { class: s.used ? "up" : "down" }, s.used ? "used" : `no${s.dropped ? ` (${s.dropped})` : ""}`),
          ),
        );
      }
    }
    fillRows(byId("sources") as HTMLTableSectionElement, sources, "no market has index sources (marks are set by the admin API)");
  }

  private renderAccounts(risk: RiskAnswer): void {
    const rows: HTMLTableRowElement[] = [];
    for (const a of risk.accounts) {
      const ratio = a.worstMarginRatio === null ? null : Number(a.worstMarginRatio);
      const level = ratio === null || ratio >= 1 ? "danger" : ratio >= 0.8 ? "warn" : "";
      a.positions.forEach((p, i) => {
        rows.push(
          h(
            "tr",
            { class: level, "data-account": a.accountId },
            h("td", {}, i === 0 ? a.accountId : ""),
            h("td", {}, i === 0 ? a.name : ""),
            h("td", {}, i === 0 ? (ratio === null ? "no margin left" : pct(ratio)) : ""),
            h("td", {}, i === 0 ? a.marginBalance : ""),
            h("td", {}, i === 0 ? a.maintMargin : ""),
            h("td", {}, `${p.symbol} ${p.positionAmt} ${p.marginType}`),
            h("td", {}, p.markPrice ?? "-"),
            h("td", {}, p.liquidationPrice ?? "-"),
            h("td", {}, p.distanceToLiquidationPct === null ? "-" : `${p.distanceToLiquidationPct}%`),
          ),
        );
      });
    }
    fillRows(byId("accounts") as HTMLTableSectionElement, rows, "no account holds a position");
  }

  private renderFeed(records: Explained[]): void {
    const feed = byId("feed");
    if (records.length === 0) {
      feed.replaceChildren(h("li", { class: "empty" }, "no liquidation or ADL yet"));
      return;
    }
    const open = new Set(Array.from(feed.querySelectorAll<HTMLDetailsElement>("details[open]"), (d) => d.dataset.seq));
    feed.replaceChildren(
      ...records.map((r) => {
        const fresh = !this.seen.has(r.seq) && this.seen.size > 0;
        const adl = r.adlCounterparties.length ? `; ADL against ${r.adlCounterparties.join(", ")}` : "";
        const details = h(
          "details",
          { "data-seq": r.seq, open: open.has(String(r.seq)) },
          h("summary", {}, `${stamp(r.time)} | #${r.seq} | account ${r.accountId} | ${r.scope}${r.symbol ? ` ${r.symbol}` : ""} | ${r.outcome} | ${r.steps.join(", ")}${adl}`),
          h("pre", { class: "explain" }, r.explanation),
        );
        return h("li", { class: fresh ? "flash" : "" }, details);
      }),
    );
    for (const r of records) this.seen.add(r.seq);
  }

  private renderFund(fund: Insurance): void {
    byId("fund-cash").textContent = `${fund.cash} ${fund.asset}`;
    byId("fund-wallet").textContent = `${fund.wallet} ${fund.asset}`;
    byId("fund-equity").textContent = `${fund.equity} ${fund.asset}`;
    fillRows(
      byId("fund-positions") as HTMLTableSectionElement,
      fund.positions.map((p) => h("tr", {}, h("td", {}, p.symbol), h("td", {}, p.positionAmt), h("td", {}, p.entryPrice), h("td", {}, p.markPrice ?? "-"))),
      "none",
    );
    fillRows(
      byId("fund-history") as HTMLTableSectionElement,
      fund.history
        .slice()
        .reverse()
        .slice(0, 50)
        .map((m) => h("tr", {}, h("td", {}, stamp(m.time)), h("td", {}, m.accountId), h("td", {}, m.symbol ?? "-"), h("td", {}, m.reason), h("td", {}, m.amount), h("td", {}, m.fundCash))),
      "no movements yet",
    );
    if (this.fundChart === null) {
      this.fundChart = createChart(byId("fund-chart"), {
        autoSize: true,
        layout: { background: { type: ColorType.Solid, color: "#0f1419" }, textColor: "#c9d1d9" },
        grid: { vertLines: { color: "#1c232b" }, horzLines: { color: "#1c232b" } },
        timeScale: { timeVisible: true, secondsVisible: true },
      });
      this.fundCash = this.fundChart.addSeries(LineSeries, { color: "#f0b90b", lineWidth: 2, title: "cash", lineType: 1 });
    }
    const points = new Map<number, number>();
    for (const m of fund.history) points.set(Math.floor(m.time / 1000), Number(m.fundCash));
    points.set(Math.floor(this.lastVenueMs / 1000), Number(fund.cash));
    const data = [...points.entries()].sort((a, b) => a[0] - b[0]).map(([t, v]) => ({ time: t as UTCTimestamp, value: v }));
    this.fundCash?.setData(data);
  }

  private async markets(token: string): Promise<void> {
    const risk = await adminGet<RiskAnswer>(token, "/risk", { limit: 0 });
    const [params, audit, proposals] = await Promise.all([
      Promise.all(risk.markets.map((m) => adminGet<{ symbol: string; params: Record<string, string>; changed: Record<string, unknown> }>(token, `/markets/${m.symbol}/params`))),
      adminGet<AuditRow[]>(token, "/audit", { limit: 200 }),
      adminGet<Proposal[]>(token, "/proposals"),
    ]);
    fillRows(
      byId("proposals") as HTMLTableSectionElement,
      proposals
        .slice()
        .reverse()
        .map((p) =>
          h(
            "tr",
            { "data-proposal": p.id, class: p.state === "approved" ? "warn" : "" },
            h("td", {}, p.id),
            h("td", {}, p.symbol),
            h("td", {}, changeText(p.params)),
            h("td", { class: p.state === "applied" ? "up" : p.state === "rejected" || p.state === "expired" ? "down" : "" }, p.state),
            h("td", {}, p.proposer),
            h("td", {}, p.approver ?? "-"),
            h("td", { class: "reason" }, p.reason),
            h("td", { class: "dry-run" }, dryRunText(p)),
          ),
        ),
      "no proposals yet",
    );
    byId("params").replaceChildren(
      ...params.map((p) => {
        const mode = risk.markets.find((m) => m.symbol === p.symbol)?.mode ?? "-";
        return h(
          "table",
          { class: "num kv", "aria-label": `${p.symbol} parameters` },
          h("caption", {}, `${p.symbol} - mode ${mode}`),
          h("tbody", {}, ...Object.entries(p.params).map(([k, v]) => h("tr", { class: k in p.changed ? "warn" : "" }, h("th", { scope: "row" }, k), h("td", {}, v)))),
        );
      }),
    );
    fillRows(
      byId("audit") as HTMLTableSectionElement,
      audit
        .slice()
        .reverse()
        .map((a) =>
          a.kind === "proposal"
            ? h("tr", { class: "muted" }, h("td", {}, stamp(a.time)), h("td", {}, "-"), h("td", {}, a.operator), h("td", {}, a.symbol), h("td", {}, `proposal #${a.proposal} ${a.action}`), h("td", {}, a.detail), h("td", {}, changeText(a.params)))
            : h("tr", {}, h("td", {}, stamp(a.time)), h("td", {}, a.seq), h("td", {}, a.operator), h("td", {}, a.symbol), h("td", {}, a.param), h("td", {}, a.old), h("td", {}, a.new)),
        ),
      "no parameter changes yet",
    );
  }

  private async lab(token: string): Promise<void> {
    const answer = await adminGet<{ directory: string; runs: { name: string; scenario: string | null; modifiedMs: number; assertions: number; failed: string[]; hasReport: boolean }[] }>(token, "/risklab/runs");
    byId("runs-dir").textContent = `runs in ${answer.directory} (PERPX_RISKLAB_DIR; perpx simulate SCENARIO --out ${answer.directory}/NAME)`;
    fillRows(
      byId("runs") as HTMLTableSectionElement,
      answer.runs.map((r) => {
        const open = h("button", { type: "button", class: "small", disabled: !r.hasReport, "aria-label": `Open the report of ${r.name}` }, "Report");
        open.addEventListener("click", () => void this.report(token, r.name));
        const verdict = r.failed.length ? `${r.failed.length} of ${r.assertions} failed: ${r.failed.join(", ")}` : `${r.assertions} passed`;
        return h("tr", {}, h("td", {}, r.name), h("td", {}, r.scenario ?? "-"), h("td", {}, stamp(r.modifiedMs)), h("td", { class: r.failed.length ? "down" : "up" }, verdict), h("td", {}, open));
      }),
      "no runs in this directory",
    );
  }

  private async report(token: string, name: string): Promise<void> {
    const frame = byId<HTMLIFrameElement>("report");
    try {
      frame.srcdoc = await adminText(token, `/risklab/runs/${encodeURIComponent(name)}/report`);
    } catch (err) {
      frame.srcdoc = "";
      byId("live").textContent = err instanceof Error ? err.message : String(err);
    }
  }
}

new Console().start();
