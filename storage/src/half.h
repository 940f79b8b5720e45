#pragma once
// IEEE 754 binary16 <-> binary32, round to nearest even, for trace gate weights.
#include <cmath>
#include <cstdint>
#include <cstring>

namespace moelens::storage {

inline std::uint16_t float_to_half(float f)
{
    std::uint32_t x;
    std::memcpy(&x, &f, sizeof x);
    const std::uint32_t sign = (x >> 16) & 0x8000u;
    const std::uint32_t exp = (x >> 23) & 0xffu;
    std::uint32_t mant = x & 0x7fffffu;
    if (exp == 0xff) return static_cast<std::uint16_t>(sign | 0x7c00u | (mant ? 0x200u : 0u));
    const int e = static_cast<int>(exp) - 127 + 15;
    if (e >= 31) return static_cast<std::uint16_t>(sign | 0x7c00u);
    if (e <= 0) {
        if (e < -10) return static_cast<std::uint16_t>(sign);
        // Subnormal half: value = m * 2^-24, m = (1.mant as 24 bits) >> (14 - e).
        mant |= 0x800000u;
        const int shift = 14 - e;
        std::uint32_t m = mant >> shift;
        const std::uint32_t rem = mant & ((1u << shift) - 1);
        const std::uint32_t halfway = 1u << (shift - 1);
        if (rem > halfway || (rem == halfway && (m & 1))) ++m;
        return static_cast<std::uint16_t>(sign | m);
    }
    std::uint32_t h = (static_cast<std::uint32_t>(e) << 10) | (mant >> 13);
    const std::uint32_t rem = mant & 0x1fffu;
    // A carry out of the mantissa correctly bumps the exponent (up to infinity).
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1))) ++h;
    return static_cast<std::uint16_t>(sign | h);
}

inline float half_to_float(std::uint16_t h)
{
    const bool negative = (h & 0x8000u) != 0;
    const std::uint32_t exp = (h >> 10) & 0x1fu;
    const std::uint32_t mant = h & 0x3ffu;
    if (exp == 0) {
        const float v = std::ldexp(static_cast<float>(mant), -24);
        return negative ? -v : v;
    }
    const std::uint32_t bits = (negative ? 0x80000000u : 0u) |
                               (exp == 31 ? 0x7f800000u | (mant << 13) : ((exp - 15 + 127) << 23) | (mant << 13));
    float f;
    std::memcpy(&f, &bits, sizeof f);
    return f;
}

}  // namespace moelens::storage
