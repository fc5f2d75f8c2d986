#pragma once
// Cache hints, one place for both kinds. They are inline assembly on x86:
// GCC 12 takes __builtin_prefetch to have no side effects and deletes the
// loops around it, and calls to functions made of them, as dead code.
//
// For reading: the gather of a batch's random rows (data/dataset.cpp), each
// of which would otherwise cost a memory latency before the hardware
// prefetcher sees a stream.
//
// For writing: in a node's shared segment a rank writes lines that the other
// ranks have just read, its slice of the parameters (read by every rank's
// forward pass). Such a line sits Shared in another core's cache, and a
// store to it waits for that copy to be invalidated: a round trip to the
// coherence directory per line, which the store's own request starts too
// late to hide. PREFETCHW starts it ahead, for many lines at once
// (784-256-256-10 on 2 ranks x 1 thread, `tools/compare-builds.py --only MID`:
// the reduction with its update 0.175 -> 0.118 ms a step, the epoch 0.451 ->
// 0.422 s). A gradient slot, also read by the other ranks (their sums),
// gained nothing from it before the GEMM that writes it (the backward pass
// got slower), so only the update asks.
//
// Both are hints: nothing is read or written. The range must lie inside one
// object, as for any pointer arithmetic.
#include <cstddef>

#include "dptrain/util/cpu.hpp"

namespace dptrain {

inline constexpr std::size_t kCacheLine = 64;

// Brings the lines of [start, start + bytes) into the caches.
inline void prefetch_for_reading(const void* start, std::size_t bytes) {
  const char* p = static_cast<const char*>(start);
  for (std::size_t b = 0; b < bytes; b += kCacheLine) {
#if DPTRAIN_X86
    asm volatile("prefetcht0 %0" : : "m"(p[b]));
#else
    __builtin_prefetch(p + b);
#endif
  }
}

// Asks for the lines of [start, start + bytes) in a writable state; does
// nothing where the CPU has no PREFETCHW.
void prefetch_for_writing(const void* start, std::size_t bytes);

}  // namespace dptrain
