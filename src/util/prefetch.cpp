#include "dptrain/util/prefetch.hpp"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

namespace dptrain {
namespace {

constexpr std::size_t kFloatsPerLine = 64 / sizeof(float);

#if defined(__x86_64__) || defined(__i386__)
// PREFETCHW is CPUID 0x80000001 ECX bit 8 (PRFCHW); the instruction is not
// in the x86-64 baseline that the project is built for.
bool has_prefetchw() {
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  return __get_cpuid(0x80000001u, &eax, &ebx, &ecx, &edx) != 0 && (ecx & bit_PRFCHW) != 0;
}

void prefetchw_lines(const float* begin, std::size_t count) {
  // asm volatile: a __builtin_prefetch in a function of its own is a call
  // without effects to the optimiser, which drops it.
  for (std::size_t i = 0; i < count; i += kFloatsPerLine) __asm__ volatile("prefetchw %0" : : "m"(begin[i]));
}
#endif

}  // namespace

void prefetch_for_writing(const float* begin, std::size_t count) {
#if defined(__x86_64__) || defined(__i386__)
  static const bool supported = has_prefetchw();
  if (supported) prefetchw_lines(begin, count);
#else
  for (std::size_t i = 0; i < count; i += kFloatsPerLine) __builtin_prefetch(begin + i, 1, 3);
#endif
}

}  // namespace dptrain
