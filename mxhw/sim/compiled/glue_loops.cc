// The cycle loops of the mxhw compiled-simulation C API, shared by both engines' glue
// (glue.cc: CXXRTL, vglue.cc: Verilator), included inside their extern "C" block. The
// includer defines struct mx_sim (with uint64_t cycle, deltas) and
//   int  mx_fast(mx_sim *)            whether a clock cycle may run as one evaluation
//   void mx_pre_edge(mx_sim *, int)   inputs written -> outputs settled before the edge
//   void mx_edge_commit(mx_sim *, int) the rising edge (state updated), cycle++
//   int  mx_failed(mx_sim *)          an assertion has failed
// Design notes: docs/sim.md.

// n rising clock edges; `dirty`: inputs changed since the last settle.
// After the edge, logic that depends combinationally on the new state is not yet
// re-evaluated: the caller settles (mx_settle) before reading outputs.
int mx_tick(mx_sim *s, uint64_t n, int dirty) {
    int fast = mx_fast(s);
    for (uint64_t i = 0; i < n && !mx_failed(s); i++) {
        if (fast) mx_pre_edge(s, 1);
        else if (i > 0 || dirty || !s->settled) mx_pre_edge(s, 0);
        mx_edge_commit(s, fast);
    }
    return mx_failed(s);
}

int mx_tick1(mx_sim *s, int dirty) { return mx_tick(s, 1, dirty); }

// Batch: per cycle, write every input from in_data, settle, copy every output into out_data
// (values just before the edge), then clock. Rows are packed words (in_words[i] per port).
int mx_run(mx_sim *s, uint64_t n,
            size_t n_in, uint32_t **in_ptrs, const size_t *in_words, const uint32_t *in_data,
            size_t n_out, uint32_t **out_ptrs, const size_t *out_words, uint32_t *out_data) {
    int fast = mx_fast(s);
    for (uint64_t c = 0; c < n && !mx_failed(s); c++) {
        for (size_t i = 0; i < n_in; i++) {
            memcpy(in_ptrs[i], in_data, in_words[i] * 4); in_data += in_words[i];
        }
        mx_pre_edge(s, fast);
        for (size_t i = 0; i < n_out; i++) {
            memcpy(out_data, out_ptrs[i], out_words[i] * 4); out_data += out_words[i];
        }
        mx_edge_commit(s, fast);
    }
    return mx_failed(s);
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
        if (mx_failed(s)) rc = 1;
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
        if (mx_failed(s)) { rc = 1; break; }
    }
    *iv = 0;
    stats[0] = cycles; stats[1] = sent; stats[2] = got;
    return rc;
}

uint64_t mx_cycle(mx_sim *s) { return s->cycle; }

uint64_t mx_deltas(mx_sim *s) { return s->deltas; }
