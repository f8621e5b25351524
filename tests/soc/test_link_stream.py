"""The whole SoC (host link, Wishbone bridge, registers, scratchpad) on its byte stream:
issue #31's finding 2 (back-to-back requests lost, a WRITE's payload executed as a packet)
and a Hypothesis fuzz against the golden link model (:mod:`mxhw.soc.linkmodel`)."""

import struct

from hypothesis import example, given
from support.hyp import budget
from support.linkstream import CFG, CoreModel, bursts, raw_request, run_bursts

from mxhw.soc import protocol as P
from mxhw.soc.top import REGS, SCRATCHPAD_BASE

SCRATCH = REGS["SCRATCH"]


def responses(data):
    out = []
    while data:
        r, data = P.parse_response(data)
        out.append(r)
    return out


# ---- finding 2 ----

def test_2_back_to_back_reads_and_pings_all_answered():
    """2 READs sent without a gap get 2 answers, 3 PINGs 3, each with its seq."""
    reads = P.request(P.Cmd.READ, REGS["ID"], 4, seq=1) + \
        P.request(P.Cmd.READ, REGS["FEATURES"], 4, seq=2)
    pings = b"".join(P.request(P.Cmd.PING, seq=s) for s in (7, 8, 9))
    got = [responses(d) for d in run_bursts([reads, pings])]
    assert [(r.status, r.seq) for r in got[0]] == [(P.Status.OK, 1), (P.Status.OK, 2)]
    assert got[0][0].words() == [0x4D584857] and got[0][1].words() == [CFG.features()]
    assert [(r.status, r.seq) for r in got[1]] == [(P.Status.OK, s) for s in (7, 8, 9)]


def test_2_packet_inside_a_write_payload_is_not_executed():
    """A WRITE whose payload holds a whole WRITE packet (to SCRATCH), sent right after
    another request (while the link answers it): the payload is written to the
    scratchpad as data, the inner packet is never executed."""
    inner = P.request(P.Cmd.WRITE, SCRATCH, payload=struct.pack("<I", 0x0BADF00D), seq=3)
    inner += bytes(-len(inner) % 4)
    outer = P.request(P.Cmd.WRITE, SCRATCHPAD_BASE, payload=inner, seq=2)
    check = P.request(P.Cmd.READ, SCRATCH, 4, seq=4) + \
        P.request(P.Cmd.READ, SCRATCHPAD_BASE, len(inner), seq=5)
    got = run_bursts([P.request(P.Cmd.READ, 0, 4, seq=1) + outer, check])
    first, second = responses(got[0]), responses(got[1])
    assert [(r.status, r.seq) for r in first] == [(P.Status.OK, 1), (P.Status.OK, 2)]
    assert second[0].words() == [0]                        # SCRATCH untouched
    assert second[1].payload == inner                      # the payload, as data


def test_2_packet_after_a_bad_crc_is_not_executed():
    """A WRITE whose length byte was corrupted (its CRC fails): nothing of what follows it
    in the burst is taken for a packet; BAD_CRC is answered once the line is quiet."""
    inner = P.request(P.Cmd.WRITE, SCRATCH, payload=struct.pack("<I", 0x0BADF00D), seq=3)
    inner += bytes(-len(inner) % 4)
    outer = bytearray(P.request(P.Cmd.WRITE, SCRATCHPAD_BASE, payload=bytes(4) + inner,
                                seq=2))
    outer[7] = 4                                           # length 20 -> 4
    got = run_bursts([bytes(outer), P.request(P.Cmd.READ, SCRATCH, 4, seq=4)])
    assert [(r.status, r.seq) for r in responses(got[0])] == [(P.Status.BAD_CRC, 2)]
    assert responses(got[1])[0].words() == [0]


# ---- the fuzz ----

def _final_check():
    """Valid requests after any sequence: the whole scratchpad, SCRATCH, LINK_ERRORS."""
    return (P.request(P.Cmd.READ, SCRATCHPAD_BASE, 4 * CFG.scratch_words, seq=0xF0)
            + P.request(P.Cmd.READ, SCRATCH, 4, seq=0xF1)
            + P.request(P.Cmd.READ, REGS["LINK_ERRORS"], 4, seq=0xF2)
            + P.request(P.Cmd.PING, seq=0xF3))


@budget(25)
@given(bursts())
@example([raw_request(P.Cmd.WRITE, SCRATCHPAD_BASE, 96, bytes(96))])      # oversized
@example([b"\x00" + P.request(P.Cmd.PING, seq=1), P.request(P.Cmd.PING, seq=2)[:5]])
def test_byte_stream_fuzz(stream):
    """Random interleavings of valid, corrupted, truncated, oversized and back-to-back
    requests, with bytes inserted and deleted, in bursts separated by long gaps: the SoC
    sends exactly the golden model's answers (byte for byte: statuses, seqs, data,
    LINK_ERRORS), and after the sequence valid requests read back exactly the memory the
    model's valid writes made."""
    model = CoreModel()
    stream = list(stream) + [_final_check()]
    got = run_bursts(stream)
    for i, (burst, out) in enumerate(zip(stream, got)):
        want = model.link.feed(burst) + model.link.gap()
        assert out == want, (i, responses(out), responses(want))
    final = responses(got[-1])
    assert [r.seq for r in final] == [0xF0, 0xF1, 0xF2, 0xF3]
    assert final[0].words() == model.spad and final[1].words() == [model.scratch]
