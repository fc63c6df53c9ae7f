using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;
using DeepScaleLM.Native.Cuda;

namespace DeepScaleLM.Tests;

/// <summary>
/// The committed PTX matches its sources: each Native/cuda/ptx/NAME.ptx starts with the SHA-256 of NAME.cu followed
/// by common.cuh (scripts/build-ptx.sh writes it), so a kernel edited without rebuilding its PTX fails here; the
/// embedded resources are those files; and every kernel the backend looks up is an entry of its module.
/// </summary>
public partial class CudaPtxTests
{
    private static readonly string KernelFolder = Path.Combine(ReadmeExampleTests.RepositoryRoot(), "Native", "cuda");

    private static string[] ModuleNames() =>
        [.. Directory.GetFiles(KernelFolder, "*.cu").Select(path => Path.GetFileNameWithoutExtension(path)).Order(StringComparer.Ordinal)];

    public static TheoryData<string> Modules => [.. ModuleNames()];

    [Theory]
    [MemberData(nameof(Modules))]
    public void PtxHeaderCarriesTheHashOfItsSources(string module)
    {
        byte[] sources = [.. File.ReadAllBytes(Path.Combine(KernelFolder, module + ".cu")), .. File.ReadAllBytes(Path.Combine(KernelFolder, "common.cuh"))];
        string expected = Convert.ToHexStringLower(SHA256.HashData(sources));
        string ptx = Path.Combine(KernelFolder, "ptx", module + ".ptx");
        Assert.True(File.Exists(ptx), $"{module}.cu has no PTX: run scripts/build-ptx.sh");
        string header = File.ReadLines(ptx).First();
        Assert.True(header == $"// dslm-source-sha256: {expected}",
            $"{module}.ptx was built from other sources (header '{header}', sources hash {expected}): run scripts/build-ptx.sh and commit the PTX");
    }

    [Theory]
    [MemberData(nameof(Modules))]
    public void EmbeddedPtxIsTheCommittedFileForCompute80(string module)
    {
        byte[] embedded = CudaKernels.Ptx(module);
        Assert.Equal(File.ReadAllBytes(Path.Combine(KernelFolder, "ptx", module + ".ptx")), embedded);
        string text = Encoding.UTF8.GetString(embedded);
        Assert.Contains("\n.target sm_80\n", text);
        Assert.DoesNotContain(KernelFolder, text);
    }

    [Fact]
    public void EveryModuleIsEmbeddedAndNothingElse() =>
        Assert.Equal(ModuleNames(), CudaKernels.ModuleNames());

    [Fact]
    public void EveryKernelTheBackendLoadsIsAnEntryOfThePtx()
    {
        var entries = ModuleNames()
            .SelectMany(module => EntryPattern().Matches(Encoding.UTF8.GetString(CudaKernels.Ptx(module))).Select(m => m.Groups[1].Value))
            .ToHashSet();
        string loader = File.ReadAllText(Path.Combine(ReadmeExampleTests.RepositoryRoot(), "Native", "Cuda", "CudaKernels.cs"));
        var loaded = FunctionPattern().Matches(loader).Select(m => m.Groups[1].Value).ToHashSet();
        Assert.NotEmpty(loaded);
        Assert.Empty(loaded.Except(entries));
        // And no kernel is compiled that the backend never launches.
        Assert.Empty(entries.Except(loaded));
    }

    [GeneratedRegex(@"\.visible \.entry (\w+)\(")]
    private static partial Regex EntryPattern();

    [GeneratedRegex(@"Function\(\w+, ""(\w+)""\)")]
    private static partial Regex FunctionPattern();
}
