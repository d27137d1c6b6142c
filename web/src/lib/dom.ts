// Small DOM helpers. Text from the venue is only ever set as textContent, never parsed as HTML.

type Child = Node | string | number | null | undefined | false;
type Attrs = Record<string, string | number | boolean | EventListener | undefined>;

export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Attrs = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2), value as EventListener);
    } else if (value === true) {
      el.setAttribute(key, "");
    } else {
      el.setAttribute(key, String(value));
    }
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

export function byId<T extends HTMLElement = HTMLElement>(id: string): T {
  const el = document.getElementById(id);
  if (el === null) throw new Error(`missing element #${id}`);
  return el as T;
}

/** Replace the rows of a table body; an empty list shows one row saying so. */
export function fillRows(body: HTMLTableSectionElement, rows: HTMLTableRowElement[], empty: string): void {
  if (rows.length === 0) {
    const cols = body.parentElement?.querySelectorAll("thead th").length ?? 1;
    body.replaceChildren(h("tr", {}, h("td", { colspan: cols, class: "empty" }, empty)));
  } else {
    body.replaceChildren(...rows);
  }
}

/** Tabs with the ARIA tab pattern: arrow keys move between tabs, Enter/Space or click selects. */
export function tabs(list: HTMLElement, onSelect?: (panelId: string) => void): void {
  const buttons = Array.from(list.querySelectorAll<HTMLButtonElement>("[role=tab]"));
  const select = (button: HTMLButtonElement, focus: boolean): void => {
    for (const b of buttons) {
      const on = b === button;
      b.setAttribute("aria-selected", String(on));
      b.tabIndex = on ? 0 : -1;
      const panel = document.getElementById(b.getAttribute("aria-controls") ?? "");
      if (panel) panel.hidden = !on;
    }
    if (focus) button.focus();
    onSelect?.(button.getAttribute("aria-controls") ?? "");
  };
  buttons.forEach((button, i) => {
    button.addEventListener("click", () => select(button, false));
    button.addEventListener("keydown", (e) => {
      const step = e.key === "ArrowRight" ? 1 : e.key === "ArrowLeft" ? -1 : 0;
      if (step !== 0) {
        e.preventDefault();
        select(buttons[(i + step + buttons.length) % buttons.length], true);
      }
    });
  });
  const first = buttons.find((b) => b.getAttribute("aria-selected") === "true") ?? buttons[0];
  if (first) select(first, false);
}
