// Batch driver: runs the translated verifier inside Verilator with no Python per cycle.
// Input file (little-endian uint32): n_beats, beat_words, n_results, src_stall_ppm,
// sink_stall_ppm, seed, max_cycles(lo), max_cycles(hi), then n_beats * beat_words words.
// Output file: n_results records of result_words + 1 words: the cycle, then the message.
// Stalls come from a seeded xorshift generator so runs are reproducible.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>
#include "verilated.h"
#include "batch_top.h"  // generated: TOP_CLASS, RESULT_WORDS, port names, the model header

static uint64_t rng_state;
static uint32_t next_rand() {  // xorshift64*
    rng_state ^= rng_state >> 12; rng_state ^= rng_state << 25; rng_state ^= rng_state >> 27;
    return (uint32_t)((rng_state * 2685821657736338717ULL) >> 32);
}
static bool stall(uint32_t ppm) { return ppm && (next_rand() % 1000000u) < ppm; }

template <typename T> static void set_port(T& port, const uint32_t* w, int nwords) {
    if constexpr (sizeof(T) <= 8) {
        uint64_t v = w[0];
        if (nwords > 1) v |= (uint64_t)w[1] << 32;
        port = (T)v;
    } else {
        for (int i = 0; i < nwords; ++i) port[i] = w[i];
    }
}
template <typename T> static void get_port(const T& port, uint32_t* w, int nwords) {
    if constexpr (sizeof(T) <= 8) {
        uint64_t v = port;
        w[0] = (uint32_t)v;
        if (nwords > 1) w[1] = (uint32_t)(v >> 32);
    } else {
        for (int i = 0; i < nwords; ++i) w[i] = port[i];
    }
}

int main(int argc, char** argv) {
    if (argc != 3) { fprintf(stderr, "usage: %s IN OUT\n", argv[0]); return 2; }
    FILE* fin = fopen(argv[1], "rb");
    if (!fin) { perror(argv[1]); return 2; }
    uint32_t hdr[8];
    if (fread(hdr, 4, 8, fin) != 8) { fprintf(stderr, "short header\n"); return 2; }
    const uint32_t n_beats = hdr[0], beat_words = hdr[1], n_results = hdr[2];
    const uint32_t src_ppm = hdr[3], sink_ppm = hdr[4];
    rng_state = 0x9E3779B97F4A7C15ULL ^ hdr[5];
    const uint64_t max_cycles = (uint64_t)hdr[6] | ((uint64_t)hdr[7] << 32);
    std::vector<uint32_t> beats((size_t)n_beats * beat_words);
    if (fread(beats.data(), 4, beats.size(), fin) != beats.size()) { fprintf(stderr, "short beats\n"); return 2; }
    fclose(fin);

    VerilatedContext ctx;
    TOP_CLASS top(&ctx);
    const int result_words = RESULT_WORDS;
    std::vector<uint32_t> out;
    out.reserve((size_t)n_results * (result_words + 1));
    std::vector<uint32_t> msg(result_words);

    top.reset = 1; top.RECV_VAL = 0; top.SEND_RDY = 0;
    for (int i = 0; i < 2; ++i) { top.clk = 0; top.eval(); top.clk = 1; top.eval(); }
    top.reset = 0;

    uint64_t cycle = 0;
    uint32_t idx = 0, got = 0;
    bool src_valid = false;   // once valid is raised it stays until the handshake
    while (got < n_results && cycle < max_cycles) {
        if (!src_valid && idx < n_beats && !stall(src_ppm)) src_valid = true;
        top.RECV_VAL = src_valid;
        if (src_valid) set_port(top.RECV_MSG, &beats[(size_t)idx * beat_words], beat_words);
        top.SEND_RDY = !stall(sink_ppm);
        top.clk = 0; top.eval();
        const bool in_fire = top.RECV_VAL && top.RECV_RDY;
        if (top.SEND_VAL && top.SEND_RDY) {
            get_port(top.SEND_MSG, msg.data(), result_words);
            out.push_back((uint32_t)cycle);
            out.insert(out.end(), msg.begin(), msg.end());
            ++got;
        }
        top.clk = 1; top.eval();
        if (in_fire) { ++idx; src_valid = false; }
        ++cycle;
    }
    FILE* fout = fopen(argv[2], "wb");
    if (!fout) { perror(argv[2]); return 2; }
    fwrite(out.data(), 4, out.size(), fout);
    fclose(fout);
    fprintf(stderr, "cycles %llu results %u\n", (unsigned long long)cycle, got);
    top.final();
    return got == n_results ? 0 : 3;
}
