"""An HTTP server written for systemd socket activation: it binds nothing, it serves the sockets it is given.

activated.py [--fd N | --bind PORT]: without either it reads LISTEN_FDS / LISTEN_PID / LISTEN_FDNAMES
(checking that LISTEN_PID is its own pid, as sd_listen_fds does) and serves the first socket; with --fd
it serves fd N; with --bind it binds 127.0.0.1:PORT itself (SO_REUSEPORT, so numprocs copies can), as a
server does under a supervisor that holds no socket (the benchmark's baseline).
Every answer is ``<pid> <fd names>``. On SIGTERM it stops accepting, finishes the request in hand and
exits 0: what is still queued stays in the held socket for the next process.
"""

import os
import selectors
import signal
import socket
import sys

if "--bind" in sys.argv:
    own = socket.socket()
    own.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    own.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    own.bind(("127.0.0.1", int(sys.argv[sys.argv.index("--bind") + 1])))
    own.listen(socket.SOMAXCONN)
    fd, names = own.detach(), "-"
elif "--fd" in sys.argv:
    fd, names = int(sys.argv[sys.argv.index("--fd") + 1]), "-"
else:
    if os.environ.get("LISTEN_PID") != str(os.getpid()):
        sys.exit(f"LISTEN_PID={os.environ.get('LISTEN_PID')!r} is not my pid {os.getpid()}")
    count = int(os.environ["LISTEN_FDS"])
    names = os.environ.get("LISTEN_FDNAMES", "")
    print(f"LISTEN_FDS={count} LISTEN_FDNAMES={names}", flush=True)
    fd = 3
listener = socket.socket(fileno=fd)
listener.setblocking(False)  # shared with the siblings (numprocs): whoever is first takes a connection
wake_r, wake_w = socket.socketpair()
wake_w.setblocking(False)
signal.set_wakeup_fd(wake_w.fileno())
signal.signal(signal.SIGTERM, lambda *_: None)  # the wake-up fd says it; the loop below ends
selector = selectors.DefaultSelector()
selector.register(listener, selectors.EVENT_READ)
selector.register(wake_r, selectors.EVENT_READ)
print(f"serving fd {fd} as pid {os.getpid()}", flush=True)
while True:
    ready = [key.fileobj for key, _ in selector.select()]
    if wake_r in ready:
        break
    try:
        conn, _ = listener.accept()
    except BlockingIOError:
        continue  # a sibling process took it
    with conn:
        conn.setblocking(True)
        request = b""
        while b"\r\n\r\n" not in request:
            chunk = conn.recv(4096)
            if not chunk:
                break
            request += chunk
        body = f"{os.getpid()} {names}\n".encode()
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body))
if "--bind" in sys.argv:
    listener.close()
else:
    listener.detach()  # not closed: it is procward's to keep
print("stopped", flush=True)
