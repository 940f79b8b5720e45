// The routing-trace blob: round trip, size bound, and rejection of hostile blobs.
#include <QTest>

#include <cmath>
#include <random>

#include "../../storage/src/crc32.h"
#include "../../storage/src/half.h"
#include "moelens_storage/error.h"
#include "moelens_storage/trace_codec.h"
#include "storage_test_util.h"

using namespace moelens::storage;
using moelens::storage::test::make_trace;

namespace {

// binary16 has an 11-bit significand: relative error at most 2^-11 for normal values.
void compare_traces(const RoutingTrace& a, const RoutingTrace& b)
{
    QCOMPARE(b.n_experts, a.n_experts);
    QCOMPARE(b.top_k, a.top_k);
    QCOMPARE(b.groups_per_row, a.groups_per_row);
    QCOMPARE(b.n_prompt_tokens, a.n_prompt_tokens);
    QVERIFY(b.layers == a.layers);
    QVERIFY(b.token_ids == a.token_ids);
    QVERIFY(b.token_texts == a.token_texts);
    QVERIFY(b.expert_ids == a.expert_ids);
    QVERIFY(b.group_ids == a.group_ids);
    QCOMPARE(b.gate_weights.size(), a.gate_weights.size());
    for (std::size_t i = 0; i < a.gate_weights.size(); ++i) {
        const float tol = std::fabs(a.gate_weights[i]) * (1.0f / 2048.0f);
        if (std::fabs(a.gate_weights[i] - b.gate_weights[i]) > tol)
            QFAIL(qPrintable(
                QString("weight %1: %2 decoded as %3").arg(i).arg(a.gate_weights[i]).arg(b.gate_weights[i])));
    }
}

template <typename F>
void expect_trace_error(F&& f, const char* needle)
{
    try {
        f();
    } catch (const StorageError& e) {
        QCOMPARE(e.kind(), ErrorKind::TraceFormat);
        if (std::string(e.what()).find(needle) == std::string::npos)
            QFAIL(qPrintable(QString("message '%1' lacks '%2'").arg(e.what(), needle)));
        return;
    }
    QFAIL("no StorageError thrown");
}

}  // namespace

class TestTraceCodec : public QObject {
    Q_OBJECT

private slots:
    void roundTrip_data()
    {
        QTest::addColumn<int>("tokens");
        QTest::addColumn<int>("layers");
        QTest::addColumn<int>("topK");
        QTest::addColumn<int>("experts");
        QTest::addColumn<int>("groups");
        QTest::addColumn<bool>("texts");
        QTest::addColumn<float>("scale");
        QTest::newRow("lite 26x6of64") << 50 << 26 << 6 << 64 << 0 << true << 1.0f;
        QTest::newRow("v2 59x6of160 groups, scaled") << 20 << 59 << 6 << 160 << 3 << true << 16.0f;
        QTest::newRow("u16 ids 300 experts") << 10 << 4 << 8 << 300 << 0 << false << 1.0f;
        QTest::newRow("empty trace") << 0 << 26 << 6 << 64 << 0 << false << 1.0f;
    }
    void roundTrip()
    {
        QFETCH(int, tokens);
        QFETCH(int, layers);
        QFETCH(int, topK);
        QFETCH(int, experts);
        QFETCH(int, groups);
        QFETCH(bool, texts);
        QFETCH(float, scale);
        const RoutingTrace t = make_trace(tokens, layers, topK, experts, 7, groups, texts, scale);
        const auto blob = encode_trace(t);
        compare_traces(t, decode_trace(blob));
        // Decoding then encoding again is exact: binary16 values survive the float trip.
        QVERIFY(encode_trace(decode_trace(blob)) == blob);
    }

    void thousandTokensIsWellUnderOneMegabyte()
    {
        const auto blob = encode_trace(make_trace(1000, 26, 6, 64));
        // 1000 x 26 x 6 x (1-byte id + 2-byte weight) = 468,000 bytes plus tokens.
        QVERIFY2(blob.size() < 500'000, qPrintable(QString::number(blob.size())));
    }

    void halfConversion()
    {
        QCOMPARE(half_to_float(float_to_half(1.0f)), 1.0f);
        QCOMPARE(half_to_float(float_to_half(-2.5f)), -2.5f);
        QCOMPARE(half_to_float(float_to_half(65504.0f)), 65504.0f);
        QCOMPARE(float_to_half(0.0f), std::uint16_t{0});
        QCOMPARE(float_to_half(1e6f), std::uint16_t{0x7c00});              // overflow -> +inf
        QCOMPARE(float_to_half(std::ldexp(1.0f, -24)), std::uint16_t{1});  // smallest subnormal
        QCOMPARE(half_to_float(1), std::ldexp(1.0f, -24));
        QCOMPARE(float_to_half(1.0f + std::ldexp(1.0f, -11)), std::uint16_t{0x3c00});  // tie -> even
        QCOMPARE(float_to_half(1.0f + 3 * std::ldexp(1.0f, -11)), std::uint16_t{0x3c02});
        // Every finite half survives half -> float -> half.
        for (std::uint32_t h = 0; h < 0x10000; ++h) {
            if (((h >> 10) & 0x1f) == 0x1f) continue;
            const auto back = float_to_half(half_to_float(static_cast<std::uint16_t>(h)));
            if (back != h) QFAIL(qPrintable(QString("half 0x%1 came back as 0x%2").arg(h, 0, 16).arg(back, 0, 16)));
        }
    }

    void everyTruncationIsRejected()
    {
        const auto blob = encode_trace(make_trace(3, 2, 2, 16));
        for (std::size_t n = 0; n < blob.size(); ++n) {
            try {
                decode_trace(std::span(blob).first(n));
                QFAIL(qPrintable(QString("a blob cut to %1 of %2 bytes decoded").arg(n).arg(blob.size())));
            } catch (const StorageError& e) {
                QCOMPARE(e.kind(), ErrorKind::TraceFormat);
            }
        }
    }

    void everyFlippedByteIsRejected()
    {
        const auto blob = encode_trace(make_trace(3, 2, 2, 16));
        for (std::size_t i = 0; i < blob.size(); ++i) {
            auto tampered = blob;
            tampered[i] ^= 0x10;
            try {
                decode_trace(tampered);
                QFAIL(qPrintable(QString("a blob with byte %1 changed decoded").arg(i)));
            } catch (const StorageError& e) {
                QCOMPARE(e.kind(), ErrorKind::TraceFormat);
            }
        }
    }

    void checksumMismatchIsNamed()
    {
        auto blob = encode_trace(make_trace(3, 2, 2, 16));
        blob[40] ^= 1;
        expect_trace_error([&] { decode_trace(blob); }, "checksum mismatch");
    }

    void newerVersionIsRefused()
    {
        auto blob = encode_trace(make_trace(3, 2, 2, 16));
        blob[4] = 2;
        expect_trace_error([&] { decode_trace(blob); }, "format version 2 is not supported");
    }

    void lyingStructureWithValidChecksumIsRejected()
    {
        // Blobs whose checksum is right but whose structure lies: the parser itself
        // must hold, not only the checksum.
        auto reseal = [](std::vector<std::uint8_t> body) {
            const std::uint32_t c = crc32(body);
            for (int i = 0; i < 4; ++i) body.push_back(static_cast<std::uint8_t>(c >> (8 * i)));
            return body;
        };
        const auto blob = encode_trace(make_trace(3, 2, 2, 16));
        std::vector<std::uint8_t> body(blob.begin(), blob.end() - 4);

        auto extra = body;
        extra.push_back(0);
        expect_trace_error([&] { decode_trace(reseal(extra)); }, "unexpected bytes");

        auto huge = body;
        huge[20] = huge[21] = huge[22] = 0xff;  // n_tokens = 2^24 - 1, far beyond the bytes present
        expect_trace_error([&] { decode_trace(reseal(huge)); }, "promises");

        auto out_of_range = body;
        out_of_range[8] = 1;  // n_experts = 1 < top_k
        expect_trace_error([&] { decode_trace(reseal(out_of_range)); }, "top_k");
    }

    void randomResealedMutationsNeverCrash()
    {
        // Hostile blobs that pass the checksum: random bytes changed, inserted or cut,
        // then resealed. Each must decode to a valid trace or throw TraceFormat; the
        // sanitizer build checks that no read goes out of bounds.
        std::mt19937 rng(12345);
        const auto blob = encode_trace(make_trace(5, 3, 2, 16, 1, 1));
        int rejected = 0;
        for (int round = 0; round < 3000; ++round) {
            std::vector<std::uint8_t> body(blob.begin(), blob.end() - 4);
            const int edits = 1 + static_cast<int>(rng() % 4);
            for (int e = 0; e < edits; ++e) {
                const std::size_t at = rng() % body.size();
                switch (rng() % 3) {
                    case 0:
                        body[at] = static_cast<std::uint8_t>(rng());
                        break;
                    case 1:
                        body.insert(body.begin() + static_cast<std::ptrdiff_t>(at), static_cast<std::uint8_t>(rng()));
                        break;
                    default:
                        if (body.size() > 1) body.erase(body.begin() + static_cast<std::ptrdiff_t>(at));
                }
            }
            const std::uint32_t c = crc32(body);
            for (int i = 0; i < 4; ++i) body.push_back(static_cast<std::uint8_t>(c >> (8 * i)));
            try {
                decode_trace(body).validate();
            } catch (const StorageError& e) {
                QCOMPARE(e.kind(), ErrorKind::TraceFormat);
                ++rejected;
            }
        }
        QVERIFY(rejected > 2000);
    }

    void inconsistentTracesAreNotEncoded()
    {
        RoutingTrace t = make_trace(2, 2, 2, 16);
        t.expert_ids[3] = 16;
        expect_trace_error([&] { encode_trace(t); }, "not below n_experts 16");
        t = make_trace(2, 2, 2, 16);
        t.gate_weights.pop_back();
        expect_trace_error([&] { encode_trace(t); }, "gate_weights has 7 entries, expected 8");
        t = make_trace(2, 2, 2, 16);
        t.gate_weights[0] = NAN;
        expect_trace_error([&] { encode_trace(t); }, "not a finite value");
        t = make_trace(2, 2, 2, 16);
        t.top_k = 0;
        expect_trace_error([&] { encode_trace(t); }, "top_k 0");
        t = make_trace(2, 2, 2, 16);
        expect_trace_error([&] { t.append_token(1, "x", {1}, {0.5f}); }, "expected 4 expert ids");
    }
};

QTEST_GUILESS_MAIN(TestTraceCodec)
#include "test_trace_codec.moc"
