// A market as exchangeInfo describes it, with the scales the page converts with.

export interface Market {
  symbol: string;
  baseAsset: string;
  quoteAsset: string;
  tickSize: string;
  stepSize: string;
  minNotional: number;
  status: string;
}

interface Filter {
  filterType: string;
  tickSize?: string;
  stepSize?: string;
  notional?: string;
}

export interface SymbolInfo {
  symbol: string;
  baseAsset: string;
  quoteAsset: string;
  status: string;
  filters: Filter[];
}

export function marketOf(info: SymbolInfo): Market {
  const filter = (type: string): Filter | undefined => info.filters.find((f) => f.filterType === type);
  return {
    symbol: info.symbol,
    baseAsset: info.baseAsset,
    quoteAsset: info.quoteAsset,
    tickSize: filter("PRICE_FILTER")?.tickSize ?? "0.01",
    stepSize: filter("LOT_SIZE")?.stepSize ?? "0.001",
    minNotional: Number(filter("MIN_NOTIONAL")?.notional ?? 0),
    status: info.status,
  };
}
