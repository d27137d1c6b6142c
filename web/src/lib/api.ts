// REST calls as any API client makes them: public GETs, and signed requests (Binance's HMAC-SHA256 of
// the query string, keyed by the secret, computed with WebCrypto in the browser). The key and secret
// live in sessionStorage only: they go when the tab closes, and are never sent anywhere but here.

export class VenueError extends Error {
  constructor(
    readonly status: number,
    readonly code: number | null,
    readonly venueMsg: string,
  ) {
    super(code === null ? venueMsg : `${code} ${venueMsg}`);
  }
}

export type Params = Record<string, string | number | boolean | undefined>;

export function query(params: Params): string {
  const parts: string[] = [];
  for (const [key, value] of Object.entries(params)) {
    if (value === undefined || value === "") continue;
    parts.push(`${encodeURIComponent(key)}=${encodeURIComponent(String(value))}`);
  }
  return parts.join("&");
}

async function answer<T>(response: Response): Promise<T> {
  const text = await response.text();
  let body: unknown = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    body = null;
  }
  if (!response.ok) {
    const err = body as { code?: number; msg?: string } | null;
    if (err && typeof err.msg === "string") throw new VenueError(response.status, err.code ?? null, err.msg);
    throw new VenueError(response.status, null, `HTTP ${response.status}: ${text.slice(0, 200) || response.statusText}`);
  }
  return body as T;
}

export async function publicGet<T>(path: string, params: Params = {}): Promise<T> {
  const q = query(params);
  return answer<T>(await fetch(q ? `${path}?${q}` : path));
}

const KEY_ITEM = "perpx.apiKey";
const SECRET_ITEM = "perpx.apiSecret";

export interface Credentials {
  apiKey: string;
  secret: string;
}

export function savedCredentials(): Credentials | null {
  const apiKey = sessionStorage.getItem(KEY_ITEM);
  const secret = sessionStorage.getItem(SECRET_ITEM);
  return apiKey && secret ? { apiKey, secret } : null;
}

export function saveCredentials(c: Credentials | null): void {
  if (c === null) {
    sessionStorage.removeItem(KEY_ITEM);
    sessionStorage.removeItem(SECRET_ITEM);
  } else {
    sessionStorage.setItem(KEY_ITEM, c.apiKey);
    sessionStorage.setItem(SECRET_ITEM, c.secret);
  }
}

function hex(bytes: ArrayBuffer): string {
  return Array.from(new Uint8Array(bytes), (b) => b.toString(16).padStart(2, "0")).join("");
}

export class SignedClient {
  private key: CryptoKey | null = null;
  /** Venue clock minus this browser's clock (ms), so `timestamp` is inside recvWindow. */
  private offsetMs = 0;

  constructor(readonly credentials: Credentials) {}

  static available(): boolean {
    return typeof crypto !== "undefined" && crypto.subtle !== undefined;
  }

  async init(): Promise<void> {
    if (!SignedClient.available()) {
      throw new VenueError(0, null, "This page cannot sign requests: WebCrypto needs a secure context (https, or http on localhost / 127.0.0.1).");
    }
    const raw = new TextEncoder().encode(this.credentials.secret);
    this.key = await crypto.subtle.importKey("raw", raw, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
    const before = Date.now();
    const time = await publicGet<{ serverTime: number }>("/fapi/v1/time");
    this.offsetMs = time.serverTime - Math.round((before + Date.now()) / 2);
  }

  async signature(payload: string): Promise<string> {
    if (this.key === null) await this.init();
    const mac = await crypto.subtle.sign("HMAC", this.key as CryptoKey, new TextEncoder().encode(payload));
    return hex(mac);
  }

  /** A signed request: every parameter in the query string, `timestamp` added, `signature` last. */
  async call<T>(method: string, path: string, params: Params = {}): Promise<T> {
    const q = query({ ...params, recvWindow: 10000, timestamp: Date.now() + this.offsetMs });
    const sig = await this.signature(q);
    const response = await fetch(`${path}?${q}&signature=${sig}`, {
      method,
      headers: { "X-MBX-APIKEY": this.credentials.apiKey },
    });
    return answer<T>(response);
  }

  /** A key-only request (the listenKey routes take the key and no signature). */
  async keyed<T>(method: string, path: string): Promise<T> {
    return answer<T>(await fetch(path, { method, headers: { "X-MBX-APIKEY": this.credentials.apiKey } }));
  }
}

/** Admin API calls: the token in X-PERPX-ADMIN, kept in sessionStorage only. */
const TOKEN_ITEM = "perpx.adminToken";

export function savedToken(): string | null {
  return sessionStorage.getItem(TOKEN_ITEM);
}

export function saveToken(token: string | null): void {
  if (token === null) sessionStorage.removeItem(TOKEN_ITEM);
  else sessionStorage.setItem(TOKEN_ITEM, token);
}

export async function adminGet<T>(token: string, path: string, params: Params = {}): Promise<T> {
  const q = query(params);
  return answer<T>(await fetch(`/admin/v1${path}${q ? `?${q}` : ""}`, { headers: { "X-PERPX-ADMIN": token } }));
}

export async function adminText(token: string, path: string): Promise<string> {
  const response = await fetch(`/admin/v1${path}`, { headers: { "X-PERPX-ADMIN": token } });
  if (!response.ok) await answer<unknown>(response);
  return response.text();
}
