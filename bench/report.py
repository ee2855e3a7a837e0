"""Aggregates the repeated runs, checks the targets, prints the table, writes the JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench.common import summary


def aggregate(
    runs: list[dict[str, Any]], ceilings: dict[str, float] | None
) -> dict[str, Any]:
    """Median and spread of the rate and of every latency; ratios to the raw ceilings."""
    out: dict[str, Any] = {"runs": runs, "rate": summary([r["rate"] for r in runs])}
    for key in ("p50_ms", "p99_ms", "seconds"):
        if all(key in r for r in runs):
            out[key] = summary([r[key] for r in runs])
    if runs and all("paced" in r for r in runs):
        out["paced_rate"] = summary([r["paced"]["offered_per_second"] for r in runs])
        out["paced_served"] = summary([r["paced"]["requests_per_second"] for r in runs])
        out["paced_p50_ms"] = summary([r["paced"]["p50_ms"] for r in runs])
        out["paced_p99_ms"] = summary([r["paced"]["p99_ms"] for r in runs])
    if all("lag" in r for r in runs):
        out["lag_p50_ms"] = summary([r["lag"]["p50_ms"] for r in runs])
        out["lag_p99_ms"] = summary([r["lag"]["p99_ms"] for r in runs])
    rss = [r.get("peak_rss_mb") or r.get("server_peak_rss_mb") for r in runs]
    out["peak_rss_mb"] = max((x for x in rss if x), default=None)
    median = out["rate"]["median"]
    if ceilings and median:
        out["ratio"] = {
            name: round(median / value, 3) for name, value in ceilings.items() if value
        }
    return out


def _val(entry: dict[str, Any], key: str) -> float | None:
    value = entry.get(key)
    return value.get("median") if isinstance(value, dict) else None


def check_targets(results: dict[str, Any]) -> None:
    """Adds `target` and `met` to each PostgreSQL (and SQLite) entry."""
    w = results["workloads"]
    ingest_rate = _val(w.get("ingest_jsonl", {}).get("postgresql", {}), "rate")
    for entry in w.get("ingest_jsonl", {}).values():
        ratio = entry.get("ratio", {}).get("copy")
        entry["target"] = ">= 25,000 events/s and >= 0.10 of raw COPY"
        entry["met"] = (_val(entry, "rate") or 0) >= 25_000 and (ratio or 0) >= 0.10
    for entry in w.get("balance_csv", {}).values():
        entry["target"] = ">= 25,000 rows/s"
        entry["met"] = (_val(entry, "rate") or 0) >= 25_000
    for entry in w.get("post_single", {}).values():
        entry["target"] = ">= 3,000 events/s, p99 < 50 ms"
        entry["met"] = (_val(entry, "rate") or 0) >= 3_000 and (
            _val(entry, "p99_ms") or 1e9
        ) < 50
    same_events_rate = _val(w.get("ingest_fresh", {}).get("postgresql", {}), "rate")
    for entry in w.get("post_batch", {}).values():
        entry["target"] = ">= 80% of workload 1 (PostgreSQL ingest)"
        if ingest_rate:
            entry["vs_ingest"] = round((_val(entry, "rate") or 0) / ingest_rate, 3)
            entry["met"] = entry["vs_ingest"] >= 0.8
        if same_events_rate:
            # Not the target's measure (that is workload 1's events): the HTTP
            # edge's cost alone, against `crm ingest` of events like these.
            entry["vs_ingest_same_events"] = round(
                (_val(entry, "rate") or 0) / same_events_rate, 3
            )
    for entry in w.get("rebuild", {}).values():
        entry["target"] = ">= 20,000 events/s"
        entry["met"] = (_val(entry, "rate") or 0) >= 20_000
    for entry in w.get("reads", {}).values():
        entry["target"] = "p50 < 5 ms, p99 < 25 ms, >= 2,000 req/s"
        entry["met"] = _reads_met(entry, "")
        if "paced_rate" in entry:
            entry["paced_met"] = _reads_met(entry, "paced_")
    for entry in w.get("mailing_plan", {}).values():
        entry["target"] = "< 10 s for the targets, one piece per household"
        held = all(r["verified"]["held"] for r in entry["runs"])
        entry["met"] = (_val(entry, "seconds") or 1e9) < 10 and held
    for entry in w.get("lag", {}).values():
        entry["target"] = "p99 < 200 ms at 500 events/s"
        entry["met"] = (_val(entry, "lag_p99_ms") or 1e9) < 200
    memory = results.get("memory")
    if memory:
        serve = memory.get("serve_peak_rss_mb") or 0
        growths = [
            v for k, v in memory.items() if k.endswith("_growth") and v is not None
        ]
        memory["target"] = (
            "serve < 400 MB under load; export/verify/rebuild RSS growth <= 20%"
        )
        memory["met"] = serve < 400 and all(g <= 0.2 for g in growths)


def _reads_met(entry: dict[str, Any], kind: str) -> bool:
    """Target 6 in one of its two readings. `""`: the 32 clients' closed loop, as
    many reads as they get answered; its latency at saturation is 32 over the rate
    (Little's law), so p50 < 5 ms there needs 6,400 answers a second. `"paced_"`:
    reads offered at a steady rate (2,000 a second by default, the target's),
    timed from when each was due; met when that rate was served, within 1 %."""
    if kind:
        offered = _val(entry, "paced_rate") or 0
        rate_ok = offered >= 2_000 and (_val(entry, "paced_served") or 0) >= (
            0.99 * offered
        )
    else:
        rate_ok = (_val(entry, "rate") or 0) >= 2_000
    return (
        rate_ok
        and (_val(entry, f"{kind}p50_ms") or 1e9) < 5
        and (_val(entry, f"{kind}p99_ms") or 1e9) < 25
    )


def _fmt(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "-"
    return f"{value:,.{digits}f}"


def _met(entry: dict[str, Any]) -> str:
    if "met" not in entry:
        return "-"  # no target of its own (ingest_fresh: a comparison for post_batch)
    return "yes" if entry["met"] else "NO"


def _aside(name: str, entry: dict[str, Any]) -> str:
    if name == "mailing_plan":
        return f" ({_fmt(_val(entry, 'seconds'), 2)} s)"
    parts = []
    if "vs_ingest" in entry:
        parts.append(f"{_fmt(entry['vs_ingest'], 3)} of ingest_jsonl")
    if "vs_ingest_same_events" in entry:
        parts.append(f"{_fmt(entry['vs_ingest_same_events'], 3)} of ingest_fresh")
    return f" ({'; '.join(parts)})" if parts else ""


def table(results: dict[str, Any]) -> str:
    lines = [
        f"{'workload':<14} {'backend':<10} {'median':>11} {'unit':<9} {'spread':>6} {'xCOPY':>6} {'xunnest':>7} "
        f"{'p50ms':>7} {'p99ms':>8} {'RSS MB':>7}  target met",
    ]
    units = {"reads": "req/s", "mailing_plan": "targets/s", "balance_csv": "rows/s"}
    for name, backends in results["workloads"].items():
        for backend, e in backends.items():
            ratio = e.get("ratio", {})
            p50 = _val(e, "lag_p50_ms") if name == "lag" else _val(e, "p50_ms")
            p99 = _val(e, "lag_p99_ms") if name == "lag" else _val(e, "p99_ms")
            rate = e["rate"]
            lines.append(
                f"{name:<14} {backend:<10} {_fmt(rate['median']):>11} {units.get(name, 'events/s'):<9} "
                f"{_fmt(rate['spread'], 2):>6} {_fmt(ratio.get('copy'), 3):>6} {_fmt(ratio.get('unnest') or ratio.get('sqlite'), 3):>7} "
                f"{_fmt(p50, 1):>7} {_fmt(p99, 1):>8} {_fmt(e.get('peak_rss_mb'), 0):>7}  {_met(e)}"
                + _aside(name, e)
            )
            if "paced_rate" in e:
                lines.append(
                    f"{'  paced':<14} {backend:<10} {_fmt(_val(e, 'paced_rate')):>11} {'req/s':<9} "
                    f"{'':>6} {'':>6} {'':>7} {_fmt(_val(e, 'paced_p50_ms'), 1):>7} "
                    f"{_fmt(_val(e, 'paced_p99_ms'), 1):>8} {'':>7}  "
                    f"{'yes' if e.get('paced_met') else 'NO'} (offered at a steady "
                    f"rate, served {_fmt(_val(e, 'paced_served'))}/s)"
                )
    c = results.get("ceilings", {})
    for name, entry in c.items():
        if not isinstance(entry, dict):
            continue
        lines.append(
            f"ceiling {name:<22} {_fmt(entry['median']):>11} rows/s  spread {_fmt(entry['spread'], 2)}"
        )
    m = results.get("memory")
    if m:
        lines.append(
            "memory: "
            + json.dumps(
                {k: v for k, v in m.items() if k != "detail"}, ensure_ascii=False
            )
        )
    lines.append(
        f"load average: start {results['machine']['load_average']} end {results.get('load_average_end')}"
    )
    return "\n".join(lines)


def write(results: dict[str, Any], out_dir: Path, stamp: str) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"bench-{stamp}.json"
    path.write_text(json.dumps(results, indent=2, ensure_ascii=False, default=str))
    return path
