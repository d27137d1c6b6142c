// Candles from /fapi/v1/klines and the kline stream, with the mark and index drawn as lines.
// The venue has no mark/index price klines yet, so the lines start when the page opens: each
// markPrice update sets the line's point for the candle it falls in (one point per candle, so the
// time scale stays the candles').

import {
  CandlestickSeries,
  ColorType,
  createChart,
  type IChartApi,
  type ISeriesApi,
  LineSeries,
  type UTCTimestamp,
} from "lightweight-charts";
import { publicGet } from "../lib/api";
import { decimals } from "../lib/num";

type Kline = [number, string, string, string, string, string, number, string, number, string, string, string];

const INTERVAL_S: Record<string, number> = { "1m": 60, "5m": 300, "15m": 900, "1h": 3600 };

export interface KlineEvent {
  k: { t: number; o: string; h: string; l: string; c: string; i: string };
}

export class PriceChart {
  private chart: IChartApi;
  private candles: ISeriesApi<"Candlestick">;
  private mark: ISeriesApi<"Line">;
  private index: ISeriesApi<"Line">;
  interval = "1m";

  constructor(el: HTMLElement) {
    this.chart = createChart(el, {
      autoSize: true,
      layout: { background: { type: ColorType.Solid, color: "#0f1419" }, textColor: "#c9d1d9", fontSize: 12 },
      grid: { vertLines: { color: "#1c232b" }, horzLines: { color: "#1c232b" } },
      timeScale: { timeVisible: true, secondsVisible: false, borderColor: "#2b3540" },
      rightPriceScale: { borderColor: "#2b3540" },
      crosshair: { mode: 0 },
    });
    this.candles = this.chart.addSeries(CandlestickSeries, {
      upColor: "#2ebd85",
      downColor: "#f6465d",
      wickUpColor: "#2ebd85",
      wickDownColor: "#f6465d",
      borderVisible: false,
    });
    this.mark = this.chart.addSeries(LineSeries, { color: "#f0b90b", lineWidth: 2, priceLineVisible: false, title: "mark" });
    this.index = this.chart.addSeries(LineSeries, { color: "#58a6ff", lineWidth: 1, lineStyle: 2, priceLineVisible: false, title: "index" });
  }

  async load(symbol: string, tickSize: string): Promise<void> {
    const precision = decimals(tickSize);
    const format = { type: "price" as const, precision, minMove: Number(tickSize) };
    for (const s of [this.candles, this.mark, this.index]) s.applyOptions({ priceFormat: format });
    const rows = await publicGet<Kline[]>("/fapi/v1/klines", { symbol, interval: this.interval, limit: 500 });
    this.candles.setData(
      rows.map((k) => ({ time: (k[0] / 1000) as UTCTimestamp, open: +k[1], high: +k[2], low: +k[3], close: +k[4] })),
    );
    this.mark.setData([]);
    this.index.setData([]);
    this.chart.timeScale().scrollToRealTime();
  }

  onKline(event: KlineEvent): void {
    const k = event.k;
    if (k.i !== this.interval) return;
    this.candles.update({ time: (k.t / 1000) as UTCTimestamp, open: +k.o, high: +k.h, low: +k.l, close: +k.c });
  }

  onMark(timeMs: number, mark: string, index: string): void {
    const step = INTERVAL_S[this.interval] ?? 60;
    const time = (Math.floor(timeMs / 1000 / step) * step) as UTCTimestamp;
    const last = this.candles.data().at(-1);
    if (last === undefined || (last.time as number) < time) return;
    if (Number(mark) > 0) this.mark.update({ time, value: Number(mark) });
    if (Number(index) > 0) this.index.update({ time, value: Number(index) });
  }
}
