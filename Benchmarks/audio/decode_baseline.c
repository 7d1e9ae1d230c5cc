/* libsndfile + libsoxr alone: what decoding and resampling cost without Encore around them.
 * Reads each file in 65536-frame blocks, mixes to mono (mean of channels), resamples at SOXR_HQ to 22050 Hz.
 * Usage: decode_baseline REPEATS FILE...; prints {"decode_s": median total seconds, "samples": output samples}. */
#include <sndfile.h>
#include <soxr.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }
static double cpu_now(void) { struct timespec t; clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t); return t.tv_sec + t.tv_nsec * 1e-9; }
static int cmp(const void *a, const void *b) { double x = *(const double *)a, y = *(const double *)b; return (x > y) - (x < y); }

static long decode(const char *path, float **keep, long *cap) {
    SF_INFO info = {0};
    SNDFILE *f = sf_open(path, SFM_READ, &info);
    if (!f) { fprintf(stderr, "%s: %s\n", path, sf_strerror(NULL)); exit(1); }
    const int block = 65536, ch = info.channels;
    float *in = malloc(sizeof(float) * block * ch), *mono = malloc(sizeof(float) * block);
    double ratio = 22050.0 / info.samplerate;
    size_t outcap = (size_t)(block * ratio) + 64;
    float *out = malloc(sizeof(float) * outcap);
    soxr_error_t err = NULL;
    soxr_io_spec_t io = soxr_io_spec(SOXR_FLOAT32_I, SOXR_FLOAT32_I);
    soxr_quality_spec_t q = soxr_quality_spec(SOXR_HQ, 0);
    soxr_t s = info.samplerate == 22050 ? NULL : soxr_create(info.samplerate, 22050, 1, &err, &io, &q, NULL);
    long total = 0, frames = 0;
    sf_count_t got;
    while ((got = sf_readf_float(f, in, block)) > 0) {
        frames += got;
        for (sf_count_t i = 0; i < got; i++) {
            float acc = 0; for (int c = 0; c < ch; c++) acc += in[i * ch + c];
            mono[i] = acc / ch;
        }
        size_t done = 0, odone = 0;
        if (!s) { odone = got; }
        else {
            while (done < (size_t)got) {
                size_t idone = 0;
                soxr_process(s, mono + done, got - done, &idone, out, outcap, &odone);
                done += idone; total += odone;
                if (*cap < total) { *cap = total * 2; *keep = realloc(*keep, sizeof(float) * *cap); }
                if (idone == 0 && odone == 0) break;
            }
            continue;
        }
        total += odone;
    }
    if (s) { size_t odone; do { soxr_process(s, NULL, 0, NULL, out, outcap, &odone); total += odone; } while (odone > 0); soxr_delete(s); }
    sf_close(f); free(in); free(mono); free(out);
    (void)frames;
    return total;
}

int main(int argc, char **argv) {
    if (argc < 3) { fprintf(stderr, "usage: decode_baseline REPEATS FILE...\n"); return 2; }
    int repeats = atoi(argv[1]);
    double *times = malloc(sizeof(double) * repeats), *cpu = malloc(sizeof(double) * repeats);
    long samples = 0, cap = 1 << 20;
    float *keep = malloc(sizeof(float) * cap);
    for (int r = 0; r < repeats; r++) {
        double t0 = now(), c0 = cpu_now(); samples = 0;
        for (int i = 2; i < argc; i++) samples += decode(argv[i], &keep, &cap);
        times[r] = now() - t0;
        cpu[r] = cpu_now() - c0;
    }
    qsort(times, repeats, sizeof(double), cmp);
    qsort(cpu, repeats, sizeof(double), cmp);
    printf("{\"decode_s\": %.6f, \"decode_cpu_s\": %.6f, \"samples\": %ld}\n", times[repeats / 2], cpu[repeats / 2], samples);
    return 0;
}
