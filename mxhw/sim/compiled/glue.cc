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

static inline int mx_failed(mx_sim *s) { return s->perf.failed; }

const char *mx_failure(mx_sim *s) { return s->perf.failed ? s->perf.message.c_str() : nullptr; }

#include "glue_loops.cc"

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

}
