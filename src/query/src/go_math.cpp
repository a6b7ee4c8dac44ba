// Go's math.Exp and math.Log as the amd64 Go runtime computes them (the
// assembly of src/math/exp_amd64.s and log_amd64.s, operation by operation,
// including Exp's FMA path that Go takes when the CPU has AVX2 and FMA), so
// that `^` with a fractional exponent gives Prometheus's bits.
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>

#include "detail/eval.hpp"

namespace metrics::query::detail {
namespace {

bool use_fma() noexcept {
#if defined(__x86_64__)
  static const bool fma = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return fma;
#else
  return true;
#endif
}

// CVTSD2SL: round to nearest even, 0x80000000 when out of range.
std::int32_t cvtsd2sl(double v) noexcept {
  if (!(v >= -2147483648.5 && v < 2147483647.5)) return std::numeric_limits<std::int32_t>::min();
  return static_cast<std::int32_t>(std::nearbyint(v));
}

}  // namespace

double go_exp(double x) noexcept {
  constexpr double kLog2e = 1.4426950408889634073599246810018920;
  constexpr double kLn2U = 0.69314718055966295651160180568695068359375;
  constexpr double kLn2L = 0.28235290563031577122588448175013436025525412068e-12;
  constexpr double kOverflow = 7.09782712893384e+02;
  constexpr double c[] = {0.5,
                          1.0,
                          2.0,
                          1.6666666666666666667e-1,
                          4.1666666666666666667e-2,
                          8.3333333333333333333e-3,
                          1.3888888888888888889e-3,
                          1.9841269841269841270e-4,
                          2.4801587301587301587e-5};
  auto bits = std::bit_cast<std::uint64_t>(x);
  if ((bits & ~(1ULL << 63)) >= 0x7FF0000000000000ULL) {  // not finite
    if (bits == 0xFFF0000000000000ULL) return 0;
    return x;
  }
  if (x > kOverflow) return std::numeric_limits<double>::infinity();
  std::int32_t k = cvtsd2sl(kLog2e * x);
  double kd = static_cast<double>(k);
  double r;
  if (use_fma()) {
    r = std::fma(-kd, kLn2U, x);
    r = std::fma(-kd, kLn2L, r);
    r *= 0.0625;
    double p = c[8];
    for (int i : {7, 6, 5, 4, 3, 0, 1})
      p = std::fma(p, r, c[i]);
    r *= p;
    for (int i = 0; i < 3; ++i)
      r *= r + c[2];
    r = std::fma(r, r + c[2], c[1]);
  } else {
    r = x - kLn2U * kd;
    r = r - kLn2L * kd;
    r *= 0.0625;
    double p = c[8] * r;
    for (int i : {7, 6, 5, 4, 3, 0})
      p = (p + c[i]) * r;
    p = p + c[1];
    r *= p;
    for (int i = 0; i < 4; ++i)
      r *= r + c[2];
    r = r + c[1];
  }
  std::int64_t e = static_cast<std::int64_t>(k) + 0x3FF;
  if (e <= 0) return 0;
  if (e >= 0x7FF) return std::numeric_limits<double>::infinity();
  return r * std::bit_cast<double>(static_cast<std::uint64_t>(e) << 52);
}

double go_log(double x) noexcept {
  constexpr double kHSqrt2 = 7.07106781186547524401e-01;
  constexpr double kLn2Hi = 6.93147180369123816490e-01;
  constexpr double kLn2Lo = 1.90821492927058770002e-10;
  constexpr double L1 = 6.666666666666735130e-01;
  constexpr double L2 = 3.999999999940941908e-01;
  constexpr double L3 = 2.857142874366239149e-01;
  constexpr double L4 = 2.222219843214978396e-01;
  constexpr double L5 = 1.818357216161805012e-01;
  constexpr double L6 = 1.531383769920937332e-01;
  constexpr double L7 = 1.479819860511658591e-01;
  auto bits = std::bit_cast<std::uint64_t>(x);
  if ((bits & ~(1ULL << 63)) == 0) return -std::numeric_limits<double>::infinity();
  if (static_cast<std::int64_t>(bits) < 0) return std::bit_cast<double>(0x7FF8000000000001ULL);
  if (static_cast<std::int64_t>(bits) >= 0x7FF0000000000000LL) return x;
  double f1 = std::bit_cast<double>((bits & 0x000FFFFFFFFFFFFFULL) | 0x3FE0000000000000ULL);
  double k = static_cast<double>(static_cast<std::int64_t>((bits >> 52) & 0x7FF) - 0x3FE);
  if (!(kHSqrt2 < f1)) {  // CMPSD not-less-than
    k -= 1;
    f1 *= 2;
  }
  double f = f1 - 1;
  double s = f / (2 + f);
  double s2 = s * s;
  double s4 = s2 * s2;
  double t1 = s2 * ((((L7 * s4 + L5) * s4 + L3) * s4) + L1);
  double t2 = s4 * (((L6 * s4 + L4) * s4) + L2);
  double r = t1 + t2;
  double hfsq = 0.5 * f * f;
  double x3 = s * (r + hfsq) + kLn2Lo * k;
  double x0 = (hfsq - x3) - f;
  return k * kLn2Hi - x0;
}

}  // namespace metrics::query::detail
