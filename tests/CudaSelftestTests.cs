using System.Text.Json;
using DeepScaleLM.Cli;
using DeepScaleLM.Native.Cuda;

namespace DeepScaleLM.Tests;

/// <summary><c>dslm selftest</c>: its exit codes, table and JSON, with and without a GPU.</summary>
[Collection("cuda")]
public class CudaSelftestTests
{
    private static (int Code, string Output, string Error) Dslm(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        int code = CliApp.Run(args, output, error);
        return (code, output.ToString(), error.ToString());
    }

    [Fact]
    public void WithoutAGpuItSaysSoAndExitsTwo()
    {
        if (CudaDevice.SkipReason is null) return; // a GPU is here: CudaSelftestPasses covers it
        var (code, output, _) = Dslm("selftest", "--device", "cuda:0");
        Assert.Equal(2, code);
        Assert.StartsWith("dslm selftest: no CUDA device", output);
    }

    [Fact]
    public void OnTheCpuEveryCheckPassesAndTheJsonListsThem()
    {
        using var folder = new TempFolder();
        string json = folder.File("selftest.json");
        var (code, output, error) = Dslm("selftest", "--device", "cpu", "--json", json);
        Assert.True(code == 0, output + error);
        foreach (string name in Conformance.Names) Assert.Contains(name, output);
        Assert.Contains($"all {Conformance.Names.Count} checks pass", output);
        using var document = JsonDocument.Parse(File.ReadAllText(json));
        var checks = document.RootElement.GetProperty("checks").EnumerateArray().ToArray();
        Assert.Equal(Conformance.Names, checks.Select(c => c.GetProperty("op").GetString()));
        Assert.All(checks, c => Assert.True(c.GetProperty("passed").GetBoolean()));
    }

    [Fact]
    public void ABadDeviceIsAnInputError()
    {
        var (code, _, error) = Dslm("selftest", "--device", "gpu");
        Assert.Equal(2, code);
        Assert.Contains("'gpu' is not a device", error);
    }

    [CudaFact]
    public void CudaSelftestPasses()
    {
        var (code, output, error) = Dslm("selftest", "--device", "cuda:0");
        Assert.True(code == 0, output + error);
    }
}
