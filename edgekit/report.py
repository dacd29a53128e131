"""Terminal rendering of result dicts (data first, rendering second: these only read them)."""

from __future__ import annotations


def _size(n: int | None) -> str:
    if n is None:
        return "?"
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def _num(v, fmt=".3g") -> str:
    return "—" if v is None else format(v, fmt)


def print_warnings(con, result: dict) -> None:
    for w in result.get("warnings", []):
        con.print(f"[yellow]warning:[/] {w}")


def print_convert(con, result: dict) -> None:
    from rich.table import Table

    print_warnings(con, result)
    q = result.get("quantization", {})
    ratio = ""
    if result.get("source_size_bytes"):
        ratio = f" ({result['size_bytes'] / result['source_size_bytes']:.2f}× the source)"
    con.print(f"[bold]{result['artifact']}[/] {result['format']} · {result['recipe']} · "
              f"{_size(result['size_bytes'])}{ratio}")
    if q.get("weights_by_dtype"):
        w = ", ".join(f"{k} {v}" for k, v in sorted(q["weights_by_dtype"].items()))
        o = ", ".join(f"{k} {v}" for k, v in sorted(q.get("ops_by_dtype", {}).items()))
        con.print(f"  weights by dtype: {w} · ops by dtype: {o}")
    d = result.get("delegation")
    if d:
        con.print(f"  delegated: {d['delegated_ops']}/{d['total_ops']} ops"
                  + (f" · on portable kernels: {', '.join(d['not_delegated'])}" if d.get("not_delegated") else ""))
    print_parity(con, result.get("parity"))


def print_parity(con, parity: dict | None) -> None:
    from rich.table import Table

    if not parity:
        return
    t = Table(title=f"parity · {parity['samples']} samples · preset {parity['precision']}", title_justify="left")
    for col in ("output", "max abs", "mean abs", "cosine", "PSNR dB", "top-1", "verdict"):
        t.add_column(col, justify="right" if col not in ("output", "verdict") else "left")
    for o in parity["outputs"]:
        verdict = "[green]pass[/]" if o["passed"] else "[red]FAIL[/] " + "; ".join(o["failures"])
        t.add_row(o["name"], _num(o["max_abs"]), _num(o["mean_abs"]), _num(o["cosine"], ".6f"),
                  _num(o["psnr_db"], ".1f"), _num(o.get("top1_agreement"), ".3f"), verdict)
    con.print(t)
    acc = parity.get("accuracy")
    if acc:
        con.print(f"  accuracy on labels: reference {acc['reference']:.4f} · candidate {acc['candidate']:.4f} · "
                  f"delta {100 * acc['delta']:+.2f} points" + (f" [red]{acc['failure']}[/]" if acc.get("failure") else ""))
    for n in parity.get("notes", []):
        con.print(f"  [yellow]{n}[/]")
    con.print("[green]parity passed[/]" if parity["passed"] else "[red]parity FAILED[/]")
