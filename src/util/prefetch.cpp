#include "dptrain/util/prefetch.hpp"

#include "dptrain/util/cpu.hpp"

#if DPTRAIN_X86
#include <cpuid.h>
#endif

namespace dptrain {

#if DPTRAIN_X86
namespace {

// PREFETCHW is CPUID 0x80000001 ECX bit 8 (PRFCHW); the instruction is not
// in the x86-64 baseline that the project is built for.
bool has_prefetchw() {
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  return __get_cpuid(0x80000001u, &eax, &ebx, &ecx, &edx) != 0 && (ecx & bit_PRFCHW) != 0;
}

}  // namespace

void prefetch_for_writing(const void* start, std::size_t bytes) {
  static const bool supported = has_prefetchw();
  if (!supported) return;
  const char* p = static_cast<const char*>(start);
  for (std::size_t b = 0; b < bytes; b += kCacheLine) asm volatile("prefetchw %0" : : "m"(p[b]));
}
#else
void prefetch_for_writing(const void* start, std::size_t bytes) {
  const char* p = static_cast<const char*>(start);
  for (std::size_t b = 0; b < bytes; b += kCacheLine) __builtin_prefetch(p + b, 1, 3);
}
#endif

}  // namespace dptrain
