"""python3-fido2 (Debian's 0.9.1) speaking to keytap's virtual key through its local socket.

Run with /usr/bin/python3 (the Debian interpreter that has python3-fido2), not a pyenv python3.

    import sys; sys.path.insert(0, "test/peers")
    from virtual_hid import open_virtual_ctaphid
    dev = open_virtual_ctaphid("/run/user/1000/keytap/vk-0123456789ab.sock")
    dev.ping(b"hello")                      # fido2.hid.CtapHidDevice: INIT already done
    answer = dev.call(0x70, apdu)           # vendor 0x70: SW1 SW2 first, then data
    dev.close()

The socket protocol (src/device/transport/socket-link.ts): frames of a u16 big-endian length and a
body; body[0] is the type: 0x01 a 64-byte HID report (both directions), 0x02 a JSON control request
(client to server), 0x03 its JSON answer (server to client).

Each connection is one HID "open" and, like a hidraw reader, sees every input report of the key.
python-fido2 0.9.1 raises "Wrong channel" on a report for another CID (it assumes it is alone), so
this connection drops input reports that are not for the CID of the last packet written, and INIT
answers whose nonce is not the one just sent, as libfido2 does. That keeps a test honest when a
second client (the tray, another test) talks to the same virtual key.
"""
import json
import socket
import struct
import sys

from fido2.hid import CtapHidDevice
from fido2.hid.base import CtapHidConnection, HidDescriptor

REPORT_SIZE = 64
BROADCAST_CID = 0xFFFFFFFF
TYPE_INIT = 0x80
CTAPHID_INIT = 0x06

FRAME_REPORT = 0x01
FRAME_CONTROL_REQUEST = 0x02
FRAME_CONTROL_RESPONSE = 0x03

# USB ids the descriptor reports for each dialect (informational; nothing here checks them).
USB_IDS = {"yubikey": (0x1050, 0x0407), "nitrokey3": (0x20A0, 0x42B2)}


class VirtualKeyGone(OSError):
    """The server closed the connection: the virtual key was unplugged or stopped."""


class SocketCtapHidConnection(CtapHidConnection):
    """A fido2.hid.base.CtapHidConnection over the virtual key's socket.

    :param socket_path: the key's Unix socket (``RunningVirtualKey.socket``).
    :param timeout: seconds a read_packet may wait (a touch wait can last 15 s); raises
        socket.timeout after that, where a real hidraw read would block forever.
    """

    def __init__(self, socket_path, timeout=30.0):
        self.socket_path = socket_path
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.settimeout(timeout)
        self._sock.connect(socket_path)
        self._buffer = b""
        self._reports = []
        self._answers = []
        self._cid = None
        self._init_nonce = None

    # -- framing --------------------------------------------------------------------------

    def _send_frame(self, frame_type, content):
        body = bytes([frame_type]) + bytes(content)
        self._sock.sendall(struct.pack(">H", len(body)) + body)

    def _read_frame(self):
        while True:
            if len(self._buffer) >= 2:
                (length,) = struct.unpack_from(">H", self._buffer)
                if length == 0:
                    raise OSError("malformed frame from the virtual key server")
                if len(self._buffer) >= 2 + length:
                    body = self._buffer[2 : 2 + length]
                    self._buffer = self._buffer[2 + length :]
                    return body
            chunk = self._sock.recv(65536)
            if not chunk:
                raise VirtualKeyGone("the virtual key went away")
            self._buffer += chunk

    def _pump(self):
        """Reads one frame and files it under reports or control answers."""
        body = self._read_frame()
        if body[0] == FRAME_REPORT and len(body) == 1 + REPORT_SIZE:
            self._reports.append(body[1:])
        elif body[0] == FRAME_CONTROL_RESPONSE:
            self._answers.append(json.loads(body[1:].decode("utf-8")))
        else:
            raise OSError("unexpected frame type 0x%02x from the virtual key server" % body[0])

    # -- CtapHidConnection ----------------------------------------------------------------

    def write_packet(self, data):
        data = bytes(data)
        if len(data) == REPORT_SIZE + 1 and data[0] == 0:
            data = data[1:]  # a report-id prefix, as OS backends want it
        if len(data) != REPORT_SIZE:
            raise ValueError("a CTAPHID report has %d bytes, not %d" % (REPORT_SIZE, len(data)))
        (cid,) = struct.unpack_from(">I", data)
        self._cid = cid
        is_init = data[4] == TYPE_INIT | CTAPHID_INIT
        self._init_nonce = data[7:15] if cid == BROADCAST_CID and is_init else None
        self._send_frame(FRAME_REPORT, data)

    def _wanted(self, report):
        (cid,) = struct.unpack_from(">I", report)
        if self._cid is not None and cid != self._cid:
            return False
        if self._init_nonce is not None and report[4] == TYPE_INIT | CTAPHID_INIT:
            return report[7:15] == self._init_nonce
        return True

    def read_packet(self):
        while True:
            while self._reports:
                report = self._reports.pop(0)
                if self._wanted(report):
                    return report
            self._pump()

    def close(self):
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    # -- control --------------------------------------------------------------------------

    def control(self, request):
        """Sends a control request ({"op": "status"|"touch"|"stop"|"set-touch", ...}) and returns
        the decoded answer ({"ok": True, ...} or {"ok": False, "error": "..."}). Input reports
        that arrive meanwhile are kept for read_packet."""
        self._send_frame(FRAME_CONTROL_REQUEST, json.dumps(request).encode("utf-8"))
        while not self._answers:
            self._pump()
        return self._answers.pop(0)


def virtual_descriptor(socket_path, dialect="yubikey"):
    """The HidDescriptor fido2.hid.CtapHidDevice wants: path, USB ids, 64-byte reports."""
    vid, pid = USB_IDS.get(dialect, USB_IDS["yubikey"])
    return HidDescriptor(socket_path, vid, pid, REPORT_SIZE, REPORT_SIZE)


def open_virtual_connection(socket_path, timeout=30.0):
    """A SocketCtapHidConnection, for callers that want the raw packets (or control requests)."""
    return SocketCtapHidConnection(socket_path, timeout)


def open_virtual_ctaphid(socket_path, timeout=30.0):
    """A fido2.hid.CtapHidDevice on the virtual key at socket_path, its channel already
    allocated (the constructor runs CTAPHID INIT). The connection stays reachable as
    ``device._connection`` (for ``control``)."""
    connection = SocketCtapHidConnection(socket_path, timeout)
    try:
        status = connection.control({"op": "status"})
        dialect = status.get("dialect", "yubikey") if status.get("ok") else "yubikey"
        return CtapHidDevice(virtual_descriptor(socket_path, dialect), connection)
    except Exception:
        connection.close()
        raise


class Checks:
    """The named checks of a peer script; the vitest side reads them back from the JSON printed
    by ``report()``. Other keys of ``results`` carry figures for the test's message."""

    def __init__(self):
        self.results = {"checks": [], "ok": True}

    def __call__(self, name, condition, detail=None):
        self.results["checks"].append({"name": name, "ok": bool(condition), "detail": detail})
        if not condition:
            self.results["ok"] = False

    def report(self):
        print(json.dumps(self.results, indent=2))
        return 0 if self.results["ok"] else 1


def run_with_socket_path(main):
    """``main(SOCKET_PATH)`` from the command line, as every peer script here is run."""
    if len(sys.argv) != 2:
        print("usage: %s SOCKET_PATH" % sys.argv[0].rsplit("/", 1)[-1], file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1]))
