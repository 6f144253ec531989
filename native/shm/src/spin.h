// The adaptive spin of a ring's reader: before it sleeps (and makes the writer pay a doorbell), a
// reader that found its ring empty may watch it for a few microseconds. Spinning pays only when a
// CPU is free to do it and data usually comes within the spin; on a busy or small machine it steals
// the CPU the writer needs. So the policy spins only while both hold:
//   - of the last 16 spins, at least 13 (80 %) saw data arrive; below that it stops for 100 ms, then
//     tries again;
//   - spinning took less than 5 % of one CPU over the current second.
// Times are the caller's (nanoseconds of a monotonic clock), so the policy is tested with made-up
// times. Whether to spin at all is the link's setting (off by default on machines with 2 CPUs or
// fewer: research/native.md §2.1 saw a 20 µs spin go from 0.2 to 48 µs when a core was stolen).
#pragma once

#include <cstdint>
#include <ctime>

namespace strait_shm {

class SpinPolicy {
 public:
  static constexpr int kWindow = 16;
  static constexpr int kMinWins = 13;
  static constexpr uint64_t kPause = 100'000'000;   // ns without spinning after a poor window
  static constexpr uint64_t kSecond = 1'000'000'000;
  static constexpr uint64_t kBudget = kSecond / 20;  // 5 % of a CPU

  explicit SpinPolicy(uint64_t spinNanos = 0) : spin_(spinNanos) {}

  uint64_t spinNanos() const { return spin_; }

  bool shouldSpin(uint64_t now) {
    if (spin_ == 0 || now < pausedUntil_) return false;
    if (now - second_ >= kSecond) {
      second_ = now;
      spent_ = 0;
    }
    return spent_ + spin_ <= kBudget;
  }

  void record(bool won, uint64_t spent, uint64_t now) {
    spent_ += spent;
    spins_++;
    if (won) wins_++;
    if (spins_ < kWindow) return;
    if (wins_ < kMinWins) pausedUntil_ = now + kPause;
    spins_ = 0;
    wins_ = 0;
  }

 private:
  uint64_t spin_;
  uint64_t second_ = 0;
  uint64_t spent_ = 0;
  uint64_t pausedUntil_ = 0;
  int spins_ = 0;
  int wins_ = 0;
};

inline uint64_t monotonicNanos() {
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return static_cast<uint64_t>(now.tv_sec) * 1'000'000'000ull + static_cast<uint64_t>(now.tv_nsec);
}

inline void cpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

}  // namespace strait_shm
