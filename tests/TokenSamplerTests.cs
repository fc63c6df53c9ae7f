using DeepScaleLM.Training.Generation;
using Xunit;

namespace DeepScaleLM.Tests;

public class TokenSamplerTests
{
    [Fact]
    public void GreedyPicksTheLargestLogitAndTheFirstOfTies()
    {
        var sampler = new TokenSampler(5, temperature: 0, topK: 0, seed: 1);
        Assert.Equal(3, sampler.Next([0.1f, -2f, 0.5f, 4f, 3.9f]));
        Assert.Equal(1, sampler.Next([0f, 2f, 2f, -1f, 1f]));
    }

    [Fact]
    public void TopOneIsGreedyAtAnyTemperature()
    {
        var sampler = new TokenSampler(4, temperature: 5f, topK: 1, seed: 7);
        for (int i = 0; i < 50; i++) Assert.Equal(2, sampler.Next([1f, 0.9f, 1.1f, -3f]));
    }

    [Fact]
    public void DrawFrequenciesFollowTheTemperedSoftmaxOverTheTopK()
    {
        float[] logits = [0.5f, 2f, -1f, 1.5f, 0f];
        const float temperature = 0.8f;
        const int draws = 40_000;
        var sampler = new TokenSampler(logits.Length, temperature, topK: 3, seed: 42);
        var counts = new int[logits.Length];
        for (int i = 0; i < draws; i++) counts[sampler.Next(logits)]++;

        // Kept: the three largest logits (indices 1, 3, 0); the others must never appear.
        int[] kept = [1, 3, 0];
        double normaliser = kept.Sum(k => Math.Exp(logits[k] / temperature));
        foreach (int k in kept)
        {
            double p = Math.Exp(logits[k] / temperature) / normaliser;
            double sigma = Math.Sqrt(draws * p * (1 - p));
            Assert.InRange(counts[k], draws * p - 5 * sigma, draws * p + 5 * sigma);
        }
        Assert.Equal(0, counts[2]);
        Assert.Equal(0, counts[4]);
    }

    [Fact]
    public void TheSameSeedGivesTheSameTokensAndAnotherSeedOthers()
    {
        float[] logits = Enumerable.Range(0, 32).Select(i => MathF.Sin(i)).ToArray();
        int[] Run(ulong seed)
        {
            var sampler = new TokenSampler(logits.Length, 1f, 0, seed);
            return Enumerable.Range(0, 64).Select(_ => sampler.Next(logits)).ToArray();
        }
        Assert.Equal(Run(3), Run(3));
        Assert.NotEqual(Run(3), Run(4));
    }

    [Fact]
    public void BadSettingsAndRowsAreNamed()
    {
        Assert.Contains("temperature", Assert.Throws<ArgumentOutOfRangeException>(() => new TokenSampler(4, -1f, 0, 0)).Message);
        Assert.Contains("top-k", Assert.Throws<ArgumentOutOfRangeException>(() => new TokenSampler(4, 1f, 5, 0)).Message);
        var sampler = new TokenSampler(3, 1f, 0, 0);
        Assert.Contains("NaN", Assert.Throws<ArgumentException>(() => sampler.Next([0f, float.NaN, 1f])).Message);
        Assert.Contains("3", Assert.Throws<ArgumentException>(() => sampler.Next([0f, 1f])).Message);
    }
}
