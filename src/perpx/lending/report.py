"""The lending report's files: ``lending.json`` (the book as data) and ``lending.html`` (one page, no scripts)."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

from perpx.lending.book import LoanBook

REPORT_JSON = "lending.json"
REPORT_HTML = "lending.html"


def write_report(book: LoanBook, out: Path) -> tuple[Path, Path]:
    """Write both files into ``out`` (created if missing); return their paths."""
    out.mkdir(parents=True, exist_ok=True)
    data = book.to_json()
    json_path = out / REPORT_JSON
    json_path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    html_path = out / REPORT_HTML
    html_path.write_text(render_html(data), encoding="utf-8")
    return json_path, html_path


def _table(title: str, header: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    empty = "" if rows else f'<tr><td colspan="{len(header)}">none</td></tr>'
    return f"<h2>{html.escape(title)}</h2><table><thead><tr>{head}</tr></thead><tbody>{body}{empty}</tbody></table>"


def render_html(data: dict[str, Any]) -> str:
    """The report page of :meth:`LoanBook.to_json` data."""
    liquidations = data["liquidations"]
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>Loan book - {html.escape(data['venue'])}</title>",
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;margin-bottom:1.5em}"
        "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}th{background:#f4f4f4}</style>",
        "</head><body>",
        f"<h1>Loan book of {html.escape(data['venue'])}</h1>",
        f"<p>{data['openLoans']} open loans; {data['marginCalls']} margin calls and {liquidations['count']}"
        f" liquidations so far; penalties worth {html.escape(liquidations['penaltyValue'])} at the index.</p>",
    ]
    if data["staleCollateralIndexes"]:
        parts.append(
            f"<p><strong>Stale collateral index: {html.escape(', '.join(data['staleCollateralIndexes']))}</strong>"
            " (no new loans and no liquidation on it until it is fresh).</p>"
        )
    parts.append(
        _table(
            "Outstanding by loan asset",
            ["asset", "loans", "principal", "unpaid interest", "debt"],
            [
                [a, r["loans"], r["principal"], r["interest"], r["debt"]]
                for a, r in data["outstanding"].items()
            ],
        )
    )
    parts.append(
        _table("Collateral held", ["asset", "amount"], [[a, v] for a, v in data["collateral"].items()])
    )
    parts.append(
        _table(
            "LTV distribution (open loans)",
            ["LTV", "loans"],
            [[k, v] for k, v in data["ltvDistribution"].items()],
        )
    )
    assets = sorted(set(data["borrowed"]) | set(data["interestIncome"]) | set(data["badDebt"]))
    parts.append(
        _table(
            "Flows by loan asset",
            ["asset", "borrowed", "repaid", "interest income", "bad debt"],
            [
                [
                    a,
                    data["borrowed"].get(a, "0"),
                    data["repaid"].get(a, "0"),
                    data["interestIncome"].get(a, "0"),
                    data["badDebt"].get(a, "0"),
                ]
                for a in assets
            ],
        )
    )
    parts.append(
        _table(
            "Liquidations",
            [
                "time (ns)",
                "loan",
                "account",
                "index",
                "LTV before",
                "steps",
                "debt repaid",
                "collateral sold",
                "penalty",
                "bad debt",
            ],
            [
                [
                    r["timeNs"],
                    r["loanId"],
                    r["accountId"],
                    r["indexPrice"],
                    r["ltvBefore"],
                    r["steps"],
                    r["debtRepaid"],
                    r["collateralSeized"],
                    r["penaltyValue"],
                    r["badDebt"],
                ]
                for r in liquidations["rows"]
            ],
        )
    )
    parts.append("</body></html>\n")
    return "".join(parts)
