#!/usr/bin/python3
"""Peer test: python3-fido2 0.9.1 against a virtual key while another client holds a message open.

Usage: /usr/bin/python3 test/peers/fido2_ctaphid_held.py SOCKET_PATH

A "hog" connection gets a channel, sends the first packet of a 7609-byte PING and then one
continuation packet every 400 ms (never a gap long enough for the per-packet timeout). A second
connection, an ordinary fido2.hid.CtapHidDevice, pings every 100 ms meanwhile. The device must
answer the pinger CHANNEL_BUSY while the message is open, end the hog's message with ERROR
MSG_TIMEOUT once the message deadline has passed, and then answer the pinger. Prints the results
as JSON; exits 1 on any mismatch.
"""
import os
import struct
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from fido2.ctap import CtapError  # noqa: E402
from fido2.hid import CTAPHID  # noqa: E402
from virtual_hid import Checks, open_virtual_connection, open_virtual_ctaphid, run_with_socket_path  # noqa: E402

REPORT_SIZE = 64
MSG_TIMEOUT = 0x05
HOLD_FOR_S = 8.0


def frames(cid, cmd, payload):
    first = struct.pack(">IBH", cid, 0x80 | cmd, len(payload)) + payload[:57]
    packets = [first.ljust(REPORT_SIZE, b"\0")]
    rest = payload[57:]
    seq = 0
    while rest:
        packets.append((struct.pack(">IB", cid, seq) + rest[:59]).ljust(REPORT_SIZE, b"\0"))
        rest = rest[59:]
        seq += 1
    return packets


def main(socket_path):
    check = Checks()
    results = check.results

    hog_device = open_virtual_ctaphid(socket_path, timeout=10.0)
    hog_cid = hog_device._channel_id
    hog = hog_device._connection
    pinger = open_virtual_ctaphid(socket_path, timeout=10.0)
    errors = []

    def hold():
        packets = frames(hog_cid, CTAPHID.PING, os.urandom(7609))
        started = time.monotonic()
        for packet in packets:
            if time.monotonic() - started > HOLD_FOR_S:
                return
            hog.write_packet(packet)
            time.sleep(0.4)

    def hog_reader():
        # The hog's connection sees its own channel's answers only (virtual_hid filters by CID).
        try:
            report = hog.read_packet()
            errors.append((time.monotonic(), report[4], report[7]))
        except Exception as error:  # noqa: BLE001
            errors.append((time.monotonic(), None, str(error)))

    holder = threading.Thread(target=hold, daemon=True)
    reader = threading.Thread(target=hog_reader, daemon=True)
    started = time.monotonic()
    holder.start()
    time.sleep(0.05)
    reader.start()
    busy = 0
    answered_at = None
    while time.monotonic() - started < HOLD_FOR_S:
        try:
            echo = pinger.ping(b"are you there")
            if echo == b"are you there":
                answered_at = time.monotonic() - started
                break
        except CtapError as error:
            if error.code == CtapError.ERR.CHANNEL_BUSY:
                busy += 1
            else:
                check("only CHANNEL_BUSY while the message is held", False, str(error))
                break
        time.sleep(0.1)
    reader.join(2.0)

    results["busy_answers"] = busy
    results["answered_after_s"] = answered_at
    check("the pinger was told CHANNEL_BUSY while the message was open", busy > 0, busy)
    check("the pinger was answered within 4 s, after the message deadline", answered_at is not None and 2.5 <= answered_at < 4.0, answered_at)
    hog_error = errors[0] if errors else None
    check(
        "the hog's message ended with ERROR MSG_TIMEOUT",
        hog_error is not None and hog_error[1] == (0x80 | CTAPHID.ERROR) and hog_error[2] == MSG_TIMEOUT,
        None if hog_error is None else [hog_error[0] - started, hog_error[1], hog_error[2]],
    )
    echo = pinger.ping(b"again")
    check("the pinger keeps being answered", echo == b"again", echo.hex())
    hog_device.close()
    pinger.close()
    return check.report()


if __name__ == "__main__":
    run_with_socket_path(main)
