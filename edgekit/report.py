"""Terminal rendering of result dicts (data first, rendering second: these only read them)."""

from __future__ import annotations

from .units import format_bytes, format_mib, format_ms, format_share, format_value


def _size(n: int | None) -> str:
    return "?" if n is None else format_bytes(n)


def _num(v, fmt=".3g") -> str:
    return "—" if v is None else format(v, fmt)


def print_warnings(con, result: dict) -> None:
    """Print RESULT's `warnings` (any result dict) as yellow lines on the rich console CON."""
    for w in result.get("warnings", []):
        con.print(f"[yellow]warning:[/] {w}")


def print_convert(con, result: dict) -> None:
    """Render a `convert` result ($defs/convert of report.schema.json) on CON: the artifact line, what
    was quantized, delegation coverage, the parity table and the warnings."""
    print_warnings(con, result)
    q = result.get("quantization", {})
    ratio = ""
    if result.get("source_size_bytes"):
        ratio = f" ({result['size_bytes'] / result['source_size_bytes']:.2f}× the source)"
    con.print(f"[bold]{result['artifact']}[/] {result['format']} · {result['recipe']} · "
              f"{_size(result['size_bytes'])}{ratio}")
    if q.get("weights_by_dtype"):
        w = ", ".join(f"{k} {v}" for k, v in sorted(q["weights_by_dtype"].items()))
        o = ", ".join(f"{k} {v}" for k, v in sorted((q.get("ops_by_dtype") or {}).items()))
        con.print(f"  weights by dtype: {w}" + (f" · ops by dtype: {o}" if o else ""))
    d = result.get("delegation")
    if d:
        con.print(f"  delegated: {d['delegated_ops']}/{d['total_ops']} ops"
                  + (f" · outside the delegate: {', '.join(d['not_delegated'])}" if d.get("not_delegated") else ""))
    print_parity(con, result.get("parity"))


def print_parity(con, parity: dict | None) -> None:
    """Render a parity result ($defs/parity) on CON: one row per output (max/mean abs, cosine, PSNR in
    dB, top-1 agreement, verdict), the accuracy line when labels were given, and the notes; nothing
    for None (parity not checked)."""
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


def print_validate(con, result: dict) -> None:
    """`edgekit validate`: the parity table, then (with --per-layer) the layers in topological
    order with the first divergent one highlighted, and the five worst."""
    from rich.table import Table

    print_warnings(con, result)
    ref, cand = result["reference"], result["candidate"]
    con.print(f"[bold]{cand['artifact']}[/] ({cand['format']}, {cand['precision']}) vs "
              f"[bold]{ref['origin']}[/] ({ref.get('framework') or ref.get('format')}) · "
              f"{result['data']['samples']} samples from {result['data']['source']}")
    moved = {k: v for k, v in result.get("matching", {}).get("outputs", {}).items()
             if v["by"] != "name" or v["candidate"] != k}
    for name, m in moved.items():
        con.print(f"  output {name} ↔ candidate {m['candidate']} (matched by {m['by']})")
    if "layers" in result:
        first = result.get("first_divergence") or {}
        t = Table(title=f"per layer · {result['per_layer_samples']} samples", title_justify="left")
        # where each row was observed (a .pte: "pte" itself or its "portable twin"), as the JSON says
        seen_in = any(row.get("observed", "pte") != "pte" for row in result["layers"])
        for col in ("#", "layer", "op", "shape", "PSNR dB", "cosine", "max abs", *(("observed in",) if seen_in else ()), ""):
            t.add_column(col, justify="right" if col in ("#", "PSNR dB", "cosine", "max abs") else "left")
        for row in result["layers"]:
            is_first = first.get("index") == row["index"]
            mark = "[bold red]← first divergence[/]" if is_first else ("[red]diverged[/]" if row["diverged"] else "")
            t.add_row(str(row["index"]), row["layer"], row["op_type"], "x".join(map(str, row["shape"])),
                      _num(row["psnr_db"], ".1f"), _num(row["cosine"], ".6f"), _num(row["max_abs"]),
                      *((row.get("observed", "pte"),) if seen_in else ()), mark,
                      style="bold" if is_first else None)
        con.print(t)
        print_not_observable(con, result)
        con.print("  worst layers: " + ", ".join(result.get("worst_layers", [])))
        if first:
            con.print(f"  [bold red]first divergence: {first['layer']}[/] ({first['op_type']}): {first['reason']}")
        else:
            con.print("  [green]no layer crosses the thresholds[/]")
    print_parity(con, result.get("parity"))


def print_not_observable(con, result: dict) -> None:
    """The layers of a per-layer RESULT that could not be compared and why, as its JSON says
    (`not_observable`: layer or tensor, op_type, reason), grouped by reason; and, for a .pte, the
    delegates and the portable twin the rows marked "portable twin" come from."""
    from rich.markup import escape

    missing = result.get("not_observable") or []
    if missing:
        con.print(f"  {len(missing)} layer(s) not observable in the candidate:")
        by_reason: dict[str, list[str]] = {}
        for u in missing:
            by_reason.setdefault(u.get("reason") or "no reason recorded", []).append(
                f"{u.get('layer') or u.get('tensor')} ({u.get('op_type')})" if u.get("op_type") else
                str(u.get("layer") or u.get("tensor")))
        for reason, names in by_reason.items():
            con.print(f"    {escape(', '.join(names))}: {escape(reason)}")
    et = result.get("executorch") or {}
    for d in et.get("delegates") or []:
        con.print(f"  {d.get('backend')} delegate of {len(d.get('ops') or [])} op(s): "
                  f"{escape(', '.join(d.get('modules') or [])) or 'no module of the reference'}")
    if et.get("portable_twin"):
        con.print(f"  portable twin: {escape(str(et['portable_twin']))}")


def print_run(con, report: dict) -> None:
    """Render an `edgekit run` report ($defs/run) on CON: one row per build (size, parity, p90
    latency per target, budgets, verdict), in the file's build order."""
    from rich.table import Table

    from .report_files import budget_gap

    t = Table(title=f"edgekit run · {report['model']}", title_justify="left")
    # Names, formats and recipes tell the rows apart: never truncate them on an 80-column CI log.
    for col, key in (("build", "name"), ("format", "to"), ("recipe", "quantize")):
        widest = max([len(col)] + [len(str(b["name"] if key == "name" else b["options"][key])) for b in report["builds"]])
        t.add_column(col, no_wrap=True, min_width=widest)
    for col in ("size", "parity", "p90 latency", "budgets", "verdict"):
        t.add_column(col)
    for b in report["builds"]:
        c = b.get("convert") or {}
        par = c.get("parity") or {}
        lat = ", ".join(f"{p['target']}: {format_ms(p['latency_ms']['p90'])}" for p in b["profiles"] if "latency_ms" in p)
        failed = [v for v in b["budgets"] if not v["passed"]]
        budget_txt = "all hold" if not failed else "; ".join(
            f"{v['budget']}{'@' + v['target'] if v.get('target') else ''} "
            + ("not measured" if v["value"] is None else
               f"{format_value(v['value'], v.get('unit', ''))} vs {format_value(v['limit'], v.get('unit', ''))} "
               f"({budget_gap(v)})")
            for v in failed)
        verdict = ("[red]build failed[/]" if b["status"] == "failed" else
                   ("[green]pass[/]" if b.get("passed") else "[red]FAIL[/]") + (" (cached)" if b["status"] == "cached" else ""))
        t.add_row(b["name"], b["options"]["to"], b["options"]["quantize"],
                  _size(c.get("size_bytes")) if c else "—",
                  "—" if not par else ("pass" if par["passed"] else "FAIL"), lat or "—",
                  budget_txt if b["budgets"] else "—", verdict)
    con.print(t)
    for b in report["builds"]:
        if b.get("error"):
            con.print(f"[red]{b['name']}:[/] {b['error']['message']}\n  {b['error'].get('hint') or ''}")
        for n in b.get("notes", []):
            con.print(f"[yellow]{b['name']}:[/] {n}")
    con.print(f"reports: {report['out']}/report.json · report.md · report.html")


def ops_rows(result: dict) -> list[dict]:
    """The per-operator-type rows of a profile RESULT as the reports show them: {type, count,
    share (0..1), share_text, scaled_ms, scaled_text}, largest first; [] without operator times.

    The operator times come from separately instrumented runs (ExecuTorch's ETDump, onnxruntime's
    profiler), whose tracing makes each operator slower than in the timed runs: only their
    shares are carried over, as `scaled_ms` = share × the measured p50 (so the rows sum to the
    p50 shown beside them; without a p50, scaled_ms is None)."""
    ops = result.get("ops")
    by_type = ops.get("by_type") if isinstance(ops, dict) else None
    if not by_type:
        return []
    p50 = (result.get("latency_ms") or {}).get("p50")
    p50 = p50 if isinstance(p50, (int, float)) and not isinstance(p50, bool) else None
    rows = []
    for t in by_type:
        share = t.get("share") if isinstance(t.get("share"), (int, float)) else None
        scaled = None if share is None or p50 is None else share * p50
        rows.append({"type": t.get("type"), "count": t.get("count"), "share": share, "share_text": format_share(share),
                     "scaled_ms": scaled, "scaled_text": format_ms(scaled)})
    return rows


def print_profile(con, result: dict) -> None:
    """`edgekit profile`: one line per measurement, delegation, top operators, the machine."""
    from rich.table import Table

    print_warnings(con, result)
    lat, dev = result["latency_ms"], result["device"]
    emu = " [bold yellow](EMULATED: not device speed)[/]" if result.get("emulated") else ""
    con.print(f"[bold]{result['artifact']}[/] {result['format']} · {_size(result['size_bytes'])} · "
              f"{result['runtime']['name']} {result['runtime'].get('version') or ''} on "
              f"[bold]{result['target']}[/]{emu}")
    t = Table(title=f"latency · {result['runs']} runs after {result['warmup']} warm-up · {result['threads']} thread(s)",
              title_justify="left")
    for col in ("min", "p50", "p90", "p99", "mean", "std", "max"):
        t.add_column(col, justify="right")
    # benchmark_model reports no p90/p99 and init/first inference only sometimes: "—", not a crash
    t.add_row(*(format_ms(lat.get(k), 4) for k in ("min", "p50", "p90", "p99", "mean", "std", "max")))
    con.print(t)
    con.print(f"  init {format_ms(result.get('init_ms'), 4)} · first inference "
              f"{format_ms(result.get('first_inference_ms'), 4)} · "
              f"peak RSS {format_mib(result['peak_rss_mb'])}")
    d = result.get("delegation")
    if d and "total_ops" in d:
        con.print(f"  {d.get('backend', 'delegate')}: {d['delegated_ops']}/{d['total_ops']} ops delegated"
                  + (f" · on reference kernels: {', '.join(d['not_delegated'])}" if d.get("not_delegated") else ""))
    elif d and "delegated_kernels" in d:
        con.print(f"  {d.get('backend', 'delegate')}: {d['delegated_kernels']} delegated kernel(s) in "
                  f"{d['delegate_calls']} call(s), {d['portable_ops']} portable op(s)"
                  + (f": {', '.join(d['not_delegated'])}" if d.get("not_delegated") else ""))
    rows = ops_rows(result)
    if rows:
        ops = result["ops"]
        runs = f"{ops['runs']} " if ops.get("runs") else ""
        t = Table(title=f"time by operator type · as shares of the measured p50 {format_ms(lat.get('p50'))}",
                  title_justify="left")
        for col in ("operator", "count", "share", "≈ of p50"):
            t.add_column(col, justify="left" if col == "operator" else "right")
        for row in rows[:10]:
            t.add_row(row["type"], str(row["count"]), row["share_text"], row["scaled_text"])
        con.print(t)
        con.print(f"  shares from {runs}separately instrumented runs ({format_ms(ops.get('per_run_ms'))} per run "
                  "there: tracing slows each operator), scaled to the measured p50")
    parts = (dev.get("cpu"), dev.get("cores") and f"{dev['cores']} cores", dev.get("os"), dev.get("machine"),
             dev.get("python") and f"Python {dev['python']}")
    con.print("  device: " + (" · ".join(str(p) for p in parts if p) or "not described"))
    cmp = result.get("comparison")
    if cmp:
        from rich.markup import escape

        style = {"faster": "green", "slower": "bold red"}.get(cmp.get("verdict"), "bold")
        con.print(f"[{style}]{escape(cmp['statement'])}[/]")


def print_device_check(con, result: dict) -> None:
    """Render a `devices check` result on CON: reachability, the device description, and per format
    whether its runtime is available, with the install line for what is missing."""
    dev = result["device"]
    emu = " (emulated)" if result.get("emulated") else ""
    con.print(f"[bold]{result['target']}[/]{emu}: reachable · {dev.get('machine')} · {dev.get('cpu')} · "
              f"{dev.get('cores')} cores · {dev.get('os')} · Python {dev.get('python')} ({result['python']})")
    con.print(f"  numpy: {result['numpy'] or '[red]missing[/]'}")
    for fmt, f in result["formats"].items():
        state = f"[green]{f['module']}[/]" if f["available"] else "[red]missing[/]"
        con.print(f"  {fmt}: {state}" + ("" if f["available"] else f" · install: {f['install']}"))


def print_build_state(con, name: str, state: str) -> None:
    """`edgekit run`, as each build ends: "  NAME: built|cached|failed" (nothing at "start")."""
    status = {"built": "[green]built[/]", "cached": "[cyan]cached[/]", "failed": "[red]failed[/]"}
    if state != "start":
        con.print(f"  {name}: {status.get(state, state)}")


def print_inspect_edgetpu(con, result: dict, model: str) -> None:
    """`edgekit inspect MODEL --edgetpu`: ops and their predicted Edge TPU status, model issues,
    where the compiler cuts the graph, risks, and the predicted share on the TPU.

    Args:
        result: edgekit.edgetpu_compat.analyze's dict (table, model_issues, cut, risks,
            predicted_tpu_ops, total_ops, predicted_tpu_share in 0..1, already_compiled).
        model: the path as the user gave it (the table's title).
    """
    from rich.markup import escape
    from rich.table import Table

    t = Table(title=f"Edge TPU prediction · {model}", title_justify="left")
    for col in ("op", "count", "predicted status"):
        t.add_column(col, justify="right" if col == "count" else "left")
    for row in result["table"]:
        style = "green" if row["status"] == "Mapped to Edge TPU" else "yellow"
        t.add_row(row["op"], str(row["count"]), f"[{style}]{row['status']}[/]")
    con.print(t)
    for issue in result["model_issues"]:
        con.print(f"[yellow]{issue}[/]")
    if result["cut"]:
        c = result["cut"]
        con.print(f"[yellow]The compiler will cut the graph at op {c['index']} ({c['op']}: {c['reason']}); "
                  f"{c['ops_after_on_cpu']} op(s) after it run on the CPU.[/]")
    for r in result["risks"]:
        con.print(f"  risk: {escape(r)}")
    con.print(f"predicted on the Edge TPU: {result['predicted_tpu_ops']}/{result['total_ops']} ops "
              f"({100 * result['predicted_tpu_share']:.0f}%)" + (" · already compiled" if result["already_compiled"] else ""))


def print_adb_devices(con, result: dict) -> None:
    """`edgekit devices adb`: one row per device of result["devices"] (target, state, model,
    abi, android, soc; missing values blank), or a line saying none is attached."""
    from rich.table import Table

    devs = result["devices"]
    t = Table(title="adb devices", title_justify="left")
    for col in ("target", "state", "model", "abi", "android", "soc"):
        t.add_column(col)
    for d in devs:
        t.add_row(d["target"], d["state"], *(str(d.get(k) or "") for k in ("model", "abi", "android", "soc")))
    con.print(t if devs else "no Android device attached (adb devices -l)")


def print_adb_clean(con, result: dict) -> None:
    """`edgekit devices adb --clean SERIAL`: how many edgekit folders were removed."""
    con.print(f"removed {result['removed']} edgekit folder(s) on {result['serial']}")


def print_emulator(con, result: dict, kind: str, dest: str | None) -> None:
    """`edgekit emulator create`: found or built, where, which runtimes, and the --target to use
    (with ":PATH" when DEST, the user's --dir, was given)."""
    where = result["path"]
    con.print(f"[green]{'found' if result['cached'] else 'built'}[/] {kind} at {where} "
              f"({', '.join(result['runtimes'])}); use --target qemu-arm64"
              + ("" if dest is None else f":{where}"))
