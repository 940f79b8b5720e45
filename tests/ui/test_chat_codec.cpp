// The engine worker's prompt fitting: a chat longer than the room it has keeps its
// system turns and its latest exchanges, leaving out the earliest ones from one user
// turn to the next; the tokens are exactly those of the shortened chat rendered and
// encoded on its own, and no more is left out than needed. The answered message's
// first token is found for the routing map.
#include <QtTest>

#include <climits>

#include "workers/chat_codec.h"

namespace {

ChatTurns longChat(bool withSystem, int exchanges)
{
    ChatTurns turns;
    if (withSystem) turns.push_back({"system", "You are a helpful assistant who answers briefly."});
    for (int i = 0; i < exchanges; ++i) {
        turns.push_back({"user", QString("Question %1: how do mixture-of-experts layers route tokens?").arg(i)});
        turns.push_back({"assistant", QString("Answer %1: a gate scores the experts and keeps the best six.").arg(i)});
    }
    turns.push_back({"user", "And the shared experts?"});
    return turns;
}

ChatTurns without(const ChatTurns& turns, int systemTurns, int leftOut)
{
    ChatTurns out(turns.begin(), turns.begin() + systemTurns);
    out.insert(out.end(), turns.begin() + systemTurns + leftOut, turns.end());
    return out;
}

}  // namespace

class TestChatCodec : public QObject {
    Q_OBJECT

private slots:
    void initTestCase() { m_codec = std::make_unique<ChatCodec>(MOELENS_RESOURCES_DIR "/tokenizer"); }

    void fittingChatIsUntouched()
    {
        const ChatTurns turns = longChat(true, 3);
        const ChatCodec::Encoded all = m_codec->encodeChat(turns, INT_MAX);
        QCOMPARE(all.turnsLeftOut, 0);
        const ChatCodec::Encoded exact = m_codec->encodeChat(turns, int(all.tokens.size()));
        QCOMPARE(exact.turnsLeftOut, 0);
        QCOMPARE(exact.tokens, all.tokens);
    }

    void earliestExchangesAreLeftOut_data()
    {
        QTest::addColumn<bool>("withSystem");
        QTest::addColumn<int>("keptExchanges");
        QTest::newRow("system, keep 0") << true << 0;
        QTest::newRow("system, keep 3") << true << 3;
        QTest::newRow("system, keep 8") << true << 8;
        QTest::newRow("no system, keep 1") << false << 1;
        QTest::newRow("no system, keep 5") << false << 5;
    }

    void earliestExchangesAreLeftOut()
    {
        QFETCH(bool, withSystem);
        QFETCH(int, keptExchanges);
        const int exchanges = 12, system = withSystem ? 1 : 0;
        const ChatTurns turns = longChat(withSystem, exchanges);
        const int leftOut = 2 * (exchanges - keptExchanges);
        const std::vector<int> expected = m_codec->encodeChat(without(turns, system, leftOut), INT_MAX).tokens;
        // Any room from exactly these tokens up to one token short of keeping one
        // more exchange gives the same answer.
        const int nextLonger = int(m_codec->encodeChat(without(turns, system, leftOut - 2), INT_MAX).tokens.size());
        QVERIFY(nextLonger > int(expected.size()));
        for (int room : {int(expected.size()), nextLonger - 1}) {
            const ChatCodec::Encoded got = m_codec->encodeChat(turns, room);
            QCOMPARE(got.turnsLeftOut, leftOut);
            QCOMPARE(got.tokens, expected);
            QVERIFY(int(got.tokens.size()) <= room);
        }
        // The system turn is still what the prompt starts with.
        if (withSystem) {
            const std::vector<int> systemOnly = m_codec->encodeChat({turns.front()}, INT_MAX).tokens;
            const std::size_t head = 5;
            QVERIFY(systemOnly.size() > head);
            QVERIFY(std::equal(systemOnly.begin(), systemOnly.begin() + head, expected.begin()));
        }
    }

    // The answered message (its template markers included) starts where the turns
    // before it end: its tokens hold the last user turn and nothing earlier.
    void latestMessageStart()
    {
        for (int exchanges : {0, 1, 4}) {
            const ChatTurns turns = longChat(true, exchanges);
            const ChatCodec::Encoded got = m_codec->encodeChat(turns, INT_MAX);
            QVERIFY(got.latestMessageStart > 0 && got.latestMessageStart < int(got.tokens.size()));
            QString tail, head;
            for (std::size_t i = 0; i < got.tokens.size(); ++i)
                (int(i) < got.latestMessageStart ? head : tail) += m_codec->tokenText(got.tokens[i]);
            QVERIFY2(tail.contains("And the shared experts?"), qPrintable(tail));
            QVERIFY2(!tail.contains("Answer") && !tail.contains("helpful"), qPrintable(tail));
            QVERIFY2(head.contains("helpful") && !head.contains("shared experts"), qPrintable(head));
        }
        // With earlier exchanges left out, it counts in the shortened prompt.
        const ChatTurns turns = longChat(false, 12);
        const std::vector<int> all = m_codec->encodeChat(turns, INT_MAX).tokens;
        const ChatCodec::Encoded fitted = m_codec->encodeChat(turns, int(all.size()) / 2);
        QVERIFY(fitted.turnsLeftOut > 0);
        const int lastTurnTokens = int(all.size()) - m_codec->encodeChat(turns, INT_MAX).latestMessageStart;
        QCOMPARE(int(fitted.tokens.size()) - fitted.latestMessageStart, lastTurnTokens);
    }

    void lastUserTurnAloneMayNotFit()
    {
        const ChatTurns turns = longChat(true, 4);
        const std::vector<int> minimal = m_codec->encodeChat(without(turns, 1, 8), INT_MAX).tokens;
        const ChatCodec::Encoded got = m_codec->encodeChat(turns, int(minimal.size()) - 1);
        QCOMPARE(got.turnsLeftOut, 8);
        QCOMPARE(got.tokens, minimal);  // longer than asked: the caller reports it
    }

private:
    std::unique_ptr<ChatCodec> m_codec;
};

QTEST_MAIN(TestChatCodec)
#include "test_chat_codec.moc"
