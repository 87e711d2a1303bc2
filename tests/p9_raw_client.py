"""A raw 9P2000.L client for the test scripts (test_9p_cli.sh,
test_9p_image.sh): it speaks the protocol by hand, one request at a time, so
a test sees exactly what the server answers. Each script keeps its scenarios
and imports this (PYTHONPATH=tests).

Every call returns ('ok', body) or ('err', errno).
"""
import socket
import struct

NOFID = 0xffffffff


def s(x):
    """A 9P string: u16 length, then the bytes."""
    x = x.encode()
    return struct.pack('<H', len(x)) + x


class C:
    def __init__(self, addr):
        """addr: HOST:PORT, or the path of a Unix socket."""
        if addr.startswith('/'):
            self.k = socket.socket(socket.AF_UNIX)
            self.k.connect(addr)
        else:
            h, p = addr.rsplit(':', 1)
            self.k = socket.create_connection((h, int(p)))
        self.tag = 1

    def call(self, t, body):
        tag = 0xffff if t == 100 else self.tag
        self.tag += 1
        self.k.sendall(struct.pack('<IBH', 7 + len(body), t, tag) + body)
        size, rt, rtag = struct.unpack('<IBH', self.recv(7))
        data = self.recv(size - 7)
        assert rtag == tag, (rtag, tag)
        if rt == 7:
            return ('err', struct.unpack('<I', data)[0])
        assert rt == t + 1, (rt, t)
        return ('ok', data)

    def recv(self, n):
        b = b''
        while len(b) < n:
            c = self.k.recv(n - len(b))
            if not c:
                raise EOFError
            b += c
        return b

    def version(self):
        st, d = self.call(100, struct.pack('<I', 65536) + s('9P2000.L'))
        assert d[4:] == s('9P2000.L'), d

    def attach(self, fid, aname=''):
        return self.call(104, struct.pack('<II', fid, NOFID) + s('root') + s(aname) + struct.pack('<I', 0))

    def walk(self, fid, newfid, names):
        return self.call(110, struct.pack('<IIH', fid, newfid, len(names)) + b''.join(s(n) for n in names))

    def lopen(self, fid, flags):
        return self.call(12, struct.pack('<II', fid, flags))

    def read(self, fid, off, n):
        return self.call(116, struct.pack('<IQI', fid, off, n))

    def read_all(self, fid):
        out = b''
        while True:
            st, d = self.read(fid, len(out), 60000)
            assert st == 'ok', d
            n = struct.unpack('<I', d[:4])[0]
            if n == 0:
                return out
            out += d[4:4 + n]

    def names(self, fid, count):
        """Every entry name of an opened directory, in Treaddirs of `count`."""
        names, off = [], 0
        while True:
            st, d = self.call(40, struct.pack('<IQI', fid, off, count))
            assert st == 'ok', d
            d = d[4:]
            if not d:
                return names
            while d:
                off = struct.unpack('<Q', d[13:21])[0]
                n = struct.unpack('<H', d[22:24])[0]
                names.append(d[24:24 + n].decode())
                d = d[24 + n:]

    def lcreate(self, fid, name):
        return self.call(14, struct.pack('<I', fid) + s(name) + struct.pack('<III', 0o1102, 0o644, 0))

    def write(self, fid, data):
        return self.call(118, struct.pack('<IQI', fid, 0, len(data)) + data)

    def clunk(self, fid):
        return self.call(120, struct.pack('<I', fid))
