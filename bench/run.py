"""The benchmark harness: every workload of the "Performance" issue, one command.

    .venv/bin/python -m bench.run [--quick] [--database-url URL] [--only NAME,...]
                                  [--repeat N] [--out bench-results/]

Generates its own data (`api.demo_data`), creates and drops its own databases
(`crm_bench_<pid>` on the given server, SQLite files under the output folder),
measures the raw ceilings (binary COPY, unnest INSERT) on the same machine in
the same run, prints a table and writes `bench-results/bench-<time>.json`.
Workloads: see WORKLOADS and docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any

from bench import ceilings, data, memory, report, workloads_http, workloads_store
from bench.common import (
    ROOT,
    Server,
    create_key,
    machine,
    migrate,
    pg_create,
    pg_drop,
    pg_version,
    sqlite_create,
    summary,
    wait_caught_up,
)

WORKLOADS = [
    "ingest_jsonl",
    "balance_csv",
    "post_single",
    "post_batch",
    "rebuild",
    "reads",
    "mailing_plan",
    "lag",
    "memory",
    "ceilings",
]
SIZES: dict[str, dict[str, int]] = {
    "full": {
        "households": 5800,
        "balances": 1_000_000,
        "single": 30_000,
        "batch": 200_000,
        "reads_s": 20,
        "lag_s": 20,
        "targets": 100_000,
        "mem_households": 580,
        "audit_small": 100_000,
        "audit_large": 1_000_000,
    },
    # Under 2 minutes on the 2-core host: every event posted must be projected
    # before the next workload reads, and the HTTP loads last long enough (a few
    # seconds each) for their rates not to be mostly warm-up.
    "quick": {
        "households": 120,
        "balances": 20_000,
        "single": 6_000,
        "batch": 20_000,
        "reads_s": 8,
        "lag_s": 8,
        "targets": 1_000,
        "mem_households": 20,
        "audit_small": 5_000,
        "audit_large": 25_000,
    },
}


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.size = SIZES["quick" if args.quick else "full"]
        self.only = set(args.only.split(",")) if args.only else set(WORKLOADS)
        self.repeat = args.repeat or (1 if args.quick else 3)
        self.admin = args.database_url
        self.work = Path(args.out).resolve() / f"work-{os.getpid()}"
        self.work.mkdir(parents=True, exist_ok=True)
        self.db_name = f"crm_bench_{os.getpid()}"
        self.runs: dict[str, dict[str, list[dict[str, Any]]]] = {}
        self.results: dict[str, Any] = {
            "mode": "quick" if args.quick else "full",
            "repeat": self.repeat,
            "web_workers": args.web_workers,
            "machine": machine(),
            "postgresql": pg_version(self.admin),
            "sizes": self.size,
            "workloads": {},
        }

    def say(self, text: str) -> None:
        sys.stdout.write(f"[{time.strftime('%H:%M:%S')}] {text}\n")
        sys.stdout.flush()

    def add(self, name: str, backend: str, run: dict[str, Any]) -> None:
        self.runs.setdefault(name, {}).setdefault(backend, []).append(run)
        self.say(
            f"{name} {backend}: {run.get('rate', 0):,.0f}/s { ({k: run[k] for k in ('p50_ms', 'p99_ms', 'seconds', 'peak_rss_mb') if k in run}) }"
        )

    def wants(self, *names: str) -> bool:
        return any(n in self.only for n in names)

    # the phases --------------------------------------------------------------

    def data(self) -> None:
        self.demo_path = self.work / "demo.jsonl"
        self.demo = data.write_demo_jsonl(
            self.demo_path, self.size["households"], seed=7
        )
        self.csv_path = self.work / "balances.csv"
        data.write_balance_csv(
            self.csv_path,
            self.demo.open_accounts,
            self.size["balances"],
            date(2027, 1, 1),
        )
        self.say(
            f"data: {self.demo.events:,} demo events, {len(self.demo.customers):,} customers, {len(self.demo.open_accounts):,} open accounts"
        )

    def store_workloads(self, backend: str) -> str:
        """Workloads 1, 5 and 2 on fresh databases; returns the last one's URL (kept)."""
        url = ""
        for r in range(self.repeat):
            url = (
                pg_create(self.admin, self.db_name)
                if backend == "postgresql"
                else sqlite_create(self.work, self.db_name)
            )
            migrate(url)
            run = workloads_store.ingest_file(url, self.demo_path, self.demo.events)
            if self.wants("ingest_jsonl") or r == 0:
                self.add("ingest_jsonl", backend, run)
            if self.wants("rebuild", "memory"):
                self.add(
                    "rebuild", backend, workloads_store.rebuild(url, self.demo.events)
                )
            if r < self.repeat - 1:
                self.balances(url, backend)
                if backend == "postgresql":
                    pg_drop(self.admin, self.db_name)
        return url

    def balances(self, url: str, backend: str) -> None:
        """Workload 2 on the ingested log (run after the HTTP workloads on the kept one,
        so the server never has a million balances to project first)."""
        if self.wants("balance_csv"):
            self.add(
                "balance_csv",
                backend,
                workloads_store.ingest_file(url, self.csv_path, self.size["balances"]),
            )

    def ceilings(self, url: str) -> None:
        sample = ceilings.sample_rows(url)
        rows = ceilings.build_rows(sample, self.demo.events)
        found: dict[str, list[float]] = {"copy": [], "unnest": [], "sqlite": []}
        for _ in range(self.repeat):
            found["copy"].append(ceilings.raw_copy(url, rows))
            found["unnest"].append(ceilings.raw_unnest(url, rows))
            found["sqlite"].append(ceilings.raw_sqlite(self.work / "raw.db", rows))
        self.results["ceilings"] = {k: summary(v) for k, v in found.items()}
        self.results["ceilings"]["row_bytes"] = round(
            sum(len(s) for _, _, s in sample) / len(sample)
        )
        self.say(
            f"ceilings: { {k: round(v['median']) for k, v in self.results['ceilings'].items() if isinstance(v, dict)} }"
        )

    def http_workloads(self, url: str, backend: str) -> None:
        if self.wants("post_batch"):
            self.same_events_ingest(backend)
        with Server(url, CRM_WEB_WORKERS=str(self.args.web_workers)) as server:
            key = create_key(url)
            wait_caught_up(server.base, key)
            customers = self.demo.customers
            for r in range(self.repeat):
                if self.wants("post_single", "memory"):
                    self.add(
                        "post_single",
                        backend,
                        workloads_http.post_events(
                            server,
                            key,
                            self.work,
                            customers,
                            self.size["single"],
                            1,
                            seed=100 + r,
                        ),
                    )
                if self.wants("post_batch"):
                    self.add(
                        "post_batch",
                        backend,
                        workloads_http.post_events(
                            server,
                            key,
                            self.work,
                            customers,
                            self.size["batch"],
                            1000,
                            seed=200 + r,
                        ),
                    )
            if self.wants("reads", "lag", "memory"):
                wait_caught_up(server.base, key)
            for r in range(self.repeat):
                if self.wants("reads", "memory"):
                    self.add(
                        "reads",
                        backend,
                        workloads_http.reads(
                            server,
                            key,
                            self.work,
                            customers,
                            self.size["reads_s"],
                            seed=300 + r,
                            paced_load=self.args.paced_read_load,
                            paced_rate=self.args.paced_read_rate,
                        ),
                    )
            for r in range(self.repeat):
                if self.wants("lag"):
                    self.add(
                        "lag",
                        backend,
                        workloads_http.lag(
                            server,
                            key,
                            self.work,
                            customers,
                            self.size["lag_s"],
                            seed=400 + r,
                        ),
                    )
            if self.wants("mailing_plan"):
                targets = workloads_http.register_population(
                    server, key, self.work, self.size["targets"], seed=500
                )
                for r in range(self.repeat):
                    run = workloads_http.mailing_plan(
                        server, key, targets, seed=600 + r
                    )
                    self.add("mailing_plan", backend, run)
            self.serve_rss = server.peak_rss_mb

    def same_events_ingest(self, backend: str) -> None:
        """`ingest_fresh`, beside `post_batch`: each run on its own copy of the
        database the server is about to serve, made while nothing is connected
        to it, so that nothing runs beside the ingest (as beside workload 1) and
        the server starts on the log it would have had without it."""
        name = f"{self.db_name}_fresh"
        for r in range(self.repeat):
            url = pg_create(self.admin, name, template=self.db_name)
            try:
                run = workloads_store.ingest_fresh(
                    url, self.work, self.demo.customers, self.size["batch"], 250 + r
                )
            finally:
                pg_drop(self.admin, name)
            self.add("ingest_fresh", backend, run)

    def memory(self) -> None:
        large = self.runs.get("rebuild", {}).get("postgresql", [])
        small = memory.rebuild_rss(
            self.admin,
            self.work,
            self.size["mem_households"],
            seed=7,
            jobs=memory.rebuild_jobs(self.demo.events),
        )
        a_small = memory.audit_rss(self.admin, self.size["audit_small"])
        a_large = memory.audit_rss(self.admin, self.size["audit_large"])
        large_rss = max((r["peak_rss_mb"] for r in large), default=None)
        self.results["memory"] = {
            "serve_peak_rss_mb": round(getattr(self, "serve_rss", 0), 1),
            "serve_peak_rss_mb_post_single": max(
                (
                    r["server_peak_rss_mb"]
                    for r in self.runs.get("post_single", {}).get("postgresql", [])
                ),
                default=None,
            ),
            "serve_peak_rss_mb_reads": max(
                (
                    r["server_peak_rss_mb"]
                    for r in self.runs.get("reads", {}).get("postgresql", [])
                ),
                default=None,
            ),
            "rebuild_rss_mb": {
                "small": small["peak_rss_mb"],
                "small_events": small["events"],
                "large": large_rss,
                "large_events": self.demo.events,
            },
            "rebuild_growth": memory.growth(small["peak_rss_mb"], large_rss),
            "verify_rss_mb": {
                "small": a_small["verify"]["peak_rss_mb"],
                "large": a_large["verify"]["peak_rss_mb"],
            },
            "verify_growth": memory.growth(
                a_small["verify"]["peak_rss_mb"], a_large["verify"]["peak_rss_mb"]
            ),
            "export_rss_mb": {
                "small": a_small["export"]["peak_rss_mb"],
                "large": a_large["export"]["peak_rss_mb"],
            },
            "export_growth": memory.growth(
                a_small["export"]["peak_rss_mb"], a_large["export"]["peak_rss_mb"]
            ),
            "detail": {"audit_small": a_small, "audit_large": a_large},
        }
        self.say(f"memory: {self.results['memory']}")

    def finish(self) -> None:
        c = self.results.get("ceilings", {})
        for name, backends in self.runs.items():
            for backend, runs in backends.items():
                if backend == "postgresql":
                    chosen = {k: c[k]["median"] for k in ("copy", "unnest") if k in c}
                else:
                    chosen = {k: c[k]["median"] for k in ("sqlite",) if k in c}
                ratio_ok = name not in ("reads", "mailing_plan", "lag")
                self.results["workloads"].setdefault(name, {})[backend] = (
                    report.aggregate(runs, chosen if ratio_ok else None)
                )
        self.results["load_average_end"] = os.getloadavg()
        report.check_targets(self.results)

    def run(self) -> Path:
        self.data()
        try:
            url = self.store_workloads("postgresql")
            self.ceilings(url)
            if self.wants(
                "post_single", "post_batch", "reads", "lag", "mailing_plan", "memory"
            ):
                self.http_workloads(url, "postgresql")
            self.balances(url, "postgresql")
            pg_drop(self.admin, self.db_name)
            if (
                self.wants("ingest_jsonl", "balance_csv", "rebuild")
                and not self.args.no_sqlite
            ):
                self.balances(self.store_workloads("sqlite"), "sqlite")
            if self.wants("memory"):
                self.memory()
        finally:
            pg_drop(self.admin, self.db_name)
        self.finish()
        path = report.write(
            self.results, Path(self.args.out), time.strftime("%Y%m%d-%H%M%S")
        )
        sys.stdout.write(report.table(self.results) + "\n")
        if not self.args.keep_work:
            shutil.rmtree(self.work, ignore_errors=True)
        sys.stdout.write(f"wrote {path}\n")
        return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="~27k events, 1 run each: under 2 minutes"
    )
    parser.add_argument(
        "--database-url",
        default="postgresql://postgres@127.0.0.1:5432/postgres",
        help="a PostgreSQL server where databases may be created",
    )
    parser.add_argument(
        "--only", help=f"comma-separated subset of: {','.join(WORKLOADS)}"
    )
    parser.add_argument(
        "--repeat", type=int, help="runs per workload (default 3; 1 with --quick)"
    )
    parser.add_argument(
        "--out", default=str(ROOT / "bench-results"), help="folder for the JSON result"
    )
    parser.add_argument("--no-sqlite", action="store_true", help="skip the SQLite runs")
    parser.add_argument(
        "--web-workers",
        type=int,
        default=os.cpu_count() or 1,
        help="`crm serve --workers` for the HTTP workloads (default: one per core)",
    )
    parser.add_argument(
        "--paced-read-load",
        type=float,
        default=0.5,
        help="reads: with --paced-read-rate 0, then offer this fraction of the rate "
        "measured, at a steady pace, and report those reads' latency (0: skip)",
    )
    parser.add_argument(
        "--paced-read-rate",
        type=float,
        default=2000,
        help="reads: then offer this many reads a second, at a steady pace, and "
        "report their latency (default: the target's rate; 0: a fraction of the "
        "rate measured, --paced-read-load)",
    )
    parser.add_argument(
        "--keep-work", action="store_true", help="keep the generated files"
    )
    Bench(parser.parse_args()).run()


if __name__ == "__main__":
    main()
