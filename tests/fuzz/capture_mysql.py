#!/usr/bin/python3
"""Real MariaDB traffic for the MySQL codec's fuzz seeds and unit fixtures.

    /usr/bin/python3 tests/fuzz/capture_mysql.py OUTDIR [--big BIGDIR] [--c]

Starts a throwaway mariadbd (its own datadir, socket and port on
127.0.0.1, removed at exit), creates a mysql_native_password user, then
drives real clients through a small TCP relay that records both directions
of every connection: the mariadb CLI (queries, multi-statements, an error,
USE), python3-pymysql (queries, multi-results from a procedure, LOCAL
INFILE, an error) and a hand-written raw client (prepared statements with
COM_STMT_PREPARE / EXECUTE / FETCH with a cursor / SEND_LONG_DATA / RESET /
CLOSE, COM_PING, COM_STATISTICS, COM_FIELD_LIST, COM_SET_OPTION,
COM_RESET_CONNECTION, COM_INIT_DB, COM_PROCESS_KILL, COM_CHANGE_USER, with
and without CLIENT_DEPRECATE_EOF).

Each connection becomes OUTDIR/real_<name>: one control byte (0), the
client's byte stream length (u32 little endian), the client's bytes, then
the server's bytes (the protocol is half-duplex, so the two streams are all
a walker needs). --big also records > 16 MiB traffic (a 17 MiB row and a
17 MiB query) into BIGDIR (too large for the repository). --c prints the
small captures as C arrays for tests/unit/test_mysql.c."""
import hashlib
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from capture_relay import Relay, free_port  # noqa: E402

import pymysql

USER, PASSWORD = "strand", "s3cret-pw"


class Server:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="strand-my-")
        self.data = os.path.join(self.dir, "data")
        self.sock = os.path.join(self.dir, "sock")
        self.port = free_port()
        os.chmod(self.dir, 0o777)
        user = "mysql" if os.geteuid() == 0 else None
        args = ["mariadb-install-db", "--no-defaults", "--datadir=" + self.data,
                "--auth-root-authentication-method=normal", "--skip-test-db"]
        if user:
            args.append("--user=" + user)
        subprocess.run(args, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        args = ["mariadbd", "--no-defaults", "--datadir=" + self.data, "--socket=" + self.sock,
                "--port=%d" % self.port, "--bind-address=127.0.0.1", "--skip-log-bin",
                "--max-allowed-packet=64M", "--local-infile=1",
                "--log-error=" + os.path.join(self.dir, "err.log")]
        if user:
            args.append("--user=" + user)
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            self._setup()
        except BaseException:
            self.stop()
            raise

    def _setup(self):
        deadline = time.time() + 60
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("mariadbd exited: " +
                                   open(os.path.join(self.dir, "err.log")).read())
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.5).close()
                break
            except OSError:
                time.sleep(0.1)
        else:
            raise RuntimeError("mariadbd did not start")
        self.sql("CREATE USER '%s'@'%%' IDENTIFIED VIA mysql_native_password USING PASSWORD('%s');"
                 "GRANT ALL ON *.* TO '%s'@'%%';"
                 "CREATE DATABASE shop; CREATE TABLE shop.items (id INT PRIMARY KEY"
                 " AUTO_INCREMENT, name VARCHAR(64), price DECIMAL(8,2), note TEXT);"
                 "INSERT INTO shop.items (name, price) VALUES ('apple', 1.5), ('pear', 2.25),"
                 " ('plum', NULL);" % (USER, PASSWORD, USER))
        subprocess.run(["mariadb", "--no-defaults", "-uroot", "--socket=" + self.sock],
                       input=b"DELIMITER //\nCREATE PROCEDURE shop.two() BEGIN SELECT 1 AS a;"
                       b" SELECT 'x' AS b, 2 AS c; END //\n", check=True)

    def sql(self, text):
        subprocess.run(["mariadb", "--no-defaults", "-uroot", "--socket=" + self.sock, "-e", text],
                       check=True)

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


def cli(port, *args, stdin=None):
    subprocess.run(["mariadb", "--no-defaults", "--protocol=TCP", "-h127.0.0.1", "-P%d" % port,
                    "-u" + USER, "-p" + PASSWORD, "--batch", *args],
                   input=stdin, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


# ---- a raw client for the commands no library sends ----

CAPS = (1 | 4 | 8 | 0x200 | 0x2000 | 0x8000 | 0x10000 | 0x20000 | 0x40000 | 0x80000 | 0x200000)
DEPRECATE_EOF = 1 << 24


class Raw:
    def __init__(self, port, caps):
        self.s = socket.create_connection(("127.0.0.1", port))
        self.s.settimeout(0.3)
        self.buf = b""
        greet = self.packet()
        p = greet[1:]
        p = p[p.index(b"\0") + 1:]
        scramble = p[4:12]
        p = p[13:]
        p = p[2 + 1 + 2 + 2 + 1 + 10:]
        scramble += p[:12]
        h1 = hashlib.sha1(PASSWORD.encode()).digest()
        h3 = hashlib.sha1(scramble + hashlib.sha1(h1).digest()).digest()
        auth = bytes(a ^ b for a, b in zip(h1, h3))
        body = struct.pack("<IIB23s", caps, 1 << 24, 45, b"") + USER.encode() + b"\0"
        body += bytes([len(auth)]) + auth + b"shop\0mysql_native_password\0"
        self.send(body, 1)
        self.drain()

    def send(self, payload, seq=0):
        self.s.sendall(struct.pack("<I", len(payload))[:3] + bytes([seq]) + payload)

    def packet(self):
        while len(self.buf) < 4 or len(self.buf) < 4 + int.from_bytes(self.buf[:3], "little"):
            self.buf += self.s.recv(65536)
        n = int.from_bytes(self.buf[:3], "little")
        p, self.buf = self.buf[4:4 + n], self.buf[4 + n:]
        return p

    def drain(self):
        """Reads until the server is quiet; returns the packets."""
        out = []
        try:
            while True:
                out.append(self.packet())
        except socket.timeout:
            pass
        return out

    def cmd(self, payload):
        self.send(payload)
        return self.drain()

    def close(self):
        self.send(b"\x01")
        self.s.close()


def raw_session(port, caps):
    r = Raw(port, caps)
    r.cmd(b"\x03SELECT id, name, price FROM items ORDER BY id")
    prep = r.cmd(b"\x16SELECT id, name FROM items WHERE id > ? AND name <> ?")
    sid = prep[0][1:5]
    # execute: stmt id, flags 0, iterations 1, null bitmap, bind flag, types, values
    params = b"\x00\x01" + b"\x03\x00" + b"\xfd\x00" + struct.pack("<i", 0) + b"\x04pear"
    r.cmd(b"\x17" + sid + b"\x00" + struct.pack("<I", 1) + params)
    r.cmd(b"\x17" + sid + b"\x01" + struct.pack("<I", 1) + params)  # read-only cursor
    r.cmd(b"\x1c" + sid + struct.pack("<I", 2))                       # fetch 2
    r.cmd(b"\x1c" + sid + struct.pack("<I", 5))                       # fetch the rest
    r.send(b"\x18" + sid + b"\x01\x00" + b"long data")               # no response
    r.cmd(b"\x1a" + sid)                                              # reset
    r.send(b"\x19" + sid)                                             # close, no response
    ins = r.cmd(b"\x16INSERT INTO items (name, price) VALUES (?, ?)")
    iid = ins[0][1:5]
    r.cmd(b"\x17" + iid + b"\x00" + struct.pack("<I", 1) + b"\x00\x01\xfd\x00\x05\x00"
          + b"\x04kiwi" + b"\x04\x00\x00\xc0\x3f")
    r.send(b"\x19" + iid)
    r.cmd(b"\x16SELEKT nonsense")                                     # prepare error
    r.cmd(b"\x0e")                                                    # ping
    r.cmd(b"\x09")                                                    # statistics
    r.cmd(b"\x04items\0")                                             # field list
    r.cmd(b"\x1b\x00\x00")                                            # multi-statements on
    r.cmd(b"\x03SELECT 1; SELECT 2, 'two'; UPDATE items SET note='n' WHERE id=1")
    r.cmd(b"\x03CALL two()")
    r.cmd(b"\x03BEGIN")
    r.cmd(b"\x03UPDATE items SET price = price + 1 WHERE id = 2")
    r.cmd(b"\x03COMMIT")
    r.cmd(b"\x02mysql")                                               # init db
    r.cmd(b"\x02no_such_db")
    r.cmd(b"\x0c" + struct.pack("<I", 999999))                        # kill: ERR
    r.cmd(b"\x1f")                                                    # reset connection
    r.cmd(b"\x03SELECT * FROM no_such_table")
    r.close()


def pymysql_session(port, path):
    c = pymysql.connect(host="127.0.0.1", port=port, user=USER, password=PASSWORD,
                        database="shop", local_infile=True,
                        client_flag=pymysql.constants.CLIENT.MULTI_STATEMENTS)
    cur = c.cursor()
    cur.execute("SELECT name, price FROM items WHERE price IS NOT NULL")
    cur.fetchall()
    cur.execute("INSERT INTO items (name) VALUES ('fig')")
    try:
        cur.execute("SELECT nope FROM items")
    except pymysql.MySQLError:
        pass
    cur.execute("CALL two()")
    while cur.nextset():
        pass
    with open(path, "w") as f:
        f.write("10\tlime\t0.5\n11\tlemon\t0.75\n")
    cur.execute("LOAD DATA LOCAL INFILE %s INTO TABLE items (id, name, price)", (path,))
    c.commit()
    c.close()


def big_session(port):
    c = pymysql.connect(host="127.0.0.1", port=port, user=USER, password=PASSWORD,
                        database="shop", max_allowed_packet=64 << 20)
    cur = c.cursor()
    cur.execute("SELECT REPEAT('a', %d) AS big, 1 AS small" % ((1 << 24) + 100))
    cur.fetchall()
    cur.execute("SELECT LENGTH(%s)", ("b" * ((1 << 24) + 5),))
    cur.fetchall()
    cur.execute("SELECT REPEAT('c', %d)" % ((1 << 24) - 1 - 1 - 4))  # row payload exactly 0xFFFFFF
    cur.fetchall()
    c.close()


def write_seed(path, client, server):
    with open(path, "wb") as f:
        f.write(b"\0" + struct.pack("<I", len(client)) + client + server)


def main():
    out = sys.argv[1]
    big = sys.argv[sys.argv.index("--big") + 1] if "--big" in sys.argv else None
    os.makedirs(out, exist_ok=True)
    srv = Server()
    try:
        relay = Relay(srv.port)
        names = []
        cli(relay.port, "shop", "-e", "SELECT id, name FROM items; SELECT 1 + 1")
        names.append("cli_select")
        cli(relay.port, "-e", "USE shop; SELECT COUNT(*) FROM items; SELECT bogus;")
        names.append("cli_error")
        cli(relay.port, "shop", stdin=b"INSERT INTO items (name) VALUES ('x'); "
            b"DELETE FROM items WHERE name = 'x';\nSHOW TABLES;\n")
        names.append("cli_dml")
        raw_session(relay.port, CAPS)
        names.append("raw_eof")
        raw_session(relay.port, CAPS | DEPRECATE_EOF)
        names.append("raw_deprecate_eof")
        tmp = tempfile.mktemp(prefix="strand-infile-")
        pymysql_session(relay.port, tmp)
        os.unlink(tmp)
        names.append("pymysql")
        conns = relay.take()
        # The CLI's -e with an error exits after it; some runs open no extra
        # connections, so pair names with what was recorded.
        if len(conns) != len(names):
            raise RuntimeError("recorded %d connections for %d sessions" % (len(conns), len(names)))
        for name, (cb, sb) in zip(names, conns):
            write_seed(os.path.join(out, "real_" + name), cb, sb)
            print("real_%s: client %d bytes, server %d bytes" % (name, len(cb), len(sb)),
                  file=sys.stderr)
        if big:
            os.makedirs(big, exist_ok=True)
            big_session(relay.port)
            for cb, sb in relay.take():
                write_seed(os.path.join(big, "real_big"), cb, sb)
                print("real_big: client %d bytes, server %d bytes" % (len(cb), len(sb)),
                      file=sys.stderr)
        if "--c" in sys.argv:
            for name, (cb, sb) in zip(names, conns):
                blob = b"\0" + struct.pack("<I", len(cb)) + cb + sb
                print("static const unsigned char cap_%s[%d] = {" % (name, len(blob)))
                for i in range(0, len(blob), 20):
                    print("    " + ", ".join("0x%02x" % x for x in blob[i:i + 20]) + ",")
                print("};")
    finally:
        srv.stop()


if __name__ == "__main__":
    main()
