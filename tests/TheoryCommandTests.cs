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
    [InlineData("use it with --norm none", "--init", "espa")]
    [InlineData("use --norm pre or post", "--norm", "none", "--init", "dslm-position")]
    [InlineData("--beta2 applies to --init dslm and dslm-position only", "--init", "xavier", "--beta2", "0.01")]
    public void UnsupportedCombinationSaysSoAndPrintsNoNumbers(string message, params string[] args)
    {
        var (code, output, error) = CliTests.Dslm(["theory", .. SmallModel, .. args]);
        Assert.Equal(2, code);
        Assert.Contains(message, error);
        Assert.Equal("", output);
    }

    [Fact]
    public void CausalPredictionSpreadsVarianceOverPositions()
    {
        // Position t averages t + 1 tokens (open-problems.md 2): the per-position variances differ, and the JSON says so.
        var (_, json) = Theory([.. SmallModel, "--causal", "--token-correlation", "uniform", "--vocab", "256"]);
        Assert.Equal("causal", json.GetProperty("config").GetProperty("attention").GetString());
        Assert.Equal(1.0 / 512, json.GetProperty("config").GetProperty("token_correlation").GetDouble(), 15);
        var first = json.GetProperty("layers")[0];
        Assert.True(first.GetProperty("position_variance_max").GetDouble() > first.GetProperty("position_variance_min").GetDouble() + 0.01);
    }

    [Fact]
    public void PositionAwareInitHoldsEveryPositionAtOneAndListsItsRescale()
    {
        var (_, json) = Theory([.. SmallModel, "--causal", "--init", "dslm-position", "--token-correlation", "uniform", "--vocab", "256"]);
        foreach (var layer in json.GetProperty("layers").EnumerateArray())
        {
            Assert.Equal(1, layer.GetProperty("position_variance_min").GetDouble(), 9);
            Assert.Equal(1, layer.GetProperty("position_variance_max").GetDouble(), 9);
        }
        var init = json.GetProperty("init");
        Assert.Equal(1.0 / 512, init.GetProperty("token_correlation").GetDouble(), 15);
        Assert.Equal(4, init.GetProperty("attention_rescale").GetArrayLength());
        Assert.Equal(32, init.GetProperty("attention_rescale")[0].GetArrayLength());
    }

    [Fact]
    public void ESpaVanillaStackAvoidsTheCollapseOfUniformAttention()
    {
        // spa-theory.md: zero queries with E-SPA's bias keep r below 1 over 16 layers; the TAT slope is in the JSON.
        var (_, json) = Theory("--norm", "none", "--init", "espa", "--layers", "16", "--d-model", "64", "--heads", "4", "--seq-len", "24",
            "--dropout", "0", "--causal", "--token-correlation", "0");
        var init = json.GetProperty("init");
        Assert.Equal(0.0, init.GetProperty("qk_std").GetDouble());
        Assert.Equal(0.104499, init.GetProperty("ffn_negative_slope").GetDouble(), 5); // spa-theory.md 3.1, n = 16
        Assert.Equal(0.0, init.GetProperty("lambda").GetDouble());
        double last = json.GetProperty("layers")[15].GetProperty("correlation").GetDouble();
        Assert.InRange(last, 0.5, 0.99);
    }

    [Fact]
    public void PlotWritesOneFigurePerQuantity()
    {
        string stem = Path.Combine(Path.GetTempPath(), $"dslm-theory-plot-{Guid.NewGuid():N}");
        string[] files = [$"{stem}-forward_variance.png", $"{stem}-correlation.png", $"{stem}-grad_variance.png"];
        try
        {
            var (code, output, error) = CliTests.Dslm(["theory", .. SmallModel, "--causal", "--plot", stem + ".png"]);
            Assert.True(code == 0, error);
            foreach (string file in files)
            {
                Assert.Contains($"wrote {file}", output);
                Assert.Equal([0x89, (byte)'P', (byte)'N', (byte)'G'], File.ReadAllBytes(file)[..4]);
            }
        }
        finally
        {
            foreach (string file in files) File.Delete(file);
        }
    }
}
