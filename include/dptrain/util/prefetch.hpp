#pragma once
// Ownership of cache lines ahead of the writes. In a node's shared segment a
// rank writes lines that the other ranks have just read: its slice of the
// parameters (read by every rank's forward pass) and its gradient slot (read
// by the other ranks' sums). Such a line sits Shared in another core's
// cache, and a store to it waits for that copy to be invalidated: a round
// trip to the coherence directory per line, which the store's own request
// starts too late to hide. PREFETCHW starts it ahead, for many lines at once
// (784-256-256-10 on 2 ranks x 1 thread, `tools/compare-builds.py --only MID`:
// the reduction with its update 0.175 -> 0.118 ms a step, the epoch 0.451 ->
// 0.422 s). The GEMM's own writes of a gradient slot gained nothing from it
// (the backward pass got slower), so only the update asks.
#include <cstddef>

namespace dptrain {

// Asks for the lines of [begin, begin + count) in a writable state. Only a
// hint: nothing is read or written, any address is allowed, and where the
// CPU has no PREFETCHW it does nothing.
void prefetch_for_writing(const float* begin, std::size_t count);

}  // namespace dptrain
