#pragma once
// The routing-trace blob: versioned, compact and checked. Layout (little-endian):
//
//   0  "MLTR"            magic
//   4  u16 version       kTraceFormatVersion; newer versions are refused, not guessed
//   6  u16 flags         bit 0: token texts present
//   8  u16 n_experts     12 u8 expert id width in bytes (1 if n_experts <= 256, else 2)
//  10  u8  top_k         13 u8 weight encoding (1 = IEEE binary16)
//  11  u8  groups_per_row 14 u16 reserved (0)
//  16  u32 n_layers      20 u32 n_tokens      24 u32 n_prompt_tokens
//  28  layers           n_layers x u16
//      token ids        n_tokens x i32
//      token texts      n_tokens x (LEB128 length, UTF-8 bytes)      if flag bit 0
//      expert ids       n_tokens x n_layers x top_k x width
//      gate weights     n_tokens x n_layers x top_k x binary16
//      group ids        n_tokens x n_layers x groups_per_row x u8
//  end-4 u32 CRC-32 (IEEE) of every byte before it
//
// binary16 keeps ~3 significant digits, plenty to draw a gate weight, and covers
// weights above 1 (DeepSeek-V2 scales routed weights by routed_scaling_factor). A
// 1,000-token, 26-layer, 6-of-64 trace is about 0.47 MB.
#include <cstdint>
#include <span>
#include <vector>

#include "moelens_storage/records.h"

namespace moelens::storage {

inline constexpr std::uint16_t kTraceFormatVersion = 1;

// Throws StorageError(TraceFormat) if the trace is inconsistent (see RoutingTrace::validate).
std::vector<std::uint8_t> encode_trace(const RoutingTrace& trace);

// Throws StorageError(TraceFormat) on a truncated, tampered (checksum), oversized or
// newer-version blob, naming the field and what was expected vs found.
RoutingTrace decode_trace(std::span<const std::uint8_t> blob);

}  // namespace moelens::storage
