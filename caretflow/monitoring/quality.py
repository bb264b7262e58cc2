"""Data quality of a window: the records the server rejected at validation.

The server writes one ``rejections`` row per rejected request, field and reason code
(``app.rejections``; counts only, never a value). Here they are summed over a window: by
field, by field and reason, and in all. A batch with one bad record is rejected whole, so
``records`` (every record of a rejected request) can exceed the sum over fields, and a
record bad in two fields counts once under each.
"""

from __future__ import annotations

import pandas as pd


def summary(frame: pd.DataFrame | None, fields: list[str]) -> dict | None:
    """The window's rejections, or None when the database keeps none (no table).

    Args:
        frame: ``LogReader.rejected`` rows of the window.
        fields: the contract's input fields (listed even when nothing was rejected).

    Returns:
        ``requests`` (rejected requests), ``records`` (records they carried),
        ``by_field`` (field -> records with a problem there, every contract field first),
        ``by_reason`` (rows of ``field``, ``reason``, ``rows``, ``requests``, most first).
    """
    if frame is None:
        return None
    by_field = {f: 0 for f in fields}
    by_reason: list[dict] = []
    if len(frame):
        for field, n in frame.groupby("field")["rows"].sum().items():
            by_field[str(field)] = int(n)
        grouped = frame.groupby(["field", "reason"]).agg(rows=("rows", "sum"),
                                                         requests=("request_id", "nunique"))
        by_reason = [{"field": str(f), "reason": str(r), "rows": int(x.rows),
                      "requests": int(x.requests)} for (f, r), x in grouped.iterrows()]
        by_reason.sort(key=lambda d: (-d["rows"], d["field"], d["reason"]))
    requests = frame.drop_duplicates("request_id") if len(frame) else frame
    return {"requests": int(len(requests)),
            "records": int(requests["request_rows"].sum()) if len(requests) else 0,
            "by_field": by_field, "by_reason": by_reason}


def metrics(quality: dict | None) -> dict[str, float]:
    """``quality.rejected_requests``, ``quality.rejected_records``, and rows by field and reason.

    Every contract field is logged (0 when clean), so the MLflow chart of a field has a point
    per window; a (field, reason) pair only in the windows where it occurred.
    """
    if quality is None:
        return {}
    out = {"quality.rejected_requests": quality["requests"],
           "quality.rejected_records": quality["records"]}
    for field, n in quality["by_field"].items():
        out[f"quality.rejected_rows.{field}"] = n
    for d in quality["by_reason"]:
        out[f"quality.rejected_rows.{d['field']}.{d['reason']}"] = d["rows"]
    return {k: float(v) for k, v in out.items()}
