"""A gc report in words, for ``mlpipe gc`` and the cleanup task's log: groups by kind, DAG and rule, with sizes."""

from __future__ import annotations

from airflow_mlpipe.cli.output import human_bytes  # (plain formatting: no CLI machinery comes with it)
from airflow_mlpipe.gc.model import GcReport


def report_lines(report: GcReport) -> list[str]:
    plan = report.plan
    verb = "would delete" if report.dry_run else "deleted"
    runs = len(plan.swept_runs)
    lines = [
        f"mlpipe gc of datastore {plan.datastore} ({plan.settings.describe()}){' - dry run' if report.dry_run else ''}",
        f"{plan.runs_scanned} step runs scanned, {runs} to sweep; {len(plan.items)} items, {human_bytes(plan.bytes)} "
        f"{'would go' if report.dry_run else 'planned'} (planned in {plan.plan_seconds:.2f} s)",
    ]
    groups = plan.groups()
    if groups:
        rows = [(g["kind"], g["dag_id"], str(g["items"]), human_bytes(g["bytes"]), g["rule"]) for g in groups]
        header = ("KIND", "DAG", "ITEMS", "SIZE", "RULE")
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
        lines.append("")
        for row in [header, *rows]:
            lines.append("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    if plan.kept:
        lines.append("")
        lines.append("kept step runs: " + ", ".join(f"{n} {rule}" for rule, n in sorted(plan.kept.items())))
    lines += [f"note: {note}" for note in plan.notes]
    if not report.dry_run:
        lines.append("")
        lines.append(
            f"{verb} {report.deleted} items, reclaimed {human_bytes(report.bytes_reclaimed)} "
            f"(in {report.sweep_seconds:.2f} s)"
        )
        lines += [f"spared: {line}" for line in report.spared]
        lines += [f"error: {line}" for line in report.errors]
    return lines
