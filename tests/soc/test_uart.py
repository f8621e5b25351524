import pytest
from amaranth import Module
from hypothesis import given, strategies as st

from mxhw import sim
from mxhw.soc.uart import UARTRx, UARTTx, divisor_for


def loopback(divisor):
    m = Module()
    m.submodules.tx = tx = UARTTx(divisor)
    m.submodules.rx = rx = UARTRx(divisor)
    m.d.comb += rx.rx.eq(tx.tx)
    return m, tx, rx


@given(divisor=st.integers(4, 40),
       frames=st.lists(st.tuples(st.integers(0, 255), st.integers(0, 20)), min_size=1,
                       max_size=24))
def test_loopback(divisor, frames):
    """Bytes sent with any idle gaps (cycles before each is offered) arrive in order."""
    m, tx, rx = loopback(divisor)
    data = [b for b, _ in frames]
    got = []

    async def producer(ctx):
        for byte, gap in frames:
            if gap:
                await ctx.tick().repeat(gap)
            await sim.stream_send(ctx, tx.i, [byte])

    async def consumer(ctx):
        # the receiver holds one byte: take each promptly (no back-pressure on a UART)
        got.extend(await sim.stream_recv(ctx, rx.o, len(data), timeout=40 * divisor))

    sim.run(m, producer, consumer)
    assert got == data


def test_frame_error_counted_and_byte_dropped():
    div = 8
    rx = UARTRx(div)
    got = []

    async def line(ctx):
        # start bit, data 0x55, then a LOW stop bit (framing error), then idle
        bits = [0] + [(0x55 >> i) & 1 for i in range(8)] + [0]
        for b in bits:
            ctx.set(rx.rx, b)
            for _ in range(div):
                await ctx.tick()
        ctx.set(rx.rx, 1)
        for _ in range(4 * div):
            got.append(ctx.get(rx.o.valid))
            await ctx.tick()
        assert ctx.get(rx.frame_errors) == 1

    sim.run(rx, line)
    assert not any(got)


def test_tx_bit_timing():
    """The line holds every bit, stop bit included, for exactly `divisor` cycles."""
    div = 6
    tx = UARTTx(div)
    levels = []

    async def tb(ctx):
        ctx.set(tx.i.payload, 0xA3)
        ctx.set(tx.i.valid, 1)
        await ctx.tick()
        ctx.set(tx.i.valid, 0)
        for _ in range(12 * div):
            await ctx.tick()
            levels.append(ctx.get(tx.tx))

    sim.run(tx, tb)
    start = levels.index(0)
    frame = levels[start:start + 10 * div]
    expect = [0] + [(0xA3 >> i) & 1 for i in range(8)] + [1]
    assert [frame[i * div:(i + 1) * div] for i in range(10)] == [[b] * div for b in expect]



@pytest.mark.parametrize("div", [4, 7])
def test_tx_back_to_back(div):
    """Bytes offered back to back: every bit lasts ``divisor`` cycles, the stop bit one
    cycle more (the next byte is taken as the stop bit's period ends and goes out in the
    following cycle), so frames start ``10 * divisor + 1`` cycles apart; ``i.ready`` is
    low while a frame is on the line."""
    tx = UARTTx(div)
    data = [0xA3, 0x5C, 0xFF]
    period = 10 * div + 1
    levels, readies = [], []

    async def producer(ctx):
        await sim.stream_send(ctx, tx.i, data)

    async def monitor(ctx):
        for _ in range(len(data) * period + 4 * div):
            _, _, line, ready = await ctx.tick().sample(tx.tx, tx.i.ready)
            levels.append(line)
            readies.append(ready)

    sim.run(tx, producer, monitor)
    start = levels.index(0)
    for f, byte in enumerate(data):
        bits = [0, *((byte >> i) & 1 for i in range(8)), 1]
        t0 = start + f * period
        assert levels[t0:t0 + 10 * div] == [b for b in bits for _ in range(div)], f
        assert not any(readies[t0:t0 + 10 * div - 1]), f
    assert levels[start + len(data) * period - 1:] == [1] * (len(levels) - start
                                                             - len(data) * period + 1)


@pytest.mark.parametrize("cls", [UARTRx, UARTTx])
def test_init_wrong_divisor(cls):
    with pytest.raises(TypeError, match=r"divisor must be an integer, not 4\.5"):
        cls(4.5)
    with pytest.raises(ValueError, match=r"divisor must be at least 4 clock cycles per bit, not 3"):
        cls(3)


def test_divisor_for():
    assert divisor_for(100e6, 3_000_000) == 33
    with pytest.raises(ValueError, match=r"baud rate 3000000 at 25 MHz has a 4\.2% error"):
        divisor_for(25e6, 3_000_000)
    with pytest.raises(ValueError, match=r"too fast for a 10 MHz clock"):
        divisor_for(10e6, 5_000_000)


def test_board_soc_through_the_serial_lines():
    """BoardSoC end to end on its pins: a PING and a register READ sent as UART frames get
    their responses back as UART frames."""
    from mxhw.soc import protocol as P
    from mxhw.soc.top import ID_VALUE, BoardSoC, SoCConfig

    cfg = SoCConfig(clk_hz=8_000_000, baud=1_000_000, scratch_words=16, rows=0)
    m = Module()
    m.submodules.soc = soc = BoardSoC(cfg)
    m.submodules.host_tx = htx = UARTTx(8)
    m.submodules.host_rx = hrx = UARTRx(8)
    m.d.comb += [soc.rx.eq(htx.tx), hrx.rx.eq(soc.tx)]
    got = []

    async def host(ctx):
        for pkt, n in [(P.request(P.Cmd.PING, seq=1), 11),
                       (P.request(P.Cmd.READ, 0, 4, seq=2), 11)]:
            await sim.stream_send(ctx, htx.i, pkt)
            data = bytes(await sim.stream_recv(ctx, hrx.o, n, timeout=2000))
            got.append(P.parse_response(data)[0])

    sim.run(m, host)
    assert got[0].ok and got[0].seq == 1
    assert P.decode_link_info(got[0].words()[0]) == {
        "max_payload": cfg.max_payload, "version": P.PROTOCOL_VERSION,
        "rx_depth": 1 << (cfg.max_payload + 15).bit_length()}
    assert got[1].ok and got[1].seq == 2 and got[1].words() == [ID_VALUE]
