using System.Text.Json;

namespace DeepScaleLM.Tests;

/// <summary>
/// <c>dslm theory</c> end to end: the JSON shape of issue 4 (one "layers" entry per block, the stream after its
/// feed-forward sublayer), the depth behaviour of dslm-theory.md 7 checks 3-4, the published init values of 5.2, and
/// clear errors for bad flags and for combinations the theory cannot predict yet.
/// </summary>
public sealed class TheoryCommandTests
{
    private static readonly string[] SmallModel = ["--layers", "4", "--d-model", "64", "--heads", "4", "--seq-len", "32"];

    /// <summary>Runs <c>dslm theory</c> with --json and returns the printed table and the parsed document.</summary>
    private static (string Output, JsonElement Json) Theory(params string[] args)
    {
        string path = Path.Combine(Path.GetTempPath(), $"dslm-theory-{Guid.NewGuid():N}.json");
        try
        {
            var (code, output, error) = CliTests.Dslm(["theory", .. args, "--json", path]);
            Assert.True(code == 0, error);
            using var json = JsonDocument.Parse(File.ReadAllText(path));
            return (output, json.RootElement.Clone());
        }
        finally
        {
            File.Delete(path);
        }
    }

    private static double[] Variances(JsonElement json) =>
        json.GetProperty("layers").EnumerateArray().Select(layer => layer.GetProperty("forward_variance").GetDouble()).ToArray();

    [Fact]
    public void JsonHasTheIssuesKeysAndOneEntryPerBlock()
    {
        var (output, json) = Theory(SmallModel);
        Assert.Equal(4, json.GetProperty("config").GetProperty("layers").GetInt32());
        var init = json.GetProperty("init");
        foreach (var key in new[] { "embedding_std", "qk_std", "ffn_std", "logit_scale", "lambda", "beta" })
            Assert.True(init.GetProperty(key).GetDouble() > 0, key);
        Assert.Equal(4, init.GetProperty("vo_std").GetArrayLength());
        Assert.Equal(1.0, json.GetProperty("logit_variance").GetDouble(), 12);
        var layers = json.GetProperty("layers").EnumerateArray().ToArray();
        Assert.Equal([0, 1, 2, 3], layers.Select(layer => layer.GetProperty("layer").GetInt32()));
        foreach (var layer in layers)
            foreach (var key in new[] { "forward_variance", "correlation", "grad_variance" })
                Assert.True(double.IsFinite(layer.GetProperty(key).GetDouble()), key);
        Assert.Contains("layer  forward_variance  correlation  grad_variance", output);
        Assert.Equal(4, output.Split('\n').Count(line => System.Text.RegularExpressions.Regex.IsMatch(line, @"^\s+\d+\s+[\d.]")));
    }

    [Theory]
    [InlineData("pre")]
    [InlineData("post")]
    public void DslmAt192LayersKeepsUnitVarianceAtEveryLayer(string norm)
    {
        // Check 3 of dslm-theory.md 7 at the defaults (192 layers, d 1024, 16 heads, L 256, p 0.1).
        var (_, json) = Theory("--norm", norm, "--init", "dslm", "--layers", "192", "--d-model", "1024");
        var variances = Variances(json);
        Assert.Equal(192, variances.Length);
        Assert.All(variances, variance => Assert.InRange(variance, 0.95, 1.05));
    }

    [Fact]
    public void XavierPreLnVarianceGrowsWithDepth()
    {
        // Check 4 of dslm-theory.md 7: plain residuals let the Pre-LN stream grow ~linearly (~407 at layer 192 in the figure).
        var (_, json) = Theory("--norm", "pre", "--init", "xavier", "--layers", "192", "--d-model", "1024");
        var variances = Variances(json);
        Assert.True(variances[^1] > 50 * variances[0], $"last {variances[^1]}, first {variances[0]}");
        Assert.Equal(1.0, json.GetProperty("init").GetProperty("lambda").GetDouble());
    }

    [Fact]
    public void InitReproducesThePublishedValues()
    {
        // dslm-theory.md 5.2: d 1024, p 0.1, 192 layers, lam^2 = 0.995, beta^2 = 0.005, the official three embedding tables.
        var (_, json) = Theory("--layers", "192", "--d-model", "1024", "--dropout", "0.1", "--beta2", "0.005", "--embedding-tables", "3");
        var init = json.GetProperty("init");
        Assert.Equal(0.547723, init.GetProperty("embedding_std").GetDouble(), 6);
        Assert.Equal(0.03125, init.GetProperty("qk_std").GetDouble(), 6);
        Assert.Equal(0.025595, init.GetProperty("ffn_std").GetDouble(), 6);
        Assert.Equal(0.057054, init.GetProperty("logit_scale").GetDouble(), 6);
        var valueOutput = init.GetProperty("vo_std").EnumerateArray().Select(std => std.GetDouble()).ToArray();
        Assert.Equal(192, valueOutput.Length);
        Assert.Equal(0.045578, valueOutput[0], 6);
        Assert.Equal(0.045328, valueOutput[1], 6);
        Assert.Equal(0.043416, valueOutput[10], 6);
        Assert.Equal(0.035964, valueOutput[100], 6);
        Assert.Equal(0.033788, valueOutput[191], 6);
        Assert.Equal(0.995, Math.Pow(init.GetProperty("lambda").GetDouble(), 2), 12);
        Assert.Equal(0.005, Math.Pow(init.GetProperty("beta").GetDouble(), 2), 12);
    }

    [Theory]
    [InlineData("--norm", "sideways", "--norm")]
    [InlineData("--heads", "5", "--heads")]
    [InlineData("--dropout", "1", "--dropout")]
    [InlineData("--token-correlation", "lots", "--token-correlation")]
    public void BadFlagIsExitTwoNamingTheFlag(string flag, string value, string named)
    {
        var (code, output, error) = CliTests.Dslm("theory", flag, value);
        Assert.Equal(2, code);
        Assert.StartsWith($"dslm: error: {named}", error);
        Assert.Equal("", output);
    }

    [Theory]
    [InlineData("--norm none is not supported yet", "--norm", "none")]
    [InlineData("--init espa is not supported yet", "--norm", "none", "--init", "espa")]
    [InlineData("--init espa is not supported yet", "--init", "espa")]
    [InlineData("--causal is not supported yet", "--causal")]
    public void UnsupportedCombinationSaysSoAndPrintsNoNumbers(string message, params string[] args)
    {
        var (code, output, error) = CliTests.Dslm(["theory", .. SmallModel, .. args]);
        Assert.Equal(2, code);
        Assert.Contains(message, error);
        Assert.Equal("", output);
    }
}
