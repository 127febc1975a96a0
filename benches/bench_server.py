"""Shared by the benchmark scripts: start `audience serve` with a bench user on
a free port, and connect to it over Flight SQL (ADBC)."""

import os
import socket
import subprocess
import threading

import adbc_driver_flightsql.dbapi as flight_sql

USER, PASSWORD = "bench", "bench-password"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(binary, work, config_text, name="audience", env=None, args=()):
    """Starts `audience serve` with `config_text` (TOML) plus the bench user;
    returns (process, grpc URL)."""
    digest = subprocess.run([binary, "hash-password"], input=PASSWORD, capture_output=True,
                            text=True, check=True).stdout.strip()
    config = os.path.join(work, f"{name}.toml")
    with open(config, "w") as f:
        f.write(f'{config_text}\n[[server.users]]\nname = "{USER}"\nrole = "analyst"\n'
                f'password_hash = "{digest}"\n')
    proc = subprocess.Popen([binary, "serve", "--config", config, "--addr", "127.0.0.1:0", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            env={**(env or os.environ), "AUDIENCE_LOG": "error"})
    for line in proc.stdout:
        if line.startswith("Audience Flight SQL server listening on "):
            url = line.split(" on ", 1)[1].strip()
            threading.Thread(target=proc.stdout.read, daemon=True).start()
            return proc, url
    raise RuntimeError("audience serve did not start")


def connect(url):
    return flight_sql.connect(url, db_kwargs={"username": USER, "password": PASSWORD}, autocommit=True)
