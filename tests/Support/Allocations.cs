namespace DeepScaleLM.Tests.Support;

/// <summary>Checks of the no-allocation-per-call convention.</summary>
internal static class Allocations
{
    /// <summary>
    /// Runs <paramref name="step"/> twice to warm it (JIT tiers, grow-only workspaces), then asserts that a warm run
    /// allocates no managed memory on the calling thread: the fewest bytes over three more runs must be 0. An
    /// allocation per call shows in every run; a one-off runtime allocation (a tier-up, with other tests loading the
    /// cores) can land in any single one, which a single measured run mistook for the code's. Pool workers run the
    /// same job code, so a backend with one thread covers every kernel path.
    /// </summary>
    public static void AssertWarmCallAllocatesNothing(Action step)
    {
        step();
        step();
        long fewest = long.MaxValue;
        for (int run = 0; run < 3; run++)
        {
            long before = GC.GetAllocatedBytesForCurrentThread();
            step();
            fewest = Math.Min(fewest, GC.GetAllocatedBytesForCurrentThread() - before);
        }
        Assert.Equal(0, fewest);
    }
}
