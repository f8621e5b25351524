"""The gateware host link against the protocol's host side (mxhw.soc.protocol)."""

import struct

import pytest
from hypothesis import example, given, strategies as st
from support.hyp import budget
from support.linkstream import raw_request

from mxhw import sim
from mxhw.soc import protocol as P
from mxhw.soc.link import HostLink

MAXP = 32
TIMEOUT = 120
QUIET = 40
WORDS = 16  # the model memory: word addresses 0..15


def run_link(script, read_latency=1, max_payload=MAXP):
    """Run ``script(xfer, drain)`` against a link whose bus has a dict memory answering
    reads after ``read_latency`` cycles (garbage on ``r_data`` at every other time).

    ``xfer(bytes)`` sends a request and returns the parsed response; ``drain(bytes)`` sends
    arbitrary bytes and returns every response that comes back until the link is quiet.
    """
    link = HostLink(max_payload=max_payload, timeout_cycles=TIMEOUT, quiet_cycles=QUIET,
                    read_latency=read_latency)
    mem = {}
    garbage = 0xA5A5_5A5A
    # a quiet link: no byte out for this long (a WRITE commits its words, one a cycle,
    # before it answers; a timeout and the quiet gap after it)
    quiet = TIMEOUT + QUIET + 50 + max_payload // 4

    async def bus(ctx):
        pipe = [garbage] * read_latency      # pipe[0] is on r_data this cycle
        while True:
            ctx.set(link.bus.r_data, pipe[0])
            *_, a, we, wd, re = await ctx.tick().sample(
                link.bus.addr, link.bus.w_en, link.bus.w_data, link.bus.r_en)
            if we:
                mem[a] = wd
            pipe = pipe[1:] + [mem.get(a, 0) if re else garbage]

    async def tb(ctx):
        async def collect(limit):
            out = b""
            ctx.set(link.tx.ready, 1)
            idle = 0
            while idle < limit:
                *_, v, p = await ctx.tick().sample(link.tx.valid, link.tx.payload)
                if v:
                    out += bytes([p])
                    idle = 0
                else:
                    idle += 1
            ctx.set(link.tx.ready, 0)
            return out

        async def xfer(pkt):
            await sim.stream_send(ctx, link.rx, pkt, timeout=50)
            data = await collect(quiet)
            resp, rest = P.parse_response(data)
            assert rest == b"", "one request, one response"
            return resp

        async def drain(junk, gap=0):
            # gap: idle cycles before every byte but the first
            for i, b in enumerate(junk if gap else []):
                if i:
                    await ctx.tick().repeat(gap)
                await sim.stream_send(ctx, link.rx, [b], timeout=50)
            if junk and not gap:
                await sim.stream_send(ctx, link.rx, junk, timeout=50)
            data = await collect(quiet)
            resps = []
            while data:
                r, data = P.parse_response(data)
                resps.append(r)
            return resps

        await script(xfer, drain)

    sim.run(link, tb, processes=[bus])
    return mem


def write(addr_word, words):
    return P.request(P.Cmd.WRITE, 4 * addr_word, payload=struct.pack(f"<{len(words)}I", *words))


def read(addr_word, n):
    return P.request(P.Cmd.READ, 4 * addr_word, 4 * n)


def test_ping_write_read():
    async def script(xfer, drain):
        r = await xfer(P.request(P.Cmd.PING, seq=9))
        assert r.status == P.Status.OK and r.seq == 9
        assert P.decode_link_info(r.words()[0]) == {
            "max_payload": MAXP, "version": P.PROTOCOL_VERSION, "rx_depth": 64}
        assert (await xfer(write(3, [1, 2, 0xDEADBEEF]))).status == P.Status.OK
        r = await xfer(read(2, 4))
        assert r.ok and r.words() == [0, 1, 2, 0xDEADBEEF]

    assert run_link(script) == {3: 1, 4: 2, 5: 0xDEADBEEF}


@pytest.mark.parametrize("pkt, status", [
    (P.request(7), P.Status.BAD_CMD),
    (P.request(P.Cmd.READ, 0, 6), P.Status.BAD_LEN),
    (P.request(P.Cmd.READ, 0, MAXP + 4), P.Status.BAD_LEN),
    (P.request(P.Cmd.PING, 0, 4), P.Status.BAD_LEN),
    (P.request(P.Cmd.READ, 2, 4), P.Status.BAD_ADDR),
    (P.request(P.Cmd.WRITE, 0, payload=bytes(MAXP + 4)), P.Status.BAD_LEN),
])
def test_bad_header(pkt, status):
    async def script(xfer, drain):
        resps = await drain(pkt)
        assert [r.status for r in resps] == [status]
        r = await xfer(P.request(P.Cmd.PING))
        assert r.ok

    assert run_link(script) == {}


@pytest.mark.parametrize("gap, ok", [(TIMEOUT - 10, True), (TIMEOUT + 10, False)])
def test_watchdog_threshold(gap, ok):
    """Bytes of a packet may arrive up to ``timeout_cycles`` apart: a slower sender's packet
    is abandoned with TIMEOUT (and nothing is written)."""
    async def script(xfer, drain):
        resps = await drain(write(1, [7]), gap=gap)
        assert [r.status for r in resps] == [P.Status.OK if ok else P.Status.TIMEOUT]
        assert (await xfer(read(1, 1))).words() == [7 if ok else 0]

    assert run_link(script) == ({1: 7} if ok else {})


@pytest.mark.parametrize("length, status", [
    (1024, P.Status.OK), (1028, P.Status.BAD_LEN), (1280, P.Status.BAD_LEN),
    (1020, P.Status.OK), (260, P.Status.OK), (65532, P.Status.BAD_LEN), (1026, P.Status.BAD_LEN),
])
def test_length_limit_across_bytes(length, status):
    """max_payload = 1024: the length check compares both bytes of the length field."""
    async def script(xfer, drain):
        resps = await drain(read(0, length // 4) if length % 4 == 0
                            else P.request(P.Cmd.READ, 0, length))
        assert [r.status for r in resps] == [status]

    run_link(script, max_payload=1024)


def test_truncated_packet_times_out():
    async def script(xfer, drain):
        resps = await drain(write(1, [5, 6])[:9])
        assert [r.status for r in resps] == [P.Status.TIMEOUT]
        assert (await xfer(read(1, 2))).words() == [0, 0]

    assert run_link(script) == {}


def test_reset_mid_packet():
    """A domain reset in the middle of a packet: the link starts over (its state register
    takes the reset from a local copy, one cycle late), the partial packet is neither
    written nor answered, and the next request is answered."""
    from amaranth import ClockDomain, Module
    from amaranth.sim import Simulator

    link = HostLink(max_payload=MAXP, timeout_cycles=TIMEOUT, quiet_cycles=QUIET)
    m = Module()
    m.domains.sync = cd = ClockDomain()
    m.submodules.link = link
    writes = []

    async def tb(ctx):
        await sim.stream_send(ctx, link.rx, write(1, [5, 6])[:9], timeout=50)
        ctx.set(cd.rst, 1)
        await ctx.delay(2e-8)           # two clock edges in reset (a tick would raise)
        ctx.set(cd.rst, 0)
        await sim.stream_send(ctx, link.rx, P.request(P.Cmd.PING), timeout=50)
        ctx.set(link.tx.ready, 1)
        data, idle = b"", 0
        while idle < TIMEOUT + QUIET + 50:
            *_, v, p, we = await ctx.tick().sample(link.tx.valid, link.tx.payload,
                                                   link.bus.w_en)
            data, idle = (data + bytes([p]), 0) if v else (data, idle + 1)
            writes.append(we)
        r, rest = P.parse_response(data)
        assert r.status == P.Status.OK and rest == b""

    s = Simulator(m)
    s.add_clock(1e-8)
    s.add_testbench(tb)
    s.run()
    assert not any(writes)


ops = st.one_of(
    st.tuples(st.just("write"), st.integers(0, WORDS - 1),
              st.lists(st.integers(0, 2**32 - 1), min_size=0, max_size=MAXP // 4)),
    st.tuples(st.just("read"), st.integers(0, WORDS - 1), st.integers(0, MAXP // 4)),
    st.tuples(st.just("corrupt"), st.integers(0, WORDS - 1),
              st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=MAXP // 4),
              st.integers(0, 2**16)),
    st.tuples(st.just("truncate"), st.integers(0, WORDS - 1),
              st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=4), st.integers(1, 100)),
    st.tuples(st.just("junk"), st.binary(min_size=1, max_size=40)),
)


@budget(60)
@given(cmd=st.sampled_from([P.Cmd.PING, P.Cmd.READ, P.Cmd.WRITE, 3, 7, 0x80, 0xFF]),
       addr=st.one_of(st.integers(0, 15).map(lambda w: 4 * w), st.integers(0, 0xFFFF_FFFF)),
       length=st.one_of(st.integers(0, MAXP // 4).map(lambda w: 4 * w),
                        st.integers(0, MAXP + 8), st.integers(0, 0xFFFF),
                        st.sampled_from([0x100, 0x104, 0x400, 0x404, MAXP + 0x100])),
       maxp=st.sampled_from([MAXP, 1024]))
@example(cmd=P.Cmd.PING, addr=0, length=0x100, maxp=1024)    # PING's length: high byte
@example(cmd=P.Cmd.PING, addr=2, length=4, maxp=MAXP)        # length before address
@example(cmd=7, addr=2, length=6, maxp=MAXP)                 # command before both
@example(cmd=P.Cmd.READ, addr=2, length=0x104, maxp=1024)    # too long, by the high byte
@example(cmd=P.Cmd.WRITE, addr=0, length=1024, maxp=1024)   # longest WRITE: a long commit
def test_header_status_matches_model(cmd, addr, length, maxp):
    """Headers with any mix of errors (command, length's low and high byte, address) get
    the protocol model's status (:func:`protocol.header_status`: the first error in that
    order), and the link answers the next request."""
    want = P.header_status(cmd, addr, length, maxp)
    # a WRITE's payload follows only a good header (a bad one is answered without it)
    good_write = cmd == P.Cmd.WRITE and want == P.Status.OK
    pkt = raw_request(cmd, addr, length, payload=bytes(length) if good_write else b"")

    async def script(xfer, drain):
        resps = await drain(pkt)
        assert [r.status for r in resps] == [want]
        assert (await xfer(P.request(P.Cmd.PING))).ok

    run_link(script, max_payload=maxp)


@given(st.lists(ops, min_size=1, max_size=8), st.sampled_from([1, 3]))
def test_fuzz(program, read_latency):
    """Random, corrupted, truncated and junk packets: every bad one gets only error
    responses and changes nothing; every valid one does exactly what it asks."""
    model = {}

    async def script(xfer, drain):
        for op in program:
            kind = op[0]
            if kind == "write":
                _, a, words = op
                r = await xfer(write(a, words))
                assert r.status == P.Status.OK and r.payload == b""
                model.update({a + i: w for i, w in enumerate(words)})
            elif kind == "read":
                _, a, n = op
                r = await xfer(read(a, n))
                assert r.ok and r.words() == [model.get(a + i, 0) for i in range(n)]
            else:
                if kind == "corrupt":
                    _, a, words, where = op
                    pkt = bytearray(write(a, words))
                    bit = where % (8 * (len(pkt) - 1))
                    pkt[1 + bit // 8] ^= 1 << (bit % 8)  # any bit after the sync byte
                    junk = bytes(pkt)
                elif kind == "truncate":
                    _, a, words, cut = op
                    pkt = write(a, words)
                    junk = pkt[:1 + cut % (len(pkt) - 1)]
                else:
                    junk = op[1]
                resps = await drain(junk)
                assert all(r.status != P.Status.OK for r in resps), resps
            # after anything, the link answers a valid request and the state is the model's
            r = await xfer(read(0, WORDS if WORDS * 4 <= MAXP else MAXP // 4))
            assert r.words() == [model.get(i, 0) for i in range(len(r.words()))]

    mem = run_link(script, read_latency)
    assert mem == model


@pytest.mark.parametrize("kwargs, exc, msg", [
    (dict(max_payload=6), ValueError, r"max_payload must be a multiple of 4 in \[4, 65532\], not 6"),
    (dict(max_payload="8"), TypeError, r"max_payload must be an integer, not '8'"),
    (dict(timeout_cycles=3), ValueError, r"timeout_cycles must be at least 16, not 3"),
    (dict(quiet_cycles=0), ValueError, r"quiet_cycles must be at least 16, not 0"),
    (dict(read_latency=0), ValueError, r"read_latency must be in \[1, 16\], not 0"),
    (dict(read_latency=2.0), TypeError, r"read_latency must be an integer, not 2.0"),
])
def test_init_wrong_params(kwargs, exc, msg):
    with pytest.raises(exc, match=msg):
        HostLink(**kwargs)


@given(crc=st.integers(0, 0xFFFF), data=st.binary(min_size=1, max_size=6))
def test_crc16_step_matches_protocol(crc, data):
    """The link's parallel CRC step (a GF(2) matrix) against the host side's bitwise CRC,
    byte by byte from any starting register."""
    from amaranth import Module, Signal
    from amaranth.sim import Simulator
    from mxhw.soc.link import crc16_step
    m = Module()
    reg, byte = Signal(16), Signal(8)
    nxt = crc16_step(m, reg, byte)
    got = []

    async def tb(ctx):
        c = crc
        for b in data:
            ctx.set(reg, c)
            ctx.set(byte, b)
            c = ctx.get(nxt)
            got.append(c)

    s = Simulator(m)
    s.add_testbench(tb)
    s.run()
    assert got == [P.crc16(data[:n + 1], crc) for n in range(len(data))]
