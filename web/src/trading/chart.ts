// Candles from /fapi/v1/klines and the kline stream, with the mark and index drawn as lines: their
// history from /fapi/v1/markPriceKlines and /fapi/v1/indexPriceKlines (each candle's close), then
// each markPrice update sets the line's point for the candle it falls in.

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

  constructor(private el: HTMLElement) {
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
    const interval = this.interval;
    const [rows, marks, indexes] = await Promise.all([
      publicGet<Kline[]>("/fapi/v1/klines", { symbol, interval, limit: 500 }),
      publicGet<Kline[]>("/fapi/v1/markPriceKlines", { symbol, interval, limit: 500 }),
      publicGet<Kline[]>("/fapi/v1/indexPriceKlines", { pair: symbol, interval, limit: 500 }),
    ]);
    this.candles.setData(
      rows.map((k) => ({ time: (k[0] / 1000) as UTCTimestamp, open: +k[1], high: +k[2], low: +k[3], close: +k[4] })),
    );
    const line = (klines: Kline[]) => klines.filter((k) => Number(k[4]) > 0).map((k) => ({ time: (k[0] / 1000) as UTCTimestamp, value: +k[4] }));
    const markLine = line(marks);
    const indexLine = line(indexes);
    this.mark.setData(markLine);
    this.index.setData(indexLine);
    this.el.dataset.markPoints = String(markLine.length);
    this.el.dataset.indexPoints = String(indexLine.length);
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
    for (const [series, value] of [
      [this.mark, Number(mark)],
      [this.index, Number(index)],
    ] as const) {
      const last = series.data().at(-1);
      if (value > 0 && (last === undefined || (last.time as number) <= time)) series.update({ time, value });
    }
  }
}
