#include "dptrain/train/progress.hpp"

#include <unistd.h>

#include <algorithm>

namespace dptrain {

ProgressLine::ProgressLine(std::FILE* out, bool enabled, std::int64_t log_every, std::int64_t steps_per_epoch)
    : out_(out),
      enabled_(enabled),
      terminal_(::isatty(fileno(out)) == 1),
      every_(log_every > 0 ? log_every : (terminal_ ? 0 : std::max<std::int64_t>(1, (steps_per_epoch + 9) / 10))) {}

void ProgressLine::start_epoch() { epoch_start_ = last_draw_ = std::chrono::steady_clock::now(); }

void ProgressLine::after_step(std::int64_t epoch, std::int64_t epochs, std::int64_t step, std::int64_t samples_done,
                              std::int64_t samples_per_epoch, double loss_sum) {
  if (!enabled_) return;
  if (every_ > 0) {
    // A plain line every `every_` steps, but not on the epoch's last step: the summary follows.
    if ((step + 1) % every_ != 0 || samples_done >= samples_per_epoch) return;
  }
  const auto now = std::chrono::steady_clock::now();
  if (every_ == 0 && now - last_draw_ < std::chrono::milliseconds(250)) return;
  last_draw_ = now;
  const double elapsed = std::chrono::duration<double>(now - epoch_start_).count();
  const double rate = elapsed > 0 ? static_cast<double>(samples_done) / elapsed : 0.0;
  const double left = rate > 0 ? static_cast<double>(samples_per_epoch - samples_done) / rate : 0.0;
  const double loss = samples_done > 0 ? loss_sum / static_cast<double>(samples_done) : 0.0;
  std::fprintf(out_, "%sepoch %3lld/%lld  %9lld/%lld samples  %9.0f samples/s  loss %.5f  %6.1f s left%s",
               terminal_ && every_ == 0 ? "\r" : "  ", static_cast<long long>(epoch), static_cast<long long>(epochs),
               static_cast<long long>(samples_done), static_cast<long long>(samples_per_epoch), rate, loss, left,
               terminal_ && every_ == 0 ? "\033[K" : "\n");
  std::fflush(out_);
  drawn_ = true;
}

void ProgressLine::end_epoch() {
  if (enabled_ && terminal_ && every_ == 0 && drawn_) std::fputs("\r\033[K", out_);
  drawn_ = false;
}

}  // namespace dptrain
