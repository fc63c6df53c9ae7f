using DeepScaleLM.Interop;

namespace DeepScaleLM.Tests;

/// <summary>
/// How <see cref="NativeLibraryResolver"/> finds libcublas / libcublasLt / libcuda, without a GPU: the search
/// order from a fake environment, which candidate wins among empty files in temp folders (checked for
/// existence only, never loaded), the not-found message, and a real load on this machine.
/// </summary>
public sealed class InteropLibraryResolutionTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("dslm-interop-").FullName;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    private static SearchEnvironment Fake(string? explicitDirectory = null, string? environmentDirectories = null,
        string? ldLibraryPath = null, string? virtualEnv = null, string? condaPrefix = null, string? home = null) =>
        new(explicitDirectory, environmentDirectories, ldLibraryPath, virtualEnv, condaPrefix, home,
            (parent, pattern) => (parent, pattern) switch
            {
                ("/usr/local", "cuda-*") => ["/usr/local/cuda-12.9", "/usr/local/cuda-11.8", "/usr/local/cuda-12.10"],
                ("/venv/lib", "python3*") => ["/venv/lib/python3.9", "/venv/lib/python3.12"],
                ("/home/u/.local/lib", "python3*") => ["/home/u/.local/lib/python3.11"],
                _ => [],
            });

    private string Folder(string name, params string[] files)
    {
        string folder = Path.Combine(_root, name);
        Directory.CreateDirectory(folder);
        foreach (string file in files) File.WriteAllBytes(Path.Combine(folder, file), []);
        return folder;
    }

    [Fact]
    public void FileNamesPreferCuda13Over12()
    {
        Assert.Equal(["libcublas.so.13", "libcublas.so.12"], NativeLibraryResolver.FileNames(CuBlas.LibraryName));
        Assert.Equal(["libcublasLt.so.13", "libcublasLt.so.12"], NativeLibraryResolver.FileNames(CuBlasLt.LibraryName));
        Assert.Equal(["libcuda.so.1"], NativeLibraryResolver.FileNames(CudaDriver.LibraryName));
        Assert.Throws<ArgumentException>(() => NativeLibraryResolver.FileNames("libfoo"));
    }

    [Fact]
    public void SearchOrderIsUserFolderThenEnvironmentThenLdLibraryPathThenCudaThenPipWheels()
    {
        var directories = NativeLibraryResolver.SearchDirectories(Fake(
            explicitDirectory: "/opt/mine", environmentDirectories: "/env/a:/env/b", ldLibraryPath: "/ld/one::/env/a:/ld/two",
            virtualEnv: "/venv", condaPrefix: "/conda", home: "/home/u"));

        string[] expectedOrder =
        [
            "/opt/mine", "/env/a", "/env/b", "/ld/one", "/ld/two",
            "/usr/local/cuda/lib64", "/usr/local/cuda/targets/x86_64-linux/lib",
            "/usr/local/cuda-12.10/lib64", "/usr/local/cuda-12.9/lib64", "/usr/local/cuda-11.8/lib64",
            "/usr/lib/x86_64-linux-gnu", "/usr/lib64",
            "/venv/lib/python3.12/site-packages/nvidia/cu13/lib", "/venv/lib/python3.12/site-packages/nvidia/cublas/lib",
            "/venv/lib/python3.9/site-packages/nvidia/cublas/lib",
            "/home/u/.local/lib/python3.11/site-packages/nvidia/cublas/lib",
            "/usr/lib/python3/dist-packages/nvidia/cublas/lib",
            "/conda/lib",
        ];
        int previous = -1;
        foreach (string directory in expectedOrder)
        {
            int index = directories.ToList().IndexOf(directory);
            Assert.True(index > previous, $"{directory} at {index}, expected after index {previous} in:\n{string.Join("\n", directories)}");
            previous = index;
        }
        Assert.Equal(directories.Count, directories.Distinct().Count());
    }

    [Fact]
    public void WithNothingSetTheDefaultsRemain()
    {
        var directories = NativeLibraryResolver.SearchDirectories(Fake());
        Assert.Equal("/usr/local/cuda/lib64", directories[0]);
        Assert.Contains("/usr/lib/x86_64-linux-gnu", directories);
        Assert.Contains("/usr/lib/python3/dist-packages/nvidia/cublas/lib", directories);
    }

    [Fact]
    public void TheUserFolderWinsOverLdLibraryPathAndTheCudaInstall()
    {
        string user = Folder("user", "libcublas.so.12");
        string ld = Folder("ld", "libcublas.so.13", "libcublas.so.12");
        string cuda = Folder("cuda", "libcublas.so.13");
        var directories = new[] { user, ld, cuda };

        Assert.Equal(Path.Combine(user, "libcublas.so.12"),
            NativeLibraryResolver.Find(NativeLibraryResolver.FileNames(CuBlas.LibraryName), directories, File.Exists));
    }

    [Fact]
    public void WithinAFolderCuda13WinsAndAMissingFolderIsSkipped()
    {
        string missing = Path.Combine(_root, "does-not-exist");
        string both = Folder("both", "libcublasLt.so.12", "libcublasLt.so.13", "libcublas.so.13");

        Assert.Equal(Path.Combine(both, "libcublasLt.so.13"),
            NativeLibraryResolver.Find(NativeLibraryResolver.FileNames(CuBlasLt.LibraryName), [missing, both], File.Exists));
    }

    [Fact]
    public void FindReturnsNullWhenNoFolderHoldsTheLibrary()
    {
        string other = Folder("other", "libcublasLt.so.12", "libcublas.so.11");
        Assert.Null(NativeLibraryResolver.Find(NativeLibraryResolver.FileNames(CuBlas.LibraryName), [other], File.Exists));
    }

    [Fact]
    public void NotFoundListsEveryFolderAndEveryFileName()
    {
        var directories = NativeLibraryResolver.SearchDirectories(Fake(explicitDirectory: "/opt/mine", ldLibraryPath: "/ld/one"));
        var error = NativeLibraryResolver.NotFound(CuBlas.LibraryName, NativeLibraryResolver.FileNames(CuBlas.LibraryName),
            directories, ["/ld/one/libcublas.so.13"]);

        Assert.Contains("libcublas.so.13, libcublas.so.12", error.Message);
        foreach (string directory in directories) Assert.Contains("\n  " + directory + "\n", error.Message + "\n");
        Assert.Contains("found but failed to load: /ld/one/libcublas.so.13", error.Message);
        Assert.Contains(NativeLibraryResolver.EnvironmentVariable, error.Message);
    }

    /// <summary>On this machine: either the libraries are installed and the call returns a status, or the call
    /// throws the listing (never a crash). Both branches are asserted; nothing is skipped.</summary>
    [Fact]
    public void CuBlasOnThisMachineLoadsOrExplainsWhereItLooked()
    {
        var (status, error) = CallNative(() =>
        {
            int created = CuBlas.cublasCreate_v2(out nint handle);
            if (created == CuBlas.Success) CuBlas.cublasDestroy_v2(handle);
            return created;
        });
        if (error is null)
        {
            Assert.NotNull(CudaErrorNames.CuBlasName(status));
            return;
        }
        Assert.Contains("libcublas.so.13, libcublas.so.12", error.Message);
        Assert.Contains("/usr/local/cuda/lib64", error.Message);
        Assert.Contains("/usr/lib/x86_64-linux-gnu", error.Message);
        Assert.Contains("nvidia/cublas/lib", error.Message);
        Assert.Contains(NativeLibraryResolver.EnvironmentVariable, error.Message);
    }

    [Fact]
    public void DriverOnThisMachineLoadsOrNamesTheMissingDriver()
    {
        var (result, error) = CallNative(() => CudaDriver.cuInit(0));
        if (error is null)
        {
            // With a driver, cuInit returns a CUresult: success, or e.g. CUDA_ERROR_NO_DEVICE on a machine without a GPU.
            Assert.NotNull(CudaErrorNames.DriverName(result));
            return;
        }
        Assert.Contains("libcuda.so.1", error.Message);
        Assert.Contains("dynamic loader", error.Message);
        Assert.Contains("NVIDIA driver", error.Message);
    }

    /// <summary>Runs a native call: its status, or the DllNotFoundException the resolver threw.</summary>
    private static (int Status, DllNotFoundException? Error) CallNative(Func<int> call)
    {
        try
        {
            return (call(), null);
        }
        catch (DllNotFoundException e)
        {
            return (-1, e);
        }
    }

    [Fact]
    public void NvtxIsANoOpWithoutTheLibrary()
    {
        Nvtx.Push("layer 0");
        Nvtx.Pop();
        if (!Nvtx.IsAvailable) Assert.False(NativeLibraryResolver.TryLoad(Nvtx.LibraryName, out _));
    }
}
