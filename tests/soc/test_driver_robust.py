"""The driver against a transport that drops, delays, duplicates, truncates and corrupts
answers (and a Ctrl-C while it waits): every call returns the right data or raises, never
another call's data; after any faults, a call without faults succeeds."""


import pytest
from hypothesis import given
from hypothesis import strategies as st
from support.hyp import budget
from support.robust import FaultyTransport, connected, faults, initial_word, run_threads

from mxhw.soc import protocol as P
from mxhw.soc.driver import Accelerator, DeviceError, NoResponse

#: what a call may raise when its answer was damaged (never anything else)
DAMAGED = (NoResponse, P.ProtocolError, DeviceError)


def op():
    """One driver call: a READ of 1..300 words (several packets past 256), a WRITE or a
    PING, at word addresses 0..511."""
    addr = st.integers(0, 511).map(lambda w: 4 * w)
    return st.one_of(
        st.tuples(st.just("read"), addr, st.integers(1, 300)),
        st.tuples(st.just("write"), addr, st.lists(st.integers(0, 2**32 - 1), min_size=1,
                                                    max_size=8)),
        st.tuples(st.just("ping"), st.just(0), st.just(0)))


@budget(200)
@given(ops=st.lists(op(), min_size=1, max_size=8), pattern=faults())
def test_faulty_answers_never_cross(ops, pattern):
    t, acc = connected(pattern, timeout=0.01, resync_time=0.01)
    for kind, addr, arg in ops:
        try:
            if kind == "read":
                got = acc.read_words(addr, arg)
                # the device's words at that address now (nothing else wrote since)
                assert got == [t.word(addr + 4 * i) for i in range(arg)]
            elif kind == "write":
                acc.write_words(addr, arg)
                assert [t.word(addr + 4 * i) for i in range(len(arg))] == arg
            else:
                acc.ping()
        except DAMAGED:
            pass
    # the faults are over: the next calls are answered correctly
    t.faults.clear()
    assert acc.read_words(0, 4) == [t.word(4 * i) for i in range(4)]
    acc.ping()


@budget(100)
@given(fault=st.sampled_from(["drop", "delay", "duplicate", "truncate", "corrupt", "noise"]),
       arg=st.integers(0, 1 << 16), n=st.integers(1, 8))
def test_one_fault_on_a_read_is_retried(fault, arg, n):
    """A single damaged answer to a READ: retried once, the right data returned."""
    t, acc = connected([(fault, arg)], timeout=0.01, resync_time=0.01)
    assert acc.read_words(40, n) == [initial_word(40 + 4 * i) for i in range(n)]


def test_write_is_not_retried():
    t, acc = connected([("drop", 0)], timeout=0.01, resync_time=0.01)
    with pytest.raises(NoResponse):
        acc.write_words(0, [7])
    assert [r[0] for r in t.requests] == [P.Cmd.WRITE]          # sent once
    assert acc.read_words(0, 1) == [7]


def test_two_faults_raise():
    t, acc = connected([("drop", 0), ("drop", 0)], timeout=0.01, resync_time=0.01)
    with pytest.raises(NoResponse, match="did not answer"):
        acc.read_words(0, 1)
    assert acc.read_words(8, 1) == [initial_word(8)]


def test_retries_zero():
    t, acc = connected([("drop", 0)], timeout=0.01, resync_time=0.01, retries=0)
    with pytest.raises(NoResponse):
        acc.ping()
    acc.ping()


def test_short_answer_to_a_read_raises():
    """A well-formed answer with 1 word to a 2-word READ: ProtocolError, not returned."""
    class Short(FaultyTransport):
        def _execute(self, pkt):
            resp = super()._execute(pkt)
            if pkt[1] == P.Cmd.READ:
                h = P.RESP_HEADER
                return P.response(P.Status.OK, pkt[2], resp[h:h + 4])
            return resp
    _, acc = connected(transport=Short(), timeout=0.01, resync_time=0.01)
    with pytest.raises(P.ProtocolError, match="a 4-byte answer .* READ that expects 8"):
        acc.read_words(0, 2)


def test_interrupt_leaves_nothing_stale():
    t, acc = connected([("interrupt", 0)], timeout=0.01, resync_time=0.01)
    with pytest.raises(KeyboardInterrupt):
        acc.read_words(0, 1)
    assert acc.read_words(40, 1) == [initial_word(40)]


def test_threads_share_one_accelerator():
    """Threads on one Accelerator: each gets its own answers (the lock serialises the
    exchanges; the transport yields the processor inside every read)."""
    t, acc = connected(transport=FaultyTransport(slow=0.0002), timeout=0.01)

    def worker(k):
        for i in range(20):
            addr = 4 * (64 * k + i)
            acc.write_words(addr, [k << 16 | i])
            assert acc.read_words(addr, 1) == [k << 16 | i]
            assert acc.read_words(4 * 1000 + 4 * k, 1) == [initial_word(4000 + 4 * k)]

    errors = run_threads(worker, 4)
    assert not errors, errors


def test_context_manager_closes():
    t = FaultyTransport()
    with Accelerator(t) as acc:
        acc.ping()
    assert t.closed and acc.closed
    acc.close()                                   # idempotent
    with pytest.raises(RuntimeError, match="closed"):
        acc.read_words(0, 1)


@pytest.mark.parametrize("call, exc, msg", [
    (lambda a: a.read_words(2, 1), ValueError, "word aligned"),
    (lambda a: a.read_words(-4, 1), ValueError, r"addr must be in \[0, 4294967292\]"),
    (lambda a: a.read_words(4.0, 1), TypeError, "addr must be an integer"),
    (lambda a: a.read_words(2**32 - 4, 2), ValueError, "past the end of the 32-bit"),
    (lambda a: a.write_words(0, [2**32]), ValueError, r"word 0 must be in \[0, 2\*\*32\)"),
    (lambda a: a.write_words(0, [-1]), ValueError, r"word 0 must be in"),
    (lambda a: a.write_words(0, [1.5]), TypeError, "word 0 must be an integer"),
    (lambda a: a.write_words(0, [True]), TypeError, "word 0 must be an integer"),
    (lambda a: a.read_scratch(1020, 5), ValueError, "outside the device's 1024-word"),
    (lambda a: a.write_scratch(2**30, [1]), ValueError, "outside the device's 1024-word"),
])
def test_host_side_ranges(call, exc, msg):
    t = FaultyTransport()
    t.mem[0x08] = 10                               # FEATURES: log2(1024) scratch words
    acc = Accelerator(t)
    with pytest.raises(exc, match=msg):
        call(acc)
    assert all(r[0] != P.Cmd.WRITE for r in t.requests)   # nothing was written


def test_empty_reads_and_writes():
    t = FaultyTransport()
    acc = Accelerator(t)
    assert acc.read_words(0, 0) == [] and acc.write_words(0, []) is None
    assert t.requests == []
