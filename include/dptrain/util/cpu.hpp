#pragma once
// What the project asks of the CPU it runs on, tested in one place: the
// x86 paths (inline PAUSE and PREFETCH instructions, CPUID, an AVX2 clone
// of the update) and the portable fallbacks beside them use this one guard,
// so that every file takes the same side on the same machine.
#if defined(__x86_64__) || defined(__i386__)
#define DPTRAIN_X86 1
#else
#define DPTRAIN_X86 0
#endif

namespace dptrain {

// A hint inside a spin-wait loop: on x86, PAUSE lets the sibling hyperthread
// run and avoids the memory-order mis-speculation penalty when the awaited
// line changes. Elsewhere the loop just spins.
inline void cpu_relax() {
#if DPTRAIN_X86
  __builtin_ia32_pause();
#endif
}

}  // namespace dptrain
