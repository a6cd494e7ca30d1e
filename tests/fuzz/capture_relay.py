"""What capture_pg.py and capture_mysql.py share: a free loopback port and a
TCP relay that records both directions of every connection it carries.

The relay accepts on a port of its own and connects each client to the
server; take() waits for the recorded connections to end and returns their
(client bytes, server bytes) in accept order."""
import socket
import threading


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Relay:
    def __init__(self, upstream_port):
        self.upstream = upstream_port
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.sessions = []  # [client bytearray, server bytearray, done Event x2]
        self.lock = threading.Lock()
        threading.Thread(target=self.accept_loop, daemon=True).start()

    def accept_loop(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            u = socket.create_connection(("127.0.0.1", self.upstream))
            rec = [bytearray(), bytearray(), threading.Event(), threading.Event()]
            with self.lock:
                self.sessions.append(rec)
            threading.Thread(target=self.pump, args=(c, u, rec[0], rec[2]), daemon=True).start()
            threading.Thread(target=self.pump, args=(u, c, rec[1], rec[3]), daemon=True).start()

    @staticmethod
    def pump(src, dst, log, done):
        try:
            while True:
                b = src.recv(65536)
                if not b:
                    break
                log += b
                dst.sendall(b)
        except OSError:
            pass
        try:
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        done.set()

    def take(self, timeout=10):
        """Waits for every recorded connection to finish; returns and clears them."""
        with self.lock:
            sess = list(self.sessions)
            self.sessions.clear()
        for s in sess:
            s[2].wait(timeout)
            s[3].wait(timeout)
        return [(bytes(s[0]), bytes(s[1])) for s in sess]
