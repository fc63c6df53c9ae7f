using DeepScaleLM.Training.Evaluation;

namespace DeepScaleLM.Tests;

/// <summary>Evaluation metrics and the unigram baseline against values worked out by hand.</summary>
public sealed class MetricTests
{
    [Fact]
    public void MetricsFromSummedNatsMatchHandValues()
    {
        // L = 8 ln 2 nats over 4 tokens that encode 8 bytes.
        var metrics = new EvaluationMetrics(8 * Math.Log(2), 4, 8);
        Assert.Equal(2 * Math.Log(2), metrics.MeanLoss, 15); // 1.386... nats per token
        Assert.Equal(4.0, metrics.Perplexity, 13);           // exp(2 ln 2)
        Assert.Equal(2.0, metrics.BitsPerToken, 14);         // 8 ln 2 / (4 ln 2)
        Assert.Equal(1.0, metrics.BitsPerByte, 14);          // 8 ln 2 / (8 ln 2)
    }

    [Fact]
    public void ByteTokensHaveEqualBitsPerTokenAndPerByte()
    {
        // A uniform guess over 256 bytes: ln 256 nats per token = 8 bits per byte, perplexity 256.
        var metrics = EvaluationMetrics.ForBytes(10 * Math.Log(256), 10);
        Assert.Equal(8.0, metrics.BitsPerByte, 13);
        Assert.Equal(metrics.BitsPerByte, metrics.BitsPerToken);
        Assert.Equal(256.0, metrics.Perplexity, 10);
    }

    [Fact]
    public void ZeroLossIsPerplexityOne()
    {
        var metrics = new EvaluationMetrics(0, 3, 5);
        Assert.Equal(0.0, metrics.BitsPerByte);
        Assert.Equal(1.0, metrics.Perplexity);
    }

    [Theory]
    [InlineData(-1.0, 1L, 1L, "totalNats")]
    [InlineData(double.NaN, 1L, 1L, "totalNats")]
    [InlineData(double.PositiveInfinity, 1L, 1L, "totalNats")]
    [InlineData(1.0, 0L, 1L, "tokenCount")]
    [InlineData(1.0, 1L, 0L, "byteCount")]
    public void InvalidMetricInputsAreNamed(double nats, long tokens, long bytes, string parameter)
    {
        Assert.Equal(parameter, Assert.Throws<ArgumentOutOfRangeException>(() => new EvaluationMetrics(nats, tokens, bytes)).ParamName);
    }

    [Theory]
    [InlineData("aaaa", 0.0)]
    [InlineData("aabb", 1.0)]
    [InlineData("abcd", 2.0)]
    [InlineData("aaab", 0.8112781244591328)] // -(3/4 log2 3/4 + 1/4 log2 1/4)
    public void UnigramBaselineIsTheByteEntropy(string text, double bits)
    {
        var bytes = System.Text.Encoding.ASCII.GetBytes(text);
        Assert.Equal(bits, UnigramBaseline.BitsPerByte(bytes), 14);
        Assert.Equal(bits, UnigramBaseline.BitsPerByte(Array.ConvertAll(bytes, b => (int)b)), 14);
    }

    [Fact]
    public void UnigramBaselineOfAllByteValuesIsEightBits()
    {
        var tokens = Enumerable.Range(0, 256).ToArray();
        Assert.Equal(8.0, UnigramBaseline.BitsPerByte(tokens), 14);
    }

    [Fact]
    public void UnigramBaselineRejectsEmptyStreamsAndNonBytes()
    {
        Assert.Equal("bytes", Assert.Throws<ArgumentException>(() => UnigramBaseline.BitsPerByte(ReadOnlySpan<byte>.Empty)).ParamName);
        Assert.Equal("tokens", Assert.Throws<ArgumentException>(() => UnigramBaseline.BitsPerByte(ReadOnlySpan<int>.Empty)).ParamName);
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => UnigramBaseline.BitsPerByte(new[] { 65, 256 }));
        Assert.Equal("tokens", e.ParamName);
        Assert.Contains("256", e.Message);
    }
}
