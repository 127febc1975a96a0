"""Reads a Delta table with the `deltalake` package (delta-rs for Python), the
interop reader of Audience's tables: prints its version, columns, row count,
data files and per-member row counts as JSON (at VERSION when given: an older
snapshot's files must still be there). With --write, writes rows given as JSON on stdin
as a new table in no particular layout (several small files)."""

import json
import os
import sys

import pyarrow as pa
from deltalake import DeltaTable, write_deltalake


def read(path: str, version: int | None) -> None:
    table = DeltaTable(path, version=version)
    data = table.to_pyarrow_table()
    per_member: dict[str, int] = {}
    for member in data.column("member_id").to_pylist():
        per_member[str(member)] = per_member.get(str(member), 0) + 1
    print(
        json.dumps(
            {
                "version": table.version(),
                "columns": [f"{f.name} {f.type}" for f in data.schema],
                "rows": data.num_rows,
                "files": len(table.file_uris()),
                "per_member": per_member,
            }
        )
    )


def write(path: str) -> None:
    rows = json.load(sys.stdin)
    data = pa.table(
        {
            "member_id": pa.array([r[0] for r in rows], pa.int64()),
            "ts": pa.array([r[1] for r in rows], pa.timestamp("us")),
            "event": pa.array([r[2] for r in rows], pa.string()),
            "channel": pa.array(["douyin"] * len(rows), pa.string()),
        }
    )
    # several appends of shuffled slices: files overlap in member ids
    step = max(1, len(rows) // 3)
    for start in range(0, len(rows), step):
        write_deltalake(path, data.slice(start, step), mode="append")


if __name__ == "__main__":
    if sys.argv[1] == "--write":
        write(sys.argv[2])
    else:
        read(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else None)
    # delta-rs's runtime threads can abort the interpreter's shutdown
    # ("terminate called without an active exception"): leave at once
    sys.stdout.flush()
    os._exit(0)
