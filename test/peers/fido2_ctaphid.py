#!/usr/bin/python3
"""Peer test: python3-fido2 0.9.1's CTAPHID framing against keytap's virtual key.

Usage: /usr/bin/python3 test/peers/fido2_ctaphid.py SOCKET_PATH

Checks INIT (CtapHidDevice construction), PING echoes of 0, 57, 58, 1000 and the dialect's maximum
(7609 bytes YubiKey, 3072 Nitrokey 3) plus INVALID_LEN one byte above it, WINK, vendor command 0x70
with SELECT OATH (answer SW1 SW2 first, then data starting with the version tag 0x79) and the same
APDU over MSG (ISO order: data, then SW). Prints the results as JSON; exits 1 on any mismatch.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from fido2.ctap import CtapError  # noqa: E402
from fido2.hid import CAPABILITY, CTAPHID  # noqa: E402
from virtual_hid import Checks, open_virtual_ctaphid, run_with_socket_path  # noqa: E402

VENDOR_SECRETS = 0x70
SELECT_OATH = bytes.fromhex("00A4040007A0000005272101")
MAX_MESSAGE = {"yubikey": 7609, "nitrokey3": 3072}


def main(socket_path):
    check = Checks()
    results = check.results

    device = open_virtual_ctaphid(socket_path, timeout=10.0)
    try:
        status = device._connection.control({"op": "status"})
        dialect = status.get("dialect")
        check("status names a dialect", dialect in MAX_MESSAGE, status)
        max_message = MAX_MESSAGE.get(dialect, 7609)

        cid = device._channel_id
        check("INIT allocated a channel", cid not in (0, 0xFFFFFFFF), "0x%08x" % cid)
        check("CTAPHID protocol version 2", device.version == 2, device.version)
        check("capabilities: WINK, no CBOR, MSG supported", device.capabilities == CAPABILITY.WINK, device.capabilities)
        results["init"] = {
            "cid": cid,
            "version": device.version,
            "device_version": list(device.device_version),
            "capabilities": device.capabilities,
        }

        for size in [0, 57, 58, 1000, max_message]:
            payload = os.urandom(size)
            echo = device.ping(payload)
            check("PING %d bytes echoed" % size, echo == payload, len(echo))

        try:
            device.ping(os.urandom(max_message + 1))
            check("PING %d bytes refused" % (max_message + 1), False, "answered")
        except CtapError as error:
            check("PING %d bytes refused with INVALID_LEN" % (max_message + 1), error.code == CtapError.ERR.INVALID_LENGTH, str(error))
        echo = device.ping(b"still alive")
        check("PING after INVALID_LEN", echo == b"still alive", echo.hex())

        device.wink()
        check("WINK answered", True)

        answer = bytes(device.call(VENDOR_SECRETS, SELECT_OATH))
        results["vendor_0x70_select"] = answer.hex()
        check("0x70 answer starts with SW 9000", answer[:2] == b"\x90\x00", answer[:4].hex())
        check("0x70 data follows the SW (version tag 79)", len(answer) > 2 and answer[2] == 0x79, answer[:6].hex())

        iso = bytes(device.call(CTAPHID.MSG, SELECT_OATH))
        results["msg_select"] = iso.hex()
        check("MSG answer ends with SW 9000 (ISO order)", iso[-2:] == b"\x90\x00", iso[-4:].hex())
        check("MSG answer starts with the version tag 79", len(iso) > 2 and iso[0] == 0x79, iso[:4].hex())
        check("MSG and 0x70 carry the same data", iso[:-2] == answer[2:], None)

        try:
            device.call(VENDOR_SECRETS, b"\x00\xa4\x04")
            check("0x70 with a 3-byte APDU refused", False, "answered")
        except CtapError as error:
            check("0x70 with a 3-byte APDU gets ERROR INVALID_LEN", error.code == CtapError.ERR.INVALID_LENGTH, str(error))
    finally:
        device.close()

    return check.report()


if __name__ == "__main__":
    run_with_socket_path(main)
