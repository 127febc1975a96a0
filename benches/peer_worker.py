"""One benchmark engine in its own process, for `audience bench`.

Usage: python peer_worker.py ENGINE DATA_DIR [FLIGHT_URI USER PASSWORD]
ENGINE is clickhouse (chDB), duckdb, datafusion (the `datafusion` package, no
custom functions) or flight (Audience over Flight SQL through ADBC; the server
runs elsewhere). Reads one JSON request per line on stdin, {"sql": "..."}, runs
it, and answers one JSON line: {"seconds": wall time of the query until its
result is in Arrow, "rows": [[value as text or null, ...], ...]} or {"error": "..."}.
The first line written is {"ready": true, "version": "..."} once tables are set up.
"""

import datetime
import json
import sys
import time
from pathlib import Path

TABLES = ["events", "orders", "members", "member_tags", "identities"]


def allow_transparent_huge_pages():
    """`audience` turns transparent huge pages off for itself and so for the
    processes it starts; a peer runs with the machine's setting instead."""
    if sys.platform == "linux":
        import ctypes

        PR_SET_THP_DISABLE = 41
        ctypes.CDLL(None).prctl(PR_SET_THP_DISABLE, 0, 0, 0, 0)


def clickhouse(data):
    import chdb

    def run(sql):
        return chdb.query(sql, "ArrowTable")

    return run, f"chdb {chdb.__version__} (ClickHouse {chdb.engine_version})"


def duckdb_engine(data):
    import duckdb

    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    for t in TABLES:
        if (data / t).is_dir():
            con.execute(f"CREATE VIEW {t} AS SELECT * FROM read_parquet('{data / t}/*.parquet')")

    def run(sql):
        return con.sql(sql).to_arrow_table()

    return run, f"duckdb {duckdb.__version__}"


def datafusion_engine(data):
    import datafusion

    ctx = datafusion.SessionContext()
    for t in TABLES:
        if (data / t).is_dir():
            ctx.register_parquet(t, str(data / t) + "/", file_extension=".parquet")

    def run(sql):
        return ctx.sql(sql).to_arrow_table()

    return run, f"datafusion {datafusion.__version__}"


def flight_engine(uri, user, password):
    import adbc_driver_flightsql
    import adbc_driver_flightsql.dbapi as flightsql

    conn = flightsql.connect(
        uri,
        db_kwargs={
            adbc_driver_flightsql.DatabaseOptions.AUTHORIZATION_HEADER.value: "Basic "
            + __import__("base64").b64encode(f"{user}:{password}".encode()).decode()
        },
    )
    cur = conn.cursor()

    def run(sql):
        cur.execute(sql)
        return cur.fetch_arrow_table()

    return run, f"adbc-driver-flightsql {adbc_driver_flightsql.__version__}"


def text(v):
    """A value as text the harness compares across engines."""
    if v is None:
        return None
    if isinstance(v, datetime.datetime):
        return v.replace(tzinfo=None).isoformat(sep=" ")
    if isinstance(v, datetime.date):
        return v.isoformat()
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, (list, tuple)):
        return json.dumps([text(x) for x in v])
    return str(v)


def main():
    allow_transparent_huge_pages()
    engine, data = sys.argv[1], Path(sys.argv[2])
    if engine == "clickhouse":
        run, version = clickhouse(data)
    elif engine == "duckdb":
        run, version = duckdb_engine(data)
    elif engine == "datafusion":
        run, version = datafusion_engine(data)
    elif engine == "flight":
        run, version = flight_engine(*sys.argv[3:6])
    else:
        sys.exit(f"unknown engine {engine}")
    print(json.dumps({"ready": True, "version": version}), flush=True)
    for line in sys.stdin:
        sql = json.loads(line)["sql"]
        try:
            started = time.perf_counter()
            table = run(sql)
            seconds = time.perf_counter() - started
            columns = [c.to_pylist() for c in table.columns]
            rows = [[text(v) for v in row] for row in zip(*columns)]
            answer = {"seconds": seconds, "rows": rows}
        except Exception as e:  # the harness reports it with the query's name
            answer = {"error": f"{type(e).__name__}: {e}"}
        print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    main()
