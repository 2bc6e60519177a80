"""The HTTP servers that run the Flask app: werkzeug's threaded development server, hardened, and waitress for
`--production`.

Both send the app's security headers on the responses they make themselves (a malformed request line, headers too
large, a server-side 500), which never reach the app's after_request; both drop a connection idle for `timeout`
seconds and bound the connections open at once. The development server spends a thread per connection, so
`connection_limit` is its thread cap; waitress serves every connection from one event loop and a fixed pool of
`threads`, so an idle connection costs it no thread at all.
"""

from __future__ import annotations

import errno
import ipaddress
import re
import socket
import threading

from waitress import wasyncore
from waitress.channel import HTTPChannel
from waitress.server import TcpWSGIServer, create_server
from waitress.task import ErrorTask
from werkzeug.serving import ThreadedWSGIServer, WSGIRequestHandler
from werkzeug.wsgi import FileWrapper

from server.app import SECURITY_HEADERS

DEFAULT_TIMEOUT = 30.0  # seconds a connection may go without a byte in either direction
DEFAULT_CONNECTION_LIMIT = 100  # waitress's own default; for the development server also its thread cap
PRODUCTION_THREADS = 4  # waitress's default: file bodies go out from its event loop, not from these threads
# GET and HEAD only: a request body is never read, so waitress need not spool a big one to disk first
MAX_REQUEST_BODY = 4096


class ServeError(Exception):
    """An address that cannot be served (bad host or port, port in use): a one-line message for the user."""


def check_port(port: int | str) -> int:
    """The port as an int, or ServeError: 0 would bind a random port and getaddrinfo wraps larger numbers
    modulo 65536 (99999 listened on 34463)."""
    text = str(port)
    if not re.fullmatch(r"[0-9]{1,5}", text) or not 1 <= int(text) <= 65535:
        raise ServeError(f"port must be a number from 1 to 65535, not {text!r}")
    return int(text)


def check_host(host: str) -> str:
    """The host, or ServeError. An empty host would bind every interface; werkzeug reads 'unix://...' as a socket
    file; a name must resolve."""
    if not isinstance(host, str) or not host.strip() or host != host.strip() or "\x00" in host:
        raise ServeError(
            f"host must be an IP address or a host name (e.g. 127.0.0.1, ::1, localhost), not {str(host)!r}"
        )
    if "/" in host or host.count(":") == 1:
        raise ServeError(f"host {host!r} is not an IP address or a host name (give the port with --port)")
    try:
        socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        reason = exc.strerror if isinstance(exc, socket.gaierror) else str(exc)
        raise ServeError(f"host {host!r} does not resolve ({reason})") from None
    return host


def listen(host: str, port: int, backlog: int = 128) -> socket.socket:
    """A listening TCP socket on the first address `host` resolves to (port 0: a free port), or ServeError naming
    why not."""
    host = check_host(host)
    family, socktype, proto, _, sockaddr = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    sock = socket.socket(family, socktype, proto)
    try:
        # Binds again right after a restart (connections in TIME_WAIT); a port another server listens on is
        # still refused on Linux.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(sockaddr)
        sock.listen(backlog)
    except OSError as exc:
        sock.close()
        where = f"{host}:{port}" if ":" not in host else f"[{host}]:{port}"
        reason = {
            errno.EADDRINUSE: f"port {port} is in use by another program; pick another with --port",
            errno.EACCES: "permission denied (ports below 1024 need root); pick another with --port",
            errno.EADDRNOTAVAIL: f"{host} is not an address of this machine",
        }.get(exc.errno, exc.strerror or str(exc))
        raise ServeError(f"cannot listen on {where}: {reason}") from None
    return sock


def is_wildcard(host: str) -> bool:
    """Whether `host` binds every interface (the files are then served to the whole network)."""
    try:
        return ipaddress.ip_address(host).is_unspecified
    except ValueError:
        return False


# ---------------------------------------------------------------------------------------------------------
# development server: werkzeug's, with a socket timeout, a thread cap and headers on its own responses

FILE_BLOCK = 1 << 18


def _file_wrapper(file, buffer_size: int = 8192) -> FileWrapper:
    # send_file() asks for 8 KiB blocks: 1700 Python-level writes for a 14 MB weights file, each with a poll()
    # since the socket has a timeout
    return FileWrapper(file, max(buffer_size, FILE_BLOCK))


class _DevRequestHandler(WSGIRequestHandler):
    # A request line that fails to parse leaves the version at this default; at "HTTP/0.9" the error was written
    # with no status line and no headers at all.
    default_request_version = "HTTP/1.0"

    def setup(self) -> None:
        # StreamRequestHandler.setup() puts this on the socket: a read or a write that waits longer raises
        # socket.timeout, which werkzeug's handle() takes as a dropped connection, ending the thread.
        self.timeout = self.server.connection_timeout
        self._header_names: set[str] = set()
        super().setup()

    def make_environ(self):
        environ = super().make_environ()
        environ["wsgi.file_wrapper"] = _file_wrapper
        return environ

    def parse_request(self) -> bool:
        if not super().parse_request():
            return False
        if len(self.requestline.split()) == 2:
            # HTTP/0.9 responses carry no headers, so the security headers could not be sent.
            self.send_error(505, "HTTP/0.9 is not served")
            return False
        return True

    def send_response_only(self, code: int, message: str | None = None) -> None:
        self._header_names = set()
        super().send_response_only(code, message)

    def send_header(self, keyword: str, value: str) -> None:
        name = keyword.lower()
        if name in ("date", "server") and name in self._header_names:
            return  # send_response() wrote these already and send_file() sets its own Date: one of each
        self._header_names.add(name)
        super().send_header(keyword, value)

    def end_headers(self) -> None:
        # The app's responses already carry these; send_error's (400, 414, 431, 505) and werkzeug's own 500 do not.
        for name, value in SECURITY_HEADERS.items():
            if name.lower() not in self._header_names:
                super().send_header(name, value)
        super().end_headers()


class DevServer(ThreadedWSGIServer):
    """werkzeug's threaded server on an already listening socket, one thread per connection up to
    `connection_limit`; a connection past that gets a 503 at once instead of a thread."""

    def __init__(self, sock: socket.socket, app, timeout: float, connection_limit: int) -> None:
        self.connection_timeout = timeout
        self.connection_limit = connection_limit
        self._slots = threading.BoundedSemaphore(connection_limit)
        host = sock.getsockname()[0]
        # werkzeug dups the descriptor; ours is closed here so only the server's copy stays open
        super().__init__(host, sock.getsockname()[1], app, handler=_DevRequestHandler, fd=sock.fileno())
        sock.close()

    def serve_forever(self, poll_interval: float = 0.1) -> None:
        # shutdown() waits for the next poll: werkzeug's 0.5 s made every test's server teardown half a second
        super().serve_forever(poll_interval)

    def process_request(self, request, client_address) -> None:
        if not self._slots.acquire(blocking=False):
            self._refuse(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request, client_address) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def _refuse(self, request: socket.socket) -> None:
        """503 from the accept loop, which must not block: whatever the client sent already is read first, since
        closing a socket with unread input resets the connection and the client could lose the answer."""
        body = b"server busy: too many open connections, retry later\n"
        head = [
            "HTTP/1.1 503 Service Unavailable",
            "Content-Type: text/plain; charset=utf-8",
            f"Content-Length: {len(body)}",
            "Retry-After: 1",
            "Connection: close",
            *(f"{name}: {value}" for name, value in SECURITY_HEADERS.items()),
        ]
        try:
            request.setblocking(False)
            try:
                request.recv(65536)
            except BlockingIOError:
                pass
            request.settimeout(1.0)
            request.sendall(("\r\n".join(head) + "\r\n\r\n").encode("ascii") + body)
        except OSError:
            pass
        finally:
            self.shutdown_request(request)


# ---------------------------------------------------------------------------------------------------------
# production server: waitress


class _ErrorTask(ErrorTask):
    # waitress's own answers (400, 413, 431, 501, and 500 when the app raises) never reach the app
    def execute(self) -> None:
        self.response_headers.extend(SECURITY_HEADERS.items())
        super().execute()


class _Channel(HTTPChannel):
    error_task_class = _ErrorTask


class ProductionServer:
    """waitress on an already listening socket, with the interface of socketserver's servers that serve() and
    serving_in_background() use: serve_forever(), shutdown() from another thread, server_close()."""

    def __init__(self, sock: socket.socket, app, timeout: float, connection_limit: int, threads: int) -> None:
        self.port = sock.getsockname()[1]
        self._server = create_server(
            app,
            sockets=[sock],
            threads=threads,
            connection_limit=connection_limit,
            channel_timeout=max(1, round(timeout)),
            # idle channels are looked for this often, so one is closed between timeout and 1.5 x timeout
            cleanup_interval=max(1, round(timeout / 2)),
            max_request_body_size=MAX_REQUEST_BODY,
        )
        assert isinstance(self._server, TcpWSGIServer), "one socket gives one waitress server"
        self._server.channel_class = _Channel
        self._stop = threading.Event()
        self._running = False
        self._stopped = threading.Event()

    def serve_forever(self) -> None:
        adj = self._server.adj
        self._running = True
        try:
            while not self._stop.is_set() and self._server._map:
                wasyncore.loop(timeout=adj.asyncore_loop_timeout, map=self._server._map, count=1)
        finally:
            self._stopped.set()

    def shutdown(self) -> None:
        self._stop.set()
        self._server.pull_trigger()  # wakes the loop out of its select()
        if self._running:
            self._stopped.wait()

    def server_close(self) -> None:
        self._server.task_dispatcher.shutdown()
        wasyncore.close_all(self._server._map)


def make_server(
    app,
    host: str = "127.0.0.1",
    port: int | str = 8000,
    production: bool = False,
    timeout: float = DEFAULT_TIMEOUT,
    connection_limit: int = DEFAULT_CONNECTION_LIMIT,
    threads: int = PRODUCTION_THREADS,
) -> DevServer | ProductionServer:
    """A server bound and listening (ServeError if it cannot be), not yet serving. `port` 0 (a free port) is
    allowed here for tests and benchmarks; the command line refuses it."""
    sock = listen(host, 0 if port == 0 else check_port(port))
    try:
        if production:
            return ProductionServer(sock, app, timeout, connection_limit, threads)
        return DevServer(sock, app, timeout, connection_limit)
    except BaseException:
        sock.close()
        raise
