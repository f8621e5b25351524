// mxhw compiled-simulation C API on a Verilator model: the same mx_* functions as glue.cc
// (mxhw.sim.compiled.model calls them through ctypes), compiled with the design's
// Verilator C++ (class Vmx, top module mx_top) and its port table mx_ports.h, both written
// by mxhw.sim.compiled.verilator. Design notes: docs/sim.md.
//
// Ports live in 32-bit shadow words (what Model maps with ctypes; Verilator keeps an 8-bit
// port in a uint8_t, a 16-bit one in a uint16_t...): inputs are copied into the model
// before each evaluation, outputs out of it after. A clock cycle is two evaluations:
// clk low with the new inputs (outputs settled before the edge), then clk high (the edge).
#include "Vmx.h"
#include "verilated.h"
#include <cstdint>
#include <cstring>
#include <string>

// mx_ports.h: MX_NPORTS, MX_HAS_CLK, mx_port_name[], mx_port_width[], mx_port_input[]
// (0 output, 1 input, 2 the clock), and
// mx_bind(Vmx *, void **) storing the address of each port's Verilator field
#include "mx_ports.h"

struct mx_sim {
    VerilatedContext *ctx;
    Vmx *top;
    void *field[MX_NPORTS + 1];
    uint32_t *shadow[MX_NPORTS + 1];
    int settled;
    uint64_t cycle;
    uint64_t deltas;        // evaluations run (two per clock cycle)
};

static inline int mx_words(int i) { return mx_port_width[i] > 32 ? (mx_port_width[i] + 31) / 32 : 1; }

// Verilator's field types by width: CData (<= 8), SData (<= 16), IData (<= 32), QData
// (<= 64), VlWide (32-bit words) beyond.
static inline void mx_copy_in(mx_sim *s) {
    for (int i = 0; i < MX_NPORTS; i++) {
        if (mx_port_input[i] != 1) continue;   // 2: clk, driven by mx_eval
        const uint32_t *v = s->shadow[i];
        void *f = s->field[i];
        int w = mx_port_width[i];
        if (w <= 8) *(uint8_t *)f = (uint8_t)v[0];
        else if (w <= 16) *(uint16_t *)f = (uint16_t)v[0];
        else if (w <= 32) *(uint32_t *)f = v[0];
        else if (w <= 64) *(uint64_t *)f = (uint64_t)v[0] | ((uint64_t)v[1] << 32);
        else memcpy(f, v, 4 * mx_words(i));
    }
}

static inline void mx_copy_out(mx_sim *s) {
    for (int i = 0; i < MX_NPORTS; i++) {
        if (mx_port_input[i]) continue;
        uint32_t *v = s->shadow[i];
        const void *f = s->field[i];
        int w = mx_port_width[i];
        if (w <= 8) v[0] = *(const uint8_t *)f;
        else if (w <= 16) v[0] = *(const uint16_t *)f;
        else if (w <= 32) v[0] = *(const uint32_t *)f;
        else if (w <= 64) { uint64_t q = *(const uint64_t *)f; v[0] = (uint32_t)q; v[1] = (uint32_t)(q >> 32); }
        else memcpy(v, f, 4 * mx_words(i));
    }
}

static inline void mx_eval(mx_sim *s, int clk) {
#if MX_HAS_CLK
    s->top->clk = clk;
#else
    (void)clk;
#endif
    s->top->eval();
    s->deltas++;
}

extern "C" {

static inline int mx_failed(mx_sim *s) { (void)s; return 0; }
static inline int mx_fast(mx_sim *s) { (void)s; return 0; }

static inline void mx_pre_edge(mx_sim *s, int fast) {
    (void)fast;
    mx_copy_in(s);
    mx_eval(s, 0);
    mx_copy_out(s);
}

static inline void mx_edge_commit(mx_sim *s, int fast) {
    (void)fast;
#if MX_HAS_CLK
    mx_eval(s, 1);
#endif
    s->cycle++;
    s->settled = 0;
}

mx_sim *mx_create(void) {
    mx_sim *s = new mx_sim();
    s->ctx = new VerilatedContext;
    s->ctx->fatalOnError(false);
    s->top = new Vmx(s->ctx, "top");
    mx_bind(s->top, s->field);
    for (int i = 0; i < MX_NPORTS; i++) s->shadow[i] = new uint32_t[mx_words(i)]();
    mx_pre_edge(s, 0);
    return s;
}

void mx_destroy(mx_sim *s) {
    s->top->final();
    delete s->top;
    delete s->ctx;
    for (int i = 0; i < MX_NPORTS; i++) delete[] s->shadow[i];
    delete s;
}

// A port by name (no internal signals: Verilator keeps no names): width, memory (an
// input's curr and next are the same shadow words).
int mx_port(mx_sim *s, const char *name, size_t *width, uint32_t *flags, uint32_t *type,
            uint32_t **curr, uint32_t **next, void **outline) {
    for (int i = 0; i < MX_NPORTS; i++) {
        if (strcmp(name, mx_port_name[i])) continue;
        *width = mx_port_width[i]; *flags = 0; *type = 0;
        *curr = s->shadow[i]; *next = mx_port_input[i] ? s->shadow[i] : nullptr;
        *outline = nullptr;
        return 1;
    }
    return 0;
}

void mx_outline_eval(void *outline) { (void)outline; }

int mx_settle(mx_sim *s) {
    mx_pre_edge(s, 0);
    s->settled = 1;
    return 0;
}

void mx_set_fast(mx_sim *s, int on) { (void)s; (void)on; }

int mx_get_fast(mx_sim *s) { (void)s; return 0; }

const char *mx_failure(mx_sim *s) { (void)s; return nullptr; }

#include "glue_loops.cc"

// Waveforms are not built into Verilator models (the CXXRTL engine records them).
int mx_vcd_open(mx_sim *s, const char *path, uint64_t half_ps) {
    (void)s; (void)path; (void)half_ps;
    return 0;
}

void mx_vcd_close(mx_sim *s) { (void)s; }

}
