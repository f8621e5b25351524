// mxhw compiled-simulation C API: the mx_* functions mxhw.sim.compiled.model calls through
// ctypes. Compiled with each design's CXXRTL C++ (design.cc) by mxhw.sim.compiled.cache;
// its text is part of every model's cache key. Design notes: docs/sim.md.
#include "mxhw_runtime.h"    // the CXXRTL runtime and C API headers, precompiled
#include <cstdio>
#include <cstdint>
#include <cstring>
#include <string>

// Fast clocking (mxhw.sim.compiled.cxxpatch.patch_edges): when the design's only clock
// edge test is posedge_p_clk, mx_edge overrides it: 1 = this eval is the rising edge,
// 0 = no edge, -1 = the design's own test (prev_p_clk / p_clk).
static int mx_edge = -1;
#include "design.cc"
#ifndef MX_FAST_EDGE
#define MX_FAST_EDGE 0
#endif

// Records the first failed assertion (Amaranth Assert/Assume) instead of aborting.
struct mx_performer : cxxrtl::performer {
    int failed = 0;
    std::string message;
    void on_check(cxxrtl::flavor type, bool condition, const cxxrtl::lazy_fmt &formatter,
                  const cxxrtl::metadata_map &attributes) override {
        (void)attributes;
        if ((type == cxxrtl::flavor::ASSERT || type == cxxrtl::flavor::ASSUME) && !condition
                && !failed) {
            failed = 1;
            message = formatter();
        }
    }
};

struct mx_sim {
    cxxrtl_design::p_top *top;   // owned by h
    mx_performer perf;
    cxxrtl_handle h;
    uint32_t *clk;
    int settled;            // clk low and comb settled since the last input change
    uint64_t cycle;
    uint64_t deltas;        // CXXRTL delta cycles run (two or more per clock cycle)
    uint64_t half_ps;
    int fast;               // one delta per clock cycle (see mx_pre_edge)
    cxxrtl_vcd vcd;
    FILE *vcd_file;
};

static void mx_vcd_flush(mx_sim *s) {
    // one read per flush: the writer's buffer is cleared at the start of the next read
    const char *data; size_t size;
    cxxrtl_vcd_read(s->vcd, &data, &size);
    if (size) fwrite(data, 1, size, s->vcd_file);
}

static inline void mx_sample(mx_sim *s, uint64_t t) {
    if (s->vcd) { cxxrtl_vcd_sample(s->vcd, t); mx_vcd_flush(s); }
}

extern "C" {

mx_sim *mx_create(void) {
    mx_sim *s = new mx_sim();
    s->top = new cxxrtl_design::p_top;
    s->h = cxxrtl_create(new _cxxrtl_toplevel { std::unique_ptr<cxxrtl::module>(s->top) });
    cxxrtl_object *clk = cxxrtl_get(s->h, "clk");
    s->clk = clk ? clk->next : nullptr;
    s->half_ps = 5000;
    size_t d = s->top->step(&s->perf);
    s->deltas += d;
    s->fast = MX_FAST_EDGE && s->clk && d == 1;
    return s;
}

void mx_destroy(mx_sim *s) {
    if (s->vcd) { mx_vcd_flush(s); fclose(s->vcd_file); cxxrtl_vcd_destroy(s->vcd); }
    cxxrtl_destroy(s->h);
    delete s;
}

// Find a port: returns 0 if absent, else writes its width, flags and memory.
int mx_port(mx_sim *s, const char *name, size_t *width, uint32_t *flags, uint32_t *type,
            uint32_t **curr, uint32_t **next, void **outline) {
    cxxrtl_object *o = cxxrtl_get(s->h, name);
    if (!o) return 0;
    *width = o->width; *flags = o->flags; *type = o->type; *curr = o->curr; *next = o->next;
    *outline = o->type == CXXRTL_OUTLINE ? (void *)o->outline : nullptr;
    return 1;
}

// Bring an outline object (an inlined combinational node) up to date for reading.
void mx_outline_eval(void *outline) { cxxrtl_outline_eval((cxxrtl_outline)outline); }

// Settle combinational logic after input changes (clock held low). Returns whether an
// assertion has failed (mx_failure gives its message).
int mx_settle(mx_sim *s) {
    if (s->clk) *s->clk = 0;
    size_t d = s->top->step(&s->perf);
    s->deltas += d;
    if (d > 1) s->fast = 0;     // needs several deltas to settle: no fast clocking
    s->settled = 1;
    return s->perf.failed;
}

// One clock cycle is two halves: mx_pre_edge (after the inputs are written), after which
// every output holds its settled value just before the rising edge, and mx_edge_commit,
// which clocks the flops. Slow (the reference, and with a waveform open): settle with the
// clock low (an eval/commit step), then a second step with the clock high. Fast: one eval
// with the edge forced (mx_edge = 1) computes the settled combinational values from the
// current state and inputs, and the flops' next state, in one pass (valid because the
// design converges in one delta: MX_FAST_EDGE and every settle so far took one); outputs
// are read before the commit, which then updates the state. The clock input stays low.
static inline void mx_pre_edge(mx_sim *s, int fast) {
    if (fast) {
        mx_edge = 1;
        bool converged = s->top->eval(&s->perf);
        mx_edge = -1;
        s->deltas++;
        if (!converged && !s->perf.failed) {
            s->perf.failed = 1;
            s->perf.message = "mxhw compiled model: a clock edge did not converge in one "
                              "delta cycle (set MXHW_SIM_FAST=0 and report this design)";
        }
    } else {
        if (s->clk) *s->clk = 0;
        s->deltas += s->top->step(&s->perf);
    }
}

static inline void mx_edge_commit(mx_sim *s, int fast) {
    if (fast) {
        s->top->commit();
    } else {
        mx_sample(s, 2 * s->cycle * s->half_ps);
        if (s->clk) {
            *s->clk = 1;
            s->deltas += s->top->step(&s->perf);
            if (s->vcd) s->deltas += s->top->step(&s->perf);  // settle: the waveform shows post-edge values
            mx_sample(s, (2 * s->cycle + 1) * s->half_ps);
        }
    }
    s->cycle++;
    s->settled = 0;
}

static inline int mx_fast(mx_sim *s) { return s->fast && !s->vcd; }

void mx_set_fast(mx_sim *s, int on) { s->fast = on && MX_FAST_EDGE && s->clk; }

int mx_get_fast(mx_sim *s) { return s->fast; }

const char *mx_failure(mx_sim *s) { return s->perf.failed ? s->perf.message.c_str() : nullptr; }

// n rising clock edges; `dirty`: inputs changed since the last settle.
// After the edge, logic that depends combinationally on the new state is not yet
// re-evaluated: the caller settles (mx_settle) before reading outputs.
int mx_tick(mx_sim *s, uint64_t n, int dirty) {
    int fast = mx_fast(s);
    for (uint64_t i = 0; i < n && !s->perf.failed; i++) {
        if (fast) mx_pre_edge(s, 1);
        else if (i > 0 || dirty || !s->settled) mx_pre_edge(s, 0);
        mx_edge_commit(s, fast);
    }
    return s->perf.failed;
}

int mx_tick1(mx_sim *s, int dirty) { return mx_tick(s, 1, dirty); }

// Batch: per cycle, write every input from in_data, settle, copy every output into out_data
// (values just before the edge), then clock. Rows are packed words (in_words[i] per port).
int mx_run(mx_sim *s, uint64_t n,
            size_t n_in, uint32_t **in_ptrs, const size_t *in_words, const uint32_t *in_data,
            size_t n_out, uint32_t **out_ptrs, const size_t *out_words, uint32_t *out_data) {
    int fast = mx_fast(s);
    for (uint64_t c = 0; c < n && !s->perf.failed; c++) {
        for (size_t i = 0; i < n_in; i++) {
            memcpy(in_ptrs[i], in_data, in_words[i] * 4); in_data += in_words[i];
        }
        mx_pre_edge(s, fast);
        for (size_t i = 0; i < n_out; i++) {
            memcpy(out_data, out_ptrs[i], out_words[i] * 4); out_data += out_words[i];
        }
        mx_edge_commit(s, fast);
    }
    return s->perf.failed;
}

// Stream exchange: offer in-beats on one valid/ready stream and accept out-beats from
// another, one cycle per iteration, exactly as mxhw.sim.stream_exchange's per-cycle path:
// before beat i the producer idles gaps[i] cycles (valid left as it was), then holds
// payload/valid until ready is sampled high at an edge, then drops valid; the consumer
// idles stalls[j] cycles (ready left as it was) before raising ready for out-beat j, and
// drops it when valid is sampled high. Stops when every beat is sent and n_out received.
// Returns 0, 1 (assertion failed), 2 (producer waited `timeout` cycles) or 3 (consumer).
// stats: cycles, beats sent, beats received.
int mx_stream(mx_sim *s,
              uint32_t *ip, size_t ipw, uint32_t *iv, const uint32_t *ir,
              const uint32_t *in_data, const uint32_t *gaps, uint64_t n_in,
              const uint32_t *op, size_t opw, const uint32_t *ov, uint32_t *ordy,
              uint32_t *out_data, const uint32_t *stalls, uint64_t n_out,
              uint64_t timeout, int dirty, uint64_t *stats) {
    uint64_t sent = 0, got = 0, cycles = 0, in_wait = 0, out_wait = 0;
    uint64_t gap = n_in && gaps ? gaps[0] : 0, stall = n_out && stalls ? stalls[0] : 0;
    int rc = 0, fast = mx_fast(s);
    while ((sent < n_in || got < n_out) && !rc) {
        int offer = 0, accept = 0;
        if (sent < n_in) {
            if (gap) gap--;
            else { memcpy(ip, in_data + sent * ipw, ipw * 4); *iv = 1; offer = 1; }
        }
        if (got < n_out) {
            if (stall) stall--;
            else { *ordy = 1; accept = 1; }
        }
        mx_pre_edge(s, fast);
        int rdy = offer && (*ir & 1), vld = accept && (*ov & 1);
        if (vld) memcpy(out_data + got * opw, op, opw * 4);
        mx_edge_commit(s, fast);
        cycles++;
        if (s->perf.failed) rc = 1;
        if (offer) {
            if (rdy) {
                sent++; in_wait = 0; *iv = 0;
                if (sent < n_in && gaps) gap = gaps[sent];
            } else if (++in_wait >= timeout && !rc) rc = 2;
        }
        if (accept) {
            if (vld) {
                got++; out_wait = 0; *ordy = 0;
                if (got < n_out && stalls) stall = stalls[got];
            } else if (++out_wait >= timeout && !rc) rc = 3;
        }
    }
    (void)dirty;
    stats[0] = cycles; stats[1] = sent; stats[2] = got;
    return rc;
}

// Byte exchange (a host link in bulk): offer the n_in bytes of `in` on a byte stream
// (payload ip, valid iv, ready ir), one per cycle while ready, and take every byte the
// out-stream (payload op, valid ov) presents, its ready (ordy) held high, into `out` (at
// most out_cap). Stops once every byte is sent, at least `want` are received and none came
// for `linger` cycles (a whole response is collected in one call), or after max_cycles,
// or when out is full. Returns 0, 1 (assertion failed) or 2 (max_cycles ran out first).
// stats: cycles, bytes sent, bytes received.
int mx_exchange(mx_sim *s, uint32_t *ip, uint32_t *iv, const uint32_t *ir,
                const uint8_t *in, uint64_t n_in,
                const uint32_t *op, const uint32_t *ov, uint32_t *ordy,
                uint8_t *out, uint64_t out_cap, uint64_t want, uint64_t linger,
                uint64_t max_cycles, uint64_t *stats) {
    uint64_t sent = 0, got = 0, cycles = 0, quiet = 0;
    int rc = 0, fast = mx_fast(s);
    *ordy = 1;
    while (!(sent >= n_in && got >= want && quiet >= linger) && got < out_cap) {
        if (cycles >= max_cycles) { rc = 2; break; }
        int offer = sent < n_in;
        if (offer) *ip = in[sent];
        *iv = offer;
        mx_pre_edge(s, fast);
        int rdy = offer && (*ir & 1), vld = *ov & 1;
        if (vld) { out[got++] = (uint8_t)*op; quiet = 0; } else quiet++;
        mx_edge_commit(s, fast);
        cycles++;
        if (rdy) sent++;
        if (s->perf.failed) { rc = 1; break; }
    }
    *iv = 0;
    stats[0] = cycles; stats[1] = sent; stats[2] = got;
    return rc;
}

int mx_vcd_open(mx_sim *s, const char *path, uint64_t half_ps) {
    if (s->vcd) return 0;
    s->vcd_file = fopen(path, "wb");
    if (!s->vcd_file) return 0;
    s->half_ps = half_ps ? half_ps : 1;
    s->vcd = cxxrtl_vcd_create();
    cxxrtl_vcd_timescale(s->vcd, 1, "ps");
    cxxrtl_vcd_add_from(s->vcd, s->h);
    return 1;
}

void mx_vcd_close(mx_sim *s) {
    if (!s->vcd) return;
    mx_sample(s, 2 * s->cycle * s->half_ps);
    mx_vcd_flush(s);
    fclose(s->vcd_file);
    cxxrtl_vcd_destroy(s->vcd);
    s->vcd = nullptr; s->vcd_file = nullptr;
}

uint64_t mx_cycle(mx_sim *s) { return s->cycle; }

uint64_t mx_deltas(mx_sim *s) { return s->deltas; }

}
