namespace DeepScaleLM.Tests.Support;

/// <summary>Checks of the no-allocation-per-call convention.</summary>
internal static class Allocations
{
    /// <summary>
    /// Runs <paramref name="step"/> twice to warm it (JIT tiers, grow-only workspaces), then asserts a third run
    /// allocates no managed memory on the calling thread. Pool workers run the same job code, so a backend with
    /// one thread covers every kernel path.
    /// </summary>
    public static void AssertWarmCallAllocatesNothing(Action step)
    {
        step();
        step();
        long before = GC.GetAllocatedBytesForCurrentThread();
        step();
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }
}
