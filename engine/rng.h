/* Seeded pseudo-random numbers for the engine: one generator per purpose
 * (initialisation, data order, dropout seeds), each a plain uint64 state so
 * a session can save and restore it exactly. splitmix64. */
#ifndef BILORA_ENGINE_RNG_H
#define BILORA_ENGINE_RNG_H

#include <math.h>
#include <stdint.h>

static inline uint64_t rng_next(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}
/* uniform in [0,1) with 53 bits */
static inline double rng_uniform(uint64_t *s) { return (double)(rng_next(s) >> 11) * (1.0 / 9007199254740992.0); }
static inline double rng_normal(uint64_t *s) {
    double u1 = rng_uniform(s), u2 = rng_uniform(s);
    if (u1 < 1e-300) u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}
/* uniform integer in [0, n) */
static inline uint64_t rng_below(uint64_t *s, uint64_t n) { return n ? rng_next(s) % n : 0; }
/* Derive an independent seed for a purpose from a run seed. */
static inline uint64_t rng_derive(uint64_t seed, uint64_t purpose) {
    uint64_t s = seed ^ (purpose * 0xD1B54A32D192ED03ULL);
    return rng_next(&s);
}

#endif
