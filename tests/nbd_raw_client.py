#!/usr/bin/python3
"""A raw NBD client for tests/test_nbd_hostile.sh: it speaks the protocol by
hand (no libnbd) so it can break it on purpose.

    nbd_raw_client.py SOCKET SCENARIO

Each scenario connects, misbehaves in one way, and checks that the server
answers as the protocol says (an error value, an error reply, or closing the
connection). Exit status 0 when it did, 1 (with a message) when not.
"""
import socket
import struct
import sys
import threading

NBDMAGIC = 0x4E42444D41474943
IHAVEOPT = 0x49484156454F5054
REPLY_MAGIC = 0x0003E889045565A9
REQUEST_MAGIC = 0x25609513
SIMPLE_MAGIC = 0x67446698
STRUCTURED_MAGIC = 0x668E33EF

OPT_EXPORT_NAME, OPT_ABORT, OPT_LIST, OPT_GO, OPT_STRUCTURED = 1, 2, 3, 7, 8
OPT_SET_META = 10
REP_ACK, REP_INFO = 1, 3
ERR_UNSUP, ERR_INVALID, ERR_TOO_BIG = 0x80000001, 0x80000003, 0x80000009
CMD_READ, CMD_WRITE, CMD_DISC, CMD_BLOCK_STATUS = 0, 1, 2, 7
EPERM, EINVAL, ENOSPC, EOVERFLOW = 1, 22, 28, 75
FLAG_READ_ONLY = 1 << 1


class Fail(Exception):
    pass


class Client:
    def __init__(self, path):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.settimeout(20)
        self.s.connect(path)
        self.size = 0
        self.flags = 0

    def recv(self, n):
        buf = b""
        while len(buf) < n:
            part = self.s.recv(n - len(buf))
            if not part:
                raise Fail("server closed the connection after %d of %d bytes" % (len(buf), n))
            buf += part
        return buf

    def closed_by_server(self):
        """True if the server ends the connection (without sending more)."""
        try:
            return self.s.recv(1) == b""
        except ConnectionResetError:
            return True
        except socket.timeout:
            return False

    def send(self, data):
        self.s.sendall(data)

    def greeting(self, client_flags=3):
        magic, opt, _hflags = struct.unpack(">QQH", self.recv(18))
        if magic != NBDMAGIC or opt != IHAVEOPT:
            raise Fail("bad greeting")
        self.send(struct.pack(">I", client_flags))

    def option(self, opt, data=b""):
        self.send(struct.pack(">QII", IHAVEOPT, opt, len(data)) + data)

    def option_reply(self):
        magic, opt, rtype, length = struct.unpack(">QIII", self.recv(20))
        if magic != REPLY_MAGIC:
            raise Fail("bad option reply magic %x" % magic)
        return opt, rtype, self.recv(length)

    def go(self, structured=False, meta=False):
        """Fixed newstyle handshake up to transmission."""
        self.greeting()
        if structured:
            self.option(OPT_STRUCTURED)
            if self.option_reply()[1] != REP_ACK:
                raise Fail("STRUCTURED_REPLY refused")
        if meta:
            q = b"base:allocation"
            self.option(OPT_SET_META, struct.pack(">I", 0) + struct.pack(">I", 1) + struct.pack(">I", len(q)) + q)
            while self.option_reply()[1] != REP_ACK:
                pass
        self.option(OPT_GO, struct.pack(">IH", 0, 0))
        while True:
            _opt, rtype, data = self.option_reply()
            if rtype == REP_INFO and struct.unpack(">H", data[:2])[0] == 0:
                self.size, self.flags = struct.unpack(">QH", data[2:12])
            if rtype == REP_ACK:
                return
            if rtype & 0x80000000:
                raise Fail("GO refused: %x" % rtype)

    def request(self, cmd, cookie, offset, length, flags=0, payload=b""):
        self.send(struct.pack(">IHHQQI", REQUEST_MAGIC, flags, cmd, cookie, offset, length) + payload)

    def reply(self, data_len=0):
        """One simple reply (plus data_len bytes on success) or one structured
        chunk. Returns (cookie, error, kind, payload)."""
        magic = struct.unpack(">I", self.recv(4))[0]
        if magic == SIMPLE_MAGIC:
            error, cookie = struct.unpack(">IQ", self.recv(12))
            data = self.recv(data_len) if error == 0 and data_len else b""
            return cookie, error, "simple", data
        if magic == STRUCTURED_MAGIC:
            flags, rtype, cookie, length = struct.unpack(">HHQI", self.recv(16))
            payload = self.recv(length)
            error = struct.unpack(">I", payload[:4])[0] if rtype & 0x8000 else 0
            return cookie, error, "chunk%d%s" % (rtype, "-done" if flags & 1 else ""), payload
        raise Fail("bad reply magic %x" % magic)


def expect(cond, what):
    if not cond:
        raise Fail(what)


def expect_error(c, cookie, want, data_len=0):
    got_cookie, err, kind, _ = c.reply(data_len)
    expect(got_cookie == cookie, "reply for cookie %d, wanted %d" % (got_cookie, cookie))
    if isinstance(want, int):
        want = (want,)
    expect(err in want, "error %d (%s), wanted one of %s" % (err, kind, want))


def still_serving(c):
    """A small read works on the same connection."""
    c.request(CMD_READ, 999, 0, 512)
    cookie, err, _kind, data = c.reply(512)
    expect(cookie == 999 and err == 0, "a read after the bad request failed (error %d)" % err)


# ---------------------------------------------------------------- scenarios

def bad_magic(path):
    c = Client(path)
    c.greeting()
    c.send(b"NOTMAGIC" + struct.pack(">II", OPT_GO, 0))
    expect(c.closed_by_server(), "bad option magic: connection not closed")


def bad_client_flags(path):
    c = Client(path)
    c.greeting(client_flags=0x10)
    expect(c.closed_by_server(), "unknown client flags: connection not closed")


def huge_option(path):
    c = Client(path)
    c.greeting()
    c.send(struct.pack(">QII", IHAVEOPT, OPT_GO, 0xFFFFFFFF) + b"x" * 100)
    _opt, rtype, _ = c.option_reply()
    expect(rtype == ERR_TOO_BIG, "4 GB option: reply %x, wanted ERR_TOO_BIG" % rtype)
    expect(c.closed_by_server(), "4 GB option: connection not closed")


def unknown_option(path):
    c = Client(path)
    c.greeting()
    for opt in (5, 11, 4, 12345, 0xFFFFFFFF):  # STARTTLS, EXTENDED_HEADERS, withdrawn, unknown
        c.option(opt, b"some data the server must skip")
        got, rtype, _ = c.option_reply()
        expect(got == opt and rtype == ERR_UNSUP, "option %d: reply %x, wanted ERR_UNSUP" % (opt, rtype))
    c.option(OPT_LIST, b"junk")
    expect(c.option_reply()[1] == ERR_INVALID, "LIST with data: wanted ERR_INVALID")
    c.option(OPT_GO, b"\x00\x00\x00\x09abc")
    expect(c.option_reply()[1] == ERR_INVALID, "malformed GO: wanted ERR_INVALID")
    c.option(OPT_ABORT)
    expect(c.option_reply()[1] == REP_ACK, "ABORT: wanted ACK")


def export_name_any(path):
    c = Client(path)
    c.greeting()
    c.option(OPT_EXPORT_NAME, b"no such export, yet the only one")
    size, flags = struct.unpack(">QH", c.recv(10))  # NO_ZEROES was negotiated
    expect(size > 0 and flags & FLAG_READ_ONLY, "EXPORT_NAME: size %d flags %x" % (size, flags))
    c.size = size
    still_serving(c)


def read_past_end(path):
    for structured in (False, True):
        c = Client(path)
        c.go(structured=structured)
        c.request(CMD_READ, 1, c.size - 100, 200)
        expect_error(c, 1, EINVAL)
        c.request(CMD_READ, 2, (1 << 64) - 1, 1)
        expect_error(c, 2, EINVAL)
        c.request(CMD_READ, 3, 0, 64 << 20)  # over the 32 MiB maximum
        expect_error(c, 3, (EINVAL, EOVERFLOW))
        still_serving(c)


def unknown_command(path):
    c = Client(path)
    c.go(structured=True)
    c.request(77, 1, 0, 0)
    expect_error(c, 1, EINVAL)
    c.request(CMD_READ, 2, 0, 10, flags=1 << 9)  # unknown flag
    expect_error(c, 2, EINVAL)
    c.request(CMD_BLOCK_STATUS, 3, 0, 4096)  # no metadata context negotiated
    expect_error(c, 3, EINVAL)
    still_serving(c)


def write_read_only(path):
    c = Client(path)
    c.go()
    expect(c.flags & FLAG_READ_ONLY, "export not advertised read-only")
    c.request(CMD_WRITE, 1, 0, 5, payload=b"hello")
    expect_error(c, 1, EPERM)
    c.request(CMD_WRITE, 2, c.size, 5, payload=b"hello")  # past the end too
    expect_error(c, 2, (EPERM, ENOSPC))
    c.request(4, 3, 0, 4096)  # TRIM
    expect_error(c, 3, EPERM)
    c.request(6, 4, 0, 4096)  # WRITE_ZEROES
    expect_error(c, 4, EPERM)
    still_serving(c)


def huge_write(path):
    c = Client(path)
    c.go()
    c.request(CMD_WRITE, 1, 0, 0xFFFFFFFF, payload=b"x" * 4096)
    try:
        expect_error(c, 1, (EINVAL, EOVERFLOW, EPERM))
    except Fail:
        return  # closing without a reply is allowed too
    expect(c.closed_by_server(), "4 GB write: connection still open after the error")


def bad_request_magic(path):
    c = Client(path)
    c.go()
    c.send(struct.pack(">IHHQQI", 0xDEADBEEF, 0, CMD_READ, 1, 0, 10))
    expect(c.closed_by_server(), "bad request magic: connection not closed")


def vanish_mid_write(path):
    c = Client(path)
    c.go()
    c.request(CMD_WRITE, 1, 0, 1 << 20, payload=b"x" * 1000)
    c.s.close()


def vanish_mid_header(path):
    c = Client(path)
    c.go()
    c.send(struct.pack(">IHH", REQUEST_MAGIC, 0, CMD_READ))
    c.s.close()


def vanish_with_reads_in_flight(path):
    c = Client(path)
    c.go()
    for i in range(100):
        c.request(CMD_READ, i, 0, min(c.size, 32 << 20))
    c.s.close()


def vanish_in_handshake(path):
    c = Client(path)
    c.greeting()
    c.send(struct.pack(">QI", IHAVEOPT, OPT_GO))  # half an option header
    c.s.close()


def flood(path):
    """Many more requests than the server keeps in flight: all answered."""
    c = Client(path)
    c.go()
    n = 2000

    def send_all():  # while the main thread reads: a client that never reads would stall itself
        for i in range(n):
            c.request(CMD_READ, i, (i * 4096) % (c.size - 4096), 4096)

    sender = threading.Thread(target=send_all)
    sender.start()
    seen = set()
    for _ in range(n):
        cookie, err, _kind, _data = c.reply(4096)
        expect(err == 0, "flood: read %d failed with %d" % (cookie, err))
        seen.add(cookie)
    sender.join()
    expect(len(seen) == n, "flood: %d distinct replies of %d" % (len(seen), n))
    c.request(CMD_DISC, 0, 0, 0)
    expect(c.closed_by_server(), "DISC: connection not closed")


SCENARIOS = {f.__name__.replace("_", "-"): f for f in (
    bad_magic, bad_client_flags, huge_option, unknown_option, export_name_any, read_past_end,
    unknown_command, write_read_only, huge_write, bad_request_magic, vanish_mid_write,
    vanish_mid_header, vanish_with_reads_in_flight, vanish_in_handshake, flood)}


def main():
    if len(sys.argv) != 3 or sys.argv[2] not in SCENARIOS:
        print("usage: nbd_raw_client.py SOCKET {%s}" % ",".join(SCENARIOS), file=sys.stderr)
        return 2
    try:
        SCENARIOS[sys.argv[2]](sys.argv[1])
    except (Fail, OSError, struct.error) as e:
        print("%s: %s" % (sys.argv[2], e), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
