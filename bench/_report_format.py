"""Cell formatting, markdown tables and target verdicts shared by the BENCHMARKS.md renderers."""

from __future__ import annotations

from typing import Any


def fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if value == 0.0:
            return "0"
        magnitude = abs(value)
        if magnitude >= 1e5 or magnitude < 1e-3:
            return f"{value:.{digits}g}"
        return f"{value:,.{digits}g}" if magnitude >= 1000 else f"{value:.{digits}g}"
    return str(value)


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def verdict(met: bool | None, document: dict[str, Any]) -> str:
    if document.get("quick"):
        return "n/a (quick run)"
    if met is None:
        return "n/a"
    return "**met**" if met else "**missed**"
