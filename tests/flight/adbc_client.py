"""Flight SQL checks against a running `audience serve`, through the ADBC
Flight SQL driver exactly as a Python user connects.

usage: adbc_client.py CHECK ARGS_JSON

Each check prints `ok <name>` per assertion that held and exits non-zero on the
first that did not. The Rust test (tests/integration/flight_sql.rs) starts the server,
passes its URL, users and folders, and checks what was printed.
"""

import json
import os
import statistics
import subprocess
import sys
import threading
import time

import adbc_driver_flightsql.dbapi as flight_sql
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq


def connect(args, user, password=None, **extra):
    kwargs = {"username": user, "password": password or args["users"][user]}
    kwargs.update(extra)
    return flight_sql.connect(args["url"], db_kwargs=kwargs, autocommit=True)


def ok(name):
    print(f"ok {name}", flush=True)


def expect_error(fn, *needles):
    try:
        fn()
    except Exception as e:  # the driver raises its own DB-API error classes
        text = str(e)
        missing = [n for n in needles if n not in text]
        assert not missing, f"error lacks {missing}: {text}"
        return text
    raise AssertionError(f"expected an error containing {needles}")


def query(conn, sql, params=None):
    cur = conn.cursor()
    cur.execute(sql, parameters=params)
    table = cur.fetch_arrow_table()
    cur.close()
    return table


def basics(args):
    data = args["data"]
    events = ds.dataset(os.path.join(data, "events"), format="parquet")
    conn = connect(args, "analyst")
    ok("basic auth")

    # a prepared statement with a ? parameter, executed twice with different values
    sql = "SELECT count(*) AS n FROM events WHERE member_id = ?"
    cur = conn.cursor()
    cur.adbc_prepare(sql)
    for member in (42, 7):
        cur.execute(sql, parameters=(member,))
        got = cur.fetchall()[0][0]
        want = events.count_rows(filter=pc.field("member_id") == member)
        assert got == want and want > 0, (member, got, want)
    cur.close()
    ok("prepared statement executed twice")

    # our functions, over Flight, agree with the CLI
    funnel = (
        "SELECT level, count(*) AS members FROM (SELECT member_id, "
        "window_funnel(INTERVAL '7 days', '', ts, event = 'view', event = 'cart', "
        "event = 'order', event = 'pay') AS level FROM events GROUP BY member_id) "
        "GROUP BY level ORDER BY level"
    )
    over_flight = query(conn, funnel).to_pylist()
    cli = subprocess.run(
        [args["binary"], "query", "--data", data, "--format", "json", funnel],
        check=True, capture_output=True, text=True,
    )
    assert over_flight == json.loads(cli.stdout), (over_flight, cli.stdout)
    assert len(over_flight) >= 4, over_flight
    ok("window_funnel over flight equals the CLI")

    # view types leave the server as plain strings; an empty result keeps its schema
    empty = query(conn, "SELECT member_id, event, ts FROM events WHERE member_id < 0")
    assert empty.num_rows == 0
    assert empty.schema.field("event").type == pa.string(), empty.schema
    assert empty.schema.field("member_id").type == pa.int64(), empty.schema
    ok("empty result carries its schema, strings as utf8")

    objects = conn.adbc_get_objects(depth="all").read_all().to_pylist()
    tables = {
        (c["catalog_name"], s["db_schema_name"], t["table_name"]): t
        for c in objects
        for s in c["catalog_db_schemas"] or []
        for t in s["db_schema_tables"] or []
    }
    events_table = tables[("datafusion", "public", "events")]
    columns = [c["column_name"] for c in events_table["table_columns"]]
    assert columns[:3] == ["member_id", "ts", "event"], columns
    assert events_table["table_type"] == "TABLE", events_table["table_type"]
    ok("get_objects lists catalogs, schemas, tables and columns")

    only = conn.adbc_get_objects(
        depth="tables", table_name_filter="ev%", table_types_filter=["BASE TABLE"]
    ).read_all().to_pylist()
    names = [
        t["table_name"]
        for c in only
        for s in c["catalog_db_schemas"] or []
        for t in s["db_schema_tables"] or []
    ]
    assert names == ["events"], names
    ok("table filters: LIKE pattern and BASE TABLE")

    schema = conn.adbc_get_table_schema("events")
    assert schema.field("event").type == pa.string(), schema
    ok("get_table_schema")

    info = conn.adbc_get_info()
    assert info["vendor_name"] == "Audience", info
    assert info["vendor_version"], info
    ok("get_info")

    expect_error(lambda: query(conn, "SELEC 1"), "SQL error")
    expect_error(lambda: query(conn, "SELECT nope FROM events"), "nope")
    expect_error(lambda: query(conn, "SELECT * FROM missing_table"), "missing_table")
    ok("bad SQL errors reach the client")

    target = os.path.join(args["exports"], "segment.parquet")
    copy = f"COPY (SELECT member_id FROM members LIMIT 10) TO '{target}'"
    expect_error(lambda: query(conn, copy), "may not run COPY", "marketer")
    expect_error(lambda: query(conn, "CREATE VIEW v AS SELECT 1"), "admin")
    conn.close()
    ok("analyst COPY and DDL denied")

    expect_error(lambda: connect(args, "analyst", "wrong password").cursor().execute("SELECT 1"),
                 "wrong username or password")
    ok("wrong password rejected")

    marketer = connect(args, "marketer")
    rows = query(marketer, copy).to_pylist()
    assert rows == [{"count": 10}], rows
    assert pq.read_table(target).num_rows == 10
    outside = f"COPY (SELECT 1 AS x) TO '{os.path.join(data, 'leak.csv')}'"
    expect_error(lambda: query(marketer, outside), "allowed_prefixes")
    marketer.close()
    ok("marketer exports under the allowed prefix only")

    admin = connect(args, "admin")
    query(admin, "CREATE VIEW gold AS SELECT member_id FROM members WHERE tier = 'gold'")
    gold = query(admin, "SELECT count(*) AS n FROM gold").to_pylist()[0]["n"]
    members = ds.dataset(os.path.join(data, "members"), format="parquet")
    assert gold == members.count_rows(filter=pc.field("tier") == "gold"), gold
    ok("admin DDL")

    # a table written while the server runs is visible to the next query
    os.makedirs(os.path.join(data, "late_table"))
    pq.write_table(pa.table({"x": [1, 2, 3]}), os.path.join(data, "late_table", "part-0.parquet"))
    assert query(admin, "SELECT sum(x) AS s FROM late_table").to_pylist() == [{"s": 6}]
    pq.write_table(pa.table({"x": [10]}), os.path.join(data, "late_table", "part-1.parquet"))
    assert query(admin, "SELECT sum(x) AS s FROM late_table").to_pylist() == [{"s": 16}]
    admin.close()
    ok("tables and files added while serving are visible")


def rss_kb(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise AssertionError(f"{key} not in /proc/{pid}/status")


def stream(args):
    """5M rows (~550 MB of Arrow) stream while the server's memory stays flat."""
    conn = connect(args, "analyst")
    query(conn, "SELECT count(*) FROM events")
    pid = args["pid"]
    start = rss_kb(pid, "VmRSS")
    peak = start
    cur = conn.cursor()
    cur.execute(
        "SELECT value AS n, repeat('x', 100) AS pad FROM generate_series(1, 5000000)"
    )
    reader = cur.fetch_record_batch()
    rows = 0
    bytes_seen = 0
    for batch in reader:
        rows += batch.num_rows
        bytes_seen += batch.nbytes
        peak = max(peak, rss_kb(pid, "VmRSS"))
    cur.close()
    conn.close()
    assert rows == 5_000_000, rows
    print(json.dumps({"rows": rows, "bytes": bytes_seen, "rss_start_kb": start, "rss_peak_kb": peak}))
    ok("5M rows streamed")


def disconnect(args):
    """Reads a little of an endless query, then the process dies without closing."""
    conn = connect(args, "analyst")
    cur = conn.cursor()
    cur.execute("SELECT value, repeat('y', 50) AS pad FROM generate_series(1, 2000000000)")
    reader = cur.fetch_record_batch()
    for _ in range(3):
        reader.read_next_batch()
    ok("reading")
    sys.stdout.flush()
    os._exit(0)


def limits(args):
    """One slot, no queue, a 2 s timeout: a second query is refused while the
    first holds the slot, and the first is stopped at its deadline."""
    conn = connect(args, "analyst")
    holder = conn.cursor()
    holder.execute("SELECT value FROM generate_series(1, 2000000000)")
    reader = holder.fetch_record_batch()
    reader.read_next_batch()
    other = connect(args, "analyst")
    expect_error(lambda: query(other, "SELECT 1"), "server busy", "retry")
    ok("busy server refuses with RESOURCE_EXHAUSTED")

    def drain():
        for _ in reader:
            pass

    text = expect_error(drain, "query_timeout")
    assert "DEADLINE_EXCEEDED" in text or "deadline" in text.lower(), text
    ok("query stopped at the timeout")
    holder.close()
    assert query(other, "SELECT 1 AS one").to_pylist() == [{"one": 1}]
    ok("slot freed")


def tls(args):
    ca = open(args["ca"], "rb").read()
    conn = connect(args, "analyst", **{"adbc.flight.sql.client_option.tls_root_certs": ca.decode()})
    assert query(conn, "SELECT 41 + 1 AS x").to_pylist() == [{"x": 42}]
    conn.close()
    ok("TLS with a self-signed CA")
    started = time.monotonic()
    expect_error(lambda: query(connect(args, "analyst"), "SELECT 1"), "")
    assert time.monotonic() - started <= 1.0, time.monotonic() - started
    ok("TLS without the CA is refused")

    import socket
    import ssl
    import warnings
    from urllib.parse import urlparse

    address = (urlparse(args["url"]).hostname, urlparse(args["url"]).port)
    # a client that speaks only TLS 1.1: the server refuses the version itself
    old = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    old.set_ciphers("DEFAULT:@SECLEVEL=0")  # let OpenSSL offer TLS 1.1 at all
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        old.minimum_version = old.maximum_version = ssl.TLSVersion.TLSv1_1
    old.load_verify_locations(cafile=args["ca"])
    started = time.monotonic()
    try:
        with socket.create_connection(address, timeout=5) as raw:
            with old.wrap_socket(raw, server_hostname="localhost"):
                raise AssertionError("a TLS 1.1 handshake succeeded")
    except ssl.SSLError as e:
        assert "ALERT" in str(e).upper(), e  # the server's refusal, not the client's
    assert time.monotonic() - started <= 1.0, time.monotonic() - started
    ok("TLS 1.1 is refused fast")

    # a plaintext HTTP/2 client on the TLS port: the connection ends fast
    started = time.monotonic()
    with socket.create_connection(address, timeout=5) as raw:
        raw.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00" * 64)
        try:
            while raw.recv(4096):
                pass
        except ConnectionResetError:
            pass
    assert time.monotonic() - started <= 1.0, time.monotonic() - started
    ok("plaintext on the TLS port is dropped fast")


def certs(args):
    """Writes a self-signed CA and a server certificate for localhost/127.0.0.1."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Audience test CA")])
    ca = (
        x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
        .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([
            x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))
        ]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    out = args["dir"]
    with open(os.path.join(out, "ca.pem"), "wb") as f:
        f.write(ca.public_bytes(serialization.Encoding.PEM))
    with open(os.path.join(out, "cert.pem"), "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(os.path.join(out, "key.pem"), "wb") as f:
        f.write(key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ))
    ok("certificates written")


def concurrency(args):
    """`clients` connections, each running `per_client` mixed queries:
    member lookups with a parameter, event counts, and funnels."""
    clients, per_client = args["clients"], args["per_client"]
    mix = [
        ("SELECT * FROM members WHERE member_id = ?", True),
        ("SELECT event, count(*) FROM events WHERE member_id = ? GROUP BY event", True),
        ("SELECT count(*) FROM events WHERE event = 'pay'", False),
        ("SELECT level, count(*) FROM (SELECT member_id, window_funnel(604800, '', ts, "
         "event = 'view', event = 'cart', event = 'order', event = 'pay') AS level "
         "FROM events GROUP BY member_id) GROUP BY level", False),
    ]
    latencies, errors = [], []
    lock = threading.Lock()

    def client(i):
        conn = connect(args, "analyst")
        cur = conn.cursor()
        for j in range(per_client):
            sql, param = mix[(i + j) % len(mix)]
            started = time.perf_counter()
            try:
                cur.execute(sql, parameters=((i * 7919 + j) % 1000 + 1,) if param else None)
                cur.fetch_arrow_table()
                with lock:
                    latencies.append(time.perf_counter() - started)
            except Exception as e:
                with lock:
                    errors.append(str(e))
        cur.close()
        conn.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    latencies.sort()
    report = {
        "queries": len(latencies),
        "errors": len(errors),
        "p50_ms": round(1000 * statistics.median(latencies), 2) if latencies else None,
        "p99_ms": round(1000 * latencies[int(len(latencies) * 0.99) - 1], 2) if latencies else None,
    }
    print(json.dumps(report))
    assert not errors, errors[:3]
    assert len(latencies) == clients * per_client
    ok("concurrent clients, zero errors")


if __name__ == "__main__":
    check, raw = sys.argv[1], sys.argv[2]
    globals()[check](json.loads(raw))
