namespace DeepScaleLM.Tests.Support;

/// <summary>Measures what an op allocates on the calling thread once it is warm (JIT, pools, workspaces).</summary>
internal static class Allocation
{
    /// <summary>Bytes allocated by the third call of <paramref name="call"/> (two warm-ups first).</summary>
    public static long OfWarmCall(Action call)
    {
        call();
        call();
        long before = GC.GetAllocatedBytesForCurrentThread();
        call();
        return GC.GetAllocatedBytesForCurrentThread() - before;
    }
}
