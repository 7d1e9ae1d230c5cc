/* KissFFT alone: FRAMES 2048-point real transforms (kiss_fftr, one plan, buffers reused), the floor under Encore's
 * spectrogram stage, which makes one such transform per frame. The 24 tracks of compare_audio.py have 125 450 frames.
 *
 *   gcc -O2 -o Benchmarks/.build/fft_baseline Benchmarks/audio/fft_baseline.c -lkissfft-float -lm
 *   Benchmarks/.build/fft_baseline [FRAMES]      -> {"frames": ..., "wall_s": ..., "cpu_s": ...}
 */
#define kiss_fft_scalar float
#include <kissfft/kiss_fftr.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double clock_s(clockid_t c) { struct timespec t; clock_gettime(c, &t); return t.tv_sec + t.tv_nsec * 1e-9; }

int main(int argc, char **argv) {
    const int n = 2048;
    long frames = argc > 1 ? atol(argv[1]) : 125450;
    if (frames < 1) { fprintf(stderr, "usage: fft_baseline [FRAMES]\n"); return 2; }
    kiss_fftr_cfg cfg = kiss_fftr_alloc(n, 0, NULL, NULL);
    float *in = malloc(sizeof(float) * n);
    kiss_fft_cpx *out = malloc(sizeof(kiss_fft_cpx) * (n / 2 + 1));
    if (!cfg || !in || !out) { fprintf(stderr, "out of memory\n"); return 1; }
    srand(1);
    for (int i = 0; i < n; i++) in[i] = sinf(0.37f * i) + 0.01f * (rand() % 100);
    double wall = clock_s(CLOCK_MONOTONIC), cpu = clock_s(CLOCK_PROCESS_CPUTIME_ID);
    float check = 0;
    for (long k = 0; k < frames; k++) {
        in[k % n] += 1e-6f;  /* a different input each time */
        kiss_fftr(cfg, in, out);
        check += out[k % (n / 2 + 1)].r;
    }
    wall = clock_s(CLOCK_MONOTONIC) - wall;
    cpu = clock_s(CLOCK_PROCESS_CPUTIME_ID) - cpu;
    printf("{\"frames\": %ld, \"wall_s\": %.3f, \"cpu_s\": %.3f, \"check\": %g}\n", frames, wall, cpu, check);
    free(cfg); free(in); free(out);
    return 0;
}
