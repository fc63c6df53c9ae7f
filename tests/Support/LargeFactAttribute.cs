namespace DeepScaleLM.Tests.Support;

/// <summary>
/// A test that needs several GiB of memory and tens of seconds: it runs only when DSLM_LARGE_TESTS=1 and the
/// machine has at least 16 GiB available, and otherwise shows as skipped with the reason (never as a pass).
/// </summary>
internal sealed class LargeFactAttribute : FactAttribute
{
    public LargeFactAttribute()
    {
        if (Environment.GetEnvironmentVariable("DSLM_LARGE_TESTS") != "1")
            Skip = "needs several GiB and tens of seconds: set DSLM_LARGE_TESTS=1 to run it";
        else if (GC.GetGCMemoryInfo().TotalAvailableMemoryBytes < 16L << 30)
            Skip = "needs at least 16 GiB of available memory";
    }
}
