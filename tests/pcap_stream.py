#!/usr/bin/env python3
"""pcap_stream.py: the biggest TCP stream a host sent in a capture, put back
together, and what it holds (tests/test_migration_tls.sh, bench/migration-tls).

    pcap_stream.py FILE.pcap SRC-IP MARKER

Reads a classic pcap file (tcpdump -w, Ethernet), takes the IPv4 TCP
segments from SRC-IP, keeps the connection that carried the most payload,
orders its segments by sequence number (retransmissions and overlaps
counted once) and prints shell assignments:

    stream_bytes=N   payload bytes of that connection
    gaps=N           bytes missing inside it (not captured)
    head=HHHH        its first two bytes in hex (1603: a TLS handshake
                     record; 5145: "QE", QEMU's migration magic QEVM)
    markers=N        how often MARKER occurs in it
    qevm=N           how often QEMU's stream magic "QEVM" occurs in it

The standard library only, so that it runs wherever the tests run.
"""
import socket
import struct
import sys


def packets(path):
    with open(path, "rb") as f:
        head = f.read(24)
        if len(head) < 24:
            raise ValueError(f"{path}: {len(head)} bytes, not a pcap file")
        magic = struct.unpack("<I", head[:4])[0]
        if magic in (0xA1B2C3D4, 0xA1B23C4D):
            endian = "<"
        elif magic in (0xD4C3B2A1, 0x4D3CB2A1):
            endian = ">"
        else:
            raise ValueError(f"{path}: magic {magic:#x}, not a pcap file")
        linktype = struct.unpack(endian + "I", head[20:24])[0]
        if linktype != 1:
            raise ValueError(f"{path}: link type {linktype}, expected Ethernet (1)")
        while True:
            rec = f.read(16)
            if len(rec) < 16:
                return
            _, _, caplen, _ = struct.unpack(endian + "IIII", rec)
            yield f.read(caplen)


def segments(path, src):
    """(sport, dport, seq, payload) of the IPv4 TCP segments from src."""
    for frame in packets(path):
        if len(frame) < 14 + 20 or frame[12:14] != b"\x08\x00":
            continue
        ip = frame[14:]
        ihl = (ip[0] & 0x0F) * 4
        total = struct.unpack("!H", ip[2:4])[0]
        if ip[9] != 6 or ip[12:16] != src or len(ip) < ihl + 20:
            continue
        tcp = ip[ihl:total]
        sport, dport, seq = struct.unpack("!HHI", tcp[:8])
        off = (tcp[12] >> 4) * 4
        if len(tcp) > off:
            yield sport, dport, seq, tcp[off:]


def main(argv):
    if len(argv) != 4:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    path, marker = argv[1], argv[3].encode()
    src = socket.inet_aton(argv[2])
    conns = {}
    for sport, dport, seq, payload in segments(path, src):
        conns.setdefault((sport, dport), []).append((seq, payload))
    best = max(conns.values(), key=lambda s: sum(len(p) for _, p in s), default=[])
    stream, gaps = bytearray(), 0
    if best:
        isn = min(best, key=lambda s: (s[0] - best[0][0]) & 0xFFFFFFFF)[0]
        at = 0
        for rel, payload in sorted(((seq - isn) & 0xFFFFFFFF, p) for seq, p in best):
            if rel + len(payload) <= at:
                continue  # a retransmission
            if rel > at:
                gaps += rel - at
                stream += b"\0" * (rel - at)
                at = rel
            stream += payload[at - rel:]
            at = rel + len(payload)
    print(f"stream_bytes={len(stream) - gaps}")
    print(f"gaps={gaps}")
    print(f"head={bytes(stream[:2]).hex() or 'none'}")
    print(f"markers={stream.count(marker)}")
    print(f"qevm={stream.count(b'QEVM')}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv))
    except (OSError, ValueError) as e:
        print(f"pcap_stream.py: {e}")
        sys.exit(1)
