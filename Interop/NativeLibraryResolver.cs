using System.Reflection;
using System.Runtime.InteropServices;
using System.Text;

namespace DeepScaleLM.Interop;

/// <summary>
/// Finds the CUDA libraries for this assembly's P/Invokes (registered with
/// <see cref="NativeLibrary.SetDllImportResolver"/> by the binding classes' static constructors).
/// <para>cuBLAS and cuBLASLt: libcublas.so.13 then .12 (libcublasLt the same), in every directory of
/// <see cref="SearchDirectories"/> in order: (1) <see cref="LibraryDirectory"/> set from code, (2) the environment
/// variable <c>DSLM_CUDA_LIBRARY_PATH</c> (one folder or a ':'-separated list), (3) each LD_LIBRARY_PATH entry,
/// (4) the usual CUDA installs (/usr/local/cuda/lib64, /usr/local/cuda/targets/x86_64-linux/lib,
/// /usr/local/cuda-*/lib64 newest first, /usr/lib/x86_64-linux-gnu, /usr/lib64), (5) pip wheels
/// (nvidia/cu13/lib and nvidia/cublas/lib under the site-packages of $VIRTUAL_ENV, $CONDA_PREFIX, ~/.local,
/// /usr/local and /usr), then $CONDA_PREFIX/lib. The first file that exists and loads wins.</para>
/// <para>libcuda.so.1 (the driver) is looked for in (1) and (2), then left to the dynamic loader.</para>
/// When nothing loads, the P/Invoke throws a <see cref="DllNotFoundException"/> whose message lists every folder
/// and every file name tried.
/// </summary>
public static class NativeLibraryResolver
{
    /// <summary>The environment variable naming a folder (or ':'-separated folders) searched before the defaults.</summary>
    public const string EnvironmentVariable = "DSLM_CUDA_LIBRARY_PATH";

    private static readonly Lock Gate = new();
    private static bool registered;

    /// <summary>A folder searched first (before <c>DSLM_CUDA_LIBRARY_PATH</c>). Set it before the first CUDA call:
    /// a library, once loaded, stays loaded.</summary>
    public static string? LibraryDirectory { get; set; }

    /// <summary>The file names tried for a logical library name, in order of preference.</summary>
    /// <exception cref="ArgumentException">Not one of the names this assembly binds.</exception>
    public static IReadOnlyList<string> FileNames(string library) => library switch
    {
        CudaDriver.LibraryName => [CudaDriver.LibraryName],
        CuBlas.LibraryName => ["libcublas.so.13", "libcublas.so.12"],
        CuBlasLt.LibraryName => ["libcublasLt.so.13", "libcublasLt.so.12"],
        Nvtx.LibraryName => ["libnvToolsExt.so.1"],
        _ => throw new ArgumentException($"'{library}' is not a library this assembly binds", nameof(library)),
    };

    /// <summary>The folders searched, in order, for the given environment (see the class remarks). Duplicates and
    /// empty entries are dropped; folders need not exist.</summary>
    public static IReadOnlyList<string> SearchDirectories(SearchEnvironment environment)
    {
        var directories = new List<string>();
        void Add(string? directory)
        {
            if (!string.IsNullOrWhiteSpace(directory) && !directories.Contains(directory)) directories.Add(directory);
        }
        void AddList(string? list)
        {
            foreach (string directory in (list ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries)) Add(directory);
        }

        Add(environment.ExplicitDirectory);
        AddList(environment.EnvironmentDirectories);
        AddList(environment.LdLibraryPath);

        Add("/usr/local/cuda/lib64");
        Add("/usr/local/cuda/targets/x86_64-linux/lib");
        foreach (string cuda in environment.ListDirectories("/usr/local", "cuda-*").OrderByDescending(VersionKey))
            Add(Path.Combine(cuda, "lib64"));
        Add("/usr/lib/x86_64-linux-gnu");
        Add("/usr/lib64");

        foreach (string sitePackages in PythonSitePackages(environment))
        {
            Add(Path.Combine(sitePackages, "nvidia", "cu13", "lib"));
            Add(Path.Combine(sitePackages, "nvidia", "cublas", "lib"));
        }
        if (environment.CondaPrefix is { Length: > 0 } conda) Add(Path.Combine(conda, "lib"));
        return directories;
    }

    /// <summary>The first candidate (folder order first, then file-name order) for which <paramref name="exists"/>
    /// holds, or null.</summary>
    public static string? Find(IReadOnlyList<string> fileNames, IReadOnlyList<string> directories, Func<string, bool> exists)
    {
        foreach (string directory in directories)
            foreach (string fileName in fileNames)
            {
                string path = Path.Combine(directory, fileName);
                if (exists(path)) return path;
            }
        return null;
    }

    /// <summary>The exception for a library that was not found: names the library, every file name, every folder
    /// (in search order), the failures of files that existed but did not load, and how to point at the right folder.</summary>
    public static DllNotFoundException NotFound(string library, IReadOnlyList<string> fileNames,
        IReadOnlyList<string> directories, IReadOnlyList<string> loadFailures, string? loaderNote = null)
    {
        var message = new StringBuilder();
        message.Append($"Could not load the {library} library: tried {string.Join(", ", fileNames)} in these folders, in order:");
        foreach (string directory in directories) message.Append("\n  ").Append(directory);
        if (directories.Count == 0) message.Append("\n  (none)");
        foreach (string failure in loadFailures) message.Append("\n  found but failed to load: ").Append(failure);
        if (loaderNote is not null) message.Append('\n').Append(loaderNote);
        message.Append($"\nSet {EnvironmentVariable} (or NativeLibraryResolver.LibraryDirectory) to the folder that holds it.");
        return new DllNotFoundException(message.ToString());
    }

    /// <summary>Loads a library by logical name (<see cref="CudaDriver.LibraryName"/>, <see cref="CuBlas.LibraryName"/>,
    /// <see cref="CuBlasLt.LibraryName"/>, <see cref="Nvtx.LibraryName"/>) the way the P/Invokes do.</summary>
    /// <exception cref="DllNotFoundException">Not found; the message lists where it looked.</exception>
    public static nint Load(string library)
    {
        var environment = SearchEnvironment.FromProcess();
        IReadOnlyList<string> fileNames = FileNames(library);
        var failures = new List<string>();

        if (library == CudaDriver.LibraryName)
        {
            // The driver comes with the NVIDIA kernel module, so only the user's folders are searched before
            // the dynamic loader (LD_LIBRARY_PATH, /etc/ld.so.cache, default paths).
            var userDirectories = UserDirectories(environment);
            if (TryLoadFrom(fileNames, userDirectories, failures) is { } userHandle and not 0) return userHandle;
            try
            {
                return NativeLibrary.Load(CudaDriver.LibraryName);
            }
            catch (DllNotFoundException e)
            {
                // The runtime's message ends with dlerror()'s line ("libcuda.so.1: cannot open shared object file ...").
                string dlerror = e.Message.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)[^1];
                throw NotFound(library, fileNames, userDirectories, failures,
                    $"then asked the dynamic loader (LD_LIBRARY_PATH, /etc/ld.so.cache, /lib, /usr/lib), which said: {dlerror}\n" +
                    "libcuda.so.1 comes with the NVIDIA driver (not the CUDA toolkit); is a driver installed?");
            }
        }

        IReadOnlyList<string> directories = SearchDirectories(environment);
        return TryLoadFrom(fileNames, directories, failures) is { } handle and not 0
            ? handle
            : throw NotFound(library, fileNames, directories, failures);
    }

    /// <summary>Like <see cref="Load"/>, but returns false instead of throwing.</summary>
    public static bool TryLoad(string library, out nint handle)
    {
        try
        {
            handle = Load(library);
            return true;
        }
        catch (DllNotFoundException)
        {
            handle = 0;
            return false;
        }
    }

    /// <summary>Installs the resolver for this assembly once; called by the binding classes' static constructors.</summary>
    internal static void Register()
    {
        lock (Gate)
        {
            if (registered) return;
            NativeLibrary.SetDllImportResolver(typeof(NativeLibraryResolver).Assembly, Resolve);
            registered = true;
        }
    }

    private static nint Resolve(string library, Assembly assembly, DllImportSearchPath? searchPath) => library switch
    {
        CudaDriver.LibraryName or CuBlas.LibraryName or CuBlasLt.LibraryName or Nvtx.LibraryName => Load(library),
        _ => 0,
    };

    private static nint? TryLoadFrom(IReadOnlyList<string> fileNames, IReadOnlyList<string> directories, List<string> failures)
    {
        // Walk the candidates in Find's order; a file that exists but fails to load (a missing dependency, the
        // wrong architecture) is reported and the search goes on.
        var skip = new HashSet<string>();
        while (Find(fileNames, directories, path => !skip.Contains(path) && File.Exists(path)) is { } path)
        {
            if (NativeLibrary.TryLoad(path, out nint handle)) return handle;
            failures.Add(path);
            skip.Add(path);
        }
        return null;
    }

    // The folders the user named: the one set from code, then those in DSLM_CUDA_LIBRARY_PATH.
    private static List<string> UserDirectories(SearchEnvironment environment) =>
        new[] { environment.ExplicitDirectory ?? "" }
            .Concat((environment.EnvironmentDirectories ?? "").Split(':'))
            .Where(directory => !string.IsNullOrWhiteSpace(directory)).Distinct().ToList();

    private static IEnumerable<string> PythonSitePackages(SearchEnvironment environment)
    {
        IEnumerable<string> Versioned(string lib, string leaf) =>
            environment.ListDirectories(lib, "python3*").OrderByDescending(VersionKey).Select(p => Path.Combine(p, leaf));

        if (environment.VirtualEnv is { Length: > 0 } venv)
            foreach (string site in Versioned(Path.Combine(venv, "lib"), "site-packages")) yield return site;
        if (environment.CondaPrefix is { Length: > 0 } conda)
            foreach (string site in Versioned(Path.Combine(conda, "lib"), "site-packages")) yield return site;
        if (environment.Home is { Length: > 0 } home)
            foreach (string site in Versioned(Path.Combine(home, ".local", "lib"), "site-packages")) yield return site;
        foreach (string site in Versioned("/usr/local/lib", "dist-packages")) yield return site;
        foreach (string site in Versioned("/usr/local/lib", "site-packages")) yield return site;
        yield return "/usr/lib/python3/dist-packages";
        foreach (string site in Versioned("/usr/lib", "site-packages")) yield return site;
    }

    // Sorts "cuda-12.10" after "cuda-12.9" and "python3.12" after "python3.9": compare the numeric parts.
    private static VersionKeyValue VersionKey(string path) => new(path);

    private readonly record struct VersionKeyValue(string Path) : IComparable<VersionKeyValue>
    {
        public int CompareTo(VersionKeyValue other)
        {
            int[] a = Numbers(Path), b = Numbers(other.Path);
            for (int i = 0; i < Math.Min(a.Length, b.Length); i++)
                if (a[i] != b[i]) return a[i].CompareTo(b[i]);
            return a.Length != b.Length ? a.Length.CompareTo(b.Length) : string.CompareOrdinal(Path, other.Path);
        }

        // The runs of digits in the folder's name: "cuda-12.6" -> [12, 6], "python3.12" -> [3, 12].
        private static int[] Numbers(string path)
        {
            var numbers = new List<int>();
            string name = System.IO.Path.GetFileName(path);
            for (int i = 0; i < name.Length; i++)
            {
                if (!char.IsAsciiDigit(name[i])) continue;
                int start = i;
                while (i < name.Length && char.IsAsciiDigit(name[i])) i++;
                numbers.Add(int.TryParse(name.AsSpan(start, i - start), out int n) ? n : int.MaxValue);
            }
            return [.. numbers];
        }
    }
}

/// <summary>
/// What the library search depends on, so it can be tested without touching the process: the folder set from
/// code, <c>DSLM_CUDA_LIBRARY_PATH</c>, LD_LIBRARY_PATH, the Python prefixes, and a way to list sub-folders
/// matching a pattern (for /usr/local/cuda-* and python3.*).
/// </summary>
/// <param name="ExplicitDirectory">The folder set from code (<see cref="NativeLibraryResolver.LibraryDirectory"/>).</param>
/// <param name="EnvironmentDirectories">The value of <c>DSLM_CUDA_LIBRARY_PATH</c>.</param>
/// <param name="LdLibraryPath">The value of LD_LIBRARY_PATH.</param>
/// <param name="VirtualEnv">The value of VIRTUAL_ENV.</param>
/// <param name="CondaPrefix">The value of CONDA_PREFIX.</param>
/// <param name="Home">The user's home folder.</param>
/// <param name="ListDirectories">Sub-folders of a folder whose names match a pattern; empty if it does not exist.</param>
public sealed record SearchEnvironment(string? ExplicitDirectory, string? EnvironmentDirectories, string? LdLibraryPath,
    string? VirtualEnv, string? CondaPrefix, string? Home, Func<string, string, IEnumerable<string>> ListDirectories)
{
    /// <summary>This process's settings, listing folders on the real file system.</summary>
    public static SearchEnvironment FromProcess() => new(
        NativeLibraryResolver.LibraryDirectory,
        Environment.GetEnvironmentVariable(NativeLibraryResolver.EnvironmentVariable),
        Environment.GetEnvironmentVariable("LD_LIBRARY_PATH"),
        Environment.GetEnvironmentVariable("VIRTUAL_ENV"),
        Environment.GetEnvironmentVariable("CONDA_PREFIX"),
        Environment.GetFolderPath(Environment.SpecialFolder.UserProfile),
        ListFileSystemDirectories);

    private static IEnumerable<string> ListFileSystemDirectories(string parent, string pattern)
    {
        try
        {
            return Directory.Exists(parent) ? Directory.GetDirectories(parent, pattern) : [];
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return [];
        }
    }
}
