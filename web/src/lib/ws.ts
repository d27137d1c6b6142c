// A WebSocket that reconnects (1 s, doubling to 30 s) and says whether it is live.

export class Stream {
  private socket: WebSocket | null = null;
  private retryMs = 1000;
  private closed = false;
  private timer: number | undefined;

  constructor(
    private readonly url: string,
    private readonly onMessage: (data: unknown) => void,
    private readonly onState: (live: boolean) => void = () => undefined,
    private readonly onOpen: () => void = () => undefined,
  ) {
    this.connect();
  }

  private connect(): void {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const socket = new WebSocket(`${scheme}//${location.host}${this.url}`);
    this.socket = socket;
    socket.onopen = () => {
      this.retryMs = 1000;
      this.onState(true);
      this.onOpen();
    };
    socket.onmessage = (event) => {
      try {
        this.onMessage(JSON.parse(String(event.data)));
      } catch {
        // A frame that is not JSON is not ours to show; the next one will be.
      }
    };
    socket.onclose = () => {
      this.onState(false);
      if (this.closed) return;
      this.timer = window.setTimeout(() => this.connect(), this.retryMs);
      this.retryMs = Math.min(this.retryMs * 2, 30000);
    };
  }

  close(): void {
    this.closed = true;
    window.clearTimeout(this.timer);
    this.socket?.close();
  }
}
