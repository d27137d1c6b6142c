// Display arithmetic. Prices and quantities arrive as decimal strings with the market's scales; the
// page converts them to integer ticks/lots (exact) for grouping and keys, and to numbers only for
// estimates it labels as such.

export function decimals(step: string): number {
  const dot = step.indexOf(".");
  if (dot < 0) return 0;
  return step.replace(/0+$/, "").length - dot - 1;
}

/** A decimal string as whole units of `step` (rounded half away from zero). */
export function toUnits(text: string, step: string): number {
  return Math.round(Number(text) / Number(step));
}

export function fromUnits(units: number, step: string): string {
  return (units * Number(step)).toFixed(decimals(step));
}

/** A number shown with `places` decimals; "-" for null, undefined or NaN. */
export function fixed(value: number | string | null | undefined, places: number): string {
  if (value === null || value === undefined || value === "") return "-";
  const n = typeof value === "string" ? Number(value) : value;
  return Number.isFinite(n) ? n.toFixed(places) : "-";
}

export function pct(value: number | string | null | undefined, places = 2): string {
  if (value === null || value === undefined) return "-";
  const n = Number(value) * 100;
  return Number.isFinite(n) ? `${n.toFixed(places)}%` : "-";
}

export function countdown(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return "-";
  const s = Math.floor(ms / 1000);
  const two = (n: number): string => String(n).padStart(2, "0");
  return `${two(Math.floor(s / 3600))}:${two(Math.floor((s % 3600) / 60))}:${two(s % 60)}`;
}

export function clock(ms: number): string {
  return new Date(ms).toISOString().slice(11, 19);
}

export function stamp(ms: number): string {
  return new Date(ms).toISOString().replace("T", " ").slice(0, 19);
}
